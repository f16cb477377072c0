import {Command} from '@oclif/core'
import {CHANNEL_HELP, controlFlags, EXIT_CODES_HELP, printable, runControl} from '../engine/control/render.js'

export default class Ping extends Command {
  static override summary = 'Check that the daemon is running and answering'

  static override description = `Sends a ping over the control channel and prints the daemon's version and process id.

${CHANNEL_HELP}

${EXIT_CODES_HELP}`

  static override examples = [
    {description: 'Is spylog running?', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'In a script: wait until the daemon answers', command: 'until <%= config.bin %> <%= command.id %> >/dev/null 2>&1; do sleep 1; done'},
  ]

  static override flags = {...controlFlags}

  async run(): Promise<void> {
    const {flags} = await this.parse(Ping)
    await runControl(this, flags, 'ping', {}, (r, _c, socketPath) => `pong from spylog ${printable(r.version)} (pid ${r.pid}) at ${socketPath}`)
  }
}
