/**
 * Command actions: lua-spylog's `ACTION{ ban = '…', unban = '…', unique = '…', parameters = {…},
 * options = {timeout = ms} }` and fail2ban action.d `actionban`/`actionunban` commands.
 *
 * Safety: a command template is split into argv elements first (argv.ts), and tags (tags.ts) are
 * substituted inside each element afterwards; the program is spawned with `shell: false`. So a
 * captured user name such as `x"; touch /tmp/pwned; "` or `$(id)` is one literal argument of the
 * program and nothing else runs. fail2ban commands, written for a shell, are cut into the
 * commands of their lines, `&&` and `;`; anything else that needs a shell (pipes, redirections,
 * `$VAR`, backquotes) is refused when the configuration is loaded. Their configuration
 * parameters (`<iptables>` = `iptables -w`) are expanded before splitting, as fail2ban does;
 * values from the ban (`<ip>`, captures) only after.
 *
 * The program (first element) takes parameters only, never ban values or captures. A capture
 * standing alone as an element can still look like an option to the program (`-o…`): write
 * `user=<user>`, or put it after `--`, when the program reads options.
 *
 * A command that does not exit within `options.timeout` milliseconds (default 60 000) is killed
 * with its whole process tree; a non-zero exit status fails the job with the end of its stderr.
 */
import type {ActionCommand, ActionConfig, ExternalActionCommand, ParamValue} from '../config/model.js'
import {ConfigError} from '../fail2ban/errors.js'
import {ActionError, type ActionContext, type ActionOp, type ActionRunner, type BanRequest} from './action.js'
import {ArgvError, joinCommandLine, splitCommandLine, splitScript, type ScriptCommand} from './argv.js'
import {execArgv, type ExecResult} from './exec.js'
import {expandParams, paramText, substitute, TagValues} from './tags.js'

const DEFAULT_TIMEOUT_MS = 60_000
const TAIL_BYTES = 2048

/** Output on one line, for an error message. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim()
}

/** Whether an action comes from a fail2ban action.d file (shell-style commands, lower-case tags). */
export function isFail2banAction(cfg: ActionConfig): boolean {
  return /\.(conf|local)$/i.test(cfg.origin.file) || cfg.start !== undefined || cfg.stop !== undefined || cfg.check !== undefined
}

interface Template {
  /** Commands of the template, each an argv of element templates. */
  readonly commands: readonly ScriptCommand[]
  readonly fail2ban: boolean
  readonly unique?: string
  readonly timeoutMs: number
}

function timeoutOf(options: Readonly<Record<string, ParamValue>> | undefined, fallback: number, cfg: ActionConfig): number {
  const t = options?.timeout
  if (t === undefined) return fallback
  const n = typeof t === 'string' ? Number(t) : t
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new ConfigError(`action "${cfg.name}": options.timeout: expected a positive number of milliseconds, got ${JSON.stringify(t)}`, cfg.origin.file, cfg.origin.line || undefined)
  return n
}

/**
 * Splits one configured command into its argv templates (at load time), or throws a ConfigError
 * naming the action and the problem.
 */
function compile(cfg: ActionConfig, op: ActionOp, cmd: ExternalActionCommand): Template {
  const fail2ban = isFail2banAction(cfg)
  const field = op
  const where = (e: ArgvError, text: string): string => {
    const near = text.slice(Math.max(0, e.at - 20), e.at + 20).trim()
    return near === '' ? e.message : `${e.message}, near ${JSON.stringify(near)}`
  }
  let commands: ScriptCommand[]
  let text = cmd.args ?? cmd.command
  try {
    if (cmd.args !== undefined) {
      // a program and an argument string: the program is taken as written (it may hold blanks)
      commands = [{argv: [cmd.command, ...splitCommandLine(cmd.args)], after: 'and'}]
    } else if (fail2ban) {
      text = expandParams(cmd.command, cfg.parameters)
      commands = splitScript(text)
    } else {
      commands = [{argv: splitCommandLine(cmd.command), after: 'and'}]
    }
  } catch (e) {
    if (!(e instanceof ArgvError)) throw e
    throw new ConfigError(`action "${cfg.name}": ${where(e, text)}`, cfg.origin.file, cfg.origin.line || undefined, field)
  }
  if (commands.length === 0 || commands.some((c) => c.argv.length === 0 || c.argv[0] === '')) throw new ConfigError(`action "${cfg.name}": empty command`, cfg.origin.file, cfg.origin.line || undefined, field)
  const batch = commands.find((c) => /\.(bat|cmd)$/i.test(c.argv[0]!))
  if (batch !== undefined) {
    throw new ConfigError(`action "${cfg.name}": "${batch.argv[0]}" is a batch file, which only cmd.exe runs, and cmd.exe would parse captured text as commands: use a program (.exe, or powershell.exe -File script.ps1 with the values as arguments)`, cfg.origin.file, cfg.origin.line || undefined, field)
  }
  const timeoutMs = timeoutOf(cmd.options, timeoutOf(cfg.options, DEFAULT_TIMEOUT_MS, cfg), cfg)
  return {commands, fail2ban, unique: cmd.unique ?? cfg.unique, timeoutMs}
}

/** An ActionRunner running the commands of one command ACTION{} / action.d file. */
export class CommandRunner implements ActionRunner {
  readonly name: string
  readonly reversible: boolean
  private readonly templates: Partial<Record<ActionOp, Template>>

  constructor(
    private readonly cfg: ActionConfig,
    private readonly ctx: ActionContext,
  ) {
    this.name = cfg.name
    this.reversible = cfg.unban !== undefined
    this.templates = {}
    for (const op of ['ban', 'unban'] as const) {
      const c: ActionCommand | undefined = cfg[op]
      if (c === undefined) continue
      if (c.kind !== 'command') throw new ConfigError(`action "${cfg.name}": ${op} calls module ${c.module}, which is not a command`, cfg.origin.file, cfg.origin.line || undefined, op)
      this.templates[op] = compile(cfg, op, c)
    }
  }

  /** The argv of each command `op` runs for `req` (tags substituted inside the elements). */
  commands(op: ActionOp, req: BanRequest): {argv: string[]; after: ScriptCommand['after']}[] {
    const t = this.templates[op]
    if (t === undefined) return []
    const values = this.values(req)
    // the program itself comes from the configuration only: parameters, never ban values or captures
    const params = {...this.cfg.parameters, ...req.params}
    const configOnly = {get: (name: string) => {
      const v = Object.hasOwn(params, name) ? params[name] : Object.hasOwn(params, name.toLowerCase()) ? params[name.toLowerCase()] : undefined
      return v === undefined ? undefined : paramText(v)
    }}
    return t.commands.map((c) => ({argv: c.argv.map((a, i) => substitute(a, i === 0 ? configOnly : values)), after: c.after}))
  }

  private values(req: BanRequest): TagValues {
    return new TagValues(req.ticket, {...this.cfg.parameters, ...req.params})
  }

  unique(op: ActionOp, req: BanRequest): string {
    const t = this.templates[op] ?? this.templates.ban ?? this.templates.unban
    if (t?.unique === undefined) return `${req.ticket.jail}\u0000${req.ticket.id}`
    return substitute(t.unique, this.values(req))
  }

  async run(op: ActionOp, req: BanRequest): Promise<void> {
    const t = this.templates[op]
    if (t === undefined) return
    const where = `[${req.ticket.jail}] action "${this.name}" ${op} ${req.ticket.id}`
    let previousFailed: string | undefined
    for (const c of this.commands(op, req)) {
      if (previousFailed !== undefined && c.after === 'and') throw new ActionError(previousFailed)
      if (c.argv[0] === '') throw new ActionError(`the program of the ${op} command is empty after substituting parameters`, false)
      const line = joinCommandLine(c.argv)
      if (this.ctx.dryRun === true) {
        this.ctx.log.info(`${where}: would run: ${line}`)
        continue
      }
      if (this.ctx.log.enabled('debug')) this.ctx.log.debug(`${where}: running ${line}`)
      let r: ExecResult
      try {
        // the process tree is killed on timeout; the end of the output says why a command failed
        r = await execArgv(c.argv, {timeoutMs: t.timeoutMs, killTree: true, maxOutput: TAIL_BYTES, keep: 'tail'})
      } catch (e) {
        const cause = ((e as Error).cause ?? e) as NodeJS.ErrnoException
        previousFailed = cause.code === 'ENOENT' ? `cannot run "${c.argv[0]}": program not found` : `cannot run "${c.argv[0]}": ${cause.message}`
        continue
      }
      const stderr = oneLine(r.stderr)
      const stdout = oneLine(r.stdout)
      if (r.timedOut) previousFailed = `"${c.argv[0]}" did not finish within ${t.timeoutMs} ms and was killed`
      else if (r.code !== 0) previousFailed = `"${c.argv[0]}" exited with ${r.code !== null ? `status ${r.code}` : `signal ${r.signal}`}${stderr !== '' ? `: ${stderr}` : stdout !== '' ? `: ${stdout}` : ''}`
      else previousFailed = undefined
    }
    if (previousFailed !== undefined) throw new ActionError(previousFailed)
  }
}
