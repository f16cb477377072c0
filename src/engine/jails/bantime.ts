/**
 * Ban durations: fail2ban's `bantime.increment` (jail.conf) and the jail's random extra time.
 *
 * fail2ban grows the ban time of an offender it banned before (`ban.Count` earlier bans in its
 * database, of this jail or of all jails with `bantime.overalljails`):
 * - with `bantime.multipliers` (`1 2 4 8 …`): `ban.Time * banFactor * multipliers[ban.Count]`,
 *   the last multiplier once the count runs past the list;
 * - else with `bantime.formula`, a Python expression over `ban.Time`, `ban.Count`, `banFactor`
 *   (default `ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor`), never below
 *   `ban.Time`;
 * - the result is capped at `bantime.maxtime`, then up to `bantime.rndtime` random seconds are
 *   added. A first ban (count 0) and a permanent ban (`bantime -1`) are never changed.
 * `bantime.factor` defaults to 1.
 *
 * fail2ban evaluates the formula with Python's `eval`; spylog parses it once into a small
 * expression tree (numbers, the three names, arithmetic, shifts, comparisons, `and`/`or`/`not`,
 * `x if c else y`, and a fixed set of functions: min, max, abs, int, float, round, math.exp/log/
 * log2/log10/pow/sqrt/floor/ceil, math.e, math.pi). Nothing else can be named, so a formula can
 * never reach anything outside its numbers.
 */
import type {BanTimeIncrement} from '../config/model.js'

/** A formula that cannot be parsed or evaluated. `position` is a 0-based offset into the text. */
export class FormulaError extends Error {
  constructor(
    message: string,
    readonly position?: number,
  ) {
    super(message)
    this.name = 'FormulaError'
  }
}

/** The values a formula sees. */
export interface FormulaScope {
  /** `ban.Time`: the jail's configured ban time, seconds. */
  readonly time: number
  /** `ban.Count`: earlier bans of the offender. */
  readonly count: number
  /** `banFactor`. */
  readonly factor: number
}

/** A compiled formula. */
export type Formula = (scope: FormulaScope) => number

/** fail2ban's default formula (1, 2, 4, 8 … times the ban time, doubling stops at 2^20). */
export const DEFAULT_FORMULA = 'ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor'

type Node = (s: FormulaScope) => number

const VARIABLES: Readonly<Record<string, Node>> = {
  'ban.Time': (s) => s.time,
  'ban.Count': (s) => s.count,
  banFactor: (s) => s.factor,
  'math.e': () => Math.E,
  'math.pi': () => Math.PI,
  True: () => 1,
  False: () => 0,
}

/** Python's round: half to even, optional digits. */
function pyRound(x: number, digits = 0): number {
  const m = 10 ** Math.trunc(digits)
  const v = x * m
  const f = Math.floor(v)
  const d = v - f
  const r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1
  return r / m
}

function positive(name: string, x: number): number {
  if (!(x > 0)) throw new FormulaError(`${name}: math domain error (${x})`)
  return x
}

const FUNCTIONS: Readonly<Record<string, {min: number; max: number; fn: (...a: number[]) => number}>> = {
  min: {min: 1, max: 64, fn: (...a) => Math.min(...a)},
  max: {min: 1, max: 64, fn: (...a) => Math.max(...a)},
  abs: {min: 1, max: 1, fn: (x) => Math.abs(x!)},
  int: {min: 1, max: 1, fn: (x) => Math.trunc(x!)},
  float: {min: 1, max: 1, fn: (x) => x!},
  round: {min: 1, max: 2, fn: (x, d) => pyRound(x!, d ?? 0)},
  'math.exp': {min: 1, max: 1, fn: (x) => Math.exp(x!)},
  'math.log': {min: 1, max: 2, fn: (x, b) => (b === undefined ? Math.log(positive('math.log', x!)) : Math.log(positive('math.log', x!)) / Math.log(positive('math.log', b)))},
  'math.log2': {min: 1, max: 1, fn: (x) => Math.log2(positive('math.log2', x!))},
  'math.log10': {min: 1, max: 1, fn: (x) => Math.log10(positive('math.log10', x!))},
  'math.pow': {min: 2, max: 2, fn: (x, y) => Math.pow(x!, y!)},
  'math.sqrt': {min: 1, max: 1, fn: (x) => {
    if (x! < 0) throw new FormulaError(`math.sqrt: math domain error (${x})`)
    return Math.sqrt(x!)
  }},
  'math.floor': {min: 1, max: 1, fn: (x) => Math.floor(x!)},
  'math.ceil': {min: 1, max: 1, fn: (x) => Math.ceil(x!)},
}

interface Token {
  kind: 'num' | 'name' | 'op' | 'end'
  text: string
  value: number
  pos: number
}

const OPERATORS = ['**', '//', '<<', '>>', '<=', '>=', '==', '!=', '+', '-', '*', '/', '%', '<', '>', '(', ')', ',']
const KEYWORDS = new Set(['if', 'else', 'and', 'or', 'not'])

function tokenize(text: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++
      continue
    }
    const num = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 64))
    if (num !== null) {
      out.push({kind: 'num', text: num[0], value: Number(num[0]), pos: i})
      i += num[0].length
      continue
    }
    const name = /^[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*/.exec(text.slice(i, i + 256))
    if (name !== null) {
      out.push({kind: 'name', text: name[0].replace(/\s+/g, ''), value: 0, pos: i})
      i += name[0].length
      continue
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i))
    if (op === undefined) throw new FormulaError(`unexpected character ${JSON.stringify(c)} at position ${i}`, i)
    out.push({kind: 'op', text: op, value: 0, pos: i})
    i += op.length
  }
  out.push({kind: 'end', text: '', value: 0, pos: text.length})
  return out
}

/** Parses a Python expression of the formula subset (recursive descent, Python's precedence). */
class Parser {
  private i = 0
  constructor(private readonly toks: Token[]) {}

  private peek(): Token {
    return this.toks[this.i]!
  }

  private is(text: string): boolean {
    const t = this.peek()
    return (t.kind === 'op' || t.kind === 'name') && t.text === text
  }

  private expect(text: string): void {
    if (!this.is(text)) this.fail(`expected '${text}'`)
    this.i++
  }

  private fail(what: string): never {
    const t = this.peek()
    throw new FormulaError(`${what} at position ${t.pos}${t.kind === 'end' ? ' (end of formula)' : `, found '${t.text}'`}`, t.pos)
  }

  parse(): Node {
    const n = this.conditional()
    if (this.peek().kind !== 'end') this.fail('unexpected text')
    return n
  }

  private conditional(): Node {
    const body = this.or()
    if (!this.is('if')) return body
    this.i++
    const cond = this.or()
    this.expect('else')
    const other = this.conditional()
    return (s) => (cond(s) !== 0 ? body(s) : other(s))
  }

  private or(): Node {
    let l = this.and()
    while (this.is('or')) {
      this.i++
      const a = l
      const b = this.and()
      l = (s) => {
        const x = a(s)
        return x !== 0 ? x : b(s)
      }
    }
    return l
  }

  private and(): Node {
    let l = this.not()
    while (this.is('and')) {
      this.i++
      const a = l
      const b = this.not()
      l = (s) => {
        const x = a(s)
        return x === 0 ? x : b(s)
      }
    }
    return l
  }

  private not(): Node {
    if (this.is('not')) {
      this.i++
      const a = this.not()
      return (s) => (a(s) === 0 ? 1 : 0)
    }
    return this.comparison()
  }

  private comparison(): Node {
    const first = this.shift()
    const ops: string[] = []
    const rest: Node[] = []
    while (['<', '>', '<=', '>=', '==', '!='].includes(this.peek().text) && this.peek().kind === 'op') {
      ops.push(this.peek().text)
      this.i++
      rest.push(this.shift())
    }
    if (ops.length === 0) return first
    const cmp = (op: string, a: number, b: number): boolean =>
      op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : op === '>=' ? a >= b : op === '==' ? a === b : a !== b
    // Python chains comparisons: a < b < c is a < b and b < c.
    return (s) => {
      let a = first(s)
      for (let k = 0; k < ops.length; k++) {
        const b = rest[k]!(s)
        if (!cmp(ops[k]!, a, b)) return 0
        a = b
      }
      return 1
    }
  }

  private shift(): Node {
    let l = this.additive()
    while (this.peek().kind === 'op' && (this.is('<<') || this.is('>>'))) {
      const left = this.is('<<')
      this.i++
      const a = l
      const b = this.additive()
      l = (s) => {
        const x = a(s)
        const n = b(s)
        if (!Number.isInteger(x) || !Number.isInteger(n)) throw new FormulaError(`unsupported operand for ${left ? '<<' : '>>'}: ${x}, ${n} (whole numbers only)`)
        if (n < 0) throw new FormulaError('negative shift count')
        // Arbitrary precision as in Python, within doubles: no 32-bit wrap-around.
        return left ? x * 2 ** n : Math.floor(x / 2 ** n)
      }
    }
    return l
  }

  private additive(): Node {
    let l = this.term()
    while (this.peek().kind === 'op' && (this.is('+') || this.is('-'))) {
      const plus = this.is('+')
      this.i++
      const a = l
      const b = this.term()
      l = plus ? (s) => a(s) + b(s) : (s) => a(s) - b(s)
    }
    return l
  }

  private term(): Node {
    let l = this.unary()
    while (this.peek().kind === 'op' && ['*', '/', '//', '%'].includes(this.peek().text)) {
      const op = this.peek().text
      this.i++
      const a = l
      const b = this.unary()
      if (op === '*') l = (s) => a(s) * b(s)
      else {
        l = (s) => {
          const x = a(s)
          const y = b(s)
          if (y === 0) throw new FormulaError('division by zero')
          if (op === '/') return x / y
          if (op === '//') return Math.floor(x / y)
          const r = x % y
          return r !== 0 && r < 0 !== y < 0 ? r + y : r // Python's modulo takes the divisor's sign
        }
      }
    }
    return l
  }

  private unary(): Node {
    if (this.peek().kind === 'op' && (this.is('-') || this.is('+'))) {
      const neg = this.is('-')
      this.i++
      const a = this.unary()
      return neg ? (s) => -a(s) : a
    }
    return this.power()
  }

  private power(): Node {
    const base = this.atom()
    if (this.peek().kind === 'op' && this.is('**')) {
      this.i++
      const exp = this.unary() // right-associative, and -x binds looser on the left only
      return (s) => {
        const r = base(s) ** exp(s)
        if (Number.isNaN(r)) throw new FormulaError('math domain error in **')
        return r
      }
    }
    return base
  }

  private atom(): Node {
    const t = this.peek()
    if (t.kind === 'num') {
      this.i++
      const v = t.value
      return () => v
    }
    if (t.kind === 'op' && t.text === '(') {
      this.i++
      const n = this.conditional()
      this.expect(')')
      return n
    }
    if (t.kind === 'name' && !KEYWORDS.has(t.text)) {
      this.i++
      if (this.peek().kind === 'op' && this.is('(')) {
        const f = FUNCTIONS[t.text]
        if (f === undefined) throw new FormulaError(`unknown function '${t.text}' at position ${t.pos} (known: ${Object.keys(FUNCTIONS).join(', ')})`, t.pos)
        this.i++
        const args: Node[] = []
        if (!this.is(')')) {
          args.push(this.conditional())
          while (this.peek().kind === 'op' && this.is(',')) {
            this.i++
            args.push(this.conditional())
          }
        }
        this.expect(')')
        if (args.length < f.min || args.length > f.max) throw new FormulaError(`${t.text}() takes ${f.min === f.max ? f.min : `${f.min} to ${f.max}`} argument(s), got ${args.length}`, t.pos)
        const fn = f.fn
        return (s) => fn(...args.map((a) => a(s)))
      }
      const v = VARIABLES[t.text]
      if (v === undefined) throw new FormulaError(`unknown name '${t.text}' at position ${t.pos} (known: ban.Time, ban.Count, banFactor, math.e, math.pi)`, t.pos)
      return v
    }
    this.fail('expected a number, a name or (')
  }
}

/** Compiles a `bantime.formula` (throws FormulaError naming the position of a mistake). */
export function compileFormula(text: string): Formula {
  if (text.length > 4096) throw new FormulaError('formula too long')
  const node = new Parser(tokenize(text)).parse()
  return (scope) => {
    const v = node(scope)
    if (!Number.isFinite(v)) throw new FormulaError(`the formula gave ${v}`)
    return v
  }
}

/**
 * A jail's ban-time function: `(banCount, random) → seconds`, rounded to whole seconds.
 * `bantime` -1 (permanent) is returned unchanged. Throws FormulaError at construction when the
 * formula is invalid.
 */
export function banTimeCalculator(bantime: number, inc?: BanTimeIncrement, jailRndtime?: number): (banCount: number, random?: () => number) => number {
  let grow: ((count: number, random: () => number) => number) | undefined
  if (inc?.enabled === true) {
    const factor = inc.factor ?? 1
    const multipliers = inc.multipliers ?? []
    let ev: (count: number) => number
    if (multipliers.length > 0) {
      ev = (count) => bantime * factor * multipliers[Math.min(count, multipliers.length - 1)]!
    } else {
      const formula = compileFormula(inc.formula ?? DEFAULT_FORMULA)
      ev = (count) => Math.max(bantime, formula({time: bantime, count, factor}))
    }
    const maxtime = inc.maxtime
    const rnd = inc.rndtime
    grow = (count, random) => {
      let t = ev(count)
      if (maxtime !== undefined) t = Math.min(t, maxtime)
      if (rnd !== undefined && rnd > 0) t += random() * rnd
      return t
    }
  }
  return (banCount, random = Math.random) => {
    if (bantime < 0) return -1
    let t = bantime
    if (grow !== undefined && banCount > 0) t = grow(banCount, random)
    if (jailRndtime !== undefined && jailRndtime > 0) t += random() * jailRndtime
    return Math.round(t)
  }
}
