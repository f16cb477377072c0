import {Args, Command} from '@oclif/core'
import {CHANNEL_HELP, controlFlags, EXIT_CODES_HELP, renderBanned, runControl} from '../engine/control/render.js'

export default class Banned extends Command {
  static override summary = 'Show which jails ban an address, for how long, and why'

  static override description = `For each ADDR (every banned address when none is given): the jails that ban it, the time left, when and for how long it was banned, and the failures that led to the ban (their log lines, control characters escaped).

${CHANNEL_HELP}

${EXIT_CODES_HELP} An address that is not banned is not an error.`

  static override examples = [
    {description: 'Every active ban with its reasons', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Why one address is banned', command: '<%= config.bin %> <%= command.id %> 192.0.2.7'},
    {description: 'Several addresses, as JSON', command: '<%= config.bin %> <%= command.id %> 192.0.2.7 2001:db8::5 --json'},
  ]

  static override strict = false

  static override args = {
    ADDR: Args.string({required: false, description: 'addresses (or other banned ids) to look up'}),
  }

  static override flags = {...controlFlags}

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Banned)
    const ids = (argv as string[]).filter((a) => a !== '')
    await runControl(this, flags, 'banned', {ids: ids.length > 0 ? ids : undefined}, (r, c) => renderBanned(r, c, ids))
  }
}
