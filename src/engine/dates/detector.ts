/**
 * Date detection in log lines (SPEC §4.2, §5): the first template, in order, whose regex matches
 * the raw line wins (the stateless selection SPEC §5.6 verifies against the corpus). Its group 1
 * is the date text the caller cuts out of the line; the captured fields give the time.
 *
 * Everything is compiled in the constructor; `detect` runs the regexes and converts the winning
 * captures straight to a number.
 */
import {isAscii} from '../patterns/ascii.js'
import {compilePython, type FirstChars} from '../patterns/pyre.js'
import {PatternError, type CompiledRegex} from '../patterns/types.js'
import {convertFields, epochValue, Field, fieldSlots, longEpochValue, nowDependence, tai64nValue, type FieldSlots} from './convert.js'
import {TemplateKind, templatesFor, type TemplateSpec} from './templates.js'
import {localTimeZone, type TimeZone} from './timezone.js'
import {SYSLOG_TEMPLATE_SOURCE, SyslogDateMatcher} from './syslog-fast.js'

export interface DateHit {
  /** The cut range: group 1 of the template, in the raw line. */
  start: number
  end: number
  /**
   * Unix seconds; undefined when the date text cannot be converted (impossible date, unknown
   * zone) and when the cut range is empty (`{NONE}`): then the caller applies fail2ban's rule
   * (last date if less than 60 s old, else "now").
   */
  time: number | undefined
  /** Index into `templates`. */
  template: number
}

export interface DateOptions {
  /** Zone of dates without an explicit zone (default: the process zone, `TZ` honoured). */
  timezone?: TimeZone
  /** Unix seconds, default real clock. Read only for dates without a year or a day. */
  now?: () => number
  /** Always run the templates' regexes (no hand-written matcher): the reference in differential tests. */
  regexOnly?: boolean
}

interface Slot {
  readonly re: CompiledRegex
  readonly kind: TemplateKind
  readonly fields: FieldSlots
  /** JS index of Python group 1. */
  readonly g1: number
  /** JS index of the epoch value group. */
  readonly value: number
  /** JS index of the helper group capturing the rest of the line after group 1, or -1. */
  readonly tail: number
  readonly required: readonly string[]
  /** First characters of an anchored template (a line starting otherwise is skipped), if known. */
  readonly first: FirstChars | undefined
  /** JS index of the one `%S` group (-1 when none or several): see DateDetector.sameMinute. */
  readonly second: number
  /** JS indices of the other groups the conversion reads (fields and `%p`). */
  readonly others: readonly number[]
  /** The hand-written matcher standing for `re` (syslog-fast.ts), when there is one. */
  readonly fast: SyslogDateMatcher | undefined
}

const DATE_GROUP = '_spylog_date'
const VALUE_GROUP = '_spylog_value'
const TAIL_GROUP = '_spylog_tail'

export interface GroupSpan {
  /** Index of the opening parenthesis. */
  open: number
  /** Index of the closing parenthesis (-1 if unbalanced). */
  close: number
  /** Name of a `(?P<name>…)` group. */
  name?: string
}

/**
 * The capturing groups of a Python regex, in group-number order. Skips escapes, character
 * classes and comments (enough to locate groups; the regex is validated when compiled).
 */
export function capturingGroups(p: string): GroupSpan[] {
  const out: GroupSpan[] = []
  const stack: (GroupSpan | undefined)[] = []
  for (let i = 0; i < p.length; i++) {
    const c = p[i]
    if (c === '\\') {
      i++
    } else if (c === '[') {
      let j = i + 1
      if (p[j] === '^') j++
      if (p[j] === ']') j++
      for (; j < p.length && p[j] !== ']'; j++) if (p[j] === '\\') j++
      i = j
    } else if (c === '(') {
      if (p.startsWith('(?#', i)) {
        const j = p.indexOf(')', i)
        if (j < 0) break
        i = j
        continue
      }
      let g: GroupSpan | undefined
      if (p[i + 1] !== '?') g = {open: i, close: -1}
      else {
        const named = /^\(\?P?<([A-Za-z_]\w*)>/.exec(p.slice(i, i + 40))
        if (named) g = {open: i, close: -1, name: named[1]!}
      }
      if (g) out.push(g)
      stack.push(g)
    } else if (c === ')') {
      const g = stack.pop()
      if (g) g.close = i
    }
  }
  return out
}

/**
 * Prepare a template regex for compiling: make group 1 (and the epoch value group) named so that
 * they are found through `groupNames`, and, when text may follow group 1, capture the rest of the
 * line right after it (`(?=(?P<tail>[\s\S]*))`) so that the cut range is exact without match
 * indices.
 */
function instrument(t: TemplateSpec): {source: string; date: string; value: string | undefined; tail: boolean} {
  const p = t.regex
  const groups = capturingGroups(p)
  const g1 = groups[0]
  if (g1 === undefined || g1.close < 0) throw new PatternError(`date template ${JSON.stringify(t.name)} has no group 1`, p)
  const edits: {at: number; del: number; ins: string}[] = []
  const nameOf = (g: GroupSpan, fresh: string): string => {
    if (g.name !== undefined) return g.name
    edits.push({at: g.open, del: 1, ins: `(?P<${fresh}>`})
    return fresh
  }
  const date = nameOf(g1, DATE_GROUP)
  let value: string | undefined
  if (t.kind !== TemplateKind.Pattern && t.kind !== TemplateKind.Tai64n) {
    const gv = groups[t.valueGroup - 1]
    value = gv === undefined ? date : gv === g1 ? date : nameOf(gv, VALUE_GROUP)
  }
  const tail = t.kind === TemplateKind.Pattern && !t.group1AtEnd
  if (tail) edits.push({at: g1.close + 1, del: 0, ins: `(?=(?P<${TAIL_GROUP}>[\\s\\S]*))`})
  let source = p
  for (const e of edits.sort((a, b) => b.at - a.at)) source = source.slice(0, e.at) + e.ins + source.slice(e.at + e.del)
  return {source, date, value, tail}
}

function compile(t: TemplateSpec, regexOnly: boolean): Slot {
  const {source, date, value, tail} = instrument(t)
  let re: CompiledRegex
  try {
    re = compilePython(source)
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    throw new PatternError(`invalid date template ${JSON.stringify(t.name)}: ${msg}`, source)
  }
  const index = (name: string): number => {
    const i = re.groupNames.get(name)
    if (i === undefined) throw new PatternError(`date template ${JSON.stringify(t.name)}: group ${name} not found`, source)
    return i
  }
  const g1 = index(date)
  const fields = fieldSlots(re.groupNames)
  const seconds: number[] = []
  const others: number[] = []
  for (let k = 0; k < fields.slots.length; k += 2) (fields.slots[k + 1] === Field.Second ? seconds : others).push(fields.slots[k]!)
  if (fields.ampm >= 0) others.push(fields.ampm)
  return {
    second: seconds.length === 1 ? seconds[0]! : -1,
    others,
    re,
    kind: t.kind,
    fields,
    g1,
    value: value === undefined ? g1 : index(value),
    tail: tail ? index(TAIL_GROUP) : -1,
    required: re.required,
    first: (re as CompiledRegex & {first?: FirstChars}).first,
    fast: !regexOnly && source === SYSLOG_TEMPLATE_SOURCE && !tail ? new SyslogDateMatcher() : undefined,
  }
}

const realNow = (): number => Date.now() / 1000

export class DateDetector {
  readonly templates: ReadonlyArray<{readonly name: string; hits: number}>
  readonly none: boolean
  private readonly slots: readonly Slot[]
  private readonly tz: TimeZone
  private readonly now: () => number

  constructor(datepattern: string | undefined, opts: DateOptions = {}) {
    const specs = templatesFor(datepattern)
    if (specs.length === 0) throw new Error(`datepattern ${JSON.stringify(datepattern)} defines no date template`)
    this.slots = specs.map((t) => compile(t, opts.regexOnly === true))
    this.templates = specs.map((t) => ({name: t.name, hits: 0}))
    this.none = specs.length === 1 && specs[0]!.none === true
    this.tz = opts.timezone ?? localTimeZone()
    this.now = opts.now ?? realNow
  }

  /** How many templates have a hand-written matcher standing in for their regex (syslog-fast.ts). */
  get shortcuts(): number {
    return this.slots.filter((s) => s.fast !== undefined).length
  }

  /** The previous line's pattern-template date (see detect). */
  private lastTemplate = -1
  /** Its date text: lastLine[lastStart, lastEnd) (kept as positions: no slice per line). */
  private lastLine = ''
  private lastStart = 0
  private lastEnd = 0
  private lastTime: number | undefined
  /** The previous conversion's match, its seconds, and "now" dependence (see sameMinute). */
  private lastMatch: RegExpExecArray | null = null
  private lastSecond = -1
  private lastNow = NaN
  private lastMargin = 0
  /** The previous conversion's minute as the hand-written matcher numbers it (SyslogDateMatcher.minute), -1: none. */
  private lastMinute = -1

  /** Forget the previous conversion (the next date is converted from scratch). */
  forget(): void {
    this.lastTemplate = -1
    this.setLast('', 0, 0)
    this.lastTime = undefined
    this.lastMatch = null
    this.lastSecond = -1
    this.lastMinute = -1
  }

  private setLast(line: string, start: number, end: number): void {
    this.lastLine = line
    this.lastStart = start
    this.lastEnd = end
  }

  /**
   * Whether `text` is the previous conversion's date text, compared from the end (where
   * consecutive dates differ): captures are slices of their line, and `===` on two slices is a
   * call into the runtime.
   */
  private sameText(text: string): boolean {
    const from = this.lastStart
    let k = text.length
    if (k !== this.lastEnd - from) return false
    const last = this.lastLine
    while (k-- > 0) if (text.charCodeAt(k) !== last.charCodeAt(from + k)) return false
    return true
  }

  /** Whether "now" has moved too little since the previous conversion to change its inferred year or day. */
  private nowStill(): boolean {
    if (this.lastMargin === Infinity) return true
    const last = this.lastNow
    if (Number.isNaN(last)) return false
    return Math.abs(this.now() - last) + 3 * 3600 + 60 < this.lastMargin
  }

  /**
   * Whether `m` (a match of template `s`, the previous conversion's template) differs from the
   * previous conversion's match only in its seconds, both 0–59, so that its time is the previous
   * time shifted by the difference. That holds when every other field read is the same text
   * and the inferred year/day decisions cannot have changed: "now" has moved less than the
   * previous conversion's margin, with room for a change of the zone offset of "now" itself and
   * for the minute. Zone offsets are whole minutes (after 1974), so a local minute maps to a UTC
   * minute (or to none) as a whole.
   */
  private sameMinute(s: Slot, m: RegExpExecArray): boolean {
    const prev = this.lastMatch
    const lastTime = this.lastTime
    if (prev === null || lastTime === undefined || this.lastSecond < 0 || s.second < 0) return false
    if (!(lastTime >= WHOLE_MINUTE_OFFSETS)) return false
    const v = m[s.second]
    if (v === undefined || seconds(v) < 0) return false
    const others = s.others
    for (let k = 0; k < others.length; k++) if (m[others[k]!] !== prev[others[k]!]) return false
    return this.nowStill()
  }

  /** The date in `line`, or null when no template matches. `ascii`: whether `line` is pure ASCII, if known. */
  detect(line: string, ascii?: boolean): DateHit | null {
    const template = this.scan(line, ascii)
    return template < 0 ? null : {start: this.hitStart, end: this.hitEnd, time: this.hitTime, template}
  }

  /** After a scan that found a date: where its text starts and ends in the line, and its time. */
  hitStart = 0
  hitEnd = 0
  hitTime: number | undefined

  /**
   * detect() without a result object (the hot path reads a date on every line): the index of
   * the template that matched, its date left in hitStart, hitEnd and hitTime; -1 when none did.
   */
  scan(line: string, ascii?: boolean): number {
    const slots = this.slots
    const asc = ascii ?? isAscii(line)
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!
      const first = s.first
      if (first !== undefined && line.length > 0) {
        const c = line.charCodeAt(0)
        if (c < 128 ? first.ascii[c] === 0 : !first.other) continue
      }
      // Another line of the previous conversion's minute, read without the regex (see sameMinute).
      const fast = s.fast
      let fastEnd = 0
      if (fast !== undefined && asc && i === this.lastTemplate) {
        fastEnd = fast.match(line)
        if (fastEnd > 0 && fast.minute === this.lastMinute && this.lastTime! >= WHOLE_MINUTE_OFFSETS && this.nowStill()) {
          const time = this.lastTime! + (fast.second - this.lastSecond)
          this.setLast(line, 0, fastEnd)
          this.lastTime = time
          this.lastSecond = fast.second
          this.templates[i]!.hits++
          this.hitStart = 0
          this.hitEnd = fastEnd
          this.hitTime = time
          return i
        }
      }
      if (s.required.length !== 0 && !hasAny(line, s.required)) continue
      const m = s.re.exec(line, 0, asc)
      if (m === null) continue
      const g1 = m[s.g1]
      let start = 0
      let end = 0
      if (g1 !== undefined) {
        const rest = s.tail < 0 ? undefined : m[s.tail]
        end = rest === undefined ? m.index + m[0].length : line.length - rest.length
        start = end - g1.length
      }
      let time: number | undefined
      if (start !== end) {
        switch (s.kind) {
          case TemplateKind.Pattern:
            // Busy logs repeat the same timestamp on consecutive lines: reuse its conversion.
            if (i === this.lastTemplate && this.sameText(g1!)) time = this.lastTime
            else if (i === this.lastTemplate && this.sameMinute(s, m)) {
              // Another second of the previous date's minute: the same conversion, shifted.
              const sec = seconds(m[s.second]!)
              time = this.lastTime! + (sec - this.lastSecond)
              this.setLast(line, start, end)
              this.lastTime = time
              this.lastMatch = m
              this.lastSecond = sec
            } else {
              time = convertFields(m, s.fields, this.tz, this.now)
              this.lastTemplate = i
              this.setLast(line, start, end)
              this.lastTime = time
              this.lastMatch = m
              this.lastSecond = s.second >= 0 && m[s.second] !== undefined ? seconds(m[s.second]!) : -1
              this.lastNow = nowDependence.now
              this.lastMargin = nowDependence.margin
              // The hand-written matcher may take over from the next line of this minute on.
              this.lastMinute = -1
              if (fast !== undefined && asc && this.lastSecond >= 0 && time !== undefined && time >= WHOLE_MINUTE_OFFSETS) {
                if (fastEnd === 0) fastEnd = fast.match(line)
                if (fastEnd === end && fast.second === this.lastSecond) this.lastMinute = fast.minute
              }
            }
            break
          case TemplateKind.Epoch: {
            const v = m[s.value]
            time = v === undefined ? undefined : epochValue(v)
            break
          }
          case TemplateKind.LongEpoch: {
            const v = m[s.value]
            time = v === undefined ? undefined : longEpochValue(v)
            break
          }
          case TemplateKind.Tai64n:
            time = tai64nValue(g1!)
            break
        }
      }
      this.templates[i]!.hits++
      this.hitStart = start
      this.hitEnd = end
      this.hitTime = time
      return i
    }
    return -1
  }
}

/** A `%S` capture's value when it is 0–59 (one or two digits), else -1. */
function seconds(v: string): number {
  const n = v.length
  if (n === 0 || n > 2) return -1
  let x = 0
  for (let k = 0; k < n; k++) {
    const c = v.charCodeAt(k) - 48
    if (c < 0 || c > 9) return -1
    x = x * 10 + c
  }
  return x < 60 ? x : -1
}

/** Earliest time (Unix seconds) from which every zone's UTC offset is a whole number of minutes. */
const WHOLE_MINUTE_OFFSETS = 126230400 // 1974-01-01 (Liberia's -0:44:30 ended in 1972)

function hasAny(line: string, lits: readonly string[]): boolean {
  for (let i = 0; i < lits.length; i++) if (line.includes(lits[i]!)) return true
  return false
}
