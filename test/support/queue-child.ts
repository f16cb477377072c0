/**
 * Driver process for test/queue-crash.test.ts: a Store + ActionQueue on a data directory, with
 * one file-backed action whose every successful ban/unban appends one line (`ban <id>` /
 * `unban <id>`) to an operations file. The test kills this process at random moments and starts
 * it again on the same directory.
 *
 * Usage: node --import tsx queue-child.ts <dataDir> <opsFile> <logFile> <failRate>
 * Commands on stdin, one per line; replies on stdout (written synchronously: a reply that was
 * written reached the parent even if the process is killed right after):
 *   ban <tag> <id> <bantime>   → `ok <tag>` once the ban is stored
 *   unban <tag> <id>           → `ok <tag>` once the unban is stored
 *   drain <tag>                → `ok <tag>` when no job is waiting or running (permanent bans aside)
 *   active <tag>               → `active <tag> <json list of banned ids>`
 * `ready` is written once the queue has started.
 */
import {randomUUID} from 'node:crypto'
import {appendFileSync, writeSync} from 'node:fs'
import {createInterface} from 'node:readline'
import {ActionError, type ActionOp, type ActionRunner, type BanRequest} from '../../src/engine/actions/action.js'
import {ActionQueue} from '../../src/engine/actions/queue.js'
import {fileSink, SinkLogger} from '../../src/engine/log/logger.js'
import {Store} from '../../src/engine/store/store.js'
import type {Ticket} from '../../src/engine/types.js'

const [dataDir, opsFile, logFile, failRateText] = process.argv.slice(2) as [string, string, string, string]
const failRate = Number(failRateText)

const out = (line: string): void => void writeSync(1, line + '\n')
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

class FileRunner implements ActionRunner {
  readonly name = 'fw'
  unique(_op: ActionOp, r: BanRequest): string {
    return `${r.ticket.jail} ${r.ticket.id}`
  }
  async run(op: ActionOp, r: BanRequest): Promise<void> {
    await pause(Math.random() * 2)
    if (Math.random() < failRate) throw new ActionError('transient failure')
    appendFileSync(opsFile, `${op} ${r.ticket.id}\n`)
    await pause(Math.random() * 2)
  }
}

function ticket(id: string, bantime: number): Ticket {
  const time = Date.now() / 1000
  return {uuid: randomUUID(), jail: 'j', filter: 'f', id, isAddress: false, time, bantime, banCount: 0, data: {}, failures: [{filter: 'f', id, time, data: {}, lines: [`failure from ${id}`]}]}
}

const store = await Store.open(dataDir, {compactEvery: 300})
const log = new SinkLogger('info', [fileSink(logFile)])
const queue = new ActionQueue({store, log, runners: new Map([['fw', new FileRunner()]]), backoff: {min: 0.01, max: 0.1}, concurrency: 8})
await queue.start()
out('ready')

const fail = (e: unknown): void => {
  process.stderr.write(`queue-child: ${e instanceof Error ? e.stack : String(e)}\n`)
  process.exit(2)
}

createInterface({input: process.stdin}).on('line', (line) => {
  const [cmd, tag, a, b] = line.split(' ')
  switch (cmd) {
    case 'ban':
      queue.submit(ticket(a!, Number(b)), [{name: 'fw', params: {}}]).then(() => out(`ok ${tag}`), fail)
      break
    case 'unban':
      queue.unban(a!).then(() => out(`ok ${tag}`), fail)
      break
    case 'drain':
      void (async () => {
        for (;;) {
          const m = queue.metrics()
          if (m.queued === 0 && m.running === 0) break
          await pause(10)
        }
        out(`ok ${tag}`)
      })()
      break
    case 'active':
      out(`active ${tag} ${JSON.stringify(queue.active().map((x) => x.id))}`)
      break
    default:
      fail(new Error(`unknown command ${line}`))
  }
})
