/**
 * Loads a fail2ban filter (`filter.d/NAME.conf` with its includes, `.local` and `.d` files) and
 * resolves its options exactly as fail2ban's FilterReader does:
 *
 * 1. phase 1 — the seven filter options are read from `[Definition]` (falling back to
 *    `[DEFAULT]`) with `%(x)s` interpolation, caller parameters visible as variables; `[Init]`
 *    options are read (interpolated without caller parameters) as parameter defaults;
 * 2. phase 2 — `<tag>` substitution over {options} ∪ {Init} ∪ {caller parameters}, innermost
 *    tags first, unknown tags (`<HOST>`, `<F-USER>`, …) left as they are.
 *
 * Phase 3 (regex tags) belongs to the regex compiler.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import {ConfigError} from './errors.js'
import {IniStack, pyStrip, readConfigFile} from './ini.js'

export interface FilterDefinition {
  name: string
  /** main .conf path */
  file: string
  prefregex: string | undefined
  /** after phases 1+2, split on \n, empty lines dropped */
  failregex: string[]
  ignoreregex: string[]
  /** default 1 */
  maxlines: number
  /** raw, may be multi-line */
  datepattern: string | undefined
  /** each line shell-split */
  journalmatch: string[][]
  /** default 'warn' */
  usedns: string
  /** every parameter/Init value visible after resolution (logtype, mode, …) */
  params: Record<string, string>
  /** where each regex option came from, for error messages */
  origin: Record<'prefregex' | 'failregex' | 'ignoreregex' | 'datepattern' | 'maxlines', {file: string; line: number} | undefined>
}

type Origin = {file: string; line: number} | undefined

/** The options FilterReader reads from [Definition], in its order. */
const FILTER_OPTIONS = ['usedns', 'prefregex', 'ignoreregex', 'failregex', 'maxlines', 'datepattern', 'journalmatch'] as const
const FILTER_OPTION_SET: ReadonlySet<string> = new Set(FILTER_OPTIONS)

// ------------------------------------------------------------------------------------------------
// Caller parameters: `name[p1=v1, p2="a, b"][x=y]`

const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
/** fail2ban OPTION_CRE: `^([^\[]+)(?:\[(.*)\])?\s*$` (DOTALL). */
const OPTION_RE = new RegExp(`^([^[]+)(?:\\[([\\s\\S]*)\\])?[${PY_WS}]*$`)
/** fail2ban OPTION_EXTRACT_CRE, applied repeatedly from where the previous match ended. */
const OPTION_EXTRACT_RE = new RegExp(
  `[${PY_WS}]*([\\p{L}\\p{N}_\\-.]+)=(?:"([^"]*)"|'([^']*)'|([^,\\]]*))` +
  `(?:,|\\][${PY_WS}]*\\[|(?=\\n?$)|([\\s\\S]+))` +
  `|,?[${PY_WS}]*(?=\\n?$)|([\\s\\S]+)`, 'uy')

/**
 * Parses a jail's `filter = NAME[p1=v1, p2="v, with comma", p3='x'][p4=…]` value (fail2ban
 * `extractOptions`): unquoted values end at `,` or `]`; keys and values are stripped; several
 * `[…]` groups are allowed. ConfigError on bad syntax.
 */
export function parseFilterSpec(spec: string): {name: string; params: Record<string, string>} {
  const m = OPTION_RE.exec(spec)
  if (!m) throw new ConfigError(`unexpected syntax in ${JSON.stringify(spec)} (expected NAME or NAME[param=value, …])`)
  const name = pyStrip(m[1])
  if (name === '') throw new ConfigError(`filter name missing in ${JSON.stringify(spec)}`)
  const params: Record<string, string> = {}
  const optstr = m[2]
  if (optstr) {
    let pos = 0
    for (;;) {
      OPTION_EXTRACT_RE.lastIndex = pos
      const om = OPTION_EXTRACT_RE.exec(optstr)
      if (!om) break
      if (om[5] !== undefined) {
        throw new ConfigError(`unexpected text after parameter "${om[1]}" in ${JSON.stringify(spec)}: ` +
          `${JSON.stringify(om[5].slice(0, 25))} (quote values that contain "," or "]")`)
      }
      if (om[6] !== undefined) {
        throw new ConfigError(`expected param=value in ${JSON.stringify(spec)}, found ${JSON.stringify(om[6].slice(0, 25))}`)
      }
      if (om[1] !== undefined) {
        const value = om[2] ?? om[3] ?? om[4] ?? ''
        params[pyStrip(om[1])] = pyStrip(value)
      }
      if (om[0] === '') break
      pos = OPTION_EXTRACT_RE.lastIndex
    }
  }
  return {name, params}
}

// ------------------------------------------------------------------------------------------------
// Phase 2: <tag> substitution (fail2ban substituteRecursiveTags)

const TAG_RE = /<([^ <>]+)>/g
const MAX_TAG_REPLACE_COUNT = 25
const CONDITIONAL_RE = /^([\p{L}\p{N}_]+)(\?.+)$/u

function searchTag(value: string, from: number): RegExpExecArray | null {
  TAG_RE.lastIndex = from
  return TAG_RE.exec(value)
}

function substituteTags(tags: Map<string, string>, addrepl: (tag: string) => string | undefined,
  where: (tag: string) => {file?: string; line?: number}): void {
  const ignore = new Set<string>()
  for (const n of tags.keys()) {
    const cond = CONDITIONAL_RE.exec(n)
    if (cond) ignore.add(cond[1])
  }
  const done = new Set<string>()
  const repCounts = new Map<string, Map<string, number>>()
  const keys = [...tags.keys()]
  for (;;) {
    let again = false
    for (const tag of keys) {
      if (ignore.has(tag) || done.has(tag)) continue
      const orgval = tags.get(tag)!
      let value = orgval
      const counts = repCounts.get(tag) ?? new Map<string, number>()
      let m = searchTag(value, 0)
      while (m) {
        const rtag = m[1]
        if (ignore.has(rtag)) {
          m = searchTag(value, m.index + m[0].length)
          continue
        }
        if (rtag === tag || (counts.get(rtag) ?? 1) > MAX_TAG_REPLACE_COUNT) {
          const w = where(tag)
          throw new ConfigError(rtag === tag
            ? `<${rtag}> refers to itself`
            : `<${rtag}> replaced more than ${MAX_TAG_REPLACE_COUNT} times (recursive tag definitions?)`, w.file, w.line, tag)
        }
        let repl = tags.get(rtag)
        if (repl === undefined) repl = addrepl(rtag)
        if (repl === undefined) {
          m = searchTag(value, m.index + m[0].length)
          continue
        }
        value = value.split(`<${rtag}>`).join(repl)
        counts.set(rtag, (counts.get(rtag) ?? 0) + 1)
        m = searchTag(value, m.index)
      }
      if (value !== orgval) {
        if (searchTag(value, 0)) {
          repCounts.set(tag, counts)
          again = true
        }
        tags.set(tag, value)
      }
      if (!value.includes('<')) done.add(tag)
    }
    if (!again) break
  }
}

// ------------------------------------------------------------------------------------------------
// Helpers

/** Python `shlex.split(s)` (POSIX mode, no comments). */
export function shellSplit(s: string): string[] {
  const out: string[] = []
  let tok = ''
  let quoted = false
  let state: ' ' | 'a' | '"' | "'" | '\\' = ' '
  let escaped: 'a' | '"' = 'a'
  const ws = (ch: string): boolean => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n'
  for (const ch of s) {
    switch (state) {
      case ' ':
      case 'a':
        if (ws(ch)) {
          if (state === 'a' && (tok !== '' || quoted)) {
            out.push(tok)
            tok = ''
            quoted = false
          }
          state = ' '
        } else if (ch === '"' || ch === "'") {
          state = ch
          quoted = true
        } else if (ch === '\\') {
          escaped = 'a'
          state = '\\'
        } else {
          tok += ch
          state = 'a'
        }
        break
      case "'":
        if (ch === "'") state = 'a'
        else tok += ch
        break
      case '"':
        if (ch === '"') state = 'a'
        else if (ch === '\\') {
          escaped = '"'
          state = '\\'
        } else tok += ch
        break
      case '\\':
        if (escaped === '"' && ch !== '\\' && ch !== '"') tok += '\\'
        tok += ch
        state = escaped
        break
    }
  }
  if (state === '"' || state === "'") throw new Error('no closing quotation')
  if (state === '\\') throw new Error('no escaped character after \\')
  if (tok !== '' || quoted) out.push(tok)
  return out
}

/** Python `int(str)` for the forms a configuration file may hold. */
function parsePyInt(s: string): number | undefined {
  const t = pyStrip(s)
  if (!/^[+-]?\d+(?:_\d+)*$/.test(t)) return undefined
  return Number.parseInt(t.replace(/_/g, ''), 10)
}

function originOf(v: {file?: string; line?: number} | undefined): Origin {
  return v?.file !== undefined && v.line !== undefined ? {file: v.file, line: v.line} : undefined
}

// ------------------------------------------------------------------------------------------------

/**
 * Resolves the filter whose main file is `file` (a `filter.d/NAME.conf`, or `NAME.local` when
 * there is no .conf) with the caller parameters `params` (a jail's `filter = NAME[…]`).
 */
export function loadFilterFile(file: string, params: Record<string, string> = {}): FilterDefinition {
  const stack: IniStack = readConfigFile(file)
  const name = path.basename(file).replace(/\.(conf|local)$/, '')
  const caller = new Map(Object.entries(params))
  const sources = new Map<string, Origin>()

  // phase 1: the seven options from [Definition]/[DEFAULT] (caller parameters as variables)
  const opts = new Map<string, string>()
  for (const opt of FILTER_OPTIONS) {
    if (caller.has(opt)) continue
    const v = stack.lookup('Definition', opt, caller)
    if (v === undefined) continue
    opts.set(opt, v.value)
    sources.set(opt, originOf(v))
  }
  // [Init]: parameter defaults (interpolated in [Init] without caller parameters)
  const init = new Map(caller)
  if (stack.hasSection('Init')) {
    for (const opt of stack.options('Init')) {
      if (opt === '__name__') continue
      let v: ReturnType<IniStack['lookup']>
      if (!opt.startsWith('known/')) {
        v = stack.lookup('Init', opt)
        init.set(`known/${opt}`, v!.value)
      }
      if (!init.has(opt)) {
        v ??= stack.lookup('Init', opt)
        init.set(opt, v!.value)
        sources.set(opt, originOf(v))
      }
    }
  }
  for (const k of caller.keys()) sources.set(k, undefined)
  const combined = new Map(opts)
  for (const [k, v] of init) combined.set(k, v)

  // phase 2
  const defCache = new Map<string, string | undefined>()
  const addrepl = (tag: string): string | undefined => {
    if (defCache.has(tag)) return defCache.get(tag)
    const v = stack.getEx('Definition', tag, caller)
    defCache.set(tag, v)
    return v
  }
  substituteTags(combined, addrepl, (tag) => sources.get(tag) ?? {file})

  const lines = (v: string | undefined): string[] => (v === undefined ? [] : v.split('\n').filter((l) => l !== ''))
  const origin = {
    prefregex: sources.get('prefregex'),
    failregex: sources.get('failregex'),
    ignoreregex: sources.get('ignoreregex'),
    datepattern: sources.get('datepattern'),
    maxlines: sources.get('maxlines'),
  }
  const failAt = (opt: keyof typeof origin, message: string): never => {
    const o = origin[opt]
    throw new ConfigError(message, o?.file ?? file, o?.line, opt)
  }

  let maxlines = 1
  const ml = combined.get('maxlines')
  if (ml !== undefined) {
    const n = parsePyInt(ml)
    if (n === undefined) failAt('maxlines', `not an integer: ${JSON.stringify(ml)}`)
    maxlines = Math.max(1, n!)
  }

  const journalmatch: string[][] = []
  for (const l of lines(combined.get('journalmatch'))) {
    try {
      journalmatch.push(shellSplit(l))
    } catch (e) {
      const o = sources.get('journalmatch')
      throw new ConfigError(`${(e as Error).message} in ${JSON.stringify(l)}`, o?.file ?? file, o?.line, 'journalmatch')
    }
  }

  const out: Record<string, string> = {}
  for (const [k, v] of combined) {
    if (FILTER_OPTION_SET.has(k) || k.startsWith('known/')) continue
    out[k] = v
  }
  const prefregex = combined.get('prefregex')
  return {
    name,
    file,
    prefregex: prefregex === '' ? undefined : prefregex,
    failregex: lines(combined.get('failregex')),
    ignoreregex: lines(combined.get('ignoreregex')),
    maxlines,
    datepattern: combined.get('datepattern'),
    journalmatch,
    usedns: combined.get('usedns') ?? 'warn',
    params: out,
    origin,
  }
}

/** `NAME.conf` (else `NAME.local`) in the first of the filter.d directories `dirs` that has one. */
export function findFilter(name: string, dirs: string[]): string | undefined {
  for (const dir of dirs) {
    for (const ext of ['.conf', '.local']) {
      const p = path.join(dir, name + ext)
      try {
        if (fs.statSync(p).isFile()) return p
      } catch {
        // not there
      }
    }
  }
  return undefined
}
