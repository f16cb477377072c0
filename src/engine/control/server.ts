/**
 * The daemon's end of the control channel: a unix socket (mode 0600) on Linux, the named pipe
 * `\\.\pipe\spylog` on Windows, speaking the JSON-lines protocol of protocol.ts. Every request
 * must carry the token of the token file; a request without it (or with a wrong one) is refused,
 * logged, and its connection closed. Hostile input never takes the server down: lines are bounded,
 * garbage closes the connection, idle connections time out, the number of connections is capped.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type {Logger} from '../log/logger.js'
import {quoteLine} from '../text.js'
import {resolveControlPaths, isNamedPipe} from './paths.js'
import {
  ControlError,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  validateArgs,
  versionMismatch,
  type CommandArgs,
  type ControlTarget,
  type ErrorBody,
  type Response,
} from './protocol.js'
import {ensureToken, tokenMatches} from './token.js'

export interface ControlServerOptions {
  readonly target: ControlTarget
  /** Unix socket path or named pipe; default from paths.ts. */
  readonly socketPath?: string
  /** Token file (created when missing); default `<data dir>/control.token`. */
  readonly tokenFile?: string
  /** Data directory for the default token file (and socket, for non-root users without a runtime directory). */
  readonly dataDir?: string
  readonly log: Logger
  readonly platform?: NodeJS.Platform
  /** Connections served at once (default 64); more are dropped. */
  readonly maxConnections?: number
  /** A connection without a complete request for this long is closed (default 60 s). */
  readonly idleTimeoutMs?: number
}

export interface ControlServer {
  readonly socketPath: string
  readonly tokenFile: string
  /** Stop listening, end connections (a reply being written is finished first), remove the socket. */
  close(): Promise<void>
}

/** Unix socket paths longer than this do not fit sockaddr_un on Linux. */
const MAX_UNIX_PATH = 107

/** Refusals logged per minute; the rest are counted and reported with the next logged one. */
const REFUSALS_LOGGED_PER_MINUTE = 10

/**
 * Starts the control server. Rejects with a clear message when the socket is in use by a running
 * daemon, when the path exists and is not a socket, or when it cannot be created.
 */
export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const platform = opts.platform ?? process.platform
  const {socketPath, tokenFile} = resolveControlPaths({socket: opts.socketPath, tokenFile: opts.tokenFile, dataDir: opts.dataDir, platform})
  const log = opts.log
  const token = ensureToken(tokenFile, {log, platform})
  const pipe = platform === 'win32' || isNamedPipe(socketPath)

  if (!pipe) {
    if (Buffer.byteLength(socketPath) > MAX_UNIX_PATH) throw new Error(`control socket path too long (${Buffer.byteLength(socketPath)} bytes, at most ${MAX_UNIX_PATH}): ${socketPath}`)
    await removeStaleSocket(socketPath)
    const dir = path.dirname(socketPath)
    if (!fs.existsSync(dir)) fs.mkdirSync(dir, {recursive: true, mode: 0o700})
  }

  const connections = new Set<Connection>()
  let closing = false
  const refusals = {windowStart: Date.now(), logged: 0, suppressed: 0}
  const refuse = (why: string): void => {
    const now = Date.now()
    if (now - refusals.windowStart >= 60_000) {
      refusals.windowStart = now
      refusals.logged = 0
    }
    if (refusals.logged >= REFUSALS_LOGGED_PER_MINUTE) {
      refusals.suppressed++
      return
    }
    refusals.logged++
    const more = refusals.suppressed > 0 ? ` (and ${refusals.suppressed} more refused since the last report)` : ''
    refusals.suppressed = 0
    log.warning(`control: refused a request on ${socketPath}: ${why}${more}`)
  }

  const server = net.createServer({allowHalfOpen: false}, (socket) => {
    if (closing) {
      socket.destroy()
      return
    }
    const c = new Connection(socket, opts.target, token, log, refuse, opts.idleTimeoutMs ?? 60_000, () => closing)
    connections.add(c)
    socket.once('close', () => connections.delete(c))
  })
  server.maxConnections = opts.maxConnections ?? 64
  server.on('error', (e) => log.error(`control: ${socketPath}: ${e.message}`))

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (e.code === 'EADDRINUSE') reject(new Error(`control socket ${socketPath} is in use: is another spylog running?`))
      else if (e.code === 'EACCES' || e.code === 'EPERM') reject(new Error(`permission denied creating the control socket ${socketPath}`))
      else reject(new Error(`cannot listen on the control socket ${socketPath}: ${e.message}`))
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    // The socket is created with mode 0600 (umask while binding), and chmod-ed again below.
    let oldMask: number | undefined
    if (!pipe) {
      try {
        oldMask = process.umask(0o177)
      } catch {
        oldMask = undefined
      }
    }
    try {
      server.listen(socketPath)
    } finally {
      if (oldMask !== undefined) process.umask(oldMask)
    }
  })
  if (!pipe) fs.chmodSync(socketPath, 0o600)
  log.info(`control: listening on ${socketPath}`)

  return {
    socketPath,
    tokenFile,
    close: () =>
      new Promise<void>((resolve) => {
        if (closing) {
          if (!server.listening) resolve()
          else server.once('close', () => resolve())
          return
        }
        closing = true
        const timer = setTimeout(() => {
          for (const c of connections) c.destroy()
        }, 5000)
        timer.unref()
        server.close(() => {
          clearTimeout(timer)
          resolve()
        })
        for (const c of connections) c.endWhenIdle()
      }),
  }
}

/**
 * A unix socket left behind by a daemon that died is removed; one a running daemon answers on,
 * or a path that is not a socket, is an error.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let st: fs.Stats
  try {
    st = fs.lstatSync(socketPath)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw e
  }
  if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket: refusing to replace it`)
  const alive = await new Promise<boolean | NodeJS.ErrnoException>((resolve) => {
    const s = net.connect(socketPath)
    const timer = setTimeout(() => {
      s.destroy()
      resolve(true)
    }, 3000)
    s.once('connect', () => {
      clearTimeout(timer)
      s.destroy()
      resolve(true)
    })
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(e.code === 'ECONNREFUSED' ? false : e)
    })
  })
  if (alive === true) throw new Error(`control socket ${socketPath} is in use: is another spylog running?`)
  if (alive !== false) throw new Error(`cannot check the existing control socket ${socketPath}: ${alive.message}`)
  fs.unlinkSync(socketPath)
}

/** One client connection: reads request lines, answers them in order. */
class Connection {
  private chunks: Buffer[] = []
  private pending = 0
  private busy = false
  private queue: Buffer[] = []
  private ending = false

  constructor(
    private readonly socket: net.Socket,
    private readonly target: ControlTarget,
    private readonly token: string,
    private readonly log: Logger,
    private readonly refuse: (why: string) => void,
    idleTimeoutMs: number,
    private readonly serverClosing: () => boolean,
  ) {
    socket.setTimeout(idleTimeoutMs, () => socket.destroy())
    socket.on('data', (d: Buffer) => this.onData(d))
    socket.on('error', (e) => log.debug(`control: connection error: ${e.message}`))
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** Ends the connection now when no request is being served, else after its reply. */
  endWhenIdle(): void {
    this.ending = true
    if (!this.busy && this.queue.length === 0) this.socket.end()
  }

  private onData(d: Buffer): void {
    if (this.ending) return
    let start = 0
    for (let nl = d.indexOf(10, start); nl >= 0; nl = d.indexOf(10, start)) {
      const piece = d.subarray(start, nl)
      const line = this.chunks.length === 0 ? piece : Buffer.concat([...this.chunks, piece])
      this.chunks = []
      this.pending = 0
      start = nl + 1
      if (line.length > MAX_REQUEST_BYTES) return this.tooLarge()
      this.queue.push(line)
    }
    if (start < d.length) {
      const rest = d.subarray(start)
      this.pending += rest.length
      if (this.pending > MAX_REQUEST_BYTES) return this.tooLarge()
      this.chunks.push(rest)
    }
    void this.drain()
  }

  private tooLarge(): void {
    this.chunks = []
    this.queue = []
    this.socket.pause()
    this.reply(null, {code: 'too-large', message: `request line longer than ${MAX_REQUEST_BYTES} bytes`}, true)
  }

  private async drain(): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      while (this.queue.length > 0 && !this.ending && !this.socket.destroyed) {
        const line = this.queue.shift()!
        await this.handle(line)
      }
    } finally {
      this.busy = false
    }
    if ((this.ending || this.serverClosing()) && !this.socket.destroyed) this.socket.end()
  }

  /** Writes one response; `close` ends the connection after it. Resolves when written. */
  private reply(id: number | string | null, body: {result: unknown} | ErrorBody, close = false): Promise<void> {
    const resp: Response = 'result' in body ? {v: PROTOCOL_VERSION, id, ok: true, result: body.result} : {v: PROTOCOL_VERSION, id, ok: false, error: body}
    let text: string
    try {
      text = JSON.stringify(resp) + '\n'
    } catch (e) {
      text = JSON.stringify({v: PROTOCOL_VERSION, id, ok: false, error: {code: 'failed', message: `unserialisable result: ${(e as Error).message}`}}) + '\n'
    }
    return new Promise<void>((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve()
      if (close) {
        this.ending = true
        this.socket.end(text, () => resolve())
      } else {
        this.socket.write(text, () => resolve())
      }
    })
  }

  private async handle(line: Buffer): Promise<void> {
    const text = line.toString('utf8').replace(/\r$/, '')
    if (text.trim() === '') return
    let req: unknown
    try {
      req = JSON.parse(text)
    } catch {
      this.refuse('not a JSON request')
      return this.reply(null, {code: 'bad-request', message: 'not a JSON request line'}, true)
    }
    if (req === null || typeof req !== 'object' || Array.isArray(req)) {
      this.refuse('not a JSON object')
      return this.reply(null, {code: 'bad-request', message: 'a request is a JSON object'}, true)
    }
    const r = req as Record<string, unknown>
    const id = typeof r.id === 'number' || (typeof r.id === 'string' && r.id.length <= 64) ? r.id : null
    if (r.v !== PROTOCOL_VERSION) {
      this.refuse(versionMismatch(PROTOCOL_VERSION, r.v))
      return this.reply(id, {code: 'version', message: versionMismatch(PROTOCOL_VERSION, r.v)}, true)
    }
    if (!tokenMatches(this.token, r.token)) {
      const cmd = typeof r.cmd === 'string' ? quoteLine(r.cmd, 32) : 'unknown'
      this.refuse(`${r.token === undefined || r.token === '' ? 'no token' : 'wrong token'} (command ${cmd})`)
      return this.reply(id, {code: 'unauthorized', message: 'wrong or missing control token'}, true)
    }
    let cmd: string
    let args: unknown
    try {
      ;({cmd, args} = validateArgs(r.cmd, r.args))
    } catch (e) {
      const err = e as ControlError
      return this.reply(id, {code: err.code, message: err.message})
    }
    try {
      const result = await this.dispatch(cmd, args)
      if (cmd === 'stop') {
        await this.reply(id, {result: {stopping: true}}, true)
        this.log.notice('control: stop requested')
        try {
          await this.target.stop()
        } catch (e) {
          this.log.error(`control: stop failed: ${(e as Error).message}`)
        }
        return
      }
      return this.reply(id, {result})
    } catch (e) {
      if (e instanceof ControlError) return this.reply(id, {code: e.code, message: e.message})
      const message = e instanceof Error ? e.message : String(e)
      this.log.error(`control: ${cmd} failed: ${message}`)
      return this.reply(id, {code: 'failed', message})
    }
  }

  private async dispatch(cmd: string, args: unknown): Promise<unknown> {
    const t = this.target
    switch (cmd) {
      case 'status': {
        const a = args as CommandArgs['status']
        return a.jail === undefined ? t.status() : t.jailStatus(a.jail)
      }
      case 'banned':
        return t.banned((args as CommandArgs['banned']).ids)
      case 'ban': {
        const a = args as CommandArgs['ban']
        return t.ban(a.jail, a.ids)
      }
      case 'unban': {
        const a = args as CommandArgs['unban']
        return t.unban(a.all === true ? {all: true} : a.ids!, a.jail)
      }
      case 'reload':
        return t.reload((args as CommandArgs['reload']).jail)
      case 'ping':
        return t.ping()
      case 'metrics':
        return t.metrics()
      case 'stop':
        return undefined
      default:
        throw new ControlError('unknown-command', `unknown command ${cmd}`)
    }
  }
}
