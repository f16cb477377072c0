/**
 * Turns the REGEX / IGNOREREGEX / LOG arguments of `spylog regex` into a filter and a list of
 * inputs, the way fail2ban-regex reads its arguments.
 */
import * as fs from 'node:fs'
import {PACKAGE_ROOT} from '../fsutil.js'
import * as path from 'node:path'
import fg from 'fast-glob'
import {loadConfig} from '../config/load.js'
import type {FilterConfig} from '../config/model.js'
import {buildFilter} from '../filters/build.js'
import {findFilter, loadFilterFile, parseFilterSpec, type FilterDefinition} from '../fail2ban/filterfile.js'
import {Fail2banFilter, type Fail2banFilterSpec} from '../filters/fail2ban.js'
import {parseTimeZone, type TimeZone} from '../dates/timezone.js'
import {GenericFilter, isDialect, DIALECTS, type Dialect, type RegexFilter} from './dialects.js'
import {isDir, isFile} from '../fsutil.js'

/** A usage problem (unknown filter, missing file, bad option value): print `message`, exit 2. */
export class RegexUsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RegexUsageError'
  }
}

/** Where the failregexes came from, for the report header. */
export interface FilterSource {
  kind: 'file' | 'name' | 'line'
  dialect: Dialect
  /** Filter name (file base name), or `failregex` for a literal. */
  name: string
  /** The filter file, for kinds file and name. */
  file?: string
  /** Caller parameters `name[p=v, …]`. */
  params?: Record<string, string>
  /** The literal regex (kind line). */
  regex?: string
  /** Where the ignoreregexes came from, when given as the third argument. */
  ignore?: {kind: 'file' | 'line'; file?: string; regex?: string}
  maxlines: number
  datepattern?: string
  /** Whether every failregex is tried on each line. */
  checkAll: boolean
}

export interface ResolveFilterOptions {
  regex: string
  ignoreRegex?: string
  dialect?: string
  /** filter.d directories searched for a filter name, in order. */
  filterDirs?: readonly string[]
  /**
   * spylog configuration whose FILTER{}s are searched after the filter.d directories
   * (`--config`; default: the usual lookup, see config/load.ts). false: do not search one.
   */
  config?: string | false
  datepattern?: string
  maxlines?: number
  timezone?: string
  /** Unix seconds (tests); default real clock. */
  now?: () => number
  /**
   * Evaluate every failregex of a line (default true, fail2ban-regex's report mode). false: stop
   * at the first one that gives a result, as the daemon (and `fail2ban-regex -o`) does.
   */
  checkAll?: boolean
}

/** The package root (where `config/` lives), from this module's location in src/ or dist/src/. */
export function packageRoot(): string {
  return PACKAGE_ROOT
}

/**
 * The default filter directories: `/etc/fail2ban/filter.d` and the packaged `config/filter.d`
 * (also `config/filters`), those that exist.
 */
export function defaultFilterDirs(root = packageRoot()): string[] {
  const candidates = ['/etc/fail2ban/filter.d', path.join(root, 'config', 'filter.d'), path.join(root, 'config', 'filters')]
  return candidates.filter((d) => isDir(d))
}



/** fail2ban-regex: a REGEX argument of this shape names a filter (or a filter file) rather than a regex. */
const FILTER_SHAPE = /^\/{0,3}[\w/\-.]+(?:\[[\s\S]*\])?$/
const PATHISH = /[/\\]|\.(?:conf|local)$/

function splitRegexLines(s: string): string[] {
  return s.split('\n').filter((l) => l.trim() !== '')
}

/** The FILTER{} called `name` in the spylog configuration, if that configuration loads and has one. */
function configFilter(name: string, config: string | false | undefined): FilterConfig | undefined {
  if (config === false) return undefined
  let cfg
  try {
    cfg = loadConfig({config})
  } catch (e) {
    // An explicitly named configuration that does not load is the user's problem to see.
    if (config !== undefined) throw new RegexUsageError(`--config ${config}: ${(e as Error).message}`)
    return undefined
  }
  return cfg.filters.find((f) => f.name === name)
}

/** Build the filter described by the REGEX (and IGNOREREGEX) arguments. */
export async function resolveFilter(opts: ResolveFilterOptions): Promise<{filter: RegexFilter; source: FilterSource}> {
  const dialect = opts.dialect ?? 'fail2ban'
  if (!isDialect(dialect)) throw new RegexUsageError(`unknown dialect "${dialect}" (expected ${DIALECTS.join(', ')})`)
  if (opts.maxlines !== undefined && (!Number.isInteger(opts.maxlines) || opts.maxlines < 1)) {
    throw new RegexUsageError(`--maxlines must be a positive integer, got ${opts.maxlines}`)
  }
  let timezone: TimeZone | undefined
  if (opts.timezone !== undefined) {
    try {
      timezone = parseTimeZone(opts.timezone)
    } catch (e) {
      throw new RegexUsageError(`bad --timezone: ${(e as Error).message}`)
    }
  }
  const dirs = opts.filterDirs ?? defaultFilterDirs()

  // REGEX: a filter file, a filter name, or a literal regex.
  let def: FilterDefinition | undefined
  let source: FilterSource
  const arg = opts.regex
  if (arg.trim() === '') throw new RegexUsageError('REGEX is empty')
  if (FILTER_SHAPE.test(arg.trim())) {
    const {name, params} = parseFilterSpec(arg.trim())
    if (PATHISH.test(name) || isFile(name)) {
      if (!isFile(name)) {
        throw new RegexUsageError(isDir(name) ? `filter file ${name} is a directory` : `filter file not found: ${name}`)
      }
      def = loadFilterFile(name, params)
      source = {kind: 'file', dialect: 'fail2ban', name: def.name, file: name, params, maxlines: def.maxlines, datepattern: def.datepattern, checkAll: true}
    } else {
      const file = findFilter(name, [...dirs])
      if (file === undefined) {
        // A filter of the spylog configuration (the packaged library by default), built by the
        // daemon's own factory.
        const fromConfig = Object.keys(params).length === 0 ? configFilter(name, opts.config) : undefined
        if (fromConfig !== undefined) {
          const runtime = {checkAll: opts.checkAll ?? true, timezone, now: opts.now}
          const filter = buildFilter(fromConfig, runtime)
          const f2b = fromConfig.fail2ban
          return {
            filter,
            source: {
              kind: 'name', dialect: fromConfig.engine === 'lua' ? 'lua' : fromConfig.engine, name, file: fromConfig.origin.file,
              maxlines: filter.maxlines, datepattern: f2b?.datepattern ?? fromConfig.datepattern, checkAll: runtime.checkAll,
            },
          }
        }
        const where = dirs.length === 0 ? 'no filter directory exists; give one with --filter-dir' : `searched ${dirs.join(', ')}`
        throw new RegexUsageError(`unknown filter "${name}" (${where}, and the FILTER{}s of the spylog configuration)`)
      }
      def = loadFilterFile(file, params)
      source = {kind: 'name', dialect: 'fail2ban', name: def.name, file, params, maxlines: def.maxlines, datepattern: def.datepattern, checkAll: true}
    }
  } else {
    source = {kind: 'line', dialect, name: 'failregex', regex: arg, maxlines: 1, checkAll: true}
  }

  // IGNOREREGEX: a filter file (its ignoreregexes) or a literal regex.
  let extraIgnore: string[] = []
  if (opts.ignoreRegex !== undefined && opts.ignoreRegex !== '') {
    const ig = opts.ignoreRegex
    const igName = FILTER_SHAPE.test(ig.trim()) ? parseFilterSpec(ig.trim()) : undefined
    if (igName && (isFile(igName.name) || PATHISH.test(igName.name))) {
      if (!isFile(igName.name)) throw new RegexUsageError(`ignoreregex filter file not found: ${igName.name}`)
      extraIgnore = loadFilterFile(igName.name, igName.params).ignoreregex
      source.ignore = {kind: 'file', file: igName.name}
    } else {
      extraIgnore = splitRegexLines(ig)
      source.ignore = {kind: 'line', regex: ig}
    }
  }

  const datepattern = opts.datepattern ?? def?.datepattern
  const maxlines = opts.maxlines ?? def?.maxlines ?? 1
  source.maxlines = maxlines
  source.datepattern = datepattern
  source.checkAll = opts.checkAll ?? true
  const checkAll = opts.checkAll ?? true
  const runtime = {checkAll, timezone, now: opts.now}

  if (def) {
    const spec: Fail2banFilterSpec = {...def, ignoreregex: [...def.ignoreregex, ...extraIgnore], datepattern, maxlines}
    return {filter: new Fail2banFilter(spec, runtime), source}
  }
  const failregex = splitRegexLines(arg)
  if (dialect === 'fail2ban') {
    const spec: Fail2banFilterSpec = {name: 'failregex', failregex, ignoreregex: extraIgnore, datepattern, maxlines}
    return {filter: new Fail2banFilter(spec, runtime), source}
  }
  if (opts.maxlines !== undefined && opts.maxlines > 1) throw new RegexUsageError(`--maxlines > 1 needs the fail2ban dialect`)
  const filter = await GenericFilter.create({name: 'failregex', dialect, failregex, ignoreregex: extraIgnore, datepattern}, {timezone, now: opts.now, checkAll})
  return {filter, source}
}

// ------------------------------------------------------------------------------------------------
// LOG

export type LogInput =
  | {kind: 'stdin'}
  | {kind: 'files'; pattern: string; files: string[]}
  | {kind: 'lines'; lines: string[]}

const GLOB_MAGIC = /[*?[\]{}]/
/** A LOG argument that looks like a path (and not like a log line): a missing one is an error, not a line. */
const LOOKS_LIKE_PATH = /^[^\s]*(?:[/\\][^\s]*|\.(?:log|txt|gz|out|err|json|\d+))$/

/** Interpret the LOG argument: `-` (stdin), a file, a glob, else literal line(s). */
export async function resolveLog(log: string, cwd = process.cwd()): Promise<LogInput> {
  if (log === '-') return {kind: 'stdin'}
  const abs = path.resolve(cwd, log)
  let st: fs.Stats | undefined
  try {
    st = fs.statSync(abs)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENAMETOOLONG') throw new RegexUsageError(`cannot read log ${log}: ${errnoText(e)}`)
  }
  if (st) {
    if (st.isDirectory()) throw new RegexUsageError(`log ${log} is a directory (give a file, a glob such as '${path.join(log, '*.log')}', or -)`)
    checkReadable(abs, log)
    return {kind: 'files', pattern: log, files: [abs]}
  }
  if (GLOB_MAGIC.test(log) && !/\s/.test(log)) {
    const files = (await fg(log, {cwd, absolute: true, onlyFiles: true, dot: false, suppressErrors: true})).sort()
    if (files.length === 0) throw new RegexUsageError(`no file matches ${log}`)
    for (const f of files) checkReadable(f, f)
    return {kind: 'files', pattern: log, files}
  }
  if (LOOKS_LIKE_PATH.test(log)) throw new RegexUsageError(`log file not found: ${log}`)
  return {kind: 'lines', lines: log.split('\n')}
}

function checkReadable(abs: string, shown: string): void {
  try {
    fs.accessSync(abs, fs.constants.R_OK)
  } catch (e) {
    throw new RegexUsageError(`cannot read log ${shown}: ${errnoText(e)}`)
  }
}

/** "permission denied" etc. for a Node fs error. */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  switch (err.code) {
    case 'ENOENT': return 'no such file or directory'
    case 'EACCES': case 'EPERM': return 'permission denied'
    case 'EISDIR': return 'is a directory'
    case 'ENOTDIR': return 'not a directory'
    case 'EMFILE': case 'ENFILE': return 'too many open files'
    case 'EIO': return 'input/output error'
    default: return err.code ?? err.message
  }
}
