/**
 * spylog's one argv runner (command actions, the built-in firewall actions, `ignorecommand`, the
 * Windows PowerShell/netsh/sc.exe seam, systemctl): spawns a program without a shell
 * (`shell: false`, arguments passed as an array, so nothing in them is ever interpreted),
 * optionally feeds it a text on stdin (`nft -f -`), bounds its run time and the output it keeps.
 */
import {spawn} from 'node:child_process'
import {accessSync, constants, statSync} from 'node:fs'
import path from 'node:path'
import {clip} from '../text.js'

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
  /** Kill the program (SIGKILL) after this many milliseconds. Default 30 s; `Infinity` or 0: no limit. */
  readonly timeoutMs?: number
  /** Words put before argv (`['ip', 'netns', 'exec', 'ns1']`): the program then runs through them. */
  readonly prefix?: readonly string[]
  /** Keep at most this many bytes of stdout and of stderr (default 1 MiB each). */
  readonly maxOutput?: number
  /** Which bytes `maxOutput` keeps: the first (default) or the last (the end of an error message). */
  readonly keep?: 'head' | 'tail'
  /**
   * Start the program in a process group of its own and kill the whole group (Windows: the
   * process tree) on timeout, so that nothing it started outlives it or holds its pipes open.
   */
  readonly killTree?: boolean
}

/** A command that could not be started at all (not installed, not executable); `cause` is the spawn error. */
export class ExecStartError extends Error {
  constructor(
    readonly program: string,
    readonly code: string | undefined,
    message: string,
    cause?: unknown,
  ) {
    super(message, {cause})
    this.name = 'ExecStartError'
  }
}

/** Kills a process and everything it started (its process group, spawned detached; Windows: taskkill /T). */
function killTree(pid: number): void {
  if (process.platform === 'win32') {
    spawn('taskkill', ['/pid', String(pid), '/T', '/F'], {stdio: 'ignore', windowsHide: true}).on('error', () => undefined)
    return
  }
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

/** Collects one output stream, keeping at most `max` bytes: the first or the last ones. */
class Output {
  private readonly chunks: Buffer[] = []
  private len = 0

  constructor(
    private readonly max: number,
    private readonly tail: boolean,
  ) {}

  push(b: Buffer): void {
    if (this.tail) {
      this.chunks.push(b)
      this.len += b.length
      while (this.chunks.length > 1 && this.len - this.chunks[0]!.length >= this.max) this.len -= this.chunks.shift()!.length
      return
    }
    if (this.len < this.max) this.chunks.push(b.subarray(0, this.max - this.len))
    this.len += b.length
  }

  text(): string {
    const all = Buffer.concat(this.chunks)
    return (this.tail && all.length > this.max ? all.subarray(all.length - this.max) : all).toString('utf8')
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
  const group = opts.killTree === true && process.platform !== 'win32'
  const startError = (e: NodeJS.ErrnoException): ExecStartError =>
    new ExecStartError(program, e.code, e.code === 'ENOENT' ? `${program}: command not found` : `cannot run ${program}: ${e.message}`, e)
  return new Promise((resolve, reject) => {
    let child
    try {
      child = spawn(program, args, {shell: false, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true, detached: group})
    } catch (e) {
      reject(startError(e as NodeJS.ErrnoException))
      return
    }
    const out = new Output(max, opts.keep === 'tail')
    const err = new Output(max, opts.keep === 'tail')
    let timedOut = false
    let settled = false
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    const kill = (): void => {
      if (opts.killTree === true && child.pid !== undefined) killTree(child.pid)
      else child.kill('SIGKILL')
    }
    const timer = timeoutMs > 0 && Number.isFinite(timeoutMs)
      ? setTimeout(() => {
        timedOut = true
        kill()
      }, timeoutMs)
      : undefined
    timer?.unref?.()
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(startError(e))
    })
    child.on('close', (code, signal) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      // a grandchild may still hold the group: make sure nothing of it outlives the command
      if (timedOut && opts.killTree === true) kill()
      resolve({code, signal, stdout: out.text(), stderr: err.text(), timedOut})
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
  return msg === '' ? how : `${how}: ${clip(msg, 500)}`
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
