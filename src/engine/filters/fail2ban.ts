/**
 * A fail2ban filter: date detection and removal, prefregex, failregex, ignoreregex, multi-line
 * buffers and the multi-line failure id (mlfid) state machine, with the semantics of
 * fail2ban-corpus/SPEC.md §4. One instance keeps the state of one log stream; the daemon,
 * `spylog regex` and `spylog testcases` all use this class.
 */
import {ConfigError} from '../fail2ban/errors.js'
import {expandTags, rewriteInlineFlags} from '../fail2ban/tags.js'
import {compilePython, type FirstChars} from '../patterns/pyre.js'
import {isAscii} from '../patterns/ascii.js'
import {PatternError, type CompiledRegex} from '../patterns/types.js'
import {DateDetector} from '../dates/detector.js'
import type {TimeZone} from '../dates/timezone.js'
import {canonicalAddress, canonicalSubnet} from '../net/address.js'
import type {FilterMatch, LineResult} from './types.js'
import {LineReader} from './linereader.js'
import {KeyedTable, keyHash, type Keyed} from './keyed.js'

/** What a fail2ban filter is made of (from a filter.d file, a Lua FILTER{} or the command line). */
export interface Fail2banFilterSpec {
  name: string
  prefregex?: string
  failregex: readonly string[]
  ignoreregex?: readonly string[]
  maxlines?: number
  datepattern?: string
  usedns?: string
  /** Where the regex options come from, for error messages. */
  origin?: Partial<Record<'prefregex' | 'failregex' | 'ignoreregex' | 'datepattern', {file: string; line: number} | undefined>>
}

export interface FilterRuntimeOptions {
  timezone?: TimeZone
  /** Current time in Unix seconds (the harness fixes it). */
  now?: () => number
  /** Evaluate every failregex instead of stopping at the first result (fail2ban-regex, testcases). */
  checkAll?: boolean
  /** Lines longer than this are cut before matching (default 64 KiB). */
  maxLineLength?: number
}

/** One compiled regex of a filter, with its hit counter. */
export interface FilterRegex {
  /** As written in the configuration. */
  readonly source: string
  /** After tag expansion (Python syntax). */
  readonly expanded: string
  readonly re: CompiledRegex
  hits: number
  /** Named groups as failure data, resolved once (see GroupSlot). */
  readonly slots: readonly GroupSlot[]
  /** Result indices of the <SKIPLINES> groups. */
  readonly skipSlots: readonly number[]
  /** First characters of an anchored regex: a line starting otherwise is skipped without a search. */
  readonly first: FirstChars | undefined
  /** Result index of the plain `mlfid` group, -1 when none. */
  readonly mlfid: number
  /**
   * Literal texts one of which every match starts with (FirstChars: its prefix when longer than
   * one character, else the texts of the choice it starts with); empty when none is known.
   */
  readonly starts: readonly string[]
}

/** How a named group feeds the failure data: as is, as `alt_X` (fills X) or `tuple_X`. */
interface GroupSlot {
  readonly name: string
  readonly idx: number
  readonly kind: 'plain' | 'alt' | 'tuple'
  /** The data key an alt_/tuple_ group fills. */
  readonly target: string
  /**
   * Index of the key the group fills in the filter's failure record (FailureKeys): its target's
   * for failregexes, its own name's for the prefregex (whose groups are all taken as they are);
   * -1 for the prefregex's `content`. Set once all regexes are compiled.
   */
  key: number
}

/** One multi-line failure id's state (fail2ban keeps these keys inside the data dict). */
interface MlfEntry extends Keyed<MlfEntry> {
  at: number
  /** The merged failure data (public keys only), as values by key index (FailureKeys). */
  vals: Values
  /** A report holds `vals`: the next merge must leave them as they are (it adopts the new failure's record). */
  shared: boolean
  /** The session's users, sorted; replaced (never changed) when one is added, so reports share it. */
  users: readonly string[] | undefined
  matches: string[] | undefined
  nofailMatches: string[] | undefined
  /** A failure without offender id is waiting for one. */
  pending: boolean
}

/** `users` with `u` added in sort order (a new frozen list), or `users` itself when it has `u`. */
function withUser(users: readonly string[] | undefined, u: string): readonly string[] {
  if (users === undefined) return Object.freeze([u])
  if (users.includes(u)) return users
  const out = users.slice()
  let i = out.length
  while (i > 0 && out[i - 1]! > u) i--
  out.splice(i, 0, u)
  return Object.freeze(out)
}

/**
 * The lines of `a`, `b` and `c` (each may be absent) in one new array of exactly their number:
 * an array grown by push reserves room for 17 on its first push, and sessions merge on most
 * failures.
 */
function joined(a: readonly string[] | undefined, b: readonly string[] | undefined, c: readonly string[] | undefined): string[] {
  const na = a === undefined ? 0 : a.length
  const nb = b === undefined ? 0 : b.length
  const out = new Array<string>(na + nb + (c === undefined ? 0 : c.length))
  for (let k = 0; k < na; k++) out[k] = a![k]!
  for (let k = 0; k < nb; k++) out[na + k] = b![k]!
  if (c !== undefined) for (let k = 0; k < c.length; k++) out[na + nb + k] = c[k]!
  return out
}

function slotsOf(re: CompiledRegex): {slots: GroupSlot[]; skipSlots: number[]} {
  const slots: GroupSlot[] = []
  const skipSlots: number[] = []
  for (const [name, idx] of re.groupNames) {
    if (name.startsWith('skiplines')) skipSlots.push(idx)
    else if (name.startsWith('alt_')) slots.push({name, idx, kind: 'alt', target: name.slice(4).replace(/_\d+$/, ''), key: -1})
    else if (name.startsWith('tuple_')) slots.push({name, idx, kind: 'tuple', target: name.slice(6).replace(/_\d+$/, ''), key: -1})
    else slots.push({name, idx, kind: 'plain', target: name, key: -1})
  }
  // alt_ groups apply after the plain ones; tuple parts in name order.
  slots.sort((a, b) => (a.kind === b.kind ? (a.name < b.name ? -1 : 1) : a.kind === 'plain' ? -1 : b.kind === 'plain' ? 1 : 0))
  return {slots, skipSlots}
}

interface BufferedLine {
  /** The line as read (date included). */
  raw: string
  /** The line with its date text cut out. */
  text: string
}

type Data = Record<string, unknown>

/**
 * A failure's data as values by key index: the filter knows every key its groups can fill, so
 * the hot path fills, merges and snapshots fixed-length arrays instead of building dictionaries
 * key by key (stores under varying names, spread copies). `undefined`: the key is absent. The
 * dictionary users see (FilterMatch.data) is built from it when first read.
 */
type Values = unknown[]

/** The keys of a filter's failure records, and the indices the code itself reads and writes. */
class FailureKeys {
  readonly names: string[] = []
  private readonly index = new Map<string, number>()
  readonly mlfid: number
  readonly mlfforget: number
  readonly mlfgained: number
  readonly nofail: number
  readonly user: number
  readonly fid: number
  readonly ip4: number
  readonly ip6: number
  readonly dns: number
  readonly cidr: number
  readonly ip: number
  /** A record with every key absent (copied, never written). */
  readonly blank: readonly unknown[]

  constructor(slotNames: Iterable<string>) {
    for (const n of slotNames) this.of(n)
    this.mlfid = this.of('mlfid')
    this.mlfforget = this.of('mlfforget')
    this.mlfgained = this.of('mlfgained')
    this.nofail = this.of('nofail')
    this.user = this.of('user')
    this.fid = this.of('fid')
    this.ip4 = this.of('ip4')
    this.ip6 = this.of('ip6')
    this.dns = this.of('dns')
    this.cidr = this.of('cidr')
    this.ip = this.of('ip')
    // Filled by push: a packed array, whose copies are packed too.
    const blank: unknown[] = []
    for (let k = 0; k < this.names.length; k++) blank.push(undefined)
    this.blank = blank
  }

  of(name: string): number {
    let i = this.index.get(name)
    if (i === undefined) {
      i = this.names.length
      this.names.push(name)
      this.index.set(name, i)
    }
    return i
  }

  /**
   * The order a failregex's data has as a dictionary: the prefregex's keys, the failregex's own,
   * in the order fail2ban inserts them, then the others (merged data, `ip`).
   */
  layout(first: readonly GroupSlot[]): Layout {
    const idx: number[] = []
    for (const s of first) if (s.key >= 0 && !idx.includes(s.key)) idx.push(s.key)
    for (let k = 0; k < this.names.length; k++) if (!idx.includes(k)) idx.push(k)
    return {idx, names: idx.map((k) => this.names[k]!), index: this.index}
  }
}

/** Key indices in dictionary order, and their names; `index`: every key's index. */
interface Layout {
  readonly idx: readonly number[]
  readonly names: readonly string[]
  readonly index: ReadonlyMap<string, number>
}

/** A failregex result; `data` is built from the values when first read. */
class Fail2banMatch implements FilterMatch {
  private record: Data | undefined = undefined
  constructor(
    public regex: number,
    public id: string | undefined,
    public isAddress: boolean,
    public time: number | undefined,
    private readonly vals: Values,
    private readonly layout: Layout,
    /** The mlfid session's users, sorted (frozen, shared). */
    private readonly users: readonly string[] | undefined,
    public lines: string[],
    public nofail: boolean,
    public pending: boolean,
  ) {}

  get data(): Data {
    let r = this.record
    if (r === undefined) {
      r = {}
      const {idx, names} = this.layout
      const vals = this.vals
      for (let k = 0; k < idx.length; k++) {
        const v = vals[idx[k]!]
        if (v !== undefined) r[names[k]!] = v
      }
      if (this.users !== undefined) r.users = this.users
      this.record = r
    }
    return r
  }

  set data(d: Data) {
    this.record = d
  }

  datum(key: string): unknown {
    if (this.record !== undefined) return this.record[key]
    if (key === 'users' && this.users !== undefined) return this.users
    const i = this.layout.index.get(key)
    return i === undefined ? undefined : this.vals[i]
  }

  toJSON(): FilterMatch {
    const {regex, id, isAddress, time, data, lines, nofail, pending} = this
    return {regex, id, isAddress, time, data, lines, nofail, pending}
  }
}

/** Shared empty array for results that stay empty (never mutated: replaced before adding). */
const NONE = Object.freeze([]) as unknown as never[]

const MLFID_CACHE_SIZE = 100
const MLFID_CACHE_TTL = 300
const ID_GROUPS = ['fid', 'ip4', 'ip6', 'dns', 'mlfid']

function truthy(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '' && v !== 0 && v !== false
}

export class Fail2banFilter {
  readonly name: string
  readonly prefregex: FilterRegex | undefined
  readonly failregex: readonly FilterRegex[]
  readonly ignoreregex: readonly FilterRegex[]
  readonly maxlines: number
  readonly usedns: string
  readonly dates: DateDetector

  private readonly checkAll: boolean
  private readonly now: () => number
  private readonly reader: LineReader
  private readonly earlyIgnore: boolean
  /** Literals of which a line must contain one to be worth searching (single-line filters). */
  private readonly required: readonly string[] | undefined
  private readonly hasMlfid: boolean
  /** Result index of the prefregex's `content` group, -1 when none. */
  private readonly contentGroup: number
  /** No alt_/tuple_ group fills `mlfid` or `mlfforget`: the plain groups alone decide them. */
  private readonly mlfidPlain: boolean
  private buffer: BufferedLine[] = []
  /**
   * For each first character (0-127, 128: any other), the failregexes a buffer starting with it
   * can match (FilterRegex.first), in order; the others are skipped without a search.
   */
  private readonly byFirst: readonly (readonly number[])[]
  private readonly allRegexes: readonly number[]
  private readonly mlfidCache = new KeyedTable<MlfEntry>(MLFID_CACHE_SIZE)
  private readonly keys: FailureKeys
  /** Per failregex: its data's dictionary order. */
  private readonly layouts: readonly Layout[]

  constructor(spec: Fail2banFilterSpec, opts: FilterRuntimeOptions = {}) {
    this.name = spec.name
    this.maxlines = Math.max(1, spec.maxlines ?? 1)
    this.usedns = spec.usedns ?? 'warn'
    this.checkAll = !!opts.checkAll
    this.now = opts.now ?? (() => Date.now() / 1000)
    const multiline = this.maxlines > 1
    this.prefregex = spec.prefregex ? this.compile(spec, 'prefregex', spec.prefregex, 0, false, !multiline) : undefined
    if (spec.failregex.length === 0) {
      throw new ConfigError('no failregex given', spec.origin?.failregex?.file, spec.origin?.failregex?.line, 'failregex')
    }
    // Single-line buffers never contain a newline (the prefregex content neither): `$` can be native.
    this.failregex = spec.failregex.map((r, i) => this.compile(spec, 'failregex', r, i, multiline, !multiline))
    this.ignoreregex = (spec.ignoreregex ?? []).map((r, i) => this.compile(spec, 'ignoreregex', r, i, false, !multiline))
    const prefIds = this.prefregex ? ID_GROUPS.filter((g) => this.prefregex!.re.groupNames.has(g)) : []
    for (const [i, fr] of this.failregex.entries()) {
      if (prefIds.length === 0 && !ID_GROUPS.some((g) => fr.re.groupNames.has(g))) {
        const o = spec.origin?.failregex
        throw new ConfigError(
          `failregex ${i + 1} has no failure-id group (<HOST>, <ADDR>, <IP4>, <IP6>, <DNS>, <F-ID> or <F-MLFID>): ${fr.source}`,
          o?.file, o?.line, 'failregex',
        )
      }
    }
    // The failure record's keys: the prefregex's groups by name (all taken as they are), the
    // failregexes' by the key they fill.
    const prefSlots = this.prefregex?.slots ?? []
    this.keys = new FailureKeys([...prefSlots.filter((x) => x.name !== 'content').map((x) => x.name), ...this.failregex.flatMap((r) => r.slots.map((x) => x.target))])
    for (const x of prefSlots) x.key = x.name === 'content' ? -1 : this.keys.of(x.name)
    for (const r of this.failregex) for (const x of r.slots) x.key = this.keys.of(x.target)
    this.layouts = this.failregex.map((r) => this.keys.layout([...prefSlots, ...r.slots]))
    this.allRegexes = this.failregex.map((_, i) => i)
    const byFirst: number[][] = []
    for (let c = 0; c <= 128; c++) {
      byFirst.push(this.allRegexes.filter((i) => {
        const first = this.failregex[i].first
        return first === undefined || (c < 128 ? first.ascii[c] !== 0 : first.other)
      }))
    }
    this.byFirst = byFirst
    this.contentGroup = this.prefregex?.re.groupNames.get('content') ?? -1
    this.hasMlfid = [this.prefregex, ...this.failregex].some((r) => r?.re.groupNames.has('mlfid'))
    this.mlfidPlain = [this.prefregex, ...this.failregex].every((r) => !r || r.slots.every((s) => s.kind === 'plain' || (s.target !== 'mlfid' && s.target !== 'mlfforget')))
    this.earlyIgnore = this.ignoreregex.length > 0 && this.ignoreregex.length < this.failregex.length - 2
    // The prefilter: the prefregex's required literals, else (when every failregex has some) theirs.
    if (!multiline) {
      if (this.prefregex) this.required = this.prefregex.re.required.length > 0 ? this.prefregex.re.required : undefined
      else if (this.failregex.every((r) => r.re.required.length > 0)) this.required = [...new Set(this.failregex.flatMap((r) => r.re.required))]
    }
    try {
      this.dates = new DateDetector(spec.datepattern, {timezone: opts.timezone, now: this.now})
    } catch (e) {
      const o = spec.origin?.datepattern
      throw new ConfigError(`bad datepattern: ${(e as Error).message}`, o?.file, o?.line, 'datepattern')
    }
    this.reader = new LineReader(this.dates, this.now, opts.maxLineLength)
  }

  /** Lines cut to the maximum line length so far. */
  get truncated(): number {
    return this.reader.truncated
  }

  private compile(spec: Fail2banFilterSpec, field: 'prefregex' | 'failregex' | 'ignoreregex', source: string, index: number, multiline: boolean, singleLine: boolean): FilterRegex {
    const expanded = rewriteInlineFlags(expandTags(source, this.usedns))
    try {
      const re = compilePython(expanded, {multiline, singleLine})
      const f = re.first
      const starts = f === undefined ? [] : f.prefix.length > 1 ? [f.prefix] : f.prefixes ?? []
      return {source, expanded, re, hits: 0, ...slotsOf(re), first: f, mlfid: re.groupNames.get('mlfid') ?? -1, starts}
    } catch (e) {
      if (!(e instanceof PatternError)) throw e
      const o = spec.origin?.[field]
      const which = field === 'prefregex' ? field : `${field} ${index + 1}`
      throw new ConfigError(`${which}: ${e.message.replace(/ at position \d+$/, '')}: ${source}`, o?.file, o?.line, field)
    }
  }

  /** Forget buffered lines and multi-line state (new log file). */
  reset(): void {
    this.buffer = []
    this.mlfidCache.clear()
    this.reader.reset()
  }

  /**
   * Feed one line (without its line terminator). `noDate` (journal mode) skips date detection
   * and uses the current time. `knownAscii`: true when the caller knows the line is pure ASCII (a
   * reader that checked its whole input chunk), which saves a scan of the line.
   */
  processLine(input: string, noDate = false, knownAscii?: boolean): LineResult {
    const r = this.reader
    r.read(input, noDate, knownAscii)
    const line = r.line
    const text = r.text
    const ascii = r.ascii
    const time = r.time
    const template = r.template
    // Most lines yield nothing: the result's arrays are shared empty ones until something is added.
    const result: LineResult = {matches: NONE, ignoredBy: NONE, prefregex: true, dateTemplate: template, time}

    let buf: string
    let bufAscii = ascii
    if (this.maxlines > 1) {
      this.buffer.push({raw: line, text})
      if (this.buffer.length > this.maxlines) this.buffer.shift()
      buf = this.joinBuffer(this.buffer)
      bufAscii = isAscii(buf)
    } else {
      buf = text
      if (text !== line) bufAscii = ascii || isAscii(text)
    }

    if (this.earlyIgnore) {
      for (let i = 0; i < this.ignoreregex.length; i++) {
        const ir = this.ignoreregex[i]
        if (ir.re.exec(buf, 0, bufAscii)) {
          ir.hits++
          result.ignoredBy = [i]
          return result
        }
      }
    }

    // Literal prefilter: a single-line buffer without any literal the regexes require cannot match.
    const required = this.required
    if (required !== undefined) {
      let found = false
      for (let i = 0; i < required.length; i++) if (buf.includes(required[i])) { found = true; break }
      if (!found) {
        result.prefregex = this.prefregex === undefined
        return result
      }
    }

    let pm: RegExpExecArray | undefined
    let content: string | undefined
    if (this.prefregex) {
      const m = this.prefregex.re.exec(buf, 0, bufAscii)
      if (!m) {
        result.prefregex = false
        return result
      }
      this.prefregex.hits++
      pm = m
      content = this.contentGroup >= 0 ? m[this.contentGroup] || undefined : undefined
    }

    // The lines the failregexes search. Like fail2ban, a prefregex <F-CONTENT> replaces them,
    // and a match (or an ignored match) removes the lines it covered before the next failregex
    // is tried (single-line filters in check-all mode keep the line for the other failregexes).
    const multi = this.maxlines > 1
    // Single-line filters build their one-line list only when a failregex matches.
    let lines: BufferedLine[] = NONE
    if (content !== undefined) {
      if (multi) lines = this.buffer = [{raw: line, text: content}]
    } else if (multi) lines = this.buffer
    // fail2ban searches content + "\n"; our `$` already allows a final newline, and without it a
    // single-line buffer stays newline-free (see singleLine in compile()).
    let failBuf: string | undefined = content ?? buf
    let failAscii = content === undefined ? bufAscii : bufAscii || isAscii(content)

    // The failregexes to try, by the buffer's first character; after a match changed the
    // buffer, those after the last one tried that the new buffer can start.
    let cands = this.candidates(failBuf)
    let n = 0
    let prev = -1
    for (;;) {
      if (failBuf === undefined) {
        failBuf = multi ? this.joinBuffer(lines) : ''
        failAscii = isAscii(failBuf)
        cands = this.candidates(failBuf)
        n = 0
        while (n < cands.length && cands[n] <= prev) n++
      }
      if (n >= cands.length) break
      const i = cands[n++]
      prev = i
      const fr = this.failregex[i]
      if (fr.starts.length > 0 && !startsWithOne(failBuf, fr.starts)) continue
      const m = fr.re.exec(failBuf, 0, failAscii)
      if (!m) continue
      fr.hits++
      if (!multi) {
        // One line: it is the whole match (no line list is built unless an ignoreregex needs one).
        if (this.ignoreregex.length > 0 && !this.earlyIgnore && this.ignoredMatch(failBuf, result)) {
          // The ignored line is removed: later failregexes (check-all mode) search nothing.
          failBuf = undefined
          if (!this.checkAll) break
          continue
        }
        const fm = this.failure(i, m, fr, pm, undefined, line, time)
        if (fm) {
          if (result.matches === (NONE as FilterMatch[])) result.matches = [fm]
          else result.matches.push(fm)
        }
        if (!this.checkAll) break
        continue
      }
      // The lines this match covers, and those that stay.
      const [matched, unmatched] = lines.length > 1 ? this.splitBuffer(lines, failBuf, m, fr) : [lines, []]
      if (this.ignoreregex.length > 0 && !this.earlyIgnore) {
        const ibuf = multi ? this.joinBuffer(matched) : failBuf
        const ia = isAscii(ibuf)
        let ignored = -1
        for (let j = 0; j < this.ignoreregex.length; j++) {
          if (this.ignoreregex[j].re.exec(ibuf, 0, ia)) { ignored = j; break }
        }
        if (ignored >= 0) {
          this.ignoreregex[ignored].hits++
          if (result.ignoredBy === (NONE as number[])) result.ignoredBy = []
          result.ignoredBy.push(ignored)
          lines = unmatched
          if (multi) this.buffer = unmatched
          failBuf = undefined
          if (!this.checkAll) break
          continue
        }
      }
      const fm = this.failure(i, m, fr, pm, matched, line, time)
      if (fm) {
        if (result.matches === (NONE as FilterMatch[])) result.matches = [fm]
        else result.matches.push(fm)
      }
      if (multi) {
        lines = this.buffer = unmatched
        failBuf = undefined
      }
      if (!this.checkAll) break
    }
    return result
  }

  /** The failregexes (indices, in order) a buffer can match, by its first character. */
  private candidates(buf: string): readonly number[] {
    if (buf.length === 0) return this.allRegexes
    const c = buf.charCodeAt(0)
    return this.byFirst[c < 128 ? c : 128]
  }

  /** Whether an ignoreregex hits a single-line match (counted in `result`). */
  private ignoredMatch(buf: string, result: LineResult): boolean {
    const ia = isAscii(buf)
    for (let j = 0; j < this.ignoreregex.length; j++) {
      if (this.ignoreregex[j].re.exec(buf, 0, ia)) {
        this.ignoreregex[j].hits++
        if (result.ignoredBy === (NONE as number[])) result.ignoredBy = []
        result.ignoredBy.push(j)
        return true
      }
    }
    return false
  }

  private joinBuffer(lines: readonly BufferedLine[]): string {
    let s = ''
    for (const l of lines) s += l.text + '\n'
    return s
  }

  /** Split `lines` into those a multi-line match covered (minus skipped lines) and the rest. */
  private splitBuffer(lines: BufferedLine[], buf: string, m: RegExpExecArray, fr: FilterRegex): [BufferedLine[], BufferedLine[]] {
    const start = m.index
    const end = m.index + m[0].length
    const lineStart = buf.lastIndexOf('\n', start) + 1
    const nl = buf.indexOf('\n', end === 0 ? buf.length - 1 : end - 1)
    const lineEnd = nl < 0 ? buf.length : nl + 1
    let c1 = 0
    let c2 = 0
    for (let p = buf.indexOf('\n'); p >= 0 && p < lineEnd; p = buf.indexOf('\n', p + 1)) {
      if (p < lineStart) c1++
      c2++
    }
    const matched = lines.slice(c1, c2)
    const unmatched = lines.slice(0, c1)
    let skipped = ''
    for (const idx of fr.skipSlots) if (m[idx]) skipped += m[idx]
    if (skipped) {
      let n = 0
      for (const s of skipped.split('\n')) {
        if (s === '') continue
        for (let k = n; k < matched.length; k++) {
          if (matched[k].text === s) {
            unmatched.push(matched.splice(k, 1)[0])
            n = k
            break
          }
        }
      }
    }
    unmatched.push(...lines.slice(c2))
    return [matched, unmatched]
  }

  /** Build the failure of one failregex match: data merge, mlfid state, offender id. */
  private failure(index: number, m: RegExpExecArray, fr: FilterRegex, pm: RegExpExecArray | undefined, matched: BufferedLine[] | undefined, raw: string, time: number | undefined): FilterMatch | undefined {
    const K = this.keys
    // With a multi-line failure id, `mlfforget` is consumed by the merge and never part of the
    // data. (Known here when only plain groups name them; else decided after the data is built.)
    let merging = false
    if (this.hasMlfid && this.mlfidPlain) {
      merging = (fr.mlfid >= 0 && m[fr.mlfid] !== undefined) ||
        (pm !== undefined && this.prefregex!.mlfid >= 0 && pm[this.prefregex!.mlfid] !== undefined)
    }
    let forget: unknown
    let vals: Values = K.blank.slice()
    if (pm !== undefined) {
      // The prefregex groups first; the failregex's own groups override them.
      const slots = this.prefregex!.slots
      for (let k = 0; k < slots.length; k++) {
        const slot = slots[k]!
        const v = pm[slot.idx]
        if (v === undefined || slot.key < 0) continue
        if (merging && slot.key === K.mlfforget) forget = v
        else vals[slot.key] = v
      }
    }
    const slots = fr.slots
    for (let k = 0; k < slots.length; k++) {
      const slot = slots[k]!
      const v = m[slot.idx]
      if (v === undefined) continue
      const key = slot.key
      if (slot.kind === 'plain') {
        if (merging && key === K.mlfforget) forget = v
        else vals[key] = v
      } else if (slot.kind === 'alt') {
        if (!truthy(vals[key])) vals[key] = v
      } else {
        const t = vals[key]
        if (Array.isArray(t)) t.push(v)
        else vals[key] = [v]
      }
    }
    const lines = matched === undefined ? [raw] : matched.length === 1 ? [matched[0]!.raw] : matched.map((l) => l.raw)

    let nofail = truthy(vals[K.nofail])
    let entry: MlfEntry | undefined
    if (this.hasMlfid && !this.mlfidPlain && vals[K.mlfid] !== undefined) {
      merging = true
      if (vals[K.mlfforget] !== undefined) {
        forget = vals[K.mlfforget]
        vals[K.mlfforget] = undefined
      }
    }
    if (merging) {
      entry = this.mergeMlfid(String(vals[K.mlfid]), vals, lines, truthy(forget))
      vals = entry.vals
      nofail = truthy(vals[K.nofail])
    }

    // Offender id.
    const fid = vals[K.fid] as string | undefined
    let addr: string | undefined
    let isAddress = false
    let rawId = (vals[K.ip4] ?? vals[K.ip6]) as string | undefined
    if (rawId !== undefined) {
      const cidr = vals[K.cidr]
      const c = cidr !== undefined ? canonicalSubnet(rawId, String(cidr)) : canonicalAddress(rawId)
      if (c !== undefined) { addr = c; isAddress = true } else addr = rawId
    } else if (vals[K.dns] !== undefined) {
      rawId = String(vals[K.dns])
      const c = canonicalAddress(rawId)
      addr = c ?? rawId
      isAddress = c !== undefined
    }
    let id: string | undefined
    if (addr !== undefined) {
      if (fid === undefined || fid === rawId || fid === addr) id = addr
      else {
        id = fid
        vals[K.ip] = addr
        isAddress = false
      }
    } else if (fid !== undefined) id = fid
    let pending = false
    if (id === undefined) {
      if (entry === undefined) return undefined
      entry.pending = true
      pending = true
    }
    const layout = this.layouts[index]!
    if (entry === undefined) return new Fail2banMatch(index, id, isAddress, time, vals, layout, undefined, lines, nofail, pending)
    // The session's data keeps changing with later lines: the report shares `vals` until then,
    // and the next merge writes into that failure's own record instead (mergeMlfid).
    entry.shared = true
    return new Fail2banMatch(index, id, isAddress, time, entry.vals, layout, entry.users, entry.matches ?? lines, nofail, pending)
  }

  /** fail2ban's multi-line failure merge (SPEC §4.10). `fail` has no `mlfforget` (it is `forget`). */
  private mergeMlfid(mlfid: string, fail: Values, lines: string[], forget: boolean): MlfEntry {
    const K = this.keys
    const now = this.now()
    const table = this.mlfidCache
    const hash = keyHash(mlfid)
    let cached = table.get(mlfid, hash)
    if (cached !== undefined && now - cached.at > MLFID_CACHE_TTL) {
      table.delete(cached)
      cached = undefined
    }
    let gained = false
    let nofail = false
    if (truthy(fail[K.mlfgained])) {
      gained = nofail = true
      if (!truthy(fail[K.nofail])) fail[K.nofail] = fail[K.mlfgained]
    } else if (truthy(fail[K.nofail])) nofail = true
    let entry: MlfEntry
    if (cached !== undefined) {
      entry = cached
      const g = entry.vals
      if (truthy(fail[K.user])) entry.users = withUser(entry.users, String(fail[K.user]))
      // The session's `nofail` and `mlfgained` do not carry over to this failure.
      const prevNofail = g[K.nofail] !== undefined || g[K.mlfgained] !== undefined
      if (gained) entry.pending = false
      if (!prevNofail && !entry.pending) entry.matches = undefined
      // The new values win (undefined and null do not). When a report holds the session's
      // values, they are merged into this failure's own record, which becomes the session's.
      if (entry.shared) {
        for (let k = 0; k < fail.length; k++) {
          const v = fail[k]
          if (v === undefined || v === null) fail[k] = k === K.nofail || k === K.mlfgained ? undefined : g[k]
        }
        entry.vals = fail
        entry.shared = false
      } else {
        if (prevNofail) g[K.nofail] = g[K.mlfgained] = undefined
        for (let k = 0; k < fail.length; k++) {
          const v = fail[k]
          if (v !== undefined && v !== null) g[k] = v
        }
      }
      if (forget) table.delete(entry)
    } else {
      entry = {
        key: mlfid, hash, chain: undefined, older: undefined, newer: undefined,
        at: now, vals: fail, shared: false, users: undefined, matches: undefined, nofailMatches: undefined, pending: false,
      }
      if (!forget) {
        if (truthy(fail[K.user])) entry.users = withUser(undefined, String(fail[K.user]))
        if (table.size >= MLFID_CACHE_SIZE) {
          const oldest = table.oldest()
          if (oldest !== undefined) table.delete(oldest)
        }
        table.add(entry)
      }
    }
    const pending = entry.pending
    entry.pending = false
    if (pending || (entry.users !== undefined && entry.users.length > 1)) {
      const d = entry.vals
      d[K.nofail] = d[K.mlfgained] = undefined
      nofail = gained = false
    }
    if (!nofail) {
      const before = entry.nofailMatches
      const prev = entry.matches
      entry.nofailMatches = undefined
      // `lines` is this failure's own list: it can be the session's when nothing precedes it.
      if (before === undefined && prev === undefined && !gained) entry.matches = lines
      else entry.matches = joined(before, prev, gained ? undefined : lines)
    } else if (!forget) entry.nofailMatches = joined(entry.nofailMatches, lines, undefined)
    return entry
  }
}

/**
 * `s.startsWith(p)` as a loop from the second character (the first one is known to match from
 * the first-character dispatch): a builtin call costs more than the few characters it compares.
 */
function startsWith(s: string, p: string): boolean {
  const n = p.length
  if (s.length < n) return false
  for (let i = 1; i < n; i++) if (s.charCodeAt(i) !== p.charCodeAt(i)) return false
  return s.charCodeAt(0) === p.charCodeAt(0)
}

/** Whether `s` starts with one of `texts`. */
function startsWithOne(s: string, texts: readonly string[]): boolean {
  for (let k = 0; k < texts.length; k++) if (startsWith(s, texts[k]!)) return true
  return false
}
