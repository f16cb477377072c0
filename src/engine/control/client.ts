/**
 * The CLI's end of the control channel: connect to the daemon's socket (named pipe on Windows),
 * send one request with the token, await the reply. Every failure becomes a ControlClientError
 * with a message for the user and the exit code of the command:
 *
 *   0 ok · 1 the request failed · 2 usage or configuration (permission, token, version) · 3 no daemon
 */
import net from 'node:net'
import {
  MAX_RESPONSE_BYTES,
  PROTOCOL_VERSION,
  versionMismatch,
  type CommandArgs,
  type CommandName,
  type CommandResults,
  type ErrorCode,
} from './protocol.js'
import {readToken, TokenError} from './token.js'

export type ExitCode = 0 | 1 | 2 | 3

/** Exit status for an error code of the protocol. */
export function exitCodeFor(code: ErrorCode | 'timeout' | 'connection' | 'no-daemon' | 'denied' | 'token'): ExitCode {
  switch (code) {
    case 'no-daemon':
      return 3
    case 'failed':
    case 'not-found':
    case 'busy':
    case 'timeout':
    case 'connection':
      return 1
    default:
      return 2
  }
}

/** A request that did not succeed, with what to tell the user and the exit code. */
export class ControlClientError extends Error {
  readonly exitCode: ExitCode
  constructor(
    message: string,
    readonly code: ErrorCode | 'timeout' | 'connection' | 'no-daemon' | 'denied' | 'token',
  ) {
    super(message)
    this.name = 'ControlClientError'
    this.exitCode = exitCodeFor(code)
  }
}

export interface ClientOptions {
  socketPath: string
  /** Token file to read (after connecting, so "no daemon" wins over "no token"). */
  tokenFile?: string
  /** The token itself, instead of tokenFile. */
  token?: string
  /** How long to wait for the reply (default 30 s). */
  timeoutMs?: number
}

function connectError(e: NodeJS.ErrnoException, socketPath: string): ControlClientError {
  switch (e.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTDIR':
      return new ControlClientError(`no spylog daemon running at ${socketPath}`, 'no-daemon')
    case 'EACCES':
    case 'EPERM':
      return new ControlClientError(`permission denied on ${socketPath} (run as the daemon's user or root)`, 'denied')
    default:
      return new ControlClientError(`cannot connect to ${socketPath}: ${e.message}`, 'connection')
  }
}

/** Opens a connection, or rejects with a ControlClientError. */
function connect(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath)
    const timer = setTimeout(() => {
      s.destroy()
      reject(new ControlClientError(`no answer from ${socketPath} within ${Math.round(timeoutMs / 1000)} s`, 'timeout'))
    }, timeoutMs)
    s.once('connect', () => {
      clearTimeout(timer)
      s.removeAllListeners('error')
      resolve(s)
    })
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(connectError(e, socketPath))
    })
  })
}

let nextId = 1

/**
 * Sends one command and returns its result; rejects with a ControlClientError (never anything
 * else) when there is no daemon, access is denied, the versions differ or the daemon refused.
 */
export async function request<C extends CommandName>(opts: ClientOptions, cmd: C, args: CommandArgs[C]): Promise<CommandResults[C]> {
  const timeoutMs = opts.timeoutMs ?? 30_000
  const socket = await connect(opts.socketPath, timeoutMs)
  try {
    let token = opts.token
    if (token === undefined) {
      if (opts.tokenFile === undefined) throw new ControlClientError('no control token given', 'token')
      try {
        token = readToken(opts.tokenFile)
      } catch (e) {
        if (e instanceof TokenError) throw new ControlClientError(e.message, e.code === 'denied' ? 'denied' : 'token')
        throw e
      }
    }
    const id = nextId++
    const line = JSON.stringify({v: PROTOCOL_VERSION, id, token, cmd, args}) + '\n'
    const reply = await exchange(socket, line, opts.socketPath, timeoutMs)
    return interpret<C>(reply, opts.socketPath)
  } finally {
    socket.destroy()
  }
}

/** Writes `line`, resolves with the first reply line. */
function exchange(socket: net.Socket, line: string, socketPath: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (err: ControlClientError | undefined, value?: string): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err !== undefined) reject(err)
      else resolve(value!)
    }
    const timer = setTimeout(() => finish(new ControlClientError(`no reply from the daemon at ${socketPath} within ${Math.round(timeoutMs / 1000)} s`, 'timeout')), timeoutMs)
    socket.on('data', (d: Buffer) => {
      const nl = d.indexOf(10)
      if (nl < 0) {
        chunks.push(d)
        size += d.length
        if (size > MAX_RESPONSE_BYTES) finish(new ControlClientError(`reply from ${socketPath} longer than ${MAX_RESPONSE_BYTES} bytes`, 'connection'))
        return
      }
      chunks.push(d.subarray(0, nl))
      finish(undefined, Buffer.concat(chunks).toString('utf8'))
    })
    socket.on('error', (e: NodeJS.ErrnoException) => {
      finish(e.code === 'EPIPE' || e.code === 'ECONNRESET'
        ? new ControlClientError(`the daemon at ${socketPath} closed the connection without a reply`, 'connection')
        : new ControlClientError(`connection to ${socketPath} failed: ${e.message}`, 'connection'))
    })
    socket.on('close', () => finish(new ControlClientError(`the daemon at ${socketPath} closed the connection without a reply`, 'connection')))
    socket.write(line)
  })
}

function interpret<C extends CommandName>(text: string, socketPath: string): CommandResults[C] {
  let resp: Record<string, unknown>
  try {
    resp = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new ControlClientError(`${socketPath} did not answer with the spylog control protocol`, 'connection')
  }
  if (resp === null || typeof resp !== 'object') throw new ControlClientError(`${socketPath} did not answer with the spylog control protocol`, 'connection')
  if (resp.ok === false && typeof resp.error === 'object' && resp.error !== null) {
    const err = resp.error as {code?: unknown; message?: unknown}
    const code = typeof err.code === 'string' ? (err.code as ErrorCode) : 'failed'
    throw new ControlClientError(typeof err.message === 'string' ? err.message : `request failed (${code})`, code)
  }
  if (resp.v !== PROTOCOL_VERSION) throw new ControlClientError(versionMismatch(resp.v, PROTOCOL_VERSION), 'version')
  if (resp.ok !== true) throw new ControlClientError(`${socketPath} did not answer with the spylog control protocol`, 'connection')
  return resp.result as CommandResults[C]
}

/**
 * Waits until nothing answers on `socketPath` any more (after `stop`). Resolves true when the
 * daemon is gone, false when it still answers at the deadline.
 */
export async function waitUntilGone(socketPath: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const s = await connect(socketPath, Math.max(100, deadline - Date.now()))
      s.destroy()
    } catch (e) {
      if (e instanceof ControlClientError && e.code === 'no-daemon') return true
      if (!(e instanceof ControlClientError) || e.code !== 'timeout') throw e
    }
    if (Date.now() >= deadline) return false
    await new Promise((r) => setTimeout(r, 100))
  }
}
