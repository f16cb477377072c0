/**
 * The filter stage of the daemon: routes each LogRecord of a source to the filters that read
 * that source, in configuration order, and turns their matches into Failures for the jails.
 *
 * - The Filter objects are built by `buildFilter`, the same factory `spylog regex` and
 *   `spylog testcases` use: what a filter author tests is what runs here.
 * - lua-spylog's selectors run before any regex: `trap` (SNMP trap sources: specific trap ids or
 *   enterprise OIDs) and `events` (Windows events: source name or prefix, event ids) on the
 *   record's fields (RECORD_FIELDS).
 * - A record that carries its own event time (journal, event log, syslog with a timestamp) is
 *   matched without reading a date from the text; its time is the failure's time.
 * - `stop = true`: after that filter matched a record, later filters of the source skip it.
 * - Capture filters (`cfilter` of a FILTER{}) drop failures before they reach the jails.
 * - A filter that throws (it should not) is counted and logged once per filter; the record
 *   still reaches the other filters.
 */
import type {EventSelector, FilterConfig, SpylogConfig} from '../config/model.js'
import {MATCH_SECONDS_BUCKETS} from '../control/metrics.js'
import type {Logger} from '../log/logger.js'
import {RECORD_FIELDS, type Failure, type LogRecord} from '../types.js'
import {matchesEventSelectors} from '../sources/eventlog.js'
import {buildFilter, type BuildFilterOptions} from './build.js'
import type {Filter} from './filter.js'

/** Keeps (true) or drops (false) a failure, given its data (captures plus `host`). */
export type CapturePredicate = (data: Record<string, unknown>) => boolean

export interface FilterServiceOptions extends BuildFilterOptions {
  readonly log: Logger
  /** Builds the predicate of one cfilter entry (the jails module provides it). */
  readonly captureFilter?: (cfg: FilterConfig['cfilter'][number]) => CapturePredicate
}

/** Per-filter counters, for status and metrics. */
export interface FilterStats {
  /** Records offered to the filter (after selectors). */
  lines: number
  /** Records that gave at least one failure. */
  matched: number
  /** Failures emitted (after cfilters). */
  failures: number
  /** Failures dropped by a cfilter. */
  dropped: number
  /** Records ignored by an ignoreregex. */
  ignored: number
  errors: number
  /** Total matching time, seconds. */
  seconds: number
  /** Lines per match-time bucket (MATCH_SECONDS_BUCKETS upper bounds, not cumulative; the last slot: slower than all). */
  hist: number[]
}

/** Upper bounds (seconds) of the match-time buckets (the Prometheus histogram's `le`). */
export {MATCH_SECONDS_BUCKETS}
const NB = MATCH_SECONDS_BUCKETS.length + 1

function bucketOf(seconds: number): number {
  const b = MATCH_SECONDS_BUCKETS
  for (let i = 0; i < b.length; i++) if (seconds <= b[i]!) return i
  return b.length
}

/** The FilterStats fields in the order syncStats writes them. */
export const STAT_FIELDS = ['lines', 'matched', 'failures', 'dropped', 'ignored', 'errors', 'seconds'] as const
/** Numbers per filter in a shared counter array: STAT_FIELDS, then the match-time buckets. */
export const STAT_SLOTS = STAT_FIELDS.length + NB

/** FilterStats of filter `index` from a shared counter array. */
export function readStats(from: Float64Array, index: number): FilterStats {
  const o = index * STAT_SLOTS
  const hist = Array.from(from.subarray(o + STAT_FIELDS.length, o + STAT_SLOTS))
  return {lines: from[o]!, matched: from[o + 1]!, failures: from[o + 2]!, dropped: from[o + 3]!, ignored: from[o + 4]!, errors: from[o + 5]!, seconds: from[o + 6]!, hist}
}

interface Entry {
  /** Index of the filter in the configuration's filter list. */
  readonly index: number
  readonly cfg: FilterConfig
  readonly filter: Filter
  readonly stats: FilterStats
  readonly keep: readonly CapturePredicate[]
  readonly accepts: ((r: LogRecord) => boolean) | undefined
}

function trapSelector(sel: NonNullable<FilterConfig['trap']>): (r: LogRecord) => boolean {
  const specific = new Set(sel.specific)
  const enterprises = sel.enterprise
  return (r) => {
    const f = r.fields
    if (f === undefined) return false
    const s = f[RECORD_FIELDS.trapSpecific]
    if (s !== undefined && specific.has(Number(s))) return true
    const e = f[RECORD_FIELDS.trapEnterprise]
    if (typeof e !== 'string') return false
    for (const oid of enterprises) if (e === oid || e.startsWith(oid + '.')) return true
    return false
  }
}

function eventSelector(sels: readonly EventSelector[]): (r: LogRecord) => boolean {
  // Channel or provider name (or prefix), event ids, channel: the event log source's own rule.
  return (r) => matchesEventSelectors(sels, r.fields)
}

export class FilterService {
  private readonly bySource = new Map<string, Entry[]>()
  private readonly entries: Entry[] = []
  private readonly failedOnce = new Set<string>()

  constructor(
    config: Pick<SpylogConfig, 'filters'>,
    private readonly opts: FilterServiceOptions,
    /** Only these filters (the enabled ones that some enabled jail reads), when given. */
    only?: ReadonlySet<string>,
  ) {
    for (let index = 0; index < config.filters.length; index++) {
      const cfg = config.filters[index]!
      if (!cfg.enabled || (only !== undefined && !only.has(cfg.name))) continue
      const filter = buildFilter(cfg, opts)
      const keep = opts.captureFilter === undefined ? [] : cfg.cfilter.map((c) => opts.captureFilter!(c))
      const accepts = cfg.trap !== undefined ? trapSelector(cfg.trap) : cfg.events !== undefined ? eventSelector(cfg.events) : undefined
      const e: Entry = {index, cfg, filter, keep, accepts, stats: {lines: 0, matched: 0, failures: 0, dropped: 0, ignored: 0, errors: 0, seconds: 0, hist: new Array<number>(NB).fill(0)}}
      this.entries.push(e)
      for (const s of cfg.sources) {
        let list = this.bySource.get(s)
        if (list === undefined) this.bySource.set(s, (list = []))
        list.push(e)
      }
    }
  }

  /** Names of the sources some filter reads. */
  get sources(): string[] {
    return [...this.bySource.keys()]
  }

  get filters(): ReadonlyArray<{readonly name: string; readonly sources: readonly string[]; readonly stats: FilterStats; readonly filter: Filter}> {
    return this.entries.map((e) => ({name: e.cfg.name, sources: e.cfg.sources, stats: e.stats, filter: e.filter}))
  }

  /**
   * Copies the counters of the filters of `source` into `into` (STAT_FIELDS numbers per filter, at
   * the filter's configuration index): the worker keeps them in shared memory, so they survive a
   * worker the watchdog stopped.
   */
  syncStats(source: string, into: Float64Array): void {
    const list = this.bySource.get(source)
    if (list === undefined) return
    for (const e of list) {
      const o = e.index * STAT_SLOTS
      const st = e.stats
      into[o] = st.lines
      into[o + 1] = st.matched
      into[o + 2] = st.failures
      into[o + 3] = st.dropped
      into[o + 4] = st.ignored
      into[o + 5] = st.errors
      into[o + 6] = st.seconds
      for (let k = 0; k < NB; k++) into[o + STAT_FIELDS.length + k] = st.hist[k]!
    }
  }

  /** Continues counting from counters written earlier (by a worker that was replaced). */
  seedStats(from: Float64Array): void {
    for (const e of this.entries) Object.assign(e.stats, readStats(from, e.index))
  }

  /** Runs one record through the filters of its source; each failure goes to `emit`. */
  process(record: LogRecord, emit: (f: Failure) => void): void {
    const list = this.bySource.get(record.source)
    if (list === undefined) return
    const ownTime = record.time
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!
      if (e.accepts !== undefined && !e.accepts(record)) continue
      e.stats.lines++
      const t0 = performance.now()
      let matched = false
      try {
        const r = e.filter.processLine(record.text, ownTime !== undefined)
        if (r.ignoredBy.length > 0) e.stats.ignored++
        const ms = r.matches
        for (let k = 0; k < ms.length; k++) {
          const m = ms[k]!
          if (m.nofail || m.pending || m.id === undefined) continue
          matched = true
          const data = m.data
          if (data.host === undefined) data.host = m.id
          if (record.fields !== undefined) for (const key in record.fields) if (data[key] === undefined) data[key] = record.fields[key]
          let keep = true
          for (let c = 0; c < e.keep.length; c++) {
            if (!e.keep[c]!(data)) {
              keep = false
              break
            }
          }
          if (!keep) {
            e.stats.dropped++
            continue
          }
          e.stats.failures++
          emit({filter: e.cfg.name, id: m.id, ip: m.isAddress ? m.id : undefined, time: ownTime ?? m.time, data, lines: m.lines})
        }
      } catch (err) {
        e.stats.errors++
        if (!this.failedOnce.has(e.cfg.name)) {
          this.failedOnce.add(e.cfg.name)
          this.opts.log.error(`filter ${e.cfg.name}: ${err instanceof Error ? err.message : String(err)} (on a line of source ${record.source}; further errors of this filter are only counted)`)
        }
      }
      const dt = (performance.now() - t0) / 1000
      e.stats.seconds += dt
      e.stats.hist[bucketOf(dt)]!++
      if (matched) {
        e.stats.matched++
        if (e.cfg.stop) break
      }
    }
  }
}
