/**
 * strptime-style `%` directives as fail2ban defines them (C locale): the regex each directive
 * stands for (Python `re` syntax, one named group per field) and the name fail2ban-regex shows
 * for it in a template name.
 */

const WEEKDAYS = 'mon|tue|wed|thu|fri|sat|sun'
const MONTHS = 'jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec'
// Full names, longest first (how Python's TimeRE orders alternatives).
const FULL_WEEKDAYS = 'wednesday|thursday|saturday|tuesday|monday|friday|sunday'
const FULL_MONTHS = 'september|february|november|december|january|october|august|march|april|june|july|may'

const TZ_ABBR = '[A-Z](?:[A-Z]{2,4})?'

// Python's own field regexes, used inside the composite %c %x %X (built before fail2ban
// overrides the simple directives, so they differ from %d %H … below).
const PY_D = '(?P<d>3[0-1]|[1-2]\\d|0[1-9]|[1-9]| [1-9])'
const PY_X = '(?P<H>2[0-3]|[0-1]\\d|\\d):(?P<M>[0-5]\\d|\\d):(?P<S>6[0-1]|[0-5]\\d|\\d)'

/**
 * The `%ExY` regex: years whose first three digits occur among the years 2000, 2003, 2006, …
 * up to `year`, plus `year - 1` and `year + 3` (fail2ban's rule, from the real clock at start-up).
 */
export function exYearRegex(year: number): string {
  const prefixes = new Set<string>()
  prefixes.add(String(year - 1).slice(0, 3))
  prefixes.add(String(year + 3).slice(0, 3))
  for (let y = 2000; y <= year; y += 3) prefixes.add(String(y).slice(0, 3))
  // Group by the first two digits: 200, 201, 202 → 20[012].
  const byHead = new Map<string, string[]>()
  for (const p of [...prefixes].sort()) {
    const head = p.slice(0, 2)
    const list = byHead.get(head) ?? []
    list.push(p.slice(2))
    byHead.set(head, list)
  }
  const alts = [...byHead].map(([head, tails]) => head + (tails.length > 1 ? `[${tails.join('')}]` : tails[0]))
  return `(?P<Y>${alts.length > 1 ? `(?:${alts.join('|')})` : alts[0]}\\d)`
}

/** Directive → Python regex. */
export const DIRECTIVES: ReadonlyMap<string, string> = new Map<string, string>([
  ['%', '%'],
  ['Y', '(?P<Y>\\d{4})'],
  ['y', '(?P<y>\\d\\d)'],
  ['m', '(?P<m>0?[1-9]|1[0-2])'],
  ['d', '(?P<d>[1-2]\\d|[0 ]?[1-9]|3[0-1])'],
  ['H', '(?P<H>[0-1]?\\d|2[0-3])'],
  ['k', ' ?(?P<H>[0-2]?\\d)'],
  ['I', '(?P<I>1[0-2]|0[1-9]|[1-9])'],
  ['l', ' ?(?P<I>1?\\d)'],
  ['M', '(?P<M>[0-5]?\\d)'],
  ['S', '(?P<S>[0-5]?\\d|6[0-1])'],
  ['f', '(?P<f>[0-9]{1,6})'],
  ['p', '(?P<p>am|pm)'],
  ['a', `(?P<a>${WEEKDAYS})`],
  ['A', `(?P<A>${FULL_WEEKDAYS})`],
  ['b', `(?P<b>${MONTHS})`],
  ['B', `(?P<B>${FULL_MONTHS})`],
  ['z', '(?P<z>Z|UTC|GMT|[+-][01]\\d(?::?\\d{2})?)'],
  ['Z', '(?P<Z>Z|[A-Z]{3,5})'],
  ['j', '(?P<j>36[0-6]|3[0-5]\\d|[1-2]\\d\\d|0[1-9]\\d|00[1-9]|[1-9]\\d|0[1-9]|[1-9])'],
  ['U', '(?P<U>5[0-3]|[0-4]\\d|\\d)'],
  ['W', '(?P<W>5[0-3]|[0-4]\\d|\\d)'],
  ['w', '(?P<w>[0-6])'],
  ['u', '(?P<u>[1-7])'],
  ['G', '(?P<G>\\d\\d\\d\\d)'],
  ['V', '(?P<V>5[0-3]|0[1-9]|[1-4]\\d|\\d)'],
  ['c', `(?P<a>${WEEKDAYS})\\s+(?P<b>${MONTHS})\\s+${PY_D}\\s+${PY_X}\\s+(?P<Y>\\d\\d\\d\\d)`],
  ['x', `(?P<m>1[0-2]|0[1-9]|[1-9])/${PY_D}/(?P<y>\\d\\d)`],
  ['X', PY_X],
  ['ExY', exYearRegex(new Date().getUTCFullYear())],
  ['Exy', '(?P<y>\\d{2})'],
  ['Exm', '(?P<m>0[1-9]|1[0-2])'],
  ['Exd', '(?P<d>[1-2]\\d|0[1-9]|3[0-1])'],
  ['ExH', '(?P<H>[0-1]\\d|2[0-3])'],
  ['Exk', ' ?(?P<H>[0-1]?\\d|2[0-3])'],
  ['Exl', ' ?(?P<I>1[0-2]|\\d)'],
  ['ExM', '(?P<M>[0-5]\\d)'],
  ['ExS', '(?P<S>[0-5]\\d|6[0-1])'],
  ['Exz', `(?P<z>(?:${TZ_ABBR})?[+-][01]\\d(?::?\\d{2})?|${TZ_ABBR})`],
  ['ExZ', `(?P<Z>${TZ_ABBR})`],
])

const NAMES: Record<string, string> = {
  a: 'DAY', A: 'DAYNAME', b: 'MON', B: 'MONTH', d: 'Day', H: '24hour', I: '12hour', j: 'Yearday',
  m: 'Month', M: 'Minute', p: 'AMPM', S: 'Second', U: 'Yearweek', w: 'Weekday', W: 'Yearweek',
  y: 'Year2', Y: 'Year', '%': '%', z: 'Zone offset', f: 'Microseconds', Z: 'Zone name',
}

/** The name fail2ban-regex shows for a directive (`%Y` → `Year`, `%ExY` → `ExYear`, `%k` → `%k`). */
export function directiveName(key: string): string {
  const n = NAMES[key]
  if (n !== undefined) return n
  if (key.startsWith('Ex')) {
    const base = NAMES[key.slice(2)]
    if (base !== undefined) return 'Ex' + base
  }
  return '%' + key
}

/** `%` followed by a directive: the `Ex…` forms first, then one character. */
const DIRECTIVE_AT = /%(ExZ|Exz|Exd|Exm|ExH|Exk|Exl|ExM|ExS|ExY|Exy|[%YymdHkIlMSfpaAbBzZjUWwuGVcxX])/y

/**
 * Replace every `%` directive of `pattern`. Returns the regex text and the template name, or
 * throws when a `%` does not start a known directive (fail2ban: "Failed to set datepattern …
 * invalid format or unescaped percent char").
 */
export function expandDirectives(pattern: string): {regex: string; name: string} {
  let regex = ''
  let name = ''
  let last = 0
  for (let i = pattern.indexOf('%'); i >= 0; i = pattern.indexOf('%', last)) {
    DIRECTIVE_AT.lastIndex = i
    const m = DIRECTIVE_AT.exec(pattern)
    if (!m) {
      throw new Error(
        `Failed to set datepattern '${pattern}' (may be an invalid format or unescaped percent char): ` +
          `unknown directive at position ${i}`,
      )
    }
    const lit = pattern.slice(last, i)
    regex += lit + DIRECTIVES.get(m[1]!)!
    name += lit + directiveName(m[1]!)
    last = i + m[0].length
  }
  const tail = pattern.slice(last)
  return {regex: regex + tail, name: name + tail}
}

/** fail2ban prefixes `(?iu)` when the pattern uses one of these (names, AM/PM, `%c`). */
export const ALPHA_DIRECTIVE = /(?<!%)%[aAbBpc]/
