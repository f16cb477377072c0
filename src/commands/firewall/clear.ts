import {Command} from '@oclif/core'
import {clearFirewallRules} from '../../engine/actions/windows/firewall.js'
import {firewallAccess, firewallFlags} from './list.js'

export default class FirewallClear extends Command {
  static override description = 'Remove every spylog rule from the Windows Firewall (unblocks every banned address).\n\n' +
    'Removes the rules named spylog-v4-NNNN / spylog-v6-NNNN and every rule in the group "spylog", and spylog\'s ' +
    'rule state file. A running spylog writes its current bans again on its next change; stop the service first ' +
    'to unblock everything for good. With --backend netsh, the rules named in the state file are removed. ' +
    'Needs an elevated prompt. On other systems the command exits with status 2. ' +
    'By hand: Remove-NetFirewallRule -Group spylog'

  static override examples = [
    {description: 'Remove all spylog rules.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'The same, printing the removed rule names as JSON.', command: '<%= config.bin %> <%= command.id %> --json'},
  ]

  static override flags = firewallFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(FirewallClear)
    const access = firewallAccess(this, flags)
    let removed: string[]
    try {
      removed = await clearFirewallRules(access)
    } catch (e) {
      this.error(`cannot clear the Windows Firewall rules: ${(e as Error).message}`, {exit: 1})
    }
    if (flags.json) {
      this.log(JSON.stringify({removed}, null, 2))
      return
    }
    this.log(removed.length === 0 ? 'No spylog rules to remove.' : `Removed ${removed.length} spylog rule${removed.length === 1 ? '' : 's'}: ${removed.join(', ')}`)
  }
}
