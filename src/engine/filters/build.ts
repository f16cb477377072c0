/**
 * One factory for every filter of the configuration model: fail2ban filter.d filters (those that
 * carry `fail2ban` options: prefregex, maxlines, datepattern, usedns) run on Fail2banFilter with
 * fail2ban's semantics; every other filter (lua-spylog FILTER{}, any engine) on LuaSpylogFilter.
 */
import type {FilterConfig} from '../config/model.js'
import {Fail2banFilter, type Fail2banFilterSpec, type FilterRuntimeOptions} from './fail2ban.js'
import type {Filter} from './filter.js'
import {parseTimeZone} from '../dates/timezone.js'
import {LuaSpylogFilter} from './luaspylog.js'

export type BuildFilterOptions = FilterRuntimeOptions

export function buildFilter(cfg: FilterConfig, opts: BuildFilterOptions = {}): Filter {
  const f2b = cfg.fail2ban
  if (f2b === undefined) return new LuaSpylogFilter(cfg, opts)
  const o = cfg.fieldOrigins
  const spec: Fail2banFilterSpec = {
    name: cfg.name,
    prefregex: f2b.prefregex,
    failregex: cfg.failregex,
    ignoreregex: cfg.ignoreregex,
    maxlines: f2b.maxlines,
    datepattern: f2b.datepattern ?? cfg.datepattern,
    usedns: f2b.usedns,
    origin: {
      prefregex: o?.prefregex ?? cfg.origin,
      failregex: o?.failregex ?? cfg.origin,
      ignoreregex: o?.ignoreregex ?? cfg.origin,
      datepattern: o?.datepattern ?? cfg.origin,
    },
  }
  // fail2ban's logtimezone: the zone of dates written without one; it stands in for the local zone.
  const timezone = f2b.timezone !== undefined ? parseTimeZone(f2b.timezone) : opts.timezone
  return new Fail2banFilter(spec, {...opts, timezone})
}
