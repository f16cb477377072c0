import {expect} from 'chai'
import {randomUUID} from 'node:crypto'
import {ActionError, type ActionOp, type ActionRunner, type BanRequest} from '../src/engine/actions/action.js'
import {ActionQueue, type ActionRef} from '../src/engine/actions/queue.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {Store} from '../src/engine/store/store.js'
import type {Ticket} from '../src/engine/types.js'
import {tempTree} from './support/files.js'
import {waitFor as until} from './support/wait.js'

const now = (): number => Date.now() / 1000

interface Op {
  op: ActionOp
  jail: string
  id: string
  uuid: string
  at: number
  params: BanRequest['params']
}

/** A runner that records what it was asked to do (and can be told to fail). */
class Recorder implements ActionRunner {
  readonly ops: Op[] = []
  failures = 0
  failWith: () => Error = () => new ActionError('firewall said no')
  started = 0
  stopped = 0
  constructor(
    readonly name: string,
    readonly opts: {unique?: (op: ActionOp, r: BanRequest) => string; reversible?: boolean; reapply?: boolean} = {},
  ) {}
  get reversible(): boolean | undefined {
    return this.opts.reversible
  }
  get reapply(): boolean | undefined {
    return this.opts.reapply
  }
  unique(op: ActionOp, r: BanRequest): string {
    return this.opts.unique?.(op, r) ?? `${r.ticket.jail} ${r.ticket.id}`
  }
  startFailures = 0
  hang = false
  async start(): Promise<void> {
    if (this.startFailures > 0) {
      this.startFailures--
      throw new Error('chain missing')
    }
    this.started++
  }
  async stop(): Promise<void> {
    this.stopped++
  }
  async run(op: ActionOp, r: BanRequest): Promise<void> {
    if (this.hang) await new Promise(() => undefined)
    if (this.failures > 0) {
      this.failures--
      throw this.failWith()
    }
    this.ops.push({op, jail: r.ticket.jail, id: r.ticket.id, uuid: r.ticket.uuid, at: now(), params: r.params})
  }
  count(op: ActionOp, id?: string): number {
    return this.ops.filter((o) => o.op === op && (id === undefined || o.id === id)).length
  }
}

function ticket(id: string, bantime: number, more: Partial<Ticket> = {}): Ticket {
  return {
    uuid: randomUUID(), jail: 'sshd', filter: 'sshd', id, isAddress: true, time: now(), bantime, banCount: 0, data: {},
    failures: [
      {filter: 'sshd', id, time: now(), data: {}, lines: [`Failed password for root from ${id}`]},
      {filter: 'sshd', id, time: now(), data: {}, lines: [`evil\nNOTICE [sshd] Ban 198.51.100.7`]},
    ],
    ...more,
  }
}

function setup(runners: Recorder[], store = Store.memory(), opts: {backoff?: {min: number; max: number}} = {}) {
  const lines: string[] = []
  const log = new SinkLogger('debug', [memorySink(lines)])
  const q = new ActionQueue({store, log, runners: new Map(runners.map((r) => [r.name, r])), backoff: opts.backoff})
  return {q, lines, store}
}

const refs = (...names: string[]): ActionRef[] => names.map((name) => ({name, params: {port: 'ssh'}}))

describe('ActionQueue', function () {
  const queues: ActionQueue[] = []
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.stop()
  })
  const track = <T extends {q: ActionQueue}>(s: T): T => {
    queues.push(s.q)
    return s
  }

  it('bans at once, logs the stable Ban line and a one-line reason, and unbans when the time is over', async () => {
    const fw = new Recorder('fw')
    const {q, lines} = track(setup([fw]))
    await q.start()
    expect(fw.started).to.equal(1)
    const t = ticket('192.0.2.1', 0.3)
    await q.submit(t, refs('fw'))
    expect(q.active().map((b) => b.id)).to.deep.equal(['192.0.2.1'])
    await until('the unban', () => fw.count('unban') === 1)
    expect(fw.ops.map((o) => o.op)).to.deep.equal(['ban', 'unban'])
    expect(fw.ops[0]!.params).to.deep.equal({port: 'ssh'})
    expect(fw.ops[1]!.at).to.be.at.least(t.time + t.bantime)
    expect(fw.ops[1]!.uuid).to.equal(t.uuid)
    const notices = lines.filter((l) => l.includes(' NOTICE '))
    expect(notices.map((l) => l.replace(/^.* NOTICE /, ''))).to.deep.equal(['[sshd] Ban 192.0.2.1', '[sshd] Unban 192.0.2.1'])
    const reason = lines.find((l) => l.includes(' INFO [sshd] 192.0.2.1: banned'))!
    expect(reason).to.contain('filter sshd, 2 failures')
    expect(reason).to.contain('"Failed password for root from 192.0.2.1"')
    expect(reason).to.contain('"evil\\nNOTICE [sshd] Ban 198.51.100.7"')
    expect(reason).to.not.match(/Ban 198\.51\.100\.7\s*$/)
    expect(lines.every((l) => !l.includes('\n'))).to.equal(true)
    await until('the ban to end', () => q.active().length === 0)
    expect(q.metrics()).to.include({queued: 0, running: 0, bans: 0})
    expect(q.metrics().done).to.deep.equal({fw: 2})
  })

  it('extends an active ban instead of banning twice, and unbans at the later end', async () => {
    const fw = new Recorder('fw')
    const {q, lines} = track(setup([fw]))
    await q.start()
    // the first ban lasts long enough for the second ticket to find it active even on a loaded machine
    const first = ticket('192.0.2.2', 2)
    await q.submit(first, refs('fw'))
    const second = ticket('192.0.2.2', 3)
    await q.submit(second, refs('fw'))
    expect(q.active()[0]!.until).to.equal(second.time + 3)
    await until('the unban', () => fw.count('unban') === 1)
    expect(fw.count('ban')).to.equal(1)
    expect(fw.ops[1]!.at).to.be.at.least(second.time + 3)
    expect(fw.ops[1]!.uuid).to.equal(first.uuid)
    expect(lines.some((l) => l.endsWith('NOTICE [sshd] 192.0.2.2 already banned'))).to.equal(true)
    expect(lines.filter((l) => l.includes('NOTICE [sshd] Ban 192.0.2.2'))).to.have.length(1)
    expect((await q.loadHistory()).filter((h) => h.id === '192.0.2.2')).to.have.length(1)
  })

  it('keeps a permanent ban until a manual unban, which is queued like any other', async () => {
    const fw = new Recorder('fw')
    const {q, lines} = track(setup([fw]))
    await q.start()
    await q.submit(ticket('192.0.2.3', -1), refs('fw'))
    await q.submit(ticket('192.0.2.4', 3600, {jail: 'web'}), refs('fw'))
    await until('both bans', () => fw.count('ban') === 2)
    expect(q.active().map((b) => [b.id, b.left])).to.deep.include(['192.0.2.3', -1])
    expect(await q.unban('192.0.2.3', 'web')).to.equal(0)
    expect(await q.unban('192.0.2.3')).to.equal(1)
    await until('the manual unban', () => fw.count('unban', '192.0.2.3') === 1)
    expect(lines.some((l) => l.endsWith('NOTICE [sshd] Unban 192.0.2.3'))).to.equal(true)
    expect(lines.some((l) => l.includes('INFO [sshd] 192.0.2.3: unbanned by request'))).to.equal(true)
    expect(await q.unban({all: true})).to.equal(1)
    await until('unban all', () => fw.count('unban', '192.0.2.4') === 1)
    expect(q.active()).to.deep.equal([])
  })

  it('retries a failing job with back-off, logging each failure with the action error', async () => {
    const fw = new Recorder('fw')
    fw.failures = 2
    const {q, lines} = track(setup([fw], Store.memory(), {backoff: {min: 0.05, max: 0.2}}))
    await q.start()
    await q.submit(ticket('192.0.2.5', 3600), refs('fw'))
    await until('the ban after two failures', () => fw.count('ban') === 1)
    const errs = lines.filter((l) => l.includes(' ERROR '))
    expect(errs).to.have.length(2)
    expect(errs[0]).to.contain('[sshd] action "fw" failed to ban 192.0.2.5 (attempt 1, retrying in 50 ms): firewall said no')
    expect(errs[1]).to.contain('(attempt 2, retrying in 100 ms)')
    expect(q.metrics().failures).to.deep.equal({fw: 2})
  })

  it('drops a job the action says cannot succeed, and goes on with the other actions', async () => {
    const fw = new Recorder('fw')
    const mail = new Recorder('mail', {reversible: false})
    fw.failures = 1
    fw.failWith = () => new ActionError('not an address', false)
    const {q, lines} = track(setup([fw, mail]))
    await q.start()
    await q.submit(ticket('alice', 0.2, {isAddress: false}), [...refs('fw', 'mail', 'nosuch')])
    await until('the ban to end', () => q.active().length === 0)
    await q.idle()
    expect(fw.ops.map((o) => o.op)).to.deep.equal(['unban'])
    expect(mail.ops.map((o) => o.op)).to.deep.equal(['ban'])
    expect(lines.some((l) => l.includes('ERROR [sshd] action "fw" failed to ban alice (not retried): not an address'))).to.equal(true)
    expect(lines.some((l) => l.includes('ERROR [sshd] action "nosuch" is not configured'))).to.equal(true)
  })

  it('shares one firewall entry between bans with the same unique key', async () => {
    const fw = new Recorder('fw', {unique: (_op, r) => `block ${r.ticket.id}`})
    const {q} = track(setup([fw]))
    await q.start()
    const a = ticket('192.0.2.6', 1, {jail: 'sshd'})
    const b = ticket('192.0.2.6', 2, {jail: 'web'})
    await q.submit(a, refs('fw'))
    await q.submit(b, refs('fw'))
    expect(q.active()).to.have.length(2)
    await until('the shared unban', () => fw.count('unban') === 1)
    expect(fw.count('ban')).to.equal(1)
    expect(fw.ops[1]!.at).to.be.at.least(b.time + 2)
    await until('both bans to end', () => q.active().length === 0)
  })

  it('after a restart re-applies active bans without unbanning them, and runs overdue unbans at once', async () => {
    const dir = tempTree({})
    const fw = new Recorder('fw')
    const mail = new Recorder('mail', {reversible: false})
    let s = await Store.open(dir)
    const one = track(setup([fw, mail], s))
    await one.q.start()
    const short = ticket('192.0.2.7', 2)
    await one.q.submit(short, refs('fw', 'mail'))
    await one.q.submit(ticket('192.0.2.8', 3600), refs('fw', 'mail'))
    await one.q.submit(ticket('192.0.2.9', -1), refs('fw'))
    await until('the first bans', () => fw.count('ban') === 3 && mail.count('ban') === 2)
    await one.q.stop()
    expect(fw.stopped).to.equal(1)
    await s.close()
    await until('the short ban to be overdue', () => now() > short.time + 2)

    const fw2 = new Recorder('fw')
    const mail2 = new Recorder('mail', {reversible: false})
    s = await Store.open(dir)
    const two = track(setup([fw2, mail2], s))
    await two.q.start()
    await until('the restart work', () => fw2.ops.length === 3)
    await two.q.idle()
    expect(fw2.ops.filter((o) => o.op === 'ban').map((o) => o.id).sort()).to.deep.equal(['192.0.2.8', '192.0.2.9'])
    expect(fw2.ops.filter((o) => o.op === 'unban').map((o) => o.id)).to.deep.equal(['192.0.2.7'])
    expect(mail2.ops).to.deep.equal([])
    expect(two.lines.filter((l) => l.includes('NOTICE')).map((l) => l.replace(/^.* NOTICE /, '')).sort()).to.deep.equal([
      '[sshd] Restore Ban 192.0.2.8', '[sshd] Restore Ban 192.0.2.9', '[sshd] Unban 192.0.2.7',
    ])
    expect(two.q.active().map((b) => b.id)).to.deep.equal(['192.0.2.8', '192.0.2.9'])
    await two.q.stop()
    await s.close()
  })

  it('cancels a ban job still failing when its unban falls due, and undoes what it may have done', async () => {
    const fw = new Recorder('fw')
    fw.failures = 1000
    const {q, lines} = track(setup([fw], Store.memory(), {backoff: {min: 0.05, max: 0.05}}))
    await q.start()
    await q.submit(ticket('192.0.2.10', 0.4), refs('fw'))
    await until('a failed unban attempt', () => lines.some((l) => l.includes('failed to unban 192.0.2.10')))
    const banAttempts = lines.filter((l) => l.includes('failed to ban 192.0.2.10')).length
    fw.failures = 0
    await until('the unban', () => fw.count('unban') === 1)
    await q.idle()
    expect(banAttempts).to.be.greaterThan(1)
    expect(lines.filter((l) => l.includes('failed to ban 192.0.2.10'))).to.have.length(banAttempts)
    expect(q.metrics().queued).to.equal(0)
    expect(fw.ops.map((o) => o.op)).to.deep.equal(['unban'])
  })

  it('keeps one active ban per jail and offender when the store holds two', async () => {
    const fw = new Recorder('fw')
    const store = Store.memory()
    const stored = (uuid: string, until: number) => ({uuid, jail: 'sshd', id: '192.0.2.20', time: now(), bantime: until - now(), until, ticket: JSON.stringify(ticket('192.0.2.20', 1, {uuid})), refs: '[]'})
    await store.putBan(stored('early', now() + 100))
    await store.putBan(stored('late', now() + 200))
    const {q} = track(setup([fw], store))
    await q.start()
    expect(q.active().map((b) => b.uuid)).to.deep.equal(['late'])
    expect((await store.loadBans()).map((b) => b.uuid)).to.deep.equal(['late'])
  })

  it('stays correct when thousands of extensions reschedule the same unban', async () => {
    const fw = new Recorder('fw')
    const {q} = track(setup([fw]))
    await q.start()
    const base = now()
    for (let i = 1; i <= 3000; i++) await q.submit(ticket('192.0.2.21', 3600 + i, {time: base}), refs('fw'))
    await until('the ban', () => fw.count('ban') === 1)
    expect(q.active()[0]!.until).to.equal(base + 6600)
    expect(q.metrics().queued).to.equal(1)
    expect(await q.unban('192.0.2.21')).to.equal(1)
    await until('the unban', () => fw.count('unban') === 1)
    await q.idle()
    expect(fw.ops.map((o) => o.op)).to.deep.equal(['ban', 'unban'])
  })

  it('does not re-run a reapply:false action after a restart, but still runs its unban', async () => {
    const dir = tempTree({})
    const mail = new Recorder('mail', {reapply: false})
    let s = await Store.open(dir)
    const one = track(setup([mail], s))
    await one.q.start()
    const t = ticket('192.0.2.22', 2)
    await one.q.submit(t, refs('mail'))
    await until('the ban mail', () => mail.count('ban') === 1)
    await one.q.stop()
    await s.close()
    const mail2 = new Recorder('mail', {reapply: false})
    s = await Store.open(dir)
    const two = track(setup([mail2], s))
    await two.q.start()
    await until('the unban mail', () => mail2.count('unban') === 1)
    expect(mail2.ops.map((o) => o.op)).to.deep.equal(['unban'])
    expect(mail2.ops[0]!.at).to.be.at.least(t.time + 2)
    await two.q.stop()
    await s.close()
  })

  it('prepares a runner again with its first job when it could not start, and stops within its deadline', async () => {
    const fw = new Recorder('fw')
    fw.startFailures = 2
    const {q, lines} = track(setup([fw], Store.memory(), {backoff: {min: 0.05, max: 0.05}}))
    await q.start()
    expect(lines.some((l) => l.includes('ERROR action "fw": cannot start: chain missing (retried with its first job)'))).to.equal(true)
    await q.submit(ticket('192.0.2.23', 3600), refs('fw'))
    await until('the ban once the runner started', () => fw.count('ban') === 1)
    expect(fw.started).to.equal(1)
    expect(lines.some((l) => l.includes('failed to ban 192.0.2.23 (attempt 1, retrying in 50 ms): chain missing'))).to.equal(true)
    fw.hang = true
    await q.submit(ticket('192.0.2.24', 3600), refs('fw'))
    await until('the hanging job', () => q.metrics().running === 1)
    await q.stop(200)
    expect(lines.some((l) => l.includes('WARNING action queue: 1 job(s) still running at shutdown'))).to.equal(true)
    expect(fw.stopped).to.equal(1)
  })
})
