/**
 * Helpers shared by the network and process sources: retry delays with back-off, a drop counter
 * that warns once when dropping starts (not once per record), and the record emitter that keeps a
 * source's counters.
 */
import type {Logger} from '../log/logger.js'
import type {LogRecord} from '../types.js'
import type {RecordSink, SourceStats} from './source.js'

/**
 * Exponential back-off: `base`, 2·base, 4·base … capped at `max` (milliseconds). `reset()` after
 * a success so that the next failure starts again from `base`.
 */
export class Backoff {
  private attempt = 0
  constructor(
    readonly base: number,
    readonly max: number = Math.max(base, 300_000),
  ) {}

  /** The delay before the next attempt (and counts the attempt). */
  next(): number {
    const d = Math.min(this.max, this.base * 2 ** Math.min(this.attempt, 20))
    this.attempt++
    return d
  }

  reset(): void {
    this.attempt = 0
  }

  get attempts(): number {
    return this.attempt
  }
}

/**
 * Counts dropped input into `stats.drops`. The first drop after a quiet spell logs one warning;
 * further drops are only counted until `quietMs` pass without one, then the next drop warns again
 * (with the number dropped meanwhile), so hostile floods cannot flood spylog's own log.
 */
export class DropCounter {
  private dropping = false
  private lastDrop = 0
  private since = 0

  constructor(
    private readonly stats: SourceStats,
    private readonly log: Logger,
    private readonly label: string,
    private readonly quietMs = 60_000,
  ) {}

  drop(reason: string, n = 1, now = Date.now()): void {
    this.stats.drops += n
    if (this.dropping && now - this.lastDrop < this.quietMs) {
      this.since += n
      this.lastDrop = now
      return
    }
    const before = this.since
    this.dropping = true
    this.lastDrop = now
    this.since = n
    this.log.warning(`${this.label} dropping input: ${reason}${before > 0 ? ` (${before} dropped in the previous spell)` : ''}; further drops are counted without warning`)
  }
}

/** Builds records for one source and keeps its counters (records, bytes, lastRecord). */
export class RecordEmitter {
  sink: RecordSink | undefined

  constructor(
    readonly name: string,
    readonly stats: SourceStats,
    private readonly log: Logger,
  ) {}

  /**
   * Deliver one record. `bytes` is the input size it came from (counted even when no sink is
   * set). A sink that throws is a bug of the pipeline: it is counted as an error and logged, never
   * propagated into the socket or process handlers.
   */
  emit(text: string, fields?: LogRecord['fields'], time?: number, bytes = text.length): void {
    const received = Date.now() / 1000
    this.stats.bytes += bytes
    this.stats.records++
    this.stats.lastRecord = received
    const sink = this.sink
    if (sink === undefined) return
    const r: LogRecord = {source: this.name, text, received}
    if (time !== undefined) r.time = time
    if (fields !== undefined) r.fields = fields
    try {
      sink(r)
    } catch (e) {
      this.stats.errors++
      this.log.error(`[${this.name}] record sink failed: ${(e as Error).message}`)
    }
  }
}

/** A short text for an error (errno code and message) for status and logs. */
export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code
    return code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message
  }
  return String(e)
}

/** The socket family of a bind/connect host (`udp6` for an IPv6 literal). */
export function udpType(host: string): 'udp4' | 'udp6' {
  return host.includes(':') ? 'udp6' : 'udp4'
}

/** A cancellable timer for retries and restarts. */
export class RetryTimer {
  private t: NodeJS.Timeout | undefined
  schedule(ms: number, fn: () => void): void {
    this.cancel()
    this.t = setTimeout(() => {
      this.t = undefined
      fn()
    }, ms)
  }
  cancel(): void {
    if (this.t !== undefined) clearTimeout(this.t)
    this.t = undefined
  }
  get pending(): boolean {
    return this.t !== undefined
  }
}
