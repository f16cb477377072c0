/**
 * The failJSON sample harness (fail2ban-corpus/SPEC.md §6): runs every filter of a filter
 * directory against its annotated sample log and reports, per filter, which samples passed.
 *
 * Layouts understood:
 *   - `DIR/filter.d/NAME.conf` + `DIR/logs/NAME` (the corpus layout);
 *   - fail2ban's source tree: `DIR/config/filter.d` + `DIR/fail2ban/tests/files/logs`, plus the
 *     test-only `zzz-*.conf` filters of `DIR/fail2ban/tests/config/filter.d`;
 *   - spylog's own `config/filters` + `testcases/` (same format).
 *
 * The runner never throws for bad input: unusable files (missing directory or log, bad JSON in a
 * directive, a filter that does not load, an expression it cannot evaluate) become `error`
 * problems of the filter concerned.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import {ConfigError} from '../fail2ban/errors.js'
import {loadFilterFile} from '../fail2ban/filterfile.js'
import {hostExpansion} from '../fail2ban/tags.js'
import {parseTimeZone, type TimeZone} from '../dates/timezone.js'
import {Fail2banFilter, type FilterRuntimeOptions} from '../filters/fail2ban.js'
import type {Filter} from '../filters/filter.js'
import type {FilterMatch, LineResult} from '../filters/types.js'
import {canonicalAddress} from '../net/address.js'
import {isDir} from '../fsutil.js'

/** fail2ban's test clock: 2005-08-14 10:00:00 UTC. */
export const DEFAULT_NOW = 1124013600
/** fail2ban's test time zone (POSIX rule, Central European Time). */
export const DEFAULT_TIMEZONE = 'CET-01CEST-02,M3.5.0,M10.5.0'

// ------------------------------------------------------------------------------------------------
// Public types

export interface FilterSource {
  /** A `filter.d`-style directory. */
  dir: string
  /** Only `zzz-*.conf` files are tests (fail2ban's `tests/config/filter.d`). */
  zzzOnly?: boolean
}

export interface TestTree {
  /** fail2ban filter.d directories (ignored when `provider` is given). */
  filterSources: FilterSource[]
  logsDir: string
  /**
   * Where the filters under test come from, when not from filter.d files: e.g. spylog's Lua
   * configuration (see spylog.ts). The harness runs exactly the Filter objects it builds.
   */
  provider?: FilterProvider
}

/** A set of filters to test: their names and a way to build each with caller options. */
export interface FilterProvider {
  /** Test name → the file that defines the filter (for reports). */
  list(): Map<string, string>
  /** Build a fresh filter; throws (ConfigError, PatternError…) when it cannot. */
  build(name: string, params: Record<string, string>, runtime: FilterRuntimeOptions): Filter
}

/** fail2ban's filter.d files as a provider. */
export function fail2banProvider(sources: readonly FilterSource[]): FilterProvider {
  let tests: Map<string, string> | undefined
  return {
    list: () => (tests ??= listFilterTests(sources)),
    build(name, params, runtime) {
      const file = (tests ??= listFilterTests(sources)).get(name)
      if (file === undefined) throw new ConfigError(`unknown filter "${name}"`)
      return new Fail2banFilter(loadFilterFile(file, params), runtime)
    },
  }
}

export interface HarnessOptions extends TestTree {
  /** Filter names to run (default: every filter found). */
  names?: readonly string[]
  /** Harness "now", Unix seconds. */
  now?: number
  /** Harness time zone (any `parseTimeZone` spec). */
  timezone?: string
  /** Fail unless at least this many filter tests exist (fail2ban checks ≥ 10); only when `names` is empty. */
  minFilterTests?: number
  /** Called before each filter test (the CLI spinner). */
  onProgress?: (name: string, index: number, total: number) => void
}

/** The regex(es) a failure is about. */
export interface InvolvedRegex {
  kind: 'failregex' | 'prefregex' | 'ignoreregex'
  index: number
  regex: string
}

/** One sample that did not meet its expectation with one option set. */
export interface SampleFailure {
  file: string
  line: number
  /** The line as fed (journal prefix included). */
  sample: string
  /** Option set label, e.g. `sshd[mode=aggressive]`. */
  options: string
  /** The failJSON object (`{}` for an unannotated sample). */
  expected: Record<string, unknown>
  /** What the filter produced. */
  found: FoundResult
  /** Why it failed. */
  message: string
  regexes: InvolvedRegex[]
}

export interface FoundMatch {
  regex: number
  id: string | undefined
  time: number | undefined
  /** `time` in the harness zone, `YYYY-MM-DDTHH:MM:SS[.ffffff]`. */
  localTime: string | undefined
  attempts: number
  data: Record<string, unknown>
}

export interface FoundResult {
  /** Failures that count (not nofail, not pending). */
  matches: FoundMatch[]
  /** Whether the prefregex matched (true when none). */
  prefregex: boolean
  /** Ignoreregexes that discarded a match. */
  ignoredBy: number[]
  /** Time the date detector found (undefined: none). */
  lineTime: number | undefined
}

export type ProblemKind = 'error' | 'missing-log' | 'coverage' | 'greedy' | 'count'

export interface Problem {
  kind: ProblemKind
  message: string
  file?: string
  line?: number
}

export interface FilterReport {
  name: string
  /** The filter file. */
  file: string
  /** Sample lines checked with at least one option set. */
  samples: number
  passed: number
  failed: number
  /** Sample lines not checked (condition-excluded blocks, constraints excluding every option set). */
  skipped: number
  /** Distinct option sets instantiated. */
  optionSets: number
  /** Sample × option-set checks made. */
  checks: number
  failures: SampleFailure[]
  problems: Problem[]
}

export interface HarnessReport {
  filters: FilterReport[]
  /** Problems not tied to one filter (unknown name, too few tests). */
  problems: Problem[]
  /** Passed samples. */
  passed: number
  /** Failed samples plus problems (each problem counts once). */
  failed: number
  /** Any `error` problem: the input was (partly) unusable. */
  unusable: boolean
  /**
   * Distinct failJSON sample lines (file:line) over all filter tests: a line checked by several
   * tests (an addFILE'd log) counts once, and passes only if it passed in every test.
   */
  annotated: {total: number; passed: number; failed: number}
}

// ------------------------------------------------------------------------------------------------
// Layout


/**
 * The filter and log directories of a fail2ban tree: `DIR/filter.d` + `DIR/logs`, or fail2ban's
 * source layout. ConfigError when neither is there.
 */
export function locateFail2banTree(root: string): TestTree {
  if (!isDir(root)) throw new ConfigError(`fail2ban directory not found: ${root}`)
  const flat = {filters: path.join(root, 'filter.d'), logs: path.join(root, 'logs')}
  if (isDir(flat.filters)) {
    if (!isDir(flat.logs)) throw new ConfigError(`sample log directory not found: ${flat.logs}`)
    return {filterSources: [{dir: flat.filters}], logsDir: flat.logs}
  }
  const src = {
    filters: path.join(root, 'config', 'filter.d'),
    logs: path.join(root, 'fail2ban', 'tests', 'files', 'logs'),
    testFilters: path.join(root, 'fail2ban', 'tests', 'config', 'filter.d'),
  }
  if (isDir(src.filters)) {
    if (!isDir(src.logs)) throw new ConfigError(`sample log directory not found: ${src.logs}`)
    const filterSources: FilterSource[] = [{dir: src.filters}]
    if (isDir(src.testFilters)) filterSources.push({dir: src.testFilters, zzzOnly: true})
    return {filterSources, logsDir: src.logs}
  }
  throw new ConfigError(`no filter directory in ${root} (expected ${flat.filters} or ${src.filters})`)
}

/** The filter tests of a tree: name → filter file, in name order. */
export function listFilterTests(sources: readonly FilterSource[]): Map<string, string> {
  const found = new Map<string, string>()
  for (const src of sources) {
    if (!isDir(src.dir)) throw new ConfigError(`filter directory not found: ${src.dir}`)
    for (const f of fs.readdirSync(src.dir).sort()) {
      if (!f.endsWith('.conf') || f.endsWith('common.conf') || f.startsWith('.')) continue
      if (src.zzzOnly && !f.startsWith('zzz-')) continue
      const name = f.slice(0, -'.conf'.length)
      const file = path.join(src.dir, f)
      if (!found.has(name) && fs.statSync(file).isFile()) found.set(name, file)
    }
  }
  return new Map([...found].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)))
}

// ------------------------------------------------------------------------------------------------
// Expressions of `test.condition` and `constraint`: a tiny, safe subset of Python

export class ExprError extends Error {}

type PyValue = string | number | boolean | null | PyValue[] | {[k: string]: PyValue}

interface Token {
  t: 'str' | 'num' | 'name' | 'op' | 'end'
  v: string
  pos: number
}

function tokenize(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i]
    if (c === ' ' || c === '\t') {
      i++
      continue
    }
    const start = i
    if (c === "'" || c === '"') {
      let v = ''
      i++
      for (;;) {
        if (i >= src.length) throw new ExprError(`unterminated string at column ${start + 1}`)
        const d = src[i]
        if (d === c) {
          i++
          break
        }
        if (d === '\\' && i + 1 < src.length) {
          const e = src[i + 1]
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === '\\' || e === "'" || e === '"' ? e : '\\' + e
          i += 2
          continue
        }
        v += d
        i++
      }
      out.push({t: 'str', v, pos: start})
    } else if (/[0-9]/.test(c)) {
      const m = /^\d+(?:\.\d+)?/.exec(src.slice(i))!
      i += m[0].length
      out.push({t: 'num', v: m[0], pos: start})
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_]\w*/.exec(src.slice(i))!
      i += m[0].length
      out.push({t: 'name', v: m[0], pos: start})
    } else {
      const two = src.slice(i, i + 2)
      if (two === '==' || two === '!=') {
        out.push({t: 'op', v: two, pos: start})
        i += 2
      } else if ('()[].,'.includes(c)) {
        out.push({t: 'op', v: c, pos: start})
        i++
      } else throw new ExprError(`unsupported character ${JSON.stringify(c)} at column ${start + 1}`)
    }
  }
  out.push({t: 'end', v: '', pos: src.length})
  return out
}

function pyTruthy(v: PyValue): boolean {
  if (v === null || v === false || v === 0 || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (typeof v === 'object') return Object.keys(v).length > 0
  return true
}

function pyEqual(a: PyValue, b: PyValue): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  const ra = a as Record<string, PyValue>
  const rb = b as Record<string, PyValue>
  return ka.every((k) => Object.hasOwn(rb, k) && pyEqual(ra[k], rb[k]))
}

/**
 * Evaluates the Python expression forms the sample logs use — `name == 'x'`, `name != 'x'`,
 * `opts.get('k') == 'v'`, `opts.get('k', 'd')`, `opts['k']`, `in`/`not in`, `and`/`or`/`not`,
 * parentheses, string/number/True/False/None literals — with the variables `name` (the filter
 * under test) and `opts` (the option set). Anything else throws ExprError; nothing is `eval`ed.
 */
export function evaluateExpression(src: string, vars: {name: string; opts: Record<string, unknown>}): boolean {
  const toks = tokenize(src)
  let p = 0
  const peek = (): Token => toks[p]
  const isOp = (v: string): boolean => toks[p].t === 'op' && toks[p].v === v
  const isWord = (v: string): boolean => toks[p].t === 'name' && toks[p].v === v
  const fail = (what: string): never => {
    const tk = peek()
    throw new ExprError(`${what} at column ${tk.pos + 1}${tk.t === 'end' ? ' (end of expression)' : `: ${JSON.stringify(tk.v)}`}`)
  }
  const expect = (v: string): void => {
    if (!isOp(v)) fail(`expected "${v}"`)
    p++
  }

  const orExpr = (): PyValue => {
    let v = andExpr()
    while (isWord('or')) {
      p++
      const r = andExpr()
      v = pyTruthy(v) ? v : r
    }
    return v
  }
  const andExpr = (): PyValue => {
    let v = notExpr()
    while (isWord('and')) {
      p++
      const r = notExpr()
      v = pyTruthy(v) ? r : v
    }
    return v
  }
  const notExpr = (): PyValue => {
    if (isWord('not')) {
      p++
      return !pyTruthy(notExpr())
    }
    return comparison()
  }
  const comparison = (): PyValue => {
    let left = primary()
    let result: PyValue = left
    let chained = false
    for (;;) {
      let op: string
      if (isOp('==') || isOp('!=')) op = toks[p++].v
      else if (isWord('in')) {
        op = 'in'
        p++
      } else if (isWord('not') && toks[p + 1].t === 'name' && toks[p + 1].v === 'in') {
        op = 'not in'
        p += 2
      } else break
      const right = primary()
      let r: boolean
      if (op === '==') r = pyEqual(left, right)
      else if (op === '!=') r = !pyEqual(left, right)
      else {
        let has: boolean
        if (typeof right === 'string') {
          if (typeof left !== 'string') throw new ExprError(`"in <string>" needs a string on the left`)
          has = right.includes(left)
        } else if (Array.isArray(right)) has = right.some((x) => pyEqual(x, left))
        else if (right !== null && typeof right === 'object') has = typeof left === 'string' && Object.hasOwn(right, left)
        else throw new ExprError(`"in" needs a string, list or dict on the right`)
        r = op === 'in' ? has : !has
      }
      // Python chains comparisons: a == b == c ⇔ a == b and b == c
      if (!chained) result = r
      else result = (result as boolean) && r
      chained = true
      left = right
    }
    return result
  }
  const primary = (): PyValue => {
    const tk = peek()
    let v: PyValue
    if (tk.t === 'str') {
      p++
      v = tk.v
      while (peek().t === 'str') v += toks[p++].v // implicit concatenation
    } else if (tk.t === 'num') {
      p++
      v = Number(tk.v)
    } else if (isOp('(')) {
      p++
      v = orExpr()
      expect(')')
    } else if (tk.t === 'name') {
      p++
      switch (tk.v) {
        case 'True': v = true; break
        case 'False': v = false; break
        case 'None': v = null; break
        case 'name': v = vars.name; break
        case 'opts': v = vars.opts as {[k: string]: PyValue}; break
        default: throw new ExprError(`unknown name "${tk.v}" at column ${tk.pos + 1} (only name and opts are defined)`)
      }
    } else return fail('expected a value')
    // postfix: .get(...) and [...]
    for (;;) {
      if (isOp('.')) {
        p++
        const m = peek()
        if (m.t !== 'name' || m.v !== 'get') fail('only the .get() method is supported')
        p++
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ExprError(`.get() on a value that is not a dict at column ${m.pos + 1}`)
        expect('(')
        const key = orExpr()
        let dflt: PyValue = null
        if (isOp(',')) {
          p++
          dflt = orExpr()
        }
        expect(')')
        const d = v as Record<string, PyValue>
        v = typeof key === 'string' && Object.hasOwn(d, key) ? d[key] : dflt
      } else if (isOp('[')) {
        const at = peek().pos
        p++
        const key = orExpr()
        expect(']')
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          const d = v as Record<string, PyValue>
          if (typeof key !== 'string' || !Object.hasOwn(d, key)) throw new ExprError(`KeyError: ${JSON.stringify(key)} at column ${at + 1}`)
          v = d[key]
        } else if (typeof v === 'string' || Array.isArray(v)) {
          if (typeof key !== 'number' || !Number.isInteger(key)) throw new ExprError(`index must be an integer at column ${at + 1}`)
          const i = key < 0 ? v.length + key : key
          if (i < 0 || i >= v.length) throw new ExprError(`IndexError at column ${at + 1}`)
          v = v[i]
        } else throw new ExprError(`value is not subscriptable at column ${at + 1}`)
      } else break
    }
    return v
  }

  const v = orExpr()
  if (peek().t !== 'end') fail('unexpected text')
  return pyTruthy(v)
}

// ------------------------------------------------------------------------------------------------
// Greedy catch-all lint (SPEC §6.5)

/**
 * fail2ban's check for a greedy `.*`/`.+` before `<HOST>`: true (bad) when some `<HOST>`
 * expansion in `regex` is preceded by `.*`/`.+` (not followed by `?`) with no `$`/`^` in
 * between, and followed either by another `.*`/`.+` or by text whose last character is not `$`.
 */
export function greedyCatchAll(regex: string, host: string = hostExpansion()): boolean {
  for (let p = regex.indexOf(host); p >= 0; p = regex.indexOf(host, p + 1)) {
    const before = regex.slice(0, p)
    let greedyBefore = false
    for (let q = 0; q + 1 < before.length; q++) {
      if (before[q] !== '.' || (before[q + 1] !== '*' && before[q + 1] !== '+')) continue
      if (regex[q + 2] === '?') continue
      const between = before.slice(q + 2)
      if (!between.includes('$') && !between.includes('^')) {
        greedyBefore = true
        break
      }
    }
    if (!greedyBefore) continue
    const after = regex.slice(p + host.length).replace(/\n$/, '')
    if (/\.[+*]/.test(after) || (after !== '' && !after.endsWith('$'))) return true
  }
  return false
}

/** fail2ban's self-test of the greedy check (testReWrongGreedyCatchAll), with our own texts. */
export function greedyCheckWorks(): boolean {
  const h = hostExpansion()
  return greedyCatchAll(`a .* b${h} c`, h) &&
    greedyCatchAll(`a .+ b${h} c .* d$`, h) &&
    !greedyCatchAll(`a .* b${h} c$`, h) &&
    !greedyCatchAll(`a .*? b${h} c`, h) &&
    !greedyCatchAll(`a .+? b${h} c .* d$`, h)
}

// ------------------------------------------------------------------------------------------------
// Helpers

const DIRECTIVE = /^#+ ?(failJSON|fileOptions|filterOptions|addFILE):([^\n]+)$/

type Json = Record<string, unknown>

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Python-ish repr of a JSON value, for option-set labels and messages. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (v === undefined) return 'None'
  return JSON.stringify(v) ?? String(v)
}

/** Local wall time of `t` in `zone`: `YYYY-MM-DDTHH:MM:SS[.ffffff]`. */
export function formatLocal(t: number, zone: TimeZone): string {
  const whole = Math.floor(t)
  const frac = t - whole
  const d = new Date((whole + zone.offsetAt(whole)) * 1000)
  const p2 = (n: number): string => String(n).padStart(2, '0')
  let s = `${String(d.getUTCFullYear()).padStart(4, '0')}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}T` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`
  if (frac > 5e-7) s += '.' + String(Math.round(frac * 1e6)).padStart(6, '0')
  return s
}

const TIME_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})T(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?$/

/** A failJSON `time` (local `%Y-%m-%dT%H:%M:%S[.%f]`) as Unix seconds in `zone`. */
export function parseExpectedTime(s: string, zone: TimeZone): number {
  const m = TIME_RE.exec(s)
  if (!m) throw new ExprError(`bad time ${JSON.stringify(s)} (expected YYYY-MM-DDTHH:MM:SS[.ffffff])`)
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number)
  const dim = new Date(Date.UTC(y, mo, 0)).getUTCDate()
  if (mo < 1 || mo > 12 || d < 1 || d > dim || h > 23 || mi > 59 || sec > 59 || y < 1) {
    throw new ExprError(`bad time ${JSON.stringify(s)} (out of range)`)
  }
  const frac = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0')) / 1e6
  return zone.localToUtc(y, mo, d, h, mi, sec) + frac
}

/** Option values are strings for the filter reader; numbers/booleans are converted like Python's str(). */
function optionString(k: string, v: unknown): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number') return String(v)
  if (typeof v === 'boolean') return v ? 'True' : 'False'
  throw new ExprError(`option "${k}" must be a string, not ${show(v)}`)
}

function sameId(found: FilterMatch, dataHost: unknown, expected: unknown): boolean {
  const id = dataHost ?? found.id
  if (id === expected) return true
  if (typeof id !== 'string' || typeof expected !== 'string') return false
  const a = canonicalAddress(id)
  return a !== undefined && a === canonicalAddress(expected)
}

function sortedEqual(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false
  const key = (x: unknown): string => JSON.stringify(x) ?? 'undefined'
  const sa = a.map(key).sort()
  const sb = b.map(key).sort()
  return sa.every((x, i) => x === sb[i])
}

function optionsLabel(name: string, opts: Json): string {
  const keys = Object.keys(opts)
  if (keys.length === 0) return name
  return `${name}[${keys.map((k) => `${k}=${typeof opts[k] === 'string' ? opts[k] : show(opts[k])}`).join(', ')}]`
}

/** Cache key of an option set: equal iff the option dicts are equal (key order irrelevant). */
function optionsKey(opts: Json): string {
  const keys = Object.keys(opts).sort()
  if (keys.length === 0) return ''
  return JSON.stringify(keys.map((k) => [k, opts[k]]))
}

function errorText(e: unknown): string {
  if (e instanceof ConfigError || e instanceof ExprError) return e.message
  if (e instanceof Error) return `${e.name}: ${e.message}`
  return String(e)
}

function readLines(file: string): string[] {
  const text = new TextDecoder('utf-8').decode(fs.readFileSync(file))
  const lines = text.split('\n')
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  return lines
}

// ------------------------------------------------------------------------------------------------
// One filter test

interface Instance {
  key: string
  label: string
  filter: Filter | undefined
  error: string | undefined
  /** failregex indices that produced a result (incl. nofail/pending). */
  used: Set<number>
}

interface Entry {
  inst: Instance
  /** The option set incl. `test.*` keys (fileOptions merged). */
  opts: Json
}

interface Context {
  now: number
  zone: TimeZone
  host: string
}

function runFilterTest(name: string, filterFile: string, provider: FilterProvider, logsDir: string, ctx: Context, annotated: Map<string, boolean>): FilterReport {
  const report: FilterReport = {
    name, file: filterFile, samples: 0, passed: 0, failed: 0, skipped: 0, optionSets: 0, checks: 0, failures: [], problems: [],
  }
  const mainLog = path.join(logsDir, name)
  if (!fs.existsSync(mainLog)) {
    report.problems.push({kind: 'missing-log', message: `no sample log for filter "${name}" (expected ${mainLog})`})
    return report
  }

  const instances = new Map<string, Instance>()
  const usedRegexTexts = new Set<string>()
  let current: Entry[] = []
  let fileOptions: Json = {}

  const instance = (fltOpts: Json, filterName: string | undefined): Instance => {
    const key = name + (filterName || optionsKey(fltOpts))
    let inst = instances.get(key)
    if (inst) return inst
    inst = {key, label: filterName ? name + filterName : optionsLabel(name, fltOpts), filter: undefined, error: undefined, used: new Set()}
    instances.set(key, inst)
    try {
      const params: Record<string, string> = {}
      for (const [k, v] of Object.entries(fltOpts)) params[k] = optionString(k, v)
      inst.filter = provider.build(name, params, {timezone: ctx.zone, now: () => ctx.now, checkAll: true})
    } catch (e) {
      inst.error = errorText(e)
      report.problems.push({kind: 'error', message: `${inst.label}: filter does not load: ${inst.error}`})
      return inst
    }
    for (const [i, fr] of inst.filter.failregex.entries()) {
      if (greedyCatchAll(fr.expanded, ctx.host)) {
        report.problems.push({
          kind: 'greedy',
          message: `${inst.label}: failregex ${i + 1} has a greedy catch-all before <HOST> and is not hard-anchored at its end ` +
            `(or has another catch-all after <HOST>): ${fr.source}`,
        })
      }
    }
    return inst
  }

  const files = [name]
  for (let fi = 0; fi < files.length; fi++) {
    const logFile = path.join(logsDir, files[fi])
    let lines: string[]
    try {
      lines = readLines(logFile)
    } catch (e) {
      report.problems.push({kind: 'error', message: `cannot read sample log: ${errorText(e)}`, file: logFile})
      continue
    }
    let skipBlock = false
    for (let ln = 0; ln < lines.length; ln++) {
      const raw = lines[ln]
      const lineNo = ln + 1
      const at = (message: string, kind: ProblemKind = 'error'): void => {
        report.problems.push({kind, message, file: logFile, line: lineNo})
      }
      const stripped = raw.endsWith('\r') ? raw.slice(0, -1) : raw
      const dm = DIRECTIVE.exec(stripped)
      let expectation: Json
      let sample: string
      let sampleLine: number
      if (dm) {
        const kind = dm[1]
        let value: unknown
        try {
          value = JSON.parse(dm[2])
        } catch (e) {
          at(`bad JSON in ${kind}: ${(e as Error).message}`)
          if (kind === 'failJSON') ln++ // its sample line cannot be checked
          else if (kind === 'filterOptions') {
            current = []
            skipBlock = true
          }
          continue
        }
        if (kind === 'fileOptions') {
          if (!isObject(value)) {
            at(`fileOptions must be a JSON object`)
            continue
          }
          fileOptions = value
          continue
        }
        if (kind === 'addFILE') {
          if (typeof value !== 'string' || value === '') at(`addFILE needs a file name string, not ${show(value)}`)
          else files.push(value)
          continue
        }
        if (kind === 'filterOptions') {
          current = []
          skipBlock = false
          for (const item of Array.isArray(value) ? value : [value]) {
            if (!isObject(item)) {
              at(`filterOptions entries must be JSON objects, not ${show(item)}`)
              continue
            }
            const opts: Json = {...fileOptions, ...item}
            const cond = opts['test.condition']
            if (cond !== undefined && cond !== null && cond !== '' && cond !== false) {
              try {
                if (typeof cond !== 'string') throw new ExprError(`test.condition must be a string`)
                skipBlock = !evaluateExpression(cond, {name, opts})
              } catch (e) {
                at(`test.condition ${show(cond)}: ${errorText(e)}`)
                skipBlock = true
              }
            }
            if (skipBlock) continue
            const fltOpts: Json = {}
            for (const [k, v] of Object.entries(opts)) if (!k.startsWith('test.')) fltOpts[k] = v
            const fn = opts['test.filter-name']
            current.push({inst: instance(fltOpts, typeof fn === 'string' && fn !== '' ? fn : undefined), opts})
          }
          continue
        }
        // failJSON: the next physical line is the sample
        if (ln + 1 >= lines.length) {
          at(`failJSON without a sample line (end of file)`)
          continue
        }
        if (!isObject(value)) {
          at(`failJSON must be a JSON object, not ${show(value)}`)
          ln++
          continue
        }
        expectation = value
        ln++
        sample = lines[ln]
        sampleLine = ln + 1
      } else if (skipBlock || raw.startsWith('#') || raw.trim() === '') {
        continue
      } else {
        expectation = {}
        sample = raw
        sampleLine = lineNo
      }
      if (skipBlock) {
        report.skipped++
        continue
      }
      if (current.length === 0) current = [{inst: instance({}, undefined), opts: {}}]

      sample = sample.replace(/[\r\n]+$/, '')
      let checked = 0
      let ok = true
      for (const entry of current) {
        const constraint = expectation['constraint']
        if (constraint !== undefined && constraint !== null && constraint !== '' && constraint !== false) {
          try {
            if (typeof constraint !== 'string') throw new ExprError('constraint must be a string')
            if (!evaluateExpression(constraint, {name, opts: entry.opts})) continue
          } catch (e) {
            report.problems.push({kind: 'error', message: `constraint ${show(constraint)}: ${errorText(e)}`, file: logFile, line: sampleLine - 1})
            ok = false
            checked++
            break
          }
        }
        checked++
        report.checks++
        const failure = checkSample(entry, sample, expectation, ctx, usedRegexTexts)
        if (failure) {
          ok = false
          report.failures.push({file: logFile, line: sampleLine, ...failure})
        }
      }
      if (checked === 0) {
        report.skipped++
        continue
      }
      report.samples++
      if (dm) {
        const k = `${logFile}:${sampleLine}`
        annotated.set(k, (annotated.get(k) ?? true) && ok)
      }
      if (ok) report.passed++
      else report.failed++
    }
  }

  // Coverage: every failregex of every option set used, here or (same text) in another set.
  report.optionSets = instances.size
  for (const inst of instances.values()) {
    if (!inst.filter) continue
    for (const [i, fr] of inst.filter.failregex.entries()) {
      if (inst.used.has(i) || usedRegexTexts.has(fr.expanded)) continue
      report.problems.push({kind: 'coverage', message: `${inst.label}: failregex ${i + 1} has no samples: ${fr.source}`})
    }
  }
  return report
}

type CheckFailure = Omit<SampleFailure, 'file' | 'line'>

/** Feeds one sample to one option set and checks the expectation (SPEC §6.4). */
function checkSample(entry: Entry, line: string, exp: Json, ctx: Context, usedRegexTexts: Set<string>): CheckFailure | undefined {
  const inst = entry.inst
  const journal = entry.opts['logtype'] === 'journal'
  let sample = line
  if (journal) {
    const prefix = entry.opts['test.prefix-line']
    if (typeof prefix === 'string' && prefix !== '') sample = prefix + line
  }
  const found: FoundResult = {matches: [], prefregex: true, ignoredBy: [], lineTime: undefined}
  const base = {sample, options: inst.label, expected: exp, found}
  if (!inst.filter) {
    return {...base, message: `filter not loaded: ${inst.error ?? 'unknown error'}`, regexes: []}
  }
  const flt = inst.filter
  let res: LineResult
  try {
    res = flt.processLine(sample, journal)
  } catch (e) {
    return {...base, message: `filter error: ${errorText(e)}`, regexes: []}
  }
  found.prefregex = res.prefregex
  found.ignoredBy = res.ignoredBy
  found.lineTime = res.time

  const real: FilterMatch[] = []
  for (const m of res.matches) {
    inst.used.add(m.regex)
    usedRegexTexts.add(flt.failregex[m.regex].expanded)
    if (m.id === undefined || m.pending || m.nofail) continue
    real.push(m)
  }
  found.matches = real.map((m) => ({
    regex: m.regex,
    id: m.id,
    time: m.time,
    localTime: m.time === undefined ? undefined : formatLocal(m.time, ctx.zone),
    attempts: m.lines.length,
    data: m.data,
  }))
  const involved = (): InvolvedRegex[] => {
    const out: InvolvedRegex[] = real.map((m) => ({kind: 'failregex', index: m.regex, regex: flt.failregex[m.regex].source}))
    if (out.length === 0) {
      if (!res.prefregex && flt.prefregex) out.push({kind: 'prefregex', index: 0, regex: flt.prefregex.source})
      for (const i of res.ignoredBy) out.push({kind: 'ignoreregex', index: i, regex: flt.ignoreregex[i].source})
    }
    return out
  }
  const failed = (message: string): CheckFailure => ({...base, message, regexes: involved()})

  const wantMatch = pyTruthyJson(exp['match'])
  if (real.length === 0) {
    if (!wantMatch) return undefined
    let why = 'no failregex matched'
    if (!res.prefregex) why = 'prefregex did not match'
    else if (res.ignoredBy.length > 0) why = `matched but ignored by ignoreregex ${res.ignoredBy.map((i) => i + 1).join(', ')}`
    else if (res.matches.length > 0) why = 'matched only as nofail/pending (not a failure)'
    return failed(`expected a match, found none (${why})`)
  }
  if (!wantMatch) return failed(`expected no match, found ${real.length === 1 ? 'one' : real.length}`)
  if (real.length > 1) return failed(`expected exactly one match, found ${real.length} (failregexes ${real.map((m) => m.regex + 1).join(', ')})`)

  const m = real[0]
  const problems: string[] = []
  for (const [k, v] of Object.entries(exp)) {
    if (k === 'time' || k === 'match' || k === 'desc' || k === 'constraint') continue
    let fv: unknown = m.data[k]
    if (fv === undefined || fv === null) {
      fv = undefined
      if (k === 'host') fv = m.id
      else if (k === 'attempts') fv = m.lines.length
    }
    let same: boolean
    if (k === 'host') same = sameId(m, m.data['host'], v)
    else if (Array.isArray(fv)) same = Array.isArray(v) && sortedEqual(fv, v)
    else if (v === null) same = fv === undefined || fv === null
    else same = fv === v
    if (!same) problems.push(`${k}: expected ${show(v)}, found ${show(fv)}`)
  }
  const t = exp['time']
  if (t !== undefined && t !== null) {
    if (typeof t !== 'string') problems.push(`time: expected a string, not ${show(t)}`)
    else {
      let want: number | undefined
      try {
        want = parseExpectedTime(t, ctx.zone)
      } catch (e) {
        problems.push(`time: ${errorText(e)}`)
      }
      if (want !== undefined) {
        if (m.time === undefined) problems.push(`time: expected ${t}, found no time`)
        else if (Math.abs(m.time - want) > 5e-7) {
          problems.push(`time: expected ${t} (${want}), found ${formatLocal(m.time, ctx.zone)} (${m.time}, ${m.time - want > 0 ? '+' : ''}${+(m.time - want).toFixed(6)} s)`)
        }
      }
    }
  }
  return problems.length > 0 ? failed(problems.join('; ')) : undefined
}

function pyTruthyJson(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (isObject(v)) return Object.keys(v).length > 0
  return true
}

// ------------------------------------------------------------------------------------------------
// Runner

/** Runs the filter tests of a tree. Never throws for bad input (see the module comment). */
export async function runTestcases(opts: HarnessOptions): Promise<HarnessReport> {
  const report: HarnessReport = {filters: [], problems: [], passed: 0, failed: 0, unusable: false, annotated: {total: 0, passed: 0, failed: 0}}
  const annotated = new Map<string, boolean>()
  const finish = (): HarnessReport => {
    for (const ok of annotated.values()) {
      report.annotated.total++
      if (ok) report.annotated.passed++
      else report.annotated.failed++
    }
    for (const f of report.filters) {
      report.passed += f.passed
      report.failed += f.failed + f.problems.length
      if (f.problems.some((p) => p.kind === 'error')) report.unusable = true
    }
    report.failed += report.problems.length
    if (report.problems.some((p) => p.kind === 'error')) report.unusable = true
    return report
  }

  let zone: TimeZone
  try {
    zone = parseTimeZone(opts.timezone ?? DEFAULT_TIMEZONE)
  } catch (e) {
    report.problems.push({kind: 'error', message: `bad time zone: ${errorText(e)}`})
    return finish()
  }
  const ctx: Context = {now: opts.now ?? DEFAULT_NOW, zone, host: hostExpansion()}
  const provider = opts.provider ?? fail2banProvider(opts.filterSources)
  if (!greedyCheckWorks()) report.problems.push({kind: 'error', message: 'internal: the greedy catch-all check does not work'})

  let tests: Map<string, string>
  try {
    if (!isDir(opts.logsDir)) throw new ConfigError(`sample log directory not found: ${opts.logsDir}`)
    tests = provider.list()
  } catch (e) {
    report.problems.push({kind: 'error', message: errorText(e)})
    return finish()
  }
  let selected: [string, string][]
  if (opts.names && opts.names.length > 0) {
    selected = []
    for (const n of new Set(opts.names)) {
      const f = tests.get(n)
      if (f === undefined) report.problems.push({kind: 'error', message: `unknown filter "${n}" (no ${n}.conf among the filter tests)`})
      else selected.push([n, f])
    }
  } else {
    selected = [...tests]
    const min = opts.minFilterTests ?? 0
    if (selected.length < min) report.problems.push({kind: 'count', message: `expected at least ${min} filter tests, found ${selected.length}`})
  }

  for (const [i, [name, file]] of selected.entries()) {
    opts.onProgress?.(name, i, selected.length)
    // let a spinner breathe between filters
    await new Promise<void>((resolve) => setImmediate(resolve))
    report.filters.push(runFilterTest(name, file, provider, opts.logsDir, ctx, annotated))
  }
  return finish()
}
