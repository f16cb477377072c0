/**
 * The Prometheus endpoint scraped over HTTP on loopback and parsed with an independent reader of
 * the text exposition format 0.0.4; the Histogram and the --metrics address parser.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {Histogram, parseListenAddress, startMetricsServer, type MetricsServer} from '../src/engine/control/metrics.js'
import {JAILS, MemoryTarget} from './support/control-target.js'
import {tempTree} from './support/files.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

interface Parsed {
  types: Map<string, string>
  help: Map<string, string>
  samples: Sample[]
}

/** Reads the text format: HELP/TYPE comments, samples with escaped label values. Throws on anything malformed. */
function parseExposition(text: string): Parsed {
  const types = new Map<string, string>()
  const help = new Map<string, string>()
  const samples: Sample[] = []
  expect(text.endsWith('\n'), 'ends with a line feed').to.equal(true)
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line))) {
      help.set(m[1]!, m[2]!)
      continue
    }
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      expect(types.has(m[1]!), `one TYPE line for ${m[1]}`).to.equal(false)
      types.set(m[1]!, m[2]!)
      continue
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    if (m[2] !== undefined) {
      const body = m[2].slice(1, -1)
      let i = 0
      while (i < body.length) {
        const k = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(body.slice(i))
        if (!k) throw new Error(`bad label at ${i} in ${line}`)
        i += k[0].length
        let v = ''
        for (;;) {
          const c = body[i++]
          if (c === undefined) throw new Error(`unterminated label value in ${line}`)
          if (c === '"') break
          if (c === '\\') {
            const e = body[i++]
            if (e === 'n') v += '\n'
            else if (e === '\\' || e === '"') v += e
            else throw new Error(`bad escape \\${e} in ${line}`)
          } else v += c
        }
        labels[k[1]!] = v
        if (body[i] === ',') i++
        else if (i < body.length) throw new Error(`expected , at ${i} in ${line}`)
      }
    }
    const raw = m[3]!
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw)
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value ${raw}`)
    samples.push({name: m[1]!, labels, value})
  }
  return {types, help, samples}
}

function value(p: Parsed, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = p.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  expect(found.length, `${name} ${JSON.stringify(labels)}`).to.be.at.most(1)
  return found[0]?.value
}

describe('metrics endpoint', function () {
  this.timeout(60_000)
  let server: MetricsServer | undefined
  let target: MemoryTarget

  beforeEach(() => {
    const dir = tempTree({'jails.json': JSON.stringify({jails: JAILS})})
    target = new MemoryTarget(path.join(dir, 'jails.json'))
  })
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  async function scrape(): Promise<{res: Response; parsed: Parsed}> {
    const res = await fetch(server!.url)
    expect(res.status).to.equal(200)
    return {res, parsed: parseExposition(await res.text())}
  }

  it('serves the daemon numbers in the text format 0.0.4, every family typed and described', async () => {
    for (let i = 0; i < 3; i++) target.fail('sshd', '192.0.2.7', `Failed password for root from 192.0.2.7 port ${i}`)
    target.fail('sshd', '198.51.100.4', 'Failed password for bob from 198.51.100.4')
    target.miss('sshd', 'Accepted publickey for alice')
    target.ban('recidive', ['203.0.113.0/24'])
    target.queueDepth = 2
    server = await startMetricsServer({target, host: '127.0.0.1', port: 0})
    expect(server.port).to.be.greaterThan(0)
    const {res, parsed} = await scrape()
    expect(res.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8')

    for (const s of parsed.samples) {
      const family = s.name.replace(/_(bucket|sum|count)$/, '')
      const type = parsed.types.get(s.name) ?? parsed.types.get(family)
      expect(type, `TYPE of ${s.name}`).to.not.equal(undefined)
      expect(parsed.help.get(parsed.types.has(s.name) ? s.name : family), `HELP of ${s.name}`).to.be.a('string').and.not.equal('')
      if (type === 'counter') expect(s.name.endsWith('_total'), s.name).to.equal(true)
    }

    expect(value(parsed, 'spylog_source_records_total', {source: 'auth', kind: 'file'})).to.equal(5)
    expect(value(parsed, 'spylog_source_bytes_total', {source: 'auth'})).to.equal(target.sources.get('auth')!.bytes)
    expect(value(parsed, 'spylog_source_up', {source: 'auth'})).to.equal(1)
    expect(value(parsed, 'spylog_filter_lines_total', {filter: 'sshd'})).to.equal(5)
    expect(value(parsed, 'spylog_filter_matched_total', {filter: 'sshd'})).to.equal(4)
    expect(value(parsed, 'spylog_jail_failures_total', {jail: 'sshd'})).to.equal(4)
    expect(value(parsed, 'spylog_jail_failures_current', {jail: 'sshd'})).to.equal(1)
    expect(value(parsed, 'spylog_jail_bans_current', {jail: 'sshd'})).to.equal(1)
    expect(value(parsed, 'spylog_jail_bans_total', {jail: 'recidive'})).to.equal(1)
    expect(value(parsed, 'spylog_action_queue_depth')).to.equal(2)
    expect(value(parsed, 'spylog_action_jobs_total', {action: 'nftables'})).to.equal(1)
    expect(value(parsed, 'spylog_action_failures_total', {action: 'nftables'})).to.equal(0)
    expect(value(parsed, 'spylog_start_time_seconds')).to.equal(target.started)

    // The match-time histogram: cumulative, ascending le, +Inf equal to _count, _sum the observed total.
    expect(parsed.types.get('spylog_filter_match_seconds')).to.equal('histogram')
    const buckets = parsed.samples.filter((s) => s.name === 'spylog_filter_match_seconds_bucket' && s.labels.filter === 'sshd')
    expect(buckets.length).to.be.greaterThan(2)
    const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)))
    for (let i = 1; i < buckets.length; i++) {
      expect(les[i]!).to.be.greaterThan(les[i - 1]!)
      expect(buckets[i]!.value).to.be.at.least(buckets[i - 1]!.value)
    }
    expect(les.at(-1)).to.equal(Infinity)
    expect(buckets.at(-1)!.value).to.equal(5)
    expect(value(parsed, 'spylog_filter_match_seconds_count', {filter: 'sshd'})).to.equal(5)
    expect(value(parsed, 'spylog_filter_match_seconds_sum', {filter: 'sshd'})).to.be.closeTo(target.filters.get('sshd')!.h.snapshot().sum, 1e-12)
  })

  it("is read the same by Prometheus' own parser (python3-prometheus-client)", async () => {
    for (let i = 0; i < 3; i++) target.fail('sshd', '192.0.2.7', 'Failed password')
    target.sources.set('a "quoted"\\ source\nname', {name: 'a "quoted"\\ source\nname', kind: 'file', records: 1, bytes: 2, errors: 3, drops: 4, state: 'running'})
    server = await startMetricsServer({target, port: 0})
    const text = await (await fetch(server.url)).text()
    const script = [
      'import json, sys',
      'from prometheus_client.parser import text_string_to_metric_families',
      'out = []',
      'for fam in text_string_to_metric_families(sys.stdin.read()):',
      '    for s in fam.samples:',
      '        out.append([fam.type, s.name, s.labels, s.value])',
      'print(json.dumps(out))',
    ].join('\n')
    const r = spawnSync('/usr/bin/python3', ['-c', script], {input: text, encoding: 'utf8'})
    expect(r.status, `${r.stderr}\n(the Debian package python3-prometheus-client provides the reference parser)`).to.equal(0)
    const theirs = (JSON.parse(r.stdout) as [string, string, Record<string, string>, number][])
      .map(([, name, labels, v]) => JSON.stringify([name, Object.entries(labels).sort(), v])).sort()
    const ours = parseExposition(text).samples.map((x) => JSON.stringify([x.name, Object.entries(x.labels).sort(), x.value])).sort()
    expect(theirs).to.deep.equal(ours)
    const types = new Map((JSON.parse(r.stdout) as [string, string][]).map(([t, n]) => [n, t]))
    expect(types.get('spylog_jail_bans_total')).to.equal('counter')
    expect(types.get('spylog_filter_match_seconds_bucket')).to.equal('histogram')
    expect(types.get('spylog_action_queue_depth')).to.equal('gauge')
  })

  it('follows the daemon: a new failure and ban show in the next scrape', async () => {
    server = await startMetricsServer({target, port: 0})
    const before = (await scrape()).parsed
    expect(value(before, 'spylog_jail_bans_total', {jail: 'sshd'})).to.equal(0)
    for (let i = 0; i < 3; i++) target.fail('sshd', '192.0.2.9', 'Failed password')
    const after = (await scrape()).parsed
    expect(value(after, 'spylog_jail_bans_total', {jail: 'sshd'})).to.equal(1)
    expect(value(after, 'spylog_jail_failures_total', {jail: 'sshd'})).to.equal(3)
  })

  it('escapes label values (quotes, backslashes, line feeds) so names from the configuration cannot forge samples', async () => {
    const evil = 'we"ird\\name\nspylog_jail_bans_total{jail="x"} 999'
    target.sources.set(evil, {name: evil, kind: 'file', records: 7, bytes: 70, errors: 0, drops: 0, state: 'failed'})
    server = await startMetricsServer({target, port: 0})
    const {parsed} = await scrape()
    expect(value(parsed, 'spylog_source_records_total', {source: evil})).to.equal(7)
    expect(value(parsed, 'spylog_source_up', {source: evil})).to.equal(0)
    expect(value(parsed, 'spylog_jail_bans_total', {jail: 'x'})).to.equal(undefined)
  })

  it('answers 404 elsewhere, 405 to other methods, 500 when the daemon fails, and keeps serving', async () => {
    server = await startMetricsServer({target, port: 0})
    const base = server.url.replace(/\/metrics$/, '')
    expect((await fetch(`${base}/nope`)).status).to.equal(404)
    expect((await fetch(server.url, {method: 'POST', body: 'x'})).status).to.equal(405)
    const head = await fetch(server.url, {method: 'HEAD'})
    expect(head.status).to.equal(200)
    const real = target.metrics.bind(target)
    target.metrics = () => {
      throw new Error('boom')
    }
    expect((await fetch(server.url)).status).to.equal(500)
    target.metrics = real
    await scrape()
  })

  it('reports a port in use clearly', async () => {
    server = await startMetricsServer({target, port: 0})
    let err: Error | undefined
    await startMetricsServer({target, host: '127.0.0.1', port: server.port}).then(async (s) => s.close(), (e: Error) => void (err = e))
    expect(err?.message).to.equal(`metrics: 127.0.0.1:${server.port} is already in use`)
  })
})

describe('Histogram', () => {
  it('counts observations into cumulative buckets with sum and count', () => {
    const h = new Histogram([0.001, 0.01, 0.1])
    for (const x of [0.0005, 0.001, 0.002, 0.05, 0.5, 2]) h.observe(x)
    const s = h.snapshot()
    expect(s.buckets).to.deep.equal([{le: 0.001, count: 2}, {le: 0.01, count: 3}, {le: 0.1, count: 4}])
    expect(s.count).to.equal(6)
    expect(s.sum).to.be.closeTo(2.5535, 1e-12)
    expect(() => new Histogram([1, 1])).to.throw(/ascending/)
  })
})

describe('parseListenAddress', () => {
  it('reads HOST:PORT, [IPV6]:PORT, :PORT and PORT', () => {
    expect(parseListenAddress('127.0.0.1:9180')).to.deep.equal({host: '127.0.0.1', port: 9180})
    expect(parseListenAddress('[::1]:9180')).to.deep.equal({host: '::1', port: 9180})
    expect(parseListenAddress(':9180')).to.deep.equal({host: '127.0.0.1', port: 9180})
    expect(parseListenAddress('9180')).to.deep.equal({host: '127.0.0.1', port: 9180})
    expect(parseListenAddress('0.0.0.0:0')).to.deep.equal({host: '0.0.0.0', port: 0})
    expect(() => parseListenAddress('::1:9180')).to.throw(/IPv6 address in brackets/)
    expect(() => parseListenAddress('localhost:99999')).to.throw(/--metrics "localhost:99999": expected HOST:PORT/)
    expect(() => parseListenAddress('host:')).to.throw(/expected HOST:PORT/)
  })
})
