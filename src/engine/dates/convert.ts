/**
 * Captured strptime fields → Unix seconds, the way fail2ban's `reGroupDictStrptime` does it
 * (SPEC §5.3): 2-digit years + 2000, 12-hour clock, `%j` and `%U`/`%W` + weekday, zones as fixed
 * offsets, fraction dropped, missing year/day inferred from "now", impossible dates → undefined.
 *
 * Hot path: no allocation. A template precomputes `FieldSlots` (group index → field code, in
 * group order, which is also the order fail2ban applies them in) once.
 */
import {ZONE_ABBREVIATIONS} from './abbreviations.js'
import {daysFromCivil, daysInMonth, monthDayOfDays, weekdayOfDays, yearOfDays} from './civil.js'
import type {TimeZone} from './timezone.js'

export const enum Field {
  Year4 = 1, // Y
  Year2, // y
  Month, // m
  MonthName, // b, B
  Day, // d
  Hour, // H
  Hour12, // I (with p)
  Minute, // M
  Second, // S
  WeekdayName, // a, A
  WeekdayNum, // w
  YearDay, // j
  WeekSun, // U
  WeekMon, // W
  Zone, // z, Z
}

const FIELD_OF_GROUP: Record<string, Field> = {
  Y: Field.Year4, y: Field.Year2, m: Field.Month, b: Field.MonthName, B: Field.MonthName, d: Field.Day,
  H: Field.Hour, I: Field.Hour12, M: Field.Minute, S: Field.Second, a: Field.WeekdayName,
  A: Field.WeekdayName, w: Field.WeekdayNum, j: Field.YearDay, U: Field.WeekSun, W: Field.WeekMon,
  z: Field.Zone, Z: Field.Zone,
}

/** Group indices and field codes of one template, plus the `%p` group (or -1). */
export interface FieldSlots {
  /** Pairs: [groupIndex, Field, groupIndex, Field, …] sorted by group index. */
  readonly slots: Int32Array
  readonly ampm: number
}

/** Build the slots from a group-name → index map (names that are not fields are ignored). */
export function fieldSlots(groupNames: ReadonlyMap<string, number>): FieldSlots {
  const pairs: [number, Field][] = []
  let ampm = -1
  for (const [name, idx] of groupNames) {
    if (name === 'p') ampm = idx
    const f = FIELD_OF_GROUP[name]
    if (f !== undefined) pairs.push([idx, f])
  }
  pairs.sort((a, b) => a[0] - b[0])
  const slots = new Int32Array(pairs.length * 2)
  pairs.forEach(([idx, f], i) => {
    slots[2 * i] = idx
    slots[2 * i + 1] = f
  })
  return {slots, ampm}
}

/** Decimal value of a captured number (leading spaces allowed, like Python's `int()`). */
function num(s: string): number {
  let v = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) v = v * 10 + (c - 48)
    else if (c !== 32) return NaN
  }
  return v
}

const lower = (c: number): number => c | 0x20

/** Three lower-case letters packed into one number. */
const key3 = (s: string): number => (lower(s.charCodeAt(0)) << 16) | (lower(s.charCodeAt(1)) << 8) | lower(s.charCodeAt(2))

const MONTH_BY_KEY = new Map<number, number>(
  ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'].map((m, i) => [key3(m), i + 1]),
)
/** Monday = 0 … Sunday = 6. */
const WEEKDAY_BY_KEY = new Map<number, number>(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d, i) => [key3(d), i]))

/** Month (1–12) of a (full or abbreviated, any case) English month name, or NaN. */
export function monthOf(s: string): number {
  return s.length >= 3 ? (MONTH_BY_KEY.get(key3(s)) ?? NaN) : NaN
}

function isUpperAbbr(s: string, from: number, to: number): boolean {
  const n = to - from
  if (n !== 1 && (n < 3 || n > 5)) return false
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c < 65 || c > 90) return false
  }
  return true
}

/**
 * Offset (seconds east) of a captured zone: `Z`/`UTC`/`GMT`, `±hh[[:]mm]`, an abbreviation, or
 * an abbreviation followed by an offset (`CET+0100` = the sum). NaN when unknown or malformed.
 */
export function zoneOffset(s: string): number {
  if (s === 'Z' || s === 'UTC' || s === 'GMT') return 0
  let k = 0
  while (k < s.length) {
    const c = s.charCodeAt(k)
    if (c === 43 || c === 45) break
    k++
  }
  let off = 0
  if (k > 0) {
    if (!isUpperAbbr(s, 0, k)) return NaN
    const a = ZONE_ABBREVIATIONS.get(k === s.length ? s : s.slice(0, k))
    if (a === undefined) return NaN
    off = a
  }
  if (k === s.length) return off
  // [+-][01]\d(?::?\d{2})?
  const n = s.length - k
  const d = (i: number): number => {
    const c = s.charCodeAt(i) - 48
    return c >= 0 && c <= 9 ? c : NaN
  }
  const h1 = d(k + 1)
  if (!(h1 <= 1)) return NaN
  const hh = h1 * 10 + d(k + 2)
  let mm = 0
  if (n === 5) mm = d(k + 3) * 10 + d(k + 4)
  else if (n === 6 && s.charCodeAt(k + 3) === 58) mm = d(k + 4) * 10 + d(k + 5)
  else if (n !== 3) return NaN
  if (Number.isNaN(hh) || Number.isNaN(mm)) return NaN
  return off + (s.charCodeAt(k) === 45 ? -1 : 1) * (hh * 3600 + mm * 60)
}

/** Python `_calc_julian_from_U_or_W`: day of year from week number and weekday (Monday = 0). */
function julianFromWeek(year: number, week: number, weekday: number, weekStartsMonday: boolean): number {
  let first = weekdayOfDays(daysFromCivil(year, 1, 1))
  let wd = weekday
  if (!weekStartsMonday) {
    first = (first + 1) % 7
    wd = (wd + 1) % 7
  }
  const week0 = (7 - first) % 7
  if (week === 0) return 1 + wd - first
  return 1 + week0 + 7 * (week - 1) + wd
}

/** Smallest and largest wall seconds Python's `datetime` can hold (years 1–9999). */
const MIN_WALL = daysFromCivil(1, 1, 1) * 86400
const MAX_WALL = (daysFromCivil(10000, 1, 1)) * 86400 - 1

/**
 * How the last `convertFields` call depended on "now" (read by the date detector to reuse a
 * conversion for a later second of the same minute): `now` is the value it read (NaN when it
 * read none), `margin` how far (seconds) "now" could move without changing the result's year,
 * day or last-year/yesterday decision (Infinity without a year or day inferred).
 */
export const nowDependence = {now: NaN, margin: Infinity}

/** Seconds from `x` to the nearer of `lo` and `hi` (x between them). */
function gap(x: number, lo: number, hi: number): number {
  return Math.min(x - lo, hi - x)
}

/**
 * Convert the captured fields of one match. `m[i]` is the text of group `i` (undefined when it
 * did not participate). `now` is read only when the year or the day is missing.
 */
export function convertFields(
  m: ArrayLike<string | undefined>,
  f: FieldSlots,
  tz: TimeZone,
  now: () => number,
): number | undefined {
  const slots = f.slots
  let year = NaN
  let month = NaN
  let day = NaN
  let hour = 0
  let minute = 0
  let second = 0
  let tzoff = NaN
  let weekday = NaN
  let julian = NaN
  let week = NaN
  let weekStartsMonday = false
  for (let k = 0; k < slots.length; k += 2) {
    const v = m[slots[k]!]
    if (v === undefined) continue
    switch (slots[k + 1]) {
      case Field.Year4:
        year = num(v)
        break
      case Field.Year2:
        year = num(v)
        if (year <= 2000) year += 2000
        break
      case Field.Month:
        month = num(v)
        break
      case Field.MonthName:
        month = monthOf(v)
        break
      case Field.Day:
        day = num(v)
        break
      case Field.Hour:
        hour = num(v)
        break
      case Field.Hour12: {
        hour = num(v)
        const p = f.ampm >= 0 ? m[f.ampm] : undefined
        // No AM/PM (or AM): 12 is midnight. PM: add 12 except for 12 noon.
        if (p === undefined || p === '' || (p.length === 2 && lower(p.charCodeAt(0)) === 97)) {
          if (hour === 12) hour = 0
        } else if (p.length === 2 && lower(p.charCodeAt(0)) === 112) {
          if (hour !== 12) hour += 12
        }
        break
      }
      case Field.Minute:
        minute = num(v)
        break
      case Field.Second:
        second = num(v)
        break
      case Field.WeekdayName:
        weekday = v.length >= 3 ? (WEEKDAY_BY_KEY.get(key3(v)) ?? NaN) : NaN
        break
      case Field.WeekdayNum:
        weekday = num(v) - 1
        if (weekday < 0) weekday = 6
        break
      case Field.YearDay:
        julian = num(v)
        break
      case Field.WeekSun:
        week = num(v)
        weekStartsMonday = false
        break
      case Field.WeekMon:
        week = num(v)
        weekStartsMonday = true
        break
      case Field.Zone:
        tzoff = zoneOffset(v)
        if (Number.isNaN(tzoff)) return undefined
        break
    }
  }

  let nowWall = NaN
  const dep = nowDependence
  dep.now = NaN
  dep.margin = Infinity
  const assumeYear = Number.isNaN(year)
  if (assumeYear) {
    const t = now()
    dep.now = t
    nowWall = t + tz.offsetAt(Math.floor(t))
    year = yearOfDays(Math.floor(nowWall / 86400))
    dep.margin = gap(nowWall, daysFromCivil(year, 1, 1) * 86400, daysFromCivil(year + 1, 1, 1) * 86400)
  }
  if (Number.isNaN(month) || Number.isNaN(day)) {
    if (Number.isNaN(julian) && !Number.isNaN(week) && !Number.isNaN(weekday)) {
      julian = julianFromWeek(year, week, weekday, weekStartsMonday)
    }
    if (!Number.isNaN(julian)) {
      const days = daysFromCivil(year, 1, 1) + julian - 1
      if (days * 86400 < MIN_WALL) return undefined
      year = yearOfDays(days)
      const md = monthDayOfDays(days)
      month = md >> 5
      day = md & 31
    }
  }
  const assumeToday = Number.isNaN(month) && Number.isNaN(day)
  if (assumeToday) {
    if (Number.isNaN(nowWall)) {
      const t = now()
      dep.now = t
      nowWall = t + tz.offsetAt(Math.floor(t))
    }
    const today = Math.floor(nowWall / 86400)
    dep.margin = Math.min(dep.margin, gap(nowWall, today * 86400, (today + 1) * 86400))
    const md = monthDayOfDays(today)
    month = md >> 5
    day = md & 31
  }
  // Python's datetime() rejects what follows (and a month without a day, or a day without a month).
  if (!(year >= 1 && year <= 9999 && month >= 1 && month <= 12 && day >= 1)) return undefined
  if (day > daysInMonth(year, month)) return undefined
  if (!(hour <= 23 && minute <= 59 && second <= 59)) return undefined

  let wall = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
  const zoned = !Number.isNaN(tzoff)
  if (zoned) {
    // With an explicit zone the result is UTC (still compared below with local "now", as fail2ban does).
    wall -= tzoff
    if (wall < MIN_WALL || wall > MAX_WALL) return undefined
  }
  if (assumeToday) dep.margin = Math.min(dep.margin, Math.abs(wall - nowWall))
  if (assumeYear) dep.margin = Math.min(dep.margin, Math.abs(wall - (nowWall + 86400)))
  if (assumeToday && wall > nowWall) wall -= 86400 // a time after "now" is from yesterday
  if (assumeYear && wall > nowWall + 86400) {
    // More than a day in the future: last year (same month and day, same time of day).
    if (day > daysInMonth(year - 1, month) || year - 1 < 1) return undefined
    const tod = wall - Math.floor(wall / 86400) * 86400
    wall = daysFromCivil(year - 1, month, day) * 86400 + tod
  }
  if (zoned) return wall
  if (tz.wallToUtc !== undefined) return tz.wallToUtc(wall)
  const days = Math.floor(wall / 86400)
  const tod = wall - days * 86400
  const md = monthDayOfDays(days)
  return tz.localToUtc(yearOfDays(days), md >> 5, md & 31, Math.floor(tod / 3600), Math.floor((tod % 3600) / 60), tod % 60)
}

/** Epoch seconds of an `EPOCH` capture (fraction kept). */
export function epochValue(v: string): number {
  return Number(v)
}

/** `LEPOCH`: 13+ digits are milliseconds, 16+ digits without `.` microseconds. */
export function longEpochValue(v: string): number {
  if (v.length >= 13) return v.length >= 16 && !v.includes('.') ? Number(v) / 1000000 : Number(v) / 1000
  return Number(v)
}

/** TAI64N `@` + 24 hex digits: the 16-digit label without its first digit, as seconds. */
export function tai64nValue(v: string): number {
  // v[0] is '@', v[1] the dropped leading hex digit (the 2^62 TAI64 bit); 15 digits follow.
  return parseInt(v.slice(2, 17), 16)
}
