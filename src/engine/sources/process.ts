/**
 * `process:<command>`: runs a program and reads its output lines (lua-spylog's process monitor,
 * e.g. `tshark` printing one line per SIP request).
 *
 * - The program is started without a shell (argv, `shell: false`): with `args` undefined, the
 *   command string is split like lua-spylog's `Args.split_command` (splitLuaArgs in actions/argv.ts); with `args`
 *   a string, that string is split the same way; with a list, it is used as is.
 * - `monitor` selects stdout, stderr or both (each stream has its own line buffer); streams not
 *   monitored are discarded so the program never blocks on a full pipe.
 * - `env`: when given, the program gets only the `inherit`ed variables of spylog's environment
 *   plus the `set` ones, whose values may reference spylog's variables as `%NAME%`, `$NAME` or
 *   `${NAME}`; without `env` it inherits spylog's environment. (Without PATH in its environment
 *   the program must be named by its full path.)
 * - When the program exits (or cannot be started), it is started again after `restart` seconds;
 *   a program that keeps exiting quickly waits twice as long each time (up to 5 minutes).
 *
 * Fields: `pid` and `stream` (`stdout`/`stderr`).
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {splitLuaArgs} from '../actions/argv.js'
import type {ProcessSource} from '../config/model.js'
import {RECORD_FIELDS} from '../types.js'
import {Backoff, errorText, ManagedSource, PermanentError} from './backoff.js'
import {DEFAULT_EOL, LineSplitter} from './lines.js'
import type {Source, SourceContext} from './source.js'

/** Expands `%NAME%`, `${NAME}` and `$NAME` from `env` (unknown names expand to nothing). */
export function expandVars(value: string, env: NodeJS.ProcessEnv): string {
  const get = (name: string): string => {
    const direct = env[name]
    if (direct !== undefined) return direct
    if (process.platform === 'win32') {
      const k = Object.keys(env).find((x) => x.toUpperCase() === name.toUpperCase())
      if (k !== undefined) return env[k] ?? ''
    }
    return ''
  }
  return value.replace(/%([A-Za-z_][A-Za-z0-9_()]*)%|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a?: string, b?: string, c?: string) => get((a ?? b ?? c)!))
}

/** The program, its arguments and environment for a process source. */
export function processCommand(cfg: Pick<ProcessSource, 'command' | 'args' | 'env'>, parentEnv: NodeJS.ProcessEnv = process.env): {file: string; args: string[]; env?: NodeJS.ProcessEnv; unused?: string} {
  let file: string
  let args: string[]
  let unused: string | undefined
  if (cfg.args === undefined) {
    const r = splitLuaArgs(cfg.command)
    file = r.args[0] ?? ''
    args = r.args.slice(1)
    unused = r.tail
  } else if (typeof cfg.args === 'string') {
    file = cfg.command
    const r = splitLuaArgs(cfg.args)
    args = r.args
    unused = r.tail
  } else {
    file = cfg.command
    args = [...cfg.args]
  }
  let env: NodeJS.ProcessEnv | undefined
  if (cfg.env !== undefined) {
    env = {}
    for (const name of cfg.env.inherit) {
      const v = parentEnv[name] ?? (process.platform === 'win32' ? parentEnv[Object.keys(parentEnv).find((k) => k.toUpperCase() === name.toUpperCase()) ?? ''] : undefined)
      if (v !== undefined) env[name] = v
    }
    for (const [k, v] of Object.entries(cfg.env.set)) env[k] = expandVars(v, parentEnv)
  }
  return {file, args, env, unused}
}

export interface ProcessOptions {
  /** Grace period between SIGTERM and SIGKILL when stopping, ms (default 5000). */
  killMs?: number
}

export class ProcessLineSource extends ManagedSource implements Source {
  readonly kind = 'process' as const
  private child: ChildProcess | undefined
  private readonly cmd: ReturnType<typeof processCommand>
  private readonly killMs: number
  private startedAt = 0
  /** Times the program was started. */
  starts = 0

  constructor(
    readonly cfg: ProcessSource,
    ctx: SourceContext,
    opts: ProcessOptions = {},
  ) {
    super(cfg.name, ctx, Backoff.fromSeconds(cfg.restart))
    this.cmd = processCommand(cfg)
    this.killMs = opts.killMs ?? 5000
  }

  /** The pid of the running program. */
  get pid(): number | undefined {
    return this.child?.pid
  }

  protected async open(): Promise<void> {
    const {file, args, env, unused} = this.cmd
    if (file === '') throw new PermanentError(`no program in the command ${JSON.stringify(this.cfg.command)}`)
    if (unused !== undefined && this.starts === 0) this.ctx.log.warning(`${this.label} unused command text after a newline: ${JSON.stringify(unused)}`)
    const monitor = new Set(this.cfg.monitor)
    const child = spawn(file, args, {
      shell: false,
      windowsHide: true,
      env,
      stdio: ['ignore', monitor.has('stdout') ? 'pipe' : 'ignore', monitor.has('stderr') ? 'pipe' : 'ignore'],
    })
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject)
      child.once('spawn', () => {
        child.off('error', reject)
        resolve()
      })
    })
    this.child = child
    this.starts++
    this.startedAt = Date.now()
    const pid = child.pid ?? 0
    this.ctx.log.info(`${this.label} started ${file}${args.length > 0 ? ' ' + args.map((a) => JSON.stringify(a)).join(' ') : ''} (pid ${pid})`)
    const splitters: LineSplitter[] = []
    for (const [stream, readable] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      if (readable === null) continue
      const fields = {[RECORD_FIELDS.pid]: pid, stream}
      let seen = 0
      const sp = new LineSplitter({eol: this.cfg.eol ?? DEFAULT_EOL, maxLine: this.cfg.maxLine}, (line) => {
        if (line.length > 0) this.emitter.emit(line, {...fields}, undefined, 0)
      })
      splitters.push(sp)
      readable.on('data', (chunk: Buffer) => {
        this.stats.bytes += chunk.length
        sp.push(chunk)
        if (sp.truncated !== seen) {
          this.drops.drop(`lines longer than ${this.cfg.maxLine} characters cut`, sp.truncated - seen)
          seen = sp.truncated
        }
      })
      readable.on('error', (e) => this.ctx.log.debug(`${this.label} ${stream}: ${e.message}`))
    }
    child.on('error', (e) => {
      this.stats.errors++
      this.stats.lastError = errorText(e)
    })
    child.once('close', (code, signal) => {
      for (const sp of splitters) sp.flush()
      if (this.child !== child) return
      this.child = undefined
      this.exited(code, signal)
    })
  }

  protected async close(): Promise<void> {
    const c = this.child
    this.child = undefined
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        c.kill('SIGKILL')
      }, this.killMs)
      c.once('close', () => {
        clearTimeout(t)
        resolve()
      })
      if (!c.kill('SIGTERM')) {
        clearTimeout(t)
        resolve()
      }
    })
  }

  private exited(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopped) return
    if (Date.now() - this.startedAt >= 60_000) this.backoff.reset()
    const how = signal !== null ? `killed by ${signal}` : `exited with status ${code}`
    this.stats.state = 'retrying'
    this.stats.lastError = `program ${how}`
    const delay = this.backoff.next()
    this.ctx.log.warning(`${this.label} program ${how}; restarting in ${delay} ms`)
    this.retry.schedule(delay, () => void this.attempt())
  }
}

/** The source of a `process:` configuration. */
export function createProcessSource(cfg: ProcessSource, ctx: SourceContext, opts?: ProcessOptions): ProcessLineSource {
  return new ProcessLineSource(cfg, ctx, opts)
}
