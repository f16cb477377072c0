/**
 * A lua-spylog filter (FILTER{} of a lua-spylog configuration) with lua-spylog's matching
 * semantics (moteus/lua-spylog src/filter/lib/spylog/filter/regex.lua, the filter service
 * src/filter/main.lua):
 *
 * 1. `hint`: a plain substring that must occur in the line, else nothing else runs.
 * 2. The failregexes are tried in order; the first that matches wins (`checkAll` — report mode —
 *    also tries the others). Lua patterns behave as `string.match`, PCRE as lrexlib's
 *    `rex:match`: the values are the captures, or the whole match when the regex has none. With
 *    PCRE a first capture that did not participate (lrexlib returns false) does not count as a
 *    match: the next failregex is tried, exactly as lua-spylog's `if ... then` test does.
 * 3. `ignoreregex`: when any of them is found in the line, the line is dropped (no further
 *    failregex is tried).
 * 4. Captures → fields:
 *    - without `capture`: one value is the host (date = now); two or more: the first is the date,
 *      the second the host (a second value that is missing makes the first the host); further
 *      values are dropped;
 *    - with `capture` (one name list per failregex): value k gets name k; `host` and `date` are
 *      two of the names, any other name is kept as data (e.g. `number`, `value`, `user`);
 *    - engine `fail2ban` (spylog extension): fail2ban tags name the captures; the host is the
 *      ip4/ip6/dns/host capture (or `fid`), the date the `date` capture (`<F-DATE>`).
 * 5. `exclude`: a match whose host is inside one of the addresses/networks is dropped.
 * 6. The date: a captured `date` text is read with `date_format` (parseDate), else with fail2ban's
 *    default date templates; without a captured date, the `datepattern` detection of the line
 *    (spylog extension; for engine fail2ban the date text is cut out of the line first, as
 *    fail2ban does), else the current time (lua-spylog stamps such matches `os.date()`).
 * 7. The host is normalised (canonicalAddress); a host that is not an address is kept as text.
 *
 * Capture filters (`cfilter`) are not applied here: they belong to the stage after the filter
 * (they are jail-side objects in the model, shared by filters and jails).
 */
import ipaddr from 'ipaddr.js'
import {ConfigError} from '../fail2ban/errors.js'
import {expandTags, rewriteInlineFlags} from '../fail2ban/tags.js'
import type {FilterConfig, Origin} from '../config/model.js'
import {DateDetector} from '../dates/detector.js'
import {parseDate} from '../dates/strptime.js'
import {canonicalAddress} from '../net/address.js'
import {isAscii} from '../patterns/ascii.js'
import {compileLua, type LuaPattern} from '../patterns/lua.js'
import {compilePython} from '../patterns/pyre.js'
import {PatternError, type CompiledRegex} from '../patterns/types.js'
import type {FilterRuntimeOptions} from './fail2ban.js'
import type {Filter, FilterDates, FilterRegexInfo} from './filter.js'
import type {FilterMatch, LineResult} from './types.js'

export type LuaSpylogFilterOptions = FilterRuntimeOptions

const DEFAULT_MAX_LINE = 65536
/** Named captures that give the host for the fail2ban engine, in order of preference. */
const HOST_GROUPS = ['ip4', 'ip6', 'dns', 'host', 'fid'] as const
const EMPTY: readonly string[] = []

type Value = string | number | undefined

/** One compiled failregex or ignoreregex. */
class Regex implements FilterRegexInfo {
  hits = 0
  /** JS result slots of Python groups 1…n (pcre/fail2ban), for positional values. */
  readonly slots: readonly number[]
  /** fail2ban engine: [name, slot] of every named group. */
  readonly named: readonly (readonly [string, number])[]
  /** fail2ban engine: slots of the host groups, in preference order. */
  readonly hostSlots: readonly number[]
  readonly dateSlot: number
  readonly required: readonly string[]

  constructor(
    readonly source: string,
    readonly expanded: string,
    readonly re: CompiledRegex | undefined,
    readonly lua: LuaPattern | undefined,
  ) {
    if (re !== undefined) {
      const py = (re as CompiledRegex & {pyIndex?: readonly number[]}).pyIndex ?? []
      this.slots = py.slice(1)
      this.named = [...re.groupNames]
      this.hostSlots = HOST_GROUPS.flatMap((g) => (re.groupNames.has(g) ? [re.groupNames.get(g)!] : []))
      this.dateSlot = re.groupNames.get('date') ?? -1
      this.required = re.ignoreCase ? EMPTY : re.required
    } else {
      this.slots = []
      this.named = []
      this.hostSlots = []
      this.dateSlot = -1
      this.required = lua!.required
    }
  }
}

/** Addresses and networks (exclude lists), matched on canonical addresses. */
export class AddressSet {
  private readonly exact = new Set<string>()
  private readonly ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = []

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const slash = e.indexOf('/')
      if (slash < 0) {
        const c = canonicalAddress(e)
        if (c !== undefined) this.exact.add(c)
      } else {
        try {
          this.ranges.push(ipaddr.parseCIDR(e))
        } catch {
          // Validated by the configuration reader; an invalid entry excludes nothing.
        }
      }
    }
  }

  get size(): number {
    return this.exact.size + this.ranges.length
  }

  /** Whether `host` (any textual form) is one of the addresses or inside one of the networks. */
  has(host: string): boolean {
    const c = canonicalAddress(host)
    if (c === undefined) return false
    if (this.exact.has(c)) return true
    if (this.ranges.length === 0) return false
    const a = ipaddr.parse(c)
    for (const [net, len] of this.ranges) {
      if (a.kind() === net.kind() && a.match(net, len)) return true
    }
    return false
  }
}

function hasAny(line: string, lits: readonly string[]): boolean {
  for (let i = 0; i < lits.length; i++) if (line.includes(lits[i]!)) return true
  return false
}

export class LuaSpylogFilter implements Filter {
  readonly name: string
  readonly prefregex = undefined
  readonly failregex: readonly Regex[]
  readonly ignoreregex: readonly Regex[]
  readonly maxlines = 1
  readonly dates: FilterDates
  readonly engine: FilterConfig['engine']
  /** Lines cut to maxLineLength so far. */
  truncated = 0
  /** Matches dropped by `exclude`. */
  excluded = 0
  /** Captured date texts that could not be read. */
  badDates = 0

  private readonly hint: string | undefined
  private readonly capture: readonly (readonly string[])[] | undefined
  private readonly exclude: AddressSet | undefined
  private readonly dateFormat: string | undefined
  private readonly lineDates: DateDetector | undefined
  /** fail2ban's default templates, for captured dates without date_format (built on first use: ~15 ms). */
  private capturedDates: DateDetector | undefined
  private readonly wantsCapturedDates: boolean
  private readonly templateList: {readonly name: string; hits: number}[] = []
  /** Index of the captured-date templates in `dates.templates`. */
  private readonly capturedOffset: number
  private readonly formatTemplate: {readonly name: string; hits: number} | undefined
  private readonly cutDate: boolean
  private readonly checkAll: boolean
  private readonly now: () => number
  private readonly maxLineLength: number
  private readonly dateOpts: {timezone?: FilterRuntimeOptions['timezone']; now: () => number}
  /** Template index (in dates.templates) of the last captured date read, -1 when none. */
  private lastDateTemplate = -1

  constructor(cfg: FilterConfig, opts: LuaSpylogFilterOptions = {}) {
    this.name = cfg.name
    this.engine = cfg.engine
    this.hint = cfg.hint === '' ? undefined : cfg.hint
    this.checkAll = !!opts.checkAll
    this.now = opts.now ?? (() => Date.now() / 1000)
    this.maxLineLength = opts.maxLineLength ?? DEFAULT_MAX_LINE
    this.dateOpts = {timezone: opts.timezone, now: this.now}
    if (cfg.failregex.length === 0) throw filterError(cfg, 'failregex', 'no failregex given')
    this.failregex = cfg.failregex.map((r, i) => compileRegex(cfg, 'failregex', r, i))
    this.ignoreregex = cfg.ignoreregex.map((r, i) => compileRegex(cfg, 'ignoreregex', r, i))
    if (cfg.capture !== undefined) {
      if (cfg.engine === 'fail2ban') throw filterError(cfg, 'capture', 'the fail2ban engine names its captures with tags (<HOST>, <F-USER>…); `capture` cannot be used with it')
      if (cfg.capture.length !== cfg.failregex.length) {
        throw filterError(cfg, 'capture', `${cfg.capture.length} capture list(s) for ${cfg.failregex.length} failregex(es): give one list per failregex`)
      }
      this.capture = cfg.capture
    }
    if (cfg.engine === 'fail2ban') {
      for (const [i, r] of this.failregex.entries()) {
        if (r.hostSlots.length === 0) {
          throw filterError(cfg, 'failregex', `failregex ${i + 1} has no host group (<HOST>, <ADDR>, <IP4>, <IP6>, <DNS>, <F-ID> or <F-HOST>): ${r.source}`)
        }
      }
    }
    this.exclude = cfg.exclude.length > 0 ? new AddressSet(cfg.exclude) : undefined
    this.dateFormat = cfg.dateFormat
    if (this.dateFormat !== undefined) {
      try {
        parseDate('', this.dateFormat)
      } catch (e) {
        throw filterError(cfg, 'date_format', (e as Error).message)
      }
    }
    this.cutDate = cfg.engine === 'fail2ban'
    const templates = this.templateList
    if (cfg.datepattern !== undefined) {
      try {
        this.lineDates = new DateDetector(cfg.datepattern, this.dateOpts)
      } catch (e) {
        throw filterError(cfg, 'datepattern', `bad datepattern: ${(e as Error).message}`)
      }
      templates.push(...this.lineDates.templates)
    }
    this.capturedOffset = templates.length
    const mayCapture = this.mayCaptureDate()
    if (mayCapture && this.dateFormat !== undefined) {
      this.formatTemplate = {name: this.dateFormat, hits: 0}
      templates.push(this.formatTemplate)
    }
    this.wantsCapturedDates = mayCapture && this.dateFormat === undefined
    const self = this
    this.dates = {
      get templates() {
        if (self.wantsCapturedDates) self.captured()
        return self.templateList
      },
    }
  }

  private captured(): DateDetector {
    if (this.capturedDates === undefined) {
      this.capturedDates = new DateDetector(undefined, this.dateOpts)
      this.templateList.push(...this.capturedDates.templates)
    }
    return this.capturedDates
  }

  /** Whether some failregex can yield a `date` value. */
  private mayCaptureDate(): boolean {
    if (this.engine === 'fail2ban') return this.failregex.some((r) => r.dateSlot >= 0)
    if (this.capture !== undefined) return this.capture.some((names) => names.includes('date'))
    return true
  }

  reset(): void {
    // lua-spylog filters keep no state between lines.
  }

  processLine(input: string, noDate = false): LineResult {
    let line = input.charCodeAt(input.length - 1) === 13 ? input.slice(0, -1) : input
    if (line.length > this.maxLineLength) {
      line = line.slice(0, this.maxLineLength)
      this.truncated++
    }
    const result: LineResult = {matches: [], ignoredBy: [], prefregex: true, dateTemplate: -1, time: undefined}
    if (this.hint !== undefined && !line.includes(this.hint)) return result

    let text = line
    let ascii = isAscii(line)
    let lineTime: number | undefined
    if (this.lineDates !== undefined && !noDate) {
      const hit = this.lineDates.detect(line, ascii)
      if (hit !== null) {
        result.dateTemplate = hit.template
        lineTime = hit.time
        if (this.cutDate && hit.end > hit.start) {
          text = line.slice(0, hit.start) + line.slice(hit.end)
          if (!ascii) ascii = isAscii(text)
        }
      }
    }

    let ignoreChecked = false
    const fail = this.failregex
    for (let i = 0; i < fail.length; i++) {
      const r = fail[i]!
      if (r.required.length !== 0 && !hasAny(text, r.required)) continue
      let caps: (string | number)[] | null = null
      let m: RegExpExecArray | null = null
      if (r.lua !== undefined) {
        caps = r.lua.match(text)
        if (caps === null) continue
      } else {
        m = r.re!.exec(text, 0, ascii)
        if (m === null) continue
        // lrexlib: the first value is false when the first group did not participate, and
        // lua-spylog's `if ... then` then moves on to the next failregex.
        if (this.engine === 'pcre' && r.slots.length > 0 && m[r.slots[0]!] === undefined) continue
      }
      r.hits++
      if (!ignoreChecked && this.ignoreregex.length > 0) {
        ignoreChecked = true
        const j = this.ignored(text, ascii)
        if (j >= 0) {
          result.ignoredBy.push(j)
          return result
        }
      }
      const fm = this.failure(i, r, caps, m, line, lineTime, noDate)
      if (fm === undefined) {
        // Excluded host: lua-spylog drops the line.
        if (!this.checkAll) return result
        continue
      }
      result.matches.push(fm)
      if (result.time === undefined) result.time = fm.time
      if (this.lastDateTemplate >= 0 && result.dateTemplate < 0) result.dateTemplate = this.lastDateTemplate
      if (!this.checkAll) break
    }
    if (result.time === undefined && lineTime !== undefined) result.time = lineTime
    return result
  }

  /** Index of the first ignoreregex found in the line, or -1. */
  private ignored(text: string, ascii: boolean): number {
    const ign = this.ignoreregex
    for (let j = 0; j < ign.length; j++) {
      const ir = ign[j]!
      if (ir.required.length !== 0 && !hasAny(text, ir.required)) continue
      const hit = ir.lua !== undefined ? ir.lua.find(text) !== null : ir.re!.exec(text, 0, ascii) !== null
      if (hit) {
        ir.hits++
        return j
      }
    }
    return -1
  }

  /** The failure of one failregex match, or undefined when its host is excluded. */
  private failure(
    index: number, r: Regex, caps: (string | number)[] | null, m: RegExpExecArray | null,
    line: string, lineTime: number | undefined, noDate: boolean,
  ): FilterMatch | undefined {
    const data: Record<string, unknown> = {}
    let host: Value
    let date: Value
    if (this.engine === 'fail2ban') {
      const named = r.named
      for (let k = 0; k < named.length; k++) {
        const v = m![named[k]![1]]
        if (v !== undefined) data[named[k]![0]] = v
      }
      for (let k = 0; k < r.hostSlots.length && host === undefined; k++) host = m![r.hostSlots[k]!]
      if (r.dateSlot >= 0) date = m![r.dateSlot]
    } else if (this.capture !== undefined) {
      const names = this.capture[index]!
      for (let k = 0; k < names.length; k++) {
        const v = this.value(r, caps, m, k)
        if (v !== undefined) data[names[k]!] = v
      }
      host = data.host as Value
      date = data.date as Value
    } else {
      const first = this.value(r, caps, m, 0)
      const second = this.value(r, caps, m, 1)
      if (second === undefined) host = first
      else {
        date = first
        host = second
      }
      if (host !== undefined) data.host = host
      if (date !== undefined) data.date = date
    }

    let id: string | undefined
    let isAddress = false
    if (host !== undefined) {
      const text = String(host)
      if (this.exclude !== undefined && this.exclude.has(text)) {
        this.excluded++
        return undefined
      }
      const c = canonicalAddress(text)
      id = c ?? text
      isAddress = c !== undefined
    }

    let time: number | undefined
    this.lastDateTemplate = -1
    if (noDate) time = this.now()
    else if (date !== undefined) {
      time = this.readDate(String(date))
      if (time === undefined) this.badDates++
    } else time = lineTime ?? this.now()
    return {regex: index, id, isAddress, time, data, lines: [line], nofail: false, pending: false}
  }

  /** Positional value k (0-based) of a lua/pcre match; undefined for a missing or non-participating capture. */
  private value(r: Regex, caps: (string | number)[] | null, m: RegExpExecArray | null, k: number): Value {
    if (caps !== null) return caps[k]
    if (r.slots.length === 0) return k === 0 ? m![0] : undefined
    const slot = r.slots[k]
    return slot === undefined ? undefined : m![slot]
  }

  /** Unix seconds of a captured date text (sets lastDateTemplate), undefined when unreadable. */
  private readDate(text: string): number | undefined {
    if (this.dateFormat !== undefined) {
      const t = parseDate(text, this.dateFormat, this.dateOpts)
      if (t !== undefined) {
        this.formatTemplate!.hits++
        this.lastDateTemplate = this.capturedOffset
      }
      return t
    }
    const hit = this.captured().detect(text)
    if (hit === null) return undefined
    this.lastDateTemplate = this.capturedOffset + hit.template
    return hit.time
  }
}

function filterError(cfg: FilterConfig, field: string, message: string): ConfigError {
  const o: Origin = cfg.fieldOrigins?.[field] ?? cfg.origin
  return new ConfigError(message, o.file, o.line, `FILTER "${cfg.name}".${field}`)
}

function compileRegex(cfg: FilterConfig, field: 'failregex' | 'ignoreregex', source: string, index: number): Regex {
  try {
    switch (cfg.engine) {
      case 'lua':
        return new Regex(source, source, undefined, compileLua(source))
      case 'pcre':
        return new Regex(source, source, compilePython(source, {flavor: 'pcre', singleLine: true}), undefined)
      case 'fail2ban': {
        const expanded = rewriteInlineFlags(expandTags(source))
        return new Regex(source, expanded, compilePython(expanded, {singleLine: true}), undefined)
      }
    }
  } catch (e) {
    if (!(e instanceof PatternError)) throw e
    throw filterError(cfg, field, `${field} ${index + 1}: ${e.message}: ${source}`)
  }
}
