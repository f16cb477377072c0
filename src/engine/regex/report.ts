/**
 * The engine behind `spylog regex` (modeled on fail2ban-regex), independent of the CLI: resolve
 * the REGEX and LOG arguments, stream the log through the filter in constant memory, and collect
 * the report — per-regex hit counts, date template hits, line statistics, optionally the lines
 * and per-failure details.
 *
 * Line classification follows fail2ban-regex: a line is *ignored* when an ignoreregex hit it or
 * when one of its results is `nofail`; else *matched* when it produced a result (a failure, or a
 * pending multi-line one); else *missed*. Empty lines and lines starting with `#` are skipped
 * (not counted), as fail2ban-regex does. With `maxlines > 1`, buffered lines that a later
 * multi-line match consumed move from missed to matched.
 *
 * A *reported failure* (`onFailure`, `failures`) is a result with an offender id that is neither
 * `nofail` nor pending (whatever the line's class): exactly what `fail2ban-regex -o` prints.
 */
import * as fs from 'node:fs'
import type {Readable} from 'node:stream'
import type {FilterMatch, LineResult} from '../filters/types.js'
import type {RegexFilter, Dialect} from './dialects.js'
import {LineBatch, LineSplitter, newDecodeStats, type DecodeStats} from './lines.js'
import {resolveFilter, resolveLog, RegexUsageError, errnoText, type FilterSource, type LogInput, type ResolveFilterOptions} from './resolve.js'

export {RegexUsageError} from './resolve.js'
export {UnknownEncodingError} from './lines.js'
export {DIALECTS, type Dialect} from './dialects.js'
export {defaultFilterDirs} from './resolve.js'

export interface RegexOptions extends ResolveFilterOptions {
  /** LOG: a file, a glob, `-` (stdin) or a literal line. */
  log: string
  /** Input encoding (default utf-8). */
  encoding?: string
  /** Base directory for relative LOG paths and globs. */
  cwd?: string
  /** Standard input, for LOG `-` (default process.stdin). */
  stdin?: Readable
}

/** Which lines and details to keep in the report. */
export interface CollectOptions {
  /** Keep every matched / missed / ignored line (else only the first `sampleLines` missed and ignored ones). */
  matched?: boolean
  missed?: boolean
  ignored?: boolean
  /** How many missed / ignored lines to keep when not keeping all (default 20). */
  sampleLines?: number
  /** Keep every reported failure with its details, grouped by failregex. */
  failures?: boolean
}

export interface Progress {
  lines: number
  bytes: number
  /** Seconds since the run started. */
  elapsed: number
}

export interface RunHooks {
  /**
   * Called for each reported failure, in log order. `line` is the current line, `lineNo` its
   * 1-based number in its file (or in the input, for stdin and literal lines).
   */
  onFailure?: (m: FilterMatch, line: string, lineNo: number, file: string | undefined) => void
  /** Called after each chunk of input (about 1 MiB); may return a promise to pause reading (output backpressure). */
  onProgress?: (p: Progress) => void | Promise<void>
}

/** One reported failure, as kept with `collect.failures`. */
export interface FailureDetail {
  /** 1-based line number (in its file). */
  line: number
  file?: string
  id: string
  isAddress: boolean
  /** Unix seconds, or null when the line had no usable date. */
  time: number | null
  /** Named captures and merged multi-line data. */
  data: Record<string, unknown>
  /** The lines that make up the failure (more than one for multi-line merges). */
  lines: string[]
}

export interface RegexStat {
  /** 1-based, as fail2ban-regex numbers them. */
  index: number
  /** As written (tags unexpanded). */
  regex: string
  hits: number
  failures?: FailureDetail[]
}

export interface LineStats {
  /** Lines tested (skipped ones excluded). */
  total: number
  ignored: number
  matched: number
  missed: number
  /** Empty lines and `#` comment lines, not tested. */
  skipped: number
  /** Lines with bytes invalid in the input encoding (decoded with U+FFFD). */
  invalid: number
  /** Lines containing a NUL character. */
  binary: number
  /** Lines cut to the maximum line length. */
  truncated: number
}

export interface RegexReport {
  filter: FilterSource
  log: {kind: 'file' | 'files' | 'stdin' | 'line'; name: string; files?: string[]; encoding: string}
  prefregex?: {regex: string; hits: number}
  failregex: RegexStat[]
  ignoreregex: RegexStat[]
  /** Date templates in the detector's order; `hits` may be 0. */
  dateTemplates: {name: string; hits: number}[]
  lines: LineStats
  /** Reported failures (see the module comment). */
  failures: number
  /** Seconds spent reading and matching. */
  elapsed: number
  bytes: number
  matchedLines?: string[]
  missedLines?: string[]
  ignoredLines?: string[]
}

const CHUNK = 1 << 20
const HASH = 35

/**
 * A resolved `spylog regex` run: the filter and the inputs are ready (all argument errors have
 * been raised), `run()` reads and matches.
 */
export class RegexSession {
  private constructor(
    readonly filter: RegexFilter,
    readonly source: FilterSource,
    readonly input: LogInput,
    readonly splitter: LineSplitter,
    private readonly logArg: string,
    private readonly stdin: Readable | undefined,
    /** The filter's clock when the caller gave none: read once per input chunk, not per line. */
    private readonly clock: {now: number} | undefined,
  ) {}

  /** Resolve the arguments. Throws RegexUsageError, ConfigError, PatternError, UnknownEncodingError. */
  static async open(opts: RegexOptions): Promise<RegexSession> {
    const splitter = new LineSplitter(opts.encoding ?? 'utf-8')
    // "Now" (multi-line session expiry, undated lines) moves by a chunk's processing time, a few
    // milliseconds, at a time: one clock read per chunk instead of one per failure.
    const clock = opts.now === undefined ? {now: Date.now() / 1000} : undefined
    const {filter, source} = await resolveFilter(clock === undefined ? opts : {...opts, now: () => clock.now})
    const input = await resolveLog(opts.log, opts.cwd)
    return new RegexSession(filter, source, input, splitter, opts.log, opts.stdin, clock)
  }

  get dialect(): Dialect {
    return this.source.dialect
  }

  /** Total input size in bytes when known (files), for progress display. */
  get size(): number | undefined {
    if (this.input.kind !== 'files') return undefined
    let n = 0
    for (const f of this.input.files) {
      try {
        n += fs.statSync(f).size
      } catch {
        // counted as 0
      }
    }
    return n
  }

  async run(collect: CollectOptions = {}, hooks: RunHooks = {}): Promise<RegexReport> {
    const filter = this.filter
    const stats: DecodeStats = this.splitter.stats
    const sample = collect.sampleLines ?? 20
    const keepMatched = !!collect.matched
    const keepMissed = !!collect.missed
    const keepIgnored = !!collect.ignored
    const matchedLines: string[] | undefined = keepMatched ? [] : undefined
    const missedLines: string[] = []
    const ignoredLines: string[] = []
    const failHits = new Array<number>(filter.failregex.length).fill(0)
    const failDetails: FailureDetail[][] | undefined = collect.failures ? filter.failregex.map(() => []) : undefined
    const onFailure = hooks.onFailure
    const multiline = filter.maxlines > 1
    // Recently missed lines (multi-line mode): a later match may consume them.
    const recentMissed: string[] = []

    let total = 0
    let skipped = 0
    let ignored = 0
    let matched = 0
    let missed = 0
    let failures = 0
    let bytes = 0
    const t0 = performance.now()

    let lineNo = 0
    let file: string | undefined

    /** The hot path: one line through the filter and into the statistics. */
    const feed = (line: string, ascii?: boolean): void => {
      lineNo++
      if (line.length === 0 || line.charCodeAt(0) === HASH) {
        skipped++
        return
      }
      total++
      const r: LineResult = filter.processLine(line, false, ascii)
      const ms = r.matches
      let nofail = false
      let results = 0
      for (let i = 0; i < ms.length; i++) {
        const m = ms[i]!
        failHits[m.regex]++
        if (m.nofail) {
          nofail = true
          continue
        }
        results++
        if (m.pending || m.id === undefined) continue
        failures++
        if (onFailure) onFailure(m, line, lineNo, file)
        if (failDetails) {
          failDetails[m.regex]!.push({line: lineNo, file, id: m.id, isAddress: m.isAddress, time: m.time ?? null, data: m.data, lines: m.lines})
        }
      }
      if (r.ignoredBy.length > 0 || nofail) {
        ignored++
        if (keepIgnored || ignoredLines.length < sample) ignoredLines.push(line)
        return
      }
      if (results === 0) {
        missed++
        if (keepMissed || missedLines.length < sample) missedLines.push(line)
        if (multiline) {
          recentMissed.push(line)
          if (recentMissed.length > filter.maxlines) recentMissed.shift()
        }
        return
      }
      matched++
      if (matchedLines) matchedLines.push(line)
      if (multiline) {
        for (let i = 0; i < ms.length; i++) {
          const m = ms[i]!
          if (!m.nofail && m.lines.length > 1) reclaim(m.lines)
        }
      }
    }

    /** Earlier lines of a multi-line match were counted missed: count them matched. */
    const reclaim = (lines: readonly string[]): void => {
      for (let k = 0; k < lines.length - 1; k++) {
        const at = recentMissed.lastIndexOf(lines[k]!)
        if (at < 0) continue
        recentMissed.splice(at, 1)
        missed--
        matched++
        const s = missedLines.lastIndexOf(lines[k]!)
        if (s >= 0) missedLines.splice(s, 1)
        if (matchedLines) matchedLines.push(lines[k]!)
      }
    }

    const progress = async (): Promise<void> => {
      if (hooks.onProgress) await hooks.onProgress({lines: lineNo, bytes, elapsed: (performance.now() - t0) / 1000})
    }

    const batch = new LineBatch()
    const input = this.input
    const clock = this.clock
    if (clock !== undefined) clock.now = Date.now() / 1000
    if (input.kind === 'lines') {
      for (const l of input.lines) feed(l.charCodeAt(l.length - 1) === 13 ? l.slice(0, -1) : l)
      bytes = input.lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0)
    } else {
      const streams: {file: string | undefined; open: () => Readable}[] =
        input.kind === 'stdin'
          ? [{file: undefined, open: () => this.stdin ?? process.stdin}]
          : input.files.map((f) => ({file: f, open: () => fs.createReadStream(f, {highWaterMark: CHUNK})}))
      for (const s of streams) {
        file = s.file
        lineNo = 0
        filter.reset()
        this.splitter.reset()
        try {
          for await (const chunk of s.open()) {
            const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
            bytes += buf.length
            batch.clear()
            this.splitter.push(buf, batch)
            // Lines of a pure-ASCII chunk need no scan of their own.
            const ascii = this.splitter.batchAscii || undefined
            if (clock !== undefined) clock.now = Date.now() / 1000
            for (let line = batch.next(); line !== undefined; line = batch.next()) feed(line, ascii)
            await progress()
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== undefined && !(e instanceof RegexUsageError)) {
            throw new RegexUsageError(`cannot read log ${s.file ?? 'from standard input'}: ${errnoText(e)}`)
          }
          throw e
        }
        batch.clear()
        this.splitter.end(batch)
        if (clock !== undefined) clock.now = Date.now() / 1000
        for (let line = batch.next(); line !== undefined; line = batch.next()) feed(line)
      }
      await progress()
    }
    const elapsed = (performance.now() - t0) / 1000

    const source = this.source
    const report: RegexReport = {
      filter: source,
      log: this.log,
      failregex: filter.failregex.map((r, i) => {
        const st: RegexStat = {index: i + 1, regex: r.source, hits: failHits[i]!}
        if (failDetails) st.failures = failDetails[i]
        return st
      }),
      ignoreregex: filter.ignoreregex.map((r, i) => ({index: i + 1, regex: r.source, hits: r.hits})),
      dateTemplates: filter.dates.templates.map((t) => ({name: t.name, hits: t.hits})),
      lines: {total, ignored, matched, missed, skipped, invalid: stats.invalid, binary: stats.binary, truncated: filter.truncated + stats.overlong},
      failures,
      elapsed,
      bytes,
    }
    if (filter.prefregex) report.prefregex = {regex: filter.prefregex.expanded, hits: filter.prefregex.hits}
    if (matchedLines) report.matchedLines = matchedLines
    report.missedLines = missedLines
    report.ignoredLines = ignoredLines
    return report
  }

  /** What LOG resolved to, for the report header. */
  get log(): RegexReport['log'] {
    const encoding = this.splitter.encoding
    const input = this.input
    switch (input.kind) {
      case 'stdin':
        return {kind: 'stdin', name: '-', encoding}
      case 'lines':
        return {kind: 'line', name: this.logArg, encoding}
      case 'files':
        return input.files.length === 1 && input.pattern !== undefined && !/[*?[\]{}]/.test(input.pattern)
          ? {kind: 'file', name: input.files[0]!, files: input.files, encoding}
          : {kind: 'files', name: input.pattern, files: input.files, encoding}
    }
  }
}

/** Resolve and run in one call (no hooks). */
export async function runRegex(opts: RegexOptions, collect: CollectOptions = {}, hooks: RunHooks = {}): Promise<RegexReport> {
  const s = await RegexSession.open(opts)
  return s.run(collect, hooks)
}
