/**
 * What a filter reports for each line it is fed. The same objects serve the daemon,
 * `spylog regex` and `spylog testcases`.
 */

/** One failregex hit, after prefregex/ignoreregex and multi-line (mlfid) merging. */
export interface FilterMatch {
  /** Index of the failregex (in the filter's failregex list) that produced this result. */
  regex: number
  /**
   * Offender id: the normalised address (IPv4 dotted, IPv6 lower-case compressed; raw text for
   * an invalid address), the host name for `dns`, or the `fid` capture. Undefined when pending.
   */
  id: string | undefined
  /** Whether `id` is an IP address (or subnet). */
  isAddress: boolean
  /** Event time in Unix seconds (fraction kept only for epoch dates); undefined when unknown. */
  time: number | undefined
  /** Failure data: every named capture that matched (user, ip4, fid, …), `users` for mlfid merges. */
  data: Record<string, unknown>
  /** One datum without building `data` (when the filter can; else read `data`). */
  datum?(key: string): unknown
  /** The lines that make up this failure (`attempts` = lines.length). */
  lines: string[]
  /** Matched but not a failure by itself (`<F-NOFAIL>`, `<F-MLFGAINED>`). */
  nofail: boolean
  /** Matched without an offender id, waiting for a later line of the same mlfid. */
  pending: boolean
}

/** Result of feeding one line to a filter. */
export interface LineResult {
  /** Failregex results (all of them when `checkAll`, else the first one). */
  matches: FilterMatch[]
  /** Indices of ignoreregexes that hit (a failregex result they discarded, or the early ignore pass). */
  ignoredBy: number[]
  /** Whether the prefregex matched (always true when the filter has none). */
  prefregex: boolean
  /** Index of the date template that matched, -1 when none. */
  dateTemplate: number
  /** Time of the line's date, undefined when none. */
  time: number | undefined
}
