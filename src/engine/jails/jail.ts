/**
 * A jail: counts the failures its filters report per offender and decides bans (Tickets).
 *
 * For each Failure (`add`):
 * 1. the jail's capture filters (`cfilter`, and a counter's `prefix`) may drop it;
 * 2. the counter key is taken: the offender id (`counter.capture = 'host'`, the default) or
 *    another capture; with `ipv6Prefix`, IPv6 offenders count (and are banned) by network;
 * 3. offenders that must never be banned (WHITE_IP, ignoreip, own and loopback addresses) are
 *    skipped before counting;
 * 4. the failure is counted at its event time when `counter.time = 'filter'` and the failure has
 *    one, else at its receive time, so replaying a log gives the bans live operation gave;
 * 5. when the count reaches `maxretry`, a Ticket is made (ban time grown from the ban history,
 *    captures and jail parameters in `data`, the failures that led to it), and the counter is
 *    reset unless `noreset`.
 * A jail with an `ignorecommand` asks it before a ban: every ticket goes through
 * `await jail.admit(ticket)` before it is queued (immediate for jails without a command).
 *
 * Memory: counters live in a compact store (counter.ts); the failures themselves are kept for at
 * most `maxDetailed` offenders (the most recently added ones; at most maxretry each, lines cut at
 * 1024 characters), so a spray of a million one-off addresses costs counters, not log lines.
 */
import {randomUUID} from 'node:crypto'
import ipaddr from 'ipaddr.js'
import type {JailConfig, ParamValue} from '../config/model.js'
import {canonicalNetwork} from '../config/model.js'
import {ConfigError} from '../fail2ban/errors.js'
import type {Logger} from '../log/logger.js'
import {canonicalAddress} from '../net/address.js'
import {clip} from '../text.js'
import type {Failure, Ticket} from '../types.js'
import {banTimeCalculator} from './bantime.js'
import {buildCaptureFilters, type CaptureFilter} from './cfilter.js'
import {CounterStore} from './counter.js'
import type {GeoipProvider} from './geoip.js'
import type {BanHistory} from './history.js'
import type {NeverBan} from './ignore.js'

/** What a jail needs from the daemon. */
export interface JailDeps {
  readonly log: Logger
  readonly history: BanHistory
  readonly neverBan: NeverBan
  /** Global jail parameters (`JAIL{ default = {parameters} }`): context of the jail's parameter templates. */
  readonly globals?: Readonly<Record<string, ParamValue>>
  /** Clock, Unix seconds (default: Date.now). */
  readonly clock?: () => number
  /** GeoIP provider for the jail's geoip capture filters (default: their mmdb files). */
  readonly geoip?: GeoipProvider
  /** Ban IPv6 offenders by this prefix length (overrides `cfg.ipv6Prefix`). */
  readonly ipv6Prefix?: number
  /** Ticket time is the failure's counting time instead of the clock (dry-run replays). */
  readonly timeFromEvents?: boolean
  /** Offenders with two failures or more whose failures are kept for tickets and status (default 20 000; about the most recent ones). */
  readonly maxDetailed?: number
  /** Offenders seen once whose failure is kept (default 4096, the most recent ones). */
  readonly maxFirst?: number
  /** Random source for rndtime (tests). */
  readonly random?: () => number
}

export interface JailStats {
  /** Offenders with a live counter. */
  readonly currentlyFailed: number
  /** Failures counted since start. */
  readonly totalFailed: number
}

/** Longest counter key taken from a capture (longer values are cut). */
const MAX_KEY = 512

/** Longest log line kept in a ticket. */
const MAX_LINE = 1024

interface Kept {
  readonly f: Failure
  /** Counting time. */
  readonly t: number
}

export class Jail {
  readonly name: string
  private readonly cfg: JailConfig
  private readonly deps: JailDeps
  private readonly log: Logger
  private readonly clock: () => number
  private readonly filter: CaptureFilter | undefined
  private readonly store: CounterStore | undefined
  private readonly banTime: (count: number, random?: () => number) => number
  private readonly prefix: number | undefined
  private readonly eventTime: boolean
  private readonly maxDetailed: number
  private readonly detail = new Map<string, Kept[]>()
  /** Keys of `detail` in the order they got a list (may hold keys deleted since; see evictDetail). */
  private detailOrder: string[] = []
  private detailHead = 0
  /**
   * The failure of offenders seen once so far, in a ring of `maxFirst` entries: a spray of
   * one-off addresses never piles up log lines, while an offender that comes back soon finds
   * its first failure here.
   */
  private readonly first = new Map<string, Kept>()
  private readonly ringKeys: (string | undefined)[]
  private readonly ringVals: (Kept | undefined)[]
  private ringPos = 0
  private readonly awaiting = new WeakSet<Ticket>()
  private total = 0
  /** receive time − event time of the latest failure counted in event time. */
  private skew = 0

  /** Throws ConfigError (naming the jail's origin) for settings that only fail now (a bad formula, an unreadable prefix file or GeoIP db). */
  constructor(cfg: JailConfig, deps: JailDeps) {
    this.name = cfg.name
    this.cfg = cfg
    this.deps = deps
    this.log = deps.log
    this.clock = deps.clock ?? (() => Date.now() / 1000)
    this.filter = buildCaptureFilters(cfg.cfilter, {log: deps.log, geoip: deps.geoip})
    this.store = cfg.counter.type === 'fixed' ? undefined : new CounterStore({findtime: cfg.findtime, resolution: cfg.counter.resolution})
    try {
      this.banTime = banTimeCalculator(cfg.bantime, cfg.banTimeIncrement, cfg.rndtime)
    } catch (e) {
      throw new ConfigError(`bantime.formula: ${(e as Error).message}`, cfg.origin.file, cfg.origin.line, `jail ${cfg.name}`)
    }
    const p = deps.ipv6Prefix ?? cfg.ipv6Prefix
    this.prefix = p !== undefined && p > 0 && p < 128 ? p : undefined
    this.eventTime = cfg.counter.time === 'filter'
    this.maxDetailed = deps.maxDetailed ?? 20_000
    const ring = Math.max(1, deps.maxFirst ?? 4096)
    this.ringKeys = new Array<string | undefined>(ring)
    this.ringVals = new Array<Kept | undefined>(ring)
  }

  get stats(): JailStats {
    return {currentlyFailed: this.store?.size ?? 0, totalFailed: this.total}
  }

  /** The failures kept for an offender (counter key), oldest first. */
  failuresOf(id: string): Failure[] {
    const list = this.detail.get(id)
    if (list !== undefined) return list.map((k) => k.f)
    const one = this.first.get(id)
    return one !== undefined ? [one.f] : []
  }

  /** Offenders with a live counter. */
  offenders(): IterableIterator<string> {
    return this.store?.keys() ?? [][Symbol.iterator]()
  }

  /** Forgets an offender's counter and failures (an unban, `spylog unban`). */
  forget(id: string): void {
    this.store?.delete(id)
    this.detail.delete(id)
    this.first.delete(id)
  }

  /**
   * Drops counters whose window has passed. `now` is clock time; counters in event time are
   * compared with the event time that corresponds to it (the last failure's receive − event
   * time offset), so a replay is not purged by the wall clock.
   */
  purge(now: number = this.clock()): number {
    if (this.store === undefined) return 0
    const ref = this.eventTime ? now - this.skew : now
    const n = this.store.purge(ref)
    if (n > 0) {
      for (const id of [...this.detail.keys()]) if (!this.store.has(id)) this.detail.delete(id)
      for (const id of [...this.first.keys()]) if (!this.store.has(id)) this.first.delete(id)
    }
    return n
  }

  /** Counts one failure; returns the ticket when it makes the offender reach maxretry. */
  add(f: Failure, received: number): Ticket | undefined {
    if (this.filter !== undefined && !this.filter(f.data)) {
      if (this.log.enabled('debug')) this.log.debug(`[${this.name}] ${f.id}: failure dropped by a capture filter`)
      return undefined
    }
    const key = this.keyOf(f)
    if (key === undefined) return undefined
    const t = this.eventTime && f.time !== undefined && Number.isFinite(f.time) ? f.time : received
    if (this.eventTime && f.time !== undefined) this.skew = received - f.time
    this.total++

    let value: number
    const cnt = this.cfg.counter
    if (cnt.type === 'fixed') {
      value = numberOr(f.data[cnt.value], 1)
    } else {
      const delta = cnt.type === 'accumulate' ? numberOr(f.data[cnt.value], 1) : 1
      value = this.store!.add(key, delta, t)
      // A count equal to this failure's own share: its window (re)started here.
      const fresh = value === delta
      if (fresh) this.detail.delete(key)
      // Keep the failure (pruned to the window) for the ticket and status.
      if (this.cfg.maxretry > 1) this.keep(key, f, t, fresh)
    }
    if (this.log.enabled('debug')) this.log.debug(`[${this.name}] Found ${key} - ${value}/${this.cfg.maxretry} (filter ${f.filter})`)
    if (value < this.cfg.maxretry) return undefined

    const one = this.first.get(key)
    const kept = cnt.type === 'fixed' ? [{f: trimFailure(f), t}] : (this.detail.get(key) ?? (one !== undefined ? [one] : [{f: trimFailure(f), t}]))
    if (cnt.type !== 'fixed' && !this.cfg.noreset) this.forget(key)
    return this.ticket(key, f, kept, t, value)
  }

  /**
   * Whether a ticket may go ahead: runs the jail's ignorecommand (when it has one) and records
   * the ban in the history when admitted. Resolves at once for jails without a command.
   */
  async admit(ticket: Ticket): Promise<boolean> {
    if (!this.awaiting.has(ticket)) return true
    this.awaiting.delete(ticket)
    // The command is asked about an address: the ticket's own, else (a network or another
    // captured value) the address of the last failure.
    const last = ticket.failures.at(-1)
    const probe = ticket.isAddress && !ticket.id.includes('/') ? ticket.id : (last?.ip ?? last?.id ?? ticket.id)
    if (await this.deps.neverBan.commandIgnores(probe, {...ticket.data, fid: ticket.id})) {
      this.log.notice(`[${this.name}] Ignore ${ticket.id} by command`)
      return false
    }
    this.deps.history.add({id: ticket.id, jail: this.name, time: ticket.time, bantime: ticket.bantime})
    return true
  }

  /** The counter key of a failure, or undefined when it is not counted (missing capture, never-ban). */
  private keyOf(f: Failure): string | undefined {
    const nb = this.deps.neverBan
    const capture = this.cfg.counter.capture
    let key: string
    if (capture === 'host') key = f.id
    else {
      const v = f.data[capture]
      if (v === undefined || v === null || typeof v === 'object' || v === '') {
        if (this.log.enabled('debug')) this.log.debug(`[${this.name}] failure of ${f.id} has no capture ${capture}: not counted`)
        return undefined
      }
      key = String(v)
      // A hostile log cannot make keys of any size: long captured values are cut.
      if (key.length > MAX_KEY) key = key.slice(0, MAX_KEY)
    }
    // The address behind the failure is checked whatever is counted.
    const addr = f.ip ?? f.id
    const why = nb.reason(addr) ?? (key !== addr ? nb.reason(key) : undefined)
    if (why !== undefined) {
      if (this.log.enabled('debug')) this.log.debug(`[${this.name}] Ignore ${addr} (${why})`)
      return undefined
    }
    if (this.prefix !== undefined && key.includes(':')) {
      const a = canonicalAddress(key)
      if (a !== undefined && a.includes(':')) {
        const net = canonicalNetwork(`${a}/${this.prefix}`)!
        const [n, bits] = ipaddr.parseCIDR(net)
        const inNet = nb.overlapReason(n, bits)
        if (inNet === undefined) return net
        if (this.log.enabled('debug')) this.log.debug(`[${this.name}] ${net} holds a never-ban address (${inNet}): counting ${a} alone`)
        return a
      }
    }
    return key
  }

  private keep(key: string, f: Failure, t: number, fresh: boolean): void {
    const k: Kept = {f: trimFailure(f), t}
    if (fresh) {
      // First failure of a window: into the ring (the oldest ring entry leaves).
      const pos = this.ringPos
      const oldKey = this.ringKeys[pos]
      if (oldKey !== undefined && this.first.get(oldKey) === this.ringVals[pos]) this.first.delete(oldKey)
      this.ringKeys[pos] = key
      this.ringVals[pos] = k
      this.ringPos = pos + 1 === this.ringKeys.length ? 0 : pos + 1
      this.first.set(key, k)
      return
    }
    let list = this.detail.get(key)
    const max = this.cfg.maxretry
    const horizon = t - this.cfg.findtime
    if (list === undefined) {
      const one = this.first.get(key)
      list = []
      if (one !== undefined) {
        this.first.delete(key)
        if (one.t >= horizon && one.t <= t + this.cfg.findtime) list.push(one)
      }
      this.detail.set(key, list)
      this.detailOrder.push(key)
      if (this.detail.size > this.maxDetailed) this.evictDetail()
      else if (this.detailOrder.length - this.detailHead > 2 * this.detail.size + 1024) this.compactOrder()
    } else if (list.length > 0 && (list[0]!.t < horizon || list[0]!.t > t + this.cfg.findtime)) {
      // Window restarted or slid: drop failures outside it.
      const lo = horizon
      const hi = t + this.cfg.findtime
      list = list.filter((k) => k.t >= lo && k.t <= hi)
      this.detail.set(key, list)
    }
    list.push(k)
    if (list.length > max) list.splice(0, list.length - max)
  }

  /**
   * Drops the failures of the offender that got them earliest. A FIFO of keys rather than the
   * Map's first key: V8 walks over deleted entries to find that, which is quadratic under churn.
   * Keys forgotten meanwhile are skipped.
   */
  private evictDetail(): void {
    while (this.detailHead < this.detailOrder.length && this.detail.size > this.maxDetailed) {
      const k = this.detailOrder[this.detailHead]!
      this.detailOrder[this.detailHead++] = ''
      this.detail.delete(k)
    }
    if (this.detailHead > 1024 && this.detailHead * 2 > this.detailOrder.length) this.compactOrder()
  }

  /** Drops consumed, forgotten and repeated keys from the FIFO (forget and purge leave them there). */
  private compactOrder(): void {
    const seen = new Set<string>()
    const out: string[] = []
    for (let i = this.detailOrder.length - 1; i >= this.detailHead; i--) {
      const k = this.detailOrder[i]!
      if (this.detail.has(k) && !seen.has(k)) {
        seen.add(k)
        out.push(k)
      }
    }
    this.detailOrder = out.reverse()
    this.detailHead = 0
  }

  private ticket(key: string, f: Failure, kept: readonly Kept[], t: number, value: number): Ticket {
    const inc = this.cfg.banTimeIncrement
    const banCount = this.deps.history.count(key, inc?.overalljails === true ? undefined : this.name)
    const bantime = this.banTime(banCount, this.deps.random)
    const data: Record<string, unknown> = {}
    for (const k of kept) Object.assign(data, k.f.data)
    Object.assign(data, f.data)
    const isAddress = canonicalAddress(key) !== undefined || (key.includes('/') && canonicalNetwork(key) === key)
    const time = this.deps.timeFromEvents === true ? t : this.clock()
    const params = this.parameters(data, {jail: this.name, filter: f.filter, host: key, id: key, bantime, failures: value})
    Object.assign(data, params)
    const ticket: Ticket = {
      uuid: randomUUID(), jail: this.name, filter: f.filter, id: key, isAddress, time, bantime, banCount, data,
      failures: kept.map((k) => k.f),
    }
    this.log.info(`[${this.name}] ${key} reached ${value} failure(s) (maxretry ${this.cfg.maxretry}, filter ${f.filter}): ban for ${bantime < 0 ? 'ever' : `${bantime} s`}${banCount > 0 ? ` (ban #${banCount + 1})` : ''}`)
    if (this.deps.neverBan.hasCommand) this.awaiting.add(ticket)
    else this.deps.history.add({id: key, jail: this.name, time, bantime})
    return ticket
  }

  /** The jail's parameters expanded (`%{name}`) against the captures, the ticket fields and the global parameters. */
  private parameters(data: Readonly<Record<string, unknown>>, fields: Readonly<Record<string, unknown>>): Record<string, ParamValue> {
    const own = this.cfg.parameters
    const out: Record<string, ParamValue> = {}
    const globals = this.deps.globals ?? {}
    const lookup = (k: string): unknown => data[k] ?? fields[k] ?? globals[k]
    const unknown = new Set<string>()
    for (const [k, v] of Object.entries(own)) out[k] = expandParam(v, lookup, unknown)
    if (unknown.size > 0) this.log.error(`[${this.name}] unknown parameter(s) in the jail's parameters: ${[...unknown].join(', ')} (left unexpanded)`)
    return out
  }
}

function numberOr(v: unknown, d: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN
  return Number.isFinite(n) ? n : d
}

/** The failure with lines cut at MAX_LINE characters (the same object when none is longer). */
function trimFailure(f: Failure): Failure {
  if (f.lines.every((l) => l.length <= MAX_LINE)) return f
  return {...f, lines: f.lines.map((l) => clip(l, MAX_LINE))}
}

/** Expands `%{name}` / `%{name:fmt}` (lua-spylog var.format; `%%` is a literal `%`) in strings of a parameter value. */
export function expandParam(v: ParamValue, lookup: (k: string) => unknown, unknown: Set<string>): ParamValue {
  if (typeof v === 'string') return expandTemplate(v, lookup, unknown)
  if (Array.isArray(v)) return v.map((x) => expandParam(x, lookup, unknown))
  if (typeof v === 'object' && v !== null) {
    const o: Record<string, ParamValue> = {}
    for (const [k, x] of Object.entries(v)) o[k] = expandParam(x, lookup, unknown)
    return o
  }
  return v
}

/** Expands one template string. */
export function expandTemplate(s: string, lookup: (k: string) => unknown, unknown: Set<string>): string {
  if (!s.includes('%')) return s
  return s.replace(/%%|%\{([\w.-]+)(?::([-+ 0#]*\d*(?:\.\d+)?[cdeEfgGiouxXsq]))?\}/g, (m, name: string | undefined, fmt: string | undefined) => {
    if (name === undefined) return '%'
    const v = lookup(name)
    if (v === undefined || v === null) {
      unknown.add(name)
      return m
    }
    return fmt === undefined ? String(v) : printf(fmt, v)
  })
}

/** A small `string.format` for one value: flags `-0+ `, width, precision, conversions d i u o x X e E f g G c s q. */
function printf(fmt: string, v: unknown): string {
  const m = /^([-+ 0#]*)(\d*)(?:\.(\d+))?(.)$/.exec(fmt)!
  const flags = m[1]!
  const width = m[2] === '' ? 0 : Number(m[2])
  const prec = m[3] === undefined ? undefined : Number(m[3])
  const conv = m[4]!
  const n = typeof v === 'number' ? v : Number(v)
  let body: string
  switch (conv) {
    case 'd': case 'i': case 'u': body = Number.isFinite(n) ? String(Math.trunc(n)) : String(v); break
    case 'o': body = Math.trunc(n).toString(8); break
    case 'x': body = Math.trunc(n).toString(16); break
    case 'X': body = Math.trunc(n).toString(16).toUpperCase(); break
    case 'e': case 'E': body = n.toExponential(prec ?? 6).replace(/e([+-])(\d)$/, 'e$10$2'); if (conv === 'E') body = body.toUpperCase(); break
    case 'f': body = n.toFixed(prec ?? 6); break
    case 'g': case 'G': body = String(Number(n.toPrecision(prec === 0 ? 1 : prec ?? 6))); if (conv === 'G') body = body.toUpperCase(); break
    case 'c': body = String.fromCharCode(n); break
    case 'q': body = JSON.stringify(String(v)); break
    default: body = prec !== undefined ? String(v).slice(0, prec) : String(v)
  }
  if (/[dieEfgG]/.test(conv) && n >= 0) body = (flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '') + body
  if (body.length >= width) return body
  if (flags.includes('-')) return body.padEnd(width)
  if (flags.includes('0') && /[diouxXeEfgG]/.test(conv)) {
    const sign = /^[-+ ]/.test(body) ? body[0]! : ''
    return sign + body.slice(sign.length).padStart(width - sign.length, '0')
  }
  return body.padStart(width)
}
