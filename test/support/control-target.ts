/**
 * A small daemon stand-in for the control tests: an in-memory jail and ban table that `fail`,
 * `ban`, `unban` and `reload` really change, behind the ControlTarget interface the daemon
 * implements. Reload reads a JSON jail list from a real file, so a broken file is a real
 * configuration error and the running jails stay.
 */
import fs from 'node:fs'
import {canonicalNetwork} from '../../src/engine/config/model.js'
import {Histogram} from '../../src/engine/control/metrics.js'
import {
  ControlError,
  type BanDetail,
  type BannedResult,
  type BanResult,
  type ControlTarget,
  type FailureInfo,
  type JailStatus,
  type MetricsSnapshot,
  type PingResult,
  type ReloadResult,
  type SourceStatus,
  type StatusResult,
  type UnbanResult,
} from '../../src/engine/control/protocol.js'

export interface JailDef {
  name: string
  filters: string[]
  sources: string[]
  actions: string[]
  maxretry: number
  /** Seconds; -1 permanent. */
  bantime: number
}

interface Ban {
  time: number
  bantime: number
  banCount: number
  manual: boolean
  failures: FailureInfo[]
}

interface Jail {
  def: JailDef
  failures: Map<string, FailureInfo[]>
  totalFailed: number
  bans: Map<string, Ban>
  totalBanned: number
}

const NEVER_BAN = ['127.0.0.0/8', '::1/128']

function inNetwork(id: string, net: string): boolean {
  const [base, len] = net.split('/') as [string, string]
  if (id.includes(':') !== base.includes(':')) return false
  const canon = canonicalNetwork(`${id.split('/')[0]}/${len}`)
  return canon === canonicalNetwork(net)
}

/** The in-memory daemon. `now` is the clock (Unix seconds), settable by tests. */
export class MemoryTarget implements ControlTarget {
  now = 1_800_000_000
  started = this.now - 3723
  readonly jails = new Map<string, Jail>()
  readonly sources = new Map<string, SourceStatus>()
  readonly filters = new Map<string, {lines: number; matched: number; ignored: number; h: Histogram}>()
  readonly actionStats = new Map<string, {jobs: number; failures: number}>()
  queueDepth = 0
  stopped = false
  onStop: () => void | Promise<void> = () => {}
  reloads = 0

  constructor(readonly configFile: string) {
    const r = this.readConfig()
    if (!r.ok) throw new Error(r.errors.join('\n'))
    this.apply(r.jails)
  }

  private readConfig(): {ok: true; jails: JailDef[]} | {ok: false; errors: string[]} {
    let text: string
    try {
      text = fs.readFileSync(this.configFile, 'utf8')
    } catch (e) {
      return {ok: false, errors: [`${this.configFile}: ${(e as Error).message}`]}
    }
    let data: unknown
    try {
      data = JSON.parse(text)
    } catch (e) {
      return {ok: false, errors: [`${this.configFile}: ${(e as Error).message}`]}
    }
    const errors: string[] = []
    const jails = (data as {jails?: unknown}).jails
    if (!Array.isArray(jails)) return {ok: false, errors: [`${this.configFile}: jails: expected a list`]}
    jails.forEach((j: Partial<JailDef>, i) => {
      if (typeof j.name !== 'string' || j.name === '') errors.push(`${this.configFile}: jails[${i}].name: expected a name`)
      if (typeof j.maxretry !== 'number' || j.maxretry < 1) errors.push(`${this.configFile}: jails[${i}].maxretry: expected a number ≥ 1`)
      if (typeof j.bantime !== 'number') errors.push(`${this.configFile}: jails[${i}].bantime: expected seconds`)
    })
    return errors.length > 0 ? {ok: false, errors} : {ok: true, jails: jails as JailDef[]}
  }

  private apply(defs: JailDef[], only?: string): string[] {
    const changed: string[] = []
    for (const def of defs) {
      if (only !== undefined && def.name !== only) continue
      const old = this.jails.get(def.name)
      if (old !== undefined && JSON.stringify(old.def) === JSON.stringify(def)) continue
      this.jails.set(def.name, {def, failures: new Map(), totalFailed: 0, bans: old?.bans ?? new Map(), totalBanned: old?.totalBanned ?? 0})
      changed.push(def.name)
      for (const s of def.sources) if (!this.sources.has(s)) this.sources.set(s, {name: s, kind: 'file', spec: `/var/log/${s}.log`, records: 0, bytes: 0, errors: 0, drops: 0, state: 'running'})
      for (const f of def.filters) if (!this.filters.has(f)) this.filters.set(f, {lines: 0, matched: 0, ignored: 0, h: new Histogram()})
      for (const a of def.actions) if (!this.actionStats.has(a)) this.actionStats.set(a, {jobs: 0, failures: 0})
    }
    if (only === undefined) for (const name of [...this.jails.keys()]) if (!defs.some((d) => d.name === name)) this.jails.delete(name)
    return changed
  }

  private jail(name: string): Jail {
    const j = this.jails.get(name)
    if (j === undefined) throw new ControlError('not-found', `no jail "${name}" (jails: ${[...this.jails.keys()].join(', ')})`)
    return j
  }

  /** A source read a line, its filter matched it: counts, and bans at maxretry. */
  fail(jailName: string, id: string, line: string, data?: Record<string, string>): void {
    const j = this.jail(jailName)
    const source = this.sources.get(j.def.sources[0]!)!
    source.records++
    source.bytes += Buffer.byteLength(line) + 1
    source.lastRecord = this.now
    const filter = this.filters.get(j.def.filters[0]!)!
    filter.lines++
    filter.matched++
    filter.h.observe(2e-5 * filter.lines)
    j.totalFailed++
    if (j.bans.has(id)) return
    const list = [...(j.failures.get(id) ?? []), {filter: j.def.filters[0]!, time: this.now, lines: [line], data}]
    if (list.length >= j.def.maxretry) {
      j.failures.delete(id)
      this.addBan(j, id, list, false)
    } else j.failures.set(id, list)
  }

  /** A line no filter matched. */
  miss(jailName: string, line: string): void {
    const j = this.jail(jailName)
    const source = this.sources.get(j.def.sources[0]!)!
    source.records++
    source.bytes += Buffer.byteLength(line) + 1
    const filter = this.filters.get(j.def.filters[0]!)!
    filter.lines++
    filter.h.observe(1e-6)
  }

  private addBan(j: Jail, id: string, failures: FailureInfo[], manual: boolean): void {
    j.bans.set(id, {time: this.now, bantime: j.def.bantime, banCount: 0, manual, failures})
    j.totalBanned++
    for (const a of j.def.actions) this.actionStats.get(a)!.jobs++
  }

  private banInfo(j: Jail, id: string, b: Ban): BanDetail {
    const timeLeft = b.bantime < 0 ? -1 : Math.max(0, b.time + b.bantime - this.now)
    return {jail: j.def.name, id, time: b.time, bantime: b.bantime, timeLeft, banCount: b.banCount, ...(b.manual ? {manual: true} : {}), failures: b.failures}
  }

  status(): StatusResult {
    return {
      version: '0.1.0-test',
      pid: process.pid,
      started: this.started,
      queueDepth: this.queueDepth,
      jails: [...this.jails.values()].map((j) => ({
        name: j.def.name,
        currentlyFailed: j.failures.size,
        totalFailed: j.totalFailed,
        currentlyBanned: j.bans.size,
        totalBanned: j.totalBanned,
        filters: j.def.filters,
        sources: j.def.sources,
      })),
      sources: [...this.sources.values()],
    }
  }

  jailStatus(name: string): JailStatus {
    const j = this.jail(name)
    const banned = [...j.bans].map(([id, b]) => {
      const {failures: _f, ...info} = this.banInfo(j, id, b)
      return info
    }).sort((a, b) => (a.timeLeft < 0 ? Infinity : a.timeLeft) - (b.timeLeft < 0 ? Infinity : b.timeLeft))
    return {
      name,
      filter: {filters: j.def.filters, sources: j.def.sources.map((s) => this.sources.get(s)!), currentlyFailed: j.failures.size, totalFailed: j.totalFailed},
      actions: {names: j.def.actions, currentlyBanned: j.bans.size, totalBanned: j.totalBanned, banned},
    }
  }

  banned(ids?: string[]): BannedResult {
    const wanted = ids?.map((i) => canonicalNetwork(i) ?? i)
    const all = new Set<string>()
    for (const j of this.jails.values()) for (const id of j.bans.keys()) all.add(id)
    const list = wanted ?? [...all].sort()
    return {
      entries: list.map((id) => ({
        id,
        bans: [...this.jails.values()].filter((j) => j.bans.has(id)).map((j) => this.banInfo(j, id, j.bans.get(id)!)),
      })),
    }
  }

  ban(jailName: string, ids: string[]): BanResult {
    const j = this.jail(jailName)
    const r: BanResult = {jail: jailName, banned: [], already: [], refused: []}
    for (const raw of ids) {
      const id = canonicalNetwork(raw)
      if (id === undefined) r.refused.push({id: raw, reason: 'not an address or network'})
      else if (NEVER_BAN.some((n) => inNetwork(id, n))) r.refused.push({id, reason: 'a local address is never banned'})
      else if (j.bans.has(id)) r.already.push(id)
      else {
        j.failures.delete(id)
        this.addBan(j, id, [], true)
        r.banned.push(id)
      }
    }
    return r
  }

  unban(ids: string[] | {all: true}, jail?: string): UnbanResult {
    const jails = jail === undefined ? [...this.jails.values()] : [this.jail(jail)]
    const r: UnbanResult = {unbanned: [], notBanned: []}
    if (!Array.isArray(ids)) {
      for (const j of jails) {
        for (const id of [...j.bans.keys()]) r.unbanned.push({jail: j.def.name, id})
        j.bans.clear()
      }
      return r
    }
    for (const raw of ids) {
      const id = canonicalNetwork(raw) ?? raw
      let any = false
      for (const j of jails) {
        if (j.bans.delete(id)) {
          r.unbanned.push({jail: j.def.name, id})
          any = true
        }
      }
      if (!any) r.notBanned.push(id)
    }
    return r
  }

  reload(jail?: string): ReloadResult {
    this.reloads++
    const r = this.readConfig()
    if (!r.ok) return r
    if (jail !== undefined && !r.jails.some((d) => d.name === jail)) throw new ControlError('not-found', `no jail "${jail}" in ${this.configFile}`)
    return {ok: true, jails: this.apply(r.jails, jail)}
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.onStop()
  }

  ping(): PingResult {
    return {pong: true, version: '0.1.0-test', pid: process.pid}
  }

  metrics(): MetricsSnapshot {
    return {
      started: this.started,
      sources: [...this.sources.values()].map((s) => ({name: s.name, kind: s.kind, records: s.records, bytes: s.bytes, errors: s.errors, drops: s.drops, state: s.state})),
      filters: [...this.filters].map(([name, f]) => ({name, lines: f.lines, matched: f.matched, ignored: f.ignored, matchSeconds: f.h.snapshot()})),
      jails: [...this.jails.values()].map((j) => ({name: j.def.name, currentlyFailed: j.failures.size, totalFailed: j.totalFailed, currentlyBanned: j.bans.size, totalBanned: j.totalBanned})),
      queueDepth: this.queueDepth,
      actions: [...this.actionStats].map(([name, a]) => ({name, ...a})),
    }
  }
}

/** The jails the tests start with. */
export const JAILS: JailDef[] = [
  {name: 'sshd', filters: ['sshd'], sources: ['auth'], actions: ['nftables'], maxretry: 3, bantime: 600},
  {name: 'recidive', filters: ['recidive'], sources: ['spylog-log'], actions: ['nftables-allports'], maxretry: 2, bantime: -1},
]
