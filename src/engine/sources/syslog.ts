/**
 * `syslog:udp://host:port` and `syslog:tcp://host:port`: a syslog receiver.
 *
 * UDP: one datagram is one message. TCP: RFC 6587 framing, octet counting or newline
 * terminated, detected per message (see SyslogFramer). Each message is parsed (RFC 5424, RFC 3164,
 * or kept raw) by syslog-parse.ts; the record's text is the MSG part, the header goes to fields
 * (facility, severity, host, app, pid, msgid, `sd.<id>.<param>`, peer) and the header timestamp
 * to `time`.
 *
 * Bounds: messages longer than `maxMessage` bytes are cut (the first part is delivered, the cut
 * counted as a drop, so padding cannot hide a failure line); at most `maxConnections` TCP peers
 * at once (more are refused and counted), and peers silent for `idleMs` are disconnected. A bind failure (port in use, no permission) leaves the
 * source 'retrying' with back-off; it never throws into the pipeline.
 */
import type dgram from 'node:dgram'
import type net from 'node:net'
import {TextDecoder} from 'node:util'
import type {SyslogSource} from '../config/model.js'
import {RECORD_FIELDS} from '../types.js'
import {Backoff, bindUdp, boundAddress, closeQuietly, listenTcp, ManagedSource} from './backoff.js'
import type {Source, SourceContext} from './source.js'
import {parseSyslog, SyslogFramer, syslogFields} from './syslog-parse.js'

export interface SyslogOptions {
  /** Longest message kept, bytes (default: the configuration's `maxMessage`, else 65536). */
  maxMessage?: number
  /** Most TCP connections at once (default 256). */
  maxConnections?: number
  /** First retry delay after a bind failure, ms (default 1000; doubles up to 60 s). */
  retryMs?: number
  /** A TCP peer silent this long is disconnected, ms (default 15 minutes), so idle peers cannot hold every connection slot. */
  idleMs?: number
}

export class SyslogReceiver extends ManagedSource implements Source {
  readonly kind = 'syslog' as const
  private udp: dgram.Socket | undefined
  private tcp: net.Server | undefined
  private readonly conns = new Set<net.Socket>()
  private readonly decoder = new TextDecoder('utf-8', {fatal: false, ignoreBOM: true})
  private readonly maxMessage: number
  private readonly maxConnections: number
  private readonly idleMs: number

  constructor(
    readonly cfg: SyslogSource,
    ctx: SourceContext,
    opts: SyslogOptions = {},
  ) {
    super(cfg.name, ctx, new Backoff(opts.retryMs ?? 1000, 60_000))
    this.maxMessage = opts.maxMessage ?? cfg.maxMessage ?? 65536
    this.maxConnections = opts.maxConnections ?? 256
    this.idleMs = opts.idleMs ?? 15 * 60_000
  }

  /** The bound address (port 0 in the configuration: the port the system chose). */
  address(): {address: string; port: number} | undefined {
    return boundAddress(this.udp ?? this.tcp)
  }

  /** The bound port, once listening. */
  get boundPort(): number | undefined {
    return this.address()?.port
  }

  protected async open(): Promise<void> {
    const {host, port} = this.cfg
    if (this.cfg.protocol === 'udp') {
      this.udp = await bindUdp(host, port, (msg, rinfo) => this.datagram(msg, rinfo.address), (e) => this.socketError(e))
    } else {
      this.tcp = await listenTcp(host, port, this.maxConnections, (s) => this.connection(s))
      this.tcp.on('drop', () => this.drops.drop(`more than ${this.maxConnections} TCP connections`))
      this.tcp.on('error', (e) => this.socketError(e))
    }
    this.ctx.log.info(`${this.label} syslog receiver listening on ${this.cfg.protocol}://${host}:${this.boundPort}`)
  }

  protected async close(): Promise<void> {
    const u = this.udp
    const t = this.tcp
    this.udp = undefined
    this.tcp = undefined
    await closeQuietly(u)
    await closeQuietly(t, this.conns)
    this.conns.clear()
  }

  private socketError(e: Error): void {
    this.stats.errors++
    this.stats.lastError = e.message
    this.ctx.log.debug(`${this.label} socket error: ${e.message}`)
  }

  private datagram(msg: Buffer, peer: string): void {
    let b = msg
    if (b.length > this.maxMessage) {
      b = b.subarray(0, this.maxMessage)
      this.drops.drop(`datagram longer than ${this.maxMessage} bytes cut`)
    }
    this.message(b, peer, msg.length)
  }

  private connection(s: net.Socket): void {
    this.conns.add(s)
    const peer = s.remoteAddress ?? ''
    const framer = new SyslogFramer(this.maxMessage, (m, truncated) => {
      if (truncated) this.drops.drop(`message longer than ${this.maxMessage} bytes cut`)
      this.message(m, peer, m.length)
    })
    s.on('data', (chunk: Buffer) => framer.push(chunk))
    s.on('end', () => framer.flush())
    s.on('error', (e) => this.ctx.log.debug(`${this.label} connection from ${peer}: ${e.message}`))
    s.on('close', () => this.conns.delete(s))
    s.setTimeout(this.idleMs, () => {
      this.ctx.log.debug(`${this.label} closing idle connection from ${peer}`)
      framer.flush()
      s.destroy()
    })
  }

  private message(b: Buffer, peer: string, bytes: number): void {
    const text = this.decoder.decode(b)
    const m = parseSyslog(text)
    const fields = syslogFields(m)
    fields[RECORD_FIELDS.peer] = peer
    this.emitter.emit(m.message, fields, m.time, bytes)
  }
}

/** The syslog source of a configuration (UDP or TCP receiver). */
export function createSyslogSource(cfg: SyslogSource, ctx: SourceContext, opts?: SyslogOptions): SyslogReceiver {
  return new SyslogReceiver(cfg, ctx, opts)
}
