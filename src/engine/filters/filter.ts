/**
 * What every filter object offers, whatever configuration it came from: Fail2banFilter
 * (fail2ban filter.d semantics) and LuaSpylogFilter (lua-spylog FILTER{} semantics) both
 * implement it, so the daemon, `spylog regex` and `spylog testcases` use either class the same way.
 */
import type {CompiledRegex} from '../patterns/types.js'
import type {LuaPattern} from '../patterns/lua.js'
import type {LineResult} from './types.js'

/** One regex of a filter, with its hit counter. */
export interface FilterRegexInfo {
  /** As written in the configuration. */
  readonly source: string
  /** What was compiled: after tag expansion (fail2ban), else the source itself. */
  readonly expanded: string
  /** The compiled Python/PCRE regex (fail2ban and pcre engines). */
  readonly re?: CompiledRegex
  /** The compiled Lua pattern (lua engine). */
  readonly lua?: LuaPattern
  /** Lines this regex matched so far. */
  hits: number
}

/** Date templates (or the captured-date format) a filter used, with their hit counters, for reports. */
export interface FilterDates {
  readonly templates: ReadonlyArray<{readonly name: string; hits: number}>
}

export interface Filter {
  readonly name: string
  /** fail2ban's prefregex; undefined for filters without one. */
  readonly prefregex: FilterRegexInfo | undefined
  readonly failregex: readonly FilterRegexInfo[]
  readonly ignoreregex: readonly FilterRegexInfo[]
  /** Lines buffered for multi-line regexes (1: single-line filter). */
  readonly maxlines: number
  readonly dates: FilterDates
  /** Lines cut to the maximum line length so far. */
  readonly truncated: number
  /**
   * Feed one line (without its terminator). `noDate` (journal mode, or a source that gives the
   * event time itself) skips date reading: the match time is the current time.
   */
  processLine(line: string, noDate?: boolean): LineResult
  /** Forget buffered lines and multi-line state (new log file). */
  reset(): void
}
