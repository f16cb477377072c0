/**
 * Text rendering of a `spylog regex` run in fail2ban-regex's layout ("Running tests", "Use …",
 * "Results", "Failregex: N total", "Date template hits", "Lines: …"). Colour comes from the
 * caller as a Style (identity functions for plain text).
 */
import type {FilterSource} from './resolve.js'
import type {FailureDetail, RegexReport, RegexStat} from './report.js'

export interface Style {
  title(s: string): string
  good(s: string): string
  warn(s: string): string
  bad(s: string): string
  info(s: string): string
  dim(s: string): string
}

const id = (s: string): string => s
export const PLAIN: Style = {title: id, good: id, warn: id, bad: id, info: id, dim: id}

/** fail2ban-regex prints at most this many missed/ignored lines unless asked for all. */
export const SAMPLE_LINES = 20

function shortstr(s: string, max = 120): string {
  const one = s.replace(/\n/g, '\\n')
  return one.length > max ? `${one.slice(0, max - 3)}...` : one
}

/** `|- header` / `|  item` … / `` `- `` — fail2ban-regex's pprint_list. */
function list(items: readonly string[], header?: string): string[] {
  if (items.length === 0) return []
  const out: string[] = []
  if (header !== undefined) out.push(`|- ${header}`)
  for (const it of items) out.push(`|  ${it}`)
  out.push('`-')
  return out
}

export interface LogDescription {
  kind: 'file' | 'files' | 'stdin' | 'line'
  name: string
  files?: string[]
  encoding: string
}

/** The "Running tests" block. */
export function formatHeader(source: FilterSource, log: LogDescription, st: Style = PLAIN): string {
  const out = ['', st.title('Running tests'), st.title('============='), '']
  if (source.kind === 'line') out.push(`Use   failregex line : ${shortstr(source.regex ?? '')}`)
  else {
    const file = source.file ?? ''
    const parts = file.split(/[/\\]/)
    const basedir = parts.length > 2 ? parts.slice(0, -2).join('/') || '/' : '.'
    out.push(`Use   failregex filter file : ${source.name}, basedir: ${basedir}`)
    if (source.params && Object.keys(source.params).length > 0) out.push(`Use   filter options : ${JSON.stringify(source.params)}`)
  }
  if (source.ignore?.kind === 'line') out.push(`Use ignoreregex line : ${shortstr(source.ignore.regex ?? '')}`)
  else if (source.ignore?.kind === 'file') out.push(`Use ignoreregex file : ${source.ignore.file}`)
  if (source.dialect !== 'fail2ban') out.push(`Use          dialect : ${source.dialect}`)
  out.push(`Use      datepattern : ${source.datepattern === undefined ? 'Default Detectors' : shortstr(source.datepattern)}`)
  out.push(`Use         maxlines : ${source.maxlines}`)
  switch (log.kind) {
    case 'file':
      out.push(`Use         log file : ${log.name}`)
      break
    case 'files':
      out.push(`Use        log files : ${log.name} (${log.files?.length ?? 0} file${log.files?.length === 1 ? '' : 's'})`)
      break
    case 'stdin':
      out.push('Use         log file : - (standard input)')
      break
    case 'line': {
      const n = log.name.split('\n').length
      out.push(n > 1 ? `Use       multi line : ${n} line(s)` : `Use      single line : ${shortstr(log.name)}`)
      break
    }
  }
  if (log.kind !== 'line') out.push(`Use         encoding : ${log.encoding.toUpperCase()}`)
  out.push('')
  return out.join('\n') + '\n'
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n)
}

/** Unix seconds → local `YYYY-MM-DD HH:MM:SS`. */
export function formatTime(t: number | null | undefined): string {
  if (t === null || t === undefined || !Number.isFinite(t)) return '(no date)'
  const d = new Date(t * 1000)
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
}

const HIDDEN_DATA = new Set(['ip4', 'ip6', 'dns', 'fid', 'mlfid', 'content', 'mlfforget', 'mlfgained', 'nofail'])

function dataText(d: Record<string, unknown>): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(d)) {
    if (HIDDEN_DATA.has(k) || k.startsWith('cond_') || v === undefined || v === null || v === '') continue
    parts.push(`${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'string' ? v : JSON.stringify(v)}`)
  }
  return parts.join(' ')
}

function failureLine(f: FailureDetail, st: Style): string {
  const where = f.file === undefined ? `line ${f.line}` : `${f.file}:${f.line}`
  const data = dataText(f.data)
  return `    ${st.info(f.id)}  ${formatTime(f.time)}  ${st.dim(where)}${data ? '  ' + data : ''}`
}

function regexBlock(title: string, stats: readonly RegexStat[], verbose: boolean, st: Style): string[] {
  const total = stats.reduce((n, r) => n + r.hits, 0)
  const items: string[] = []
  for (const r of stats) {
    if (r.hits === 0 && !verbose) continue
    const n = String(r.index).padStart(2)
    items.push(`${n}) [${r.hits === 0 ? st.dim('0') : st.good(String(r.hits))}] ${r.regex}`)
    if (verbose && r.failures) for (const f of r.failures) items.push(failureLine(f, st))
  }
  return ['', st.title(`${title}: ${total} total`), ...list(items, ' #) [# of hits] regular expression')]
}

function linesBlock(kind: 'matched' | 'missed' | 'ignored', count: number, lines: readonly string[] | undefined, all: boolean): string[] {
  if (count === 0 || lines === undefined) return []
  const header = `${kind[0]!.toUpperCase()}${kind.slice(1)} line(s):`
  if (all || count < SAMPLE_LINES) return list(lines.map((l) => l.trimEnd()), header)
  return [`${header} too many to print.  Use --print-all-${kind} to print all ${count} lines`]
}

export interface ResultOptions {
  verbose?: boolean
  printAllMatched?: boolean
  printAllMissed?: boolean
  printAllIgnored?: boolean
}

/** Lines/s as an integer with thousands separators. */
export function rate(lines: number, seconds: number): string {
  return seconds > 0 ? Math.round(lines / seconds).toLocaleString('en-US') : '∞'
}

/** The "Results" block and the requested line lists. */
export function formatResults(r: RegexReport, opts: ResultOptions = {}, st: Style = PLAIN): string {
  const out: string[] = ['', st.title('Results'), st.title('=======')]
  if (r.prefregex) out.push('', st.title(`Prefregex: ${r.prefregex.hits} total`), ...list([r.prefregex.regex]))
  out.push(...regexBlock('Failregex', r.failregex, !!opts.verbose, st))
  out.push(...regexBlock('Ignoreregex', r.ignoreregex, !!opts.verbose, st))
  const dates = r.dateTemplates.filter((t) => opts.verbose || t.hits > 0).map((t) => `[${t.hits}] ${t.name}`)
  out.push('', st.title('Date template hits:'), ...list(dates, '[# of hits] date format'))
  const l = r.lines
  out.push('', `Lines: ${l.total} lines, ${st.info(`${l.ignored} ignored`)}, ${st.good(`${l.matched} matched`)}, ${st.warn(`${l.missed} missed`)}`)
  const odd: string[] = []
  if (l.invalid) odd.push(`${l.invalid} not valid ${r.log.encoding.toUpperCase()} (decoded with U+FFFD)`)
  if (l.binary) odd.push(`${l.binary} binary (NUL character)`)
  if (l.truncated) odd.push(`${l.truncated} cut to the maximum line length`)
  if (odd.length) out.push(st.warn(`Odd lines: ${odd.join(', ')}`))
  out.push(`[processed in ${r.elapsed.toFixed(2)} sec, ${rate(l.total + l.skipped, r.elapsed)} lines/s]`, '')
  if (opts.printAllMatched) out.push(...linesBlock('matched', l.matched, r.matchedLines, true))
  out.push(...linesBlock('ignored', l.ignored, r.ignoredLines, !!opts.printAllIgnored))
  out.push(...linesBlock('missed', l.missed, r.missedLines, !!opts.printAllMissed))
  return out.join('\n') + '\n'
}
