/**
 * The local transport between spylog's services when they run as separate processes
 * (`spylog run --only filter|jail|action`), as lua-spylog's services did: failures go from the
 * filter service to the jail service, tickets from the jail service to the action service.
 *
 * A link is one endpoint of lua-spylog's CONNECT{} (`{type = 'bind'|'connect', address = …}`):
 * the bind side listens, the connect side connects (and reconnects with back-off). Messages are
 * JSON objects, one per line, in both directions; `send` goes to every connected peer, and while
 * no peer is connected messages wait in a bounded buffer (older ones are dropped beyond it, with
 * one warning).
 *
 * Addresses: `ipc://PATH` (a unix socket; on Windows the named pipe `\\.\pipe\NAME`) and
 * `tcp://HOST:PORT` on a loopback address only. This transport is for one machine: a transport
 * that crosses machines will be an existing engine (for example Redis streams), not this
 * protocol, and other addresses are refused with that explanation.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type {Endpoint} from '../config/model.js'
import type {Logger} from '../log/logger.js'

/** Longest message line accepted (bytes). */
const MAX_LINE = 16 << 20
/** Messages kept while no peer is connected. */
const MAX_PENDING = 100_000

export type LinkAddress = {kind: 'ipc'; path: string} | {kind: 'tcp'; host: string; port: number}

/** Parses an endpoint address; throws an Error naming the problem. */
export function parseLinkAddress(address: string, platform: NodeJS.Platform = process.platform): LinkAddress {
  const ipc = /^ipc:\/\/(.+)$/.exec(address)
  if (ipc !== null) {
    const p = ipc[1]!
    if (platform === 'win32') return {kind: 'ipc', path: p.startsWith('\\\\.\\pipe\\') ? p : `\\\\.\\pipe\\${p.replace(/[\\/:]/g, '-')}`}
    return {kind: 'ipc', path: p}
  }
  const tcp = /^tcp:\/\/(?:\[([^\]]+)\]|([^:/]+)):(\d{1,5})$/.exec(address)
  if (tcp !== null) {
    const host = tcp[1] ?? tcp[2]!
    const port = Number(tcp[3])
    const loopback = host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1'
    if (!loopback) throw new Error(`${address}: spylog's own transport links processes on one machine only (a loopback address or ipc://PATH); across machines use a message broker`)
    if (port < 1 || port > 65535) throw new Error(`${address}: port out of range`)
    return {kind: 'tcp', host, port}
  }
  throw new Error(`${address}: expected ipc://PATH or tcp://127.0.0.1:PORT`)
}

export interface Link {
  /** Sends to every connected peer (or keeps it until one connects). */
  send(msg: unknown): void
  /** Messages waiting for a peer. */
  readonly pending: number
  /** Messages dropped because the buffer was full. */
  readonly dropped: number
  close(): Promise<void>
}

class Peer {
  private buf = ''
  constructor(
    readonly socket: net.Socket,
    onMessage: (m: unknown) => void,
    log: Logger,
    what: string,
  ) {
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      this.buf += chunk
      let nl: number
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl)
        this.buf = this.buf.slice(nl + 1)
        if (line === '') continue
        let m: unknown
        try {
          m = JSON.parse(line)
        } catch {
          log.warning(`${what}: a message that is not JSON; closing the connection`)
          socket.destroy()
          return
        }
        onMessage(m)
      }
      if (this.buf.length > MAX_LINE) {
        log.warning(`${what}: a message longer than ${MAX_LINE} bytes; closing the connection`)
        socket.destroy()
      }
    })
    socket.on('error', () => {})
  }
}

abstract class BaseLink implements Link {
  protected readonly peers = new Set<Peer>()
  private queue: string[] = []
  dropped = 0
  private warned = false

  constructor(
    protected readonly log: Logger,
    protected readonly what: string,
    protected readonly onMessage: (m: unknown) => void,
  ) {}

  get pending(): number {
    return this.queue.length
  }

  send(msg: unknown): void {
    const line = JSON.stringify(msg) + '\n'
    if (this.peers.size === 0) {
      if (this.queue.length >= MAX_PENDING) {
        this.queue.shift()
        this.dropped++
        if (!this.warned) {
          this.warned = true
          this.log.warning(`${this.what}: no peer connected and ${MAX_PENDING} messages waiting; dropping the oldest`)
        }
      }
      this.queue.push(line)
      return
    }
    for (const p of this.peers) p.socket.write(line)
  }

  protected added(socket: net.Socket): void {
    const peer = new Peer(socket, this.onMessage, this.log, this.what)
    this.peers.add(peer)
    socket.on('close', () => this.peers.delete(peer))
    if (this.queue.length > 0) {
      for (const line of this.queue.splice(0)) socket.write(line)
      this.warned = false
    }
  }

  abstract close(): Promise<void>
}

class BindLink extends BaseLink {
  private server!: net.Server

  async listen(addr: LinkAddress): Promise<void> {
    this.server = net.createServer((s) => this.added(s))
    if (addr.kind === 'ipc' && !addr.path.startsWith('\\\\')) {
      fs.mkdirSync(path.dirname(addr.path), {recursive: true, mode: 0o700})
      // A socket file left by a process that is gone.
      if (fs.existsSync(addr.path)) {
        const alive = await new Promise<boolean>((resolve) => {
          const c = net.connect(addr.path, () => (c.destroy(), resolve(true)))
          c.on('error', () => resolve(false))
        })
        if (alive) throw new Error(`${this.what}: ${addr.path} is in use by another process`)
        fs.rmSync(addr.path, {force: true})
      }
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      if (addr.kind === 'ipc') this.server.listen(addr.path, () => resolve())
      else this.server.listen(addr.port, addr.host, () => resolve())
    })
    if (addr.kind === 'ipc' && !addr.path.startsWith('\\\\')) fs.chmodSync(addr.path, 0o600)
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

class ConnectLink extends BaseLink {
  private socket: net.Socket | undefined
  private closed = false
  private delay = 200
  private timer: NodeJS.Timeout | undefined

  constructor(
    log: Logger,
    what: string,
    onMessage: (m: unknown) => void,
    private readonly addr: LinkAddress,
  ) {
    super(log, what, onMessage)
  }

  connect(): void {
    if (this.closed) return
    const s = this.addr.kind === 'ipc' ? net.connect(this.addr.path) : net.connect(this.addr.port, this.addr.host)
    this.socket = s
    s.on('connect', () => {
      this.delay = 200
      this.added(s)
    })
    s.on('error', () => {})
    s.on('close', () => {
      if (this.closed) return
      this.timer = setTimeout(() => this.connect(), this.delay)
      this.delay = Math.min(this.delay * 2, 10_000)
    })
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.socket?.destroy()
  }
}

/** Opens one CONNECT{} endpoint: listens (bind) or connects (connect, with reconnection). */
export async function openLink(ep: Pick<Endpoint, 'type' | 'address'>, onMessage: (m: unknown) => void, log: Logger, what: string, platform?: NodeJS.Platform): Promise<Link> {
  const addr = parseLinkAddress(ep.address, platform)
  if (ep.type === 'bind') {
    const l = new BindLink(log, what, onMessage)
    await l.listen(addr)
    return l
  }
  const l = new ConnectLink(log, what, onMessage, addr)
  l.connect()
  return l
}
