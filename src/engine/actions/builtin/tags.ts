/**
 * Texts of the notifying built-ins (mail subject and body, log line): the module's argument
 * string (`{'@spylog.actions.mail', [["subject <HOST>" "body…"]]}`) split as lua-spylog splits
 * it (splitLuaArgs of ../argv.ts; tabs and new lines also separate), and `<TAG>`s filled in from the ticket and the job's parameters. The result is only ever
 * a message text: it never reaches a command line.
 */
import type {ActionConfig} from '../../config/model.js'
import {formatLogTime} from '../../log/logger.js'
import type {ActionOp, BanRequest} from '../action.js'
import {captureText, paramText, replaceTags} from '../tags.js'

/** The tag values of one job (names in lower case). */
export function jobTags(op: ActionOp, req: BanRequest): Map<string, string> {
  const t = req.ticket
  const tags = new Map<string, string>()
  for (const [k, v] of Object.entries(req.params)) tags.set(k.toLowerCase(), paramText(v))
  for (const [k, v] of Object.entries(t.data)) {
    const text = captureText(v)
    if (text !== undefined) tags.set(k.toLowerCase(), text)
  }
  const lines = t.failures.flatMap((f) => f.lines)
  const ip = t.isAddress ? t.id : (t.failures.find((f) => f.ip !== undefined)?.ip ?? '')
  const own: Record<string, string> = {
    id: t.id, host: t.id, ip, jail: t.jail, name: t.jail, filter: t.filter, uuid: t.uuid, ban_uuid: t.uuid,
    bantime: String(t.bantime), time: String(Math.floor(t.time)), date: formatLogTime(t.time * 1000),
    failures: String(t.failures.length), bancount: String(t.banCount), matches: lines.join('\n'), msg: lines.join('\n'),
    action: op,
  }
  for (const [k, v] of Object.entries(own)) tags.set(k, v)
  return tags
}

/** Replaces each `<name>` whose name (any case) has a value; other `<…>` text stays as written. */
export function applyTags(text: string, tags: ReadonlyMap<string, string>): string {
  return replaceTags(text, (name) => tags.get(name.toLowerCase()))
}

/**
 * Whether a notifying action handles `op`: an action that names commands handles the ops it
 * names (fail2ban's sendmail* actions have no unban, so they send nothing on unban); one that
 * names none (built in code) handles both.
 */
export function handles(cfg: ActionConfig, op: ActionOp): boolean {
  return (cfg.ban === undefined && cfg.unban === undefined) || cfg[op] !== undefined
}
