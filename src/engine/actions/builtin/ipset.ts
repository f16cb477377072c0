/**
 * Bans with ipset + iptables (fail2ban's iptables-ipset shape): sets `spylog-v4` / `spylog-v6`
 * (`spylog-<shape>-v4` for a port/protocol selection) of type hash:net with timeout support, and
 * one iptables/ip6tables rule per set (in INPUT, carrying the jail's ports and protocol) that
 * drops or rejects their members. A ban adds the address or network with `timeout <remaining>`
 * (the kernel lifts it even when spylog is down); unban deletes it.
 */
import type {ActionConfig} from '../../config/model.js'
import {ActionError, type ActionContext} from '../action.js'
import {describeExit} from '../exec.js'
import type {BanTarget, FirewallEntry, RuleSpec} from './firewall.js'
import {inputChain, type IptablesOptions, iptablesMatches, iptablesOptions, iptablesTarget, XtablesRunner} from './iptables.js'

/** ipset's largest timeout (seconds); longer bans are stored without one and lifted by spylog's unban job. */
export const IPSET_MAX_TIMEOUT = 2147483

export interface IpsetOptions extends IptablesOptions {
  /** The ipset program (default `ipset`). */
  readonly ipset?: string
}

/** The ipset + iptables runner; see the module comment. */
export class IpsetRunner extends XtablesRunner {
  readonly backend = 'ipset'
  private readonly ipset: string
  private readonly chain: string

  constructor(cfg: ActionConfig, ctx: ActionContext, opts: IpsetOptions = {...iptablesOptions(cfg), ipset: typeof cfg.options.ipset === 'string' ? cfg.options.ipset : undefined}) {
    super(cfg, ctx, opts)
    this.ipset = opts.ipset ?? 'ipset'
    this.chain = inputChain(cfg.parameters)
  }

  /** The set of a shape and family (at most 31 characters, ipset's limit). */
  setName(rule: RuleSpec, family: 4 | 6): string {
    return `spylog${rule.key === '' ? '' : `-${rule.key}`}-v${family}`
  }

  protected async structure(rule: RuleSpec, family: 4 | 6): Promise<void> {
    const set = this.setName(rule, family)
    await this.must([this.ipset, 'create', set, 'hash:net', 'family', family === 4 ? 'inet' : 'inet6', 'timeout', '0', '-exist'])
    for (const m of iptablesMatches(rule)) await this.ensureRule(family, this.chain, [...m, '-m', 'set', '--match-set', set, 'src', ...iptablesTarget(rule, family)])
  }

  protected async ban(target: BanTarget, rule: RuleSpec, seconds: number | undefined): Promise<void> {
    await this.prepare(rule, target.family)
    const timeout = seconds !== undefined && seconds <= IPSET_MAX_TIMEOUT ? seconds : 0
    // -exist: an address already in the set gets the new timeout
    const add = [this.ipset, 'add', this.setName(rule, target.family), target.text, 'timeout', String(timeout), '-exist']
    const r = await this.exec(add)
    if (r.code === 0) return
    if (/does not exist/i.test(r.stderr)) {
      // the set went away since (ipset destroy, a firewall reload): make it and its rule again
      this.ctx.log.warning(`${this.name}: set ${this.setName(rule, target.family)} is gone; creating it again`)
      this.ready.delete(`${rule.key}/${target.family}`)
      await this.prepare(rule, target.family)
      await this.must(add)
      return
    }
    throw new ActionError(`${this.name} (ipset): banning ${target.text} failed: ${describeExit(r, this.timeoutMs)}`)
  }

  async list(): Promise<FirewallEntry[]> {
    const r = await this.exec([this.ipset, 'save'])
    if (r.code !== 0) throw new ActionError(`${this.name} (ipset): ipset save failed: ${describeExit(r, this.timeoutMs)}`)
    const out: FirewallEntry[] = []
    for (const line of r.stdout.split('\n')) {
      const w = line.trim().split(/\s+/)
      if (w[0] !== 'add' || !w[1]?.startsWith('spylog-') || w[2] === undefined) continue
      const t = w.indexOf('timeout')
      const left = t > 0 ? Number(w[t + 1]) : 0
      out.push({address: w[2], where: w[1], ...(left > 0 ? {expires: left} : {})})
    }
    return out
  }

  protected async removeAll(): Promise<void> {
    this.ready.clear()
    // the rules that use spylog's sets first (a set in use cannot be destroyed), then the sets
    for (const family of [4, 6] as const) {
      const r = await this.exec(this.xt(family, ['-S']))
      if (r.code !== 0) continue
      for (const line of r.stdout.split('\n')) {
        const w = line.trim().split(/\s+/)
        const m = w.indexOf('--match-set')
        if (w[0] === '-A' && m > 0 && w[m + 1]?.startsWith('spylog-')) await this.must(this.xt(family, ['-D', ...w.slice(1)]))
      }
    }
    const names = await this.exec([this.ipset, 'list', '-n'])
    for (const name of names.stdout.split('\n').map((n) => n.trim())) if (name.startsWith('spylog-')) await this.must([this.ipset, 'destroy', name])
  }

  protected async unban(target: BanTarget, rule: RuleSpec): Promise<void> {
    const set = this.setName(rule, target.family)
    // -exist: deleting an address that is not there (expired) is not an error
    const r = await this.exec([this.ipset, 'del', set, target.text, '-exist'])
    if (r.code === 0) return
    if (/does not exist/i.test(r.stderr)) {
      this.ctx.log.debug(`${this.name}: no set ${set}: nothing to unban`)
      return
    }
    throw new ActionError(`${this.name} (ipset): unbanning ${target.text} failed: ${describeExit(r, this.timeoutMs)}`)
  }
}
