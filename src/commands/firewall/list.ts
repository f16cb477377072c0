import {Command, Flags} from '@oclif/core'
import Table from 'cli-table3'
import {loadConfigDetailed} from '../../engine/config/load.js'
import {listFirewallRules, type FirewallAccess, type FirewallBackend} from '../../engine/actions/windows/firewall.js'

/** Flags shared by `spylog firewall list` and `spylog firewall clear`. */
export const firewallFlags = {
  json: Flags.boolean({description: 'print the result as JSON'}),
  backend: Flags.string({description: 'how to reach the firewall: PowerShell (reads the rules back) or netsh (uses spylog\'s state file)', options: ['powershell', 'netsh'], default: 'powershell'}),
  'data-dir': Flags.string({description: 'spylog\'s data directory (holds windows-firewall.json); default: the configuration\'s', helpValue: 'DIR'}),
  config: Flags.string({description: 'configuration directory (to find the data directory)', helpValue: 'DIR'}),
  shell: Flags.string({description: 'program to run in place of powershell.exe / netsh.exe (a test seam; lets the command run off Windows)', helpValue: 'PROGRAM'}),
}

/** The firewall access the flags describe; exits 2 off Windows unless --shell gives a stand-in. */
export function firewallAccess(cmd: Command, flags: {backend: string; 'data-dir'?: string; config?: string; shell?: string}): FirewallAccess {
  if (process.platform !== 'win32' && flags.shell === undefined) {
    cmd.error(`spylog firewall manages the Windows Firewall, and this is ${process.platform}. On Linux spylog bans through nftables, ipset or iptables: inspect those with nft/ipset/iptables.`, {exit: 2})
  }
  let dataDir = flags['data-dir']
  if (dataDir === undefined) {
    try {
      dataDir = loadConfigDetailed({config: flags.config}).config.dataDir
    } catch {
      dataDir = undefined // no usable configuration: the firewall itself is still readable
    }
  }
  const backend = flags.backend as FirewallBackend
  return {backend, dataDir, powershell: flags.shell, netsh: flags.shell, timeoutMs: 120_000}
}

export default class FirewallList extends Command {
  static override description = 'List spylog\'s rules in the Windows Firewall and how many addresses each blocks.\n\n' +
    'spylog keeps banned addresses in block rules named spylog-v4-NNNN and spylog-v6-NNNN (group "spylog"), at most ' +
    '1,000 addresses each. With PowerShell (the default) the rules are read from the firewall itself; with --backend netsh ' +
    'from spylog\'s state file. Also warns when the firewall is off for a profile (the rules then have no effect there). ' +
    'Needs an elevated prompt. On other systems the command exits with status 2.'

  static override examples = [
    {description: 'Show the rules and their address counts.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Every rule with its addresses, as JSON.', command: '<%= config.bin %> <%= command.id %> --json'},
    {description: 'On a host where PowerShell cannot run (rules written with netsh).', command: '<%= config.bin %> <%= command.id %> --backend netsh --data-dir C:\\ProgramData\\spylog\\data'},
  ]

  static override flags = firewallFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(FirewallList)
    const access = firewallAccess(this, flags)
    let res
    try {
      res = await listFirewallRules(access)
    } catch (e) {
      this.error(`cannot read the Windows Firewall: ${(e as Error).message}`, {exit: 1})
    }
    const total = res.rules.reduce((n, r) => n + r.addresses.length, 0)
    const off = res.profiles.filter((p) => !p.enabled).map((p) => p.name)
    if (flags.json) {
      this.log(JSON.stringify({
        source: res.source,
        total,
        rules: res.rules.map((r) => ({name: r.name, count: r.addresses.length, enabled: r.enabled, foreign: r.foreign, addresses: r.addresses})),
        profiles: res.profiles,
      }, null, 2))
      return
    }
    if (res.rules.length === 0) this.log('No spylog rules in the Windows Firewall.')
    else {
      const t = new Table({head: ['rule', 'addresses', 'enabled', 'note'], style: {head: [], border: []}})
      for (const r of res.rules) {
        const note = r.foreign.includes('Any') ? 'blocks ANY address: run "spylog firewall clear"' : r.foreign.length > 0 ? `not spylog's: ${r.foreign.join(', ')}` : ''
        t.push([r.name, String(r.addresses.length), r.enabled === undefined ? '' : r.enabled ? 'yes' : 'no', note])
      }
      this.log(t.toString())
      this.log(`${total} address${total === 1 ? '' : 'es'} in ${res.rules.length} rule${res.rules.length === 1 ? '' : 's'}${res.source === 'state' ? ' (from spylog\'s state file)' : ''}.`)
    }
    if (off.length > 0) this.warn(`the Windows Firewall is off for the ${off.join(', ')} profile${off.length > 1 ? 's' : ''}: spylog's rules have no effect there`)
  }
}
