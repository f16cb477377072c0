/**
 * A hand-written matcher for the date template most logs hit — syslog's `Mon DD HH:MM:SS` at the
 * start of the line (fail2ban's `{^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\.Microseconds)?(?: ExYear)?`)
 * — so that the detector can reuse the previous line's conversion without running the template's
 * regex (with its ten captures) on every line.
 *
 * It is exact for what it claims: it follows the regex's backtracking order choice by choice, and
 * declines (returns -1) whenever the line leaves the common shape — a weekday, leading
 * punctuation, one-digit hours, a fraction, a possible year, a word character right after the
 * seconds, a non-ASCII line — and the regex decides. test/dates.test.ts checks its claims against
 * the regex on generated lines, and whole detectors with and without it against each other.
 */

/** The template regex (as the detector instruments it) this matcher stands for; any other is not. */
export const SYSLOG_TEMPLATE_SOURCE = String.raw`(?iu)^(?:\W{0,2})?(?P<_spylog_date>(?:(?P<a>mon|tue|wed|thu|fri|sat|sun) )?(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec) (?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])  ?(?P<H>[0-2]?\d):(?P<M>[0-5]?\d):(?P<S>[0-5]?\d|6[0-1])(?:\.(?P<f>[0-9]{1,6}))?(?: (?P<Y>20[012]\d))?)(?=\b|\W|$)`

const SPACE = 32
const COLON = 58
const DOT = 46

/**
 * Month number (1–12) of three lower-case ASCII letters, 0 when they are no month's abbreviation.
 * (Branches on the letters: no lookup structure on a path every line takes.)
 */
function monthOf(a: number, b: number, c: number): number {
  switch (a) {
    case 106: // j: jan jun jul
      return b === 97 ? (c === 110 ? 1 : 0) : b === 117 ? (c === 110 ? 6 : c === 108 ? 7 : 0) : 0
    case 102: // f: feb
      return b === 101 && c === 98 ? 2 : 0
    case 109: // m: mar may
      return b === 97 ? (c === 114 ? 3 : c === 121 ? 5 : 0) : 0
    case 97: // a: apr aug
      return b === 112 && c === 114 ? 4 : b === 117 && c === 103 ? 8 : 0
    case 115: // s: sep
      return b === 101 && c === 112 ? 9 : 0
    case 111: // o: oct
      return b === 99 && c === 116 ? 10 : 0
    case 110: // n: nov
      return b === 111 && c === 118 ? 11 : 0
    case 100: // d: dec
      return b === 101 && c === 99 ? 12 : 0
    default:
      return 0
  }
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57
/** `[0-9A-Z_a-z]`, the ASCII word characters. */
const isWord = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
/** Lower case of an ASCII letter, else 0. */
const letter = (c: number): number => ((c | 0x20) >= 97 && (c | 0x20) <= 122 ? c | 0x20 : 0)

/** Outcome of the part after the day: matched (the date's end), failed for sure, or declined. */
const FAIL = -2
const DECLINE = -1

export class SyslogDateMatcher {
  /**
   * After a match: the date's fields but the seconds, as one number (month, day, hour, minute;
   * equal numbers convert alike whatever the spelling: `Mar  3`, `mar 03`), and the seconds.
   */
  minute = -1
  second = -1
  /** Set by afterDay: the hour, minute and second it read. */
  private h = 0
  private m = 0
  private s = 0

  /**
   * Match a pure-ASCII `line` as the template's regex would: the end of the date (which starts at
   * 0), or -1 when the matcher declines (the regex must decide: it may match or not).
   */
  match(line: string): number {
    if (line.length < 15) return DECLINE
    const a = letter(line.charCodeAt(0))
    const b = letter(line.charCodeAt(1))
    const c = letter(line.charCodeAt(2))
    // A letter first: `\W{0,2}` takes nothing. A weekday would be tried as `(?:DAY )?`: declined
    // (no weekday's abbreviation is a month's).
    if (a === 0 || b === 0 || c === 0) return DECLINE
    const month = monthOf(a, b, c)
    if (month === 0 || line.charCodeAt(3) !== SPACE) return DECLINE
    // The day's alternatives in the regex's order: [1-2]\d, [0 ]?[1-9] (greedy), 3[0-1].
    const x = line.charCodeAt(4)
    const y = line.charCodeAt(5)
    let end: number
    let day: number
    if ((x === 49 || x === 50) && isDigit(y) && (end = this.afterDay(line, 6)) !== FAIL) day = (x - 48) * 10 + y - 48
    else if ((x === SPACE || x === 48) && y >= 49 && y <= 57 && (end = this.afterDay(line, 6)) !== FAIL) day = y - 48
    else if (x >= 49 && x <= 57 && (end = this.afterDay(line, 5)) !== FAIL) day = x - 48
    else if (x === 51 && (y === 48 || y === 49) && (end = this.afterDay(line, 6)) !== FAIL) day = 30 + y - 48
    else return DECLINE
    if (end! === DECLINE) return DECLINE
    this.minute = ((month * 32 + day) * 32 + this.h) * 64 + this.m
    this.second = this.s
    return end!
  }

  /**
   * The template after the day, from `q`: `  ?HH:MM:SS` and what may follow. FAIL when it cannot
   * match (the next day alternative is tried), DECLINE outside the common shape, else the end.
   */
  private afterDay(line: string, q: number): number {
    if (line.charCodeAt(q) !== SPACE) return FAIL
    // `  ?` is greedy; giving the second space back cannot help: the hour cannot start with one.
    const r = line.charCodeAt(q + 1) === SPACE ? q + 2 : q + 1
    const n = line.length
    if (r + 8 > n) return DECLINE
    const h0 = line.charCodeAt(r)
    const h1 = line.charCodeAt(r + 1)
    const m0 = line.charCodeAt(r + 3)
    const m1 = line.charCodeAt(r + 4)
    const s0 = line.charCodeAt(r + 6)
    const s1 = line.charCodeAt(r + 7)
    // Two-digit fields, each first digit inside its `[…]?`: the greedy path, which matches.
    if (!(h0 >= 48 && h0 <= 50) || !isDigit(h1) || line.charCodeAt(r + 2) !== COLON) return DECLINE
    if (!(m0 >= 48 && m0 <= 53) || !isDigit(m1) || line.charCodeAt(r + 5) !== COLON) return DECLINE
    if (!(s0 >= 48 && s0 <= 53) || !isDigit(s1)) return DECLINE
    const end = r + 8
    if (end < n) {
      const c = line.charCodeAt(end)
      // `(?:\.f)?` or `(?: 20[012]\d)?` might take more, or the lookahead fail and backtracking start.
      if (c === DOT || isWord(c)) return DECLINE
      if (c === SPACE && line.charCodeAt(end + 1) === 50 && line.charCodeAt(end + 2) === 48) return DECLINE
    }
    this.h = (h0 - 48) * 10 + h1 - 48
    this.m = (m0 - 48) * 10 + m1 - 48
    this.s = (s0 - 48) * 10 + s1 - 48
    return end
  }
}
