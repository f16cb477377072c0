/**
 * A reader for fail2ban-flavoured INI files (filter.d/*.conf, action.d/*.conf, jail.conf, …).
 *
 * It follows Python's `configparser` (as configured by fail2ban: `=`/`:` delimiters, `#`/`;`
 * full-line comments, `;` inline comments after whitespace, multi-line values by indentation,
 * strict duplicate checks per file) and fail2ban's extensions on top of it:
 *
 * - `[INCLUDES]` `before`/`after` lists, read recursively with a cycle guard, each included
 *   `X.conf` followed by an existing `X.local`;
 * - a `NAME.conf` is read with `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local`;
 * - later files override earlier ones option by option; every `[DEFAULT]` merges into one dict;
 *   an overridden value is kept in the pseudo-section `KNOWN/<section>`;
 * - `%(name)s` interpolation (phase 1) with `%(section/name)s`, `%(known/name)s`,
 *   `%(default/name)s` and `%(__name__)s`.
 *
 * Deliberate differences from fail2ban, all for files fail2ban itself would not read usefully:
 * a UTF-8 byte-order mark is ignored (Python would reject the file), a file that is not valid
 * UTF-8 is an error (fail2ban logs it and skips the file), include paths are normalised before
 * the cycle check (fail2ban compares them as written and may recurse without end on `..`).
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import {ConfigError} from './errors.js'
import {isFile} from '../fsutil.js'

export interface IniValue {
  value: string
  file: string
  line: number
}

export interface IniSection {
  name: string
  /** keys lower-cased */
  options: Map<string, IniValue>
}

/** A value after interpolation, with the place of the option it came from (absent for caller variables). */
export interface ResolvedValue {
  value: string
  file?: string
  line?: number
}

/** Caller variables (fail2ban's `vars`): highest priority in lookups and `%(x)s` interpolation. */
export type IniVars = ReadonlyMap<string, string> | Readonly<Record<string, string>>

// ------------------------------------------------------------------------------------------------
// Python string helpers

/** Characters for which Python's `str.isspace()` is true (also what `re`'s `\s` matches). */
const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const PY_WS_RE = new RegExp(`[${PY_WS}]`)
const PY_STRIP_RE = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'g')
const PY_RSTRIP_RE = new RegExp(`[${PY_WS}]+$`)

export function isPySpace(ch: string): boolean {
  return ch.length > 0 && PY_WS_RE.test(ch)
}

/** Python's `str.strip()` (no argument). */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP_RE, '')
}

function pyRstrip(s: string): string {
  return s.replace(PY_RSTRIP_RE, '')
}

/** Python's `str.lower()` (close enough: identical for every name seen in configuration files). */
function lower(s: string): string {
  return s.toLowerCase()
}

// ------------------------------------------------------------------------------------------------
// One file

/** configparser SECTCRE: `\[(?P<header>.+)\]`, matched (not anchored at the end) on the stripped line. */
const SECT_RE = /^\[([\s\S]+)\]/
/** configparser OPTCRE with delimiters `=` and `:`. */
const OPT_RE = new RegExp(`^([\\s\\S]*?)[${PY_WS}]*(=|:)[${PY_WS}]*([\\s\\S]*)$`)

/**
 * Parses one file's text (Python `configparser` semantics as fail2ban configures it).
 * `[DEFAULT]` is returned as a section named `DEFAULT` (several `[DEFAULT]` headers in one file
 * merge); any other section may appear only once per file, and an option only once per section.
 */
export function parseIni(text: string, file: string): IniSection[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const lines = text.split(/\r\n|\r|\n/)
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()

  interface Pending { parts: string[]; line: number }
  interface Sect { name: string; opts: Map<string, Pending> }
  const sections: Sect[] = []
  const byName = new Map<string, Sect>()
  const added = new Set<string>()
  let cur: Sect | undefined
  let optname: string | undefined
  let indentLevel = 0

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const lineno = i + 1
    // inline comment: the first ';' at the start or after whitespace
    let commentStart = -1
    for (let idx = line.indexOf(';'); idx >= 0; idx = line.indexOf(';', idx + 1)) {
      if (idx === 0 || isPySpace(line[idx - 1])) {
        commentStart = idx
        break
      }
    }
    // full-line comment (also inside a multi-line value: the line is dropped, the value goes on)
    const stripped = pyStrip(line)
    if (stripped.startsWith('#') || stripped.startsWith(';')) commentStart = 0
    const value = pyStrip(commentStart >= 0 ? line.slice(0, commentStart) : line)
    if (value === '') {
      // a blank line belongs to the current value (dropped again if nothing follows it)
      if (commentStart < 0 && cur !== undefined && optname !== undefined) cur.opts.get(optname)!.parts.push('')
      continue
    }
    let indent = 0
    while (indent < line.length && isPySpace(line[indent])) indent++
    if (cur !== undefined && optname !== undefined && indent > indentLevel) {
      cur.opts.get(optname)!.parts.push(value)
      continue
    }
    indentLevel = indent
    const sm = SECT_RE.exec(value)
    if (sm) {
      const name = sm[1]
      let sect = byName.get(name)
      if (sect !== undefined && name !== 'DEFAULT') {
        throw new ConfigError(`section [${name}] appears twice in this file`, file, lineno)
      }
      if (sect === undefined) {
        sect = {name, opts: new Map()}
        byName.set(name, sect)
        sections.push(sect)
      }
      cur = sect
      optname = undefined
      continue
    }
    if (cur === undefined) {
      throw new ConfigError(`text before the first [section] header: ${JSON.stringify(value)}`, file, lineno)
    }
    const om = OPT_RE.exec(value)
    if (!om) {
      throw new ConfigError(`expected "name = value", a [section] header or a comment, found ${JSON.stringify(value)}`,
        file, lineno)
    }
    if (om[1] === '') throw new ConfigError(`option name missing before "${om[2]}"`, file, lineno)
    const name = lower(pyRstrip(om[1]))
    const key = `${cur.name}\u0000${name}`
    if (added.has(key)) {
      throw new ConfigError(`option "${name}" appears twice in section [${cur.name}]`, file, lineno, name)
    }
    added.add(key)
    cur.opts.set(name, {parts: [pyStrip(om[3])], line: lineno})
    optname = name
  }

  return sections.map((s) => {
    const options = new Map<string, IniValue>()
    for (const [k, p] of s.opts) options.set(k, {value: pyRstrip(p.parts.join('\n')), file, line: p.line})
    return {name: s.name, options}
  })
}

// ------------------------------------------------------------------------------------------------
// Merged files and interpolation

/** Python configparser MAX_INTERPOLATION_DEPTH. */
const MAX_INTERPOLATION_DEPTH = 10
/** `%(name)s` at the start of the rest (configparser BasicInterpolation._KEYCRE). */
const KEYCRE = /^%\(([^)]+)\)s/
/** `%(section/option)s` references (fail2ban SECTION_OPTSUBST_CRE). */
const SECTION_OPTSUBST_RE = /%\(([\p{L}\p{N}_-]+\/([^)]+))\)s/gu
/** `section/option` names in tags (fail2ban SECTION_OPTNAME_CRE). */
const SECTION_OPTNAME_RE = new RegExp(`^([\\p{L}\\p{N}_-]+)/([^${PY_WS}>]+)$`, 'u')
/** Conditional section names `Name?opt=value` (fail2ban CONDITIONAL_RE). */
const CONDITIONAL_RE = /^([\p{L}\p{N}_]+)(\?.+)$/u

const EMPTY_SECTION: ReadonlyMap<string, IniValue> = new Map()

interface InterpContext {
  section: string
  sect: ReadonlyMap<string, IniValue>
  vars: ReadonlyMap<string, string>
  option: string
  file?: string
  line?: number
}

/** Lower-cases variable names like configparser's `_unify_values` (a later duplicate wins). */
function lowerVars(vars: IniVars | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (vars === undefined) return out
  const entries = vars instanceof Map ? vars.entries() : Object.entries(vars as Record<string, string>)
  for (const [k, v] of entries) out.set(lower(k), v)
  return out
}

/**
 * The merged result of several files read in fail2ban order. `DEFAULT` options are kept apart
 * (visible as a fallback in every section); each other section merges by name, and the value an
 * option had before a later file overrode it is kept in the pseudo-section `KNOWN/<section>`.
 */
export class IniStack {
  /** files actually read, in reading order (a file may appear more than once, as in fail2ban) */
  readonly files: string[] = []
  readonly defaults = new Map<string, IniValue>()
  /** every section by name (case-sensitive), `KNOWN/<section>` pseudo-sections included */
  readonly sections = new Map<string, Map<string, IniValue>>()

  /** Merges one parsed file over the current content (fail2ban's multi-file `read`). */
  merge(parsed: readonly IniSection[], file?: string): void {
    if (file !== undefined) this.files.push(file)
    for (const sec of parsed) {
      if (sec.name === 'DEFAULT') {
        for (const [k, v] of sec.options) this.defaults.set(k, v)
        continue
      }
      let name = sec.name
      let opts: ReadonlyMap<string, IniValue> = sec.options
      const cond = CONDITIONAL_RE.exec(name)
      if (cond) {
        name = cond[1]
        opts = new Map([...sec.options].map(([k, v]) => [k + cond[2], v] as const))
      }
      const prev = this.sections.get(name)
      if (prev === undefined) {
        this.sections.set(name, new Map(opts))
        continue
      }
      const knownName = `KNOWN/${name}`
      let known = this.sections.get(knownName)
      if (known === undefined) {
        known = new Map()
        this.sections.set(knownName, known)
      }
      for (const [k, v] of prev) if (opts.has(k)) known.set(k, v)
      for (const [k, v] of opts) prev.set(k, v)
    }
  }

  /** True for a real or `KNOWN/…` section; false for `DEFAULT` (like configparser's has_section). */
  hasSection(name: string): boolean {
    return this.sections.has(name)
  }

  /** Section names in first-read order, without `KNOWN/…` pseudo-sections. */
  sectionNames(): string[] {
    return [...this.sections.keys()].filter((n) => !n.startsWith('KNOWN/'))
  }

  /** Option names of a section (its own, plus `DEFAULT`'s when `withDefault`); [] for a missing section. */
  options(section: string, withDefault = false): string[] {
    const own = section === 'DEFAULT' ? this.defaults : this.sections.get(section)
    if (own === undefined) return []
    const names = [...own.keys()]
    if (withDefault) for (const k of this.defaults.keys()) if (!own.has(k)) names.push(k)
    return names
  }

  /** The raw (not interpolated) value of an option, falling back to `DEFAULT`. */
  raw(section: string, option: string): IniValue | undefined {
    const key = lower(option)
    const sect = section === 'DEFAULT' ? undefined : this.sections.get(section)
    return sect?.get(key) ?? this.defaults.get(key)
  }

  /**
   * configparser `get(section, option, vars=vars)`: looks the option up in `vars`, the section and
   * `DEFAULT`, then interpolates `%(x)s` references. undefined when the section (other than
   * `DEFAULT`) or the option does not exist; a ConfigError for a bad or unresolvable reference.
   */
  lookup(section: string, option: string, vars?: IniVars): ResolvedValue | undefined {
    let sect: ReadonlyMap<string, IniValue> | undefined
    if (section === 'DEFAULT') sect = EMPTY_SECTION
    else {
      sect = this.sections.get(section)
      if (sect === undefined) return undefined
    }
    const key = lower(option)
    const vmap = lowerVars(vars)
    let raw: string
    let file: string | undefined
    let line: number | undefined
    const fromVars = vmap.get(key)
    if (fromVars !== undefined) raw = fromVars
    else {
      const iv = sect.get(key) ?? this.defaults.get(key)
      if (iv === undefined) return undefined
      raw = iv.value
      file = iv.file
      line = iv.line
    }
    const value = this.interpolateIn({section, sect, vars: vmap, option: key, file, line}, raw)
    return file === undefined ? {value} : {value, file, line}
  }

  /** `lookup(…)?.value` */
  get(section: string, option: string, vars?: IniVars): string | undefined {
    return this.lookup(section, option, vars)?.value
  }

  /**
   * fail2ban's `get_ex`: like `get`, but `option` may be `section/name` (read from that section
   * with `DEFAULT` fallback, `vars` not consulted), `known/name` (the value before the last
   * override in `section`, else the current one) or `default/name`.
   */
  lookupEx(section: string, option: string, vars?: IniVars): ResolvedValue | undefined {
    const m = option.includes('/') ? SECTION_OPTNAME_RE.exec(option) : null
    if (m) {
      const sec = m[1]
      const opt = m[2]
      const seclwr = lower(sec)
      const candidates = seclwr === 'known' ? [`KNOWN/${section}`, section] : [seclwr === 'default' ? 'DEFAULT' : sec]
      for (const c of candidates) {
        const v = this.lookup(c, opt)
        if (v !== undefined) return v
      }
    }
    return this.lookup(section, option, vars)
  }

  getEx(section: string, option: string, vars?: IniVars): string | undefined {
    return this.lookupEx(section, option, vars)?.value
  }

  /**
   * Interpolates `%(x)s` references in `text` as if it were the value of an option of `section`
   * (`where` names that option for error messages).
   */
  interpolate(section: string, text: string, vars?: IniVars, where?: {option?: string; file?: string; line?: number}): string {
    const sect = section === 'DEFAULT' ? EMPTY_SECTION : (this.sections.get(section) ?? EMPTY_SECTION)
    return this.interpolateIn({section, sect, vars: lowerVars(vars), option: where?.option ?? '', file: where?.file,
      line: where?.line}, text)
  }

  private interpolateIn(ctx: InterpContext, text: string): string {
    const accum: string[] = []
    this.interpolateSome(ctx, accum, text, new Map(), 1)
    return accum.join('')
  }

  private fail(ctx: InterpContext, message: string): never {
    throw new ConfigError(message, ctx.file, ctx.line, ctx.option || undefined)
  }

  /** configparser BasicInterpolation._interpolate_some, with fail2ban's section-option mapping. */
  private interpolateSome(ctx: InterpContext, accum: string[], rest: string, outer: ReadonlyMap<string, string>,
    depth: number): void {
    const overlay = new Map(outer)
    this.mapSectionOptions(ctx, rest, overlay)
    if (depth > MAX_INTERPOLATION_DEPTH) {
      this.fail(ctx, `%(name)s references nested too deeply (more than ${MAX_INTERPOLATION_DEPTH} levels; ` +
        `a reference loop?) while reading ${JSON.stringify(rest.length > 80 ? rest.slice(0, 80) + '…' : rest)}`)
    }
    while (rest !== '') {
      const p = rest.indexOf('%')
      if (p < 0) {
        accum.push(rest)
        return
      }
      if (p > 0) {
        accum.push(rest.slice(0, p))
        rest = rest.slice(p)
      }
      const c = rest.slice(1, 2)
      if (c === '%') {
        accum.push('%')
        rest = rest.slice(2)
      } else if (c === '(') {
        const m = KEYCRE.exec(rest)
        if (!m) this.fail(ctx, `bad interpolation reference ${JSON.stringify(rest.slice(0, 40))} (expected %(name)s)`)
        const name = m[1]
        rest = rest.slice(m[0].length)
        const v = this.mapGet(ctx, overlay, lower(name))
        if (v === undefined) {
          this.fail(ctx, `%(${name})s refers to an option that is not defined` +
            (name.includes('/') ? '' : ` in [${ctx.section}] or [DEFAULT]`))
        }
        if (v.includes('%')) this.interpolateSome(ctx, accum, v, overlay, depth + 1)
        else accum.push(v)
      } else {
        this.fail(ctx, `'%' must be followed by '%' or '(' (write %% for a literal percent sign), ` +
          `found ${JSON.stringify(rest.slice(0, 20))}`)
      }
    }
  }

  private mapHas(ctx: InterpContext, overlay: ReadonlyMap<string, string>, key: string): boolean {
    return key === '__name__' || ctx.vars.has(key) || overlay.has(key) || ctx.sect.has(key) || this.defaults.has(key)
  }

  private mapGet(ctx: InterpContext, overlay: ReadonlyMap<string, string>, key: string): string | undefined {
    if (key === '__name__') return ctx.section
    return ctx.vars.get(key) ?? overlay.get(key) ?? ctx.sect.get(key)?.value ?? this.defaults.get(key)?.value
  }

  /** fail2ban `_map_section_options`: makes `%(sec/opt)s` in `rest` resolvable (raw values). */
  private mapSectionOptions(ctx: InterpContext, rest: string, overlay: Map<string, string>): void {
    if (!rest.includes('/') || !rest.includes('%(')) return
    for (const m of rest.matchAll(SECTION_OPTSUBST_RE)) {
      const sopt = m[1]
      const opt = m[2]
      if (this.mapHas(ctx, overlay, sopt)) continue
      const sec = sopt.slice(0, sopt.length - opt.length - 1)
      const seclwr = lower(sec)
      let v: string | undefined
      if (seclwr === 'known') {
        v = this.sections.get(`KNOWN/${ctx.section}`)?.get(opt)?.value
      } else if (seclwr !== 'default') {
        const s = this.sections.get(sec)
        if (s === undefined) continue
        v = s.get(opt)?.value
      }
      if (v === undefined) v = this.defaults.get(opt)?.value
      if (v === undefined) continue
      overlay.set(sopt, v)
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Reading a file with its includes


function sortedFiles(dir: string, ext: string): string[] {
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch {
    return []
  }
  return names.filter((n) => n.endsWith(ext) && !n.startsWith('.')).sort().map((n) => path.join(dir, n))
}

const utf8 = new TextDecoder('utf-8', {fatal: true})

class IncludeReader {
  private readonly cache = new Map<string, IniSection[] | null>()

  /** The parsed file, or null when it cannot be read (missing includes are silently skipped). */
  parse(file: string): IniSection[] | null {
    const cached = this.cache.get(file)
    if (cached !== undefined) return cached
    let parsed: IniSection[] | null
    let bytes: Buffer | undefined
    try {
      bytes = fs.readFileSync(file)
    } catch {
      bytes = undefined
    }
    if (bytes === undefined) parsed = null
    else {
      let text: string
      try {
        text = utf8.decode(bytes)
      } catch {
        throw new ConfigError('file is not valid UTF-8', file)
      }
      parsed = parseIni(text, file)
    }
    this.cache.set(file, parsed)
    return parsed
  }

  /** fail2ban `_getIncludes`: each file preceded by its `before` and followed by its `after` includes. */
  getIncludes(filenames: readonly string[], seen: readonly string[]): string[] {
    const expanded: string[] = []
    for (const f of filenames) {
      expanded.push(f)
      const ext = path.extname(f)
      const local = (ext ? f.slice(0, -ext.length) : f) + '.local'
      if (!filenames.includes(local) && isFile(local)) expanded.push(local)
    }
    const out: string[] = []
    for (const f of expanded) out.push(...this.getIncludesOf(f, seen))
    return out
  }

  private getIncludesOf(resource: string, seen: readonly string[]): string[] {
    const parsed = this.parse(resource)
    if (parsed === null) return []
    const dir = path.dirname(resource)
    const before: string[] = []
    const after: string[] = []
    if (parsed.some((s) => s.name === 'INCLUDES')) {
      const single = new IniStack()
      single.merge(parsed)
      for (const [name, list] of [['before', before], ['after', after]] as const) {
        const value = single.get('INCLUDES', name)
        if (value === undefined) continue
        for (const entry of value.split('\n')) {
          const r = path.isAbsolute(entry) ? path.normalize(entry) : path.join(dir, entry)
          if (seen.includes(r)) continue
          list.push(...this.getIncludes([r], [...seen, resource]))
        }
      }
    }
    return [...before, resource, ...after]
  }
}

/**
 * Reads a configuration file the way fail2ban reads `NAME`: for `dir/NAME.conf` (or
 * `dir/NAME.local`) the files `NAME.conf`, `NAME.d/*.conf` (sorted), `NAME.local`,
 * `NAME.d/*.local` (sorted) that exist, each with its `[INCLUDES]` expanded recursively. A path
 * with another extension is read alone (with its includes). ConfigError when none exists.
 */
export function readConfigFile(file: string): IniStack {
  const p = path.normalize(file)
  let files: string[]
  const m = /\.(conf|local)$/.exec(p)
  if (m) {
    const base = p.slice(0, -m[0].length)
    files = [base + '.conf', ...sortedFiles(base + '.d', '.conf'), base + '.local', ...sortedFiles(base + '.d', '.local')]
      .filter(isFile)
  } else files = isFile(p) ? [p] : []
  if (files.length === 0) throw new ConfigError('no such configuration file', file)
  const reader = new IncludeReader()
  const stack = new IniStack()
  for (const f of reader.getIncludes(files, [])) {
    const parsed = reader.parse(f)
    if (parsed !== null) stack.merge(parsed, f)
  }
  return stack
}
