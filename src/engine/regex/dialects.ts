/**
 * The regex dialects `spylog regex` accepts for a literal REGEX, and the small filter that runs
 * the non-fail2ban ones.
 *
 * - `fail2ban` (default): Python `re` with fail2ban's tags, run by the full Fail2banFilter
 *   (prefregex, mlfid, multi-line: everything a filter.d file can do).
 * - `pcre`: PCRE syntax with the same `<HOST>`/`<F-…>` tags; the offender comes from the `fid`,
 *   `ip4`/`ip6`/`dns` (the tags), `host`, `ip` or `addr` capture.
 * - `lua`: Lua 5.3 patterns (lua-spylog configs); the first capture is the offender, captures are
 *   reported as `1`, `2`, …
 *
 * A new dialect is one more entry in DIALECTS plus a `compile` case below: the report, the
 * command and the generic filter do not change.
 */
import {ConfigError} from '../fail2ban/errors.js'
import {expandTags} from '../fail2ban/tags.js'
import {LineReader} from '../filters/linereader.js'
import {DateDetector} from '../dates/detector.js'
import type {TimeZone} from '../dates/timezone.js'
import {canonicalAddress} from '../net/address.js'
import {compilePython} from '../patterns/pyre.js'
import {PatternError, type CompiledRegex} from '../patterns/types.js'
import type {FilterMatch, LineResult} from '../filters/types.js'

export const DIALECTS = ['fail2ban', 'pcre', 'lua'] as const
export type Dialect = (typeof DIALECTS)[number]

export function isDialect(s: string): s is Dialect {
  return (DIALECTS as readonly string[]).includes(s)
}

/** One regex of a filter with its hit counter (the shape Fail2banFilter exposes). */
export interface RegexEntry {
  readonly source: string
  readonly expanded: string
  hits: number
}

/**
 * What the report needs from a filter. Fail2banFilter has this shape; GenericFilter implements it
 * for the other dialects.
 */
export interface RegexFilter {
  readonly name: string
  readonly prefregex: RegexEntry | undefined
  readonly failregex: readonly RegexEntry[]
  readonly ignoreregex: readonly RegexEntry[]
  readonly maxlines: number
  readonly dates: {readonly templates: ReadonlyArray<{readonly name: string; hits: number}>}
  readonly truncated: number
  /** `ascii`: the caller knows the line is pure ASCII (saves a scan; omit when unknown). */
  processLine(line: string, noDate?: boolean, ascii?: boolean): LineResult
  reset(): void
}

/** A compiled pattern of a non-fail2ban dialect. */
interface DialectPattern extends RegexEntry {
  /**
   * Match `subject`; on success fill `data` with the captures (undefined ones left out) and
   * return the offender text (undefined when the id capture did not participate), else null.
   */
  match(subject: string, ascii: boolean, data: Record<string, unknown> | undefined): string | undefined | null
}

/** Capture names that identify the offender, in order of preference (after `fid`). */
const HOST_GROUPS = ['ip4', 'ip6', 'dns', 'host', 'ip', 'addr']

class PcrePattern implements DialectPattern {
  hits = 0
  private readonly names: [string, number][]
  private readonly hostSlots: number[]
  private readonly fidSlot: number

  constructor(readonly source: string, readonly expanded: string, private readonly re: CompiledRegex) {
    this.names = [...re.groupNames]
    this.fidSlot = re.groupNames.get('fid') ?? -1
    this.hostSlots = HOST_GROUPS.flatMap((g) => (re.groupNames.has(g) ? [re.groupNames.get(g)!] : []))
  }

  get hasId(): boolean {
    return this.fidSlot >= 0 || this.hostSlots.length > 0
  }

  match(subject: string, ascii: boolean, data: Record<string, unknown> | undefined): string | undefined | null {
    const m = this.re.exec(subject, 0, ascii)
    if (m === null) return null
    if (data !== undefined) {
      for (let i = 0; i < this.names.length; i++) {
        const [name, idx] = this.names[i]!
        const v = m[idx]
        if (v !== undefined) data[name] = v
      }
    }
    if (this.fidSlot >= 0 && m[this.fidSlot] !== undefined) return m[this.fidSlot]
    for (let i = 0; i < this.hostSlots.length; i++) {
      const v = m[this.hostSlots[i]!]
      if (v !== undefined) return v
    }
    return undefined
  }
}

/** The part of lua.ts this module uses (loaded lazily: it pulls in a Lua VM). */
interface LuaFind {
  find(subject: string): {captures: (string | number)[]} | null
}

class LuaDialectPattern implements DialectPattern {
  hits = 0
  constructor(readonly source: string, private readonly p: LuaFind) {}
  get expanded(): string {
    return this.source
  }

  match(subject: string, _ascii: boolean, data: Record<string, unknown> | undefined): string | undefined | null {
    const m = this.p.find(subject)
    if (m === null) return null
    const caps = m.captures
    if (data !== undefined) for (let i = 0; i < caps.length; i++) data[String(i + 1)] = caps[i]
    const first = caps[0]
    return first === undefined ? undefined : String(first)
  }
}

export interface GenericFilterSpec {
  name: string
  dialect: Exclude<Dialect, 'fail2ban'>
  failregex: readonly string[]
  ignoreregex?: readonly string[]
  datepattern?: string
}

export interface GenericFilterOptions {
  /** Try every failregex (default true); false: stop at the first result. */
  checkAll?: boolean
  timezone?: TimeZone
  now?: () => number
  maxLineLength?: number
}

async function compileDialect(dialect: Exclude<Dialect, 'fail2ban'>, source: string, what: string, needId: boolean): Promise<DialectPattern> {
  try {
    if (dialect === 'pcre') {
      const expanded = expandTags(source)
      const p = new PcrePattern(source, expanded, compilePython(expanded, {flavor: 'pcre'}))
      if (needId && !p.hasId) {
        throw new ConfigError(`${what} has no offender capture (<HOST>, <ADDR>, <F-ID>, or a group named host, ip, addr, fid): ${source}`)
      }
      return p
    }
    const lua = await import('../patterns/lua.js')
    const p = new LuaDialectPattern(source, lua.compileLua(source))
    if (needId && !/(?:^|[^%])\((?!\))/.test(source)) {
      throw new ConfigError(`${what} has no capture: in the lua dialect the first capture is the offender: ${source}`)
    }
    return p
  } catch (e) {
    if (e instanceof PatternError) throw new ConfigError(`${what}: ${e.message.replace(/ at position \d+$/, '')}: ${source}`)
    throw e
  }
}

/**
 * A one-line filter for the pcre and lua dialects: date detection and removal as in fail2ban
 * (SPEC §4.2), ignoreregex first, then every failregex (or up to the first result without checkAll).
 */
export class GenericFilter implements RegexFilter {
  readonly prefregex = undefined
  readonly maxlines = 1
  private readonly reader: LineReader

  private constructor(
    readonly name: string,
    readonly failregex: readonly DialectPattern[],
    readonly ignoreregex: readonly DialectPattern[],
    readonly dates: DateDetector,
    now: () => number,
    maxLineLength: number | undefined,
    /** PCRE sees the line with a final `\n`, like fail2ban's buffer (so `$` behaves the same); Lua does not. */
    private readonly newline: boolean,
    private readonly checkAll: boolean,
  ) {
    this.reader = new LineReader(dates, now, maxLineLength)
  }

  /** Lines cut to the maximum line length so far. */
  get truncated(): number {
    return this.reader.truncated
  }

  static async create(spec: GenericFilterSpec, opts: GenericFilterOptions = {}): Promise<GenericFilter> {
    if (spec.failregex.length === 0) throw new ConfigError('no failregex given')
    const fail: DialectPattern[] = []
    for (const [i, r] of spec.failregex.entries()) fail.push(await compileDialect(spec.dialect, r, `failregex ${i + 1}`, true))
    const ign: DialectPattern[] = []
    for (const [i, r] of (spec.ignoreregex ?? []).entries()) ign.push(await compileDialect(spec.dialect, r, `ignoreregex ${i + 1}`, false))
    const now = opts.now ?? (() => Date.now() / 1000)
    let dates: DateDetector
    try {
      dates = new DateDetector(spec.datepattern, {timezone: opts.timezone, now})
    } catch (e) {
      throw new ConfigError(`bad datepattern: ${(e as Error).message}`, undefined, undefined, 'datepattern')
    }
    return new GenericFilter(spec.name, fail, ign, dates, now, opts.maxLineLength, spec.dialect === 'pcre', opts.checkAll ?? true)
  }

  reset(): void {
    this.reader.reset()
  }

  processLine(input: string, noDate = false, knownAscii?: boolean): LineResult {
    const r = this.reader
    r.read(input, noDate, knownAscii)
    const ascii = r.ascii
    const time = r.time
    const template = r.template
    let text = r.text
    if (this.newline) text += '\n'
    const result: LineResult = {matches: [], ignoredBy: [], prefregex: true, dateTemplate: template, time}
    for (let i = 0; i < this.ignoreregex.length; i++) {
      const ir = this.ignoreregex[i]!
      if (ir.match(text, ascii, undefined) !== null) {
        ir.hits++
        result.ignoredBy.push(i)
        return result
      }
    }
    for (let i = 0; i < this.failregex.length; i++) {
      const fr = this.failregex[i]!
      const data: Record<string, unknown> = {}
      const raw = fr.match(text, ascii, data)
      if (raw === null) continue
      fr.hits++
      let id: string | undefined = raw
      let isAddress = false
      if (raw !== undefined) {
        const c = canonicalAddress(raw)
        if (c !== undefined) {
          id = c
          isAddress = true
        }
      }
      const m: FilterMatch = {regex: i, id, isAddress, time, data, lines: [r.line], nofail: false, pending: false}
      if (id === undefined) continue
      result.matches.push(m)
      if (!this.checkAll) break
    }
    return result
  }

}
