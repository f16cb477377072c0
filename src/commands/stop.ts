import {Command} from '@oclif/core'
import {waitUntilGone} from '../engine/control/client.js'
import {CHANNEL_HELP, colours, controlFlags, EXIT_CODES_HELP, runControl} from '../engine/control/render.js'

export default class Stop extends Command {
  static override summary = 'Stop the running daemon'

  static override description = `Asks the daemon to stop, then waits (up to --timeout) until it no longer answers. Bans stay in place and are restored by the next start; pending unbans run then.

${CHANNEL_HELP}

${EXIT_CODES_HELP} A daemon still answering at the deadline gives exit status 1.`

  static override examples = [
    {description: 'Stop spylog', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Stop the daemon listening on another socket', command: '<%= config.bin %> <%= command.id %> --socket /tmp/spylog.sock --data-dir /tmp/spylog-data'},
  ]

  static override flags = {...controlFlags}

  async run(): Promise<void> {
    const {flags} = await this.parse(Stop)
    let socketPath = ''
    const r = await runControl(this, flags, 'stop', {}, (_r, _c, p) => {
      socketPath = p
      return {text: ''}
    })
    if (r === undefined) return
    const gone = await waitUntilGone(socketPath, flags.timeout * 1000)
    const {err} = colours(flags.json)
    if (gone) {
      if (!flags.json) this.log(`spylog at ${socketPath} stopped`)
    } else {
      process.stderr.write(`${err.red('error')}: the daemon at ${socketPath} still answers after ${flags.timeout} s\n`)
      process.exitCode = 1
    }
  }
}
