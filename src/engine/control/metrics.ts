/**
 * Prometheus metrics: the text exposition format 0.0.4 served over HTTP at /metrics
 * (`spylog run --metrics 127.0.0.1:9180`), built from the daemon's MetricsSnapshot, and a
 * fixed-bucket Histogram the daemon can use to time filter matches without allocating.
 */
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import type {Logger} from '../log/logger.js'
import type {ControlTarget, HistogramSnapshot, MetricsSnapshot} from './protocol.js'

/** Default buckets for the time one line takes through a filter, seconds (1 µs … 1 s). */
export const MATCH_SECONDS_BUCKETS: readonly number[] = [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 0.1, 1]

/** A latency histogram with fixed buckets: observe() allocates nothing. */
export class Histogram {
  private readonly counts: Float64Array
  private total = 0
  private sumSeconds = 0

  constructor(readonly bounds: readonly number[] = MATCH_SECONDS_BUCKETS) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new Error('histogram bounds must be ascending')
    this.counts = new Float64Array(bounds.length)
  }

  /** Records one observation (seconds). */
  observe(seconds: number): void {
    const b = this.bounds
    // Linear scan: few buckets, and most observations land in the first ones.
    for (let i = 0; i < b.length; i++) {
      if (seconds <= b[i]!) {
        this.counts[i]!++
        break
      }
    }
    this.total++
    this.sumSeconds += seconds
  }

  /** Cumulative counts per bucket (Prometheus `le` semantics). */
  snapshot(): HistogramSnapshot {
    let acc = 0
    const buckets = this.bounds.map((le, i) => {
      acc += this.counts[i]!
      return {le, count: acc}
    })
    return {buckets, count: this.total, sum: this.sumSeconds}
  }
}

// ---------------------------------------------------------------------------------------------
// Exposition format

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : '\\' + c))
}

/** Escapes HELP text: backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'))
}

/** A sample value in the format's float syntax. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

function labels(l: Record<string, string> | undefined): string {
  if (l === undefined) return ''
  const keys = Object.keys(l)
  if (keys.length === 0) return ''
  return '{' + keys.map((k) => `${k}="${escapeLabelValue(l[k]!)}"`).join(',') + '}'
}

type MetricType = 'counter' | 'gauge' | 'histogram'

/** Builds an exposition text family by family. */
class Exposition {
  private out: string[] = []

  family(name: string, type: MetricType, help: string, samples: {labels?: Record<string, string>; value: number}[]): void {
    this.out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
    for (const s of samples) this.out.push(`${name}${labels(s.labels)} ${formatValue(s.value)}`)
  }

  histogram(name: string, help: string, series: {labels: Record<string, string>; h: HistogramSnapshot}[]): void {
    this.out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} histogram`)
    for (const {labels: l, h} of series) {
      for (const b of h.buckets) this.out.push(`${name}_bucket${labels({...l, le: formatValue(b.le)})} ${formatValue(b.count)}`)
      this.out.push(`${name}_bucket${labels({...l, le: '+Inf'})} ${formatValue(h.count)}`)
      this.out.push(`${name}_sum${labels(l)} ${formatValue(h.sum)}`)
      this.out.push(`${name}_count${labels(l)} ${formatValue(h.count)}`)
    }
  }

  text(): string {
    return this.out.join('\n') + '\n'
  }
}

/** The Prometheus text (format 0.0.4) of a snapshot. */
export function renderMetrics(m: MetricsSnapshot): string {
  const e = new Exposition()
  e.family('spylog_start_time_seconds', 'gauge', 'Start time of the spylog daemon since the Unix epoch, seconds.', [{value: m.started}])

  const src = (name: string) => ({source: name})
  e.family('spylog_source_records_total', 'counter', 'Records (lines, events) read by a source.', m.sources.map((s) => ({labels: {...src(s.name), kind: s.kind}, value: s.records})))
  e.family('spylog_source_bytes_total', 'counter', 'Bytes read by a source.', m.sources.map((s) => ({labels: src(s.name), value: s.bytes})))
  e.family('spylog_source_errors_total', 'counter', 'Read errors of a source.', m.sources.map((s) => ({labels: src(s.name), value: s.errors})))
  e.family('spylog_source_drops_total', 'counter', 'Records a source dropped (full buffer, oversized input).', m.sources.map((s) => ({labels: src(s.name), value: s.drops})))
  e.family('spylog_source_up', 'gauge', 'Whether a source is running (1) or starting, retrying, failed or stopped (0).', m.sources.map((s) => ({labels: src(s.name), value: s.state === 'running' ? 1 : 0})))

  const flt = (name: string) => ({filter: name})
  e.family('spylog_filter_lines_total', 'counter', 'Lines a filter tested.', m.filters.map((f) => ({labels: flt(f.name), value: f.lines})))
  e.family('spylog_filter_matched_total', 'counter', 'Lines in which a filter found a failure.', m.filters.map((f) => ({labels: flt(f.name), value: f.matched})))
  e.family('spylog_filter_ignored_total', 'counter', 'Lines a filter ignored (ignoreregex, exclusions).', m.filters.map((f) => ({labels: flt(f.name), value: f.ignored})))
  e.histogram('spylog_filter_match_seconds', 'Time a filter took to test one line, seconds.',
    m.filters.filter((f) => f.matchSeconds !== undefined).map((f) => ({labels: flt(f.name), h: f.matchSeconds!})))

  const jail = (name: string) => ({jail: name})
  e.family('spylog_jail_failures_current', 'gauge', 'Offenders with failures counted in a jail, not banned.', m.jails.map((j) => ({labels: jail(j.name), value: j.currentlyFailed})))
  e.family('spylog_jail_failures_total', 'counter', 'Failures a jail counted.', m.jails.map((j) => ({labels: jail(j.name), value: j.totalFailed})))
  e.family('spylog_jail_bans_current', 'gauge', 'Active bans of a jail.', m.jails.map((j) => ({labels: jail(j.name), value: j.currentlyBanned})))
  e.family('spylog_jail_bans_total', 'counter', 'Bans a jail made.', m.jails.map((j) => ({labels: jail(j.name), value: j.totalBanned})))

  e.family('spylog_action_queue_depth', 'gauge', 'Ban and unban jobs waiting in the action queue.', [{value: m.queueDepth}])
  e.family('spylog_action_jobs_total', 'counter', 'Ban and unban jobs an action ran (attempts).', m.actions.map((a) => ({labels: {action: a.name}, value: a.jobs})))
  e.family('spylog_action_failures_total', 'counter', 'Ban and unban jobs of an action that failed.', m.actions.map((a) => ({labels: {action: a.name}, value: a.failures})))
  return e.text()
}

// ---------------------------------------------------------------------------------------------
// HTTP endpoint

export interface MetricsServerOptions {
  readonly target: Pick<ControlTarget, 'metrics'>
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string
  /** Port (0: any free port; read it back from `port`). */
  readonly port: number
  readonly log?: Logger
}

export interface MetricsServer {
  readonly host: string
  readonly port: number
  /** `http://host:port/metrics`. */
  readonly url: string
  close(): Promise<void>
}

/** Content type of the text exposition format 0.0.4. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Serves GET /metrics (and /) with the target's numbers; other paths 404, other methods 405. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1'
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]
    if (url !== '/metrics' && url !== '/') {
      res.writeHead(404, {'content-type': 'text/plain; charset=utf-8'}).end('not found: the metrics are at /metrics\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, {allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8'}).end('method not allowed\n')
      return
    }
    Promise.resolve()
      .then(() => opts.target.metrics())
      .then((m) => {
        const body = renderMetrics(m)
        res.writeHead(200, {'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body)})
        res.end(req.method === 'HEAD' ? undefined : body)
      })
      .catch((e: unknown) => {
        opts.log?.error(`metrics: ${(e as Error).message}`)
        if (!res.headersSent) res.writeHead(500, {'content-type': 'text/plain; charset=utf-8'})
        res.end('metrics unavailable\n')
      })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'EADDRINUSE' ? `metrics: ${host}:${opts.port} is already in use` : `metrics: cannot listen on ${host}:${opts.port}: ${e.message}`)))
    server.listen(opts.port, host, () => resolve())
  })
  server.on('error', (e) => opts.log?.error(`metrics: ${e.message}`))
  const port = (server.address() as AddressInfo).port
  const shown = host.includes(':') ? `[${host}]` : host
  opts.log?.info(`metrics: serving http://${shown}:${port}/metrics`)
  return {
    host,
    port,
    url: `http://${shown}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * Parses `--metrics` values: `HOST:PORT`, `[IPV6]:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
 * Throws an Error naming the value when it is not one of those.
 */
export function parseListenAddress(s: string): {host: string; port: number} {
  const t = s.trim()
  let host = '127.0.0.1'
  let portText = t
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(t)
  if (v6) {
    host = v6[1]!
    portText = v6[2]!
  } else if (t.includes(':')) {
    const i = t.lastIndexOf(':')
    if (t.indexOf(':') !== i) throw new Error(`--metrics ${JSON.stringify(s)}: write an IPv6 address in brackets: [::1]:9180`)
    if (i > 0) host = t.slice(0, i)
    portText = t.slice(i + 1)
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new Error(`--metrics ${JSON.stringify(s)}: expected HOST:PORT (port 0–65535), e.g. 127.0.0.1:9180`)
  return {host, port: Number(portText)}
}
