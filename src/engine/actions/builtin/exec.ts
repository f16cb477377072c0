/**
 * A small argv runner for the built-in actions: spawns a program without a shell (`shell: false`,
 * arguments passed as an array, so nothing in them is ever interpreted), optionally feeds it a
 * text on stdin (`nft -f -`), bounds its run time and the output it keeps.
 */
import {spawn} from 'node:child_process'
import {accessSync, constants, statSync} from 'node:fs'
import path from 'node:path'

/** What a finished program left behind. */
export interface ExecResult {
  /** Exit status; null when the program was killed by a signal (`signal` then says which). */
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** True when the runner killed the program because it ran past `timeoutMs`. */
  readonly timedOut: boolean
}

export interface ExecOptions {
  /** Text written to the program's stdin (stdin is closed after it, or at once without it). */
  readonly input?: string
  /** Kill the program (SIGKILL) after this many milliseconds. Default 30 s. */
  readonly timeoutMs?: number
  /** Words put before argv (`['ip', 'netns', 'exec', 'ns1']`): the program then runs through them. */
  readonly prefix?: readonly string[]
  /** Keep at most this many bytes of stdout and of stderr (default 1 MiB each). */
  readonly maxOutput?: number
}

/** A command that could not be started at all (not installed, not executable). */
export class ExecStartError extends Error {
  constructor(
    readonly program: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message)
    this.name = 'ExecStartError'
  }
}

/**
 * Runs `argv[0]` with the rest of `argv` as its arguments and resolves when it exits (whatever
 * the exit status: the caller judges). Rejects with ExecStartError when it cannot start.
 */
export function execArgv(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const all = [...(opts.prefix ?? []), ...argv]
  if (all.length === 0) return Promise.reject(new Error('execArgv: empty command'))
  const [program, ...args] = all as [string, ...string[]]
  const max = opts.maxOutput ?? 1 << 20
  const timeoutMs = opts.timeoutMs ?? 30_000
  return new Promise((resolve, reject) => {
    let child
    try {
      child = spawn(program, args, {shell: false, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true})
    } catch (e) {
      reject(new ExecStartError(program, (e as NodeJS.ErrnoException).code, `cannot run ${program}: ${(e as Error).message}`))
      return
    }
    const out: Buffer[] = []
    const err: Buffer[] = []
    let outLen = 0
    let errLen = 0
    let timedOut = false
    let settled = false
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < max) out.push(b.subarray(0, max - outLen))
      outLen += b.length
    })
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < max) err.push(b.subarray(0, max - errLen))
      errLen += b.length
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    timer.unref?.()
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(new ExecStartError(program, e.code, e.code === 'ENOENT' ? `${program}: command not found` : `cannot run ${program}: ${e.message}`))
    })
    child.on('close', (code, signal) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut})
    })
    // A program that exits without reading its stdin makes the write fail with EPIPE: not an error of ours.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

/** One line describing how a command ended, for error messages (`exit status 1: Error: …`). */
export function describeExit(r: ExecResult, timeoutMs?: number): string {
  if (r.timedOut) return `killed after ${timeoutMs !== undefined ? `${timeoutMs} ms` : 'its time limit'}`
  const how = r.code !== null ? `exit status ${r.code}` : `killed by ${r.signal ?? 'a signal'}`
  const msg = (r.stderr.trim() || r.stdout.trim()).split('\n').filter((l) => l.trim() !== '').slice(0, 3).join(' | ')
  return msg === '' ? how : `${how}: ${msg.length > 500 ? msg.slice(0, 500) + '…' : msg}`
}

/** The path of `program` when it is an executable file on PATH (or in the sbin directories daemons often lack on PATH). */
export function findProgram(program: string, envPath = process.env.PATH ?? ''): string | undefined {
  if (program.includes('/')) return isExecutable(program) ? program : undefined
  const dirs = [...envPath.split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const d of dirs) {
    if (d === '') continue
    const p = path.join(d, program)
    if (isExecutable(p)) return p
  }
  return undefined
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK)
    return statSync(p).isFile()
  } catch {
    return false
  }
}
