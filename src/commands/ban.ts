import {Args, Command} from '@oclif/core'
import {CHANNEL_HELP, controlFlags, EXIT_CODES_HELP, renderBan, runControl} from '../engine/control/render.js'

export default class Ban extends Command {
  static override summary = 'Ban addresses in a jail by hand'

  static override description = `Bans each ADDR in JAIL through the same queue as automatic bans, so the ban runs the jail's actions, lasts the jail's bantime and survives a restart. Addresses the jail must never ban (whitelisted, local) are refused with the reason.

${CHANNEL_HELP}

${EXIT_CODES_HELP} An address refused makes the exit status 1; an address already banned does not.`

  static override examples = [
    {description: 'Ban one address in the sshd jail', command: '<%= config.bin %> <%= command.id %> sshd 192.0.2.7'},
    {description: 'Ban several addresses and networks', command: '<%= config.bin %> <%= command.id %> recidive 198.51.100.23 2001:db8:1::/64'},
    {description: 'Machine-readable outcome', command: '<%= config.bin %> <%= command.id %> sshd 192.0.2.7 --json'},
  ]

  static override strict = false

  static override args = {
    JAIL: Args.string({required: true, description: 'jail whose actions and bantime apply'}),
    ADDR: Args.string({required: true, description: 'addresses (or networks) to ban'}),
  }

  static override flags = {...controlFlags}

  async run(): Promise<void> {
    const {args, argv, flags} = await this.parse(Ban)
    const ids = (argv as string[]).slice(1).filter((a) => a !== '')
    await runControl(this, flags, 'ban', {jail: args.JAIL, ids}, (r, c) => renderBan(r, c))
  }
}
