/**
 * The action queue: turns Tickets into ban and unban jobs, keeps them in the store before they
 * run, runs them through the ActionRunners, retries failures with back-off, and lifts bans when
 * their time is over.
 *
 * Model (lua-spylog's action service, made crash-safe):
 * - A ban is one record per (jail, offender). A second ticket for an offender already banned by
 *   the same jail EXTENDS the ban (its end moves later; no second ban job).
 * - Per action reference of the ticket, the action's duplicate key (`ActionRunner.unique`,
 *   default jail + id) names the work. A key has at most one ban job and one unban job. The
 *   unban job is due at the latest end of the active bans that hold the key (never, for a
 *   permanent ban: it stays stored with no due time, so a manual unban finds it). Two bans that
 *   share a key (a `unique` without `<JAIL>`) share one firewall entry: one ban job, one unban.
 * - The unban job is stored before its ban job, in the same append, so a stored ban job always
 *   has its partner and a crash between the two leaves the unban (which a restart turns into a
 *   re-applied ban).
 * - Actions that only notify (`reversible: false`: a ban-only ACTION{}, mail) get a ban job and
 *   no unban job, and are not re-run by a restart; runners with `reapply: false` (mail that
 *   also mails on unban) keep their unban job but are not re-run either.
 * - Jobs of one key never run at the same time, and an unban that falls due while the key's ban
 *   job is still waiting (failing and retrying) cancels that ban job; the unban then runs only
 *   when the ban may have been applied (it was attempted, or it was found on disk at start).
 * - A failed job is retried with exponential back-off (1 s doubling to 5 min by default) and
 *   logged once per attempt with the action's error; it is dropped when the action says retrying
 *   cannot help (`ActionError.retry === false`) or after `maxAttempts`.
 * - `start()` after a restart re-applies every active ban (one ban job per key that has a pending
 *   unban and no ban job: no unban-then-ban), runs overdue unbans at once and resumes the rest.
 * - One timer, armed for the earliest due job or ban end.
 *
 * Every ban and unban is logged with the stable line `NOTICE [jail] Ban <id>` / `[jail] Unban <id>`
 * (`[jail] Restore Ban <id>` on a restart) followed by an INFO line with the reason.
 */
import {randomUUID} from 'node:crypto'
import type {ParamValue} from '../config/model.js'
import {banMessage, type Logger} from '../log/logger.js'
import {backoffDelay} from '../sources/backoff.js'
import type {BanHistoryEntry, Store, StoredBan, StoredJob} from '../store/store.js'
import {quoteLine} from '../text.js'
import type {Ticket} from '../types.js'
import {ActionError, type ActionOp, type ActionRunner, type BanRequest} from './action.js'

/** One action of a ticket: the action (runner) name and the merged parameters. */
export interface ActionRef {
  readonly name: string
  readonly params: Readonly<Record<string, ParamValue>>
}

/** An active ban, for `spylog status`. */
export interface ActiveBan {
  readonly uuid: string
  readonly jail: string
  readonly id: string
  /** Ban start, Unix seconds. */
  readonly time: number
  /** Total ban time in seconds (grows with extensions); -1: permanent. */
  readonly bantime: number
  /** End, Unix seconds; null: never. */
  readonly until: number | null
  /** Seconds left; -1: permanent. */
  readonly left: number
  readonly actions: readonly string[]
  readonly manual: boolean
}

/** Queue counters (status, metrics). */
export interface QueueMetrics {
  /** Jobs stored and not done (due, waiting for their time, or retrying); permanent bans' unban jobs excluded. */
  queued: number
  running: number
  bans: number
  /** Failed attempts, per action. */
  failures: Record<string, number>
  /** Jobs done, per action. */
  done: Record<string, number>
}

export interface ActionQueueOptions {
  readonly store: Store
  readonly log: Logger
  /** Runners by action name. */
  readonly runners: ReadonlyMap<string, ActionRunner>
  /** Unix seconds (fraction allowed); default the system clock. */
  readonly clock?: () => number
  /** Jobs running at once (default 4). */
  readonly concurrency?: number
  /** Retry delays, seconds: first and cap (default 1 and 300). */
  readonly backoff?: {readonly min: number; readonly max: number}
  /** Attempts before a job is given up (default 50). */
  readonly maxAttempts?: number
}

interface RefState {
  readonly name: string
  readonly params: Readonly<Record<string, ParamValue>>
  readonly unique: string
}

interface Ban {
  readonly uuid: string
  readonly jail: string
  readonly id: string
  readonly time: number
  bantime: number
  until: number | null
  readonly ticket: Ticket
  readonly ticketJson: string
  refs: RefState[]
  gen: number
}

interface Job {
  readonly jid: string
  readonly op: ActionOp
  readonly action: string
  readonly unique: string
  due: number | null
  attempts: number
  readonly ticket: Ticket
  readonly ticketJson: string
  readonly params: Readonly<Record<string, ParamValue>>
  readonly paramsJson: string
  readonly restore: boolean
  readonly seq: number
  /** Found in the store at start: it may have run before the crash. */
  readonly fromDisk: boolean
  running: boolean
  gone: boolean
  gen: number
}

interface Entry {
  at: number
  seq: number
  kind: 'job' | 'end'
  key: string
  gen: number
}

/** A binary min-heap of due entries (stale entries are skipped when popped). */
class Heap {
  private readonly a: Entry[] = []
  get size(): number {
    return this.a.length
  }
  peek(): Entry | undefined {
    return this.a[0]
  }
  push(e: Entry): void {
    const a = this.a
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(a[i]!, a[p]!)) break
      ;[a[i], a[p]] = [a[p]!, a[i]!]
      i = p
    }
  }
  /** Keeps only the entries `keep` accepts (drops stale ones piled up by rescheduling). */
  rebuild(keep: (e: Entry) => boolean): void {
    const live = this.a.filter(keep)
    this.a.length = 0
    for (const e of live) this.push(e)
  }
  pop(): Entry | undefined {
    const a = this.a
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && less(a[l]!, a[m]!)) m = l
        if (r < a.length && less(a[r]!, a[m]!)) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m]!, a[i]!]
        i = m
      }
    }
    return top
  }
}

function less(x: Entry, y: Entry): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq)
}

const MAX_TIMER_MS = 60 * 60 * 1000
const REASON_LINES = 10
const REASON_LINE_CHARS = 200

/** The later of two ends (null: never). */
function laterEnd(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : Math.max(a, b)
}

function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e)
  return m.replace(/\s+/g, ' ').trim() || 'unknown error'
}

function fmtSeconds(s: number): string {
  if (s < 1) return `${Math.round(s * 1000)} ms`
  return s < 10 ? `${Math.round(s * 10) / 10} s` : `${Math.round(s)} s`
}

/** The persistent ban/unban job queue. */
export class ActionQueue {
  private readonly store: Store
  private readonly log: Logger
  private runners: ReadonlyMap<string, ActionRunner>
  private readonly clock: () => number
  private readonly concurrency: number
  private readonly backoff: {readonly min: number; readonly max: number}
  private readonly maxAttempts: number

  private readonly bans = new Map<string, Ban>()
  private readonly jobs = new Map<string, Job>()
  /** Pending or running ban job per action key. */
  private readonly banJob = new Map<string, Job>()
  /** Pending (not running) unban job per action key. */
  private readonly unbanJob = new Map<string, Job>()
  /** Active bans (by ban key) holding each action key. */
  private readonly holders = new Map<string, Set<string>>()
  /** Action keys with a running job; jobs found due meanwhile wait here. */
  private readonly busy = new Map<string, Job[]>()
  private readonly heap = new Heap()
  private readonly started = new Set<string>()
  private readonly failures: Record<string, number> = {}
  private readonly done: Record<string, number> = {}
  private running = 0
  private seq = 0
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  private chain: Promise<unknown> = Promise.resolve()
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  private idleWaiters: (() => void)[] = []
  private pumpQueued = false

  constructor(o: ActionQueueOptions) {
    this.store = o.store
    this.log = o.log
    this.runners = o.runners
    this.clock = o.clock ?? (() => Date.now() / 1000)
    this.concurrency = Math.max(1, o.concurrency ?? 4)
    this.backoff = o.backoff ?? {min: 1, max: 300}
    this.maxAttempts = o.maxAttempts ?? 50
  }

  // --- public ----------------------------------------------------------------------------------

  /**
   * Loads the stored bans and jobs, prepares the runners, re-applies active bans, and starts
   * running jobs (overdue unbans first). Call once, before `submit`.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('the action queue was already started')
    this.state = 'running'
    await this.locked(async () => {
      const now = this.clock()
      for (const sb of await this.store.loadBans()) {
        const ban = this.banFromStore(sb)
        if (ban === undefined) continue
        const other = this.bans.get(banKey(ban.jail, ban.id))
        if (other !== undefined) {
          // one active ban per (jail, offender): keep the one ending later
          const drop = laterEnd(other.until, ban.until) === other.until ? ban : other
          await this.store.deleteBan(drop.uuid)
          if (drop === ban) continue
        }
        this.bans.set(banKey(ban.jail, ban.id), ban)
        for (const r of ban.refs) this.hold(akey(r.name, r.unique), banKey(ban.jail, ban.id))
      }
      const unknown = new Map<string, number>()
      for (const sj of await this.store.loadJobs()) {
        const job = this.jobFromStore(sj)
        if (job === undefined) continue
        this.seq = Math.max(this.seq, job.seq + 1)
        this.jobs.set(job.jid, job)
        const k = akey(job.action, job.unique)
        if (job.op === 'ban') this.banJob.set(k, job)
        else {
          const other = this.unbanJob.get(k)
          if (other !== undefined) {
            // two unban jobs for one key (cannot happen through this queue): keep the later
            const [keep, drop] = laterEnd(other.due, job.due) === other.due ? [other, job] : [job, other]
            this.unbanJob.set(k, keep)
            this.jobs.delete(drop.jid)
            drop.gone = true
            await this.store.deleteJob(drop.jid)
          } else this.unbanJob.set(k, job)
        }
        if (!this.runners.has(job.action)) unknown.set(job.action, (unknown.get(job.action) ?? 0) + 1)
      }
      for (const [name, n] of unknown) {
        this.log.warning(`action queue: ${n} stored job(s) of action "${name}", which is not configured: kept until it is configured again`)
      }

      // A crash between the writes of one step (ban record, then jobs) leaves them out of step:
      // an active ban without its unban job gets one (and is re-applied below); an unban job is
      // due at the latest end of the bans holding its key, or now when none holds it any more.
      const heal: Job[] = []
      for (const ban of this.bans.values()) {
        for (const r of ban.refs) {
          const k = akey(r.name, r.unique)
          const runner = this.runners.get(r.name)
          if (runner === undefined || runner.reversible === false || this.unbanJob.has(k)) continue
          const end = this.holdersEnd(k)
          if (end === undefined || (end !== null && end <= now)) continue // over, and its jobs never stored: nothing was applied
          const job = this.newJob('unban', r.name, r.unique, end, ban.ticket, ban.ticketJson, r.params, JSON.stringify(r.params), false)
          heal.push(job)
          this.register(job)
        }
      }
      if (heal.length > 0) await this.store.addJobs(heal.map(toStored))
      for (const [k, u] of this.unbanJob) {
        const end = this.holdersEnd(k)
        const want = end === undefined ? Math.min(u.due ?? now, now) : end
        if (want === u.due) continue
        u.due = want
        await this.store.putJob(toStored(u))
      }

      // a ban job whose unban is already overdue: skip the ban, the unban runs at once
      for (const [k, bj] of this.banJob) {
        const u = this.unbanJob.get(k)
        if (u !== undefined && u.due !== null && u.due <= now) await this.dropJob(bj)
      }

      // re-apply active bans: a ban job for every key with a pending unban and no ban job
      const restores: Job[] = []
      for (const [k, u] of this.unbanJob) {
        if ((u.due !== null && u.due <= now) || this.banJob.has(k)) continue
        const runner = this.runners.get(u.action)
        if (runner === undefined || runner.reversible === false || runner.reapply === false) continue
        const job = this.newJob('ban', u.action, u.unique, now, u.ticket, u.ticketJson, u.params, u.paramsJson, true)
        restores.push(job)
      }
      if (restores.length > 0) await this.store.addJobs(restores.map(toStored))
      for (const j of restores) this.register(j)
      for (const ban of this.bans.values()) {
        if (ban.until === null || ban.until > now) {
          this.log.notice(banMessage('Restore Ban', ban.jail, ban.id))
          this.log.info(`[${ban.jail}] ${ban.id}: re-applied after a restart, ${ban.until === null ? 'permanent' : `${fmtSeconds(ban.until - now)} left`}`)
        }
      }

      for (const j of this.jobs.values()) if (j.due !== null && this.runners.has(j.action)) this.schedule(j)
      for (const ban of this.bans.values()) this.scheduleEnd(ban)
    })
    for (const [name, r] of this.runners) await this.ensureStarted(name, r)
    this.pump()
  }

  /**
   * Bans (or extends the ban of) the ticket's offender with the given actions. Resolves once the
   * ban and its jobs are stored; the ban job then runs as soon as a slot is free.
   */
  async submit(ticket: Ticket, refs: readonly ActionRef[]): Promise<void> {
    if (this.state !== 'running') throw new Error(this.state === 'new' ? 'the action queue is not started' : 'the action queue is stopped')
    await this.locked(async () => {
      const bk = banKey(ticket.jail, ticket.id)
      const until = ticket.bantime < 0 ? null : ticket.time + ticket.bantime
      const states: RefState[] = []
      for (const r of refs) {
        const runner = this.runners.get(r.name)
        if (runner === undefined) {
          this.log.error(`[${ticket.jail}] action "${r.name}" is not configured: ${ticket.id} is not banned by it`)
          continue
        }
        let unique: string
        try {
          unique = runner.unique('ban', {ticket, params: r.params})
        } catch (e) {
          this.log.error(`[${ticket.jail}] action "${r.name}": ${errorText(e)}`)
          continue
        }
        states.push({name: r.name, params: r.params, unique})
      }

      const existing = this.bans.get(bk)
      if (existing !== undefined) {
        const end = laterEnd(existing.until, until)
        const fresh = states.filter((s) => !existing.refs.some((x) => x.name === s.name && x.unique === s.unique))
        if (end === existing.until && fresh.length === 0) {
          this.log.notice(`[${ticket.jail}] ${ticket.id} already banned`)
          return
        }
        existing.until = end
        existing.bantime = end === null ? -1 : end - existing.time
        existing.refs = [...existing.refs, ...fresh]
        existing.gen++
        await this.store.putBan(toStoredBan(existing))
        for (const s of fresh) this.hold(akey(s.name, s.unique), bk)
        await this.addWork(fresh, ticket, JSON.stringify(ticket), until)
        for (const r of existing.refs) await this.refreshUnban(akey(r.name, r.unique))
        this.scheduleEnd(existing)
        this.log.notice(`[${ticket.jail}] ${ticket.id} already banned`)
        this.log.info(`[${ticket.jail}] ${ticket.id}: ban extended, ${end === null ? 'now permanent' : `until ${new Date(end * 1000).toISOString()}`}`)
        return
      }

      const ticketJson = JSON.stringify(ticket)
      const ban: Ban = {uuid: ticket.uuid, jail: ticket.jail, id: ticket.id, time: ticket.time, bantime: ticket.bantime, until, ticket, ticketJson, refs: states, gen: 0}
      await this.store.putBan(toStoredBan(ban))
      await this.store.addHistory({id: ticket.id, jail: ticket.jail, time: ticket.time, bantime: ticket.bantime})
      this.bans.set(bk, ban)
      for (const s of states) this.hold(akey(s.name, s.unique), bk)
      await this.addWork(states, ticket, ticketJson, until)
      this.scheduleEnd(ban)
      this.log.notice(banMessage('Ban', ticket.jail, ticket.id))
      this.log.info(banReason(ticket))
    })
    this.pump()
  }

  /**
   * Lifts bans now (`spylog unban`): the bans of offender `id` (in `jail` only, when given), or
   * every ban (`{all: true}`). Their unban jobs are queued like the others. Resolves with the
   * number of bans lifted.
   */
  async unban(id: string | {readonly all: true}, jail?: string): Promise<number> {
    const n = await this.locked(async () => {
      const now = this.clock()
      const targets = [...this.bans.values()].filter((b) => (typeof id !== 'string' || b.id === id) && (jail === undefined || b.jail === jail))
      for (const b of targets) {
        await this.endBan(b, now, 'unbanned by request')
      }
      return targets.length
    })
    this.pump()
    return n
  }

  /** The ticket of an active ban (by its uuid), for status and `spylog banned`. */
  ticketOf(uuid: string): Ticket | undefined {
    for (const b of this.bans.values()) if (b.uuid === uuid) return b.ticket
    return undefined
  }

  /**
   * Replaces the runners (configuration reload): runners that are new or replaced are started,
   * the ones they replace are stopped. Stored jobs of an action that is no longer configured wait
   * until an action of that name exists again.
   */
  async setRunners(runners: ReadonlyMap<string, ActionRunner>): Promise<void> {
    const old = this.runners
    this.runners = runners
    for (const [name, r] of runners) {
      if (old.get(name) === r) continue
      this.started.delete(name)
      await this.ensureStarted(name, r)
    }
    for (const [name, r] of old) {
      if (runners.get(name) === r) continue
      try {
        await r.stop?.()
      } catch (e) {
        this.log.error(`action ${name}: ${errorText(e)}`)
      }
    }
    await this.locked(async () => {
      for (const j of this.jobs.values()) if (j.due !== null && this.runners.has(j.action)) this.schedule(j)
    })
    this.pump()
  }

  /** Active bans, earliest end first (permanent last). */
  active(): ActiveBan[] {
    const now = this.clock()
    const out = [...this.bans.values()].map((b) => ({
      uuid: b.uuid, jail: b.jail, id: b.id, time: b.time, bantime: b.bantime, until: b.until,
      left: b.until === null ? -1 : Math.max(0, b.until - now),
      actions: b.refs.map((r) => r.name), manual: b.ticket.manual === true,
    }))
    return out.sort((x, y) => (x.until ?? Infinity) - (y.until ?? Infinity))
  }

  metrics(): QueueMetrics {
    let queued = 0
    for (const j of this.jobs.values()) if (j.due !== null) queued++
    return {queued, running: this.running, bans: this.bans.size, failures: {...this.failures}, done: {...this.done}}
  }

  /** Past bans from the store (for growing ban times). */
  async loadHistory(since?: number): Promise<BanHistoryEntry[]> {
    return this.store.loadHistory(since)
  }

  /**
   * Stops taking jobs, waits for the running ones (at most `deadlineMs`), and stops the runners.
   * Stored jobs stay for the next start. Idempotent.
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return
    const wasRunning = this.state === 'running'
    this.state = 'stopping'
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.running > 0) {
      let t: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => (t = setTimeout(r, deadlineMs))),
      ])
      if (t !== undefined) clearTimeout(t)
      if (this.running > 0) this.log.warning(`action queue: ${this.running} job(s) still running at shutdown; they run again at the next start`)
    }
    await this.locked(async () => undefined)
    if (wasRunning) {
      for (const [name, r] of this.runners) {
        if (!this.started.has(name) || r.stop === undefined) continue
        try {
          await r.stop()
        } catch (e) {
          this.log.error(`action "${name}": stop failed: ${errorText(e)}`)
        }
      }
    }
    this.state = 'stopped'
  }

  /** Resolves when no job is due now or running (tests, `--dry-run` replays). */
  async idle(): Promise<void> {
    for (;;) {
      await this.locked(async () => undefined)
      const now = this.clock()
      const top = this.peekLive()
      if (this.running === 0 && (top === undefined || top.at > now)) return
      await new Promise<void>((r) => this.idleWaiters.push(r))
    }
  }

  // --- work ------------------------------------------------------------------------------------

  /** Creates the jobs of `refs` for a new (or extended) ban; must run under the lock. */
  private async addWork(refs: readonly RefState[], ticket: Ticket, ticketJson: string, until: number | null): Promise<void> {
    const now = this.clock()
    const created: Job[] = []
    for (const r of refs) {
      const k = akey(r.name, r.unique)
      const runner = this.runners.get(r.name)!
      const paramsJson = JSON.stringify(r.params)
      if (runner.reversible !== false) {
        if (this.unbanJob.has(k)) continue // applied (or being applied) for another ban holding the key: refreshUnban moves it
        const end = this.holdersEnd(k)
        created.push(this.newJob('unban', r.name, r.unique, end === undefined ? until : end, ticket, ticketJson, r.params, paramsJson, false))
      }
      if (!this.banJob.has(k)) created.push(this.newJob('ban', r.name, r.unique, now, ticket, ticketJson, r.params, paramsJson, false))
    }
    if (created.length === 0) return
    // unban jobs first: a stored ban job always has its partner
    created.sort((a, b) => (a.op === b.op ? a.seq - b.seq : a.op === 'unban' ? -1 : 1))
    await this.store.addJobs(created.map(toStored))
    for (const j of created) this.register(j)
  }

  private newJob(op: ActionOp, action: string, unique: string, due: number | null, ticket: Ticket, ticketJson: string, params: Readonly<Record<string, ParamValue>>, paramsJson: string, restore: boolean): Job {
    return {jid: randomUUID(), op, action, unique, due, attempts: 0, ticket, ticketJson, params, paramsJson, restore, seq: this.seq++, fromDisk: false, running: false, gone: false, gen: 0}
  }

  private register(j: Job): void {
    this.jobs.set(j.jid, j)
    const k = akey(j.action, j.unique)
    if (j.op === 'ban') this.banJob.set(k, j)
    else this.unbanJob.set(k, j)
    if (j.due !== null) this.schedule(j)
  }

  private hold(k: string, bk: string): void {
    let s = this.holders.get(k)
    if (s === undefined) this.holders.set(k, (s = new Set()))
    s.add(bk)
  }

  /** The latest end of the active bans holding key `k` (null: one is permanent; undefined: none). */
  private holdersEnd(k: string): number | null | undefined {
    const s = this.holders.get(k)
    if (s === undefined || s.size === 0) return undefined
    let end: number | null = -Infinity
    for (const bk of s) {
      const b = this.bans.get(bk)
      if (b === undefined) continue
      end = laterEnd(end, b.until)
      if (end === null) return null
    }
    return end === -Infinity ? undefined : end
  }

  /** Moves the pending unban job of key `k` to the latest end of its holders (now when none is left). */
  private async refreshUnban(k: string): Promise<void> {
    const u = this.unbanJob.get(k)
    if (u === undefined) return
    const end = this.holdersEnd(k)
    const due = end === undefined ? this.clock() : end
    if (due === u.due) return
    u.due = due
    u.gen++
    await this.store.putJob(toStored(u))
    if (due !== null) this.schedule(u)
  }

  /** Ends a ban (time over or manual); must run under the lock. */
  private async endBan(b: Ban, now: number, reason: string): Promise<void> {
    const bk = banKey(b.jail, b.id)
    this.bans.delete(bk)
    b.gen++
    await this.store.deleteBan(b.uuid)
    for (const r of b.refs) {
      const k = akey(r.name, r.unique)
      this.holders.get(k)?.delete(bk)
      if (this.holders.get(k)?.size === 0) this.holders.delete(k)
      await this.refreshUnban(k)
    }
    this.log.notice(banMessage('Unban', b.jail, b.id))
    const held = b.until === null ? 'permanent ban' : `banned ${fmtSeconds(Math.max(0, Math.min(now, b.until) - b.time))}`
    this.log.info(`[${b.jail}] ${b.id}: ${reason} (${held})`)
  }

  private async dropJob(j: Job): Promise<void> {
    j.gone = true
    this.jobs.delete(j.jid)
    const k = akey(j.action, j.unique)
    if (j.op === 'ban' && this.banJob.get(k) === j) this.banJob.delete(k)
    if (j.op === 'unban' && this.unbanJob.get(k) === j) this.unbanJob.delete(k)
    await this.store.deleteJob(j.jid)
  }

  // --- scheduling ------------------------------------------------------------------------------

  private schedule(j: Job): void {
    if (j.due === null) return
    this.trimHeap()
    j.gen++
    this.heap.push({at: j.due, seq: j.seq, kind: 'job', key: j.jid, gen: j.gen})
    this.arm()
  }

  /** Rebuilds the heap when stale entries (from extensions and retries) outnumber the live ones. */
  private trimHeap(): void {
    if (this.heap.size > 1024 && this.heap.size > 4 * (this.jobs.size + this.bans.size)) this.heap.rebuild((e) => this.live(e))
  }

  private scheduleEnd(b: Ban): void {
    if (b.until === null) return
    this.trimHeap()
    this.heap.push({at: b.until, seq: -1, kind: 'end', key: banKey(b.jail, b.id), gen: b.gen})
    this.arm()
  }

  private live(e: Entry): boolean {
    if (e.kind === 'end') {
      const b = this.bans.get(e.key)
      return b !== undefined && b.gen === e.gen
    }
    const j = this.jobs.get(e.key)
    return j !== undefined && !j.gone && j.gen === e.gen && !j.running
  }

  private peekLive(): Entry | undefined {
    for (;;) {
      const top = this.heap.peek()
      if (top === undefined || this.live(top)) return top
      this.heap.pop()
    }
  }

  private arm(): void {
    if (this.state !== 'running') return
    const top = this.peekLive()
    if (top === undefined) return
    // all slots taken by due jobs: the next job to finish pumps again
    if (top.kind === 'job' && top.at <= this.clock() && this.running >= this.concurrency) return
    if (top.at >= this.timerAt && this.timer !== undefined) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, (top.at - this.clock()) * 1000))
    this.timerAt = top.at
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      this.pump()
    }, Math.ceil(ms))
    this.timer.unref?.()
  }

  /** Starts every due job a slot is free for, ends due bans, and re-arms the timer (under the lock). */
  private pump(): void {
    if (this.state !== 'running' || this.pumpQueued) return
    this.pumpQueued = true
    void this.locked(async () => {
      this.pumpQueued = false
      await this.pumpLocked()
    }).catch((e) => {
      this.log.error(`action queue: cannot store job state: ${errorText(e)}`)
      this.arm()
    })
  }

  private async pumpLocked(): Promise<void> {
    if (this.state !== 'running') return
    const now = this.clock()
    for (;;) {
      const top = this.peekLive()
      if (top === undefined || top.at > now) break
      if (top.kind === 'job' && this.running >= this.concurrency) break
      this.heap.pop()
      if (top.kind === 'end') {
        await this.endBan(this.bans.get(top.key)!, now, 'ban time over')
        continue
      }
      const j = this.jobs.get(top.key)!
      const k = akey(j.action, j.unique)
      const waiting = this.busy.get(k)
      if (waiting !== undefined) {
        waiting.push(j)
        continue
      }
      if (j.op === 'unban') {
        // a running unban no longer holds the key: a ban arriving now queues its own jobs
        if (this.unbanJob.get(k) === j) this.unbanJob.delete(k)
        // the key's ban job has not succeeded yet: cancel it; nothing to undo if it never ran
        const bj = this.banJob.get(k)
        if (bj !== undefined && !bj.running) {
          const mayHaveRun = bj.attempts > 0 || bj.fromDisk || bj.restore // a re-applied ban was applied before the restart
          await this.dropJob(bj)
          if (!mayHaveRun) {
            await this.dropJob(j)
            continue
          }
        }
      }
      this.busy.set(k, [])
      this.running++
      j.running = true
      void this.execute(j, k)
    }
    if (this.running === 0) this.notifyIdle()
    this.arm()
  }

  private notifyIdle(): void {
    const w = this.idleWaiters.splice(0)
    for (const r of w) r()
  }

  /** Runs one job (outside the lock) and records the outcome (under it). */
  private async execute(j: Job, k: string): Promise<void> {
    const runner = this.runners.get(j.action)
    let error: unknown
    if (runner === undefined) error = new ActionError(`action "${j.action}" is not configured`)
    else {
      try {
        await this.ensureStarted(j.action, runner, true)
        await runner.run(j.op, {ticket: j.ticket, params: j.params} satisfies BanRequest)
      } catch (e) {
        error = e ?? new Error('failed')
      }
    }
    await this.locked(async () => {
      try {
        await this.finish(j, k, error)
      } catch (e) {
        this.log.error(`action queue: cannot store job state: ${errorText(e)}`)
      } finally {
        j.running = false
        this.running--
        if (!j.gone && j.due !== null) this.schedule(j)
        const waiting = this.busy.get(k) ?? []
        this.busy.delete(k)
        for (const w of waiting) if (!w.gone && !w.running && w.due !== null) this.schedule(w)
        if (this.running === 0) this.notifyIdle()
      }
    })
    this.pump()
  }

  private async finish(j: Job, k: string, error: unknown): Promise<void> {
    if (error === undefined) {
      this.done[j.action] = (this.done[j.action] ?? 0) + 1
      await this.dropJob(j)
      if (this.log.enabled('debug')) this.log.debug(`[${j.ticket.jail}] action "${j.action}": ${j.restore ? 're-' : ''}${j.op} ${j.ticket.id} done`)
      return
    }
    this.failures[j.action] = (this.failures[j.action] ?? 0) + 1
    j.attempts++
    const what = `[${j.ticket.jail}] action "${j.action}" failed to ${j.op} ${j.ticket.id}`
    const noRetry = error instanceof ActionError && !error.retry
    if (noRetry || j.attempts >= this.maxAttempts || (j.op === 'unban' && this.unbanJob.has(k))) {
      const why = noRetry ? 'not retried' : j.attempts >= this.maxAttempts ? `giving up after ${j.attempts} attempts` : 'superseded by a new ban'
      this.log.error(`${what} (${why}): ${errorText(error)}`)
      await this.dropJob(j)
      return
    }
    const delay = backoffDelay(this.backoff.min, this.backoff.max, j.attempts - 1)
    this.log.error(`${what} (attempt ${j.attempts}, retrying in ${fmtSeconds(delay)}): ${errorText(error)}`)
    j.due = this.clock() + delay
    if (j.op === 'unban') this.unbanJob.set(k, j)
    await this.store.putJob(toStored(j))
  }

  private async ensureStarted(name: string, r: ActionRunner, rethrow = false): Promise<void> {
    if (this.started.has(name)) return
    if (r.start !== undefined) {
      try {
        await r.start()
      } catch (e) {
        if (rethrow) throw e
        this.log.error(`action "${name}": cannot start: ${errorText(e)} (retried with its first job)`)
        return
      }
    }
    this.started.add(name)
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn)
    this.chain = p.then(
      () => undefined,
      () => undefined,
    )
    return p
  }

  // --- store mapping ---------------------------------------------------------------------------

  private banFromStore(s: StoredBan): Ban | undefined {
    try {
      const ticket = JSON.parse(s.ticket) as Ticket
      const refs = JSON.parse(s.refs) as RefState[]
      return {uuid: s.uuid, jail: s.jail, id: s.id, time: s.time, bantime: s.bantime, until: s.until, ticket, ticketJson: s.ticket, refs, gen: 0}
    } catch (e) {
      this.log.error(`action queue: stored ban ${s.uuid} is unreadable and skipped: ${errorText(e)}`)
      return undefined
    }
  }

  private jobFromStore(s: StoredJob): Job | undefined {
    try {
      const ticket = JSON.parse(s.ticket) as Ticket
      const params = JSON.parse(s.params) as Record<string, ParamValue>
      return {
        jid: s.jid, op: s.op, action: s.action, unique: s.unique, due: s.due, attempts: s.attempts, ticket, ticketJson: s.ticket,
        params, paramsJson: s.params, restore: s.restore === true, seq: s.seq, fromDisk: true, running: false, gone: false, gen: 0,
      }
    } catch (e) {
      this.log.error(`action queue: stored job ${s.jid} is unreadable and skipped: ${errorText(e)}`)
      return undefined
    }
  }
}

function banKey(jail: string, id: string): string {
  return `${jail}\u0000${id}`
}

function akey(action: string, unique: string): string {
  return `${action}\u0000${unique}`
}

function toStored(j: Job): StoredJob {
  const s: StoredJob = {jid: j.jid, op: j.op, action: j.action, unique: j.unique, due: j.due, attempts: j.attempts, ticket: j.ticketJson, params: j.paramsJson, seq: j.seq}
  return j.restore ? {...s, restore: true} : s
}

function toStoredBan(b: Ban): StoredBan {
  return {uuid: b.uuid, jail: b.jail, id: b.id, time: b.time, bantime: b.bantime, until: b.until, ticket: b.ticketJson, refs: JSON.stringify(b.refs)}
}

/**
 * The INFO line after `[jail] Ban id`: filter, failure count, ban time and the failure lines
 * (each truncated and quoted, so the line never spans lines nor ends in a forged `Ban <id>`).
 */
export function banReason(t: Ticket): string {
  const dur = t.bantime < 0 ? 'permanently' : `for ${fmtSeconds(t.bantime)}`
  if (t.manual === true) return `[${t.jail}] ${t.id}: banned ${dur} by request`
  const n = t.failures.length
  const lines: string[] = []
  for (const f of t.failures.slice(-REASON_LINES)) for (const l of f.lines) if (lines.length < REASON_LINES) lines.push(quoteLine(l, REASON_LINE_CHARS))
  const more = n > REASON_LINES ? ` (last ${REASON_LINES} shown)` : ''
  const prior = t.banCount > 0 ? `, ${t.banCount} earlier ban${t.banCount === 1 ? '' : 's'}` : ''
  return `[${t.jail}] ${t.id}: banned ${dur}, filter ${t.filter}, ${n} failure${n === 1 ? '' : 's'}${prior}${more}${lines.length > 0 ? ': ' + lines.join(' | ') : ''}`
}
