import {Command, Flags} from '@oclif/core'
import {uninstallUnit} from '../../engine/service/systemd.js'
import {uninstallWindowsService} from '../../engine/service/windows.js'
import {printReport, serviceFlags, serviceStep, serviceTarget} from './install.js'

export default class ServiceUninstall extends Command {
  static override description = 'Stop and remove the spylog service.\n\n' +
    'Windows: stops and removes the service, then removes spylog\'s firewall rules (spylog firewall clear) unless ' +
    '--keep-rules. Linux: systemctl disable --now, removes the unit file, systemctl daemon-reload (the systemctl ' +
    'steps are skipped when systemd is not running). The nftables/iptables sets belong to the firewall actions and ' +
    'are removed when the daemon stops.'

  static override examples = [
    {description: 'Remove the service.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Windows: remove the service but keep the current bans in the firewall.', command: '<%= config.bin %> <%= command.id %> --keep-rules'},
  ]

  static override flags = {
    ...serviceFlags,
    'keep-rules': Flags.boolean({description: 'Windows: leave spylog\'s firewall rules in place'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceUninstall)
    const t = serviceTarget(flags)
    const r = await serviceStep(this, () => (t.kind === 'windows' ? uninstallWindowsService({...t.opts, keepRules: flags['keep-rules']}) : uninstallUnit(t.opts)))
    printReport(this, r, flags.json, 'uninstall')
  }
}
