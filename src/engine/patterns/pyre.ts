/**
 * Python `re` (fail2ban) and PCRE (lua-spylog `engine = 'pcre'`) regexes, translated to native
 * V8 RegExps with the same meaning.
 *
 * The pattern is parsed into a small syntax tree and re-emitted. What differs between the source
 * dialect and JavaScript is translated, never dropped; what cannot be expressed is a
 * PatternError at load time, never a silently different match:
 *
 * - named groups become numbered groups (names are kept in `groupNames`);
 * - conditionals `(?(g)yes|no)` and back-references to groups that may not have participated use
 *   a participation test: inside a look-behind anchored at the subject start, `(?<!\N)` holds
 *   only when group N captured non-empty text (at position 0 only an empty text can precede).
 *   Groups that may capture the empty string get a helper "marker" group that captures one
 *   character next to them. Limit: in an EMPTY subject no character exists, so there such a
 *   group reads as not participating (filters never search empty buffers with these);
 * - atomic groups and possessive quantifiers use the exact emulation `(?=(X))\N`;
 * - `$`, `^`, `.`, `\A`, `\Z` get their source-dialect meaning (Python's `$` also matches before a
 *   final newline; `.` excludes only `\n`);
 * - each pattern is compiled in three variants, chosen per subject with one scan (exec):
 *   - ASCII (non-empty pure-ASCII subjects) and BMP (non-ASCII subjects without surrogate code
 *     units): no `u` flag, no `i` flag, no look-arounds of our own, every class written out for
 *     the code points such subjects contain, so that V8 can re-run a line that makes them
 *     backtrack excessively on its linear-time engine (safety.ts). That engine refuses `u`,
 *     `i`, look-arounds, back-references and counted repetitions replicated more than 16 times
 *     (X{17}, X{16,}, (?:X{4}){5}; nested single-character X{m,n} are rewritten, see emitLoop),
 *     and runs a class as one thread per range. Python's `\w` has hundreds of BMP ranges, so the
 *     BMP variant matches a permuted subject in which the non-ASCII characters are grouped by
 *     category (PiTables): its classes have a few ranges, and captures are mapped back;
 *   - Unicode (subjects with surrogates, and empty ones): the `u` flag and `\p{…}` classes;
 * - Python's `\b`/`\B` are native in the ASCII variant; elsewhere they need look-arounds, except
 *   a boundary that ends the pattern after a definite word or non-word character, which
 *   consumes the next character instead (tailBoundaries) and is trimmed from the match;
 * - case-insensitivity follows Python's rules exactly (a character matches when its lower form
 *   is the pattern's or one of re._casefix's twins: i I İ ı are one class, so are s S ſ and
 *   k K U+212A; pyMembers for classes): it is expanded into classes in every variant, since no
 *   native flag has these rules. Case-insensitive back-references compare lower forms: such patterns (uniformly
 *   case-insensitive) run on the subject's lower form (Compiled.lowered). PCRE patterns keep
 *   JavaScript's `ui` in their Unicode variant and expand its folding elsewhere;
 * - Unicode data (`\w` = str.isalnum() or '_', `\d`, case mappings) comes from the engine's ICU,
 *   so where Python's Unicode version differs (characters added since), so do the results.
 */
import {PatternError, type CompiledRegex} from './types.js'
import {isAscii} from './ascii.js'
import './safety.js'

export type Flavor = 'python' | 'pcre'

export interface RegexOptions {
  /** Source dialect (default python). */
  flavor?: Flavor
  /** Compile as if with re.MULTILINE (`^`/`$` at every line). */
  multiline?: boolean
  /** Compile as if with re.IGNORECASE. */
  ignoreCase?: boolean
  /**
   * The caller guarantees subjects never contain a newline (one log line). `$` can then be the
   * native end anchor, which keeps the regex eligible for V8's linear-time fallback.
   */
  singleLine?: boolean
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

interface Flags {
  i: boolean // ignore case
  m: boolean // multiline anchors
  s: boolean // dot matches newline
  x: boolean // verbose
  a: boolean // ASCII classes
}

type ClassItem =
  /** `lit`: written as one character, not as a range (Python treats the two differently, see pyMembers). */
  | {k: 'range'; lo: number; hi: number; lit?: boolean}
  | {k: 'short'; c: 'd' | 'D' | 'w' | 'W' | 's' | 'S'}
  | {k: 'posix'; name: string; neg: boolean}

type Node =
  | {t: 'seq'; items: Node[]}
  | {t: 'alt'; alts: Node[]}
  | {t: 'char'; cp: number; f: Flags}
  | {t: 'any'; f: Flags}
  | {t: 'class'; neg: boolean; items: ClassItem[]; f: Flags}
  | {t: 'short'; c: 'd' | 'D' | 'w' | 'W' | 's' | 'S'; f: Flags}
  | {t: 'assert'; k: 'bol' | 'eol' | 'A' | 'Z' | 'z' | 'b' | 'B'; f: Flags}
  | {t: 'group'; num: number | undefined; body: Node}
  | {t: 'look'; behind: boolean; neg: boolean; body: Node}
  | {t: 'backref'; num: number; f: Flags; pos: number}
  | {t: 'cond'; num: number; yes: Node; no: Node}
  | {t: 'atomic'; body: Node}
  | {t: 'quant'; body: Node; min: number; max: number; lazy: boolean; possessive: boolean}

const MAX_DEPTH = 200

class Parser {
  private pos = 0
  private depth = 0
  /** Python group number → name. */
  readonly names = new Map<string, number>()
  groupCount = 0
  /** Groups that are closed (back-references may only name closed groups). */
  private readonly closed = new Set<number>()
  globalFlags: Flags

  constructor(
    private readonly src: string,
    private readonly flavor: Flavor,
    flags: Flags,
  ) {
    this.globalFlags = {...flags}
  }

  fail(msg: string, at = this.pos): never {
    throw new PatternError(msg, this.src, at)
  }

  parse(): Node {
    this.parseGlobalFlags()
    const node = this.parseAlt(this.globalFlags)
    if (this.pos < this.src.length) {
      if (this.src[this.pos] === ')') this.fail('unbalanced parenthesis')
      this.fail('unexpected character')
    }
    return node
  }

  /** Python: `(?aiLmsux)` groups at the very start set global flags. */
  private parseGlobalFlags(): void {
    for (;;) {
      const m = /^\(\?([aiLmsux]+)\)/.exec(this.src.slice(this.pos))
      if (!m) return
      this.applyFlagLetters(this.globalFlags, m[1], this.pos)
      this.pos += m[0].length
    }
  }

  private applyFlagLetters(f: Flags, letters: string, at: number, off = false): void {
    for (const ch of letters) {
      switch (ch) {
        case 'i': f.i = !off; break
        case 'm': f.m = !off; break
        case 's': f.s = !off; break
        case 'x': f.x = !off; break
        case 'a': f.a = !off; break
        case 'u': if (off) this.fail("bad inline flag: cannot turn off 'u'", at); f.a = false; break
        case 'L': this.fail("bad inline flag: 'L' (locale) is only valid for byte patterns", at)
        case 'n': case 'U': case 'J':
          if (this.flavor === 'pcre') this.fail(`inline flag '${ch}' is not supported`, at)
          this.fail(`unknown flag '${ch}'`, at)
        default: this.fail(`unknown flag '${ch}'`, at)
      }
    }
  }

  private peek(): string | undefined {
    return this.src[this.pos]
  }

  private skipVerbose(f: Flags): void {
    if (!f.x) return
    for (;;) {
      const c = this.src[this.pos]
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') this.pos++
      else if (c === '#') {
        while (this.pos < this.src.length && this.src[this.pos] !== '\n') this.pos++
      } else return
    }
  }

  private parseAlt(f: Flags): Node {
    if (++this.depth > MAX_DEPTH) this.fail('pattern nested too deeply')
    const flags = {...f}
    const alts: Node[] = [this.parseSeq(flags)]
    while (this.peek() === '|') {
      this.pos++
      alts.push(this.parseSeq(flags))
    }
    this.depth--
    return alts.length === 1 ? alts[0] : {t: 'alt', alts}
  }

  /** `flags` is mutable: PCRE inline flags change it for the rest of the enclosing group. */
  private parseSeq(flags: Flags): Node {
    const items: Node[] = []
    for (;;) {
      this.skipVerbose(flags)
      const c = this.peek()
      if (c === undefined || c === '|' || c === ')') break
      const start = this.pos
      let atom = this.parseAtom(flags)
      if (atom === null) continue
      this.skipVerbose(flags)
      const q = this.parseQuantifier()
      if (q) {
        if (atom.t === 'assert' || (atom.t === 'look')) {
          if (this.flavor === 'python' && atom.t === 'assert') this.fail('nothing to repeat', start)
          // A repeated assertion is the assertion itself (or nothing for min 0).
          if (q.min === 0) atom = {t: 'seq', items: []}
        } else {
          atom = {t: 'quant', body: atom, ...q}
        }
        this.skipVerbose(flags)
        const c2 = this.peek()
        if (c2 === '*' || c2 === '+' || c2 === '?' || (c2 === '{' && this.quantifierAhead())) this.fail('multiple repeat')
      }
      items.push(atom)
    }
    return items.length === 1 ? items[0] : {t: 'seq', items}
  }

  private quantifierAhead(): boolean {
    return /^\{(\d*)(,(\d*))?\}/.test(this.src.slice(this.pos)) && this.src[this.pos + 1] !== '}' &&
      !/^\{,?\}/.test(this.src.slice(this.pos)) && !(this.flavor === 'pcre' && /^\{,/.test(this.src.slice(this.pos)))
  }

  private parseQuantifier(): {min: number; max: number; lazy: boolean; possessive: boolean} | null {
    const c = this.peek()
    let min: number, max: number
    if (c === '*') { min = 0; max = Infinity; this.pos++ }
    else if (c === '+') { min = 1; max = Infinity; this.pos++ }
    else if (c === '?') { min = 0; max = 1; this.pos++ }
    else if (c === '{' && this.quantifierAhead()) {
      const m = /^\{(\d*)(,(\d*))?\}/.exec(this.src.slice(this.pos))!
      min = m[1] === '' ? 0 : Number(m[1])
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3])
      if (max < min) this.fail('min repeat greater than max repeat')
      if (min > 65535 || (max !== Infinity && max > 65535)) this.fail('the repetition number is too large')
      this.pos += m[0].length
    } else return null
    let lazy = false
    let possessive = false
    if (this.peek() === '?') { lazy = true; this.pos++ }
    else if (this.peek() === '+') { possessive = true; this.pos++ }
    return {min, max, lazy, possessive}
  }

  private parseAtom(flags: Flags): Node | null {
    const f = {...flags}
    const start = this.pos
    const c = this.src[this.pos++]
    switch (c) {
      case '.': return {t: 'any', f}
      case '^': return {t: 'assert', k: 'bol', f}
      case '$': return {t: 'assert', k: 'eol', f}
      case '*': case '+': case '?': this.fail('nothing to repeat', start)
      case '{':
        this.pos--
        if (this.quantifierAhead()) this.fail('nothing to repeat', start)
        this.pos++
        return {t: 'char', cp: 0x7b, f}
      case '[': return this.parseClass(f)
      case '(': return this.parseGroup(flags, start)
      case ')': this.fail('unbalanced parenthesis', start)
      case '\\': return this.parseEscape(f, start)
      default: {
        const cp = this.src.codePointAt(start)!
        if (cp > 0xffff) this.pos++
        return {t: 'char', cp, f}
      }
    }
  }

  private parseName(end: string, what: string): string {
    const close = this.src.indexOf(end, this.pos)
    if (close < 0) this.fail(`missing ${end}, unterminated name`)
    const name = this.src.slice(this.pos, close)
    if (!/^[\p{L}_][\p{L}\p{N}_]*$/u.test(name)) this.fail(`bad character in ${what} name '${name}'`)
    this.pos = close + end.length
    return name
  }

  private defineGroup(name: string | undefined, at: number): number {
    const num = ++this.groupCount
    if (name !== undefined) {
      if (this.names.has(name)) this.fail(`redefinition of group name '${name}' as group ${num}; was group ${this.names.get(name)}`, at)
      this.names.set(name, num)
    }
    return num
  }

  private closeGroup(num: number): void {
    this.closed.add(num)
  }

  private groupBody(flags: Flags, at: number): Node {
    const body = this.parseAlt(flags)
    if (this.peek() !== ')') this.fail('missing ), unterminated subpattern', at)
    this.pos++
    return body
  }

  private refByName(name: string, at: number): number {
    const num = this.names.get(name)
    if (num === undefined) this.fail(`unknown group name '${name}'`, at)
    return num
  }

  private backref(num: number, f: Flags, at: number): Node {
    if (num > this.groupCount) this.fail(`invalid group reference ${num}`, at)
    if (!this.closed.has(num)) this.fail('cannot refer to an open group', at)
    return {t: 'backref', num, f, pos: at}
  }

  private parseGroup(flags: Flags, start: number): Node {
    if (this.peek() !== '?') {
      const num = this.defineGroup(undefined, start)
      const body = this.groupBody(flags, start)
      this.closeGroup(num)
      return {t: 'group', num, body}
    }
    this.pos++
    const rest = this.src.slice(this.pos)
    const c = rest[0]
    if (rest.startsWith('P<') || (this.flavor === 'pcre' && (c === "'" || (c === '<' && rest[1] !== '=' && rest[1] !== '!')))) {
      this.pos += rest.startsWith('P<') ? 2 : 1
      const name = this.parseName(rest.startsWith('P<') || c === '<' ? '>' : "'", 'group')
      const num = this.defineGroup(name, start)
      const body = this.groupBody(flags, start)
      this.closeGroup(num)
      return {t: 'group', num, body}
    }
    if (rest.startsWith('P=')) {
      this.pos += 2
      const name = this.parseName(')', 'group')
      return this.backref(this.refByName(name, start), {...flags}, start)
    }
    if (rest.startsWith('P>') || rest.startsWith('R)') || rest.startsWith('&')) this.fail('recursive patterns are not supported', start)
    switch (c) {
      case ':': this.pos++; return {t: 'group', num: undefined, body: this.groupBody(flags, start)}
      case '=': case '!': {
        this.pos++
        return {t: 'look', behind: false, neg: c === '!', body: this.groupBody(flags, start)}
      }
      case '<': {
        const d = rest[1]
        if (d === '=' || d === '!') {
          this.pos += 2
          return {t: 'look', behind: true, neg: d === '!', body: this.groupBody(flags, start)}
        }
        this.fail('unknown extension ?<' + (d ?? ''), start)
      }
      case '>': this.pos++; return {t: 'atomic', body: this.groupBody(flags, start)}
      case '#': {
        const close = this.src.indexOf(')', this.pos)
        if (close < 0) this.fail('missing ), unterminated comment', start)
        this.pos = close + 1
        return null as unknown as Node // caller skips (see parseAtom's null contract)
      }
      case '(': return this.parseConditional(flags, start)
      default: break
    }
    // Flags: (?flags) (?flags:...) (?-flags:...) (?flags-flags:...)
    const m = /^([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(rest)
    if (!m) this.fail('unknown extension ?' + (c ?? ''), start)
    this.pos += m[0].length
    if (m[3] === ')') {
      if (m[2] !== undefined && this.flavor === 'python') this.fail('missing :', start)
      if (this.flavor === 'python') this.fail('global flags not at the start of the expression', start)
      // PCRE: the setting applies to the rest of the enclosing group.
      this.applyFlagLetters(flags, m[1], start)
      if (m[2]) this.applyFlagLetters(flags, m[2], start, true)
      return null as unknown as Node
    }
    const inner = {...flags}
    if (this.flavor === 'python' && /[aLu]/.test(m[2] ?? '')) this.fail('bad inline flag: cannot turn off flags a, u and L', start)
    this.applyFlagLetters(inner, m[1], start)
    if (m[2]) this.applyFlagLetters(inner, m[2], start, true)
    return {t: 'group', num: undefined, body: this.groupBody(inner, start)}
  }

  private parseConditional(flags: Flags, start: number): Node {
    this.pos++ // the second '('
    const close = this.src.indexOf(')', this.pos)
    if (close < 0) this.fail('missing ), unterminated name', start)
    let ref = this.src.slice(this.pos, close)
    if (this.flavor === 'pcre' && /^<.*>$|^'.*'$/.test(ref)) ref = ref.slice(1, -1)
    let num: number
    if (/^\d+$/.test(ref)) {
      num = Number(ref)
      if (num === 0 || num > this.groupCount) this.fail('invalid group reference ' + ref, this.pos)
    } else {
      if (this.flavor === 'python' && !/^[\p{L}_][\p{L}\p{N}_]*$/u.test(ref)) this.fail(`bad character in group name '${ref}'`, this.pos)
      num = this.refByName(ref, this.pos)
    }
    this.pos = close + 1
    const body = this.parseAlt(flags)
    if (this.peek() !== ')') this.fail('missing ), unterminated subpattern', start)
    this.pos++
    let yes: Node = body
    let no: Node = {t: 'seq', items: []}
    if (body.t === 'alt') {
      if (body.alts.length > 2) this.fail('conditional backref with more than two branches', start)
      yes = body.alts[0]
      no = body.alts[1]
    }
    return {t: 'cond', num, yes, no}
  }

  private hex(n: number, at: number): number {
    const h = this.src.slice(this.pos, this.pos + n)
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) this.fail(`incomplete escape \\${this.src[at + 1]}${h}`, at)
    this.pos += n
    return parseInt(h, 16)
  }

  /** Escapes valid both inside and outside classes. Returns a code point or undefined. */
  private commonEscape(c: string, at: number): number | undefined {
    switch (c) {
      case 'a': return 7
      case 'f': return 12
      case 'n': return 10
      case 'r': return 13
      case 't': return 9
      case 'v': if (this.flavor === 'pcre') return undefined; return 11
      case 'e': if (this.flavor === 'pcre') return 27; return undefined
      case 'x': {
        if (this.flavor === 'pcre' && this.peek() === '{') {
          const close = this.src.indexOf('}', this.pos)
          const h = this.src.slice(this.pos + 1, close)
          if (close < 0 || !/^[0-9a-fA-F]{1,6}$/.test(h)) this.fail('bad \\x{...} escape', at)
          this.pos = close + 1
          return parseInt(h, 16)
        }
        if (this.flavor === 'pcre') {
          const m = /^[0-9a-fA-F]{0,2}/.exec(this.src.slice(this.pos))!
          this.pos += m[0].length
          return m[0] === '' ? 0 : parseInt(m[0], 16)
        }
        return this.hex(2, at)
      }
      case 'u': if (this.flavor === 'pcre') return undefined; return this.hex(4, at)
      case 'U': {
        if (this.flavor === 'pcre') return undefined
        const cp = this.hex(8, at)
        if (cp > 0x10ffff) this.fail('bad escape \\U', at)
        return cp
      }
      case 'N':
        if (this.flavor === 'python' && this.peek() === '{') this.fail('named Unicode escapes \\N{...} are not supported; write the character or \\uXXXX', at)
        return undefined
      case 'c':
        if (this.flavor === 'pcre') {
          const ch = this.src[this.pos++]
          if (ch === undefined) this.fail('\\c at end of pattern', at)
          return ch.toUpperCase().charCodeAt(0) ^ 0x40
        }
        return undefined
      default: return undefined
    }
  }

  private parseEscape(f: Flags, at: number): Node {
    const c = this.src[this.pos++]
    if (c === undefined) this.fail('bad escape (end of pattern)', at)
    switch (c) {
      case 'd': case 'D': case 'w': case 'W': case 's': case 'S': return {t: 'short', c, f}
      case 'b': return {t: 'assert', k: 'b', f}
      case 'B': return {t: 'assert', k: 'B', f}
      case 'A': return {t: 'assert', k: 'A', f}
      case 'Z': return {t: 'assert', k: this.flavor === 'pcre' ? 'Z' : 'z', f}
      case 'z': if (this.flavor === 'pcre') return {t: 'assert', k: 'z', f}; break
      case 'h': case 'H':
        if (this.flavor === 'pcre') return {t: 'class', neg: c === 'H', items: [{k: 'range', lo: 9, hi: 9}, {k: 'range', lo: 32, hi: 32}, {k: 'range', lo: 0xa0, hi: 0xa0}], f}
        break
      case 'v': case 'V':
        if (this.flavor === 'pcre') return {t: 'class', neg: c === 'V', items: [{k: 'range', lo: 10, hi: 13}, {k: 'range', lo: 0x85, hi: 0x85}, {k: 'range', lo: 0x2028, hi: 0x2029}], f}
        break
      case 'Q':
        if (this.flavor === 'pcre') {
          let end = this.src.indexOf('\\E', this.pos)
          if (end < 0) end = this.src.length
          const lit = this.src.slice(this.pos, end)
          this.pos = Math.min(this.src.length, end + 2)
          return {t: 'seq', items: [...lit].map((ch) => ({t: 'char', cp: ch.codePointAt(0)!, f}) as Node)}
        }
        break
      case 'E': if (this.flavor === 'pcre') return {t: 'seq', items: []}; break
      case 'k':
        if (this.flavor === 'pcre') {
          const open = this.src[this.pos]
          const end = open === '<' ? '>' : open === "'" ? "'" : open === '{' ? '}' : undefined
          if (!end) this.fail('\\k must be followed by a group name in <>, \'\' or {}', at)
          this.pos++
          return this.backref(this.refByName(this.parseName(end, 'group'), at), f, at)
        }
        break
      case 'g':
        if (this.flavor === 'pcre') {
          const m = /^(?:\{(-?\d+|[A-Za-z_]\w*)\}|(-?\d+))/.exec(this.src.slice(this.pos))
          if (!m) this.fail('bad \\g reference', at)
          this.pos += m[0].length
          const ref = m[1] ?? m[2]
          let num: number
          if (/^-?\d+$/.test(ref)) {
            num = Number(ref)
            if (num < 0) num = this.groupCount + 1 + num
          } else num = this.refByName(ref, at)
          return this.backref(num, f, at)
        }
        break
    }
    if (c >= '0' && c <= '9') {
      // Octal escape or back-reference.
      if (c === '0') {
        const m = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))!
        this.pos += m[0].length
        return {t: 'char', cp: parseInt('0' + m[0], 8), f}
      }
      const m3 = /^[0-7]{2}/.exec(this.src.slice(this.pos))
      if (c <= '7' && m3) {
        const v = parseInt(c + m3[0], 8)
        if (v > 0o377) this.fail(`octal escape value \\${c}${m3[0]} outside of range 0-0o377`, at)
        this.pos += 2
        return {t: 'char', cp: v, f}
      }
      let digits = c
      if (/[0-9]/.test(this.src[this.pos] ?? '')) digits += this.src[this.pos++]
      return this.backref(Number(digits), f, at)
    }
    const cp = this.commonEscape(c, at)
    if (cp !== undefined) return {t: 'char', cp, f}
    if (/[A-Za-z]/.test(c)) this.fail(`bad escape \\${c}`, at)
    const lit = this.src.codePointAt(this.pos - 1)!
    if (lit > 0xffff) this.pos++
    return {t: 'char', cp: lit, f}
  }

  private parseClass(f: Flags): Node {
    const start = this.pos - 1
    let neg = false
    if (this.peek() === '^') { neg = true; this.pos++ }
    const items: ClassItem[] = []
    let first = true
    for (;;) {
      const c = this.peek()
      if (c === undefined) this.fail('unterminated character set', start)
      if (c === ']' && !first) { this.pos++; break }
      first = false
      if (this.flavor === 'pcre' && c === '[') {
        const pm = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos))
        if (pm) {
          if (!POSIX_CLASSES[pm[2]]) this.fail(`unknown POSIX class name '${pm[2]}'`)
          this.pos += pm[0].length
          items.push({k: 'posix', name: pm[2], neg: pm[1] === '^'})
          continue
        }
      }
      const lo = this.classAtom(start)
      if (typeof lo !== 'number') { items.push(lo); continue }
      if (this.peek() === '-' && this.src[this.pos + 1] !== ']' && this.src[this.pos + 1] !== undefined) {
        const dashAt = this.pos
        this.pos++
        const hi = this.classAtom(start)
        if (typeof hi !== 'number') {
          if (this.flavor === 'python') this.fail('bad character range', dashAt)
          items.push({k: 'range', lo, hi: lo}, {k: 'range', lo: 0x2d, hi: 0x2d}, hi)
          continue
        }
        if (hi < lo) this.fail('bad character range', dashAt)
        items.push({k: 'range', lo, hi})
      } else items.push({k: 'range', lo, hi: lo, lit: true})
    }
    return {t: 'class', neg, items, f}
  }

  private classAtom(start: number): number | ClassItem {
    const c = this.src[this.pos]
    if (c !== '\\') {
      const cp = this.src.codePointAt(this.pos)!
      this.pos += cp > 0xffff ? 2 : 1
      return cp
    }
    const at = this.pos
    this.pos++
    const e = this.src[this.pos++]
    if (e === undefined) this.fail('unterminated character set', start)
    switch (e) {
      case 'd': case 'D': case 'w': case 'W': case 's': case 'S': return {k: 'short', c: e}
      case 'b': return 8
    }
    if (e >= '0' && e <= '7') {
      const m = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))!
      this.pos += m[0].length
      const v = parseInt(e + m[0], 8)
      if (v > 0o377) this.fail('octal escape value outside of range 0-0o377', at)
      return v
    }
    if (e === '8' || e === '9') this.fail(`bad escape \\${e}`, at)
    const cp = this.commonEscape(e, at)
    if (cp !== undefined) return cp
    if (this.flavor === 'pcre' && (e === 'h' || e === 'v')) this.fail(`\\${e} inside a character set is not supported`, at)
    if (/[A-Za-z]/.test(e)) this.fail(`bad escape \\${e}`, at)
    const lit = this.src.codePointAt(this.pos - 1)!
    if (lit > 0xffff) this.pos++
    return lit
  }
}

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: '0-9A-Za-z', upper: 'A-Z', lower: 'a-z', space: '\\t-\\r ',
  blank: '\\t ', punct: '!-\\/:-@\\[-`\\{-~', xdigit: '0-9A-Fa-f', word: '0-9A-Za-z_', cntrl: '\\x00-\\x1f\\x7f',
  print: ' -~', graph: '!-~', ascii: '\\x00-\\x7f',
}

// ---------------------------------------------------------------------------------------------
// Analysis

function minLength(n: Node): number {
  switch (n.t) {
    case 'seq': return n.items.reduce((s, x) => s + minLength(x), 0)
    case 'alt': return Math.min(...n.alts.map(minLength))
    case 'char': case 'any': case 'class': case 'short': return 1
    case 'assert': case 'look': case 'backref': return 0
    case 'group': case 'atomic': return minLength(n.body)
    case 'cond': return Math.min(minLength(n.yes), minLength(n.no))
    case 'quant': return n.min === 0 ? 0 : n.min * minLength(n.body)
  }
}

/**
 * A repeated body that can match empty is translated unchanged only when it has no capture
 * groups, no alternation and no lazy quantifier: then both engines prefer non-empty iterations
 * and differ only in whether a final empty iteration is counted, which is then invisible.
 */
// ---------------------------------------------------------------------------------------------
// First-character sets (supersets), used to prove that a nullable repetition is safe.

/** Sorted, merged code point ranges as a flat list [lo0, hi0, lo1, hi1, …]. */
type Ranges = number[]
const MAX_CP = 0x10ffff
const ALL: Ranges = [0, MAX_CP]

function rNorm(pairs: [number, number][]): Ranges {
  pairs.sort((a, b) => a[0] - b[0])
  const out: Ranges = []
  for (const [lo, hi] of pairs) {
    const n = out.length
    if (n > 0 && lo <= out[n - 1] + 1) out[n - 1] = Math.max(out[n - 1], hi)
    else out.push(lo, hi)
  }
  return out
}

function rPairs(r: Ranges): [number, number][] {
  const out: [number, number][] = []
  for (let i = 0; i < r.length; i += 2) out.push([r[i], r[i + 1]])
  return out
}

function rUnion(a: Ranges, b: Ranges): Ranges {
  return rNorm([...rPairs(a), ...rPairs(b)])
}

function rComplement(a: Ranges): Ranges {
  const out: Ranges = []
  let next = 0
  for (let i = 0; i < a.length; i += 2) {
    if (a[i] > next) out.push(next, a[i] - 1)
    next = a[i + 1] + 1
  }
  if (next <= MAX_CP) out.push(next, MAX_CP)
  return out
}

function rIntersects(a: Ranges, b: Ranges): boolean {
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    if (a[i + 1] < b[j]) i += 2
    else if (b[j + 1] < a[i]) j += 2
    else return true
  }
  return false
}

function rIntersect(a: Ranges, b: Ranges): Ranges {
  const out: Ranges = []
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const lo = Math.max(a[i], b[j])
    const hi = Math.min(a[i + 1], b[j + 1])
    if (lo <= hi) out.push(lo, hi)
    if (a[i + 1] < b[j + 1]) i += 2
    else j += 2
  }
  return out
}

/** Whether code point `c` is in `r` (binary search). */
function rHas(r: Ranges, c: number): boolean {
  let lo = 0
  let hi = (r.length >> 1) - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (c < r[2 * mid]) hi = mid - 1
    else if (c > r[2 * mid + 1]) lo = mid + 1
    else return true
  }
  return false
}

function rOf(points: Iterable<number>): Ranges {
  const pairs: [number, number][] = []
  for (const p of points) pairs.push([p, p])
  return rNorm(pairs)
}

const ASCII_DIGIT: Ranges = [0x30, 0x39]
const ASCII_WORD: Ranges = rNorm([[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]])
const ASCII_SPACE: Ranges = rNorm([[9, 13], [0x1c, 0x20]])
const NON_ASCII: Ranges = [0x80, MAX_CP]

/** A superset of the characters shorthand `c` matches. */
function shortRanges(c: string): Ranges {
  switch (c) {
    case 'd': return rUnion(ASCII_DIGIT, NON_ASCII)
    case 'w': return rUnion(ASCII_WORD, NON_ASCII)
    case 's': return rUnion(ASCII_SPACE, NON_ASCII)
    case 'D': return rComplement(ASCII_DIGIT)
    case 'W': return rComplement(ASCII_WORD)
    default: return rComplement(ASCII_SPACE)
  }
}

/** ASCII letters and the non-ASCII characters some case model (Python's, JavaScript's simple folding) equates with them. */
const ASCII_TWINS: Record<number, number[]> = {
  0x49: [0x130, 0x131], 0x69: [0x130, 0x131], 0x4b: [0x212a], 0x6b: [0x212a], 0x53: [0x17f], 0x73: [0x17f],
  0x130: [0x49, 0x69], 0x131: [0x49, 0x69], 0x212a: [0x4b, 0x6b], 0x17f: [0x53, 0x73],
}

/** A superset of the characters `cp` matches case-insensitively, in every case model (see CaseKind). */
function caseSuperset(cp: number): Ranges {
  const out = new Set<number>([...caseVariants(cp), ...(ASCII_TWINS[cp] ?? [])])
  if (cp < 0x80) {
    if (cp >= 0x41 && cp <= 0x5a) out.add(cp + 32)
    else if (cp >= 0x61 && cp <= 0x7a) out.add(cp - 32)
  } else {
    for (const v of pyLiteralSet(cp, false)) out.add(v)
    for (const v of foldLiteralSet(cp)) out.add(v)
  }
  return rOf(out)
}

function withCase(r: Ranges, f: Flags): Ranges {
  if (!f.i) return r
  const extra: [number, number][] = []
  for (const [lo, hi] of rPairs(r)) {
    if (hi >= 0x80) extra.push([0x80, MAX_CP], [0x41, 0x5a], [0x61, 0x7a]) // conservative
    for (let c = Math.max(lo, 0x41); c <= Math.min(hi, 0x7a); c++) {
      if (c <= 0x5a) extra.push([c + 32, c + 32])
      else if (c >= 0x61) extra.push([c - 32, c - 32])
      for (const t of ASCII_TWINS[c] ?? []) extra.push([t, t])
    }
  }
  return rUnion(r, rNorm(extra))
}

interface First { set: Ranges; nullable: boolean }

/** Characters a non-empty match of `n` can start with (a superset), and whether it can match empty. */
function firstOf(n: Node): First {
  switch (n.t) {
    case 'char': {
      return {set: n.f.i ? caseSuperset(n.cp) : [n.cp, n.cp], nullable: false}
    }
    case 'any': return {set: n.f.s ? ALL : rComplement([10, 10]), nullable: false}
    case 'short': return {set: shortRanges(n.c), nullable: false}
    case 'class': {
      let pos: Ranges = []
      let approx = false
      for (const it of n.items) {
        if (it.k === 'range') pos = rUnion(pos, [it.lo, it.hi])
        else if (it.k === 'short') { pos = rUnion(pos, shortRanges(it.c)); approx = true }
        else { pos = ALL; approx = true }
      }
      pos = withCase(pos, n.f)
      if (!n.neg) return {set: pos, nullable: false}
      return {set: approx || n.f.i ? ALL : rComplement(pos), nullable: false}
    }
    case 'assert': case 'look': return {set: [], nullable: true}
    case 'backref': return {set: ALL, nullable: true}
    case 'group': case 'atomic': return firstOf(n.body)
    case 'quant': {
      const f = firstOf(n.body)
      return {set: f.set, nullable: n.min === 0 || f.nullable}
    }
    case 'alt': {
      let set: Ranges = []
      let nullable = false
      for (const a of n.alts) {
        const f = firstOf(a)
        set = rUnion(set, f.set)
        nullable ||= f.nullable
      }
      return {set, nullable}
    }
    case 'cond': {
      const y = firstOf(n.yes)
      const o = firstOf(n.no)
      return {set: rUnion(y.set, o.set), nullable: y.nullable || o.nullable}
    }
    case 'seq': {
      let set: Ranges = []
      for (const it of n.items) {
        const f = firstOf(it)
        set = rUnion(set, f.set)
        if (!f.nullable) return {set, nullable: false}
      }
      return {set, nullable: true}
    }
  }
}

/** What can follow each repetition: FIRST of its continuation (nullable = may end there). */
function computeFollow(n: Node, follow: First, out: Map<QuantNode, First>): void {
  switch (n.t) {
    case 'seq': {
      let cur = follow
      for (let i = n.items.length - 1; i >= 0; i--) {
        const it = n.items[i]
        computeFollow(it, cur, out)
        const f = firstOf(it)
        cur = f.nullable ? {set: rUnion(f.set, cur.set), nullable: cur.nullable} : f
      }
      break
    }
    case 'alt': n.alts.forEach((a) => computeFollow(a, follow, out)); break
    case 'group': case 'atomic': computeFollow(n.body, follow, out); break
    case 'look': computeFollow(n.body, {set: ALL, nullable: true}, out); break
    case 'cond': computeFollow(n.yes, follow, out); computeFollow(n.no, follow, out); break
    case 'quant': {
      out.set(n, follow)
      const f = firstOf(n.body)
      computeFollow(n.body, {set: rUnion(f.set, follow.set), nullable: follow.nullable}, out)
      break
    }
    default: break
  }
}

/** Characters a match of `n` can end with (a superset), or undefined when `n` can match empty or ends in an assertion. */
function lastSet(n: Node): Ranges | undefined {
  switch (n.t) {
    case 'char': case 'any': case 'class': case 'short': return firstOf(n).set
    case 'seq': {
      const last = n.items[n.items.length - 1]
      return last === undefined ? undefined : lastSet(last)
    }
    case 'alt': {
      let set: Ranges = []
      for (const a of n.alts) {
        const r = lastSet(a)
        if (r === undefined) return undefined
        set = rUnion(set, r)
      }
      return set
    }
    case 'group': case 'atomic': return lastSet(n.body)
    case 'quant': return n.min > 0 && minLength(n.body) > 0 ? lastSet(n.body) : undefined
    default: return undefined
  }
}

type AssertNode = Extract<Node, {t: 'assert'}>

/**
 * Word boundaries that end the pattern (nothing follows them, no capture group encloses them, no
 * repetition) right after an item that always ends with a word character (true) or always with
 * a non-word one (false). Such a boundary only tests the next character, which the emitter
 * consumes instead of looking at it (no look-around, so the variants stay eligible for V8's
 * linear-time engine); Compiled.exec removes it from the match again.
 */
function tailBoundaries(root: Node, flavor: Flavor, pcreFold: boolean): Map<AssertNode, boolean> {
  const out = new Map<AssertNode, boolean>()
  // Characters that are word characters, and ASCII ones that are not, in every variant.
  const twins: [number, number][] = flavor === 'python' ? [[0x130, 0x131], [0x17f, 0x17f], [0x212a, 0x212a]]
    : pcreFold ? [[0x17f, 0x17f], [0x212a, 0x212a]] : []
  const nonWord = rIntersect([0, 0x7f], rComplement(ASCII_WORD))
  const visit = (n: Node): void => {
    switch (n.t) {
      case 'alt': n.alts.forEach(visit); break
      case 'group': if (n.num === undefined) visit(n.body); break
      case 'seq': {
        const last = n.items[n.items.length - 1]
        if (last?.t === 'assert' && (last.k === 'b' || last.k === 'B')) {
          const prev = n.items.length >= 2 ? lastSet(n.items[n.items.length - 2]) : undefined
          if (prev === undefined || prev.length === 0) break
          const word = last.f.a ? ASCII_WORD : rUnion(ASCII_WORD, rNorm(twins))
          if (rIntersect(prev, word).join() === prev.join()) out.set(last, true)
          else if (rIntersect(prev, nonWord).join() === prev.join()) out.set(last, false)
        } else if (last !== undefined) visit(last)
        break
      }
      default: break
    }
  }
  visit(root)
  return out
}

function hasGroups(n: Node): boolean {
  return groupsIn(n, new Set()).size > 0
}

function isSingleChar(n: Node): boolean {
  return n.t === 'char' || n.t === 'class' || n.t === 'short' || n.t === 'any'
}

function nullableLoopIsSafe(n: Node): boolean {
  switch (n.t) {
    case 'seq': return n.items.every(nullableLoopIsSafe)
    case 'alt': case 'cond': case 'backref': return false
    case 'group': return n.num === undefined && nullableLoopIsSafe(n.body)
    case 'atomic': case 'look': return nullableLoopIsSafe(n.body)
    case 'quant': return !n.lazy && nullableLoopIsSafe(n.body)
    default: return true
  }
}

interface GroupInfo {
  /** Participates in every successful match once reached in sequence (no optional/alternative/look ancestor). */
  unconditional: boolean
  canBeEmpty: boolean
  /** Referenced by a conditional or a possibly-unset back-reference: needs a participation test. */
  needsTest: boolean
}

type QuantNode = Extract<Node, {t: 'quant'}>

/**
 * A repeated part (max > 1) with capture groups that some repetitions may skip. Python reports
 * such a group's value from the last repetition that set it; JavaScript resets it at every
 * repetition. Both engines take the same path (nothing may refer to these groups), so the
 * values are recovered after a match by re-running variants of the regex that set repetition
 * k + 1 apart (see Compiled.fixSticky).
 */
interface StickyLoop {
  node: QuantNode
  /** Python numbers of every group inside the loop. */
  groups: Set<number>
}

function groupsIn(n: Node, out: Set<number>): Set<number> {
  switch (n.t) {
    case 'seq': n.items.forEach((x) => groupsIn(x, out)); break
    case 'alt': n.alts.forEach((x) => groupsIn(x, out)); break
    case 'group': if (n.num !== undefined) out.add(n.num); groupsIn(n.body, out); break
    case 'atomic': case 'look': case 'quant': groupsIn(n.body, out); break
    case 'cond': groupsIn(n.yes, out); groupsIn(n.no, out); break
    default: break
  }
  return out
}

function refsIn(n: Node, out: Set<number>): Set<number> {
  switch (n.t) {
    case 'seq': n.items.forEach((x) => refsIn(x, out)); break
    case 'alt': n.alts.forEach((x) => refsIn(x, out)); break
    case 'group': case 'atomic': case 'look': case 'quant': refsIn(n.body, out); break
    case 'cond': out.add(n.num); refsIn(n.yes, out); refsIn(n.no, out); break
    case 'backref': out.add(n.num); break
    default: break
  }
  return out
}

function analyse(root: Node, count: number, sticky: StickyLoop[]): GroupInfo[] {
  const info: GroupInfo[] = []
  for (let i = 0; i <= count; i++) info.push({unconditional: false, canBeEmpty: false, needsTest: false})
  const unsupported = (why: string): never => {
    throw new PatternError(`a capture group inside a repeated part that may skip it ${why}; Python keeps its value from an earlier repetition, JavaScript resets it — rewrite that part`, '')
  }
  const walk = (n: Node, uncond: boolean, repeated: {optional: boolean; loop: QuantNode; nested: boolean} | undefined): void => {
    switch (n.t) {
      case 'seq': for (const x of n.items) walk(x, uncond, repeated); break
      case 'alt':
        for (const x of n.alts) walk(x, false, repeated ? {...repeated, optional: true} : undefined)
        break
      case 'group':
        if (n.num !== undefined) {
          info[n.num].unconditional = uncond
          info[n.num].canBeEmpty = minLength(n.body) === 0
          if (repeated?.optional) {
            if (repeated.nested) unsupported('is nested in another repetition')
            const loop = repeated.loop
            if (loop.possessive) unsupported('is possessive')
            if (minLength(loop.body) === 0) unsupported('can match the empty string')
            if (!sticky.some((l) => l.node === loop)) sticky.push({node: loop, groups: groupsIn(loop.body, new Set())})
          }
        }
        walk(n.body, uncond, repeated)
        break
      case 'atomic': walk(n.body, uncond, repeated); break
      case 'look': walk(n.body, false, repeated ? {...repeated, optional: true} : undefined); break
      case 'cond':
        info[n.num].needsTest = true
        walk(n.yes, false, repeated ? {...repeated, optional: true} : undefined)
        walk(n.no, false, repeated ? {...repeated, optional: true} : undefined)
        break
      case 'quant': {
        const inner = n.max > 1 ? {optional: false, loop: n, nested: repeated !== undefined}
          : repeated && n.min === 0 ? {...repeated, optional: true} : repeated
        walk(n.body, uncond && n.min > 0, inner)
        break
      }
      case 'backref':
        break
      default: break
    }
  }
  walk(root, true, undefined)
  // A back-reference to a group that may not have participated needs the test too.
  const refs = (n: Node): void => {
    switch (n.t) {
      case 'seq': n.items.forEach(refs); break
      case 'alt': n.alts.forEach(refs); break
      case 'group': case 'atomic': case 'look': refs(n.body); break
      case 'quant': refs(n.body); break
      case 'cond': refs(n.yes); refs(n.no); break
      case 'backref': if (!info[n.num].unconditional) info[n.num].needsTest = true; break
      default: break
    }
  }
  refs(root)
  if (sticky.length > 0) {
    const referenced = refsIn(root, new Set())
    for (const l of sticky) for (const g of l.groups) if (referenced.has(g)) unsupported('is referred to by a back-reference or conditional')
  }
  return info
}

// ---------------------------------------------------------------------------------------------
// Conditionals resolved by distribution

/** Groups that participate in every match of `n`. */
function mustSet(n: Node, out: Set<number> = new Set()): Set<number> {
  switch (n.t) {
    case 'seq': for (const x of n.items) mustSet(x, out); break
    case 'alt': case 'cond': {
      const alts = n.t === 'alt' ? n.alts : [n.yes, n.no]
      let common: Set<number> | undefined
      for (const a of alts) {
        const s = mustSet(a)
        common = common === undefined ? s : new Set([...common].filter((g) => s.has(g)))
      }
      for (const g of common ?? []) out.add(g)
      break
    }
    case 'group': if (n.num !== undefined) out.add(n.num); mustSet(n.body, out); break
    case 'atomic': mustSet(n.body, out); break
    case 'quant': if (n.min > 0) mustSet(n.body, out); break
    default: break
  }
  return out
}

/** Group numbers referred to by the conditionals in `n`. */
function condRefs(n: Node, out: Set<number>): Set<number> {
  switch (n.t) {
    case 'seq': n.items.forEach((x) => condRefs(x, out)); break
    case 'alt': n.alts.forEach((x) => condRefs(x, out)); break
    case 'group': case 'atomic': case 'look': case 'quant': condRefs(n.body, out); break
    case 'cond': out.add(n.num); condRefs(n.yes, out); condRefs(n.no, out); break
    default: break
  }
  return out
}

function hasCond(n: Node): boolean {
  return condRefs(n, new Set()).size > 0
}

/** A deep copy (the emitter and its analyses key some maps by node). */
function cloneNode(n: Node): Node {
  switch (n.t) {
    case 'seq': return {t: 'seq', items: n.items.map(cloneNode)}
    case 'alt': return {t: 'alt', alts: n.alts.map(cloneNode)}
    case 'group': return {t: 'group', num: n.num, body: cloneNode(n.body)}
    case 'look': return {...n, body: cloneNode(n.body)}
    case 'atomic': return {t: 'atomic', body: cloneNode(n.body)}
    case 'quant': return {...n, body: cloneNode(n.body)}
    case 'cond': return {t: 'cond', num: n.num, yes: cloneNode(n.yes), no: cloneNode(n.no)}
    default: return {...n}
  }
}

function nodeCount(n: Node): number {
  switch (n.t) {
    case 'seq': return 1 + n.items.reduce((s, x) => s + nodeCount(x), 0)
    case 'alt': return 1 + n.alts.reduce((s, x) => s + nodeCount(x), 0)
    case 'group': case 'look': case 'atomic': case 'quant': return 1 + nodeCount(n.body)
    case 'cond': return 1 + nodeCount(n.yes) + nodeCount(n.no)
    default: return 1
  }
}

class Unresolvable extends Error {}

/** Whether every group of `relevant` is decided by `n`: set by every match of it, or by none. */
function decided(n: Node, relevant: ReadonlySet<number>): boolean {
  const must = mustSet(n)
  const may = groupsIn(n, new Set())
  for (const g of relevant) if (may.has(g) && !must.has(g)) return false
  return true
}

const EMPTY_SEQ: Node = {t: 'seq', items: []}

/**
 * `n` as an ordered list of alternatives that a backtracking engine tries in the same order as
 * `n`'s own choices, each of which decides the participation of the `relevant` groups.
 */
function splitCases(n: Node, relevant: ReadonlySet<number>): Node[] {
  if (decided(n, relevant)) return [n]
  switch (n.t) {
    case 'group': return splitCases(n.body, relevant).map((v) => ({t: 'group', num: n.num, body: v}))
    case 'alt': return n.alts.flatMap((a) => splitCases(a, relevant))
    case 'quant': {
      if (n.possessive || n.max !== 1) break
      const body = splitCases(n.body, relevant)
      if (n.min === 1) return body
      // X? is X, then nothing; X?? the other way round (Python takes an empty X as an iteration).
      return n.lazy ? [EMPTY_SEQ, ...body] : [...body, EMPTY_SEQ]
    }
    case 'seq': {
      const j = n.items.findIndex((x) => !decided(x, relevant))
      return splitCases(n.items[j], relevant).flatMap((v) =>
        splitCases({t: 'seq', items: [...n.items.slice(0, j), v, ...n.items.slice(j + 1)]}, relevant))
    }
    default: break
  }
  throw new Unresolvable()
}

/**
 * Resolve conditionals `(?(g)yes|no)` statically: in a sequence, the rest after the part that
 * decides whether g participates is distributed over that part's choices (`(X)?R` becomes
 * `(?:(X)R|R)` and `(A|B)R` becomes `(?:(A)R|(B)R)`, which a backtracking engine explores in
 * the same order), and in each copy the conditional's branch is known. Copies of a capture group
 * keep its Python number (the emitter maps them to one result slot). Conditionals inside a
 * repetition (where Python keeps a group's value from an earlier pass) are resolved only from
 * groups outside it. Throws Unresolvable when some conditional cannot be resolved this way.
 */
function resolveConditionals(root: Node): Node {
  const tx = (n: Node, env: ReadonlyMap<number, boolean>, inLoop: boolean): Node => {
    switch (n.t) {
      case 'seq': return txSeq(n.items, env, inLoop)
      case 'alt': return {t: 'alt', alts: n.alts.map((a) => tx(a, env, inLoop))}
      case 'group': return {t: 'group', num: n.num, body: tx(n.body, env, inLoop)}
      case 'atomic': return {t: 'atomic', body: tx(n.body, env, inLoop)}
      case 'look': return {...n, body: tx(n.body, env, inLoop)}
      case 'quant': return {...n, body: tx(n.body, env, inLoop || n.max > 1)}
      case 'cond': {
        const known = env.get(n.num)
        if (known === undefined) throw new Unresolvable()
        return {t: 'group', num: undefined, body: tx(known ? n.yes : n.no, env, inLoop)}
      }
      default: return n
    }
  }
  const after = (n: Node, env: ReadonlyMap<number, boolean>, relevant: ReadonlySet<number>): Map<number, boolean> => {
    const out = new Map(env)
    const may = groupsIn(n, new Set())
    for (const g of mustSet(n)) out.set(g, true)
    for (const g of relevant) if (!may.has(g)) out.set(g, false)
    return out
  }
  const txSeq = (items: readonly Node[], env: ReadonlyMap<number, boolean>, inLoop: boolean): Node => {
    const out: Node[] = []
    let cur = env
    for (let k = 0; k < items.length; k++) {
      const item = items[k]
      const rest = items.slice(k + 1)
      const later = new Set<number>()
      for (const r of rest) condRefs(r, later)
      const relevant = new Set([...groupsIn(item, new Set())].filter((g) => later.has(g)))
      if (relevant.size === 0 || decided(item, relevant)) {
        out.push(tx(item, cur, inLoop))
        cur = after(item, cur, relevant)
        continue
      }
      if (inLoop) throw new Unresolvable()
      const cases = splitCases(item, relevant)
      const alts = cases.map((v, i) => {
        const c = i === 0 ? v : cloneNode(v)
        const tail = txSeq(i === 0 ? rest : rest.map(cloneNode), after(v, cur, relevant), inLoop)
        return {t: 'seq', items: [tx(c, cur, inLoop), tail]} as Node
      })
      out.push({t: 'group', num: undefined, body: {t: 'alt', alts}})
      return {t: 'seq', items: out}
    }
    return {t: 'seq', items: out}
  }
  return tx(root, new Map(), false)
}

// ---------------------------------------------------------------------------------------------
// Emission

const U_WORD = '\\p{L}\\p{N}_'
const U_DIGIT = '\\p{Nd}'
const U_SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const A_SPACE_ASCII = '\\t-\\r ' // Python's ASCII-mode (?a) \s, and PCRE's \s

/** Class-body text of a shorthand in the Unicode variant. */
function shortBody(c: 'd' | 'w' | 's', f: Flags, flavor: Flavor): string {
  const ascii = f.a || flavor === 'pcre'
  if (c === 'd') return ascii ? '0-9' : U_DIGIT
  if (c === 'w') return ascii ? '0-9A-Za-z_' : U_WORD
  return ascii ? A_SPACE_ASCII : U_SPACE
}

const NOT_EMPTY_SUBJECT = '(?:(?<=[\\s\\S])|(?=[\\s\\S]))'

const SYNTAX = new Set('^$\\.*+?()[]{}|/'.split(''))

function escCp(cp: number, inClass: boolean): string {
  const ch = String.fromCodePoint(cp)
  if (inClass) {
    if (ch === '\\' || ch === ']' || ch === '[' || ch === '^' || ch === '-') return '\\' + ch
  } else if (SYNTAX.has(ch)) return '\\' + ch
  if (cp < 0x20 || cp === 0x7f) return '\\x' + cp.toString(16).padStart(2, '0')
  if (cp >= 0x80 && cp <= 0xa0) return '\\x' + cp.toString(16)
  if (cp === 0x2028 || cp === 0x2029 || (cp >= 0xd800 && cp <= 0xdfff)) return '\\u' + cp.toString(16)
  return ch
}

/** Class-body text of `r`. */
function rangesBody(r: Ranges): string {
  let out = ''
  for (let i = 0; i < r.length; i += 2) {
    const lo = r[i]
    const hi = r[i + 1]
    out += escCp(lo, true)
    if (hi > lo) out += (hi > lo + 1 ? '-' : '') + escCp(hi, true)
  }
  return out
}

const ASCII_MAX = 0x7f
const BMP_MAX = 0xffff
const SURROGATES: Ranges = [0xd800, 0xdfff]

/**
 * A class matching exactly the members of `r` that a subject of the variant can contain (code
 * points up to `max`; no surrogates below BMP_MAX), written as `[…]` or `[^…]`, whichever is
 * shorter: without the `u` flag a negated class also matches what the variant never sees.
 */
function rangesClass(r: Ranges, max: number): string {
  const domain = max === BMP_MAX ? rIntersect([0, max], rComplement(SURROGATES)) : [0, max]
  const pos = rIntersect(r, domain)
  if (pos.length === 0) return '[]'
  const neg = rIntersect(rComplement(pos), domain)
  if (neg.length === 0) return '[\\s\\S]'
  const p = rangesBody(fillSurrogates(pos, max))
  const n = rangesBody(fillSurrogates(neg, max))
  return n.length < p.length ? '[^' + n + ']' : '[' + p + ']'
}

/** Joins ranges that meet only across the surrogates, which BMP subjects never contain. */
function fillSurrogates(r: Ranges, max: number): Ranges {
  return max === BMP_MAX && rHas(r, 0xd7ff) && rHas(r, 0xe000) ? rUnion(r, SURROGATES) : r
}

/** Characters that are case-insensitively equal to cp (PCRE scoped `(?i:…)`; see CaseKind 'legacy'). */
function caseVariants(cp: number): number[] {
  const out = new Set<number>([cp])
  const ch = String.fromCodePoint(cp)
  for (const v of [ch.toLowerCase(), ch.toUpperCase()]) {
    if ([...v].length === 1) out.add(v.codePointAt(0)!)
  }
  for (const v of [...out]) {
    const extra = SPECIAL_FOLDS[v]
    if (extra) for (const e of extra) out.add(e)
  }
  return [...out]
}

const SPECIAL_FOLDS: Record<number, number[]> = {
  0x6b: [0x212a], 0x4b: [0x212a], 0x212a: [0x6b, 0x4b],
  0x73: [0x17f], 0x53: [0x17f], 0x17f: [0x73, 0x53],
  0x3c9: [0x2126], 0x3a9: [0x2126], 0x2126: [0x3c9, 0x3a9],
  0xe5: [0x212b], 0xc5: [0x212b], 0x212b: [0xe5, 0xc5],
}

// ---------------------------------------------------------------------------------------------
// Unicode tables, built once on first use from the engine's own Unicode data, so that the BMP
// variant's explicit classes agree with the Unicode variant's `\p{…}` classes.

/** The code points of plane 0 (surrogates replaced by U+0000) or of plane 1, as one string. */
function planeText(plane: 0 | 1): string {
  if (plane === 0) {
    const u = new Uint16Array(0x10000)
    for (let c = 0; c < 0x10000; c++) u[c] = c >= 0xd800 && c <= 0xdfff ? 0 : c
    return new TextDecoder('utf-16le').decode(u)
  }
  const u = new Uint16Array(0x20000)
  for (let k = 0; k < 0x10000; k++) {
    u[2 * k] = 0xd800 + (k >> 10)
    u[2 * k + 1] = 0xdc00 + (k & 0x3ff)
  }
  return new TextDecoder('utf-16le').decode(u)
}

/** The code points that `re` (global, `u`, a run `[…]+`) finds in planes 0 to `lastPlane`. */
function scanRanges(re: RegExp, lastPlane: 0 | 1): Ranges {
  const pairs: [number, number][] = []
  for (const plane of lastPlane === 0 ? [0 as const] : [0 as const, 1 as const]) {
    // Plane 1 is written as surrogate pairs: two code units per code point.
    const width = plane === 0 ? 1 : 2
    for (const m of planeText(plane).matchAll(re)) {
      const at = plane * 0x10000 + m.index! / width
      pairs.push([at, at + m[0].length / width - 1])
    }
  }
  return rNorm(pairs)
}

let bmpShorts: {w: Ranges; d: Ranges} | undefined

/** Python's Unicode `\w` (str.isalnum() or '_') and `\d` (decimal digits), restricted to the BMP. */
function bmpShortRanges(): {w: Ranges; d: Ranges} {
  return bmpShorts ??= {w: scanRanges(/[\p{L}\p{N}_]+/gu, 0), d: scanRanges(/\p{Nd}+/gu, 0)}
}

/**
 * The BMP variant's code unit permutation. V8's linear-time engine runs a class as one thread per
 * range, so Python's exact `\w` (hundreds of BMP ranges) would make it slower than the
 * backtracking it replaces. BMP subjects are therefore matched in a permuted form: ASCII stays,
 * and the other BMP characters are reordered by Python category (word non-digit, digit, space,
 * other), by code point within each. Every shorthand is then one or two ranges, and a range of
 * the pattern meets each category in one run. The permutation is a bijection of the non-ASCII,
 * non-surrogate code units onto themselves: lengths and positions are kept, and captures map back.
 */
interface PiTables {
  /** Code unit → permuted code unit (ASCII and surrogates: themselves). */
  readonly fwd: Uint16Array
  readonly inv: Uint16Array
  /** The non-ASCII, non-surrogate BMP characters of each category, sorted. */
  readonly cats: readonly Uint16Array[]
  /** Rank of each category's first character in the permuted order. */
  readonly base: readonly number[]
}

let piTables: PiTables | undefined

/** The k-th non-ASCII, non-surrogate code unit. */
function piSlot(k: number): number {
  const c = 0x80 + k
  return c < 0xd800 ? c : c + 0x800
}

function pi(): PiTables {
  if (piTables) return piTables
  const {w, d} = bmpShortRanges()
  const lists: number[][] = [[], [], [], []]
  for (let c = 0x80; c <= BMP_MAX; c++) {
    if (c === 0xd800) c = 0xe000
    lists[rHas(w, c) ? (rHas(d, c) ? 1 : 0) : rHas(U_SPACE_RANGES, c) ? 2 : 3].push(c)
  }
  const fwd = new Uint16Array(0x10000)
  const inv = new Uint16Array(0x10000)
  for (let c = 0; c < 0x10000; c++) fwd[c] = inv[c] = c
  const base: number[] = []
  let k = 0
  for (const list of lists) {
    base.push(k)
    for (const c of list) {
      const slot = piSlot(k++)
      fwd[c] = slot
      inv[slot] = c
    }
  }
  piTables = {fwd, inv, cats: lists.map((l) => Uint16Array.from(l)), base}
  return piTables
}

/** First index of `a` (sorted) whose value is at least `x`. */
function lowerBound(a: Uint16Array, x: number): number {
  let lo = 0
  let hi = a.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (a[mid] < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** A set of BMP code points, permuted (see PiTables). */
function piRanges(r: Ranges): Ranges {
  const t = pi()
  const pairs: [number, number][] = rPairs(rIntersect(r, [0, 0x7f]))
  const rest = rPairs(rIntersect(r, [0x80, BMP_MAX]))
  t.cats.forEach((cat, k) => {
    for (const [lo, hi] of rest) {
      const a = lowerBound(cat, lo)
      const b = lowerBound(cat, hi + 1) - 1
      if (a <= b) pairs.push([piSlot(t.base[k] + a), piSlot(t.base[k] + b)])
    }
  })
  return rNorm(pairs)
}

/** `s` with every non-ASCII code unit replaced through `table`. */
function permute(s: string, table: Uint16Array): string {
  return s.replace(/[^\x00-\x7f]+/g, (run) => {
    let out = ''
    const buf = new Uint16Array(Math.min(run.length, 4096))
    for (let at = 0; at < run.length; at += buf.length) {
      const n = Math.min(buf.length, run.length - at)
      for (let i = 0; i < n; i++) buf[i] = table[run.charCodeAt(at + i)]
      out += String.fromCharCode.apply(null, n === buf.length ? (buf as unknown as number[]) : (buf.subarray(0, n) as unknown as number[]))
    }
    return out
  })
}

let permutedOf: string | undefined
let permutedIs = ''

/** A BMP subject in the BMP variant's permuted form (remembered for the next call). */
function permuteSubject(s: string): string {
  if (s !== permutedOf) {
    permutedIs = permute(s, pi().fwd)
    permutedOf = s
  }
  return permutedIs
}

/** Python's Unicode `\s` (str.isspace()), all in the BMP; U_SPACE as a set. */
const U_SPACE_RANGES: Ranges = rNorm([
  [9, 13], [0x1c, 0x20], [0x85, 0x85], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029],
  [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000],
])
const A_SPACE_RANGES: Ranges = rNorm([[9, 13], [0x20, 0x20]])

/** `\d \w \s` as code point sets, for the ASCII and BMP variants. */
function shortSet(c: 'd' | 'w' | 's', ascii: boolean): Ranges {
  if (ascii) return c === 'd' ? ASCII_DIGIT : c === 'w' ? ASCII_WORD : A_SPACE_RANGES
  return c === 'd' ? bmpShortRanges().d : c === 'w' ? bmpShortRanges().w : U_SPACE_RANGES
}

const POSIX_RANGES: Record<string, Ranges> = {
  alpha: rNorm([[0x41, 0x5a], [0x61, 0x7a]]), digit: [0x30, 0x39], alnum: rNorm([[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]]),
  upper: [0x41, 0x5a], lower: [0x61, 0x7a], space: A_SPACE_RANGES, blank: rNorm([[9, 9], [0x20, 0x20]]),
  punct: rNorm([[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]]), xdigit: rNorm([[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]]),
  word: ASCII_WORD, cntrl: rNorm([[0, 0x1f], [0x7f, 0x7f]]), print: [0x20, 0x7e], graph: [0x21, 0x7e], ascii: [0, 0x7f],
}

/**
 * Python's re._casefix (3.11): sets of lowercase characters with the same uppercase, which
 * Python's case-insensitive matching treats as equal although their lowercase forms differ.
 */
const PY_FIX_SETS: readonly (readonly number[])[] = [
  [0x69, 0x131], [0x73, 0x17f], [0xb5, 0x3bc], [0x345, 0x3b9, 0x1fbe], [0x390, 0x1fd3], [0x3b0, 0x1fe3],
  [0x3b2, 0x3d0], [0x3b5, 0x3f5], [0x3b8, 0x3d1], [0x3ba, 0x3f0], [0x3c0, 0x3d6], [0x3c1, 0x3f1],
  [0x3c2, 0x3c3], [0x3c6, 0x3d5], [0x432, 0x1c80], [0x434, 0x1c81], [0x43e, 0x1c82], [0x441, 0x1c83],
  [0x442, 0x1c84, 0x1c85], [0x44a, 0x1c86], [0x463, 0x1c87], [0x1c88, 0xa64b], [0x1e61, 0x1e9b], [0xfb05, 0xfb06],
]

interface CaseTables {
  /** Characters some case mapping changes, sorted (candidates for every case model; planes 0–1 hold all of them). */
  readonly mapped: readonly number[]
  /** Python's cased characters (its lower or upper form differs), sorted. */
  readonly cased: readonly number[]
  /** Python's lower and upper forms (the first code point of the full mapping), where they differ. */
  readonly lower: ReadonlyMap<number, number>
  readonly upper: ReadonlyMap<number, number>
  /** Python's case-insensitive equivalence class of each cased character, sorted. */
  readonly py: ReadonlyMap<number, readonly number[]>
}

let caseTables: CaseTables | undefined

function tables(): CaseTables {
  if (caseTables) return caseTables
  const mapped: number[] = []
  const cased: number[] = []
  const lower = new Map<number, number>()
  const upper = new Map<number, number>()
  const r = scanRanges(/[\p{Changes_When_Casemapped}\p{Changes_When_Casefolded}]+/gu, 1)
  for (let i = 0; i < r.length; i += 2) {
    for (let c = r[i]; c <= r[i + 1]; c++) {
      mapped.push(c)
      const ch = String.fromCodePoint(c)
      const lo = ch.toLowerCase().codePointAt(0)!
      const up = ch.toUpperCase().codePointAt(0)!
      if (lo !== c) lower.set(c, lo)
      if (up !== c) upper.set(c, up)
      if (lo !== c || up !== c) cased.push(c)
    }
  }
  // Python: c matches p case-insensitively when lower(c) is lower(p) or one of its _casefix twins.
  const inv = new Map<number, number[]>()
  for (const c of cased) {
    const lo = lower.get(c) ?? c
    let list = inv.get(lo)
    if (!list) inv.set(lo, list = [])
    list.push(c)
  }
  const fixes = new Map<number, readonly number[]>()
  for (const set of PY_FIX_SETS) for (const c of set) fixes.set(c, set)
  const byLower = new Map<number, readonly number[]>()
  const py = new Map<number, readonly number[]>()
  for (const c of cased) {
    const lo = lower.get(c) ?? c
    let cls = byLower.get(lo)
    if (!cls) {
      const members = new Set<number>()
      for (const t of fixes.get(lo) ?? [lo]) {
        members.add(t)
        for (const v of inv.get(t) ?? []) members.add(v)
      }
      cls = [...members].sort((a, b) => a - b)
      byLower.set(lo, cls)
    }
    py.set(c, cls)
  }
  caseTables = {mapped, cased, lower, upper, py}
  return caseTables
}

function pyLower(c: number): number {
  return c < 0x80 ? (c >= 0x41 && c <= 0x5a ? c + 32 : c) : tables().lower.get(c) ?? c
}

function pyUpper(c: number): number {
  return c < 0x80 ? (c >= 0x61 && c <= 0x7a ? c - 32 : c) : tables().upper.get(c) ?? c
}

/** Python's case-insensitive class of a literal (`ascii`: in ASCII mode, `(?a)`). */
function pyLiteralSet(cp: number, ascii: boolean): readonly number[] {
  if (ascii) {
    if (cp >= 0x41 && cp <= 0x5a) return [cp, cp + 32]
    if (cp >= 0x61 && cp <= 0x7a) return [cp - 32, cp]
    return [cp]
  }
  return tables().py.get(cp) ?? [cp]
}

let foldTables: Map<number, readonly number[]> | undefined

/**
 * JavaScript's `ui` equivalence (simple case folding) as explicit classes, for PCRE patterns
 * whose Unicode variant uses the native `i` flag: candidates are grouped through their case
 * mappings and split by what the engine itself matches.
 */
function foldClasses(): Map<number, readonly number[]> {
  if (foldTables) return foldTables
  const t = tables()
  const parent = new Map<number, number>()
  const find = (x: number): number => {
    let r = x
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!
    parent.set(x, r)
    return r
  }
  const union = (a: number, b: number): void => {
    const ra = find(a)
    const rb = find(b)
    if (ra !== rb) parent.set(ra, rb)
  }
  for (const c of t.mapped) {
    union(c, t.lower.get(c) ?? c)
    union(c, t.upper.get(c) ?? c)
  }
  for (const set of PY_FIX_SETS) for (const c of set) union(set[0], c)
  for (const [k, vs] of Object.entries(SPECIAL_FOLDS)) for (const v of vs) union(Number(k), v)
  const comps = new Map<number, number[]>()
  for (const c of parent.keys()) {
    const r = find(c)
    let list = comps.get(r)
    if (!list) comps.set(r, list = [])
    list.push(c)
  }
  foldTables = new Map()
  for (const comp of comps.values()) {
    let rest = comp.sort((a, b) => a - b)
    while (rest.length > 0) {
      const re = new RegExp('^\\u{' + rest[0].toString(16) + '}$', 'ui')
      const cls = rest.filter((c) => re.test(String.fromCodePoint(c)))
      if (cls.length > 1) for (const c of cls) foldTables.set(c, cls)
      rest = rest.filter((c) => !cls.includes(c))
    }
  }
  return foldTables
}

function foldLiteralSet(cp: number): readonly number[] {
  return foldClasses().get(cp) ?? [cp]
}

/**
 * How a case-insensitive node matches: `py` Python's Unicode rules (lower forms plus _casefix),
 * `pyA` Python's ASCII mode, `fold` JavaScript's `ui` (a PCRE pattern whose Unicode variant uses
 * the native flag), `legacy` the expansion PCRE scoped `(?i:…)` has always used.
 */
type CaseKind = 'py' | 'pyA' | 'fold' | 'legacy'

function literalSet(cp: number, kind: CaseKind): readonly number[] {
  switch (kind) {
    case 'py': return pyLiteralSet(cp, false)
    case 'pyA': return pyLiteralSet(cp, true)
    case 'fold': return foldLiteralSet(cp)
    case 'legacy': return caseVariants(cp)
  }
}

/** `r` plus every character case-equivalent to one of its members (kind py, pyA or fold). */
function caseClosure(r: Ranges, kind: 'py' | 'pyA' | 'fold'): Ranges {
  const extra: number[] = []
  if (kind === 'pyA') {
    for (const [lo, hi] of rPairs(rIntersect(r, [0x41, 0x7a]))) {
      for (let c = lo; c <= hi; c++) for (const v of pyLiteralSet(c, true)) extra.push(v)
    }
  } else {
    const t = tables()
    for (const c of kind === 'py' ? t.cased : t.mapped) {
      if (rHas(r, c)) for (const v of literalSet(c, kind)) extra.push(v)
    }
  }
  return extra.length === 0 ? r : rUnion(r, rOf(extra))
}

/**
 * The literal and range members of a Python class under IGNORECASE, exactly as Python's
 * _optimize_charset and its IN_UNI_IGNORE test treat them: a class without cased members is
 * case-sensitive; otherwise a character matches when its lower form is the lower form of a
 * member (or a _casefix twin), except that astral members take another path (an astral literal
 * only matches characters whose lower form it is; an astral range also matches when the upper
 * form of the lower form falls in it). A class of one literal is that literal.
 */
function pyMembers(items: readonly ClassItem[], ascii: boolean): Ranges {
  const kind: CaseKind = ascii ? 'pyA' : 'py'
  const first = items[0]
  if (first?.k === 'range' && first.lit && items.every((it) => it.k === 'range' && it.lit && it.lo === first.lo)) {
    return rOf(literalSet(first.lo, kind))
  }
  const ranges = items.filter((it): it is Extract<ClassItem, {k: 'range'}> => it.k === 'range')
  const raw = rNorm(ranges.map((it) => [it.lo, it.hi]))
  const hasCased = ranges.some((it) => {
    if (it.hi > BMP_MAX) return true
    if (ascii) return rIntersects([it.lo, it.hi], rNorm([[0x41, 0x5a], [0x61, 0x7a]]))
    return tables().cased.some((c) => c >= it.lo && c <= it.hi)
  })
  if (!hasCased) return raw
  let out: Ranges = []
  const lowerOf = (c: number): number => ascii ? (c >= 0x41 && c <= 0x5a ? c + 32 : c) : pyLower(c)
  for (const it of ranges) {
    if (it.lit && it.lo > BMP_MAX) {
      if (lowerOf(it.lo) === it.lo) out = rUnion(out, rOf(literalSet(it.lo, kind)))
      continue
    }
    out = rUnion(out, caseClosure([it.lo, Math.min(it.hi, BMP_MAX)], kind))
    if (it.hi > BMP_MAX) {
      // RANGE_UNI_IGNORE: lower(c) in the range, or upper(lower(c)) in it.
      const range: Ranges = [it.lo, it.hi]
      const extra: number[] = []
      for (const c of tables().cased) {
        const lo = lowerOf(c)
        if (rHas(range, lo) || rHas(range, pyUpper(lo))) extra.push(c)
      }
      const uncased = ascii ? rIntersect(range, rComplement(rNorm([[0x41, 0x5a], [0x61, 0x7a]]))) : rIntersect(range, rComplement(rOf(tables().cased)))
      out = rUnion(out, rUnion(uncased, rOf(extra)))
    }
  }
  return out
}

/** PCRE scoped `(?i:…)`: every member's caseVariants (at most 5000 members per range). */
function legacyRange(lo: number, hi: number, src: string): Ranges {
  if (hi - lo > 5000) throw new PatternError('case-insensitive character range too large to translate', src)
  const set = new Set<number>()
  for (let c = lo; c <= hi; c++) for (const v of caseVariants(c)) set.add(v)
  return rOf(set)
}

/** Subject variants: pure ASCII, BMP (non-ASCII, no surrogate code units), anything else. */
type Domain = 'ascii' | 'bmp' | 'full'

interface EmitOptions {
  domain: Domain
  /** The variant is compiled with the JS `i` flag (PCRE only; Python never needs it). */
  nativeI: boolean
  /** Python: case-insensitive back-references compare the subject's lower forms (see Compiled.lowered). */
  lowered: boolean
  /** PCRE pattern whose Unicode variant uses the `i` flag: the other variants expand JS's folding. */
  pcreFold: boolean
  singleLine: boolean
  /** See tailBoundaries. */
  tails: ReadonlyMap<AssertNode, boolean>
}

class Emitter {
  /** JS group index for each Python group number. */
  readonly jsIndex: number[] = []
  /** Marker group JS indices for groups that can be empty and need a participation test. */
  private readonly markers = new Map<number, [number, number]>()
  private jsGroups = 0
  private readonly domain: Domain
  /** Whether the JS `i` flag is in use (PCRE: the whole pattern is uniformly case-insensitive). */
  private readonly nativeI: boolean
  private readonly lowered: boolean
  private readonly pcreFold: boolean
  private readonly singleLine: boolean
  private readonly tails: ReadonlyMap<AssertNode, boolean>
  /** JS indices of the groups that consume the character after a tail boundary (tailBoundaries). */
  readonly trimGroups: number[] = []
  /** Pairs (first copy, other copy) of JS indices of a group emitted more than once. */
  readonly copies: number[] = []
  /** The tree has copies of groups (resolveConditionals). */
  groupCopies = false
  /** Highest code point a subject of this variant contains. */
  private readonly max: number

  /**
   * `opts.domain` selects the variant. The ASCII (non-empty pure-ASCII subjects) and BMP
   * (non-ASCII subjects without surrogate code units) variants are compiled without the `u` and
   * (where possible) `i` flags, with every class written out for the code points such subjects
   * contain, and without look-arounds of our own (except the BMP variant's `\b`), so that V8
   * can fall back to its linear-time engine when a line makes the regex backtrack excessively.
   */
  constructor(
    private readonly info: GroupInfo[],
    private readonly flavor: Flavor,
    opts: EmitOptions,
    private readonly src: string,
    /** Loops with sticky captures: each is wrapped in a capture so its text can be compared. */
    private readonly stickyLoops: readonly QuantNode[] = [],
    /** Emit the variant that sets repetition k + 1 of this loop apart (sticky captures). */
    private readonly variant?: {loop: QuantNode; k: number},
  ) {
    this.domain = opts.domain
    this.nativeI = opts.nativeI
    this.lowered = opts.lowered
    this.pcreFold = opts.pcreFold
    this.singleLine = opts.singleLine
    this.tails = opts.tails
    this.max = opts.domain === 'ascii' ? ASCII_MAX : opts.domain === 'bmp' ? BMP_MAX : MAX_CP
  }

  /** JS index of the capture wrapping each sticky loop. */
  readonly loopIndex = new Map<QuantNode, number>()

  /** JS indices of the groups of the set-apart repetition, filled while emitting a variant. */
  readonly variantIndex = new Map<number, number>()

  get groupCount(): number {
    return this.jsGroups
  }

  private newGroup(): number {
    return ++this.jsGroups
  }

  emit(n: Node): string {
    switch (n.t) {
      case 'seq': return n.items.map((x) => this.emitQuantifiable(x)).join('')
      case 'alt': return n.alts.map((x) => this.emit(x)).join('|')
      case 'char': return this.char(n.cp, n.f)
      case 'any': return n.f.s ? '[\\s\\S]' : '[^\\n]'
      case 'short': return this.shorthand(n.c, n.f)
      case 'class': return this.cls(n)
      case 'assert': return this.assertion(n)
      case 'group': {
        if (n.num === undefined) return '(?:' + this.emit(n.body) + ')'
        const idx = this.newGroup()
        // A copy of a group (resolveConditionals) fills the first copy's result slot after a
        // match. (Sticky-loop variants emit a loop body more than once: there the last counts.)
        if (this.groupCopies && this.jsIndex[n.num] !== undefined) this.copies.push(this.jsIndex[n.num], idx)
        else this.jsIndex[n.num] = idx
        let out = '(' + this.emit(n.body) + ')'
        const gi = this.info[n.num]
        if (gi.needsTest && gi.canBeEmpty) {
          const a = this.newGroup()
          const b = this.newGroup()
          this.markers.set(n.num, [a, b])
          // One character next to the group: before it, else after it. Non-empty whenever the
          // subject is non-empty, so the participation test below can see it.
          // On an empty subject no character exists; there the group reads as not participating.
          out += '(?:(?<=([\\s\\S]))|(?<![\\s\\S])(?=([\\s\\S]))|(?<![\\s\\S])(?![\\s\\S]))'
        }
        return out
      }
      case 'look': return '(?' + (n.behind ? '<' : '') + (n.neg ? '!' : '=') + this.emit(n.body) + ')'
      case 'atomic': {
        const idx = this.newGroup()
        return '(?=(' + this.emit(n.body) + '))\\' + idx + '(?:)'
      }
      case 'backref': {
        if (!n.f.i !== !(this.nativeI || this.lowered)) {
          throw new PatternError('a back-reference with case-insensitivity different from the rest of the pattern cannot be translated', this.src, n.pos)
        }
        const ref = '\\' + this.jsIndex[n.num] + '(?:)'
        if (!this.info[n.num].needsTest) return ref
        return '(?:' + this.participated(n.num) + ref + ')'
      }
      case 'cond': {
        const test = this.participated(n.num)
        return '(?:' + test + '(?:' + this.emit(n.yes) + ')|(?!' + test + ')(?:' + this.emit(n.no) + '))'
      }
      case 'quant': return this.emitQuantifiable(n)
    }
  }

  /** Test that Python group `num` participated in the match so far. */
  private participated(num: number): string {
    const nonEmpty = (idx: number): string => '(?<=(?<![\\s\\S])(?<!\\' + idx + ')[\\s\\S]*)'
    const mk = this.markers.get(num)
    if (!mk) return nonEmpty(this.jsIndex[num])
    return '(?:' + nonEmpty(mk[0]) + '|' + nonEmpty(mk[1]) + ')'
  }

  private emitQuantifiable(n: Node): string {
    if (n.t !== 'quant') return this.emit(n)
    if (this.stickyLoops.includes(n)) {
      const idx = this.newGroup()
      this.loopIndex.set(n, idx)
      const inner = this.variant && this.variant.loop === n ? this.emitVariant(n, this.variant.k) : this.emitLoop(n)
      return '(' + inner + ')'
    }
    return this.emitLoop(n)
  }

  /** FOLLOW sets of the repetitions (computeFollow). */
  follow = new Map<QuantNode, First>()

  /** The emitted source (set by compilePython). */
  source = ''

  /**
   * Python tries the continuation right after an empty repetition; JavaScript first tries the
   * body's other, non-empty choices. When the body has no groups and the continuation can
   * neither be empty nor start with a character a non-empty body match starts with, at most one
   * of the two can succeed at any position, so the order is invisible.
   */
  private tailIsExclusive(n: QuantNode): boolean {
    const f = this.follow.get(n)
    if (!f || f.nullable || hasGroups(n.body)) return false
    return !rIntersects(firstOf(n.body).set, f.set)
  }

  /** Depth of enclosing repetitions with a finite maximum above 1 (see emitLoop). */
  private finiteLoops = 0

  private emitLoop(n: QuantNode): string {
    if (this.domain !== 'full' && this.finiteLoops > 0 && !n.possessive && n.max !== Infinity && n.max > n.min && n.max - n.min <= 8 && isSingleChar(n.body)) {
      // V8's linear-time engine unrolls counted repetitions and refuses a nesting whose product
      // exceeds 16 (the IPv6 part of <HOST> is 7 x 4). For one-character atoms X{m,n} is exactly
      // X{m} followed by nested optionals — the same strings in the same backtracking order —
      // which the engine replicates only once.
      const a = this.atomOf(n.body)
      const opt = n.lazy ? '??' : '?'
      let chain = ''
      for (let i = n.max - n.min; i > 0; i--) chain = '(?:' + a + chain + ')' + opt
      return (n.min === 0 ? '' : n.min === 1 ? a : a + `{${n.min}}`) + chain
    }
    if (n.max !== Infinity && n.max > 1) {
      this.finiteLoops++
      try {
        return this.emitLoopBody(n)
      } finally {
        this.finiteLoops--
      }
    }
    return this.emitLoopBody(n)
  }

  private emitLoopBody(n: QuantNode): string {
    const q = n.min === 0 && n.max === Infinity ? '*'
      : n.min === 1 && n.max === Infinity ? '+'
      : n.min === 0 && n.max === 1 ? '?'
      : n.max === Infinity ? `{${n.min},}`
      : n.min === n.max ? `{${n.min}}` : `{${n.min},${n.max}}`
    if (minLength(n.body) === 0 && n.max > n.min) {
      if (n.max === 1) {
        // Python takes an empty optional iteration (and sets its groups); JavaScript rejects it.
        // An alternation has no such check, so X? is exactly (?:X|) and X?? is (?:|X).
        const body = this.emit(n.body)
        const alt = n.lazy ? '(?:|' + body + ')' : '(?:' + body + '|)'
        if (!n.possessive) return alt
        const idx = this.newGroup()
        return '(?=(' + alt + '))\\' + idx + '(?:)'
      }
      if (!nullableLoopIsSafe(n.body) && !this.tailIsExclusive(n)) {
        throw new PatternError(
          'a repeated part that can match the empty string contains groups, alternatives or lazy quantifiers; Python and JavaScript treat its last, empty repetition differently — make the repeated part consume at least one character',
          this.src,
        )
      }
    }
    if (n.possessive) {
      const idx = this.newGroup()
      return '(?=(' + this.atomOf(n.body) + q + '))\\' + idx + '(?:)'
    }
    return this.atomOf(n.body) + q + (n.lazy ? '?' : '')
  }

  /** X{min,max} as X{k} (X) X{min-k-1,max-k-1}: repetition k + 1 has its own groups. */
  private emitVariant(n: QuantNode, k: number): string {
    const lazy = n.lazy ? '?' : ''
    const first = k > 0 ? this.atomOf(n.body) + `{${k}}` : ''
    const mid = '(?:' + this.emit(n.body) + ')'
    for (const g of groupsIn(n.body, new Set())) this.variantIndex.set(g, this.jsIndex[g])
    const lo = Math.max(0, n.min - k - 1)
    const hi = n.max === Infinity ? '' : String(n.max - k - 1)
    const rest = hi === '0' ? '' : this.atomOf(n.body) + `{${lo},${hi}}` + lazy
    return first + mid + rest
  }

  /** Emit a node so that a following quantifier applies to all of it. */
  private atomOf(n: Node): string {
    const s = this.emit(n)
    switch (n.t) {
      case 'char':
        return s.length === 1 || /^\\.$|^\\x..$|^\\u....$/.test(s) || [...s].length === 1 ? s : '(?:' + s + ')'
      case 'any': case 'class':
        return s
      case 'group':
        return s.endsWith(')') && s.startsWith('(') && this.isSingleGroup(s) ? s : '(?:' + s + ')'
      case 'short':
        return s.startsWith('[') && s.endsWith(']') && !s.includes('|') ? s : '(?:' + s + ')'
      default:
        return '(?:' + s + ')'
    }
  }

  /** Whether `s` is one parenthesised group from its first to its last character. */
  private isSingleGroup(s: string): boolean {
    let depth = 0
    let inClass = false
    for (let i = 0; i < s.length; i++) {
      const c = s[i]
      if (c === '\\') { i++; continue }
      if (inClass) { if (c === ']') inClass = false; continue }
      if (c === '[') inClass = true
      else if (c === '(') depth++
      else if (c === ')' && --depth === 0 && i !== s.length - 1) return false
    }
    return true
  }

  /** How case-insensitive node flags `f` match in this pattern (undefined: case-sensitive). */
  private caseKind(f: Flags): CaseKind | undefined {
    if (!f.i) return undefined
    if (this.flavor === 'python') return f.a ? 'pyA' : 'py'
    return this.pcreFold ? 'fold' : 'legacy'
  }

  private char(cp: number, f: Flags): string {
    const kind = this.caseKind(f)
    if (kind === undefined && cp < 0x80) return escCp(cp, false)
    if (this.domain === 'full') {
      if (kind === undefined || this.nativeI) return escCp(cp, false)
      const vs = [...literalSet(cp, kind)].sort((a, b) => a - b)
      return vs.length > 1 ? '[' + vs.map((v) => escCp(v, true)).join('') + ']' : escCp(cp, false)
    }
    // Characters this variant's subjects cannot contain (astral ones, or non-ASCII ones in the
    // ASCII variant) are left out; a literal with none left never matches.
    const vs = (kind === undefined ? [cp] : literalSet(cp, kind)).filter((v) => v <= this.max && (v < 0xd800 || v > 0xdfff))
    if (vs.length === 0) return '[]'
    if (vs.length === 1) return escCp(this.domain === 'bmp' ? pi().fwd[vs[0]] : vs[0], false)
    return this.setClass(rOf(vs))
  }

  /** A class for the code points of `r`, in this variant's form (ASCII and BMP variants). */
  private setClass(r: Ranges): string {
    const key = this.domain + r.join()
    let s = CLASS_CACHE.get(key)
    if (s === undefined) {
      s = rangesClass(this.domain === 'bmp' ? piRanges(rIntersect(r, [0, BMP_MAX])) : r, this.max)
      if (CLASS_CACHE.size > 4096) CLASS_CACHE.clear()
      CLASS_CACHE.set(key, s)
    }
    return s
  }

  /** `\d \w \s` as a set, in the ASCII and BMP variants. */
  private shortSet(c: 'd' | 'w' | 's', f: Flags): Ranges {
    const set = shortSet(c, f.a || this.flavor === 'pcre')
    // JS's `ui` also folds the class members (PCRE's \w then includes U+017F and U+212A).
    return this.caseKind(f) === 'fold' ? caseClosure(set, 'fold') : set
  }

  private shorthand(c: 'd' | 'D' | 'w' | 'W' | 's' | 'S', f: Flags): string {
    const lower = c.toLowerCase() as 'd' | 'w' | 's'
    if (this.domain === 'full') return (c === lower ? '[' : '[^') + shortBody(lower, f, this.flavor) + ']'
    const key = `${this.domain}:${c}:${f.a || this.flavor === 'pcre'}:${this.caseKind(f) === 'fold'}`
    let s = SHORT_CACHE.get(key)
    if (s === undefined) {
      const set = this.shortSet(lower, f)
      s = this.setClass(c === lower ? set : rComplement(set))
      SHORT_CACHE.set(key, s)
    }
    return s
  }

  /** Python's word characters for flags `f`, in the ASCII and BMP variants. */
  private wordSet(f: Flags): Ranges {
    const w = f.a || this.flavor === 'pcre' ? ASCII_WORD : shortSet('w', false)
    return this.pcreFold ? caseClosure(w, 'fold') : w
  }

  /** A tail boundary (tailBoundaries): consume the next character, or find the end. */
  private tailBoundary(k: 'b' | 'B', f: Flags, prevWord: boolean): string {
    const idx = this.newGroup()
    this.trimGroups.push(idx)
    let word: string
    let other: string
    if (this.domain === 'full') {
      const b = shortBody('w', f, this.flavor)
      word = '[' + b + ']'
      other = '[^' + b + ']'
    } else {
      word = this.setClass(this.wordSet(f))
      other = this.setClass(rComplement(this.wordSet(f)))
    }
    return (k === 'b') !== prevWord ? `(${word})` : `(?:(${other})|$)`
  }

  private assertion(n: AssertNode): string {
    const {k, f} = n
    if (k === 'b' || k === 'B') {
      const prevWord = this.tails.get(n)
      if (prevWord !== undefined) return this.tailBoundary(k, f, prevWord)
    }
    switch (k) {
      case 'bol': return f.m ? '(?<![^\\n])' : '^'
      case 'eol': return f.m ? '(?![^\\n])' : this.singleLine ? '$' : '(?=\\n?$)'
      case 'A': return '^'
      case 'z': return '$'
      case 'Z': return this.singleLine ? '$' : '(?=\\n?$)'
      case 'b': case 'B': {
        const ascii = f.a || this.flavor === 'pcre'
        // The ASCII and BMP variants never see an empty subject (exec routes those to the
        // Unicode one), where Python's \B, unlike JavaScript's, never matches. For ASCII
        // subjects the native (ASCII) word boundary is Python's.
        if (this.domain === 'ascii') return '\\' + k
        if (this.domain === 'bmp') {
          const w = this.wordSet(f)
          if (rangesClass(w, BMP_MAX) === rangesClass(ASCII_WORD, BMP_MAX)) return '\\' + k
          const c = this.setClass(w)
          return k === 'b' ? `(?:(?<=${c})(?!${c})|(?<!${c})(?=${c}))` : `(?:(?<=${c})(?=${c})|(?<!${c})(?!${c}))`
        }
        if (ascii && !this.nativeI) return k === 'b' ? '\\b' : '\\B' + NOT_EMPTY_SUBJECT
        const w = ascii ? '[0-9A-Za-z_]' : '[' + U_WORD + ']'
        return k === 'b' ? `(?:(?<=${w})(?!${w})|(?<!${w})(?=${w}))` : `(?:(?<=${w})(?=${w})|(?<!${w})(?!${w})${NOT_EMPTY_SUBJECT})`
      }
    }
  }

  /** The literal and range members of a class, with case-insensitivity applied (ASCII and BMP variants). */
  private members(n: Extract<Node, {t: 'class'}>, kind: CaseKind | undefined): Ranges {
    const ranges: [number, number][] = []
    for (const it of n.items) if (it.k === 'range') ranges.push([it.lo, it.hi])
    const raw = rNorm(ranges)
    switch (kind) {
      case undefined: return raw
      case 'py': case 'pyA': return pyMembers(n.items, kind === 'pyA')
      case 'fold': return caseClosure(raw, 'fold')
      case 'legacy': {
        let out: Ranges = []
        for (const [lo, hi] of ranges) out = rUnion(out, legacyRange(lo, hi, this.src))
        return out
      }
    }
  }

  private cls(n: Extract<Node, {t: 'class'}>): string {
    if (this.domain === 'full') return this.clsFull(n)
    const f = n.f
    const kind = this.caseKind(f)
    // Python tests a case-insensitive class's categories on the lower form of the character,
    // which is in the same categories; JS's `ui` (fold) folds them as well.
    let set = this.members(n, kind)
    for (const it of n.items) {
      if (it.k === 'short') {
        const lower = it.c.toLowerCase() as 'd' | 'w' | 's'
        const b = this.shortSet(lower, f)
        set = rUnion(set, it.c === lower ? b : rComplement(b))
      } else if (it.k === 'posix') {
        let b = f.i && (it.name === 'upper' || it.name === 'lower') ? POSIX_RANGES.alpha : POSIX_RANGES[it.name]
        if (kind === 'fold') b = caseClosure(b, 'fold')
        set = rUnion(set, it.neg ? rComplement(b) : b)
      }
    }
    return this.setClass(n.neg ? rComplement(set) : set)
  }

  /** A class in the Unicode variant (`u` flag, `\p{…}` categories). */
  private clsFull(n: Extract<Node, {t: 'class'}>): string {
    const f = n.f
    const kind = this.caseKind(f)
    let body = ''
    const negShorts: string[] = []
    if (kind === 'py' || kind === 'pyA') body += rangesBody(pyMembers(n.items, kind === 'pyA'))
    else {
      for (const it of n.items) {
        if (it.k !== 'range') continue
        if (kind === 'legacy') body += this.caseRange(it.lo, it.hi)
        else body += it.lo === it.hi ? escCp(it.lo, true) : escCp(it.lo, true) + '-' + escCp(it.hi, true)
      }
    }
    for (const it of n.items) {
      if (it.k === 'short') {
        const lower = it.c.toLowerCase() as 'd' | 'w' | 's'
        const b = shortBody(lower, f, this.flavor)
        if (it.c === lower) body += b
        else negShorts.push('[^' + b + ']')
      } else if (it.k === 'posix') {
        const pb = f.i && (it.name === 'upper' || it.name === 'lower') ? POSIX_CLASSES.alpha : POSIX_CLASSES[it.name]
        if (it.neg) negShorts.push('[^' + pb + ']')
        else body += pb
      }
    }
    if (negShorts.length === 0) {
      if (body === '') return n.neg ? '[\\s\\S]' : '[]'
      return (n.neg ? '[^' : '[') + body + ']'
    }
    const union = [...(body ? ['[' + body + ']'] : []), ...negShorts].join('|')
    return n.neg ? '(?:(?!' + union + ')[\\s\\S])' : '(?:' + union + ')'
  }

  /** PCRE scoped `(?i:…)` range in the Unicode variant. */
  private caseRange(lo: number, hi: number): string {
    return rangesBody(legacyRange(lo, hi, this.src))
  }
}

/** Shorthand classes of the ASCII and BMP variants, by variant and flags. */
const SHORT_CACHE = new Map<string, string>()
/** Classes of the ASCII and BMP variants, by variant and code points. */
const CLASS_CACHE = new Map<string, string>()


function hasBackref(n: Node): boolean {
  switch (n.t) {
    case 'backref': return true
    case 'seq': return n.items.some(hasBackref)
    case 'alt': return n.alts.some(hasBackref)
    case 'group': case 'atomic': case 'look': case 'quant': return hasBackref(n.body)
    case 'cond': return hasBackref(n.yes) || hasBackref(n.no)
    default: return false
  }
}

function usesCase(n: Node, acc: {on: boolean; off: boolean}): void {
  switch (n.t) {
    case 'seq': n.items.forEach((x) => usesCase(x, acc)); break
    case 'alt': n.alts.forEach((x) => usesCase(x, acc)); break
    case 'char': case 'class': case 'backref':
      if (n.f.i) acc.on = true
      else acc.off = true
      break
    case 'group': case 'atomic': case 'look': case 'quant': usesCase(n.body, acc); break
    case 'cond': usesCase(n.yes, acc); usesCase(n.no, acc); break
    default: break
  }
}

// ---------------------------------------------------------------------------------------------
// Compiled form

/**
 * For a pattern anchored at the subject start (`^X`, X not nullable): the characters a match can
 * start with, as a table over ASCII plus one flag for everything else. Lets callers skip a regex
 * with one array lookup.
 */
export interface FirstChars {
  readonly ascii: Uint8Array
  readonly other: boolean
  /**
   * The literal text every match starts with ('' when none): a caller tests it with one
   * startsWith instead of a regex call that would fail on it.
   */
  readonly prefix: string
  /**
   * When the pattern starts with a choice of literal texts (`^(?:Connection closed|Disconnected)`):
   * those texts (at most MAX_PREFIXES, none empty), one of which every match starts with;
   * undefined otherwise.
   */
  readonly prefixes?: readonly string[]
}

/** Literal texts a sequence can start with: `complete` when the whole sequence is that one text. */
interface Prefixes {
  texts: string[]
  complete: boolean
}

/** Choices beyond this many literal starts are not worth testing one by one. */
const MAX_PREFIXES = 8

/**
 * The case-sensitive literal texts one of which a match of `items` starts with, through groups
 * and choices; a text ends at the first non-literal item (a class, a quantifier, a
 * case-insensitive character, …), so '' means "anything".
 */
function prefixesOf(items: readonly Node[]): Prefixes {
  let s = ''
  for (const it of items) {
    if (it.t === 'char' && !it.f.i) {
      s += String.fromCodePoint(it.cp)
      continue
    }
    let sub: Prefixes | undefined
    if (it.t === 'group' || it.t === 'atomic') sub = prefixesOf(it.body.t === 'seq' ? it.body.items : [it.body])
    else if (it.t === 'alt') {
      const texts: string[] = []
      for (const a of it.alts) texts.push(...prefixesOf(a.t === 'seq' ? a.items : [a]).texts)
      sub = {texts, complete: false}
    }
    if (sub === undefined) return {texts: [s], complete: false}
    if (sub.complete) {
      s += sub.texts[0]
      continue
    }
    return {texts: sub.texts.map((t) => s + t), complete: false}
  }
  return {texts: [s], complete: true}
}

function commonPrefix(texts: readonly string[]): string {
  let p = texts[0] ?? ''
  for (const t of texts) {
    let n = 0
    while (n < p.length && n < t.length && p.charCodeAt(n) === t.charCodeAt(n)) n++
    p = p.slice(0, n)
  }
  return p
}

function anchoredFirst(tree: Node): FirstChars | undefined {
  let items: Node[]
  if (tree.t === 'seq') items = tree.items
  else return undefined
  const head = items[0]
  if (!head || head.t !== 'assert' || head.k !== 'bol' || head.f.m) return undefined
  const f = firstOf({t: 'seq', items: items.slice(1)})
  if (f.nullable) return undefined
  const ascii = new Uint8Array(128)
  let other = false
  for (let i = 0; i < f.set.length; i += 2) {
    for (let c = f.set[i]; c <= Math.min(f.set[i + 1], 127); c++) ascii[c] = 1
    if (f.set[i + 1] >= 128) other = true
  }
  const texts = [...new Set(prefixesOf(items.slice(1)).texts)]
  const prefix = commonPrefix(texts)
  const choice = texts.length > 1 && texts.length <= MAX_PREFIXES && texts.every((t) => t.length > prefix.length)
  return choice ? {ascii, other, prefix, prefixes: texts} : {ascii, other, prefix}
}

/** Variants of a regex for one sticky loop, compiled on first use per repetition index. */
interface StickyPlan {
  loop: QuantNode
  /** Python group numbers inside the loop. */
  groups: number[]
  /** JS index of the loop's wrapping capture in the main regex. */
  loopIndex: number
  /** Variant k for subjects of this domain. */
  variant(k: number, domain: Domain): {re: RegExp; index: Map<number, number>; loopIndex: number}
}

/** Repetitions examined at most when recovering sticky captures. */
const MAX_STICKY_REPETITIONS = 256

const NON_ASCII_G = /[^\x00-\x7f]/g
const SURROGATE_G = /[\ud800-\udfff]/g
let kindOf: string | undefined
let kindIs: Domain = 'full'

/**
 * Which variant serves `s`: ASCII (pure ASCII), BMP (non-ASCII, no surrogate code units) or full
 * (surrogates, or empty). One native scan, remembered for the next call on the same subject
 * (filters run many regexes on one line); `nonAscii` skips the ASCII part.
 */
function domainOf(s: string, nonAscii: boolean): Domain {
  if (s === kindOf) return kindIs
  let d: Domain
  if (s.length === 0) d = 'full'
  else {
    let from = 0
    if (!nonAscii) {
      NON_ASCII_G.lastIndex = 0
      from = NON_ASCII_G.test(s) ? NON_ASCII_G.lastIndex - 1 : -1
    }
    if (from < 0) d = 'ascii'
    else {
      SURROGATE_G.lastIndex = from
      d = SURROGATE_G.test(s) ? 'full' : 'bmp'
    }
  }
  kindOf = s
  kindIs = d
  return d
}

let loweredOf: string | undefined
let loweredMode: 'unicode' | 'ascii' = 'unicode'
let loweredIs = ''

/** Python's lower form of every character of `s` (same length in UTF-16 code units). */
function lowerSubject(s: string, mode: 'unicode' | 'ascii'): string {
  if (s === loweredOf && mode === loweredMode) return loweredIs
  let out: string
  if (mode === 'ascii') out = s.replace(/[A-Z]+/g, (x) => x.toLowerCase())
  // The native full mapping is Python's per-character one except for U+0130 (two code points)
  // and the context-dependent final sigma.
  else if (!/[\u0130\u03a3]/.test(s)) out = s.toLowerCase()
  else {
    out = ''
    for (const ch of s) out += String.fromCodePoint(pyLower(ch.codePointAt(0)!))
  }
  loweredOf = s
  loweredMode = mode
  loweredIs = out
  return out
}

/**
 * exec for the Unicode variant. V8 (Node 20) lets a `u` regex match empty text between the two
 * halves of a surrogate pair (`/(?!.)/su.exec('😀')` finds index 1), a position that does not
 * exist in Python's (or the spec's) code point view: such a match is skipped, like the spec's
 * AdvanceStringIndex does, by searching again from the next position.
 */
function execUnicode(re: RegExp, subject: string, from: number): RegExpExecArray | null {
  re.lastIndex = from
  for (;;) {
    const m = re.exec(subject)
    if (m === null || m.index === 0) return m
    const c = subject.charCodeAt(m.index)
    if (c < 0xdc00 || c > 0xdfff) return m
    const p = subject.charCodeAt(m.index - 1)
    if (p < 0xd800 || p > 0xdbff) return m
    re.lastIndex = m.index + 1
  }
}

interface Variant {
  re: RegExp
  domain: Domain
}

class Compiled implements CompiledRegex {
  constructor(
    readonly source: string,
    readonly groupNames: ReadonlyMap<string, number>,
    readonly groupCount: number,
    readonly required: readonly string[],
    readonly ignoreCase: boolean,
    private readonly ascii: RegExp,
    /** Undefined when BMP subjects need the Unicode variant (a PCRE case-insensitive back-reference). */
    private readonly bmp: RegExp | undefined,
    private readonly unicode: RegExp,
    /** JS index of each Python group number, for numbered access. */
    readonly pyIndex: readonly number[],
    private readonly sticky: readonly StickyPlan[] = [],
    /** See FirstChars; undefined when the pattern is not anchored or can start with anything. */
    readonly first?: FirstChars,
    /**
     * Python case-insensitive back-references compare lower forms, which no native flag does:
     * such patterns are matched against the subject's lower form (every other node of a
     * uniformly case-insensitive pattern matches a character exactly when it matches its lower
     * form), and the captures are taken from the subject at the same positions (`d` flag).
     */
    private readonly lowered?: 'unicode' | 'ascii',
    /** JS indices of the groups that consumed the character after a tail word boundary (tailBoundaries). */
    private readonly trim: readonly number[] = [],
    /** Pairs (slot, copy) of JS indices: a group emitted more than once reports in its first slot. */
    private readonly copies: readonly number[] = [],
  ) {}

  /** Length of the character a tail word boundary consumed beyond the match, if any. */
  private extra(m: RegExpExecArray): number {
    for (const i of this.trim) {
      const t = m[i]
      if (t !== undefined) return t.length
    }
    return 0
  }

  /** The native source used for ASCII subjects (for diagnostics and tests). */
  get jsSource(): string {
    return this.ascii.source
  }

  /** The native sources of the three variants (for diagnostics and tests). */
  get variantSources(): {ascii: string; bmp: string | undefined; unicode: string} {
    return {ascii: this.ascii.source, bmp: this.bmp?.source, unicode: this.unicode.source}
  }

  /** The variant that serves `subject` (exported for tests). */
  variantFor(subject: string, ascii?: boolean): Variant {
    const d = ascii === true && subject.length > 0 ? 'ascii' : domainOf(subject, ascii === false)
    if (d === 'ascii') return {re: this.ascii, domain: d}
    if (d === 'bmp' && this.bmp !== undefined) return {re: this.bmp, domain: d}
    return {re: this.unicode, domain: 'full'}
  }

  exec(subject: string, from = 0, ascii?: boolean): RegExpExecArray | null {
    const m = this.execVariant(subject, from, ascii)
    const c = this.copies
    if (m !== null && c.length > 0) {
      for (let i = 0; i < c.length; i += 2) {
        const v = m[c[i + 1]]
        if (v !== undefined) m[c[i]] = v
      }
    }
    return m
  }

  private execVariant(subject: string, from: number, ascii: boolean | undefined): RegExpExecArray | null {
    const d = ascii === true && subject.length > 0 ? 'ascii' : domainOf(subject, ascii === false)
    const re = d === 'ascii' ? this.ascii : d === 'bmp' && this.bmp !== undefined ? this.bmp : this.unicode
    const domain = re === this.unicode ? 'full' : d
    if (this.lowered !== undefined) return this.execLowered(re, domain, subject, from)
    if (domain === 'bmp') return this.execBmp(re, subject, from)
    const m = domain === 'full' ? execUnicode(re, subject, from) : (re.lastIndex = from, re.exec(subject))
    if (m === null) return null
    if (this.sticky.length > 0) this.fixSticky(m, subject, domain)
    if (this.trim.length > 0) {
      const extra = this.extra(m)
      if (extra > 0) m[0] = m[0].slice(0, m[0].length - extra)
    }
    return m
  }

  /** The BMP variant runs on the permuted subject (see PiTables); the result is mapped back. */
  private execBmp(re: RegExp, subject: string, from: number): RegExpExecArray | null {
    const permuted = permuteSubject(subject)
    re.lastIndex = from
    const m = re.exec(permuted)
    if (m === null) return null
    if (this.sticky.length > 0) this.fixSticky(m, permuted, 'bmp')
    m[0] = subject.slice(m.index, m.index + m[0].length - this.extra(m))
    const inv = pi().inv
    for (let i = 1; i < m.length; i++) {
      const g = m[i]
      if (g !== undefined && !isAscii(g)) m[i] = permute(g, inv)
    }
    m.input = subject
    return m
  }

  private execLowered(re: RegExp, domain: Domain, subject: string, from: number): RegExpExecArray | null {
    let low = lowerSubject(subject, this.lowered!)
    if (domain === 'bmp') low = permuteSubject(low)
    const m = domain === 'full' ? execUnicode(re, low, from) : (re.lastIndex = from, re.exec(low))
    if (m === null) return null
    const set = this.sticky.length > 0 ? this.fixSticky(m, low, domain, subject) : undefined
    const at = m.indices!
    const extra = this.extra(m)
    for (let i = 0; i < m.length; i++) {
      const r = at[i]
      if (r !== undefined && !set?.has(i)) m[i] = subject.slice(r[0], r[1])
    }
    m[0] = m[0].slice(0, m[0].length - extra)
    m.input = subject
    return m
  }

  /**
   * Give groups inside sticky loops Python's value: the one from the last repetition that set
   * them. Variant k matches at the same place with the same path (same total and loop text)
   * and exposes repetition k + 1's groups. With `orig` (lowered matching), values are taken from
   * it at the matched positions. Returns the JS indices it set.
   */
  private fixSticky(m: RegExpExecArray, subject: string, domain: Domain, orig?: string): Set<number> {
    const set = new Set<number>()
    for (const plan of this.sticky) {
      const loopText = m[plan.loopIndex]
      if (loopText === undefined || loopText === '') continue
      const last = new Map<number, string>()
      const max = Math.min(plan.loop.max, MAX_STICKY_REPETITIONS)
      for (let k = 0; k < max; k++) {
        const v = plan.variant(k, domain)
        v.re.lastIndex = m.index
        const mk = v.re.exec(subject)
        if (mk === null || mk[0].length !== m[0].length || mk[v.loopIndex] !== loopText) break
        for (const g of plan.groups) {
          const i = v.index.get(g)!
          const val = mk[i]
          if (val === undefined) continue
          if (orig === undefined) last.set(g, val)
          else {
            const r = mk.indices![i]!
            last.set(g, orig.slice(r[0], r[1]))
          }
        }
      }
      for (const [g, val] of last) {
        m[this.pyIndex[g]] = val
        set.add(this.pyIndex[g])
      }
    }
    return set
  }

  group(m: RegExpExecArray, name: string): string | undefined {
    const i = this.groupNames.get(name)
    return i === undefined ? undefined : m[i]
  }
}

/** Literals of which one must occur in every match (case-sensitive patterns only). */
function requiredLiterals(n: Node): string[] {
  // Returns candidate sets; a set means "one of these occurs". Pick the strongest.
  const best = (sets: string[][]): string[] => {
    let pick: string[] = []
    let score = 0
    for (const s of sets) {
      if (s.length === 0) continue
      const sc = Math.min(...s.map((x) => x.length)) / s.length
      if (sc > score) { score = sc; pick = s }
    }
    return pick
  }
  const walk = (x: Node): string[] => {
    switch (x.t) {
      case 'seq': {
        const sets: string[][] = []
        let run = ''
        for (const it of x.items) {
          if (it.t === 'char' && !it.f.i) { run += String.fromCodePoint(it.cp); continue }
          if (run) { sets.push([run]); run = '' }
          if (it.t === 'assert' || it.t === 'look') continue
          sets.push(walk(it))
        }
        if (run) sets.push([run])
        return best(sets)
      }
      case 'alt': {
        const all: string[] = []
        for (const a of x.alts) {
          const r = walk(a)
          if (r.length === 0) return []
          all.push(...r)
        }
        return [...new Set(all)]
      }
      case 'char': return x.f.i ? [] : [String.fromCodePoint(x.cp)]
      case 'group': case 'atomic': return walk(x.body)
      case 'quant': return x.min > 0 ? walk(x.body) : []
      default: return []
    }
  }
  const r = walk(n)
  // Very short literals do not pay for the extra scan.
  return r.every((s) => s.length >= 3) ? r : []
}

/**
 * For a uniformly case-insensitive Python pattern with back-references: which lower form the
 * subject is matched in. Every node must match a character exactly when it matches that form.
 */
function loweringOf(tree: Node, pattern: string): 'unicode' | 'ascii' {
  let ascii = 0
  let unicode = 0
  const walk = (n: Node): void => {
    switch (n.t) {
      case 'seq': n.items.forEach(walk); break
      case 'alt': n.alts.forEach(walk); break
      case 'char': case 'class': case 'backref': case 'short':
        if (n.f.a) ascii++
        else if (n.t !== 'short') unicode++
        break
      case 'assert':
        if ((n.k === 'b' || n.k === 'B') && n.f.a) ascii++
        break
      case 'group': case 'atomic': case 'look': case 'quant': walk(n.body); break
      case 'cond': walk(n.yes); walk(n.no); break
      default: break
    }
  }
  walk(tree)
  if (unicode === 0) return 'ascii'
  if (ascii === 0) return 'unicode'
  throw new PatternError('a case-insensitive back-reference in a pattern that mixes ASCII-only (?a) and Unicode matching cannot be translated', pattern)
}

/** Largest growth of the tree that resolving conditionals may cause. */
const MAX_RESOLVED_GROWTH = 16

/**
 * `tree` with its conditionals resolved (resolveConditionals) and its analysis, or undefined
 * when that is not possible or not exact: a conditional that cannot be resolved, a
 * back-reference to a copied group, a sticky loop, or too large a result.
 */
function resolved(tree: Node, groupCount: number): {tree: Node; info: GroupInfo[]; sticky: StickyLoop[]} | undefined {
  let r: Node
  try {
    r = resolveConditionals(tree)
  } catch (e) {
    if (e instanceof Unresolvable) return undefined
    throw e
  }
  if (hasCond(r) || nodeCount(r) > MAX_RESOLVED_GROWTH * nodeCount(tree)) return undefined
  const copies = new Map<number, number>()
  const count = (n: Node): void => {
    switch (n.t) {
      case 'seq': n.items.forEach(count); break
      case 'alt': n.alts.forEach(count); break
      case 'group': if (n.num !== undefined) copies.set(n.num, (copies.get(n.num) ?? 0) + 1); count(n.body); break
      case 'atomic': case 'look': case 'quant': count(n.body); break
      default: break
    }
  }
  count(r)
  // Every group keeps one result slot (a group only in dropped branches has none). Patterns
  // with back-references keep the participation tests (a copy of a back-reference may precede
  // the group it names, or name a group with copies).
  for (let g = 1; g <= groupCount; g++) if (!copies.has(g)) return undefined
  if (refsIn(r, new Set()).size > 0) return undefined
  const sticky: StickyLoop[] = []
  let info: GroupInfo[]
  try {
    info = analyse(r, groupCount, sticky)
  } catch (e) {
    if (e instanceof PatternError) return undefined
    throw e
  }
  if (sticky.length > 0) return undefined
  return {tree: r, info, sticky}
}

/** Compile a Python-`re` (default) or PCRE pattern. Throws PatternError. */
export function compilePython(pattern: string, opts: RegexOptions = {}): CompiledRegex & {
  pyIndex: readonly number[]
  jsSource: string
  variantSources: {ascii: string; bmp: string | undefined; unicode: string}
  variantFor(subject: string, ascii?: boolean): {re: RegExp; domain: 'ascii' | 'bmp' | 'full'}
  first?: FirstChars
} {
  const flavor = opts.flavor ?? 'python'
  const base: Flags = {i: !!opts.ignoreCase, m: !!opts.multiline, s: false, x: false, a: false}
  const parser = new Parser(pattern, flavor, base)
  let tree: Node
  let info: GroupInfo[]
  let sticky: StickyLoop[] = []
  try {
    tree = parser.parse()
    info = analyse(tree, parser.groupCount, sticky)
  } catch (e) {
    if (e instanceof PatternError && e.pattern === '') throw new PatternError(e.message, pattern)
    throw e
  }
  const cs = {on: false, off: false}
  usesCase(tree, cs)
  const wholeI = cs.on && !cs.off
  const backrefs = hasBackref(tree)
  // Python patterns expand case-insensitivity into classes in every variant (no native flag
  // has Python's rules); case-insensitive back-references match the lowered subject. PCRE
  // patterns keep the `ui` flags in their Unicode variant; the ASCII and BMP variants expand
  // its folding (the `i` flag disables V8's linear-time fallback), except where a
  // case-insensitive back-reference needs the flag: the ASCII variant then takes it, and BMP
  // subjects use the Unicode variant.
  const nativeI = flavor === 'pcre' && wholeI
  const lowered = flavor === 'python' && wholeI && backrefs ? loweringOf(tree, pattern) : undefined
  const d = lowered ? 'd' : ''
  const asciiNativeI = nativeI && backrefs
  const withBmp = !(nativeI && backrefs)
  const singleLine = !!opts.singleLine
  // The tree that is emitted: conditionals resolved where possible (no participation test, no
  // look-behind: faster, and eligible for V8's linear-time engine).
  let etree = tree
  if (sticky.length === 0 && lowered === undefined && hasCond(tree)) {
    const r = resolved(tree, parser.groupCount)
    if (r !== undefined) ({tree: etree, info, sticky} = r)
  }
  const tails = tailBoundaries(etree, flavor, nativeI)
  const optsFor = (domain: Domain): EmitOptions => ({
    tails,
    domain,
    nativeI: domain === 'full' ? nativeI : domain === 'ascii' ? asciiNativeI : false,
    lowered: lowered !== undefined,
    pcreFold: nativeI,
    singleLine,
  })
  const flagsFor = (domain: Domain): string => (domain === 'full' ? 'gu' : 'g') + (optsFor(domain).nativeI ? 'i' : '') + d
  const loops = sticky.map((l) => l.node)
  const follow = new Map<QuantNode, First>()
  computeFollow(etree, {set: [], nullable: true}, follow)
  const emit = (domain: Domain, variant?: {loop: QuantNode; k: number}): Emitter => {
    const em = new Emitter(info, flavor, optsFor(domain), pattern, loops, variant)
    em.follow = follow
    em.groupCopies = etree !== tree
    em.source = em.emit(etree)
    return em
  }
  const ea = emit('ascii')
  const eb = withBmp ? emit('bmp') : undefined
  const eu = emit('full')
  const plans: StickyPlan[] = sticky.map((l) => {
    const cache = new Map<string, {re: RegExp; index: Map<number, number>; loopIndex: number}>()
    return {
      loop: l.node,
      groups: [...l.groups],
      loopIndex: ea.loopIndex.get(l.node)!,
      variant(k: number, domain: Domain) {
        const key = `${k}:${domain}`
        let v = cache.get(key)
        if (!v) {
          const em = emit(domain, {loop: l.node, k})
          v = {re: new RegExp(em.source, flagsFor(domain) + 'y'), index: em.variantIndex, loopIndex: em.loopIndex.get(l.node)!}
          cache.set(key, v)
        }
        return v
      },
    }
  })
  let asciiRe: RegExp
  let bmpRe: RegExp | undefined
  let uniRe: RegExp
  try {
    asciiRe = new RegExp(ea.source, flagsFor('ascii'))
    bmpRe = eb && new RegExp(eb.source, flagsFor('bmp'))
    uniRe = new RegExp(eu.source, flagsFor('full'))
  } catch (e) {
    throw new PatternError(`cannot be translated to a JavaScript regex (${(e as Error).message})`, pattern)
  }
  const names = new Map<string, number>()
  for (const [name, num] of parser.names) names.set(name, ea.jsIndex[num])
  const pyIndex = ea.jsIndex.slice()
  return new Compiled(
    pattern, names, ea.groupCount, cs.on ? [] : requiredLiterals(tree), wholeI, asciiRe,
    bmpRe, uniRe, pyIndex, plans, anchoredFirst(tree), lowered, ea.trimGroups, ea.copies,
  )
}
