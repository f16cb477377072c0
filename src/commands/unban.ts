import {Args, Command, Flags} from '@oclif/core'
import {CHANNEL_HELP, controlFlags, EXIT_CODES_HELP, renderUnban, runControl} from '../engine/control/render.js'

export default class Unban extends Command {
  static override summary = 'Lift bans: of some addresses, or all of them'

  static override description = `Unbans each ADDR in every jail that bans it (only in --jail JAIL when given), or every active ban with --all. The unban runs through the action queue like an expiring ban, so it is retried until the firewall agrees and survives a restart.

${CHANNEL_HELP}

${EXIT_CODES_HELP} An ADDR that was not banned makes the exit status 1.`

  static override examples = [
    {description: 'Unban one address everywhere', command: '<%= config.bin %> <%= command.id %> 192.0.2.7'},
    {description: 'Unban in one jail only', command: '<%= config.bin %> <%= command.id %> 192.0.2.7 --jail sshd'},
    {description: 'Lift every ban', command: '<%= config.bin %> <%= command.id %> --all'},
  ]

  static override strict = false

  static override args = {
    ADDR: Args.string({required: false, description: 'addresses (or other banned ids) to unban'}),
  }

  static override flags = {
    ...controlFlags,
    all: Flags.boolean({description: 'lift every active ban (of --jail only, when given)'}),
    jail: Flags.string({helpValue: 'JAIL', description: 'unban in this jail only'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Unban)
    const ids = (argv as string[]).filter((a) => a !== '')
    if (flags.all && ids.length > 0) this.error('give addresses or --all, not both', {exit: 2})
    if (!flags.all && ids.length === 0) this.error('give the addresses to unban, or --all', {exit: 2})
    await runControl(this, flags, 'unban', flags.all ? {all: true, jail: flags.jail} : {ids, jail: flags.jail}, (r, c) => renderUnban(r, c, flags.all))
  }
}
