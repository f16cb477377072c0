/**
 * The `log` built-in: writes one line per ban/unban, through spylog's own log or to a file of
 * its own (`options = {file = '/var/log/spylog-bans.log', level = 'notice'}`). The line is the
 * module's argument string with `<TAG>`s filled in, or a default that names the jail, the
 * offender, the filter and the failure count. (It does not use the `[jail] Ban id` form the
 * daemon writes itself, so a recidive filter never counts a ban twice.)
 */
import {appendFile, mkdir} from 'node:fs/promises'
import path from 'node:path'
import {type ActionConfig, LOG_LEVELS, type LogLevel} from '../../config/model.js'
import {formatLogLine} from '../../log/logger.js'
import {ActionError, type ActionContext, type ActionOp, type ActionRunner, type BanRequest} from '../action.js'
import {optionText, where} from './firewall.js'
import {splitLuaArgs} from '../argv.js'
import {applyTags, handles, jobTags} from './tags.js'

/** The log runner; see the module comment. */
export class LogRunner implements ActionRunner {
  readonly name: string
  /** A notification: a restart that re-applies active bans does not send it again (ActionRunner.reapply, queue branch). */
  readonly reapply = false
  readonly level: LogLevel
  /** Absolute path of the file lines go to, or undefined for spylog's log. */
  readonly file?: string

  constructor(
    private readonly cfg: ActionConfig,
    private readonly ctx: ActionContext,
  ) {
    this.name = cfg.name
    const level = optionText(cfg, 'level')?.toLowerCase() ?? 'notice'
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ActionError(`${where(cfg)}: option level: ${JSON.stringify(level)} is not one of ${LOG_LEVELS.join(', ')}`, false)
    this.level = level as LogLevel
    const file = optionText(cfg, 'file')
    if (file !== undefined) this.file = path.resolve(ctx.dataDir ?? '.', file)
  }

  unique(_op: ActionOp, req: BanRequest): string {
    return `${req.ticket.jail}\u0000${req.ticket.id}`
  }

  /** The line of a job (before the time/level prefix). */
  message(op: ActionOp, req: BanRequest): string {
    const args = this.cfg[op]?.kind === 'module' ? this.cfg[op].args : undefined
    const t = req.ticket
    if (args !== undefined && args.trim() !== '') return applyTags(splitLuaArgs(args, {multiline: true}).args.join(' '), jobTags(op, req))
    const time = t.bantime < 0 ? 'permanent' : `bantime ${t.bantime}s`
    return `${this.name}: ${op} ${t.id} (jail ${t.jail}, filter ${t.filter}, ${t.failures.length} failure${t.failures.length === 1 ? '' : 's'}, ${time})`
  }

  async run(op: ActionOp, req: BanRequest): Promise<void> {
    if (!handles(this.cfg, op)) return
    const msg = this.message(op, req)
    if (this.file === undefined || this.ctx.dryRun === true) {
      this.ctx.log.log(this.level, this.ctx.dryRun === true && this.file !== undefined ? `${this.name}: dry run, would write to ${this.file}: ${msg}` : msg)
      return
    }
    try {
      await mkdir(path.dirname(this.file), {recursive: true})
      await appendFile(this.file, formatLogLine(this.level, msg) + '\n')
    } catch (e) {
      throw new ActionError(`${this.name}: cannot write ${this.file}: ${(e as Error).message}`)
    }
  }
}
