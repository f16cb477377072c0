/**
 * `esl:[password@]host[:port]`: FreeSWITCH's log over its event socket (mod_event_socket, inbound).
 *
 * The exchange, as FreeSWITCH documents it: the server greets with `Content-Type: auth/request`;
 * we send `auth <password>` and get a `command/reply` with `Reply-Text: +OK accepted` (or `-ERR …`
 * and a disconnect); we send `log <LEVEL>` (+OK). From then on each log line arrives as a
 * `Content-Type: log/data` frame whose `Content-Length` body is the line, with `Log-Level`,
 * `Log-File`, `Log-Func`, `Log-Line`, `Text-Channel` and `User-Data` headers. Frames are header
 * lines ending with an empty line, followed by `Content-Length` bytes of body when that header is
 * present.
 *
 * Each line of a log/data body is a record (console-level lines, `Log-Level: 0`, are skipped as
 * lua-spylog does); fields: `severity` (the FreeSWITCH level number), `esl.file`, `esl.func`,
 * `esl.line`, `esl.channel`, `esl.uuid` (User-Data). A refused password, a lost connection or a
 * disconnect notice leaves the source 'retrying' and it connects again after `reconnect` seconds
 * (doubling on repeated failures, up to 5 minutes).
 */
import net from 'node:net'
import {TextDecoder} from 'node:util'
import type {EslSource} from '../config/model.js'
import {quoteLine} from '../text.js'
import {RECORD_FIELDS} from '../types.js'
import {Backoff, ManagedSource} from './backoff.js'
import type {Source, SourceContext} from './source.js'

/** One ESL frame: headers (names as sent) and the body, when Content-Length announced one. */
export interface EslFrame {
  headers: Record<string, string>
  body?: Buffer
}

/** Longest header block accepted (bytes). */
const MAX_HEADERS = 64 * 1024
/** Largest body accepted (bytes); a log line is far smaller. */
const MAX_BODY = 4 * 1024 * 1024

/**
 * Cuts an ESL byte stream into frames. A protocol violation (header block or body too large, a
 * bad Content-Length) is reported once through `onError`; the parser then ignores further input
 * (the connection should be dropped).
 */
export class EslParser {
  private buf: Buffer = Buffer.alloc(0)
  private pending: Record<string, string> | undefined
  private need = 0
  broken: string | undefined

  constructor(
    private readonly onFrame: (f: EslFrame) => void,
    private readonly onError: (reason: string) => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    if (this.broken !== undefined) return
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    let pos = 0
    for (;;) {
      if (this.pending !== undefined) {
        if (this.buf.length - pos < this.need) break
        const body = Buffer.from(this.buf.subarray(pos, pos + this.need))
        pos += this.need
        const headers = this.pending
        this.pending = undefined
        this.onFrame({headers, body})
        continue
      }
      // Skip blank lines between frames.
      while (pos < this.buf.length && (this.buf[pos] === 0x0a || this.buf[pos] === 0x0d)) pos++
      const end = this.buf.indexOf('\n\n', pos)
      if (end < 0) {
        if (this.buf.length - pos > MAX_HEADERS) return this.fail(`header block longer than ${MAX_HEADERS} bytes`)
        break
      }
      if (end - pos > MAX_HEADERS) return this.fail(`header block longer than ${MAX_HEADERS} bytes`)
      const headers: Record<string, string> = Object.create(null) as Record<string, string>
      for (const line of this.buf.toString('utf8', pos, end).split('\n')) {
        const c = line.indexOf(':')
        if (c <= 0) continue
        headers[line.slice(0, c).trim()] = line.slice(c + 1).trim()
      }
      pos = end + 2
      const cl = headers['Content-Length']
      if (cl !== undefined) {
        if (!/^\d{1,10}$/.test(cl) || Number(cl) > MAX_BODY) return this.fail(`bad Content-Length ${quoteLine(cl, 20)}`)
        const n = Number(cl)
        if (n > 0) {
          this.pending = headers
          this.need = n
          continue
        }
      }
      this.onFrame({headers})
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos))
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.buf.length
  }

  private fail(reason: string): void {
    this.broken = reason
    this.buf = Buffer.alloc(0)
    this.pending = undefined
    this.onError(reason)
  }
}

export interface EslOptions {
  /** How long the connect + auth + log handshake may take, ms (default 30 s). */
  handshakeMs?: number
}

/** The FreeSWITCH event-socket log client behind `esl:` sources. */
export class EslLogSource extends ManagedSource implements Source {
  readonly kind = 'esl' as const
  private sock: net.Socket | undefined
  private readonly decoder = new TextDecoder('utf-8', {fatal: false})
  private readonly handshakeMs: number

  constructor(
    readonly cfg: EslSource,
    ctx: SourceContext,
    opts: EslOptions = {},
  ) {
    super(cfg.name, ctx, Backoff.fromSeconds(cfg.reconnect))
    this.handshakeMs = opts.handshakeMs ?? 30_000
  }

  /** Whether the log stream is up (connected, authenticated, subscribed). */
  get connected(): boolean {
    return this.sock !== undefined && this.stats.state === 'running'
  }

  protected async open(): Promise<void> {
    const {host, port, password, level} = this.cfg
    const sock = net.connect({host, port})
    this.sock = sock
    const frames: EslFrame[] = []
    let wake: (() => void) | undefined
    let failure: Error | undefined
    let live = false
    const parser = new EslParser(
      (f) => {
        if (live) this.frame(f)
        else {
          frames.push(f)
          wake?.()
        }
      },
      (reason) => {
        failure = new Error(`protocol error: ${reason}`)
        this.stats.errors++
        sock.destroy(failure)
        wake?.()
      },
    )
    sock.on('data', (chunk: Buffer) => {
      this.stats.bytes += chunk.length
      parser.push(chunk)
    })
    let closed = false
    sock.on('error', (e) => {
      failure ??= e
      wake?.()
    })
    sock.on('close', () => {
      closed = true
      wake?.()
      if (live && this.sock === sock) {
        this.sock = undefined
        this.lost(failure)
      }
    })
    const deadline = Date.now() + this.handshakeMs
    const next = async (what: string): Promise<EslFrame> => {
      for (;;) {
        const f = frames.shift()
        if (f !== undefined) {
          if (f.headers['Content-Type'] === 'text/disconnect-notice') throw new Error(`disconnected by the server while waiting for ${what}`)
          return f
        }
        if (failure !== undefined) throw failure
        if (closed) throw new Error(`connection closed while waiting for ${what}`)
        if (this.stopped) throw new Error('stopped')
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`no ${what} within ${this.handshakeMs} ms`)
        await new Promise<void>((r) => {
          const t = setTimeout(r, left)
          wake = () => {
            clearTimeout(t)
            wake = undefined
            r()
          }
        })
      }
    }
    const reply = async (what: string): Promise<string> => {
      for (;;) {
        const f = await next(what)
        if (f.headers['Content-Type'] === 'command/reply') return f.headers['Reply-Text'] ?? ''
      }
    }
    for (;;) {
      const greeting = await next('the auth/request greeting')
      if (greeting.headers['Content-Type'] === 'auth/request') break
    }
    sock.write(`auth ${password}\n\n`)
    const auth = await reply('the auth reply')
    if (!auth.startsWith('+OK')) throw new Error(`authentication refused by ${host}:${port}: ${auth || 'no reply text'}`)
    sock.write(`log ${level}\n\n`)
    const lr = await reply('the log command reply')
    if (!lr.startsWith('+OK')) throw new Error(`log ${level} refused: ${lr}`)
    live = true
    this.backoff.reset()
    this.ctx.log.info(`${this.label} connected to ${host}:${port}, log level ${level}`)
    // Frames that arrived with the reply.
    for (const f of frames.splice(0)) this.frame(f)
    if (closed) {
      this.sock = undefined
      this.lost(failure)
    }
  }

  protected async close(): Promise<void> {
    const s = this.sock
    this.sock = undefined
    s?.destroy()
  }

  private lost(e: Error | undefined): void {
    if (this.stopped) return
    this.failed(e ?? new Error('connection closed by the server'), 'disconnected')
  }

  private frame(f: EslFrame): void {
    const type = f.headers['Content-Type']
    if (type === 'text/disconnect-notice') {
      this.ctx.log.info(`${this.label} disconnect notice from the server`)
      return
    }
    if (type !== 'log/data' || f.body === undefined) return
    const level = f.headers['Log-Level']
    if (level === '0') return
    const fields: Record<string, string | number> = {}
    if (level !== undefined && /^\d{1,2}$/.test(level)) fields[RECORD_FIELDS.severity] = Number(level)
    const h = f.headers
    if (h['Log-File']) fields['esl.file'] = h['Log-File']
    if (h['Log-Func']) fields['esl.func'] = h['Log-Func']
    if (h['Log-Line'] && /^\d{1,9}$/.test(h['Log-Line'])) fields['esl.line'] = Number(h['Log-Line'])
    if (h['Text-Channel']) fields['esl.channel'] = h['Text-Channel']
    if (h['User-Data']) fields['esl.uuid'] = h['User-Data']
    const text = this.decoder.decode(f.body)
    for (const raw of text.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
      if (line.trim() === '') continue
      this.emitter.emit(line, {...fields}, undefined, 0)
    }
  }
}

/** The source of an `esl:` configuration. */
export function createEslSource(cfg: EslSource, ctx: SourceContext, opts?: EslOptions): EslLogSource {
  return new EslLogSource(cfg, ctx, opts)
}
