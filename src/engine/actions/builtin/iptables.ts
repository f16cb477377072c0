/**
 * Bans with iptables/ip6tables, one rule per banned address (fail2ban's iptables-multiport /
 * iptables-allports shape): a chain `spylog` (`spylog-<shape>` for a port/protocol selection)
 * reached from INPUT by a jump rule that carries the jail's ports and protocol, holding one
 * `-s <address> -j DROP|REJECT` rule per ban. iptables has no element timeout: spylog's unban
 * job lifts these bans (the ipset runner, ipset.ts, keeps kernel-side timeouts).
 * The helpers here (matches, targets, idempotent rule insertion) are shared with ipset.ts.
 */
import type {ActionConfig, ParamValue} from '../../config/model.js'
import {ActionError, type ActionContext} from '../action.js'
import {describeExit} from '../exec.js'
import {type BanTarget, type FirewallEntry, FirewallRunner, type FirewallOptions, firewallOptions, optionText, paramText, type RuleSpec, ruleSpec} from './firewall.js'

export interface IptablesOptions extends FirewallOptions {
  /** Programs (default `iptables`, `ip6tables`; `iptables-legacy` …). `-w` is always added (wait for the xtables lock). */
  readonly iptables?: string
  readonly ip6tables?: string
}

/** IptablesOptions from the action's options. */
export function iptablesOptions(cfg: ActionConfig): IptablesOptions {
  return {...firewallOptions(cfg), iptables: optionText(cfg, 'iptables'), ip6tables: optionText(cfg, 'ip6tables')}
}

/** Whether an iptables chain is one of spylog's (`spylog`, `spylog-<shape>`). */
function isOwnChain(c: string | undefined): boolean {
  return c === 'spylog' || (c?.startsWith('spylog-') ?? false)
}

/** multiport takes at most 15 ports (a range counts twice). */
const MULTIPORT_SLOTS = 15

/** Match arguments of the rules of one shape: one list per protocol and per group of at most 15 ports. */
export function iptablesMatches(rule: RuleSpec): string[][] {
  if (rule.ports === undefined) return rule.protocols === undefined ? [[]] : rule.protocols.map((p) => ['-p', p])
  const protos = rule.protocols ?? ['tcp', 'udp']
  const chunks: string[][] = []
  let cur: string[] = []
  let slots = 0
  for (const [a, b] of rule.ports) {
    const n = a === b ? 1 : 2
    if (slots + n > MULTIPORT_SLOTS) {
      chunks.push(cur)
      cur = []
      slots = 0
    }
    cur.push(a === b ? `${a}` : `${a}:${b}`)
    slots += n
  }
  chunks.push(cur)
  return protos.flatMap((p) => chunks.map((c) => ['-p', p, '-m', 'multiport', '--dports', c.join(',')]))
}

/** The jump target of a blocking rule. */
export function iptablesTarget(rule: RuleSpec, family: 4 | 6): string[] {
  if (rule.block === 'drop') return ['-j', 'DROP']
  if (rule.block === 'reject-tcp-reset') return ['-j', 'REJECT', '--reject-with', 'tcp-reset']
  return ['-j', 'REJECT', '--reject-with', family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable']
}

/** The chain the jump rules go in (fail2ban's `chain` parameter, default INPUT). */
export function inputChain(params: Readonly<Record<string, ParamValue>>): string {
  const c = paramText(params.chain) ?? 'INPUT'
  if (!/^[A-Za-z][\w-]{0,27}$/.test(c)) throw new ActionError(`parameter chain: ${JSON.stringify(c)} is not an iptables chain name`, false)
  return c
}

/** A FirewallRunner that speaks iptables: the program per family, and idempotent rule insertion. */
export abstract class XtablesRunner extends FirewallRunner {
  protected readonly bin: Readonly<Record<4 | 6, string>>
  /** Shapes (`key/family`) whose structure exists or is being made (concurrent jobs wait for the same promise). */
  protected readonly ready = new Map<string, Promise<void>>()

  constructor(cfg: ActionConfig, ctx: ActionContext, opts: IptablesOptions) {
    super(cfg, ctx, opts)
    this.bin = {4: opts.iptables ?? 'iptables', 6: opts.ip6tables ?? 'ip6tables'}
  }

  /** `iptables -w <args>`. */
  protected xt(family: 4 | 6, args: readonly string[]): string[] {
    return [this.bin[family], '-w', ...args]
  }

  /** Inserts `spec` at the top of `chain` unless an identical rule is there. */
  protected async ensureRule(family: 4 | 6, chain: string, spec: readonly string[]): Promise<void> {
    const check = await this.exec(this.xt(family, ['-C', chain, ...spec]))
    if (check.code === 0) return
    await this.must(this.xt(family, ['-I', chain, '1', ...spec]))
  }

  /** Builds the structure of a shape for one family (sets, chains, jump rules). */
  protected abstract structure(rule: RuleSpec, family: 4 | 6): Promise<void>

  /** Makes sure the structure of `rule` exists for `family` (once per process). */
  protected prepare(rule: RuleSpec, family: 4 | 6): Promise<void> {
    const k = `${rule.key}/${family}`
    let p = this.ready.get(k)
    if (p === undefined) {
      p = this.structure(rule, family)
      this.ready.set(k, p)
      // a failed attempt is tried again by the next job
      p.catch(() => this.ready.delete(k))
    }
    return p
  }

  /** Creates the structure of the action's own shape: IPv4 must work, IPv6 may be missing (a warning; retried on the first IPv6 ban). */
  async start(): Promise<void> {
    const rule = ruleSpec(this.cfg.parameters, this.cfg.builtin?.features ?? [], this.defaultBlock)
    await this.prepare(rule, 4)
    try {
      await this.prepare(rule, 6)
    } catch (e) {
      this.ctx.log.warning(`${this.name}: IPv6 is not ready (${(e as Error).message}); IPv6 bans will try again`)
    }
  }
}

/** Plain iptables: one rule per banned address; see the module comment. */
export class IptablesRunner extends XtablesRunner {
  readonly backend = 'iptables'
  private chainParam = 'INPUT'

  constructor(cfg: ActionConfig, ctx: ActionContext, opts: IptablesOptions = iptablesOptions(cfg)) {
    super(cfg, ctx, opts)
    this.chainParam = inputChain(cfg.parameters)
  }

  /** The chain holding the per-address rules of a shape. */
  chainFor(rule: RuleSpec): string {
    return rule.key === '' ? 'spylog' : `spylog-${rule.key}`
  }

  protected async structure(rule: RuleSpec, family: 4 | 6): Promise<void> {
    const chain = this.chainFor(rule)
    const made = await this.exec(this.xt(family, ['-N', chain]))
    if (made.code !== 0 && !/exists/i.test(made.stderr)) throw new ActionError(`${this.name} (iptables): creating chain ${chain} failed: ${describeExit(made, this.timeoutMs)}`)
    for (const m of iptablesMatches(rule)) await this.ensureRule(family, this.chainParam, [...m, '-j', chain])
  }

  protected async ban(target: BanTarget, rule: RuleSpec, _seconds: number | undefined): Promise<void> {
    await this.prepare(rule, target.family)
    const spec = ['-s', target.text, ...iptablesTarget(rule, target.family)]
    try {
      await this.ensureRule(target.family, this.chainFor(rule), spec)
    } catch (e) {
      if (!/No chain|does not exist/i.test((e as Error).message)) throw e
      // the chain went away since (iptables -F/-X, a firewall reload): make it again
      this.ctx.log.warning(`${this.name}: chain ${this.chainFor(rule)} is gone; creating it again`)
      this.ready.delete(`${rule.key}/${target.family}`)
      await this.prepare(rule, target.family)
      await this.ensureRule(target.family, this.chainFor(rule), spec)
    }
  }

  async list(): Promise<FirewallEntry[]> {
    const out: FirewallEntry[] = []
    for (const family of [4, 6] as const) {
      const r = await this.exec(this.xt(family, ['-S']))
      if (r.code !== 0) continue
      for (const line of r.stdout.split('\n')) {
        const w = line.trim().split(/\s+/)
        const s = w.indexOf('-s')
        if (w[0] !== '-A' || !isOwnChain(w[1]) || s < 0 || w[s + 1] === undefined) continue
        const a = w[s + 1]!
        out.push({address: a.endsWith('/32') || a.endsWith('/128') ? a.slice(0, a.lastIndexOf('/')) : a, where: w[1]!})
      }
    }
    return out
  }

  protected async removeAll(): Promise<void> {
    this.ready.clear()
    for (const family of [4, 6] as const) {
      const r = await this.exec(this.xt(family, ['-S']))
      if (r.code !== 0) continue
      const chains: string[] = []
      for (const line of r.stdout.split('\n')) {
        const w = line.trim().split(/\s+/)
        if (w[0] === '-N' && isOwnChain(w[1])) chains.push(w[1]!)
        // jumps into spylog's chains from anywhere else
        const j = w.indexOf('-j')
        if (w[0] === '-A' && !isOwnChain(w[1]) && j > 0 && isOwnChain(w[j + 1])) await this.must(this.xt(family, ['-D', ...w.slice(1)]))
      }
      for (const c of chains) {
        await this.must(this.xt(family, ['-F', c]))
        await this.must(this.xt(family, ['-X', c]))
      }
    }
  }

  protected async unban(target: BanTarget, rule: RuleSpec): Promise<void> {
    const chain = this.chainFor(rule)
    const listed = await this.exec(this.xt(target.family, ['-S', chain]))
    if (listed.code !== 0) {
      // no chain: nothing banned there
      this.ctx.log.debug(`${this.name}: no chain ${chain}: ${describeExit(listed)}`)
      return
    }
    const host = target.network ? target.text : `${target.text}/${target.family === 4 ? 32 : 128}`
    // every rule of this address, whatever its target (the blocktype may have changed since the ban)
    for (const line of listed.stdout.split('\n')) {
      const words = line.trim().split(/\s+/)
      if (words[0] !== '-A' || words[1] !== chain) continue
      const s = words.indexOf('-s')
      if (s < 0 || words[s + 1] !== host) continue
      await this.must(this.xt(target.family, ['-D', ...words.slice(1)]))
    }
  }
}
