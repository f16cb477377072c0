/**
 * The daemon: sources → filters → jails → actions, built from one validated configuration.
 *
 * - Sources (src/engine/sources) deliver LogRecords; only the sources some running filter reads
 *   are started. A source that fails to start is reported (state, lastError) and retried by
 *   itself; the others run on.
 * - Filters run in a worker thread under a watchdog (filters/host.ts); their failures come back
 *   here and go to every jail that reads the filter.
 * - Jails (src/engine/jails) count per offender and decide; each ticket passes the jail's
 *   never-ban check (`admit`) and goes to the persistent action queue.
 * - The action queue (src/engine/actions/queue.ts) stores the ban and its jobs before running
 *   them, re-applies active bans at start and lifts every ban on time.
 * - The Engine is also the control channel's target (status, ban, unban, reload, stop).
 *
 * Reload keeps what did not change: jails whose configuration is the same keep their counters,
 * sources whose configuration is the same keep running (and their positions), bans stay.
 */
import {randomUUID} from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import type {ActionFactory, ActionRunner} from '../actions/action.js'
import {BUILTIN_ACTIONS, firewallAction} from '../actions/builtin/index.js'
import {createActionRunner} from '../actions/factory.js'
import {ActionQueue, type ActionRef} from '../actions/queue.js'
import {createWindowsFirewallAction} from '../actions/windows/firewall.js'
import type {JailConfig, ParamValue, SourceConfig, SpylogConfig} from '../config/model.js'
import {
  banDetail, banInfo, ControlError, sourceStatus,
  type BannedResult, type BanResult, type ControlTarget, type JailStatus, type MetricsSnapshot, type PingResult,
  type ReloadResult, type SourceStatus, type StatusResult, type UnbanResult,
} from '../control/protocol.js'
import {FilterHost} from '../filters/host.js'
import {MATCH_SECONDS_BUCKETS} from '../filters/service.js'
import {MemoryBanHistory} from '../jails/history.js'
import {NeverBan} from '../jails/ignore.js'
import {Jail} from '../jails/jail.js'
import {VERSION} from '../fsutil.js'
import type {Logger} from '../log/logger.js'
import {canonicalAddress} from '../net/address.js'
import {createSource} from '../sources/index.js'
import {openLink, type Link} from './link.js'
import type {Source, SourceContext} from '../sources/source.js'
import {Store} from '../store/store.js'
import type {Failure, Ticket} from '../types.js'

export interface EngineOptions {
  readonly log: Logger
  /** Where the store (bans, jobs, history, positions) lives; undefined: memory only (dry run). */
  readonly dataDir: string | undefined
  /** Run everything but the actions: each ban and unban is logged as what would run. */
  readonly dryRun?: boolean
  /** File sources read existing content from the start. */
  readonly fromStart?: boolean
  readonly platform?: NodeJS.Platform
  /** Re-reads the configuration for `reload` (throws ConfigErrors). */
  readonly loadConfig?: () => SpylogConfig
  /** Filter watchdog, ms. */
  readonly watchdogMs?: number
  /** Records waiting for the filters beyond which network records are dropped (default 100,000; files wait instead). */
  readonly filterQueue?: number
  /** Builds a source (tests pass stand-ins for platform sources); default createSource. */
  readonly sourceFactory?: (cfg: SourceConfig, ctx: SourceContext, selectors: SpylogConfig['filters']) => Source
  /** Extra or replacing built-in action factories (by kind). */
  readonly actionFactories?: Readonly<Record<string, ActionFactory>>
  /** Clock, Unix seconds. */
  readonly clock?: () => number
  /**
   * Run one service only, joined to the others by the local transport (link.ts) at the
   * configuration's CONNECT{} endpoints, else at sockets in the data directory: the filter
   * service sends failures to the jail service, which sends tickets to the action service.
   */
  readonly only?: ServiceRole
}

export type ServiceRole = 'filter' | 'jail' | 'action'
export const SERVICE_ROLES: readonly ServiceRole[] = ['filter', 'jail', 'action']

interface JailEntry {
  readonly cfg: JailConfig
  /** JSON of the configuration without origins: equal means unchanged on reload. */
  readonly key: string
  readonly jail: Jail
  readonly neverBan: NeverBan
  totalBanned: number
}

interface SourceEntry {
  readonly cfg: SourceConfig
  readonly key: string
  readonly source: Source
}

/** JSON of a configuration object without `origin`/`fieldOrigins` (they move when a file is edited above them). */
/** The built-in action factories of the daemon: the firewall is Windows Defender Firewall on win32. */
export function daemonActionFactories(): Record<string, ActionFactory> {
  return {...BUILTIN_ACTIONS, firewall: firewallAction({win32: createWindowsFirewallAction}), 'windows-firewall': createWindowsFirewallAction}
}

/** Days of ban history kept (for bantime.increment and `spylog banned`). */
const HISTORY_DAYS = 90

function configKey(x: unknown): string {
  return JSON.stringify(x, (k, v: unknown) => (k === 'origin' || k === 'fieldOrigins' ? undefined : v))
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message
  return String(e)
}

export class Engine implements ControlTarget {
  readonly started = Date.now() / 1000
  private config!: SpylogConfig
  private store!: Store
  private readonly history = new MemoryBanHistory()
  private globalNeverBan!: NeverBan
  private readonly jails = new Map<string, JailEntry>()
  private jailsByFilter = new Map<string, JailEntry[]>()
  private readonly sources = new Map<string, SourceEntry>()
  private filters: FilterHost | undefined
  /** Undefined in a process that runs only the filter or jail service. */
  private queue: ActionQueue | undefined
  private readonly links: Link[] = []
  /** The jail → action link (jail service process). */
  private ticketLink: Link | undefined
  private runners = new Map<string, ActionRunner>()
  /** configKey of the action each runner was built from (unchanged actions keep their runner on reload). */
  private runnerKeys = new Map<string, string>()
  private nextRunnerKeys = new Map<string, string>()
  private purgeTimer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined
  private readonly clock: () => number
  private readonly stopWaiters: Array<() => void> = []
  /** Tickets admitted but not yet queued (for `idle`). */
  private pendingTickets = 0

  private constructor(private readonly opts: EngineOptions) {
    this.clock = opts.clock ?? (() => Date.now() / 1000)
  }

  /** Builds and starts the daemon. Rejects with a clear message for a start-up problem (config, data directory). */
  static async start(config: SpylogConfig, opts: EngineOptions): Promise<Engine> {
    const e = new Engine(opts)
    e.config = config
    const role = opts.only
    const runs = (r: ServiceRole): boolean => role === undefined || role === r
    // Each service process has its own store (and lock) under the data directory.
    const storeDir = opts.dataDir === undefined ? undefined : role === undefined ? opts.dataDir : path.join(opts.dataDir, role)
    e.store = storeDir === undefined || opts.dryRun === true ? Store.memory() : await Store.open(storeDir)
    try {
      for (const h of await e.store.loadHistory()) e.history.add(h)
      e.globalNeverBan = new NeverBan({whiteIp: config.whiteIp, log: opts.log})
      await e.globalNeverBan.start()
      if (runs('action')) {
        e.runners = e.buildRunners(config)
        e.runnerKeys = e.nextRunnerKeys
        e.queue = new ActionQueue({store: e.store, log: opts.log, runners: e.runners, clock: e.clock})
        await e.queue.start()
      }
      if (runs('jail')) await e.buildJails(config)
      if (role !== undefined) await e.openLinks(config, role)
      if (runs('filter')) {
        e.filters = await FilterHost.start(config.filters, (f) => (role === 'filter' ? e.links[0]!.send({t: 'failure', f}) : e.onFailure(f)), {log: opts.log, only: e.filterNames(config), watchdogMs: opts.watchdogMs, maxQueue: opts.filterQueue})
        await e.startSources(config)
      }
    } catch (err) {
      await e.shutdown().catch(() => {})
      throw err
    }
    const purgeEvery = Math.max(60, config.jail.purgeInterval ?? 900) * 1000
    e.purgeTimer = setInterval(() => e.purge(), purgeEvery)
    e.purgeTimer.unref()
    const what = role === undefined ? `${e.sources.size} sources, ${e.jails.size} jails` : role === 'filter' ? `the filter service: ${e.sources.size} sources` : role === 'jail' ? `the jail service: ${e.jails.size} jails` : `the action service: ${e.runners.size} actions`
    opts.log.notice(`spylog ${VERSION} started: ${what}${opts.dryRun === true ? ' (dry run: no action runs)' : ''}`)
    return e
  }

  /** Idle counters, and ban history older than HISTORY_DAYS (growing ban times look back that far). */
  private purge(): void {
    for (const j of this.jails.values()) j.jail.purge()
    const now = this.clock()
    this.history.prune(now, HISTORY_DAYS * 86400)
    this.store.pruneHistory(now - HISTORY_DAYS * 86400).catch((e: unknown) => this.opts.log.error(`cannot prune the ban history: ${errorText(e)}`))
  }

  // --- building ------------------------------------------------------------------------------

  private actionFactories(): Record<string, ActionFactory> {
    return {...daemonActionFactories(), ...this.opts.actionFactories}
  }

  private buildRunners(config: SpylogConfig): Map<string, ActionRunner> {
    const used = new Set(config.jails.filter((j) => j.enabled).flatMap((j) => j.actions.map((a) => a.name)))
    const ctx = {
      log: this.opts.log,
      dryRun: this.opts.dryRun,
      platform: this.opts.platform,
      neverBan: (id: string) => this.globalNeverBan.reason(id) !== undefined,
      dataDir: this.opts.dataDir,
    }
    const factories = this.actionFactories()
    const out = new Map<string, ActionRunner>()
    const keys = new Map<string, string>()
    for (const a of config.actions) {
      // Actions no jail uses are not built (a mail action with a placeholder server costs nothing).
      if (!used.has(a.name) && ![...used].some((u) => u.includes('%{'))) continue
      const key = configKey(a)
      const old = this.runners.get(a.name)
      out.set(a.name, old !== undefined && this.runnerKeys.get(a.name) === key ? old : createActionRunner(a, ctx, factories))
      keys.set(a.name, key)
    }
    this.nextRunnerKeys = keys
    return out
  }

  private async buildJails(config: SpylogConfig, keep?: Map<string, JailEntry>): Promise<void> {
    this.jails.clear()
    for (const cfg of config.jails) {
      if (!cfg.enabled) continue
      const key = configKey(cfg)
      const old = keep?.get(cfg.name)
      if (old !== undefined && old.key === key) {
        this.jails.set(cfg.name, old)
        keep!.delete(cfg.name)
        continue
      }
      const neverBan = NeverBan.forJail(cfg, config.whiteIp, this.opts.log)
      await neverBan.start()
      const jail = new Jail(cfg, {log: this.opts.log, history: this.history, neverBan, globals: config.jail.parameters, clock: this.clock})
      this.jails.set(cfg.name, {cfg, key, jail, neverBan, totalBanned: old?.totalBanned ?? 0})
    }
    if (keep !== undefined) for (const old of keep.values()) old.neverBan.stop()
    const byFilter = new Map<string, JailEntry[]>()
    for (const j of this.jails.values()) {
      for (const f of j.cfg.filters) {
        let list = byFilter.get(f)
        if (list === undefined) byFilter.set(f, (list = []))
        list.push(j)
      }
    }
    this.jailsByFilter = byFilter
  }

  /** The filters some enabled jail reads. */
  private filterNames(config: SpylogConfig): Set<string> {
    return new Set(config.jails.filter((j) => j.enabled).flatMap((j) => j.filters))
  }

  /** The links of a service process (see EngineOptions.only). */
  private async openLinks(config: SpylogConfig, role: ServiceRole): Promise<void> {
    const dir = this.opts.dataDir ?? path.join(os.tmpdir(), 'spylog')
    const fj = `ipc://${path.join(dir, 'filter-jail.sock')}`
    const ja = `ipc://${path.join(dir, 'jail-action.sock')}`
    const c = config.connect
    const log = this.opts.log
    const open = (ep: {type: 'bind' | 'connect'; address: string}, on: (m: unknown) => void, what: string): Promise<Link> => openLink(ep, on, log, what, this.opts.platform)
    if (role === 'filter') {
      this.links.push(await open(c.filter?.jail ?? {type: 'connect', address: fj}, () => {}, 'link to the jail service'))
    } else if (role === 'jail') {
      this.links.push(await open(c.jail?.filter ?? {type: 'bind', address: fj}, (m) => {
        const msg = m as {t?: string; f?: Failure}
        if (msg.t === 'failure' && msg.f !== undefined && typeof msg.f.id === 'string' && typeof msg.f.filter === 'string') this.onFailure({...msg.f, data: msg.f.data ?? {}, lines: msg.f.lines ?? []})
      }, 'link from the filter service'))
      this.ticketLink = await open(c.jail?.action ?? {type: 'connect', address: ja}, () => {}, 'link to the action service')
      this.links.push(this.ticketLink)
    } else {
      this.links.push(await open(c.action?.jail ?? {type: 'bind', address: ja}, (m) => {
        const msg = m as {t?: string; ticket?: Ticket; refs?: ActionRef[]}
        if (msg.t !== 'ticket' || msg.ticket === undefined || !Array.isArray(msg.refs)) return
        this.queue!.submit(msg.ticket, msg.refs).catch((e: unknown) => log.error(`cannot queue the ban of ${msg.ticket!.id}: ${errorText(e)}`))
      }, 'link from the jail service'))
    }
  }

  private sourceNames(config: SpylogConfig): Set<string> {
    const names = this.filterNames(config)
    return new Set(config.filters.filter((f) => f.enabled && names.has(f.name)).flatMap((f) => f.sources))
  }

  private async startSources(config: SpylogConfig, keep?: Map<string, SourceEntry>): Promise<void> {
    const wanted = this.sourceNames(config)
    const ctx: SourceContext = {
      log: this.opts.log, positions: this.store.positions, fromStart: this.opts.fromStart, platform: this.opts.platform,
      pressure: () => this.filters?.pressure(),
    }
    const make = this.opts.sourceFactory ?? ((cfg: SourceConfig, c: SourceContext, filters: SpylogConfig['filters']) => createSource(cfg, c, filters))
    const sink = (r: Parameters<Parameters<Source['start']>[0]>[0]): void => this.filters?.push(r)
    this.sources.clear()
    for (const cfg of config.sources) {
      if (!wanted.has(cfg.name)) continue
      const key = configKey(cfg)
      const old = keep?.get(cfg.name)
      if (old !== undefined && old.key === key) {
        this.sources.set(cfg.name, old)
        keep!.delete(cfg.name)
        continue
      }
      let source: Source
      try {
        source = make(cfg, ctx, config.filters.filter((f) => f.enabled && f.sources.includes(cfg.name)))
      } catch (e) {
        this.opts.log.error(`source ${cfg.name} (${cfg.spec}): ${errorText(e)}`)
        continue
      }
      this.sources.set(cfg.name, {cfg, key, source})
      await source.start(sink)
      if (source.stats.state === 'retrying' || source.stats.state === 'failed') {
        this.opts.log.warning(`source ${cfg.name} (${cfg.spec}) did not start: ${source.stats.lastError ?? 'unknown reason'}${source.stats.state === 'retrying' ? '; retrying' : ''}`)
      }
    }
    if (keep !== undefined) for (const old of keep.values()) await old.source.stop()
  }

  // --- the pipeline --------------------------------------------------------------------------

  private onFailure(f: Failure): void {
    const list = this.jailsByFilter.get(f.filter)
    if (list === undefined) return
    const received = this.clock()
    for (const j of list) {
      let t: Ticket | undefined
      try {
        t = j.jail.add(f, received)
      } catch (e) {
        this.opts.log.error(`jail ${j.cfg.name}: ${errorText(e)}`)
        continue
      }
      if (t !== undefined) void this.admit(j, t)
    }
  }

  private async admit(j: JailEntry, t: Ticket): Promise<void> {
    this.pendingTickets++
    try {
      if (!(await j.jail.admit(t))) return
      j.totalBanned++
      if (this.ticketLink !== undefined) {
        // The jail service keeps its own ban history (growing ban times) in its store.
        await this.store.addHistory({id: t.id, jail: t.jail, time: t.time, bantime: t.bantime})
        this.ticketLink.send({t: 'ticket', ticket: t, refs: this.refs(j.cfg, t)})
      }
      else await this.queue!.submit(t, this.refs(j.cfg, t))
    } catch (e) {
      this.opts.log.error(`jail ${j.cfg.name}: cannot queue the ban of ${t.id}: ${errorText(e)}`)
    } finally {
      this.pendingTickets--
      if (this.pendingTickets === 0) for (const w of this.stopWaiters.splice(0)) w()
    }
  }

  /** The jail's actions with their parameters: action defaults < global < jail < the jail's `{name, {params}}`. */
  private refs(cfg: JailConfig, t: Ticket): ActionRef[] {
    const out: ActionRef[] = []
    const lookup = (k: string): string | undefined => {
      const v = t.data[k] ?? (k === 'jail' ? t.jail : k === 'filter' ? t.filter : k === 'host' ? t.id : undefined)
      return v === undefined || v === null ? undefined : String(v)
    }
    for (const a of cfg.actions) {
      const name = a.name.includes('%{') ? a.name.replace(/%\{([^}]+)\}/g, (m, k: string) => lookup(k) ?? m) : a.name
      const action = this.config.actions.find((x) => x.name === name)
      if (action === undefined || (this.queue !== undefined && !this.runners.has(name))) {
        this.opts.log.error(`jail ${cfg.name}: no action ${JSON.stringify(name)} (from ${JSON.stringify(a.name)}); ban of ${t.id} not sent to it`)
        continue
      }
      const params: Record<string, ParamValue> = {...action.parameters, ...this.config.jail.parameters, ...cfg.parameters, ...(a.parameters ?? {})}
      out.push({name, params})
    }
    return out
  }

  /** Resolves when the filters are idle and every ticket made so far is queued and its due jobs done (tests, replays). */
  async idle(): Promise<void> {
    await this.filters?.idle()
    if (this.pendingTickets > 0) await new Promise<void>((r) => this.stopWaiters.push(r))
    await this.queue?.idle()
  }

  /** The queue, or a clear error in a process that does not run the action service. */
  private actionQueue(): ActionQueue {
    if (this.queue === undefined) throw new ControlError('invalid', `this process runs only the ${this.opts.only} service: ask the action service`)
    return this.queue
  }

  // --- control target --------------------------------------------------------------------------

  private sourceStatusOf(name: string): SourceStatus | undefined {
    const s = this.sources.get(name)
    return s === undefined ? undefined : sourceStatus(s.source, s.cfg.spec)
  }

  private jailSources(cfg: JailConfig): string[] {
    const fs = new Set(cfg.filters)
    return [...new Set(this.config.filters.filter((f) => fs.has(f.name)).flatMap((f) => f.sources))]
  }

  status(): StatusResult {
    const active = this.queue?.active() ?? []
    return {
      version: VERSION,
      pid: process.pid,
      started: this.started,
      jails: [...this.jails.values()].map((j) => ({
        name: j.cfg.name,
        currentlyFailed: j.jail.stats.currentlyFailed,
        totalFailed: j.jail.stats.totalFailed,
        currentlyBanned: active.filter((b) => b.jail === j.cfg.name).length,
        totalBanned: j.totalBanned,
        filters: [...j.cfg.filters],
        sources: this.jailSources(j.cfg),
      })),
      sources: [...this.sources.keys()].map((n) => this.sourceStatusOf(n)!),
      queueDepth: this.queue?.metrics().queued ?? 0,
    }
  }

  private jailEntry(name: string): JailEntry {
    const j = this.jails.get(name)
    if (j === undefined) throw new ControlError('not-found', `no jail ${JSON.stringify(name)} (running jails: ${[...this.jails.keys()].join(', ') || 'none'})`)
    return j
  }

  jailStatus(name: string): JailStatus {
    const j = this.jailEntry(name)
    const now = this.clock()
    const tickets = this.activeTickets().filter((t) => t.jail === name)
    return {
      name,
      filter: {
        filters: [...j.cfg.filters],
        sources: this.jailSources(j.cfg).flatMap((s) => this.sourceStatusOf(s) ?? []),
        currentlyFailed: j.jail.stats.currentlyFailed,
        totalFailed: j.jail.stats.totalFailed,
      },
      actions: {
        names: j.cfg.actions.map((a) => a.name),
        currentlyBanned: tickets.length,
        totalBanned: j.totalBanned,
        banned: tickets.map((t) => banInfo(t, now)).sort((a, b) => (a.timeLeft < 0 ? Infinity : a.timeLeft) - (b.timeLeft < 0 ? Infinity : b.timeLeft)),
      },
    }
  }

  /** Active bans as tickets (with the ban's current end). */
  private activeTickets(): Ticket[] {
    const q = this.queue
    if (q === undefined) return []
    return q.active().map((b) => ({...q.ticketOf(b.uuid)!, time: b.time, bantime: b.bantime, jail: b.jail, id: b.id}))
  }

  banned(ids?: string[]): BannedResult {
    this.actionQueue()
    const now = this.clock()
    const tickets = this.activeTickets()
    const wanted = ids?.map((i) => canonicalAddress(i) ?? i)
    const keys = wanted ?? [...new Set(tickets.map((t) => t.id))]
    return {entries: keys.map((id) => ({id, bans: tickets.filter((t) => t.id === id).map((t) => banDetail(t, now))}))}
  }

  async ban(jail: string, ids: string[]): Promise<BanResult> {
    const j = this.jailEntry(jail)
    const res: BanResult = {jail, banned: [], already: [], refused: []}
    const queue = this.actionQueue()
    const active = new Set(queue.active().filter((b) => b.jail === jail).map((b) => b.id))
    for (const raw of ids) {
      const id = canonicalAddress(raw) ?? raw
      const why = j.neverBan.reason(id)
      if (why !== undefined) {
        res.refused.push({id: raw, reason: `never banned (${why})`})
        continue
      }
      if (active.has(id)) {
        res.already.push(id)
        continue
      }
      const now = this.clock()
      const t: Ticket = {
        uuid: randomUUID(), jail, filter: 'manual', id, isAddress: canonicalAddress(id) !== undefined || id.includes('/'),
        time: now, bantime: j.cfg.bantime, banCount: this.history.count(id, jail), data: {host: id, ...j.cfg.parameters},
        failures: [], manual: true,
      }
      this.history.add({id, jail, time: now, bantime: t.bantime})
      j.totalBanned++
      await queue.submit(t, this.refs(j.cfg, t))
      res.banned.push(id)
    }
    return res
  }

  async unban(ids: string[] | {all: true}, jail?: string): Promise<UnbanResult> {
    if (jail !== undefined) this.jailEntry(jail)
    const queue = this.actionQueue()
    const before = queue.active().filter((b) => jail === undefined || b.jail === jail)
    if (!Array.isArray(ids)) {
      await queue.unban({all: true}, jail)
      return {unbanned: before.map((b) => ({jail: b.jail, id: b.id})), notBanned: []}
    }
    const res: UnbanResult = {unbanned: [], notBanned: []}
    for (const raw of ids) {
      const id = canonicalAddress(raw) ?? raw
      const hit = before.filter((b) => b.id === id)
      if (hit.length === 0) {
        res.notBanned.push(raw)
        continue
      }
      await queue.unban(id, jail)
      for (const b of hit) res.unbanned.push({jail: b.jail, id})
      for (const j of this.jails.values()) if (jail === undefined || j.cfg.name === jail) j.jail.forget(id)
    }
    return res
  }

  async reload(jail?: string): Promise<ReloadResult> {
    if (this.opts.loadConfig === undefined) return {ok: false, errors: ['this daemon was started without a configuration to re-read']}
    let next: SpylogConfig
    try {
      next = this.opts.loadConfig()
    } catch (e) {
      const errs = (e as {errors?: readonly {message: string}[]}).errors
      return {ok: false, errors: errs !== undefined ? errs.map((x) => x.message) : [errorText(e)]}
    }
    if (jail !== undefined) {
      if (!next.jails.some((j) => j.name === jail)) return {ok: false, errors: [`no jail ${JSON.stringify(jail)} in the configuration`]}
      // Only that jail changes: everything else keeps the running configuration.
      const jails = this.config.jails.filter((j) => j.name !== jail).concat(next.jails.filter((j) => j.name === jail))
      const cfgJail = next.jails.find((j) => j.name === jail)!
      const filters = this.config.filters.filter((f) => !cfgJail.filters.includes(f.name)).concat(next.filters.filter((f) => cfgJail.filters.includes(f.name)))
      const names = new Set(filters.flatMap((f) => f.sources))
      const sources = this.config.sources.filter((s) => !names.has(s.name) || !next.sources.some((n) => n.name === s.name)).concat(next.sources.filter((s) => names.has(s.name)))
      next = {...this.config, jails, filters, sources: dedupe(sources), actions: dedupe([...next.actions, ...this.config.actions])}
    }
    try {
      const role = this.opts.only
      const runs = (r: ServiceRole): boolean => role === undefined || role === r
      // Everything that can fail on the new configuration is built before anything is swapped.
      const runners = runs('action') ? this.buildRunners(next) : this.runners
      const filters = runs('filter')
        ? await FilterHost.start(next.filters, (f) => (role === 'filter' ? this.links[0]!.send({t: 'failure', f}) : this.onFailure(f)), {log: this.opts.log, only: this.filterNames(next), watchdogMs: this.opts.watchdogMs, maxQueue: this.opts.filterQueue})
        : undefined
      if (filters !== undefined) {
        const oldFilters = this.filters
        this.filters = filters
        await oldFilters?.stop()
      }
      if (runs('action')) {
        this.runners = runners
        this.runnerKeys = this.nextRunnerKeys
        await this.queue?.setRunners(runners)
      }
      this.config = next
      if (runs('jail')) await this.buildJails(next, new Map(this.jails))
      if (runs('filter')) await this.startSources(next, new Map(this.sources))
    } catch (e) {
      return {ok: false, errors: [errorText(e)]}
    }
    this.opts.log.notice(`configuration reloaded${jail !== undefined ? ` (jail ${jail})` : ''}: ${this.sources.size} sources, ${this.jails.size} jails`)
    return {ok: true, jails: [...this.jails.keys()]}
  }

  ping(): PingResult {
    return {pong: true, version: VERSION, pid: process.pid}
  }

  metrics(): MetricsSnapshot {
    const active = this.queue?.active() ?? []
    const qm = this.queue?.metrics() ?? {queued: 0, running: 0, bans: 0, failures: {}, done: {}}
    return {
      started: this.started,
      sources: [...this.sources.values()].map((s) => ({name: s.cfg.name, kind: s.source.kind, records: s.source.stats.records, bytes: s.source.stats.bytes, errors: s.source.stats.errors, drops: s.source.stats.drops, state: s.source.stats.state})),
      filters: (this.filters?.filterStats() ?? []).map((f) => {
        let acc = 0
        const buckets = MATCH_SECONDS_BUCKETS.map((le, i) => ({le, count: (acc += f.stats.hist[i] ?? 0)}))
        return {name: f.name, lines: f.stats.lines, matched: f.stats.matched, ignored: f.stats.ignored, matchSeconds: {buckets, count: f.stats.lines, sum: f.stats.seconds}}
      }),
      jails: [...this.jails.values()].map((j) => ({
        name: j.cfg.name, currentlyFailed: j.jail.stats.currentlyFailed, totalFailed: j.jail.stats.totalFailed,
        currentlyBanned: active.filter((b) => b.jail === j.cfg.name).length, totalBanned: j.totalBanned,
      })),
      queueDepth: qm.queued,
      actions: [...this.runners.keys()].map((name) => ({name, jobs: qm.done[name] ?? 0, failures: qm.failures[name] ?? 0})),
    }
  }

  /** Stops the daemon: sources first (positions saved), then filters, then the queue (running jobs finish), then the store. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown()
    return this.stopping
  }

  /** Resolves when the daemon has stopped (by stop(), a signal, or `spylog stop`). */
  private resolveStopped!: () => void
  readonly stopped: Promise<void> = new Promise((resolve) => (this.resolveStopped = resolve))

  private async shutdown(): Promise<void> {
    if (this.purgeTimer !== undefined) clearInterval(this.purgeTimer)
    for (const s of this.sources.values()) await s.source.stop().catch((e: unknown) => this.opts.log.error(`source ${s.cfg.name}: ${errorText(e)}`))
    await this.filters?.idle()
    await this.filters?.stop()
    if (this.pendingTickets > 0) await new Promise<void>((r) => this.stopWaiters.push(r))
    // The queue finishes running jobs and stops the runners.
    await this.queue?.stop()
    for (const l of this.links.splice(0)) await l.close()
    for (const j of this.jails.values()) j.neverBan.stop()
    this.globalNeverBan?.stop()
    await this.store?.close()
    this.opts.log.notice('spylog stopped')
    this.resolveStopped()
  }
}

function dedupe<T extends {readonly name: string}>(xs: readonly T[]): T[] {
  const seen = new Set<string>()
  return xs.filter((x) => !seen.has(x.name) && (seen.add(x.name), true))
}
