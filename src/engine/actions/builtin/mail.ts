/**
 * The `mail` built-in: an SMTP message per ban (and per unban when the action has an unban
 * command), sent with nodemailer. Options follow lua-spylog's mail action:
 *
 *   options = {
 *     server = {address = 'smtp.example.org:587', user = 'spylog', password = '…', ssl = false},
 *     from   = {title = 'spylog', address = 'spylog@example.org'},
 *     to     = {title = 'Admin', address = 'admin@example.org'},   -- or a list, or 'a@x, b@y'
 *   }
 *
 * (flat `host`, `port`, `secure`, `user`, `password`, `from`, `to` work too; `timeout` is in
 * milliseconds; `verify = false` accepts any server certificate). Actions mapped from fail2ban
 * (sendmail*, mail*, smtp.py) default to the local MTA (localhost:25, or smtp.py's `host`,
 * `user`, `password` parameters), sender root@<host> and recipient root@localhost, as fail2ban
 * does. fail2ban's parameters override them per jail: `dest`, `destname`, `sender`,
 * `sendername`; lua-spylog's `fullsubj`
 * and `fullmsg` replace subject and body. The module's argument string gives the subject and
 * body templates (`"Ban <HOST>" "Jail: <JAIL> …"`); without one spylog writes its own message,
 * with the failure lines when the action name has the `lines` feature (sendmail-whois-lines)
 * or `lines = true`. `whois` lookups are not done (the feature is accepted and ignored).
 */
import {hostname} from 'node:os'
import nodemailer from 'nodemailer'
import type {Transporter} from 'nodemailer'
import type {ActionConfig, ParamValue} from '../../config/model.js'
import {formatLogTime} from '../../log/logger.js'
import {ActionError, type ActionContext, type ActionOp, type ActionRunner, type BanRequest} from '../action.js'
import {optionNumber, paramText, where} from './firewall.js'
import {splitLuaArgs} from '../argv.js'
import {applyTags, handles, jobTags} from './tags.js'

/** A mailbox: address and optional display name. */
export interface Mailbox {
  readonly name?: string
  readonly address: string
}

/** SMTP settings read from the options. */
export interface SmtpSettings {
  readonly host: string
  readonly port: number
  readonly secure: boolean
  readonly user?: string
  readonly password?: string
  readonly verify: boolean
}

/** The message of one job. */
export interface MailMessage {
  readonly from: Mailbox
  readonly to: readonly Mailbox[]
  readonly subject: string
  readonly text: string
}

/** Whether the action was mapped from a fail2ban mail action (sendmail*, mail*, smtp.py). */
function fromFail2ban(cfg: ActionConfig): boolean {
  const v = cfg.builtin?.variant
  return v === 'sendmail' || v === 'mail' || v === 'smtp'
}

const ADDRESS = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+$/

function obj(v: ParamValue | undefined): Record<string, ParamValue> | undefined {
  return v !== undefined && typeof v === 'object' && !Array.isArray(v) ? v : undefined
}

/** Mailboxes from an option: `'a@x'`, `'a@x, b@y'`, `{title, address}`, or a list of those. */
function mailboxes(v: ParamValue | undefined, field: string, at: string): Mailbox[] {
  if (v === undefined) return []
  if (Array.isArray(v)) return v.flatMap((x) => mailboxes(x, field, at))
  const o = obj(v)
  if (o !== undefined) {
    const address = paramText(o.address)
    if (address === undefined || !ADDRESS.test(address)) throw new ActionError(`${at}: option ${field}.address: expected an e-mail address, got ${JSON.stringify(o.address ?? null)}`, false)
    const name = paramText(o.title ?? o.name)
    return [{address, ...(name !== undefined ? {name} : {})}]
  }
  return String(v).split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    const m = /^(.*?)\s*<([^<>]+)>$/.exec(s)
    const address = m !== null ? m[2]!.trim() : s
    if (!ADDRESS.test(address)) throw new ActionError(`${at}: option ${field}: ${JSON.stringify(s)} is not an e-mail address`, false)
    const name = m !== null ? m[1]!.replace(/^"|"$/g, '').trim() : ''
    return name !== '' ? {name, address} : {address}
  })
}

function bool(v: ParamValue | undefined): boolean | undefined {
  if (v === undefined) return undefined
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'object') return true
  const t = v.trim().toLowerCase()
  return t === 'true' || t === 'yes' || t === '1' || t === 'on'
}

/** The SMTP settings of an action (lua-spylog `server = {…}` or flat options). */
export function smtpSettings(cfg: ActionConfig): SmtpSettings {
  const at = where(cfg)
  const o = cfg.options
  const server = obj(o.server) ?? {}
  const p = cfg.parameters
  // fail2ban's mail actions hand mail to the local MTA (smtp.py takes a `host` parameter)
  let host = paramText(server.address ?? server.host ?? o.host) ?? (fromFail2ban(cfg) ? (paramText(p.host) ?? 'localhost') : undefined)
  if (host === undefined) throw new ActionError(`${at}: option server.address (or host) is required: the SMTP server`, false)
  let port: number | undefined
  const hp = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(host)
  if (hp !== null) {
    host = hp[1]!.replace(/^\[|\]$/g, '')
    port = Number(hp[2])
  }
  const pv = server.port ?? o.port
  if (pv !== undefined) port = Number(pv)
  const secure = bool(server.ssl ?? server.secure ?? o.secure ?? o.ssl) ?? port === 465
  port ??= secure ? 465 : 25
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ActionError(`${at}: option port: ${JSON.stringify(pv ?? port)} is not a port number`, false)
  const user = paramText(server.user ?? o.user ?? p.user)
  const password = paramText(server.password ?? o.password ?? p.password)
  const verify = bool(server.verify ?? o.verify) ?? true
  return {host, port, secure, user, password, verify}
}

/** The mail runner; see the module comment. */
export class MailRunner implements ActionRunner {
  readonly name: string
  /** A notification: a restart that re-applies active bans does not send it again (ActionRunner.reapply, queue branch). */
  readonly reapply = false
  readonly smtp: SmtpSettings
  private from: Mailbox[]
  private to: Mailbox[]
  private readonly lines: boolean
  private readonly timeoutMs: number
  private transport?: Transporter

  constructor(
    private readonly cfg: ActionConfig,
    private readonly ctx: ActionContext,
  ) {
    this.name = cfg.name
    const at = where(cfg)
    this.smtp = smtpSettings(cfg)
    this.from = mailboxes(cfg.options.from, 'from', at)
    this.to = mailboxes(cfg.options.to, 'to', at)
    const p = cfg.parameters
    if (fromFail2ban(cfg)) {
      // fail2ban's defaults (sender root@<host>, dest root), unless the jail passes sender/dest
      if (this.from.length === 0) this.from = [{address: `root@${hostname() || 'localhost'}`}]
      if (this.to.length === 0) this.to = [{address: 'root@localhost'}]
    }
    if (this.from.length === 0 && p.sender === undefined) throw new ActionError(`${at}: option from is required (the sender address)`, false)
    if (this.to.length === 0 && p.dest === undefined) throw new ActionError(`${at}: option to is required (who gets the messages)`, false)
    const features = cfg.builtin?.features ?? []
    this.lines = bool(cfg.options.lines) ?? features.includes('lines')
    this.timeoutMs = optionNumber(cfg, 'timeout') ?? 30_000
    if (features.includes('whois')) ctx.log.info(`${this.name}: whois lookups are not supported; messages are sent without them`)
  }

  unique(op: ActionOp, req: BanRequest): string {
    return `${req.ticket.jail}\u0000${req.ticket.id}`
  }

  /** The message of a job (exposed for tests and `--dry-run`). */
  message(op: ActionOp, req: BanRequest): MailMessage {
    const at = where(this.cfg)
    const p = {...this.cfg.parameters, ...req.params}
    const tags = jobTags(op, req)
    let from = this.from
    const sender = paramText(p.sender)
    const named = (list: Mailbox[], name: string | undefined): Mailbox[] => (name !== undefined && list.length === 1 ? [{address: list[0]!.address, name}] : list)
    if (sender !== undefined) from = named(mailboxes(sender, 'parameters.sender', at), paramText(p.sendername))
    let to = this.to
    const dest = paramText(p.dest)
    if (dest !== undefined) to = named(mailboxes(dest, 'parameters.dest', at), paramText(p.destname))
    const cmd = this.cfg[op]
    const args = cmd?.kind === 'module' && cmd.args !== undefined ? splitLuaArgs(cmd.args, {multiline: true}).args : []
    const subjectT = paramText(p.fullsubj) ?? args[0]
    const bodyT = paramText(p.fullmsg) ?? args[1]
    const subject = subjectT !== undefined ? applyTags(subjectT, tags) : this.defaultSubject(op, req)
    let text = bodyT !== undefined ? applyTags(bodyT, tags) : this.defaultBody(op, req)
    if (bodyT !== undefined && this.lines) text += '\n\n' + this.failureLines(req)
    return {
      from: from[0]!,
      to,
      // a header is one line, whatever a capture held
      subject: subject.replace(/[\r\n\0]+/g, ' ').trim(),
      text: text.replace(/\0/g, '\uFFFD'),
    }
  }

  private defaultSubject(op: ActionOp, req: BanRequest): string {
    const t = req.ticket
    return `[spylog] ${t.jail}: ${op === 'ban' ? 'banned' : 'unbanned'} ${t.id}${op === 'ban' ? ` after ${t.failures.length} failure${t.failures.length === 1 ? '' : 's'}` : ''}`
  }

  private defaultBody(op: ActionOp, req: BanRequest): string {
    const t = req.ticket
    const out = [
      `spylog ${op === 'ban' ? 'banned' : 'unbanned'} ${t.id} (jail ${t.jail}).`,
      '',
      `Jail:      ${t.jail}`,
      `Offender:  ${t.id}`,
      `Filter:    ${t.filter}`,
      `Failures:  ${t.failures.length}`,
      `Ban time:  ${t.bantime < 0 ? 'permanent' : `${t.bantime} s`}`,
      `Banned at: ${formatLogTime(t.time * 1000)}`,
      `Earlier bans: ${t.banCount}`,
      `Ban id:    ${t.uuid}`,
    ]
    if (op === 'ban' && this.lines) out.push('', this.failureLines(req))
    return out.join('\n') + '\n'
  }

  private failureLines(req: BanRequest): string {
    const lines = req.ticket.failures.flatMap((f) => f.lines)
    return `Lines containing failures of ${req.ticket.id}:\n` + (lines.length > 0 ? lines.map((l) => `  ${l}`).join('\n') : '  (none kept)')
  }

  async run(op: ActionOp, req: BanRequest): Promise<void> {
    if (!handles(this.cfg, op)) return
    const msg = this.message(op, req)
    if (this.ctx.dryRun === true) {
      this.ctx.log.info(`${this.name}: dry run, would mail ${msg.to.map((m) => m.address).join(', ')}: ${msg.subject}`)
      return
    }
    this.transport ??= nodemailer.createTransport({
      host: this.smtp.host,
      port: this.smtp.port,
      secure: this.smtp.secure,
      auth: this.smtp.user !== undefined ? {user: this.smtp.user, pass: this.smtp.password ?? ''} : undefined,
      tls: {rejectUnauthorized: this.smtp.verify},
      connectionTimeout: this.timeoutMs,
      greetingTimeout: this.timeoutMs,
      socketTimeout: this.timeoutMs,
    })
    try {
      await this.transport.sendMail({
        from: msg.from,
        to: [...msg.to],
        subject: msg.subject,
        text: msg.text,
        headers: {'X-Spylog-Jail': req.ticket.jail.replace(/[\r\n]/g, ' '), 'X-Spylog-Ban-Id': req.ticket.uuid},
      })
    } catch (e) {
      const err = e as Error & {code?: string; response?: string}
      throw new ActionError(`${this.name}: sending mail via ${this.smtp.host}:${this.smtp.port} failed: ${err.code !== undefined ? `${err.code}: ` : ''}${err.response ?? err.message}`, err.code !== 'EENVELOPE')
    }
  }

  async stop(): Promise<void> {
    this.transport?.close()
    this.transport = undefined
  }
}
