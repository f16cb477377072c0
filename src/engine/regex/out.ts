/**
 * `spylog regex -o TOKEN`: one value per reported failure instead of the report, as
 * fail2ban-regex's `--out` does.
 *
 * Tokens: `id` (or `fid`: the offender id), `ip` (the address: the `ip` datum when the id is not
 * an address, else the id), `msg` (the failure's lines, one per output line), `row`
 * (`[id, time, {data}],` as JSON), `matches` (the lines as a JSON array), `time` (Unix seconds),
 * `line` (the line number), `file`, or any capture name (`user`, `port`, `F-USER`, …). A TOKEN
 * containing `<` is a template: `<ip> <F-USER> <time>` substitutes each tag (unknown tags stay
 * as written); `<msg>` in a template prints one row per line of the failure.
 */
import type {FilterMatch} from '../filters/types.js'

export type OutFormatter = (m: FilterMatch, line: string, lineNo: number, file: string | undefined) => string

/** Text of one value: strings as is, numbers in decimal, arrays joined with `,`, objects as JSON, missing as ''. */
function text(v: unknown): string {
  if (v === undefined || v === null) return ''
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return v.map(text).join(',')
  return JSON.stringify(v)
}

function dataKey(token: string): string {
  const t = token.startsWith('F-') || token.startsWith('f-') ? token.slice(2).toLowerCase() : token
  return t === 'id' ? 'fid' : t === 'port' && token.startsWith('F-') ? 'fport' : t
}

/** The value of one token for one failure (multi-line values joined with `\n`). */
function value(token: string, m: FilterMatch, line: string, lineNo: number, file: string | undefined): string | undefined {
  switch (token) {
    case 'id':
    case 'fid':
      return m.id ?? ''
    case 'ip':
      return text((m.datum !== undefined ? m.datum('ip') : m.data.ip) ?? m.id)
    case 'msg':
      return m.lines.join('\n')
    case 'matches':
      return JSON.stringify(m.lines)
    case 'row':
      return `[${JSON.stringify(m.id ?? null)},\t${m.time === undefined ? 'null' : m.time},\t${JSON.stringify(m.data)}],`
    case 'time':
      return m.time === undefined ? '' : String(m.time)
    case 'line':
    case 'lineno':
      return String(lineNo)
    case 'file':
      return file ?? ''
    case 'raw':
      return line
    default: {
      const k = dataKey(token)
      return k in m.data ? text(m.data[k]) : undefined
    }
  }
}

const TAG = /<([^<>\s]+)>/g

/** Build the formatter for `-o TOKEN`. Each call returns the output line(s) without the final newline. */
export function outFormatter(token: string): OutFormatter {
  const t = token.includes('<') ? token : token.trim()
  if (!t.includes('<')) {
    return (m, line, lineNo, file) => value(t, m, line, lineNo, file) ?? ''
  }
  // Pre-split the template: even indices literal text, odd indices tag names.
  const parts = t.split(TAG)
  const hasMsg = parts.some((p, i) => i % 2 === 1 && p === 'msg')
  const render = (m: FilterMatch, line: string, lineNo: number, file: string | undefined, msgLine: string): string => {
    let out = parts[0]!
    for (let i = 1; i < parts.length; i += 2) {
      const name = parts[i]!
      if (name === 'msg') out += msgLine
      else {
        const v = value(name, m, line, lineNo, file)
        out += v === undefined ? `<${name}>` : v
      }
      out += parts[i + 1]!
    }
    return out
  }
  return (m, line, lineNo, file) => {
    if (!hasMsg || m.lines.length <= 1) return render(m, line, lineNo, file, m.lines[0] ?? line)
    let out = ''
    for (let i = 0; i < m.lines.length; i++) out += (i === 0 ? '' : '\n') + render(m, line, lineNo, file, m.lines[i]!)
    return out
  }
}
