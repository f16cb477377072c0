/**
 * Time zones for date conversion: the process zone (`local`), UTC, fixed offsets (fail2ban's
 * `logtimezone` forms), POSIX TZ strings with DST rules and IANA names (through `Intl`).
 *
 * Local wall-clock time → UTC (`localToUtc`) is deterministic around DST transitions, with the
 * same choice as JavaScript's `Date` and Temporal's "compatible" disambiguation:
 *   - a wall time that occurs twice (overlap, clocks going back) resolves to the EARLIER instant,
 *     i.e. the offset in effect before the transition (usually the DST one);
 *   - a wall time that does not exist (gap, clocks going forward) is read with the offset in
 *     effect before the transition, which lands after the gap (02:30 in a 02:00→03:00 gap gives
 *     03:30 DST). This is also what glibc `mktime` (and so fail2ban) returns for gap times; for
 *     overlaps glibc depends on the previous call, so no choice can match it every time.
 */
import {ZONE_ABBREVIATIONS} from './abbreviations.js'
import {daysFromCivil, daysInMonth, isLeapYear, wallSeconds, yearOfDays} from './civil.js'

export interface TimeZone {
  readonly name: string
  /** Offset of local time from UTC at the given instant, in seconds east of UTC. */
  offsetAt(utcSeconds: number): number
  /** Unix seconds of a local wall-clock time (month 1–12). */
  localToUtc(y: number, mo: number, d: number, h: number, mi: number, s: number): number
  /** Unix seconds of local wall seconds (`wallSeconds` of a local time): localToUtc without the calendar. */
  wallToUtc?(wall: number): number
}

/** Search window for local→UTC: any real offset is within ±26 h. */
const WINDOW = 30 * 3600

abstract class ZoneBase implements TimeZone {
  constructor(readonly name: string) {}
  abstract offsetAt(utcSeconds: number): number

  localToUtc(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
    return this.wallToUtc(wallSeconds(y, mo, d, h, mi, s))
  }

  /** UTC of local wall seconds (see the module comment for gaps and overlaps). */
  wallToUtc(w: number): number {
    const before = this.offsetAt(w - WINDOW)
    const after = this.offsetAt(w + WINDOW)
    const u1 = w - before
    if (before === after) {
      if (u1 + this.offsetAt(u1) === w) return u1
      // More than one transition within the window (rare): settle on a consistent offset.
      const o = this.offsetAt(u1)
      const u = w - o
      return u + this.offsetAt(u) === w ? Math.min(u, u1) : u1
    }
    const u2 = w - after
    const ok1 = u1 + this.offsetAt(u1) === w
    const ok2 = u2 + this.offsetAt(u2) === w
    if (ok1 && ok2) return Math.min(u1, u2) // overlap: the earlier instant
    if (ok1) return u1
    if (ok2) return u2
    return u1 // gap: the offset before the transition
  }
}

class FixedZone extends ZoneBase {
  constructor(
    name: string,
    readonly offset: number,
  ) {
    super(name)
  }
  offsetAt(): number {
    return this.offset
  }
  override wallToUtc(w: number): number {
    return w - this.offset
  }
}

function formatOffset(off: number): string {
  if (off === 0) return 'UTC'
  const a = Math.abs(off)
  const hh = Math.floor(a / 3600)
  const mm = Math.floor((a % 3600) / 60)
  const ss = a % 60
  return `UTC${off < 0 ? '-' : '+'}${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}${ss ? ':' + String(ss).padStart(2, '0') : ''}`
}

/** A fixed-offset zone (seconds east of UTC). */
export function fixedZone(offsetSeconds: number, name?: string): TimeZone {
  return new FixedZone(name ?? formatOffset(offsetSeconds), offsetSeconds)
}

export const UTC: TimeZone = new FixedZone('UTC', 0)

// ---------------------------------------------------------------------------------------------
// POSIX TZ strings

/** A POSIX DST rule date: `Jn`, `n` or `Mm.w.d`. */
interface RuleDate {
  kind: 'J' | 'n' | 'M'
  n: number // Jn / n day number, or M month
  w: number
  d: number
  time: number // seconds after local midnight (may be negative or > 24 h)
}

class PosixZone extends ZoneBase {
  private cacheYear = NaN
  private cacheStart = 0
  private cacheEnd = 0

  constructor(
    name: string,
    readonly std: number,
    readonly dst: number | undefined,
    readonly start: RuleDate | undefined,
    readonly end: RuleDate | undefined,
  ) {
    super(name)
  }

  private ruleDay(r: RuleDate, y: number): number {
    if (r.kind === 'J') {
      // 1…365, February 29 never counted.
      return daysFromCivil(y, 1, 1) + r.n - 1 + (isLeapYear(y) && r.n >= 60 ? 1 : 0)
    }
    if (r.kind === 'n') return daysFromCivil(y, 1, 1) + r.n
    const first = daysFromCivil(y, r.n, 1)
    const wd1 = (((first + 4) % 7) + 7) % 7 // Sunday = 0; 1970-01-01 was a Thursday
    let day = 1 + ((r.d - wd1 + 7) % 7) + (r.w - 1) * 7
    const dim = daysInMonth(y, r.n)
    while (day > dim) day -= 7
    return first + day - 1
  }

  private transitions(y: number): void {
    if (y === this.cacheYear) return
    this.cacheYear = y
    // The start time is given in standard time, the end time in DST.
    this.cacheStart = this.ruleDay(this.start!, y) * 86400 + this.start!.time - this.std
    this.cacheEnd = this.ruleDay(this.end!, y) * 86400 + this.end!.time - this.dst!
  }

  offsetAt(u: number): number {
    if (this.dst === undefined) return this.std
    const y = yearOfDays(Math.floor((u + this.std) / 86400))
    this.transitions(y)
    const s = this.cacheStart
    const e = this.cacheEnd
    const inDst = s < e ? u >= s && u < e : !(u >= e && u < s)
    return inDst ? this.dst : this.std
  }
}

/** Parse `[+-]hh[:mm[:ss]]`; returns seconds and the index after it, or undefined. */
function posixTime(s: string, i: number, maxHours: number): [number, number] | undefined {
  const m = /^([+-]?)(\d{1,3})(?::(\d{1,2})(?::(\d{1,2}))?)?/.exec(s.slice(i))
  if (!m) return undefined
  const h = Number(m[2])
  const mi = m[3] === undefined ? 0 : Number(m[3])
  const se = m[4] === undefined ? 0 : Number(m[4])
  if (h > maxHours || mi > 59 || se > 59) return undefined
  const v = h * 3600 + mi * 60 + se
  return [m[1] === '-' ? -v : v, i + m[0].length]
}

function posixName(s: string, i: number): [string, number] | undefined {
  if (s[i] === '<') {
    const j = s.indexOf('>', i)
    if (j < 0) return undefined
    const n = s.slice(i + 1, j)
    return /^[A-Za-z0-9+-]{3,}$/.test(n) ? [n, j + 1] : undefined
  }
  const m = /^[A-Za-z]{3,}/.exec(s.slice(i))
  return m ? [m[0], i + m[0].length] : undefined
}

function posixRule(s: string, i: number): [RuleDate, number] | undefined {
  const rest = s.slice(i)
  let m: RegExpExecArray | null
  let r: RuleDate
  if ((m = /^M(\d{1,2})\.(\d)\.(\d)/.exec(rest))) {
    r = {kind: 'M', n: Number(m[1]), w: Number(m[2]), d: Number(m[3]), time: 7200}
    if (r.n < 1 || r.n > 12 || r.w < 1 || r.w > 5 || r.d > 6) return undefined
  } else if ((m = /^J(\d{1,3})/.exec(rest))) {
    r = {kind: 'J', n: Number(m[1]), w: 0, d: 0, time: 7200}
    if (r.n < 1 || r.n > 365) return undefined
  } else if ((m = /^(\d{1,3})/.exec(rest))) {
    r = {kind: 'n', n: Number(m[1]), w: 0, d: 0, time: 7200}
    if (r.n > 365) return undefined
  } else return undefined
  let j = i + m[0].length
  if (s[j] === '/') {
    const t = posixTime(s, j + 1, 167)
    if (!t) return undefined
    r.time = t[0]
    j = t[1]
  }
  return [r, j]
}

/** Parse a POSIX TZ string (`CET-1CEST,M3.5.0,M10.5.0/3`); undefined when it is not one. */
function parsePosix(spec: string): PosixZone | undefined {
  const std = posixName(spec, 0)
  if (!std) return undefined
  const so = posixTime(spec, std[1], 24)
  if (!so) return undefined
  const stdOff = -so[0] // POSIX offsets are west of UTC
  let i = so[1]
  if (i === spec.length) return new PosixZone(spec, stdOff, undefined, undefined, undefined)
  const dst = posixName(spec, i)
  if (!dst) return undefined
  i = dst[1]
  let dstOff = stdOff + 3600
  if (i < spec.length && spec[i] !== ',') {
    const d = posixTime(spec, i, 24)
    if (!d) return undefined
    dstOff = -d[0]
    i = d[1]
  }
  let rules = spec.slice(i)
  if (rules === '') rules = ',M3.2.0,M11.1.0' // the traditional default (US rules)
  if (rules[0] !== ',') return undefined
  const a = posixRule(rules, 1)
  if (!a || rules[a[1]] !== ',') return undefined
  const b = posixRule(rules, a[1] + 1)
  if (!b || b[1] !== rules.length) return undefined
  return new PosixZone(spec, stdOff, dstOff, a[0], b[0])
}

// ---------------------------------------------------------------------------------------------
// IANA zones through Intl

interface DayOffsets {
  o0: number
  o1: number
  t: number // first second with offset o1
}

class IanaZone extends ZoneBase {
  private readonly fmt: Intl.DateTimeFormat
  private readonly days = new Map<number, DayOffsets>()

  constructor(name: string) {
    super(name)
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    })
  }

  /** Exact offset at a whole second, through Intl (slow). */
  private raw(u: number): number {
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, bc = false
    for (const p of this.fmt.formatToParts(new Date(u * 1000))) {
      switch (p.type) {
        case 'year': y = Number(p.value); break
        case 'month': mo = Number(p.value); break
        case 'day': d = Number(p.value); break
        case 'hour': h = Number(p.value); break
        case 'minute': mi = Number(p.value); break
        case 'second': s = Number(p.value); break
        case 'era': bc = p.value.startsWith('B'); break
      }
    }
    if (bc) y = 1 - y
    return wallSeconds(y, mo, d, h, mi, s) - u
  }

  offsetAt(utcSeconds: number): number {
    const u = Math.floor(utcSeconds)
    const day = Math.floor(u / 86400)
    let e = this.days.get(day)
    if (e === undefined) {
      const base = day * 86400
      const o0 = this.raw(base)
      const o1 = this.raw(base + 86399)
      let t = base + 86400
      if (o0 !== o1) {
        let lo = base // offset o0 at lo
        let hi = base + 86399 // offset o1 at hi
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2)
          if (this.raw(mid) === o0) lo = mid
          else hi = mid
        }
        t = hi
      }
      if (this.days.size > 4096) this.days.clear()
      e = {o0, o1, t}
      this.days.set(day, e)
    }
    return u < e.t ? e.o0 : e.o1
  }
}

function ianaName(spec: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', {timeZone: spec}).resolvedOptions().timeZone
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------

const FAIL2BAN_FIXED = /^([A-Z](?:[A-Z]{2,4})?)?([+-][01]\d(?::?\d{2})?)?$/

/**
 * fail2ban's fixed-offset zone syntax `[ABBR][±hh[[:]mm]]` (`UTC+0200`, `-05:00`, `CEST`,
 * `CET+0100` — the abbreviation's offset plus the explicit one). Seconds east of UTC, or
 * undefined when `s` has another form or names an unknown abbreviation.
 */
export function fixedOffsetOf(s: string): number | undefined {
  if (s === '') return undefined
  const m = FAIL2BAN_FIXED.exec(s)
  if (!m) return undefined
  let off = 0
  if (m[1] !== undefined) {
    const a = ZONE_ABBREVIATIONS.get(m[1])
    if (a === undefined) return undefined
    off = a
  }
  const o = m[2]
  if (o !== undefined) {
    const sign = o.charCodeAt(0) === 45 ? -1 : 1
    const hh = (o.charCodeAt(1) - 48) * 10 + (o.charCodeAt(2) - 48)
    let mm = 0
    if (o.length > 3) {
      const k = o.charCodeAt(3) === 58 ? 4 : 3
      mm = (o.charCodeAt(k) - 48) * 10 + (o.charCodeAt(k + 1) - 48)
    }
    off += sign * (hh * 3600 + mm * 60)
  }
  return off
}

let localZone: TimeZone | undefined

/** IANA names of UTC itself (offset 0 at every instant). */
const UTC_NAMES = new Set(['UTC', 'Etc/UTC', 'Etc/UCT', 'UCT', 'Etc/Universal', 'Universal', 'Etc/Zulu', 'Zulu', 'Etc/GMT', 'GMT', 'Etc/GMT0', 'GMT0', 'Etc/GMT+0', 'Etc/GMT-0', 'Etc/Greenwich', 'Greenwich'])

/** An IANA zone; UTC's names as a fixed zone (same offsets, without a lookup per conversion). */
function ianaZone(name: string): TimeZone {
  return UTC_NAMES.has(name) ? new FixedZone(name, 0) : new IanaZone(name)
}

/** The process zone: `TZ` (IANA name or POSIX string) if set, else the zone Intl reports. */
export function localTimeZone(): TimeZone {
  if (localZone) return localZone
  let tz = process.env['TZ']?.trim() ?? ''
  if (tz.startsWith(':')) tz = tz.slice(1)
  let zone: TimeZone | undefined
  if (tz !== '') {
    const iana = ianaName(tz)
    if (iana !== undefined) zone = ianaZone(iana)
    else zone = parsePosix(tz)
  }
  zone ??= ianaZone(Intl.DateTimeFormat().resolvedOptions().timeZone)
  localZone = zone
  return zone
}

/** Forget the cached process zone (tests that change `process.env.TZ`). */
export function resetLocalTimeZone(): void {
  localZone = undefined
}

/**
 * Parse a time zone spec:
 *  - `local` — the process zone (`TZ` environment variable, POSIX strings included);
 *  - `UTC`, `GMT`, `Z`, fail2ban `logtimezone` forms `UTC+0200`, `+02:00`, `-0500`, `CEST`,
 *    `CET+0100` (fixed offsets; abbreviations from the built-in table);
 *  - `UTC+2`, `GMT-05:30` — fixed offsets read ISO-style (east positive), NOT POSIX-style;
 *  - POSIX TZ strings `CET-01CEST-02,M3.5.0,M10.5.0`, `EST5EDT,M3.2.0,M11.1.0/2`, `<+03>-3`,
 *    with `Jn`/`n`/`Mm.w.d` rule dates and optional `/time` (a DST name without rules gets the
 *    US default `M3.2.0,M11.1.0`);
 *  - IANA names (`Europe/Zurich`) through `Intl`.
 */
export function parseTimeZone(spec: string): TimeZone {
  const s = spec.trim()
  if (s === '') throw new Error('empty time zone')
  if (/^local$/i.test(s)) return localTimeZone()
  const fixed = fixedOffsetOf(s)
  if (fixed !== undefined) return fixed === 0 && /^(?:UTC|GMT|Z)$/.test(s) ? UTC : new FixedZone(s, fixed)
  const loose = /^(?:UTC|GMT)([+-])(\d{1,2})(?::?(\d\d))?$/i.exec(s)
  if (loose) {
    const hh = Number(loose[2])
    const mm = loose[3] === undefined ? 0 : Number(loose[3])
    if (hh > 24 || mm > 59) throw new Error(`bad time zone offset: "${spec}"`)
    return new FixedZone(s, (loose[1] === '-' ? -1 : 1) * (hh * 3600 + mm * 60))
  }
  if (s.includes(',')) {
    const p = parsePosix(s)
    if (p) return p
    throw new Error(`bad POSIX TZ string: "${spec}"`)
  }
  const iana = ianaName(s)
  if (iana !== undefined) return iana === 'UTC' || iana === 'Etc/UTC' ? UTC : new IanaZone(iana)
  const p = parsePosix(s)
  if (p) return p
  throw new Error(`unknown or unsupported time zone: "${spec}" (use local, UTC, UTC+hhmm, an IANA name or a POSIX TZ string)`)
}

