/**
 * `<TAG>` values of command actions, and their substitution inside argv elements.
 *
 * Tags of a ban (lua-spylog's names, upper case; fail2ban's lower-case names in brackets):
 *
 * | tag          | value |
 * |--------------|-------|
 * | `<HOST>`     | the banned address (the network address for a network ban `2001:db8::/64`); for a ticket that is not an address, the offender id (`<ip>`, `<fid>`) |
 * | `<NET>`      | prefix length: of a network ban, else the `net` parameter, else 32 (IPv4) / 128 (IPv6) |
 * | `<PORT>`     | the `port` parameter, else a captured `port`, else `any` (`<port>`) |
 * | `<PROTOCOL>` | the `protocol` parameter, else a captured `protocol`, else `any` (`<protocol>`) |
 * | `<JAIL>`     | jail name (`<name>` when no `name` parameter is given) |
 * | `<FILTER>`   | filter of the failure that tripped the jail |
 * | `<DATE>`     | ban start, local time `YYYY-MM-DD HH:MM:SS` |
 * | `<BANTIME>`  | ban duration in seconds, -1 for a permanent ban (`<bantime>`) |
 * | `<UUID>`     | the ban's unique id: the same in the ban and the unban command, so a rule named after it can be deleted (`<BAN_UUID>` is the same value) |
 * | `<MSG>`      | the last failure's text (its first line, at most 1000 characters) |
 * | `<TIME>`     | ban start, Unix seconds (`<time>`) |
 * | `<FAILURES>` | number of failures (`<failures>`) |
 * | `<MATCHES>`  | every failure line, joined by new lines (`<matches>`, `<ipmatches>`, `<ipjailmatches>`) |
 * | `<ip-rev>`   | fail2ban: an IPv4 address with its bytes reversed and a final dot (DNS blocklists) |
 *
 * Any other tag is a parameter (`<filterlist>` → the `filterlist` parameter) or a capture of the
 * failures (`<user>`, fail2ban `<F-USER>`). As in lua-spylog a tag is looked up as written, then
 * in lower case; parameters win over captures. An unknown tag becomes the empty text.
 *
 * Substitution is one pass over the template: a value is inserted as is and never scanned for
 * tags again, so a captured `<HOST>` stays literal text.
 */
import type {ParamValue} from '../config/model.js'
import {formatLocalTime} from '../log/logger.js'
import type {Ticket} from '../types.js'

/** Text of a parameter value: lists joined with `,`, tables as JSON. */
export function paramText(v: ParamValue): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return v.map(paramText).join(',')
  return JSON.stringify(v)
}

/** Text of a captured value: strings as they are, numbers and booleans printed, objects as JSON; undefined for nothing (or what JSON cannot write). */
export function captureText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  try {
    return JSON.stringify(v)
  } catch {
    return undefined
  }
}

/** Resolves tag names for one ban job. */
export class TagValues {
  private readonly builtin: Map<string, string>
  private readonly params: Readonly<Record<string, ParamValue>>
  private readonly data: Record<string, unknown>

  constructor(ticket: Ticket, params: Readonly<Record<string, ParamValue>>) {
    this.params = params
    this.data = ticket.data ?? {}
    const slash = ticket.id.indexOf('/')
    const host = slash >= 0 && ticket.isAddress ? ticket.id.slice(0, slash) : ticket.id
    const v6 = host.includes(':')
    const net = slash >= 0 && ticket.isAddress ? ticket.id.slice(slash + 1) : this.param('net') ?? (v6 ? '128' : '32')
    const last = ticket.failures[ticket.failures.length - 1]
    const msg = (last?.lines[0] ?? '').slice(0, 1000)
    const matches = ticket.failures.flatMap((f) => f.lines).join('\n')
    const jailName = this.param('name') ?? ticket.jail
    const b = new Map<string, string>([
      ['HOST', host],
      ['NET', net],
      ['PORT', this.param('port') ?? captureText(this.data.port) ?? 'any'],
      ['PROTOCOL', this.param('protocol') ?? captureText(this.data.protocol) ?? 'any'],
      ['JAIL', ticket.jail],
      ['FILTER', ticket.filter],
      ['DATE', formatLocalTime(ticket.time * 1000)],
      ['BANTIME', String(ticket.bantime)],
      ['UUID', ticket.uuid],
      ['BAN_UUID', ticket.uuid],
      ['MSG', msg],
      ['TIME', String(Math.floor(ticket.time))],
      ['FAILURES', String(ticket.failures.length)],
      ['MATCHES', matches],
    ])
    // fail2ban's lower-case names
    for (const [f2b, ours] of [['ip', 'HOST'], ['fid', 'HOST'], ['ip-rev', ''], ['bantime', 'BANTIME'], ['time', 'TIME'], ['failures', 'FAILURES'], ['matches', 'MATCHES'], ['ipmatches', 'MATCHES'], ['ipjailmatches', 'MATCHES']] as const) {
      if (ours !== '') b.set(f2b, b.get(ours)!)
    }
    b.set('ip-rev', host.includes('.') ? host.split('.').reverse().join('.') + '.' : host)
    b.set('name', jailName)
    this.builtin = b
  }

  private param(name: string): string | undefined {
    const v = Object.hasOwn(this.params, name) ? this.params[name] : undefined
    return v === undefined ? undefined : paramText(v)
  }

  /** The value of tag `name` (without brackets), or undefined when nothing has that name. */
  get(name: string): string | undefined {
    const upper = this.builtin.get(name)
    if (upper !== undefined && name === name.toUpperCase()) return upper
    for (const n of name === name.toLowerCase() ? [name] : [name, name.toLowerCase()]) {
      const p = this.param(n)
      if (p !== undefined) return p
      const bare = n.startsWith('f-') ? n.slice(2) : n.startsWith('F-') ? n.slice(2).toLowerCase() : undefined
      for (const c of bare !== undefined ? [n, bare] : [n]) {
        const d = Object.hasOwn(this.data, c) ? captureText(this.data[c]) : undefined
        if (d !== undefined) return d
      }
      const bl = this.builtin.get(n) ?? this.builtin.get(n.toUpperCase())
      if (bl !== undefined) return bl
    }
    return undefined
  }
}

const TAG = /<([A-Za-z_][A-Za-z0-9_./-]*)>/g

/**
 * Replaces every `<tag>` of `text` in one pass by `lookup(name)` (the name without brackets, as
 * written); a tag without a value stays as written. Inserted values are never scanned for tags.
 * Every tag substitution of spylog goes through here (command actions, notifying built-ins,
 * `ignorecommand`).
 */
export function replaceTags(text: string, lookup: (name: string) => string | undefined): string {
  if (!text.includes('<')) return text
  return text.replace(TAG, (m, name: string) => lookup(name) ?? m)
}

/** Replaces every `<tag>` of `template` in one pass (unknown tags: empty text). */
export function substitute(template: string, values: {get(name: string): string | undefined}): string {
  return replaceTags(template, (name) => values.get(name) ?? '')
}

/**
 * Expands the tags of `template` that name configuration parameters, recursively (a parameter's
 * text may hold tags), leaving every other tag in place. Used on fail2ban action.d commands
 * BEFORE they are split, because fail2ban parameters such as `<iptables>` = `iptables -w` stand
 * for several words. Parameter values are configuration text, never log text.
 */
export function expandParams(template: string, params: Readonly<Record<string, ParamValue>>, depth = 0): string {
  if (depth > 20 || !template.includes('<')) return template
  return template.replace(TAG, (m, name: string) => {
    const v = Object.hasOwn(params, name) ? params[name] : undefined
    return v === undefined ? m : expandParams(paramText(v), params, depth + 1)
  })
}
