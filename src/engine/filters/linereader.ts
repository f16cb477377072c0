/**
 * What every filter does to a line before its regexes see it (fail2ban-corpus/SPEC.md §4.1–4.2):
 * strip a final CR, cut the line at the maximum length, find its date, cut the date text out,
 * and apply fail2ban's rule for lines without a usable date (the previous date if it is less
 * than 60 s old). The results are left in the reader's fields, so the hot path allocates nothing.
 */
import type {DateDetector} from '../dates/detector.js'
import {isAscii} from '../patterns/ascii.js'

export const DEFAULT_MAX_LINE = 65536

export class LineReader {
  /** The line as read (CR stripped, cut to the maximum length). */
  line = ''
  /** The line with its date text cut out (or whole, see above). */
  text = ''
  /** Whether `line` is pure ASCII. */
  ascii = true
  /** The line's time in Unix seconds; undefined when it has none. */
  time: number | undefined
  /** Index of the date template that matched, -1 when none. */
  template = -1
  /** Lines cut to the maximum length so far. */
  truncated = 0
  private lastDate: number | undefined

  constructor(
    readonly dates: DateDetector,
    private readonly now: () => number,
    private readonly maxLineLength = DEFAULT_MAX_LINE,
  ) {}

  /** Forget the previous date (new log file). */
  reset(): void {
    this.lastDate = undefined
  }

  /**
   * Prepare one line (without its terminator); `noDate` (journal mode) uses the current time.
   * `knownAscii`: the caller knows the line is pure ASCII.
   */
  read(input: string, noDate: boolean, knownAscii?: boolean): void {
    let line = input.charCodeAt(input.length - 1) === 13 ? input.slice(0, -1) : input
    if (line.length > this.maxLineLength) {
      line = line.slice(0, this.maxLineLength)
      this.truncated++
    }
    const ascii = knownAscii === true || isAscii(line)
    let text = line
    let time: number | undefined
    let template = -1
    if (noDate) time = this.now()
    else if (this.dates.none) time = this.recentDate() ?? this.now()
    else {
      const d = this.dates
      template = d.scan(line, ascii)
      if (template >= 0) {
        if (d.hitTime !== undefined) {
          time = this.lastDate = d.hitTime
          text = line.slice(0, d.hitStart) + line.slice(d.hitEnd)
        } else {
          time = this.recentDate()
          if (time === undefined) text = line.slice(0, d.hitStart) + line.slice(d.hitEnd)
        }
      } else time = this.recentDate()
    }
    this.line = line
    this.text = text
    this.ascii = ascii
    this.time = time
    this.template = template
  }

  private recentDate(): number | undefined {
    return this.lastDate !== undefined && this.now() - this.lastDate < 60 ? this.lastDate : undefined
  }
}
