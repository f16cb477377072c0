/**
 * The systemd journal source (fail2ban `backend = systemd`): runs `journalctl -f -o json` (argv,
 * never a shell) and turns each entry into a record whose text is the line fail2ban's filters
 * expect from the journal, `HOST IDENT[PID]: MESSAGE`:
 *
 * - the host (`_HOSTNAME`), then the identifier (`SYSLOG_IDENTIFIER`, else `_COMM`) with the pid
 *   (`SYSLOG_PID`, else `_PID`) in brackets and a colon, each part only when present;
 * - a kernel entry without pid gets its monotonic time as `[%12.6f]` seconds after `kernel:`;
 * - `MESSAGE` with several values is joined with spaces; newlines in the line become `\n` (a
 *   backslash and an n), so one entry stays one line.
 *
 * The record's `time` is the entry's own time (`_SOURCE_REALTIME_TIMESTAMP` when the sender gave
 * one, else `__REALTIME_TIMESTAMP`, as fail2ban takes it), in seconds.
 *
 * Values that are not valid UTF-8 come from journalctl as byte arrays, fields with several values
 * as arrays; both are decoded (invalid bytes become U+FFFD). Lines that are not JSON objects are
 * counted as errors and skipped. The cursor (`__CURSOR`) of the last entry delivered is saved in
 * the PositionStore under `journal:<name>` (periodically and on stop): a restart, or journalctl
 * exiting and being run again (with back-off), continues with `--after-cursor`.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import type {JournalSource} from '../config/model.js'
import {quoteLine} from '../text.js'
import {RECORD_FIELDS, type LogRecord} from '../types.js'
import {Backoff} from './backoff.js'
import {LineSplitter} from './lines.js'
import {newStats, type RecordSink, type Source, type SourceContext, type SourceStats} from './source.js'

/** Options of the journal source (the executable is configurable for tests and unusual installs). */
export interface JournalSourceOptions {
  /** The journalctl executable (default `journalctl`, found on PATH). */
  readonly journalctl?: string
  /** Extra arguments put before the source's own (e.g. `--directory=…`, `--merge`). */
  readonly extraArgs?: readonly string[]
  /** First and longest restart delay after journalctl exited or failed to start, ms (default 1000 and 60000). */
  readonly restartMinMs?: number
  readonly restartMaxMs?: number
  /** How often a changed cursor is saved, ms (default 5000). */
  readonly saveMs?: number
  /** Longest JSON line accepted, bytes (default 4 MiB): longer entries are dropped. */
  readonly maxEntry?: number
}

/** The position key of a journal source. */
export function journalPositionKey(name: string): string {
  return `journal:${name}`
}

/** journalctl's arguments for a source: follow, JSON, all fields in full, the matches, where to start. */
export function journalctlArgs(cfg: JournalSource, start: {cursor?: string; fromStart?: boolean}, extra: readonly string[] = []): string[] {
  const args = [...extra, '--follow', '--output=json', '--all', '--no-pager', '--quiet']
  if (start.cursor !== undefined) args.push(`--after-cursor=${start.cursor}`)
  else if (start.fromStart === true) args.push('--no-tail')
  else args.push('--lines=0')
  cfg.match.forEach((group, i) => {
    if (i > 0) args.push('+')
    args.push(...group)
  })
  return args
}

/** One value of a journal field in journalctl's JSON: text, or bytes when not valid UTF-8. */
function valueText(v: unknown): string | undefined {
  if (typeof v === 'string') return v
  if (typeof v === 'number') return String(v)
  if (Array.isArray(v) && v.every((b) => typeof b === 'number')) return Buffer.from(v.map((b) => b & 0xff)).toString('utf8')
  return undefined
}

/** All values of a field (a field given several times is an array of values). */
function fieldValues(v: unknown): string[] {
  if (v === undefined || v === null) return []
  const one = valueText(v)
  if (one !== undefined) return [one]
  if (Array.isArray(v)) {
    const out: string[] = []
    for (const x of v) {
      const t = valueText(x)
      if (t !== undefined) out.push(t)
    }
    return out
  }
  return []
}

function first(entry: Record<string, unknown>, name: string): string | undefined {
  const v = fieldValues(entry[name])
  return v.length > 0 && v[0] !== '' ? v[0] : undefined
}

/** Microseconds (decimal text) to seconds; undefined when not a number. */
function usec(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,17}$/.test(v)) return undefined
  return Number(v) / 1e6
}

/** `[%i]` of a pid when it is an integer (decimal, or 0x… hexadecimal), else `[text]`. */
function pidText(v: string): string {
  if (/^[1-9]\d*$|^0$/.test(v)) return `[${v}]`
  if (/^0x[0-9a-f]+$/i.test(v)) return `[${parseInt(v.slice(2), 16)}]`
  return `[${v}]`
}

/** The parts of a parsed journal entry a record is made of. */
export interface JournalEntry {
  readonly text: string
  /** Event time, Unix seconds. */
  readonly time: number | undefined
  readonly cursor: string | undefined
  readonly fields: Record<string, string | number>
}

/**
 * Formats one journal entry (an object from `journalctl -o json`) as fail2ban does; undefined
 * when it is not an object.
 */
export function formatJournalEntry(entry: unknown): JournalEntry | undefined {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return undefined
  const e = entry as Record<string, unknown>
  const parts: string[] = []
  const host = first(e, '_HOSTNAME')
  if (host !== undefined) parts.push(host)
  const ident = first(e, 'SYSLOG_IDENTIFIER') ?? first(e, '_COMM')
  const pid = first(e, 'SYSLOG_PID') ?? first(e, '_PID')
  if (ident !== undefined) {
    let tag = ident
    if (pid !== undefined) tag += pidText(pid)
    tag += ':'
    parts.push(tag)
    if (tag === 'kernel:') {
      const mono = usec(first(e, '_SOURCE_MONOTONIC_TIMESTAMP')) ?? usec(first(e, '__MONOTONIC_TIMESTAMP'))
      if (mono !== undefined) parts.push(`[${mono.toFixed(6).padStart(12)}]`)
    }
  }
  parts.push(fieldValues(e.MESSAGE).join(' '))
  let text = parts.join(' ')
  if (text.includes('\n')) text = text.replace(/\n/g, '\\n')
  const time = usec(first(e, '_SOURCE_REALTIME_TIMESTAMP')) ?? usec(first(e, '__REALTIME_TIMESTAMP'))
  const fields: Record<string, string | number> = {}
  const unit = first(e, '_SYSTEMD_UNIT') ?? first(e, '_SYSTEMD_USER_UNIT')
  if (unit !== undefined) fields[RECORD_FIELDS.unit] = unit
  if (ident !== undefined) fields[RECORD_FIELDS.app] = ident
  if (pid !== undefined) fields[RECORD_FIELDS.pid] = /^\d{1,15}$/.test(pid) ? Number(pid) : pid
  if (host !== undefined) fields[RECORD_FIELDS.host] = host
  const cursor = typeof e.__CURSOR === 'string' ? e.__CURSOR : undefined
  return {text, time, cursor, fields}
}

class JournalSourceImpl implements Source {
  readonly kind = 'journal' as const
  readonly stats: SourceStats = newStats()
  readonly name: string
  private sink: RecordSink = () => undefined
  private child: ChildProcess | undefined
  private cursor: string | undefined
  private savedCursor: string | undefined
  private loaded = false
  private stopping = false
  private restartTimer: NodeJS.Timeout | undefined
  private saveTimer: NodeJS.Timeout | undefined
  private stderrTail = ''
  private readonly exe: string
  private readonly backoff: Backoff
  private readonly saveMs: number
  private readonly maxEntry: number

  constructor(
    private readonly cfg: JournalSource,
    private readonly ctx: SourceContext,
    private readonly opts: JournalSourceOptions,
  ) {
    this.name = cfg.name
    this.exe = opts.journalctl ?? 'journalctl'
    const first = opts.restartMinMs ?? 1000
    this.backoff = new Backoff(first, Math.max(first, opts.restartMaxMs ?? 60_000))
    this.saveMs = opts.saveMs ?? 5000
    this.maxEntry = opts.maxEntry ?? 4 << 20
  }

  async start(sink: RecordSink): Promise<void> {
    if (this.child !== undefined || this.restartTimer !== undefined) return
    this.sink = sink
    this.stopping = false
    this.stats.state = 'starting'
    if (!this.loaded) {
      this.loaded = true
      try {
        const v = await this.ctx.positions.get(journalPositionKey(this.name))
        if (typeof v === 'string' && v !== '') this.cursor = this.savedCursor = v
      } catch (e) {
        this.problem(`reading the saved cursor: ${(e as Error).message}`)
      }
    }
    this.saveTimer = setInterval(() => void this.save(), this.saveMs)
    this.saveTimer.unref()
    await this.spawn()
  }

  /** Runs journalctl; resolves once it runs or failed to start. */
  private spawn(): Promise<void> {
    const args = journalctlArgs(this.cfg, {cursor: this.cursor, fromStart: this.ctx.fromStart}, this.opts.extraArgs)
    this.ctx.log.debug(`journal source ${this.name}: ${this.exe} ${args.join(' ')}`)
    return new Promise<void>((resolve) => {
      let child: ChildProcess
      try {
        child = spawn(this.exe, args, {stdio: ['ignore', 'pipe', 'pipe'], shell: false, windowsHide: true})
      } catch (e) {
        this.exited(`cannot run ${this.exe}: ${(e as Error).message}`)
        resolve()
        return
      }
      this.child = child
      this.stderrTail = ''
      const splitter = new LineSplitter({eol: {text: '\n', pattern: false}, maxLine: this.maxEntry}, (line) => this.onLine(line))
      let cut = 0
      child.stdout!.on('data', (d: Buffer) => {
        this.stats.bytes += d.length
        splitter.push(d)
        if (splitter.truncated !== cut) {
          // An entry longer than maxEntry was cut: its JSON is incomplete, so it is dropped.
          this.stats.drops += splitter.truncated - cut
          cut = splitter.truncated
        }
      })
      child.stderr!.on('data', (d: Buffer) => {
        this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-2000)
      })
      let settled = false
      const recordsBefore = this.stats.records
      child.on('spawn', () => {
        this.stats.state = 'running'
        settled = true
        resolve()
      })
      child.on('error', (e) => {
        // Failed to start (not found, not executable): 'close' may not follow.
        if (this.child === child) {
          this.child = undefined
          this.exited(`cannot run ${this.exe}: ${e.message}`)
        }
        if (!settled) {
          settled = true
          resolve()
        }
      })
      child.on('close', (code, signal) => {
        splitter.flush()
        if (this.child !== child) return
        this.child = undefined
        if (this.stopping) return
        const why = this.stderrTail.trim().split('\n').pop() ?? ''
        if (this.cursor !== undefined && this.stats.records === recordsBefore && /cursor/i.test(this.stderrTail)) {
          // The saved cursor is refused (not a cursor of this journal): continue from the end instead.
          this.ctx.log.warning(`journal source ${this.name}: ${this.exe} refused the saved cursor (${why}); reading new entries only`)
          this.cursor = undefined
        }
        this.exited(`${this.exe} exited (${signal ?? `code ${code}`})${why !== '' ? `: ${why}` : ''}`)
      })
    })
  }

  private onLine(line: string): void {
    if (line.length === 0) return
    let entry: JournalEntry | undefined
    try {
      entry = formatJournalEntry(JSON.parse(line))
    } catch {
      entry = undefined
    }
    if (entry === undefined) {
      this.problem(`not a journal entry from ${this.exe}: ${quoteLine(line, 120)}`)
      return
    }
    const now = Date.now() / 1000
    const rec: LogRecord = {source: this.name, text: entry.text, received: now, fields: entry.fields}
    if (entry.time !== undefined) rec.time = entry.time
    if (entry.cursor !== undefined) this.cursor = entry.cursor
    this.stats.records++
    this.stats.lastRecord = now
    // Output flows: the next restart starts with the short delay again.
    this.backoff.reset()
    try {
      this.sink(rec)
    } catch (e) {
      this.problem(`the record sink threw: ${(e as Error).message}`)
    }
  }

  private problem(message: string): void {
    this.stats.errors++
    if (message !== this.stats.lastError) this.ctx.log.warning(`journal source ${this.name}: ${message}`)
    this.stats.lastError = message
  }

  /** journalctl ended or could not start: retry with back-off, continuing after the last entry. */
  private exited(message: string): void {
    if (this.stopping) return
    const wait = this.backoff.next()
    this.problem(`${message}; retrying in ${Math.round(wait / 1000)} s`)
    this.stats.state = 'retrying'
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined
      if (!this.stopping) void this.spawn()
    }, wait)
    this.restartTimer.unref()
  }

  private async save(): Promise<void> {
    const c = this.cursor
    if (c === undefined || c === this.savedCursor) return
    try {
      await this.ctx.positions.set(journalPositionKey(this.name), c)
      this.savedCursor = c
    } catch (e) {
      this.problem(`saving the cursor: ${(e as Error).message}`)
    }
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer)
    this.restartTimer = undefined
    if (this.saveTimer !== undefined) clearInterval(this.saveTimer)
    this.saveTimer = undefined
    const child = this.child
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
      child.kill('SIGTERM')
      const kill = setTimeout(() => child.kill('SIGKILL'), 3000)
      await closed
      clearTimeout(kill)
    }
    this.child = undefined
    await this.save()
    this.stats.state = 'stopped'
  }
}

/**
 * A journal source: records `{source, text: 'HOST IDENT[PID]: MESSAGE', received, time, fields:
 * {unit, app, pid, host}}` from `journalctl -f -o json`.
 */
export function createJournalSource(cfg: JournalSource, ctx: SourceContext, opts: JournalSourceOptions = {}): Source {
  return new JournalSourceImpl(cfg, ctx, opts)
}
