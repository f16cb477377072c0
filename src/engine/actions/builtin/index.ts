/**
 * spylog's built-in actions, by kind (BuiltinActionKind: `firewall`, `mail`, `webhook`, `log`).
 * The daemon builds a runner for an ActionConfig with a `builtin` field as
 * `BUILTIN_ACTIONS[cfg.builtin.kind](cfg, ctx)` (or `builtinRunner(cfg, ctx)`).
 *
 * `firewall` picks the host firewall: on Linux nftables when `nft` is installed, else ipset +
 * iptables, else plain iptables — whatever fail2ban family the action was mapped from (iptables*,
 * nftables*, ipset*, firewallcmd*, ufw all ban the same way), unless `options.backend` names one.
 * On Windows it defers to the factory registered as `BUILTIN_ACTIONS['windows-firewall']`
 * (WINDOWS_FIREWALL), which the Windows module adds.
 */
import type {ActionConfig, BuiltinActionKind} from '../../config/model.js'
import {ActionError, type ActionContext, type ActionFactory, type ActionRunner} from '../action.js'
import {findProgram} from '../exec.js'
import {optionText, where} from './firewall.js'
import {IpsetRunner} from './ipset.js'
import {IptablesRunner} from './iptables.js'
import {LogRunner} from './log.js'
import {MailRunner} from './mail.js'
import {NftablesRunner} from './nftables.js'
import {WebhookRunner} from './webhook.js'

/** The registry key of the Windows firewall factory (added by the Windows module on win32). */
export const WINDOWS_FIREWALL = 'windows-firewall'

export const FIREWALL_BACKENDS = ['nftables', 'ipset', 'iptables'] as const
export type FirewallBackend = (typeof FIREWALL_BACKENDS)[number]

/**
 * The Linux firewall backend of an action: `options.backend` when set (`nftables`, `ipset`,
 * `iptables`, or `auto`; the Windows backend names `powershell` and `netsh` count as auto), else the first that is installed of nftables, ipset + iptables,
 * iptables (iptables when none is: its start() then says what is missing).
 */
export function chooseFirewallBackend(cfg: ActionConfig, installed: (program: string) => boolean = (p) => findProgram(p) !== undefined): FirewallBackend {
  const explicit = optionText(cfg, 'backend')?.toLowerCase()
  // the Windows firewall's backends (powershell, netsh) say nothing about Linux: choose as for auto
  if (explicit !== undefined && explicit !== 'auto' && explicit !== 'powershell' && explicit !== 'netsh') {
    if (!(FIREWALL_BACKENDS as readonly string[]).includes(explicit)) throw new ActionError(`${where(cfg)}: option backend: ${JSON.stringify(explicit)} is not one of auto, ${FIREWALL_BACKENDS.join(', ')}`, false)
    return explicit as FirewallBackend
  }
  if (installed('nft')) return 'nftables'
  if (installed('ipset') && installed('iptables')) return 'ipset'
  return 'iptables'
}

/**
 * The `firewall` factory. `platforms` replaces the factory for a platform (tests; a daemon that
 * wires the Windows firewall directly); otherwise win32 uses `BUILTIN_ACTIONS['windows-firewall']`.
 */
export function firewallAction(platforms: Partial<Record<NodeJS.Platform, ActionFactory>> = {}, installed?: (program: string) => boolean): ActionFactory {
  return (cfg: ActionConfig, ctx: ActionContext): ActionRunner => {
    const platform = ctx.platform ?? process.platform
    const own = platforms[platform]
    if (own !== undefined) return own(cfg, ctx)
    if (platform === 'win32') {
      const win = BUILTIN_ACTIONS[WINDOWS_FIREWALL]
      if (win === undefined) throw new ActionError(`${where(cfg)}: no Windows firewall backend is available in this build`, false)
      return win(cfg, ctx)
    }
    if (platform !== 'linux') throw new ActionError(`${where(cfg)}: spylog has no firewall backend for ${platform}`, false)
    const backend = chooseFirewallBackend(cfg, installed)
    ctx.log.info(`${cfg.name}: firewall backend ${backend === 'ipset' ? 'ipset + iptables' : backend}${cfg.builtin !== undefined && cfg.builtin.variant !== backend && cfg.builtin.variant !== 'spylog' ? ` (for fail2ban's ${cfg.builtin.variant} action)` : ''}`)
    switch (backend) {
      case 'nftables':
        return new NftablesRunner(cfg, ctx)
      case 'ipset':
        return new IpsetRunner(cfg, ctx)
      case 'iptables':
        return new IptablesRunner(cfg, ctx)
    }
  }
}

/**
 * Factories by kind (plus `windows-firewall` once registered). Constructors check the action's
 * options and throw ActionError (retry false) naming the file and action on a bad one.
 */
export const BUILTIN_ACTIONS: Record<BuiltinActionKind, ActionFactory> & Record<string, ActionFactory | undefined> = {
  firewall: firewallAction(),
  mail: (cfg, ctx) => new MailRunner(cfg, ctx),
  webhook: (cfg, ctx) => new WebhookRunner(cfg, ctx),
  log: (cfg, ctx) => new LogRunner(cfg, ctx),
}

/** The runner of a built-in action, or undefined when `cfg` is not one. */
export function builtinRunner(cfg: ActionConfig, ctx: ActionContext): ActionRunner | undefined {
  if (cfg.builtin === undefined) return undefined
  const f = BUILTIN_ACTIONS[cfg.builtin.kind]
  if (f === undefined) throw new ActionError(`${where(cfg)}: unknown built-in action kind ${JSON.stringify(cfg.builtin.kind)}`, false)
  return f(cfg, ctx)
}

export {IpsetRunner, IptablesRunner, LogRunner, MailRunner, NftablesRunner, WebhookRunner}
