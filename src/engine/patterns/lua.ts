/**
 * Lua 5.3 patterns (the default failregex dialect of lua-spylog configs), compiled once into a
 * native JavaScript RegExp and matched with the semantics of Lua's `string.find` / `string.match`
 * (Lua 5.3 reference manual §6.4.1).
 *
 * Translation (pattern item → RegExp):
 * - `.` → `[^]` (any character, newline included); `%a %c %d %g %l %p %s %u %w %x` and their
 *   upper-case complements → explicit code-unit classes of the C locale (ASCII only: every
 *   non-ASCII code unit is in no lower-case class and in every upper-case one); the deprecated
 *   `%z` (the NUL character) is supported too, as in Lua 5.3.
 * - `%x` with `x` non-alphanumeric (or a letter that names no class) → the literal `x`.
 * - Sets `[...]` are read exactly as Lua's `matchbracketclass` reads them (ranges, `%` classes,
 *   `^` negation, `]` first is literal, and quirks such as `[a-%d]` being the range a..% plus `d`),
 *   then emitted as one explicit RegExp class.
 * - `* + ?` → the same greedy RegExp quantifiers, `-` → lazy `*?`. Lua and RegExp both search
 *   depth-first in the same priority order, so the first match found (and its captures) agree.
 *   Quantifiers apply to single-character items only; elsewhere `* + - ?` are literals.
 * - `^` anchors only as the first pattern character (at `init`, as in Lua: the exec copy is
 *   sticky); `$` anchors only as the last (emitted as `(?![^])`); elsewhere both are literals.
 * - Captures `( )` → RegExp groups (Lua capture k is RegExp group k); position captures `()` → an
 *   empty group whose start index is read through the `d` (hasIndices) flag, only for patterns
 *   that have one.
 * - Back-references `%1`–`%9` → `(?:\1)`–`(?:\9)`. Lua captures cannot be quantified and patterns have no
 *   alternation, so a referenced (closed) capture has always participated.
 * - Frontier `%f[set]` → a lookbehind on the previous character (NUL before the subject start;
 *   the real previous character when searching from a later `init`, as in Lua) and a lookahead
 *   on the current one (NUL at the end).
 * - `%bxy` has no RegExp equivalent: a pattern containing it runs on fengari's own Lua 5.3
 *   matcher instead (see "Fallback" below).
 * The exposed `regex` (no `g`/`y` flag; `d` when there are position captures) is the pattern
 * searched from the subject start; `find`/`match` use a sticky or global copy for `init`.
 *
 * Characters: Lua matches bytes, this module matches UTF-16 code units of JS strings — one code
 * unit is one "character" for `.`, classes, sets, positions (`start`, `end`, position captures
 * and `init` count code units). For ASCII subjects and patterns this is exactly Lua's behaviour,
 * and it is Lua's behaviour on a Latin-1 byte string for any code unit below 256. Non-ASCII text
 * differs from Lua on UTF-8 bytes only in granularity (Lua would see `é` as two bytes).
 *
 * Differences from Lua 5.3, all deliberate:
 * - Malformed patterns are rejected once, at compile time, with Lua's own wording (and the 0-based
 *   position of the offending item). Lua raises these errors lazily, only when the matcher reaches
 *   the faulty item, or, for an unclosed `(`, only after a successful match.
 * - Lua's string.find searches a pattern without any of the characters `^$*+?.([%-` as plain text;
 *   that shortcut only makes a difference for a pattern such as `a)`, which string.find takes
 *   literally and string.match rejects. Here it is rejected ("invalid pattern capture").
 * - Translated patterns have no recursion limit; Lua raises "pattern too complex" when more than
 *   about 200 quantified items and captures are nested along one match attempt. `%b` patterns,
 *   which do run on Lua's matcher, are rejected at compile time when they could hit that limit.
 * - A back-reference to a position capture (`()%1`) never matches: that is what C Lua 5.3 does
 *   (its length check fails); fengari's port differs there, so the fallback rewrites such a
 *   reference to an always-failing `%f[%z%Z]`.
 *
 * Fallback: `%b` patterns call fengari's `string.find` on a byte string in which every code unit
 * is one byte. Subjects and patterns whose code units are all below 256 are passed as Latin-1
 * bytes. Otherwise the non-ASCII code units of subject and pattern are mapped, order-preserving and
 * one-to-one, onto the bytes 128–255; both are exact. Only a subject with more than 128 distinct
 * non-ASCII code units cannot be mapped one-to-one: its code units that do not occur in the pattern
 * then share "gap" bytes placed between the pattern's own (so sets, ranges, classes and literals
 * still behave exactly), and captured texts are cut from the subject at positions reported by
 * position captures inserted after each capture (if that would exceed Lua's limits of 32
 * captures / back-references up to %9, the first occurrence of the captured bytes inside the match
 * is taken instead). The inexactness left in that case: a back-reference may take two distinct
 * such characters (absent from the pattern, between the same two pattern characters) for equal. A
 * `%b` pattern may hold at most 63 distinct non-ASCII code units. fengari's max_expand also loses
 * matches that end at index 0 (C Lua does not); the subject is handed over behind one NUL byte to
 * avoid that (see luaFind).
 */
import fengari from 'fengari'
import type {LuaState} from 'fengari'
import {PatternError} from './types.js'

export interface LuaMatch {
  /** 0-based index of the first matched code unit. */
  start: number
  /** 0-based index just past the match (exclusive); equals Lua's inclusive 1-based end. */
  end: number
  /** Capture values in order: strings, and 1-based positions (numbers) for position captures. */
  captures: (string | number)[]
}

export interface LuaPattern {
  readonly source: string
  /** Native regex when the pattern is translatable (everything except %b). */
  readonly regex: RegExp | undefined
  /** Literal strings of which at least one must occur in any matching subject ([] = no prefilter). */
  readonly required: readonly string[]
  /** Like Lua string.find(s, p, init): start/end plus captures; position captures are 1-based numbers as in Lua. init is 1-based like Lua (default 1; negative counts from the end). */
  find(subject: string, init?: number): LuaMatch | null
  /** Like Lua string.match: the captures, or [whole match] when the pattern has none. */
  match(subject: string, init?: number): (string | number)[] | null
}

/** Lua 5.3's LUA_MAXCAPTURES. */
const MAX_CAPTURES = 32
/** Lua 5.3's MAXCCALLS: nesting limit of its recursive matcher. */
const MAX_CALLS = 200
const MAX_UNIT = 0xffff

// Character codes used by the parser.
const C_PERCENT = 0x25
const C_LPAREN = 0x28
const C_RPAREN = 0x29
const C_STAR = 0x2a
const C_PLUS = 0x2b
const C_MINUS = 0x2d
const C_DOT = 0x2e
const C_0 = 0x30
const C_1 = 0x31
const C_9 = 0x39
const C_QUESTION = 0x3f
const C_LBRACKET = 0x5b
const C_RBRACKET = 0x5d
const C_CARET = 0x5e
const C_DOLLAR = 0x24
const C_b = 0x62
const C_f = 0x66

// ---------------------------------------------------------------------------------------------
// Code-unit sets: sorted, disjoint, non-adjacent inclusive ranges, flattened as [lo0, hi0, lo1, hi1, …].

type Ranges = readonly number[]

const ALL: Ranges = [0, MAX_UNIT]

function normalize(pairs: number[]): Ranges {
  const idx: number[] = []
  for (let i = 0; i < pairs.length; i += 2) idx.push(i)
  idx.sort((a, b) => pairs[a]! - pairs[b]!)
  const out: number[] = []
  for (const i of idx) {
    const lo = pairs[i]!
    const hi = pairs[i + 1]!
    const n = out.length
    if (n > 0 && lo <= out[n - 1]! + 1) {
      if (hi > out[n - 1]!) out[n - 1] = hi
    } else {
      out.push(lo, hi)
    }
  }
  return out
}

function complement(r: Ranges): Ranges {
  const out: number[] = []
  let next = 0
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! > next) out.push(next, r[i]! - 1)
    next = r[i + 1]! + 1
  }
  if (next <= MAX_UNIT) out.push(next, MAX_UNIT)
  return out
}

function contains(r: Ranges, c: number): boolean {
  for (let i = 0; i < r.length; i += 2) if (r[i]! <= c && c <= r[i + 1]!) return true
  return false
}

/** The single code unit a set consists of, or -1. */
function singleUnit(r: Ranges): number {
  return r.length === 2 && r[0] === r[1] ? r[0]! : -1
}

/** Lua's character classes in the C locale (lower-case letters; upper-case ones are complements). */
const CLASSES = new Map<number, Ranges>([
  [0x61 /* a */, [0x41, 0x5a, 0x61, 0x7a]],
  [0x63 /* c */, [0x00, 0x1f, 0x7f, 0x7f]],
  [0x64 /* d */, [0x30, 0x39]],
  [0x67 /* g */, [0x21, 0x7e]],
  [0x6c /* l */, [0x61, 0x7a]],
  [0x70 /* p */, [0x21, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x7e]],
  [0x73 /* s */, [0x09, 0x0d, 0x20, 0x20]],
  [0x75 /* u */, [0x41, 0x5a]],
  [0x77 /* w */, [0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a]],
  [0x78 /* x */, [0x30, 0x39, 0x41, 0x46, 0x61, 0x66]],
  [0x7a /* z */, [0x00, 0x00]],
])

/** What `%c` stands for (Lua's match_class): a class, its complement, or the literal `c`. */
function escapeClass(c: number): Ranges {
  const upper = c >= 0x41 && c <= 0x5a
  const base = CLASSES.get(upper ? c + 0x20 : c)
  if (base === undefined) return [c, c]
  return upper ? complement(base) : base
}

// ---------------------------------------------------------------------------------------------
// Parsing.

type Quantifier = '' | '*' | '+' | '-' | '?'

type Node =
  | {readonly t: 'set'; readonly ranges: Ranges; readonly q: Quantifier}
  | {readonly t: 'open'; readonly cap: number}
  | {readonly t: 'close'; readonly cap: number; readonly at: number}
  | {readonly t: 'position'; readonly cap: number}
  | {readonly t: 'backref'; readonly cap: number; readonly toPosition: boolean; readonly at: number}
  | {readonly t: 'frontier'; readonly ranges: Ranges}
  | {readonly t: 'balance'; readonly open: number; readonly close: number}
  | {readonly t: 'end'}

interface Parsed {
  readonly anchored: boolean
  readonly nodes: readonly Node[]
  /** Per capture (index k-1 for capture k): true when it is a position capture. */
  readonly positions: readonly boolean[]
  readonly hasBalance: boolean
  /** Items that make Lua's matcher recurse (captures, quantified items): its worst nesting depth - 1. */
  readonly recursions: number
}

interface CaptureState {
  readonly position: boolean
  closed: boolean
  readonly at: number
}

/** Lua's classend: index just past the single-character class starting at `p`. */
function classEnd(pat: string, p: number): number {
  const n = pat.length
  const c = pat.charCodeAt(p++)
  if (c === C_PERCENT) {
    if (p >= n) throw new PatternError("malformed pattern (ends with '%')", pat, p - 1)
    return p + 1
  }
  if (c === C_LBRACKET) {
    const open = p - 1
    if (pat.charCodeAt(p) === C_CARET) p++
    do {
      if (p >= n) throw new PatternError("malformed pattern (missing ']')", pat, open)
      if (pat.charCodeAt(p++) === C_PERCENT && p < n) p++
    } while (pat.charCodeAt(p) !== C_RBRACKET)
    return p + 1
  }
  return p
}

/** Lua's matchbracketclass, as a set: `p` is the index of `[`, `ec` of the closing `]`. */
function bracketSet(pat: string, p: number, ec: number): Ranges {
  let negate = false
  if (pat.charCodeAt(p + 1) === C_CARET) {
    negate = true
    p++
  }
  const acc: number[] = []
  while (++p < ec) {
    const c = pat.charCodeAt(p)
    if (c === C_PERCENT) {
      p++
      acc.push(...escapeClass(pat.charCodeAt(p)))
    } else if (pat.charCodeAt(p + 1) === C_MINUS && p + 2 < ec) {
      const hi = pat.charCodeAt(p + 2)
      if (c <= hi) acc.push(c, hi)
      p += 2
    } else {
      acc.push(c, c)
    }
  }
  const set = normalize(acc)
  return negate ? complement(set) : set
}

/** The set of a single-character class spanning [p, ep). */
function singleClass(pat: string, p: number, ep: number): Ranges {
  const c = pat.charCodeAt(p)
  if (c === C_DOT) return ALL
  if (c === C_PERCENT) return escapeClass(pat.charCodeAt(p + 1))
  if (c === C_LBRACKET) return bracketSet(pat, p, ep - 1)
  return [c, c]
}

function parse(pat: string): Parsed {
  const n = pat.length
  const anchored = n > 0 && pat.charCodeAt(0) === C_CARET
  let p = anchored ? 1 : 0
  const nodes: Node[] = []
  const caps: CaptureState[] = []
  let hasBalance = false
  let recursions = 0

  while (p < n) {
    const c = pat.charCodeAt(p)
    if (c === C_LPAREN) {
      if (caps.length >= MAX_CAPTURES) throw new PatternError('too many captures', pat, p)
      recursions++
      if (pat.charCodeAt(p + 1) === C_RPAREN) {
        caps.push({position: true, closed: true, at: p})
        nodes.push({t: 'position', cap: caps.length})
        p += 2
      } else {
        caps.push({position: false, closed: false, at: p})
        nodes.push({t: 'open', cap: caps.length})
        p++
      }
      continue
    }
    if (c === C_RPAREN) {
      let l = caps.length - 1
      while (l >= 0 && caps[l]!.closed) l--
      if (l < 0) throw new PatternError('invalid pattern capture', pat, p)
      caps[l]!.closed = true
      nodes.push({t: 'close', cap: l + 1, at: p})
      recursions++
      p++
      continue
    }
    if (c === C_DOLLAR && p + 1 === n) {
      nodes.push({t: 'end'})
      p++
      continue
    }
    if (c === C_PERCENT) {
      const d = pat.charCodeAt(p + 1)
      if (d === C_b) {
        if (p + 2 >= n - 1) throw new PatternError("malformed pattern (missing arguments to '%b')", pat, p)
        nodes.push({t: 'balance', open: pat.charCodeAt(p + 2), close: pat.charCodeAt(p + 3)})
        hasBalance = true
        p += 4
        continue
      }
      if (d === C_f) {
        if (pat.charCodeAt(p + 2) !== C_LBRACKET) throw new PatternError("missing '[' after '%f' in pattern", pat, p)
        const ep = classEnd(pat, p + 2)
        nodes.push({t: 'frontier', ranges: bracketSet(pat, p + 2, ep - 1)})
        p = ep
        continue
      }
      if (d >= C_0 && d <= C_9) {
        const l = d - C_1
        if (l < 0 || l >= caps.length || !caps[l]!.closed) {
          throw new PatternError(`invalid capture index %${l + 1}`, pat, p)
        }
        nodes.push({t: 'backref', cap: l + 1, toPosition: caps[l]!.position, at: p})
        p += 2
        continue
      }
    }
    // A single-character class, optionally quantified.
    const ep = classEnd(pat, p)
    const ranges = singleClass(pat, p, ep)
    const q = pat.charCodeAt(ep)
    if (q === C_STAR || q === C_PLUS || q === C_MINUS || q === C_QUESTION) {
      nodes.push({t: 'set', ranges, q: String.fromCharCode(q) as Quantifier})
      recursions++
      p = ep + 1
    } else {
      nodes.push({t: 'set', ranges, q: ''})
      p = ep
    }
  }
  for (const cap of caps) if (!cap.closed) throw new PatternError('unfinished capture', pat, cap.at)
  return {anchored, nodes, positions: caps.map((cap) => cap.position), hasBalance, recursions}
}

// ---------------------------------------------------------------------------------------------
// RegExp emission.

function hex(c: number): string {
  return c < 0x100 ? '\\x' + c.toString(16).padStart(2, '0') : '\\u' + c.toString(16).padStart(4, '0')
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
}

/** Characters that stand for themselves outside a RegExp class (no `u` flag). */
const PLAIN = new Set(Array.from(' !"#%&\',-/:;<=>@_`~', (ch) => ch.charCodeAt(0)))
/** RegExp syntax characters, escaped with a backslash outside a class. */
const SYNTAX = new Set(Array.from('\\^$.|?*+()[]{}', (ch) => ch.charCodeAt(0)))

function literal(c: number): string {
  if (isAlnum(c) || PLAIN.has(c)) return String.fromCharCode(c)
  if (SYNTAX.has(c)) return '\\' + String.fromCharCode(c)
  return hex(c)
}

function classBody(r: Ranges): string {
  let s = ''
  for (let i = 0; i < r.length; i += 2) {
    const lo = r[i]!
    const hi = r[i + 1]!
    const a = isAlnum(lo) ? String.fromCharCode(lo) : hex(lo)
    if (lo === hi) s += a
    else s += a + (hi === lo + 1 ? '' : '-') + (isAlnum(hi) ? String.fromCharCode(hi) : hex(hi))
  }
  return s
}

/** One RegExp atom matching exactly one code unit of the set. */
function emitSet(r: Ranges): string {
  const single = singleUnit(r)
  if (single >= 0) return literal(single)
  if (r.length === 0) return '[]'
  if (r[r.length - 1] === MAX_UNIT) {
    const rest = complement(r)
    return rest.length === 0 ? '[^]' : '[^' + classBody(rest) + ']'
  }
  return '[' + classBody(r) + ']'
}

const QUANTIFIERS: Record<Quantifier, string> = {'': '', '*': '*', '+': '+', '-': '*?', '?': '?'}

function emit(nodes: readonly Node[]): string {
  let src = ''
  for (const node of nodes) {
    switch (node.t) {
      case 'set':
        src += emitSet(node.ranges) + QUANTIFIERS[node.q]
        break
      case 'open':
        src += '('
        break
      case 'close':
        src += ')'
        break
      case 'position':
        src += '()'
        break
      case 'backref':
        // C Lua 5.3 never matches a back-reference to a position capture.
        src += node.toPosition ? '[]' : `(?:\\${node.cap})`
        break
      case 'frontier': {
        const inSet = emitSet(node.ranges)
        const outSet = emitSet(complement(node.ranges))
        // The character before the subject start and at its end counts as NUL.
        src += contains(node.ranges, 0) ? `(?<=${outSet})(?!${outSet})` : `(?<!${inSet})(?=${inSet})`
        break
      }
      case 'end':
        src += '(?![^])'
        break
      case 'balance':
        throw new Error('internal: %b cannot be translated to a RegExp')
    }
  }
  return src
}

// ---------------------------------------------------------------------------------------------
// Prefilter.

/** The longest literal run every match must contain (captures, anchors and frontiers are zero-width). */
function requiredLiterals(nodes: readonly Node[]): string[] {
  let best = ''
  let run = ''
  const flush = (): void => {
    if (run.length > best.length) best = run
    run = ''
  }
  for (const node of nodes) {
    switch (node.t) {
      case 'set': {
        const single = singleUnit(node.ranges)
        if (single < 0) {
          flush()
          break
        }
        const ch = String.fromCharCode(single)
        if (node.q === '') {
          run += ch
        } else if (node.q === '+') {
          // `x+` contributes one x to the run before it, and its last x starts the next run.
          run += ch
          flush()
          run = ch
        } else {
          flush()
        }
        break
      }
      case 'balance': {
        // %bxy matches x…y (at least two characters).
        run += String.fromCharCode(node.open)
        flush()
        run = String.fromCharCode(node.close)
        break
      }
      case 'backref':
        flush()
        break
      default:
        break // zero-width
    }
  }
  flush()
  return best.length > 0 ? [best] : []
}

// ---------------------------------------------------------------------------------------------
// Matching.

/** 0-based start for a Lua `init` (1-based, negative from the end), or -1 when past the end. */
function startIndex(length: number, init: number | undefined): number {
  if (init === undefined) return 0
  if (!Number.isInteger(init)) throw new RangeError(`Lua pattern init must be an integer, got ${init}`)
  let pos = init >= 0 ? init : -init > length ? 0 : length + init + 1
  if (pos < 1) pos = 1
  else if (pos > length + 1) return -1
  return pos - 1
}

class RegexPattern implements LuaPattern {
  readonly regex: RegExp
  /** Stateful copy for searching from `init`: sticky when anchored, global otherwise. */
  private readonly searcher: RegExp
  private readonly captureCount: number
  /** Per capture (k-1), whether it is a position capture; undefined when there are none. */
  private readonly positions: readonly boolean[] | undefined

  constructor(
    readonly source: string,
    parsed: Parsed,
    readonly required: readonly string[],
  ) {
    const body = emit(parsed.nodes)
    const hasPositions = parsed.positions.includes(true)
    const flags = hasPositions ? 'd' : ''
    this.regex = new RegExp((parsed.anchored ? '^' : '') + body, flags)
    this.searcher = new RegExp(body, flags + (parsed.anchored ? 'y' : 'g'))
    this.captureCount = parsed.positions.length
    this.positions = hasPositions ? parsed.positions : undefined
  }

  private exec(subject: string, init: number | undefined): RegExpExecArray | null {
    const from = startIndex(subject.length, init)
    if (from < 0) return null
    const re = this.searcher
    re.lastIndex = from
    return re.exec(subject)
  }

  private captures(m: RegExpExecArray): (string | number)[] {
    const out: (string | number)[] = []
    const positions = this.positions
    for (let k = 1; k <= this.captureCount; k++) {
      out.push(positions !== undefined && positions[k - 1] ? m.indices![k]![0] + 1 : m[k]!)
    }
    return out
  }

  find(subject: string, init?: number): LuaMatch | null {
    const m = this.exec(subject, init)
    if (m === null) return null
    return {start: m.index, end: m.index + m[0].length, captures: this.captures(m)}
  }

  match(subject: string, init?: number): (string | number)[] | null {
    const m = this.exec(subject, init)
    if (m === null) return null
    return this.captureCount === 0 ? [m[0]] : this.captures(m)
  }
}

// --- fengari fallback (%b) ----------------------------------------------------------------

let luaState: LuaState | undefined

/** A Lua state whose stack holds [string table, string.find] between calls. */
function lua(): LuaState {
  if (luaState === undefined) {
    const L = fengari.lauxlib.luaL_newstate()
    fengari.lauxlib.luaL_requiref(L, fengari.to_luastring('string'), fengari.lualib.luaopen_string, 0)
    fengari.lua.lua_getfield(L, 1, fengari.to_luastring('find'))
    luaState = L
  }
  return luaState
}

/** Largest code unit of `s` (0 for ""). */
function maxUnit(s: string): number {
  let max = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > max) max = c
  }
  return max
}

/** Latin-1 bytes of `s`, after `pad` leading NUL bytes. */
function latin1Bytes(s: string, pad: number): Uint8Array {
  const out = new Uint8Array(s.length + pad)
  for (let i = 0; i < s.length; i++) out[i + pad] = s.charCodeAt(i)
  return out
}

/** Bytes of `s` (ASCII kept, other code units through `map`), after `pad` leading NUL bytes. */
function mappedBytes(s: string, map: (c: number) => number, pad: number): Uint8Array {
  const out = new Uint8Array(s.length + pad)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out[i + pad] = c < 0x80 ? c : map(c)
  }
  return out
}

function decode(bytes: Uint8Array, unit: (b: number) => number): string {
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(unit(bytes[i]!))
  return s
}

const identity = (b: number): number => b

/** Index of the first element of `sorted` >= c. */
function lowerBound(sorted: readonly number[], c: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < c) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Most distinct non-ASCII code units a %b pattern may hold (each needs a byte plus a gap byte). */
const MAX_FALLBACK_NON_ASCII = 63

/** Lua's pattern text for the fallback, and where each original capture lands in its results. */
interface Rewritten {
  readonly source: string
  /** Per original capture: 0-based index of its value among Lua's results. */
  readonly index: readonly number[]
  /** Per original string capture: 0-based index of the position capture inserted after it (else -1). */
  readonly tracker: readonly number[]
}

/**
 * The pattern as handed to fengari: back-references to position captures become the never-matching
 * `%f[%z%Z]` (C Lua's behaviour, which fengari's port lacks). With `track`, a position capture `()`
 * is also inserted after every string capture, so that a capture's end (and with its length, its
 * start) is known even when its bytes cannot be mapped back to code units; back-references are
 * renumbered. Undefined when tracking would exceed Lua's limits (9 back-references, 32 captures,
 * matcher nesting).
 */
function rewrite(source: string, parsed: Parsed, track: boolean): Rewritten | undefined {
  const index: number[] = []
  const tracker: number[] = []
  let out = ''
  let from = 0
  let opened = 0
  let inserted = 0
  for (const node of parsed.nodes) {
    if (node.t === 'open' || node.t === 'position') {
      index[node.cap - 1] = node.cap - 1 + inserted
      tracker[node.cap - 1] = -1
      opened++
    } else if (node.t === 'close' && track) {
      out += source.slice(from, node.at + 1) + '()'
      from = node.at + 1
      tracker[node.cap - 1] = opened + inserted
      inserted++
    } else if (node.t === 'backref') {
      let ref: string
      if (node.toPosition) {
        ref = '%f[%z%Z]'
      } else {
        const k = index[node.cap - 1]! + 1
        if (k > 9) return undefined
        ref = '%' + k
      }
      out += source.slice(from, node.at) + ref
      from = node.at + 2
    }
  }
  out += source.slice(from)
  if (opened + inserted > MAX_CAPTURES || parsed.recursions + inserted >= MAX_CALLS) return undefined
  return {source: out, index, tracker}
}

function codeUnits(s: string): number[] {
  const units = new Set<number>()
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) units.add(c)
  }
  return [...units].sort((a, b) => a - b)
}

/** What string.find returned: 0-based start, exclusive end, and the raw capture values. */
interface RawMatch {
  start: number
  end: number
  values: (Uint8Array | number)[]
}

/**
 * Run fengari's string.find from 0-based `from`; throws PatternError if Lua raises an error.
 * `subject` carries one leading NUL byte that is not part of the subject: fengari's max_expand
 * tests a match result for truthiness, so it drops a match ending at index 0 (`x*%f[x]` on "x"),
 * which C Lua finds. Searching from index 1 avoids index 0; the NUL is exactly what Lua's frontier
 * assumes before the subject start, and `^` anchors at `init`, so nothing else changes. Positions
 * are shifted back here.
 */
function luaFind(subject: Uint8Array, pattern: Uint8Array, from: number, source: string): RawMatch | null {
  const api = fengari.lua
  const L = lua()
  api.lua_settop(L, 2)
  api.lua_pushvalue(L, 2)
  api.lua_pushlstring(L, subject, subject.length)
  api.lua_pushlstring(L, pattern, pattern.length)
  api.lua_pushinteger(L, from + 2)
  try {
    if (api.lua_pcall(L, 3, api.LUA_MULTRET, 0) !== api.LUA_OK) {
      throw new PatternError(api.lua_tojsstring(L, -1) ?? 'error in the Lua pattern matcher', source)
    }
    if (api.lua_type(L, 3) !== api.LUA_TNUMBER) return null
    const values: (Uint8Array | number)[] = []
    const top = api.lua_gettop(L)
    for (let i = 5; i <= top; i++) {
      values.push(api.lua_type(L, i) === api.LUA_TNUMBER ? api.lua_tointeger(L, i) - 1 : api.lua_tolstring(L, i)!)
    }
    return {start: api.lua_tointeger(L, 3) - 2, end: api.lua_tointeger(L, 4) - 1, values}
  } finally {
    api.lua_settop(L, 2)
  }
}

class FallbackPattern implements LuaPattern {
  readonly regex = undefined
  private readonly captureCount: number
  /** The pattern handed to Lua, and its Latin-1 bytes when all its code units are below 256. */
  private readonly plain: Rewritten
  private readonly plainLatin1: Uint8Array | undefined
  /** Sorted distinct code units >= 128 of the pattern. */
  private readonly nonAscii: readonly number[]
  /** For subjects with more than 128 distinct non-ASCII code units: the gap-mapped pattern. */
  private readonly gapped: {readonly rewritten: Rewritten; readonly bytes: Uint8Array; readonly tracked: boolean}

  constructor(
    readonly source: string,
    parsed: Parsed,
    readonly required: readonly string[],
  ) {
    if (parsed.recursions >= MAX_CALLS) throw new PatternError('pattern too complex', source)
    this.captureCount = parsed.positions.length
    this.plain = rewrite(source, parsed, false)!
    this.plainLatin1 = maxUnit(this.plain.source) < 0x100 ? latin1Bytes(this.plain.source, 0) : undefined
    this.nonAscii = codeUnits(source)
    if (this.nonAscii.length > MAX_FALLBACK_NON_ASCII) {
      throw new PatternError(
        `a pattern with %b may hold at most ${MAX_FALLBACK_NON_ASCII} distinct non-ASCII characters`,
        source,
      )
    }
    const tracked = rewrite(source, parsed, true)
    const rewritten = tracked ?? this.plain
    this.gapped = {rewritten, bytes: mappedBytes(rewritten.source, (c) => this.gapByte(c), 0), tracked: tracked !== undefined}
  }

  /** Gap mapping: the pattern's i-th non-ASCII unit → 129 + 2i, units between → the even byte between. */
  private gapByte(c: number): number {
    const i = lowerBound(this.nonAscii, c)
    return this.nonAscii[i] === c ? 129 + 2 * i : 128 + 2 * i
  }

  find(subject: string, init?: number): LuaMatch | null {
    const from = startIndex(subject.length, init)
    if (from < 0) return null
    const req = this.required
    if (req.length > 0 && subject.indexOf(req[0]!, from) < 0) return null

    if (this.plainLatin1 !== undefined && maxUnit(subject) < 0x100) {
      const raw = luaFind(latin1Bytes(subject, 1), this.plainLatin1, from, this.source)
      return raw === null ? null : this.decoded(raw, identity)
    }
    const units = new Set<number>(this.nonAscii)
    for (let i = 0; i < subject.length; i++) {
      const c = subject.charCodeAt(i)
      if (c >= 0x80) units.add(c)
    }
    if (units.size <= 128) {
      // Exact: an order-preserving one-to-one map of the non-ASCII units onto 128..255.
      const sorted = [...units].sort((a, b) => a - b)
      const byteOf = new Map<number, number>()
      sorted.forEach((c, i) => byteOf.set(c, 128 + i))
      const map = (c: number): number => byteOf.get(c)!
      const raw = luaFind(mappedBytes(subject, map, 1), mappedBytes(this.plain.source, map, 0), from, this.source)
      return raw === null ? null : this.decoded(raw, (b) => (b < 0x80 ? b : sorted[b - 128]!))
    }
    const mapped = mappedBytes(subject, (c) => this.gapByte(c), 1)
    const raw = luaFind(mapped, this.gapped.bytes, from, this.source)
    if (raw === null) return null
    return this.gapped.tracked ? this.tracked(raw, subject) : this.located(raw, subject, mapped)
  }

  match(subject: string, init?: number): (string | number)[] | null {
    const m = this.find(subject, init)
    if (m === null) return null
    return this.captureCount > 0 ? m.captures : [subject.slice(m.start, m.end)]
  }

  /** Captures from a one-to-one byte mapping. */
  private decoded(raw: RawMatch, unit: (b: number) => number): LuaMatch {
    const captures = raw.values.map((v) => (typeof v === 'number' ? v : decode(v, unit)))
    return {start: raw.start, end: raw.end, captures}
  }

  /** Captures cut from the subject at the ends reported by the inserted position captures (exact). */
  private tracked(raw: RawMatch, subject: string): LuaMatch {
    const {index, tracker} = this.gapped.rewritten
    const captures: (string | number)[] = []
    for (let k = 0; k < this.captureCount; k++) {
      const value = raw.values[index[k]!]!
      if (typeof value === 'number') {
        captures.push(value)
      } else {
        const end = (raw.values[tracker[k]!] as number) - 1
        captures.push(subject.slice(end - value.length, end))
      }
    }
    return {start: raw.start, end: raw.end, captures}
  }

  /** Last resort (patterns too large to track): the first occurrence of the bytes inside the match. */
  private located(raw: RawMatch, subject: string, mapped: Uint8Array): LuaMatch {
    const captures = raw.values.map((v) => {
      if (typeof v === 'number') return v
      const at = locate(mapped, v, raw.start, raw.end)
      return at < 0 ? decode(v, identity) : subject.slice(at, at + v.length)
    })
    return {start: raw.start, end: raw.end, captures}
  }
}

/** First index in [from, end - bytes.length] where `mapped` (NUL-padded by one) holds `bytes`, or -1. */
function locate(mapped: Uint8Array, bytes: Uint8Array, from: number, end: number): number {
  const len = bytes.length
  for (let i = from; i + len <= end; i++) {
    let j = 0
    while (j < len && mapped[i + 1 + j] === bytes[j]) j++
    if (j === len) return i
  }
  return -1
}

/**
 * Compile a Lua 5.3 pattern. Throws PatternError, with Lua's wording and the 0-based position of
 * the offending item, when the pattern is malformed.
 */
export function compileLua(pattern: string): LuaPattern {
  const parsed = parse(pattern)
  const required = requiredLiterals(parsed.nodes)
  return parsed.hasBalance ? new FallbackPattern(pattern, parsed, required) : new RegexPattern(pattern, parsed, required)
}

/**
 * For tests: compile `pattern` onto fengari's matcher even when it is translatable, to check the
 * fallback's code-unit mapping against the RegExp translation.
 * @internal
 */
export function compileLuaOnFengari(pattern: string): LuaPattern {
  const parsed = parse(pattern)
  return new FallbackPattern(pattern, parsed, requiredLiterals(parsed.nodes))
}
