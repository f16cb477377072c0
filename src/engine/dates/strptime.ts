/**
 * lua-spylog style dates: a filter captures the date text itself and names a strftime-like
 * format for it. `parseDate` reads the text with fail2ban's `%` directives (§5.2) and converts it
 * exactly like a detected date (§5.3: year inference, 12-hour clock, zones; the fraction `%f` is
 * dropped). The formats `EPOCH`, `LEPOCH` and `TAI64N` read those stamps (fraction kept).
 *
 * Format syntax: `%` directives, whitespace matches any run of whitespace (as Python's
 * `strptime`), every other character is literal. The whole (trimmed) text must match; letters
 * match case-insensitively.
 */
import {convertFields, fieldSlots, longEpochValue, tai64nValue, type FieldSlots} from './convert.js'
import {DIRECTIVES} from './directives.js'
import type {DateOptions} from './detector.js'
import {localTimeZone} from './timezone.js'

interface CompiledFormat {
  re: RegExp
  fields: FieldSlots
}

const cache = new Map<string, CompiledFormat>()
const DIRECTIVE_AT = /%(ExZ|Exz|Exd|Exm|ExH|Exk|Exl|ExM|ExS|ExY|Exy|[%YymdHkIlMSfpaAbBzZjUWwuGVcxX])/y

function compileFormat(format: string): CompiledFormat {
  let src = ''
  for (let i = 0; i < format.length; ) {
    const c = format[i]!
    if (c === '%') {
      DIRECTIVE_AT.lastIndex = i
      const m = DIRECTIVE_AT.exec(format)
      if (!m) throw new Error(`bad date format ${JSON.stringify(format)}: unknown directive at position ${i}`)
      // The directive table is Python syntax; its only construct JS spells differently is (?P<…>.
      src += m[1] === '%' ? '%' : DIRECTIVES.get(m[1]!)!.replaceAll('(?P<', '(?<')
      i += m[0].length
    } else if (/\s/.test(c)) {
      while (i < format.length && /\s/.test(format[i]!)) i++
      src += '\\s+'
    } else {
      src += /[\\^$.*+?()[\]{}|/]/.test(c) ? '\\' + c : c
      i++
    }
  }
  let re: RegExp
  try {
    re = new RegExp(`^(?:${src})$`, 'iu')
  } catch (e) {
    throw new Error(`bad date format ${JSON.stringify(format)}: ${(e as Error).message}`)
  }
  // Every capturing group comes from the directive table and is named: number them in order.
  const names = new Map<string, number>()
  let idx = 0
  for (const g of src.matchAll(/\(\?<([A-Za-z_]\w*)>/g)) names.set(g[1]!, ++idx)
  return {re, fields: fieldSlots(names)}
}

/**
 * Unix seconds of `text` read with `format`, or undefined when the text does not match the
 * format or is not a valid date. Throws for a malformed format.
 */
export function parseDate(text: string, format: string, opts: DateOptions = {}): number | undefined {
  const t = text.trim()
  const key = format.trim().toUpperCase()
  if (key === 'EPOCH') return /^\d+(?:\.\d+)?$/.test(t) ? Number(t) : undefined
  if (key === 'LEPOCH') return /^\d+(?:\.\d+)?$/.test(t) ? longEpochValue(t) : undefined
  if (key === 'TAI64N') return /^@[0-9a-f]{24}$/i.test(t) ? tai64nValue(t.toLowerCase()) : undefined
  let f = cache.get(format)
  if (f === undefined) {
    f = compileFormat(format)
    if (cache.size >= 256) cache.clear()
    cache.set(format, f)
  }
  const m = f.re.exec(t)
  if (m === null) return undefined
  return convertFields(m, f.fields, opts.timezone ?? localTimeZone(), opts.now ?? (() => Date.now() / 1000))
}

