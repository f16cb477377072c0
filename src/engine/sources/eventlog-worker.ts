/**
 * The event-log worker: a long-running child process (the shipped PowerShell script
 * resources/windows/eventlog.ps1 on Windows, a stand-in that replays recorded fixtures in the
 * tests) that subscribes to event-log channels and prints one JSON object per line.
 *
 * Protocol (version 1):
 *
 *   spylog → worker, one JSON line on stdin, then stdin stays open (closing it asks the worker
 *   to exit):
 *     {"v":1, "parent":<spylog's pid>, "heartbeat":10, "render":true, "channels":[
 *       {"ch":"Security", "live":"<xpath>", "catchup":"<xpath>"|null, "reset":"<xpath>"|null, "after":1893421|null}]}
 *   `live` is the subscription query, `catchup` the query for records written while spylog was
 *   down (`EventRecordID > after`, not older than max_age), `reset` the same without the record
 *   bound, for a channel that was cleared (its newest record id is below `after`).
 *
 *   worker → spylog, one JSON object per line on stdout:
 *     {"type":"hello", "v":1, "mode":"FullLanguage", "ps":"5.1…"}   once, after the config was read
 *     {"type":"event", "ch":…, "rid":…, "t":"<SystemTime>", "provider":…, "id":…, "xml":"<Event…>", "msg":"…"}
 *       (the EventData values are read from `xml`; a worker may send them as "data":{name:value} instead)
 *     {"type":"reset", "ch":…, "last":<newest rid>}     the channel was cleared: forget the mark
 *     {"type":"caughtup", "ch":…, "last":<newest rid>}  catch-up of one channel done
 *     {"type":"hb"}                                      heartbeat (every `heartbeat` seconds)
 *     {"type":"error", "ch":…, "message":…}              one channel failed (missing, no access)
 *     {"type":"fatal", "fallback":true, "message":…}     the worker cannot work here (Constrained
 *                                                        Language Mode…): use wevtutil instead
 *
 * Order of work in the worker: subscribe first (events are buffered), then catch up per channel
 * (oldest first), then drain the buffer. The buffer may repeat records the catch-up already
 * printed, and a restarted worker may repeat what its predecessor printed; the Node side drops
 * every record whose id is not above the channel's mark (RecordMarks), so nothing is counted
 * twice and nothing is skipped.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {LineSplitter} from './lines.js'

/** One channel the worker reads. */
export interface WorkerChannel {
  readonly ch: string
  readonly live: string
  readonly catchup: string | null
  readonly reset: string | null
  readonly after: number | null
}

export interface WorkerConfig {
  readonly v: 1
  /** spylog's process id: the worker exits when that process is gone. */
  readonly parent?: number
  readonly heartbeat: number
  readonly render: boolean
  readonly channels: readonly WorkerChannel[]
}

/** An event line as the worker sends it (validated). */
export interface WorkerEvent {
  readonly type: 'event'
  readonly ch: string
  readonly rid: number
  readonly t?: string
  readonly provider?: string
  readonly id?: number
  readonly xml?: string
  /** EventData values by name, for a worker that sends them itself instead of `xml`. */
  readonly data?: Readonly<Record<string, string>>
  readonly msg?: string
}

export type WorkerMessage =
  | WorkerEvent
  | {readonly type: 'hello'; readonly mode?: string; readonly ps?: string}
  | {readonly type: 'reset' | 'caughtup'; readonly ch: string; readonly last: number | null}
  | {readonly type: 'hb'}
  | {readonly type: 'error'; readonly ch?: string; readonly message: string}
  | {readonly type: 'fatal'; readonly fallback: boolean; readonly message: string}

const MAX_TEXT = 1 << 20
/** Seconds a worker may take to print its first line (PowerShell starts slowly on a busy machine). */
const STARTUP_GRACE = 60

function str(v: unknown, max = MAX_TEXT): string | undefined {
  return typeof v === 'string' && v.length <= max ? v : undefined
}

function recordId(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined
}

/**
 * Parses one worker line. Anything that is not a well-formed message of the protocol (junk,
 * a truncated line, wrong types) gives a reason string instead; nothing throws.
 */
export function parseWorkerLine(line: string): WorkerMessage | string {
  const text = line.trim()
  if (text === '') return 'empty line'
  if (text[0] !== '{') return 'not a JSON object'
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch {
    return 'invalid JSON'
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a JSON object'
  const m = o as Record<string, unknown>
  switch (m.type) {
    case 'event': {
      const ch = str(m.ch, 512)
      const rid = recordId(m.rid)
      if (ch === undefined || ch === '' || rid === undefined) return 'event without channel or record id'
      const id = recordId(m.id)
      let data: Record<string, string> | undefined
      if (typeof m.data === 'object' && m.data !== null && !Array.isArray(m.data)) {
        data = Object.create(null) as Record<string, string>
        let n = 0
        for (const [k, v] of Object.entries(m.data as Record<string, unknown>)) {
          if (++n > 256) break
          if (typeof v === 'string' && k.length <= 256) data[k] = v.slice(0, 65536)
          else if (typeof v === 'number' && Number.isFinite(v)) data[k] = String(v)
        }
      }
      return {type: 'event', ch, rid, t: str(m.t, 64), provider: str(m.provider, 512), id, xml: str(m.xml), data, msg: str(m.msg)}
    }
    case 'hello':
      return {type: 'hello', mode: str(m.mode, 64), ps: str(m.ps, 64)}
    case 'reset':
    case 'caughtup': {
      const ch = str(m.ch, 512)
      if (ch === undefined) return `${m.type} without channel`
      return {type: m.type, ch, last: recordId(m.last) ?? null}
    }
    case 'hb':
      return {type: 'hb'}
    case 'error':
      return {type: 'error', ch: str(m.ch, 512), message: str(m.message, 4096) ?? 'unknown error'}
    case 'fatal':
      return {type: 'fatal', fallback: m.fallback === true, message: str(m.message, 4096) ?? 'unknown error'}
    default:
      return 'unknown message type'
  }
}

/**
 * The per-channel high-water marks: the id of the last record delivered. A record is new when
 * its id is above the mark; record ids of a channel only grow until the log is cleared.
 */
export class RecordMarks {
  private readonly marks = new Map<string, number>()
  /** Channels whose mark changed since the last `takeDirty`. */
  private readonly dirty = new Set<string>()

  constructor(initial?: Iterable<[string, number]>) {
    if (initial) for (const [ch, rid] of initial) this.marks.set(ch, rid)
  }

  get(ch: string): number | undefined {
    return this.marks.get(ch)
  }

  /** Whether the record is new; if so it becomes the mark. */
  accept(ch: string, rid: number): boolean {
    const last = this.marks.get(ch)
    if (last !== undefined && rid <= last) return false
    this.marks.set(ch, rid)
    this.dirty.add(ch)
    return true
  }

  /** The channel was cleared: any record id is new again. */
  reset(ch: string): void {
    if (!this.marks.has(ch)) return
    this.marks.set(ch, 0)
    this.dirty.add(ch)
  }

  takeDirty(): [string, number][] {
    const out: [string, number][] = []
    for (const ch of this.dirty) out.push([ch, this.marks.get(ch)!])
    this.dirty.clear()
    return out
  }

  entries(): [string, number][] {
    return [...this.marks]
  }
}

export interface WorkerHandlers {
  /** A valid protocol message. */
  message(m: WorkerMessage): void
  /** A line that is not a valid message (counted, logged at debug level). */
  junk(reason: string, line: string): void
  /** Something the worker wrote to stderr (one line). */
  stderr(line: string): void
  /** The worker ended (exit, spawn failure, or killed for a missed heartbeat). */
  exit(reason: string, spawnError: boolean): void
}

/**
 * One run of the worker process: spawned with an argv array (no shell), the configuration written
 * to its stdin, stdout cut into lines and parsed. When `heartbeat` seconds × 3 pass without any
 * line (at least 60 s before the first line), the process is killed (a hung worker) and `exit` is
 * reported.
 */
export class WorkerProcess {
  private child: ChildProcess | undefined
  private timer: NodeJS.Timeout | undefined
  private lastLine = Date.now()
  /** Whether the worker printed anything yet (PowerShell's start-up gets a longer grace). */
  private spoke = false
  private ended = false
  private killedReason: string | undefined

  constructor(
    private readonly argv: readonly string[],
    private readonly config: WorkerConfig,
    private readonly handlers: WorkerHandlers,
    private readonly env?: NodeJS.ProcessEnv,
  ) {}

  start(): void {
    const [cmd, ...args] = this.argv
    let child: ChildProcess
    try {
      child = spawn(cmd!, args, {shell: false, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true, env: this.env ?? process.env})
    } catch (e) {
      this.finish(`cannot start ${cmd}: ${(e as Error).message}`, true)
      return
    }
    this.child = child
    const out = new LineSplitter({maxLine: MAX_TEXT * 2}, (line) => {
      this.lastLine = Date.now()
      this.spoke = true
      const m = parseWorkerLine(line)
      if (typeof m === 'string') this.handlers.junk(m, line)
      else this.handlers.message(m)
    })
    const err = new LineSplitter({maxLine: 4096}, (line) => {
      if (line.trim() !== '') this.handlers.stderr(line)
    })
    child.stdout!.on('data', (b: Buffer) => out.push(b))
    child.stderr!.on('data', (b: Buffer) => err.push(b))
    child.stdin!.on('error', () => {})
    let spawnError: Error | undefined
    child.on('error', (e) => {
      spawnError = e
      // 'close' may not follow a failed spawn on every Node version
      if (child.pid === undefined) this.finish(`cannot start ${cmd}: ${e.message}`, true)
    })
    child.on('close', (code, signal) => {
      out.flush()
      err.flush()
      if (spawnError && child.pid === undefined) return this.finish(`cannot start ${cmd}: ${spawnError.message}`, true)
      this.finish(this.killedReason ?? (signal ? `worker killed by ${signal}` : `worker exited with status ${code}`), false)
    })
    child.stdin!.write(JSON.stringify(this.config) + '\n')
    const hb = this.config.heartbeat
    if (hb > 0) {
      this.timer = setInterval(() => {
        const limit = this.spoke ? hb * 3 : Math.max(hb * 3, STARTUP_GRACE)
        if (Date.now() - this.lastLine > limit * 1000) {
          this.killedReason = `no output for ${Math.round(limit * 10) / 10} s (${this.spoke ? 'worker hung' : 'worker did not start'}): killed`
          this.kill()
        }
      }, Math.min(hb * 1000, 5000))
      this.timer.unref()
    }
  }

  private finish(reason: string, spawnError: boolean): void {
    if (this.ended) return
    this.ended = true
    if (this.timer) clearInterval(this.timer)
    this.handlers.exit(reason, spawnError)
  }

  private kill(): void {
    const c = this.child
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }

  /** Ask the worker to exit (stdin closed), kill it if it does not within `graceMs`; resolves when it is gone. */
  async stop(graceMs = 3000): Promise<void> {
    const c = this.child
    if (this.timer) clearInterval(this.timer)
    if (!c || this.ended || c.exitCode !== null || c.signalCode !== null) {
      this.ended = true
      return
    }
    this.ended = true
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => c.kill('SIGKILL'), graceMs)
      c.once('close', () => {
        clearTimeout(t)
        resolve()
      })
      c.stdin?.end()
      c.kill('SIGTERM')
    })
  }
}
