/**
 * `eventlog:` / `eventlog:local`: this machine's Windows event log, without native code.
 *
 * - Normal mode: one long-running PowerShell worker (resources/windows/eventlog.ps1, protocol in
 *   eventlog-worker.ts) subscribes to the channels the filters select and prints one JSON line
 *   per event. The worker is restarted with back-off when it exits or hangs.
 * - Fallback (PowerShell missing or in Constrained Language Mode, or `mode = 'wevtutil'`): poll
 *   `wevtutil qe <channel> /q:<xpath> /f:RenderedXml /e:Events /uni:true /rd:false /c:500`
 *   every `poll` seconds, with the last record id of each channel as the bookmark.
 *
 * Either way each event becomes a LogRecord whose text is the rendered message, whose time is
 * the event's time and whose fields are event.source/id/channel/record (RECORD_FIELDS) plus the
 * EventData values under their own names. The last record id of each channel is saved in
 * ctx.positions under `eventlog:<channel>` after the record was handed on; on restart the worker
 * subscribes first, catches up from the saved id and the duplicates are dropped here by record id.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import path from 'node:path'
import type {EventLogLocalSource, EventSelector} from '../config/model.js'
import {PACKAGE_ROOT} from '../fsutil.js'
import {RECORD_FIELDS, type LogRecord} from '../types.js'
import {newStats, type RecordSink, type Source, type SourceContext, type SourceStats} from './source.js'
import {backoffDelay} from './backoff.js'
import {RecordMarks, WorkerProcess, type WorkerChannel, type WorkerConfig, type WorkerMessage} from './eventlog-worker.js'

// ---------------------------------------------------------------------------------------------
// Event XML

/** One event, as read from its XML (and the worker's rendered message). */
export interface WinEvent {
  readonly channel: string
  readonly record: number
  /** Unix seconds (fraction kept); undefined when the XML has no usable SystemTime. */
  readonly time: number | undefined
  readonly provider: string
  readonly id: number
  readonly computer?: string
  /** EventData `<Data Name='X'>` values by name (unnamed ones as `Data1`, `Data2`, … by position), or the UserData record's elements. */
  readonly data: Record<string, string>
  /** RenderingInfo/Message (wevtutil /f:RenderedXml), when present. */
  readonly message?: string
}

interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

const MAX_DEPTH = 32
const ENTITIES: Record<string, string> = {lt: '<', gt: '>', amp: '&', quot: '"', apos: "'"}

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s
  return s.replace(/&(#x[0-9a-fA-F]{1,8}|#[0-9]{1,10}|[a-zA-Z]{2,6});/g, (whole, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)
      if (!Number.isFinite(cp) || cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd'
      return String.fromCodePoint(cp)
    }
    return ENTITIES[e] ?? whole
  })
}

function localName(qname: string): string {
  const c = qname.indexOf(':')
  return c < 0 ? qname : qname.slice(c + 1)
}

const NAME = /[^\s/>=]+/y
const ATTR = /\s*([^\s/>=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/y

/**
 * A small, forgiving XML reader for event XML: elements, attributes (either quote), text,
 * entities and character references, CDATA; comments, processing instructions and DOCTYPE are
 * skipped (no entity expansion: nothing in the input can make it do more work than its length).
 * Malformed markup ends the element it is in instead of throwing. Returns the top-level elements.
 */
export function parseXml(xml: string): XmlElement[] {
  const root: XmlElement = {name: '', attrs: {}, children: [], text: ''}
  const stack: XmlElement[] = [root]
  let i = 0
  const n = xml.length
  while (i < n) {
    const lt = xml.indexOf('<', i)
    const top = stack[stack.length - 1]!
    if (lt < 0) {
      top.text += decodeEntities(xml.slice(i))
      break
    }
    if (lt > i) top.text += decodeEntities(xml.slice(i, lt))
    if (xml.startsWith('<!--', lt)) {
      const e = xml.indexOf('-->', lt + 4)
      i = e < 0 ? n : e + 3
      continue
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const e = xml.indexOf(']]>', lt + 9)
      top.text += xml.slice(lt + 9, e < 0 ? n : e)
      i = e < 0 ? n : e + 3
      continue
    }
    if (xml[lt + 1] === '?' || xml[lt + 1] === '!') {
      const e = xml.indexOf('>', lt + 2)
      i = e < 0 ? n : e + 1
      continue
    }
    if (xml[lt + 1] === '/') {
      const e = xml.indexOf('>', lt + 2)
      const name = localName(xml.slice(lt + 2, e < 0 ? n : e).trim())
      // close up to the matching open element; a stray end tag is ignored
      for (let k = stack.length - 1; k > 0; k--) {
        if (stack[k]!.name === name) {
          stack.length = k
          break
        }
      }
      i = e < 0 ? n : e + 1
      continue
    }
    NAME.lastIndex = lt + 1
    const nm = NAME.exec(xml)
    if (!nm) {
      top.text += '<'
      i = lt + 1
      continue
    }
    const el: XmlElement = {name: localName(nm[0]), attrs: {}, children: [], text: ''}
    let j = NAME.lastIndex
    for (;;) {
      ATTR.lastIndex = j
      const a = ATTR.exec(xml)
      if (!a) break
      el.attrs[localName(a[1]!)] = decodeEntities(a[2] ?? a[3] ?? '')
      j = ATTR.lastIndex
    }
    const gt = xml.indexOf('>', j)
    if (gt < 0) break
    const selfClosing = xml[gt - 1] === '/'
    if (stack.length <= MAX_DEPTH) top.children.push(el)
    if (!selfClosing && stack.length <= MAX_DEPTH) stack.push(el)
    else if (!selfClosing) {
      // too deep: skip to the end of this element's text without building it
      stack.push({name: el.name, attrs: {}, children: [], text: ''})
    }
    i = gt + 1
  }
  return root.children
}

function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name)
}

/** `2024-05-14T03:12:45.8123456Z` → Unix seconds (microsecond precision). */
export function parseSystemTime(s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z?$/.exec(s.trim())
  if (!m) return undefined
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)
  if (!Number.isFinite(ms)) return undefined
  const frac = m[7] ? Math.round(Number('0.' + m[7]) * 1e6) / 1e6 : 0
  return ms / 1000 + frac
}

function eventFrom(el: XmlElement): WinEvent | undefined {
  const sys = child(el, 'System')
  if (!sys) return undefined
  const rid = Number(child(sys, 'EventRecordID')?.text.trim())
  const id = Number(child(sys, 'EventID')?.text.trim())
  if (!Number.isSafeInteger(rid) || rid < 0 || !Number.isSafeInteger(id) || id < 0) return undefined
  const data: Record<string, string> = Object.create(null) as Record<string, string>
  const ed = child(el, 'EventData')
  if (ed) {
    let pos = 0
    for (const d of ed.children) {
      if (d.name !== 'Data') continue
      pos++
      const key = d.attrs.Name !== undefined && d.attrs.Name !== '' ? d.attrs.Name : `Data${pos}`
      data[key] = d.text
    }
  }
  const ud = child(el, 'UserData')?.children[0]
  if (ud) for (const d of ud.children) if (d.children.length === 0) data[d.name] = d.text
  const msg = child(child(el, 'RenderingInfo'), 'Message')?.text
  return {
    channel: child(sys, 'Channel')?.text.trim() ?? '',
    record: rid,
    time: parseSystemTime(child(sys, 'TimeCreated')?.attrs.SystemTime),
    provider: child(sys, 'Provider')?.attrs.Name ?? '',
    id,
    computer: child(sys, 'Computer')?.text.trim(),
    data,
    ...(msg !== undefined ? {message: msg} : {}),
  }
}

/**
 * The events of an XML text: one `<Event>`, or several (wevtutil's `/e:Events` root, or events
 * simply concatenated). Elements that are not well-formed events (no record id or event id) are
 * skipped.
 */
export function parseEventXml(xml: string): WinEvent[] {
  const out: WinEvent[] = []
  const visit = (els: XmlElement[], depth: number): void => {
    for (const el of els) {
      if (el.name === 'Event') {
        const ev = eventFrom(el)
        if (ev) out.push(ev)
      } else if (depth < 2) visit(el.children, depth + 1)
    }
  }
  visit(parseXml(xml), 0)
  return out
}

/** wevtutil `/uni:true` output: UTF-16LE (BOM optional); UTF-8 when it does not look like UTF-16. */
export function decodeWevtutil(buf: Buffer): string {
  if (buf.length >= 2 && buf[0] === 0xff && buf[1] === 0xfe) return new TextDecoder('utf-16le').decode(buf.subarray(2))
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return new TextDecoder('utf-8').decode(buf.subarray(3))
  let zeros = 0
  const probe = Math.min(buf.length, 512)
  for (let i = 1; i < probe; i += 2) if (buf[i] === 0) zeros++
  if (probe >= 2 && zeros * 2 >= (probe >> 1) * 0.9) return new TextDecoder('utf-16le').decode(buf)
  return new TextDecoder('utf-8').decode(buf)
}

// ---------------------------------------------------------------------------------------------
// Records

/** Record text when no rendered message is available: the event id, provider and data, one line. */
export function synthesizedText(ev: Pick<WinEvent, 'id' | 'provider' | 'data'>): string {
  let s = `EventID: ${ev.id}; Provider: ${ev.provider}`
  for (const k in ev.data) s += `; ${k}: ${ev.data[k]!.replace(/[\r\n;]+/g, ' ')}`
  return s
}

/** The LogRecord of one event: text = rendered message (CRLF → LF, trailing blanks cut), time = the event's. */
export function eventToRecord(ev: WinEvent, source: string, received: number, message?: string): LogRecord {
  const fields: Record<string, string | number> = {}
  for (const k in ev.data) fields[k] = ev.data[k]!
  fields[RECORD_FIELDS.eventSource] = ev.provider
  fields[RECORD_FIELDS.eventId] = ev.id
  fields[RECORD_FIELDS.eventChannel] = ev.channel
  fields[RECORD_FIELDS.eventRecord] = ev.record
  const msg = (message ?? ev.message ?? '').replace(/\r\n?/g, '\n').trimEnd()
  const text = msg !== '' ? msg : synthesizedText(ev)
  return {source, text, received, ...(ev.time !== undefined ? {time: ev.time} : {}), fields}
}

// ---------------------------------------------------------------------------------------------
// Selectors → channels and queries

/** Classic logs: a selector naming one of these names the channel itself. */
const CLASSIC_CHANNELS = new Set(['application', 'security', 'system', 'setup', 'forwardedevents'])

/** Providers whose channel is known (lua-spylog's `events` names providers: the SNMP trap carries the source name). */
const PROVIDER_CHANNELS: ReadonlyArray<[string, boolean, string]> = [
  ['Microsoft-Windows-Security-Auditing', false, 'Security'],
  ['MSSQLSERVER', false, 'Application'],
  ['MSSQL$', true, 'Application'],
  ['OpenSSH', false, 'OpenSSH/Operational'],
  ['Microsoft-Windows-RemoteDesktopServices-RdpCoreTS', false, 'Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational'],
  ['Microsoft-Windows-TerminalServices-Gateway', false, 'Microsoft-Windows-TerminalServices-Gateway/Operational'],
  ['Microsoft-Windows-SMBServer', false, 'Microsoft-Windows-SMBServer/Security'],
  ['Microsoft-Windows-TerminalServices-LocalSessionManager', false, 'Microsoft-Windows-TerminalServices-LocalSessionManager/Operational'],
  ['Microsoft-Windows-TerminalServices-RemoteConnectionManager', false, 'Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational'],
]

/** One channel's share of the selectors: per selector, the provider (exact, for the query) and ids. */
export interface ChannelQuery {
  readonly channel: string
  /** undefined: every event of the channel. */
  readonly terms: ReadonlyArray<{readonly provider?: string; readonly ids?: readonly number[]}> | undefined
}

/** Whether a selector names a channel (rather than a provider). */
function namesChannel(sel: EventSelector): boolean {
  return sel.channel === undefined && !sel.prefix && (sel.source.includes('/') || CLASSIC_CHANNELS.has(sel.source.toLowerCase()))
}

/**
 * The channels to read for a set of selectors, with what the event log can filter on: event ids
 * and exact provider names. `warn` hears about a provider whose channel had to be guessed.
 */
export function channelQueries(selectors: readonly EventSelector[], warn?: (m: string) => void): ChannelQuery[] {
  const by = new Map<string, {provider?: string; ids?: readonly number[]}[] | undefined>()
  const add = (ch: string, term: {provider?: string; ids?: readonly number[]}): void => {
    const key = [...by.keys()].find((k) => k.toLowerCase() === ch.toLowerCase()) ?? ch
    if (by.has(key) && by.get(key) === undefined) return
    if (term.provider === undefined && term.ids === undefined) return void by.set(key, undefined)
    const list = by.get(key) ?? []
    list.push(term)
    by.set(key, list)
  }
  for (const sel of selectors) {
    const ids = sel.ids && sel.ids.length > 0 ? sel.ids : undefined
    if (namesChannel(sel)) {
      add(sel.source, {ids})
      continue
    }
    let channel = sel.channel
    if (channel === undefined) {
      const s = sel.source.toLowerCase()
      const known = PROVIDER_CHANNELS.find(([p, pre]) => (pre ? s.startsWith(p.toLowerCase()) : s === p.toLowerCase()))
      channel = known?.[2]
      if (channel === undefined && sel.prefix) {
        const anyKnown = PROVIDER_CHANNELS.find(([p]) => p.toLowerCase().startsWith(s))
        channel = anyKnown?.[2]
      }
      if (channel === undefined) {
        channel = 'Application'
        warn?.(`event source ${JSON.stringify(sel.source)}: channel unknown, reading Application (give it with channel = '…' in the selector)`)
      }
    }
    // a provider prefix cannot be queried (no starts-with in event-log XPath): filtered here instead
    add(channel, {provider: sel.prefix ? undefined : sel.source, ids})
  }
  return [...by].map(([channel, terms]) => ({channel, terms}))
}

/** Event-log XPath limits how many terms one query may have; beyond this the ids are filtered here. */
const MAX_XPATH_TERMS = 20

function xpathString(s: string): string {
  // XPath 1.0 string literal: no escapes exist; a name with both quote kinds cannot be written
  if (!s.includes("'")) return `'${s}'`
  if (!s.includes('"')) return `"${s}"`
  return `'${s.replaceAll("'", '')}'`
}

/** The condition inside `System[…]` for a channel's terms; '' for "every event". */
export function systemCondition(q: ChannelQuery): string {
  if (q.terms === undefined) return ''
  const count = q.terms.reduce((n, t) => n + (t.ids?.length ?? 0) + (t.provider ? 1 : 0), 0)
  const useIds = count <= MAX_XPATH_TERMS
  const parts: string[] = []
  for (const t of q.terms) {
    const conds: string[] = []
    if (t.provider !== undefined) conds.push(`Provider[@Name=${xpathString(t.provider)}]`)
    if (useIds && t.ids !== undefined) conds.push(`(${[...new Set(t.ids)].map((id) => `EventID=${id}`).join(' or ')})`)
    if (conds.length === 0) return ''
    parts.push(conds.join(' and '))
  }
  return parts.length === 1 ? parts[0]! : parts.map((p) => `(${p})`).join(' or ')
}

/**
 * The XPath query of a channel: the selectors' condition, optionally only records after a record
 * id and not older than `maxAge` seconds.
 */
export function channelXPath(q: ChannelQuery, opts: {after?: number; maxAge?: number} = {}): string {
  const conds: string[] = []
  const sel = systemCondition(q)
  const more = opts.after !== undefined || (opts.maxAge !== undefined && opts.maxAge > 0)
  if (sel !== '') conds.push(more && sel.includes(' or ') ? `(${sel})` : sel)
  if (opts.after !== undefined) conds.push(`EventRecordID > ${Math.floor(opts.after)}`)
  if (opts.maxAge !== undefined && opts.maxAge > 0) conds.push(`TimeCreated[timediff(@SystemTime) <= ${Math.floor(opts.maxAge * 1000)}]`)
  return conds.length === 0 ? '*' : `*[System[${conds.join(' and ')}]]`
}

/**
 * Whether an event (the fields of its LogRecord) is selected by a filter's `events`: the selector
 * names its channel or its provider (case-insensitive; a trailing `*` matches a prefix) and, when
 * ids are given, its event id is one of them.
 */
export function matchesEventSelectors(selectors: readonly EventSelector[], fields: Readonly<Record<string, string | number>> | undefined): boolean {
  if (fields === undefined) return false
  const id = Number(fields[RECORD_FIELDS.eventId])
  const ch = String(fields[RECORD_FIELDS.eventChannel] ?? '').toLowerCase()
  const pr = String(fields[RECORD_FIELDS.eventSource] ?? '').toLowerCase()
  for (const sel of selectors) {
    if (sel.ids !== undefined && sel.ids.length > 0 && !sel.ids.includes(id)) continue
    const s = sel.source.toLowerCase()
    const nameOk = sel.prefix ? ch.startsWith(s) || pr.startsWith(s) : ch === s || pr === s
    if (!nameOk) continue
    if (sel.channel !== undefined && sel.channel.toLowerCase() !== ch) continue
    return true
  }
  return false
}

// ---------------------------------------------------------------------------------------------
// The source

/** The packaged worker script. */
export const WORKER_SCRIPT: string = path.join(PACKAGE_ROOT, 'resources', 'windows', 'eventlog.ps1')

/** The default worker argv: Windows PowerShell 5.1 by absolute path, the shipped script. */
export function defaultWorkerArgv(cfg: Pick<EventLogLocalSource, 'powershell' | 'worker'>, env: NodeJS.ProcessEnv = process.env): string[] {
  const root = env.SystemRoot ?? env.windir ?? 'C:\\Windows'
  const ps = cfg.powershell ?? path.win32.join(root, 'System32', 'WindowsPowerShell', 'v1.0', 'powershell.exe')
  return [ps, '-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', cfg.worker ?? WORKER_SCRIPT]
}

export interface EventLogSourceOptions {
  /** argv of the worker (default: PowerShell with the packaged script). */
  worker?: string[]
  /** argv prefix of wevtutil (default `wevtutil`); the query arguments are appended. */
  wevtutil?: string[]
  /** The `events` of the filters that read this source. */
  selectors: readonly EventSelector[]
  /** Worker heartbeat, seconds (default 10; 0 turns the hang check off). */
  heartbeat?: number
  /** Restart back-off of the worker: first and longest delay, ms (default 1000 and 60000). */
  backoff?: {first: number; max: number}
  /** Debounce of position saves, ms (default 1000). */
  saveDelay?: number
  /** Environment of the child processes (tests). */
  env?: NodeJS.ProcessEnv
}

/** Counters of the event-log source beyond SourceStats, for status and tests. */
export interface EventLogStats extends SourceStats {
  /** Records dropped because their id was not above the channel's mark (replays, overlaps). */
  duplicates: number
  /** 'worker' or 'wevtutil'. */
  mode: 'worker' | 'wevtutil'
  /** Worker starts so far. */
  workerStarts: number
  /** wevtutil polling rounds completed so far. */
  polls: number
}

const POSITION_PREFIX = 'eventlog:'

class EventLogSourceImpl implements Source {
  readonly kind = 'eventlog' as const
  readonly stats: EventLogStats = {...newStats(), duplicates: 0, mode: 'worker', workerStarts: 0, polls: 0}
  private sink: RecordSink | undefined
  private marks = new RecordMarks()
  /** Per channel, the newest event time delivered since start (tells a cleared log from a replay). */
  private readonly newestTime = new Map<string, number>()
  private readonly queries: ChannelQuery[]
  private worker: WorkerProcess | undefined
  private stopped = false
  private failures = 0
  private restartTimer: NodeJS.Timeout | undefined
  private pollTimer: NodeJS.Timeout | undefined
  private saveTimer: NodeJS.Timeout | undefined
  private saving: Promise<void> = Promise.resolve()
  private polling: Promise<void> | undefined
  private readonly loggedErrors = new Set<string>()
  private readonly pollChildren = new Set<ChildProcess>()

  constructor(
    readonly cfg: EventLogLocalSource,
    private readonly ctx: SourceContext,
    private readonly opts: EventLogSourceOptions,
  ) {
    this.queries = channelQueries(opts.selectors, (m) => ctx.log.warning(`[${cfg.name}] ${m}`))
  }

  get name(): string {
    return this.cfg.name
  }

  async start(sink: RecordSink): Promise<void> {
    this.sink = sink
    this.stopped = false
    const saved: [string, number][] = []
    for (const q of this.queries) {
      const v = await this.ctx.positions.get(POSITION_PREFIX + q.channel)
      const rid = typeof v === 'number' ? v : typeof v === 'object' && v !== null && typeof (v as {record?: unknown}).record === 'number' ? (v as {record: number}).record : undefined
      if (rid !== undefined && Number.isSafeInteger(rid) && rid >= 0) saved.push([q.channel, rid])
    }
    this.marks = new RecordMarks(saved)
    if (this.queries.length === 0) {
      this.fail('no filter selects events of this source (events = {…})', 'failed')
      return
    }
    const platform = this.ctx.platform ?? process.platform
    if (platform !== 'win32' && this.opts.worker === undefined && this.opts.wevtutil === undefined) {
      this.fail(`the event log exists only on Windows (platform ${platform})`, 'failed')
      return
    }
    if (this.cfg.mode === 'wevtutil') this.startPolling('mode = wevtutil')
    else this.startWorker()
  }

  private fail(reason: string, state: 'failed' | 'retrying'): void {
    this.stats.lastError = reason
    this.stats.state = state
    if (!this.loggedErrors.has(reason)) {
      if (this.loggedErrors.size >= 64) this.loggedErrors.clear()
      this.loggedErrors.add(reason)
      this.ctx.log.error(`[${this.cfg.name}] ${reason}`)
    }
  }

  // --- worker mode ---------------------------------------------------------------------------

  private workerConfig(): WorkerConfig {
    const channels: WorkerChannel[] = this.queries.map((q) => {
      const after = this.marks.get(q.channel)
      const catchAll = channelXPath(q, {maxAge: this.cfg.maxAge})
      return {
        ch: q.channel,
        live: channelXPath(q),
        catchup: after !== undefined ? channelXPath(q, {after, maxAge: this.cfg.maxAge}) : this.ctx.fromStart ? catchAll : null,
        reset: after !== undefined ? catchAll : null,
        after: after ?? null,
      }
    })
    return {v: 1, parent: process.pid, heartbeat: this.opts.heartbeat ?? 10, render: this.cfg.render, channels}
  }

  private startWorker(): void {
    if (this.stopped) return
    this.stats.mode = 'worker'
    this.stats.workerStarts++
    let hello = false
    const argv = this.opts.worker ?? defaultWorkerArgv(this.cfg, this.opts.env)
    const w = new WorkerProcess(argv, this.workerConfig(), {
      message: (m) => {
        if (m.type === 'hello') {
          hello = true
          this.failures = 0
          this.stats.state = 'running'
          this.stats.lastError = undefined
        }
        this.onMessage(m)
      },
      junk: (reason, line) => {
        this.stats.errors++
        if (this.ctx.log.enabled('debug')) this.ctx.log.debug(`[${this.cfg.name}] worker line ignored (${reason}): ${line.slice(0, 200)}`)
      },
      stderr: (line) => this.ctx.log.warning(`[${this.cfg.name}] worker: ${line.slice(0, 500)}`),
      exit: (reason, spawnError) => {
        if (this.worker === w) this.worker = undefined
        if (this.stopped || this.stats.mode !== 'worker') return
        this.failures++
        if (spawnError && this.cfg.mode === 'auto') return this.startPolling(`PowerShell cannot run (${reason})`)
        if (!hello && this.cfg.mode === 'auto' && this.failures >= 3) return this.startPolling(`the worker failed ${this.failures} times before it started (${reason})`)
        this.stats.errors++
        const b = this.opts.backoff ?? {first: 1000, max: 60000}
        const delay = backoffDelay(b.first, b.max, this.failures - 1)
        this.fail(`${reason}; restarting in ${Math.round(delay / 100) / 10} s`, 'retrying')
        this.restartTimer = setTimeout(() => this.startWorker(), delay)
      },
    }, this.opts.env)
    this.worker = w
    w.start()
  }

  private onMessage(m: WorkerMessage): void {
    switch (m.type) {
      case 'event': {
        const message = m.msg
        let ev: WinEvent | undefined
        if (m.xml !== undefined) ev = parseEventXml(m.xml)[0]
        ev ??= {channel: m.ch, record: m.rid, time: parseSystemTime(m.t), provider: m.provider ?? '', id: m.id ?? 0, data: m.data ?? {}}
        // the framing fields of the line win: they are what the dedup is keyed on
        ev = {...ev, channel: m.ch, record: m.rid, time: ev.time ?? parseSystemTime(m.t)}
        this.deliver(ev, message)
        break
      }
      case 'reset':
        this.ctx.log.warning(`[${this.cfg.name}] channel ${m.ch} was cleared (newest record ${m.last ?? 'none'} is below the saved ${this.marks.get(m.ch) ?? 0}): reading it from its start`)
        this.marks.reset(m.ch)
        this.scheduleSave()
        break
      case 'caughtup':
        if (this.ctx.log.enabled('debug')) this.ctx.log.debug(`[${this.cfg.name}] ${m.ch}: caught up (newest record ${m.last ?? 'none'})`)
        break
      case 'error':
        this.stats.errors++
        this.ctx.log.warning(`[${this.cfg.name}] ${m.ch !== undefined ? `channel ${m.ch}: ` : ''}${m.message.slice(0, 500)}`)
        break
      case 'fatal':
        this.ctx.log.warning(`[${this.cfg.name}] worker: ${m.message.slice(0, 500)}`)
        if (m.fallback && this.cfg.mode === 'auto') {
          const w = this.worker
          this.worker = undefined
          void w?.stop()
          this.startPolling(m.message)
        }
        break
      case 'hello':
      case 'hb':
        break
    }
  }

  /** Hands on one event unless its record id is not above the channel's mark. */
  private deliver(ev: WinEvent, message: string | undefined): void {
    if (this.stopped || this.sink === undefined) return
    const lower = ev.channel.toLowerCase()
    const q = this.queries.find((x) => x.channel.toLowerCase() === lower)
    if (q === undefined) {
      this.stats.drops++
      return
    }
    const ch = q.channel
    const newest = this.newestTime.get(ch)
    if (!this.marks.accept(ch, ev.record)) {
      // A record at or below the mark is a replay, whose time was seen already; one newer than
      // every record seen means the log was cleared while we read it (ids start again at 1).
      if (newest === undefined || ev.time === undefined || ev.time <= newest) {
        this.stats.duplicates++
        return
      }
      this.ctx.log.warning(`[${this.cfg.name}] channel ${ch} was cleared (record ${ev.record} is newer than record ${this.marks.get(ch)}): reading it from its start`)
      this.marks.reset(ch)
      this.marks.accept(ch, ev.record)
    }
    if (ev.time !== undefined && (newest === undefined || ev.time > newest)) this.newestTime.set(ch, ev.time)
    const now = Date.now() / 1000
    const rec = eventToRecord({...ev, channel: ch}, this.cfg.name, now, message)
    if (!matchesEventSelectors(this.opts.selectors, rec.fields)) {
      // the query could not express this selector exactly (provider prefix, many ids)
      this.scheduleSave()
      return
    }
    this.stats.records++
    this.stats.bytes += rec.text.length
    this.stats.lastRecord = now
    try {
      this.sink(rec)
    } catch (e) {
      this.stats.errors++
      this.ctx.log.error(`[${this.cfg.name}] record sink failed: ${(e as Error).message}`)
    }
    this.scheduleSave()
  }

  private scheduleSave(): void {
    if (this.saveTimer !== undefined) return
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined
      void this.save()
    }, this.opts.saveDelay ?? 1000)
  }

  private save(): Promise<void> {
    const dirty = this.marks.takeDirty()
    if (dirty.length === 0) return this.saving
    this.saving = this.saving.then(async () => {
      for (const [ch, rid] of dirty) {
        try {
          await this.ctx.positions.set(POSITION_PREFIX + ch, rid)
        } catch (e) {
          this.ctx.log.error(`[${this.cfg.name}] cannot save the position of ${ch}: ${(e as Error).message}`)
        }
      }
    })
    return this.saving
  }

  // --- wevtutil fallback ---------------------------------------------------------------------

  private startPolling(why: string): void {
    if (this.stopped) return
    this.stats.mode = 'wevtutil'
    this.ctx.log.warning(`[${this.cfg.name}] reading the event log with wevtutil every ${this.cfg.poll} s: ${why}`)
    const tick = async (): Promise<void> => {
      for (const q of this.queries) {
        if (this.stopped) return
        if (this.marks.get(q.channel) === undefined && !this.ctx.fromStart) {
          // start at the end: the newest record of the channel (0: empty) becomes the mark;
          // when wevtutil failed (no such channel yet), the next round tries again
          const newest = await this.wevtutil(q.channel, '*', ['/rd:true', '/c:1'])
          if (newest === undefined) continue
          this.marks.accept(q.channel, newest[0]?.record ?? 0)
          this.scheduleSave()
          continue
        }
        await this.pollChannel(q)
      }
    }
    const loop = async (): Promise<void> => {
      this.polling = tick().catch((e: unknown) => this.fail(`wevtutil: ${(e as Error).message}`, 'retrying'))
      await this.polling
      this.polling = undefined
      this.stats.polls++
      if (!this.stopped) this.pollTimer = setTimeout(() => void loop(), this.cfg.poll * 1000)
    }
    void loop()
  }

  private async pollChannel(q: ChannelQuery): Promise<void> {
    for (let round = 0; round < 20 && !this.stopped; round++) {
      const after = this.marks.get(q.channel)
      const xpath = channelXPath(q, {after, maxAge: this.cfg.maxAge})
      const events = await this.wevtutil(q.channel, xpath, ['/rd:false', '/c:500'])
      if (events === undefined) return
      if (after !== undefined && events.length === 0 && round === 0) {
        // a cleared log: its newest record is below the mark
        const newest = await this.wevtutil(q.channel, '*', ['/rd:true', '/c:1'])
        if (newest !== undefined && newest.length > 0 && newest[0]!.record < after) {
          this.ctx.log.warning(`[${this.cfg.name}] channel ${q.channel} was cleared: reading it from its start`)
          this.marks.reset(q.channel)
          continue
        }
      }
      for (const ev of events.sort((a, b) => a.record - b.record)) this.deliver({...ev, channel: ev.channel || q.channel}, undefined)
      if (this.stats.state !== 'running') {
        this.stats.state = 'running'
        this.stats.lastError = undefined
      }
      if (events.length < 500) return
    }
  }

  /** One `wevtutil qe` run; undefined when it failed (logged). */
  private wevtutil(channel: string, xpath: string, extra: string[]): Promise<WinEvent[] | undefined> {
    const prefix = this.opts.wevtutil ?? ['wevtutil']
    const args = [...prefix.slice(1), 'qe', channel, `/q:${xpath}`, this.cfg.render ? '/f:RenderedXml' : '/f:xml', '/e:Events', '/uni:true', ...extra]
    return new Promise((resolve) => {
      let child: ChildProcess
      try {
        child = spawn(prefix[0]!, args, {shell: false, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, env: this.opts.env ?? process.env})
      } catch (e) {
        this.fail(`cannot run wevtutil: ${(e as Error).message}`, 'retrying')
        return resolve(undefined)
      }
      this.pollChildren.add(child)
      const out: Buffer[] = []
      let size = 0
      let errText = ''
      child.stdout!.on('data', (b: Buffer) => {
        size += b.length
        if (size <= 64 << 20) out.push(b)
      })
      child.stderr!.on('data', (b: Buffer) => {
        if (errText.length < 2000) errText += b.toString('utf8')
      })
      child.on('error', (e) => {
        this.pollChildren.delete(child)
        this.fail(`cannot run wevtutil: ${e.message}`, 'retrying')
        resolve(undefined)
      })
      child.on('close', (code) => {
        this.pollChildren.delete(child)
        if (code !== 0) {
          this.stats.errors++
          this.fail(`wevtutil qe ${channel} failed (status ${code}): ${errText.replace(/\s+/g, ' ').trim().slice(0, 300)}`, 'retrying')
          return resolve(undefined)
        }
        resolve(parseEventXml(decodeWevtutil(Buffer.concat(out))))
      })
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.restartTimer) clearTimeout(this.restartTimer)
    if (this.pollTimer) clearTimeout(this.pollTimer)
    const w = this.worker
    this.worker = undefined
    for (const c of this.pollChildren) c.kill('SIGKILL')
    await Promise.all([w?.stop(), this.polling])
    if (this.saveTimer) {
      clearTimeout(this.saveTimer)
      this.saveTimer = undefined
    }
    await this.save()
    this.stats.state = 'stopped'
  }
}

/**
 * The native event-log source (`eventlog:` / `eventlog:local`). `opts.selectors` are the
 * `events` of the filters reading it (they decide the channels and the queries); `opts.worker`
 * replaces the worker argv (default PowerShell 5.1 with resources/windows/eventlog.ps1).
 */
export function createEventLogSource(cfg: EventLogLocalSource, ctx: SourceContext, opts: EventLogSourceOptions): Source & {readonly stats: EventLogStats} {
  return new EventLogSourceImpl(cfg, ctx, opts)
}
