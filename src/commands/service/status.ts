import {Command} from '@oclif/core'
import {unitStatus} from '../../engine/service/systemd.js'
import {windowsServiceStatus} from '../../engine/service/windows.js'
import {serviceFlags, serviceStep, serviceTarget} from './install.js'

export default class ServiceStatus extends Command {
  static override description = 'Show whether the spylog service is installed, enabled and running.\n\n' +
    'Linux: from systemctl show (or, when systemd is not running, from the unit file and its enablement link). ' +
    'Windows: from sc.exe queryex spylog.exe.'

  static override examples = [
    {description: 'Show the service state.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'As JSON (installed, enabled, active, pid …).', command: '<%= config.bin %> <%= command.id %> --json'},
  ]

  static override flags = serviceFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceStatus)
    const t = serviceTarget(flags)
    if (t.kind === 'windows') {
      const s = await serviceStep(this, () => windowsServiceStatus(t.opts))
      if (flags.json) return this.log(JSON.stringify(s, null, 2))
      if (!s.installed) return this.log('The spylog service is not installed (spylog service install).')
      this.log(`spylog service (spylog.exe): ${s.state ?? 'unknown state'}${s.pid !== undefined ? `, PID ${s.pid}` : ''}`)
      return
    }
    const s = await serviceStep(this, () => unitStatus(t.opts))
    if (flags.json) return this.log(JSON.stringify(s, null, 2))
    if (!s.installed) return this.log(`spylog.service is not installed (no ${s.unitPath}); run: spylog service install`)
    const parts = [`installed (${s.unitPath})`]
    if (s.enabled !== undefined) parts.push(s.enabled)
    if (s.systemd) parts.push(`${s.active ?? 'unknown'}${s.sub !== undefined ? ` (${s.sub})` : ''}`)
    if (s.pid !== undefined) parts.push(`PID ${s.pid}`)
    this.log(`spylog.service: ${parts.join(', ')}`)
    if (!s.systemd) this.log(flags.root !== undefined ? `Not running: installed under --root ${flags.root}.` : 'systemd is not running on this machine: the service cannot run here.')
  }
}
