/**
 * Proleptic-Gregorian calendar arithmetic on plain numbers (no Date objects, no allocation).
 *
 * "Wall seconds" are seconds since 1970-01-01 00:00:00 of some clock that is not necessarily UTC
 * (a local wall clock, or UTC itself): `daysFromCivil(y, m, d) * 86400 + h * 3600 + mi * 60 + s`.
 */

/** Days from 1970-01-01 to the given date (month 1–12, day 1–31; no validation). */
export function daysFromCivil(y: number, m: number, d: number): number {
  // Shift the year so that it starts in March: the leap day is then the last day of the year.
  const yy = m <= 2 ? y - 1 : y
  const era = Math.floor(yy / 400)
  const yoe = yy - era * 400 // [0, 399]
  const mp = m > 2 ? m - 3 : m + 9 // March = 0 … February = 11
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1 // [0, 365]
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy // [0, 146096]
  return era * 146097 + doe - 719468
}

/** Year of a day number (days since 1970-01-01). */
export function yearOfDays(days: number): number {
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  return yoe + era * 400 + (mp >= 10 ? 1 : 0)
}

/**
 * Month (1–12) and day (1–31) of a day number, packed as `month * 32 + day` so that callers need
 * no temporary object: `month = p >> 5`, `day = p & 31`.
 */
export function monthDayOfDays(days: number): number {
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1
  const m = mp < 10 ? mp + 3 : mp - 9
  return m * 32 + d
}

export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
}

const MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

export function daysInMonth(y: number, m: number): number {
  return m === 2 && isLeapYear(y) ? 29 : MONTH_DAYS[m]!
}

/** Weekday of a day number, Monday = 0 … Sunday = 6 (Python's `date.weekday()`). */
export function weekdayOfDays(days: number): number {
  // 1970-01-01 was a Thursday (3).
  return (((days + 3) % 7) + 7) % 7
}

/** Wall seconds of a calendar date and time of day (no validation). */
export function wallSeconds(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
}
