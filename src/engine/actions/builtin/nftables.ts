/**
 * Bans with nftables. One table (`inet spylog` by default) holds, per rule shape (all traffic,
 * or a protocol/port selection from the jail's `port`/`protocol`), four named sets — addresses
 * (`addr-v4`, `addr-v6`: flags timeout) and networks (`net-v4`, `net-v6`: flags interval,
 * timeout) — and a base chain on the input hook whose rules drop (or reject) traffic from their
 * members. A ban adds an element with `timeout <remaining>`, so the kernel lifts it even when
 * spylog is not running; a permanent ban has no timeout. Everything goes to `nft -f -` on stdin
 * (never through a shell); the structure is created idempotently in one batch.
 */
import type {ActionConfig} from '../../config/model.js'
import {ActionError, type ActionContext} from '../action.js'
import {describeExit} from '../exec.js'
import {type BanTarget, type FirewallEntry, FirewallRunner, type FirewallOptions, firewallOptions, optionText, type RuleSpec, ruleSpec, where} from './firewall.js'

/** Longest element timeout written (nft and the kernel take more, but no ban needs more: spylog's unban job lifts longer ones). */
const MAX_TIMEOUT = 3650 * 86400

const HOOKS = new Set(['input', 'prerouting', 'forward'])

export interface NftablesOptions extends FirewallOptions {
  /** Table name (default `spylog`; family `inet`). */
  readonly table?: string
  /** Hook of the chains: `input` (default), `prerouting` or `forward`. */
  readonly hook?: string
  /** Chain priority (default -1: before the usual `filter` chains). */
  readonly priority?: number
  /** The nft program (default `nft`). */
  readonly nft?: string
}

/** nft's duration syntax (`1d2h3m4s`). */
export function nftDuration(seconds: number): string {
  let s = Math.max(1, Math.round(seconds))
  const d = Math.floor(s / 86400)
  s -= d * 86400
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  return `${d > 0 ? `${d}d` : ''}${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`
}

/** The nftables runner; see the module comment. */
export class NftablesRunner extends FirewallRunner {
  readonly backend = 'nftables'
  readonly table: string
  readonly hook: string
  readonly priority: number
  private readonly nft: string
  /** Rule shapes whose sets and chain exist (created by this process). */
  private readonly ready = new Set<string>()

  constructor(cfg: ActionConfig, ctx: ActionContext, opts: NftablesOptions = nftablesOptions(cfg)) {
    super(cfg, ctx, opts)
    this.table = opts.table ?? 'spylog'
    this.hook = opts.hook ?? 'input'
    this.priority = opts.priority ?? -1
    this.nft = opts.nft ?? 'nft'
    if (!/^[A-Za-z][\w-]{0,63}$/.test(this.table)) throw new ActionError(`${where(cfg)}: option table: ${JSON.stringify(this.table)} is not an nftables table name`, false)
    if (!HOOKS.has(this.hook)) throw new ActionError(`${where(cfg)}: option hook: ${JSON.stringify(this.hook)} is not one of ${[...HOOKS].join(', ')}`, false)
    if (!Number.isInteger(this.priority) || Math.abs(this.priority) > 1000) throw new ActionError(`${where(cfg)}: option priority must be an integer between -1000 and 1000`, false)
  }

  /** Names of the sets and chain of one rule shape. */
  names(rule: RuleSpec): {addr4: string; addr6: string; net4: string; net6: string; chain: string} {
    const k = rule.key === '' ? '' : `-${rule.key}`
    return {addr4: `addr${k}-v4`, addr6: `addr${k}-v6`, net4: `net${k}-v4`, net6: `net${k}-v6`, chain: `${this.hook}${k}`}
  }

  /** The set a target goes to. */
  setFor(target: BanTarget, rule: RuleSpec): string {
    const n = this.names(rule)
    return target.network ? (target.family === 4 ? n.net4 : n.net6) : target.family === 4 ? n.addr4 : n.addr6
  }

  /** The batch that creates (or re-creates, keeping set elements) the table, sets and chain of one rule shape. */
  structure(rule: RuleSpec): string {
    const t = `inet ${this.table}`
    const n = this.names(rule)
    const match = ruleMatch(rule)
    const verdict = rule.block === 'drop' ? 'drop' : rule.block === 'reject-tcp-reset' ? 'reject with tcp reset' : 'reject'
    const lines = [
      `add table ${t}`,
      `add set ${t} ${n.addr4} { type ipv4_addr; flags timeout; }`,
      `add set ${t} ${n.addr6} { type ipv6_addr; flags timeout; }`,
      `add set ${t} ${n.net4} { type ipv4_addr; flags interval, timeout; }`,
      `add set ${t} ${n.net6} { type ipv6_addr; flags interval, timeout; }`,
      `add chain ${t} ${n.chain} { type filter hook ${this.hook} priority ${this.priority}; policy accept; }`,
      `flush chain ${t} ${n.chain}`,
    ]
    for (const [fam, set] of [['ip', n.addr4], ['ip', n.net4], ['ip6', n.addr6], ['ip6', n.net6]] as const) {
      lines.push(`add rule ${t} ${n.chain} ${fam} saddr @${set}${match} counter ${verdict}`)
    }
    return lines.join('\n') + '\n'
  }

  /** Creates the table, sets and chain of the action's own rule shape (its default parameters), in one batch. */
  async start(): Promise<void> {
    const rule = ruleSpec(this.cfg.parameters, this.cfg.builtin?.features ?? [], this.defaultBlock)
    await this.must([this.nft, '-f', '-'], this.structure(rule))
    this.ready.add(rule.key)
  }

  protected async ban(target: BanTarget, rule: RuleSpec, seconds: number | undefined): Promise<void> {
    const set = `inet ${this.table} ${this.setFor(target, rule)}`
    const timeout = seconds !== undefined && seconds <= MAX_TIMEOUT ? ` timeout ${nftDuration(seconds)}` : ''
    // add (a no-op when present), delete, add: one transaction that sets the new timeout whether or not the element existed
    const elements =
      `add element ${set} { ${target.text}${timeout} }\n` +
      `delete element ${set} { ${target.text} }\n` +
      `add element ${set} { ${target.text}${timeout} }\n`
    const withStructure = !this.ready.has(rule.key)
    let r = await this.exec([this.nft, '-f', '-'], (withStructure ? this.structure(rule) : '') + elements)
    if (r.code !== 0 && !withStructure && /No such file or directory/i.test(r.stderr)) {
      // the table went away since (`nft flush ruleset`, a firewall reload): make it again
      this.ctx.log.warning(`${this.name}: table inet ${this.table} or its sets are gone; creating them again`)
      this.ready.delete(rule.key)
      r = await this.exec([this.nft, '-f', '-'], this.structure(rule) + elements)
    }
    if (r.code !== 0) {
      if (/interval overlaps|conflicting intervals/i.test(r.stderr)) {
        this.ctx.log.warning(`${this.name}: ${target.text} overlaps a network already banned in ${set}; it stays covered by that ban`)
        return
      }
      throw new ActionError(`${this.name} (nftables): banning ${target.text} failed: ${describeExit(r, this.timeoutMs)}`)
    }
    this.ready.add(rule.key)
  }

  async list(): Promise<FirewallEntry[]> {
    const r = await this.exec([this.nft, '-j', 'list', 'table', 'inet', this.table])
    if (r.code !== 0) {
      if (/No such file or directory/i.test(r.stderr)) return []
      throw new ActionError(`${this.name} (nftables): listing table inet ${this.table} failed: ${describeExit(r, this.timeoutMs)}`)
    }
    const out: FirewallEntry[] = []
    let doc: {nftables?: {set?: {name: string; elem?: unknown[]}}[]}
    try {
      doc = JSON.parse(r.stdout) as typeof doc
    } catch {
      throw new ActionError(`${this.name} (nftables): nft -j printed something that is not JSON`)
    }
    for (const item of doc.nftables ?? []) {
      const set = item.set
      if (set === undefined) continue
      for (const e of set.elem ?? []) {
        const full = (e as NftElem | null)?.elem
        const address = elemText(full !== undefined ? full.val : e)
        if (address !== undefined) out.push({address, where: set.name, ...(full?.expires !== undefined ? {expires: full.expires} : {})})
      }
    }
    return out
  }

  protected async removeAll(): Promise<void> {
    this.ready.clear()
    const r = await this.exec([this.nft, 'delete', 'table', 'inet', this.table])
    if (r.code !== 0 && !/No such file or directory/i.test(r.stderr)) throw new ActionError(`${this.name} (nftables): deleting table inet ${this.table} failed: ${describeExit(r, this.timeoutMs)}`)
  }

  protected async unban(target: BanTarget, rule: RuleSpec): Promise<void> {
    const set = `inet ${this.table} ${this.setFor(target, rule)}`
    const r = await this.exec([this.nft, '-f', '-'], `delete element ${set} { ${target.text} }\n`)
    if (r.code === 0) return
    // not banned (expired already, removed by hand) or no set at all (ruleset flushed): nothing to lift
    if (/does not exist|No such file or directory/i.test(r.stderr)) {
      this.ctx.log.debug(`${this.name}: ${target.text} was not in ${set}`)
      return
    }
    throw new ActionError(`${this.name} (nftables): unbanning ${target.text} failed: ${describeExit(r, this.timeoutMs)}`)
  }
}

interface NftElem {
  elem?: {val: unknown; expires?: number}
  prefix?: {addr: string; len: number}
}

/** An element of `nft -j` output as an address text. */
function elemText(v: unknown): string | undefined {
  if (typeof v === 'string') return v
  const p = (v as NftElem | null)?.prefix
  return p !== undefined && typeof p.addr === 'string' ? `${p.addr}/${p.len}` : undefined
}

/** The match part of a rule (` meta l4proto tcp th dport { 22, 80 }`), empty for all traffic. */
function ruleMatch(rule: RuleSpec): string {
  const protos = rule.protocols ?? (rule.ports !== undefined ? ['tcp', 'udp', 'sctp', 'dccp'] : undefined)
  let m = ''
  if (protos !== undefined) m += protos.length === 1 ? ` meta l4proto ${protos[0]}` : ` meta l4proto { ${protos.join(', ')} }`
  if (rule.ports !== undefined) m += ` th dport { ${rule.ports.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ')} }`
  return m
}

/** NftablesOptions from the action's options (`table`, `hook`, `priority`, `nft`, plus the common ones). */
export function nftablesOptions(cfg: ActionConfig): NftablesOptions {
  const priority = cfg.options.priority
  return {
    ...firewallOptions(cfg),
    table: optionText(cfg, 'table'),
    hook: optionText(cfg, 'hook'),
    priority: priority === undefined ? undefined : typeof priority === 'number' ? priority : Number(priority),
    nft: optionText(cfg, 'nft'),
  }
}
