/**
 * What the host-firewall runners (nftables, ipset + iptables, plain iptables) share: the ban
 * target (an address or network, never anything else, never a protected address), the rule
 * shape taken from fail2ban's parameters (`port`, `protocol`, `blocktype`, the `allports` /
 * `multiport` features), the remaining ban time, and running commands from argv arrays.
 */
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import ipaddr from 'ipaddr.js'
import type {ActionConfig, ParamValue} from '../../config/model.js'
import {ActionError, type ActionContext, type ActionOp, type ActionRunner, type BanRequest} from '../action.js'
import {describeExit, execArgv, ExecStartError, type ExecResult} from '../exec.js'

/** An address or network to ban, in the form firewalls take. */
export interface BanTarget {
  readonly family: 4 | 6
  /** `203.0.113.5`, `2001:db8::1`, or a network with its prefix (`198.51.100.0/24`, `2001:db8::/64`). */
  readonly text: string
  /** True for a network (prefix shorter than the address). */
  readonly network: boolean
}

/**
 * The ban target for an offender id: a single address (IPv4-mapped IPv6 becomes IPv4) or a
 * network `addr/len` (host bits cleared). Undefined when `id` is neither.
 */
export function banTarget(id: string): BanTarget | undefined {
  const s = id.trim()
  if (s === '' || s.length > 100) return undefined
  try {
    if (s.includes('/')) {
      if (!ipaddr.isValidCIDR(s)) return undefined
      let [addr, len] = ipaddr.parseCIDR(s)
      if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && len >= 96) {
        addr = (addr as ipaddr.IPv6).toIPv4Address()
        len -= 96
      }
      const max = addr.kind() === 'ipv4' ? 32 : 128
      const family = addr.kind() === 'ipv4' ? 4 : 6
      if (len === max) return {family, text: addr.toString(), network: false}
      const net = family === 4 ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${len}`) : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${len}`)
      return {family, text: `${net.toString()}/${len}`, network: true}
    }
    if (!ipaddr.isValid(s)) return undefined
    // ipaddr.isValid accepts IPv4 shorthands ("10.1", "0x0a000001"): only the four-part decimal form is an address here
    if (!s.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(s)) return undefined
    let a = ipaddr.parse(s)
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address()
    return {family: a.kind() === 'ipv4' ? 4 : 6, text: a.toString(), network: false}
  } catch {
    return undefined
  }
}

/** Which traffic of a banned address is blocked. Undefined fields: all protocols, all ports. */
export interface RuleSpec {
  /** Lower-case protocol names (`tcp`, `udp`, `sctp`, `dccp`), or undefined for every protocol. */
  readonly protocols?: readonly string[]
  /** Destination port ranges (inclusive), or undefined for every port. */
  readonly ports?: readonly (readonly [number, number])[]
  readonly block: 'drop' | 'reject' | 'reject-tcp-reset'
  /** Identifies the rule shape: `''` for all traffic dropped, else a short name usable in set/chain names (`tcp-22-80`, `rej`). */
  readonly key: string
}

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'dccp', 'udplite'])

let services: Map<string, number> | undefined

/** Port of a service name from /etc/services (first entry of the name or alias, any protocol). */
export function servicePort(name: string): number | undefined {
  if (services === undefined) {
    services = new Map()
    let text = ''
    try {
      text = readFileSync('/etc/services', 'utf8')
    } catch {
      // no services database (Windows, minimal containers): names cannot be resolved
    }
    for (const line of text.split('\n')) {
      const words = line.replace(/#.*/, '').trim().split(/\s+/)
      const m = /^(\d+)\/[a-z]+$/.exec(words[1] ?? '')
      if (m === null) continue
      for (const w of [words[0]!, ...words.slice(2)]) if (!services.has(w.toLowerCase())) services.set(w.toLowerCase(), Number(m[1]))
    }
  }
  return services.get(name.toLowerCase())
}

/** A parameter's text (lists joined by commas), or undefined when unset or empty. */
export function paramText(v: ParamValue | undefined): string | undefined {
  if (v === undefined) return undefined
  if (Array.isArray(v)) return v.map((x) => paramText(x) ?? '').filter((x) => x !== '').join(',')
  if (typeof v === 'object') return undefined
  const s = String(v).trim()
  return s === '' ? undefined : s
}

/**
 * The rule shape from the job's parameters: `port` (`22`, `ssh,http`, `1000:2000`, `any`),
 * `protocol` (`tcp`, `udp`, `all`…) and `blocktype` (`drop`, `reject`, iptables-style
 * `REJECT --reject-with tcp-reset`); the action name's `allports` feature ignores `port`.
 * Throws ActionError (not retried) naming the bad parameter.
 */
export function ruleSpec(params: Readonly<Record<string, ParamValue>>, features: readonly string[], defaultBlock: 'drop' | 'reject' = 'drop'): RuleSpec {
  const protoText = paramText(params.protocol)?.toLowerCase()
  let protocols: string[] | undefined
  if (protoText !== undefined && protoText !== 'all' && protoText !== 'any' && protoText !== 'ip') {
    protocols = [...new Set(protoText.split(/[\s,]+/).filter((p) => p !== ''))].sort()
    for (const p of protocols) if (!PROTOCOLS.has(p)) throw new ActionError(`parameter protocol: ${JSON.stringify(p)} is not one of ${[...PROTOCOLS].join(', ')}, all`, false)
  }
  let ports: [number, number][] | undefined
  const portText = features.includes('allports') ? undefined : paramText(params.port)
  if (portText !== undefined && portText.toLowerCase() !== 'any' && portText.toLowerCase() !== 'all') {
    ports = []
    for (const item of portText.split(/[\s,]+/)) {
      if (item === '') continue
      const range = parsePortItem(item)
      if (range === undefined) throw new ActionError(`parameter port: ${JSON.stringify(item)} is not a port number, a range (1000:2000) or a service name known to /etc/services`, false)
      ports.push(range)
    }
    ports.sort((a, b) => a[0] - b[0])
    if (ports.length === 0 || (ports.length === 1 && ports[0]![0] === 0 && ports[0]![1] === 65535)) ports = undefined
  }
  const bt = paramText(params.blocktype)?.toLowerCase() ?? defaultBlock
  let block: RuleSpec['block']
  if (/^drop\b/.test(bt)) block = 'drop'
  else if (/^reject\b/.test(bt)) block = /tcp[- ]reset/.test(bt) && protocols?.length === 1 && protocols[0] === 'tcp' ? 'reject-tcp-reset' : 'reject'
  else throw new ActionError(`parameter blocktype: ${JSON.stringify(bt)} is neither drop nor reject`, false)
  // each shape has sets and rules of its own: jails guarding different ports, or blocking differently, never share a rule
  const parts: string[] = []
  if (protocols !== undefined || ports !== undefined) parts.push(protocols?.join('+') ?? 'any', ...(ports ?? []).map(([a, b]) => (a === b ? `${a}` : `${a}_${b}`)))
  if (block !== 'drop') parts.push(block === 'reject' ? 'rej' : 'rst')
  let key = parts.join('-')
  if (key.length > 20) key = 'h' + createHash('sha1').update(key).digest('hex').slice(0, 10)
  return {protocols, ports, block, key}
}

function parsePortItem(item: string): [number, number] | undefined {
  const port = (s: string): number | undefined => {
    if (/^\d{1,5}$/.test(s)) {
      const n = Number(s)
      return n <= 65535 ? n : undefined
    }
    return /^[A-Za-z][\w.+-]*$/.test(s) ? servicePort(s) : undefined
  }
  const single = port(item)
  if (single !== undefined) return [single, single]
  const m = /^([^:-]+)[:-]([^:-]+)$/.exec(item)
  if (m === null) return undefined
  const lo = port(m[1]!)
  const hi = port(m[2]!)
  return lo !== undefined && hi !== undefined && lo <= hi ? [lo, hi] : undefined
}

/**
 * Seconds the ban has left: undefined for a ban that is never lifted (bantime < 0), else at
 * least 1 (a ban re-applied late still lands, and spylog's own unban job lifts it).
 */
export function remainingSeconds(ticket: {time: number; bantime: number}, nowSeconds = Date.now() / 1000): number | undefined {
  if (ticket.bantime < 0) return undefined
  return Math.max(1, Math.ceil(ticket.time + ticket.bantime - nowSeconds))
}

/** `file:line: action "name"`, the head of configuration error messages. */
export function where(cfg: ActionConfig): string {
  return `${cfg.origin.file}${cfg.origin.line > 0 ? `:${cfg.origin.line}` : ''}: action ${JSON.stringify(cfg.name)}`
}

/** A string option of the action (`options = {netns = …}`), checked. */
export function optionText(cfg: ActionConfig, name: string): string | undefined {
  const v = cfg.options[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' && typeof v !== 'number') throw new ActionError(`${where(cfg)}: option ${name} must be a string`, false)
  return String(v)
}

/** A positive number option of the action (`timeout` in milliseconds). */
export function optionNumber(cfg: ActionConfig, name: string): number | undefined {
  const v = cfg.options[name]
  if (v === undefined) return undefined
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN
  if (!Number.isFinite(n) || n <= 0) throw new ActionError(`${where(cfg)}: option ${name} must be a positive number, got ${JSON.stringify(v)}`, false)
  return n
}

/** One banned address or network as the firewall holds it. */
export interface FirewallEntry {
  /** `203.0.113.5`, `2001:db8::/64`. */
  readonly address: string
  /** The set or chain that holds it. */
  readonly where: string
  /** Seconds until the kernel lifts it; undefined when it has no timeout (lifted by spylog's unban). */
  readonly expires?: number
}

/** Options every firewall runner reads from the action's `options`. */
export interface FirewallOptions {
  /** Run every command inside this network namespace (`ip netns exec <netns> …`). */
  readonly netns?: string
  /** Words put before every command (instead of `netns`), e.g. `['sudo', '-n']`. */
  readonly prefix?: readonly string[]
  /** Time limit of one command, milliseconds (lua-spylog's `timeout`; default 30 s). */
  readonly timeoutMs?: number
}

/** FirewallOptions from an ActionConfig's options (`netns`, `prefix` as a list of words, `timeout`). */
export function firewallOptions(cfg: ActionConfig): FirewallOptions {
  const netns = optionText(cfg, 'netns')
  if (netns !== undefined && !/^[\w.-]{1,64}$/.test(netns)) throw new ActionError(`${where(cfg)}: option netns: ${JSON.stringify(netns)} is not a namespace name`, false)
  const pv = cfg.options.prefix
  let prefix: string[] | undefined
  if (pv !== undefined) {
    if (!Array.isArray(pv) || !pv.every((w) => typeof w === 'string')) throw new ActionError(`${where(cfg)}: option prefix must be a list of words`, false)
    prefix = pv as string[]
  }
  return {netns, prefix, timeoutMs: optionNumber(cfg, 'timeout')}
}

/**
 * The common half of a firewall runner: checks the ticket, works out the rule shape and the
 * remaining time, runs commands (or logs them in a dry run). Subclasses say what to run.
 */
export abstract class FirewallRunner implements ActionRunner {
  readonly name: string
  protected readonly prefix: readonly string[]
  protected readonly timeoutMs: number
  protected readonly defaultBlock: 'drop' | 'reject'
  /** Active bans of this process by shape and target: jail → end (Unix seconds, Infinity for permanent). */
  private readonly holders = new Map<string, Map<string, number>>()

  constructor(
    protected readonly cfg: ActionConfig,
    protected readonly ctx: ActionContext,
    opts: FirewallOptions = firewallOptions(cfg),
  ) {
    this.name = cfg.name
    this.prefix = opts.prefix ?? (opts.netns !== undefined ? ['ip', 'netns', 'exec', opts.netns] : [])
    this.timeoutMs = opts.timeoutMs ?? 30_000
    this.defaultBlock = 'drop'
  }

  /** The backend's name in messages (`nftables`, `ipset`, `iptables`). */
  abstract readonly backend: string

  unique(_op: ActionOp, req: BanRequest): string {
    return `${req.ticket.jail}\u0000${req.ticket.id}`
  }

  async run(op: ActionOp, req: BanRequest): Promise<void> {
    const {ticket} = req
    // both the jail's verdict (isAddress) and our own parse must agree that this is an address
    const target = ticket.isAddress ? banTarget(ticket.id) : undefined
    if (target === undefined) throw new ActionError(`${this.name}: ${JSON.stringify(ticket.id)} (jail ${ticket.jail}) is not an address or network; a firewall cannot ban it`, false)
    if (op === 'ban' && this.ctx.neverBan?.(target.text) === true) {
      throw new ActionError(`${this.name}: refusing to ban ${target.text} (jail ${ticket.jail}): it is whitelisted or local`, false)
    }
    const params = {...this.cfg.parameters, ...req.params}
    const rule = ruleSpec(params, this.cfg.builtin?.features ?? [], this.defaultBlock)
    // Jails whose rules have the same shape share a set entry / rule: the entry lasts as long as
    // the longest of their bans, and an unban lifts it only when no other jail still holds it.
    const key = `${rule.key}\u0000${target.text}`
    const now = Date.now() / 1000
    if (op === 'ban') {
      const left = remainingSeconds(ticket, now)
      let h = this.holders.get(key)
      if (h === undefined) this.holders.set(key, (h = new Map()))
      h.set(ticket.jail, left === undefined ? Infinity : now + left)
      const until = Math.max(...h.values())
      await this.ban(target, rule, until === Infinity ? undefined : Math.max(1, Math.ceil(until - now)))
      return
    }
    const h = this.holders.get(key)
    if (h !== undefined) {
      h.delete(ticket.jail)
      for (const [jail, until] of h) if (until <= now) h.delete(jail)
      if (h.size > 0) {
        this.ctx.log.debug(`${this.name}: ${target.text} stays banned: jail${h.size > 1 ? 's' : ''} ${[...h.keys()].join(', ')} still hold${h.size > 1 ? '' : 's'} it`)
        return
      }
      this.holders.delete(key)
    }
    await this.unban(target, rule)
  }

  /** What spylog's sets/chains hold now (for `spylog firewall list` on Linux, and checks). */
  abstract list(): Promise<FirewallEntry[]>

  /** Removes spylog's table/sets/chains and so every ban in them (`spylog firewall clear`). */
  async clear(): Promise<void> {
    this.holders.clear()
    await this.removeAll()
  }

  /** The backend's part of clear(). */
  protected abstract removeAll(): Promise<void>

  /** Block `target` for `seconds` (undefined: until unbanned). */
  protected abstract ban(target: BanTarget, rule: RuleSpec, seconds: number | undefined): Promise<void>
  /** Lift the block of `target`; a target that is not blocked is not an error. */
  protected abstract unban(target: BanTarget, rule: RuleSpec): Promise<void>

  /**
   * Runs one command (through the prefix). In a dry run it is logged and reported as succeeded.
   * Rejects with ActionError when the program cannot start.
   */
  protected async exec(argv: readonly string[], input?: string): Promise<ExecResult> {
    if (this.ctx.dryRun === true) {
      this.ctx.log.info(`${this.name}: dry run, would run: ${[...this.prefix, ...argv].join(' ')}${input !== undefined ? ` <<< ${JSON.stringify(input)}` : ''}`)
      return {code: 0, signal: null, stdout: '', stderr: '', timedOut: false}
    }
    try {
      const r = await execArgv(argv, {input, prefix: this.prefix, timeoutMs: this.timeoutMs})
      if (this.ctx.log.enabled('debug')) this.ctx.log.debug(`${this.name}: ${argv.join(' ')}: ${describeExit(r, this.timeoutMs)}`)
      return r
    } catch (e) {
      if (e instanceof ExecStartError) throw new ActionError(`${this.name} (${this.backend}): ${e.message}`)
      throw e
    }
  }

  /** Like exec, but a non-zero exit is an ActionError (retried) that says what failed. */
  protected async must(argv: readonly string[], input?: string): Promise<ExecResult> {
    const r = await this.exec(argv, input)
    if (r.code !== 0) throw new ActionError(`${this.name} (${this.backend}): ${argv.join(' ')} failed: ${describeExit(r, this.timeoutMs)}`)
    return r
  }
}
