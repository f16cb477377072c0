import {Args, Command} from '@oclif/core'
import {CHANNEL_HELP, controlFlags, EXIT_CODES_HELP, renderJailStatus, renderStatus, runControl} from '../engine/control/render.js'
import type {JailStatus, StatusResult} from '../engine/control/protocol.js'

export default class Status extends Command {
  static override summary = 'Show the jails and sources of the running daemon, or one jail in detail'

  static override description = `Without JAIL: a table of the jails (currently and total failed, currently and total banned, their filters and sources) and one of the sources with their counters (records, bytes, errors, drops, last record, state).

With JAIL: fail2ban-client's status tree for that jail: its filters and sources, currently/total failed; its actions, currently/total banned, and the banned addresses with the time left.

${CHANNEL_HELP}

${EXIT_CODES_HELP}`

  static override examples = [
    {description: 'All jails and sources', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'One jail, with its banned addresses', command: '<%= config.bin %> <%= command.id %> sshd'},
    {description: 'Currently banned count per jail, for a script', command: "<%= config.bin %> <%= command.id %> --json | jq -r '.jails[] | \"\\(.name) \\(.currentlyBanned)\"'"},
    {description: 'A daemon started with its own socket and data directory', command: '<%= config.bin %> <%= command.id %> --socket /tmp/spylog.sock --data-dir /tmp/spylog-data'},
  ]

  static override args = {
    JAIL: Args.string({required: false, description: 'jail to show in detail'}),
  }

  static override flags = {...controlFlags}

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Status)
    await runControl(this, flags, 'status', {jail: args.JAIL}, (r, c) =>
      args.JAIL === undefined ? renderStatus(r as StatusResult, c) : renderJailStatus(r as JailStatus, c))
  }
}
