import {Command} from '@oclif/core'
import {controlUnit} from '../../engine/service/systemd.js'
import {controlWindowsService} from '../../engine/service/windows.js'
import {printReport, serviceFlags, serviceStep, serviceTarget} from './install.js'

export default class ServiceStop extends Command {
  static override description = 'Stop the installed spylog service (Windows: sc.exe stop spylog.exe; Linux: systemctl stop spylog.service).\n\n' +
    'Fails with a clear message when the service is not installed, or when systemd is not running on this machine.'

  static override examples = [
    {description: 'Stop the service.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'The same, reporting what ran as JSON.', command: '<%= config.bin %> <%= command.id %> --json'},
  ]

  static override flags = serviceFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceStop)
    const t = serviceTarget(flags)
    const r = await serviceStep(this, () => (t.kind === 'windows' ? controlWindowsService(t.opts, 'stop') : controlUnit(t.opts, 'stop')))
    printReport(this, r, flags.json, 'stop')
  }
}
