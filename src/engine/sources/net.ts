/**
 * `net:tcp://host:port` and `net:udp://host:port`: raw lines from the network.
 *
 * - TCP is a client, as in lua-spylog: spylog connects to host:port (a log server such as a
 *   `tshark` or nxlog output), reads lines cut by `eol` (default `\r\n`), and when the connection
 *   fails or closes, connects again after `reconnect` seconds (doubling on repeated failures, up
 *   to 5 minutes; back to `reconnect` after a successful connection).
 * - UDP listens on host:port (lua-spylog's later versions: a receiver for nxlog's om_udp and
 *   the like): each datagram is split into lines by `eol` too, and every non-empty line is a
 *   record. To keep a datagram holding a multi-line message whole, set `eol` to a separator the
 *   sender never writes (for example `'\0'`): the datagram's end always ends the line.
 *
 * Lines longer than `maxLine` are cut (the first part delivered, the cut counted as a drop).
 */
import type dgram from 'node:dgram'
import net from 'node:net'
import type {NetSource} from '../config/model.js'
import {RECORD_FIELDS} from '../types.js'
import {Backoff, bindUdp, boundAddress, closeQuietly, ManagedSource} from './backoff.js'
import {LineSplitter} from './lines.js'
import type {Source, SourceContext} from './source.js'

export interface NetOptions {
  /** First retry delay after a UDP bind failure, ms (default 1000). TCP uses `cfg.reconnect`. */
  retryMs?: number
}

export class NetLineSource extends ManagedSource implements Source {
  readonly kind = 'net' as const
  private udp: dgram.Socket | undefined
  private tcp: net.Socket | undefined
  private peer = ''
  private readonly splitter: LineSplitter
  private truncatedSeen = 0

  constructor(
    readonly cfg: NetSource,
    ctx: SourceContext,
    opts: NetOptions = {},
  ) {
    super(cfg.name, ctx, cfg.protocol === 'tcp' ? Backoff.fromSeconds(cfg.reconnect) : new Backoff(opts.retryMs ?? 1000))
    this.splitter = new LineSplitter({eol: cfg.eol, maxLine: cfg.maxLine}, (line) => this.line(line))
  }

  /** UDP: the bound address; TCP: the local end of the current connection. */
  address(): {address: string; port: number} | undefined {
    if (this.udp !== undefined) return boundAddress(this.udp)
    const s = this.tcp
    if (s?.localPort === undefined) return undefined
    return {address: s.localAddress ?? '', port: s.localPort}
  }

  get boundPort(): number | undefined {
    return this.address()?.port
  }

  /** Whether a TCP connection is up. */
  get connected(): boolean {
    return this.tcp !== undefined && !this.tcp.connecting && !this.tcp.destroyed
  }

  protected async open(): Promise<void> {
    const {host, port} = this.cfg
    if (this.cfg.protocol === 'udp') {
      this.udp = await bindUdp(host, port, (msg, rinfo) => this.datagram(msg, rinfo.address), (e) => {
        this.stats.errors++
        this.stats.lastError = e.message
      })
      this.ctx.log.info(`${this.label} listening on udp://${host}:${this.boundPort}`)
      return
    }
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({host, port})
      s.once('error', reject)
      s.once('connect', () => {
        s.off('error', reject)
        resolve(s)
      })
    })
    this.tcp = sock
    this.peer = sock.remoteAddress ?? host
    this.backoff.reset()
    this.ctx.log.info(`${this.label} connected to tcp://${host}:${port}`)
    sock.setKeepAlive(true, 60_000)
    sock.on('data', (chunk: Buffer) => {
      this.stats.bytes += chunk.length
      this.splitter.push(chunk)
      this.countTruncated()
    })
    let error: Error | undefined
    sock.on('error', (e) => (error = e))
    sock.on('close', () => {
      if (this.tcp !== sock) return
      this.tcp = undefined
      this.splitter.flush()
      this.lost(error)
    })
  }

  protected async close(): Promise<void> {
    const u = this.udp
    this.udp = undefined
    await closeQuietly(u)
    const t = this.tcp
    this.tcp = undefined
    if (t !== undefined) {
      t.destroy()
      this.splitter.flush()
    }
  }

  private lost(e: Error | undefined): void {
    if (this.stopped) return
    if (e !== undefined) {
      this.failed(e, 'connection lost')
      return
    }
    this.stats.state = 'retrying'
    this.stats.lastError = 'connection closed by the peer'
    const delay = this.backoff.next()
    this.ctx.log.warning(`${this.label} connection closed by tcp://${this.cfg.host}:${this.cfg.port}; reconnecting in ${delay} ms`)
    this.retry.schedule(delay, () => void this.attempt())
  }

  private datagram(msg: Buffer, peer: string): void {
    this.peer = peer
    this.stats.bytes += msg.length
    this.splitter.push(msg)
    this.splitter.flush()
    this.countTruncated()
  }

  private countTruncated(): void {
    const t = this.splitter.truncated
    if (t !== this.truncatedSeen) {
      this.drops.drop(`lines longer than ${this.cfg.maxLine} characters cut`, t - this.truncatedSeen)
      this.truncatedSeen = t
    }
  }

  private line(text: string): void {
    if (text.length === 0) return
    this.emitter.emit(text, {[RECORD_FIELDS.peer]: this.peer}, undefined, 0)
  }
}

/** The source of a `net:tcp://` (client) or `net:udp://` (listener) configuration. */
export function createNetSource(cfg: NetSource, ctx: SourceContext, opts?: NetOptions): NetLineSource {
  return new NetLineSource(cfg, ctx, opts)
}

