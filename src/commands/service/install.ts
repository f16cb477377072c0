import {Command, Flags} from '@oclif/core'
import {installUnit, ServiceError, type ServiceReport, type SystemdOptions} from '../../engine/service/systemd.js'
import {installWindowsService, type WindowsServiceOptions} from '../../engine/service/windows.js'

/** Flags shared by the `spylog service` commands. */
export const serviceFlags = {
  json: Flags.boolean({description: 'print the result as JSON'}),
  config: Flags.string({description: 'configuration directory the service runs with (default: %ProgramData%\\spylog on Windows, spylog\'s lookup on Linux)', helpValue: 'DIR'}),
  root: Flags.string({description: 'Linux: install into this root file system (an image, a test tree); the unit is enabled offline there', helpValue: 'DIR'}),
  target: Flags.string({description: 'service manager (default: this platform\'s)', options: ['systemd', 'windows'], hidden: true}),
  systemctl: Flags.string({description: 'systemctl program (tests)', hidden: true, helpValue: 'PROGRAM'}),
}

export interface ServiceFlagValues {
  json: boolean
  config?: string
  root?: string
  target?: string
  systemctl?: string
}

/** The manager the flags pick, with its options. */
export function serviceTarget(flags: ServiceFlagValues): {kind: 'systemd'; opts: SystemdOptions} | {kind: 'windows'; opts: WindowsServiceOptions} {
  const kind = flags.target ?? (process.platform === 'win32' ? 'windows' : 'systemd')
  if (kind === 'windows') return {kind, opts: {config: flags.config}}
  return {kind: 'systemd', opts: {config: flags.config, root: flags.root, systemctl: flags.systemctl}}
}

/** Runs a service step: ServiceError → a clean message and its exit status. */
export async function serviceStep<T>(cmd: Command, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (e) {
    if (e instanceof ServiceError) cmd.error(e.message, {exit: e.exitCode})
    throw e
  }
}

/** Prints a ServiceReport. */
export function printReport(cmd: Command, r: ServiceReport, json: boolean, verb: string): void {
  if (json) {
    cmd.log(JSON.stringify(r, null, 2))
    return
  }
  if (r.unitPath !== undefined && verb === 'install') cmd.log(`Wrote ${r.unitPath}`)
  if (r.unitPath !== undefined && verb === 'uninstall') cmd.log(`Removed ${r.unitPath}`)
  for (const x of r.ran) cmd.log(`Ran: ${x}`)
  for (const n of r.notes) cmd.log(`Note: ${n}`)
}

export default class ServiceInstall extends Command {
  static override description = 'Install spylog as a service and start it.\n\n' +
    'Windows: a service "spylog" (id spylog.exe) running as LocalSystem through node-windows (its bundled WinSW ' +
    'wrapper), configured from %ProgramData%\\spylog, restarted when it stops. Needs an elevated prompt and the ' +
    'node-windows package (an optional dependency installed on Windows).\n\n' +
    'Linux: writes /etc/systemd/system/spylog.service (the current node running spylog run, restarted on failure, ' +
    'with CAP_NET_ADMIN and hardening options), then runs systemctl daemon-reload and systemctl enable --now. When ' +
    'systemd is not running (a container) only the unit is written, and the command says what to run later. ' +
    'With --root DIR the unit goes to DIR/etc/systemd/system and is enabled offline (systemctl --root).'

  static override examples = [
    {description: 'Install and start the service.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Linux: run with a given configuration directory.', command: '<%= config.bin %> <%= command.id %> --config /etc/spylog'},
    {description: 'Linux: install into an image\'s root file system.', command: '<%= config.bin %> <%= command.id %> --root /mnt/image'},
  ]

  static override flags = serviceFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceInstall)
    const t = serviceTarget(flags)
    const r = await serviceStep(this, () => (t.kind === 'windows' ? installWindowsService(t.opts) : installUnit(t.opts)))
    printReport(this, r, flags.json, 'install')
  }
}
