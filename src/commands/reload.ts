import {Args, Command} from '@oclif/core'
import {CHANNEL_HELP, controlFlags, EXIT_CODES_HELP, renderReload, runControl} from '../engine/control/render.js'

export default class Reload extends Command {
  static override summary = 'Make the daemon re-read its configuration'

  static override description = `Re-reads the configuration (only JAIL's part when given). Counters and bans of jails whose configuration did not change survive. When the new configuration has errors, the daemon keeps running the old one and the errors are printed, one per line, with exit status 2.

${CHANNEL_HELP}

${EXIT_CODES_HELP}`

  static override examples = [
    {description: 'Reload everything after editing /etc/spylog', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Reload one jail', command: '<%= config.bin %> <%= command.id %> sshd'},
    {description: 'Check the new configuration first, then reload', command: '<%= config.bin %> config check && <%= config.bin %> <%= command.id %>'},
  ]

  static override args = {
    JAIL: Args.string({required: false, description: 'jail to reload'}),
  }

  static override flags = {...controlFlags}

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Reload)
    await runControl(this, flags, 'reload', {jail: args.JAIL}, (r, c) => renderReload(r, c))
  }
}
