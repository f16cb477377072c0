/**
 * Helpers shared by the network and process sources: retry delays with back-off, a drop counter
 * that warns once when dropping starts (not once per record), and the record emitter that keeps a
 * source's counters.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import type {Logger} from '../log/logger.js'
import {clip} from '../text.js'
import type {LogRecord} from '../types.js'
import {newStats, type RecordSink, type SourceContext, type SourceStats} from './source.js'

/**
 * The delay before retry number `attempt` (0 for the first): `base`·2^attempt, capped at `max`
 * (any unit). The exponent stops growing long before 2^1024 would make it Infinity (and 0·Infinity
 * NaN), and never before `max` is reached.
 */
export function backoffDelay(base: number, max: number, attempt: number): number {
  return Math.min(max, base * 2 ** Math.min(Math.max(0, attempt), 1000))
}

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

  /**
   * The back-off of a configured restart/reconnect delay in seconds: that delay first (at least
   * 50 ms), doubling up to 5 minutes (or the delay itself when longer).
   */
  static fromSeconds(seconds: number): Backoff {
    return new Backoff(Math.max(50, seconds * 1000))
  }

  /** The delay before the next attempt (and counts the attempt). */
  next(): number {
    const d = backoffDelay(this.base, this.max, this.attempt)
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
    // The reason may quote hostile input (a community string): keep the line short.
    reason = clip(reason, 200)
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

/** A bound UDP socket (resolves once listening; rejects with the bind error, socket closed). */
export function bindUdp(host: string, port: number, onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo) => void, onError: (e: Error) => void): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    // A larger receive buffer absorbs bursts (Linux caps it at net.core.rmem_max silently).
    const sock = dgram.createSocket({type: udpType(host), reuseAddr: false, recvBufferSize: 1 << 20})
    const fail = (e: Error): void => {
      sock.close()
      reject(e)
    }
    sock.once('error', fail)
    sock.bind({port, address: host, exclusive: true}, () => {
      sock.off('error', fail)
      sock.on('error', onError)
      sock.on('message', onMessage)
      resolve(sock)
    })
  })
}

/** A listening TCP server (resolves once listening; rejects with the listen error). */
export function listenTcp(host: string, port: number, maxConnections: number, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({noDelay: true}, onConnection)
    server.maxConnections = maxConnections
    const fail = (e: Error): void => {
      server.close()
      reject(e)
    }
    server.once('error', fail)
    server.listen({port, host, exclusive: true}, () => {
      server.off('error', fail)
      resolve(server)
    })
  })
}

/** Closes a dgram socket or a server (with its connections), ignoring "not running". */
export async function closeQuietly(x: dgram.Socket | net.Server | undefined, conns?: Set<net.Socket>): Promise<void> {
  if (x === undefined) return
  if (conns !== undefined) for (const c of conns) c.destroy()
  await new Promise<void>((resolve) => {
    try {
      if (x instanceof net.Server) x.close(() => resolve())
      else x.close(() => resolve())
    } catch {
      resolve()
    }
  })
}

/** `{address, port}` of a bound socket or server, undefined when not bound. */
export function boundAddress(x: dgram.Socket | net.Server | undefined): {address: string; port: number} | undefined {
  if (x === undefined) return undefined
  try {
    const a = x.address()
    if (a === null || typeof a === 'string') return undefined
    return {address: a.address, port: a.port}
  } catch {
    return undefined
  }
}

/** A start-up failure that retrying cannot cure (the source goes to state 'failed'). */
export class PermanentError extends Error {}

/**
 * The life cycle every network/process source shares: `open()` sets the input up (bind, connect,
 * spawn) and throws when it cannot; a failure sets state 'retrying' with lastError and tries
 * again after a back-off delay (a PermanentError sets 'failed' and is not retried); `stop()` cancels retries and calls `close()`. Nothing is thrown
 * into the pipeline.
 */
export abstract class ManagedSource {
  readonly stats: SourceStats = newStats()
  protected readonly emitter: RecordEmitter
  protected readonly drops: DropCounter
  protected readonly retry = new RetryTimer()
  protected stopped = false
  /** Log prefix: `[name]`. */
  protected readonly label: string

  constructor(
    readonly name: string,
    protected readonly ctx: SourceContext,
    protected readonly backoff: Backoff,
  ) {
    this.label = `[${name}]`
    this.emitter = new RecordEmitter(name, this.stats, ctx.log)
    this.drops = new DropCounter(this.stats, ctx.log, this.label)
  }

  /** Set the input up; throw when that fails (it is retried). */
  protected abstract open(): Promise<void>
  /** Release everything `open()` set up. Must not throw. */
  protected abstract close(): Promise<void>

  async start(sink: RecordSink): Promise<void> {
    this.emitter.sink = sink
    this.stopped = false
    this.stats.state = 'starting'
    await this.attempt()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.retry.cancel()
    await this.close()
    this.stats.state = 'stopped'
  }

  protected async attempt(): Promise<void> {
    if (this.stopped) return
    try {
      await this.open()
      if (this.stopped) {
        await this.close()
        return
      }
      this.stats.state = 'running'
      this.stats.lastError = undefined
    } catch (e) {
      await this.close()
      if (e instanceof PermanentError) {
        this.stats.errors++
        this.stats.lastError = e.message
        this.stats.state = 'failed'
        this.ctx.log.error(`${this.label} cannot start: ${e.message}`)
        return
      }
      this.failed(e)
    }
  }

  /** Record a failure and schedule another attempt. */
  protected failed(e: unknown, what = 'cannot start'): void {
    if (this.stopped) return
    const msg = errorText(e)
    this.stats.errors++
    this.stats.lastError = msg
    this.stats.state = 'retrying'
    const delay = this.backoff.next()
    this.ctx.log.error(`${this.label} ${what}: ${msg}; retrying in ${formatDelay(delay)}`)
    this.retry.schedule(delay, () => void this.attempt())
  }
}

function formatDelay(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`
}
