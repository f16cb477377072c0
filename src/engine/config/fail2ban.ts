/**
 * fail2ban configuration trees (`/etc/fail2ban`: jail.conf, jail.local, jail.d/, filter.d/,
 * action.d/), read into the configuration model (model.ts) with fail2ban's semantics:
 *
 * - the jail files are `jail.conf`, `jail.d/*.conf`, `jail.local`, `jail.d/*.local` in that order
 *   (later files override earlier ones option by option), with `[INCLUDES]` (paths-*.conf) and
 *   `%(name)s` interpolation; `[DEFAULT]` options are the fallback of every jail (ini.ts);
 * - every section but `[DEFAULT]` and `[INCLUDES]` is a jail; only enabled jails are read further
 *   (as fail2ban, a disabled jail's filter and actions are never loaded);
 * - `filter = NAME[opt=value, …]` loads `filter.d/NAME.conf` (+ .local, .d/) with those options
 *   (filterfile.ts); `logtype` is set to `journal` for `backend = systemd`, else `file`, unless
 *   the jail or the filter's [Definition] sets it (fail2ban's applyAutoOptions). The jail (or
 *   `[DEFAULT]`) may replace the filter's `failregex`, `ignoreregex`, `prefregex`, `datepattern`,
 *   `maxlines`, `journalmatch` and `usedns`; its values can extend the filter's through
 *   `%(known/failregex)s` and the like;
 * - `backend = systemd[…]` reads the journal (filter's or jail's `journalmatch`); any other
 *   backend (auto, polling, pyinotify, gamin) follows the `logpath` files (one per line, globs
 *   allowed, optional `head`/`tail` word). Without logpath, `backend = auto` falls back to the
 *   journal as fail2ban 1.1 does (`systemd_if_nologs`, default true); `skip_if_nologs` skips the jail;
 * - `findtime`, `bantime`, `bantime.maxtime`, `bantime.rndtime` are fail2ban time expressions
 *   (`600`, `10m`, `1h30m`, `1d 12h`, `2w`, `-1`; see parseFail2banTime); defaults are fail2ban's
 *   (maxretry 3, findtime 10m, bantime 10m);
 * - `ignoreip`: addresses, networks (`/len` or a dotted mask), host names and `file:` lists,
 *   separated by spaces and/or commas; `ignoreself` (default true); `ignorecommand`;
 * - `action`: one or more `NAME[param=value, …]` (lines, or separated by spaces). Names of the
 *   host firewall (iptables*, ip6tables*, nftables*, firewallcmd*, ipset*, ufw) map to spylog's
 *   built-in `firewall` kind, sendmail*, mail* and smtp.py to `mail` (model.ts BuiltinAction);
 *   any other name that has an action.d file becomes an action running that file's commands
 *   (actionstart/stop/check/ban/unban, `<tag>`s left for the runner) and one warning says so;
 *   an unknown name or a Python action gets one warning and is left out.
 *
 * When the tree does not define them (a tree with a jail.local but no jail.conf), spylog supplies
 * the `[DEFAULT]` variables jail.conf's action and filter lines rely on: `filter` (the jail's name
 * with `[mode=%(mode)s]`), `mode`, `port`, `protocol`, `banaction`, `banaction_allports`, `mta`,
 * `destemail`, `sender`, `action_`, `action_mw`, `action_mwl` and `action` (= `%(action_)s`).
 *
 * Validation collects every error (ConfigErrors), each naming the file and line, `[jail] option`,
 * what was expected and, for a misspelt option, filter or action, the closest known name.
 * Deliberate differences from fail2ban, which logs and goes on where spylog stops: a bad boolean,
 * number or time is an error (fail2ban falls back to the default), and so are a missing filter, a
 * filter that does not compile and an unknown option close to a known one (`maxretyr`). An
 * unknown option not close to any known one is a user variable (fail2ban's own jail.conf is full
 * of them) and is accepted. A logpath's last word is only taken as the `head`/`tail` mode when it
 * is one of those two words (fail2ban takes any last word after a space).
 */
import fs from 'node:fs'
import path from 'node:path'
import fg from 'fast-glob'
import {ConfigError, formatConfigError} from '../fail2ban/errors.js'
import {findFilter, loadFilterFile, parseFilterSpec, shellSplit, type FilterDefinition} from '../fail2ban/filterfile.js'
import {pyStrip, readConfigFile, type IniStack, type IniValue, type ResolvedValue} from '../fail2ban/ini.js'
import {parseTimeZone} from '../dates/timezone.js'
import {buildFilter} from '../filters/build.js'
import {
  BUILTIN_ACTION_MODULES, canonicalNetwork, closestName, ConfigErrors,
  type ActionConfig, type BanTimeIncrement, type BuiltinAction, type CounterConfig, type FileSource, type FilterConfig,
  type JailActionRef, type JailConfig, type JournalSource, type Origin, type ParamValue, type SourceConfig, type SpylogConfig,
} from './model.js'
import {isDir, isFile} from '../fsutil.js'

export interface Fail2banConfigOptions {
  /** Warn about logpath globs that match no file (default true). */
  checkLogFiles?: boolean
  /** Platform the configuration is checked for (default process.platform): journal jails get a warning on Windows. */
  platform?: NodeJS.Platform
}

/** Jail options fail2ban reads, including the filter options a jail may override. */
export const JAIL_OPTIONS = [
  'enabled', 'backend', 'filter', 'logpath', 'logencoding', 'logtimezone', 'maxretry', 'maxmatches', 'findtime', 'bantime',
  'bantime.increment', 'bantime.factor', 'bantime.formula', 'bantime.multipliers', 'bantime.maxtime', 'bantime.rndtime',
  'bantime.overalljails', 'ignorecommand', 'ignoreself', 'ignoreip', 'ignorecache', 'action', 'skip_if_nologs',
  'systemd_if_nologs', 'usedns', 'prefregex', 'failregex', 'ignoreregex', 'maxlines', 'datepattern', 'journalmatch',
] as const

/** Variables of fail2ban's stock jail.conf / paths-*.conf (not options, never reported as misspelt). */
const STOCK_VARIABLES = new Set([
  'mode', 'port', 'protocol', 'chain', 'banaction', 'banaction_allports', 'mta', 'destemail', 'sender', 'sendername',
  'fail2ban_agent', 'logtype', 'before', 'after', 'fail2ban_version',
])

/** fail2ban backends (the part before any `[options]`). */
export const BACKENDS = ['auto', 'polling', 'pyinotify', 'gamin', 'systemd'] as const

/** action.d commands read from `[Definition]`: the ones the model has fields for, then the others (kept in `options`). */
const ACTION_COMMANDS = ['actionstart', 'actionstop', 'actioncheck', 'actionban', 'actionunban'] as const
const ACTION_EXTRA = ['actionflush', 'actionreban', 'actionprolong', 'actionrepair', 'actionreload', 'actionrepair_on_unban', 'actionstart_on_demand', 'norestored'] as const

const USEDNS = ['yes', 'warn', 'no', 'raw'] as const

/** fail2ban's server defaults (FailManager / Actions) when neither the jail nor [DEFAULT] sets them. */
const DEFAULT_MAXRETRY = 3
const DEFAULT_FINDTIME = 600
const DEFAULT_BANTIME = 600

const FALLBACK_FILE = '(spylog built-in [DEFAULT])'
/** [DEFAULT] variables supplied when the tree lacks them (see the file comment). */
const FALLBACK_DEFAULTS: Readonly<Record<string, string>> = {
  mode: 'normal',
  filter: '%(__name__)s[mode=%(mode)s]',
  port: '0:65535',
  protocol: 'tcp',
  banaction: 'iptables-multiport',
  banaction_allports: 'iptables-allports',
  mta: 'sendmail',
  destemail: 'root@localhost',
  sender: 'root@localhost',
  action_: '%(banaction)s[port="%(port)s", protocol="%(protocol)s"]',
  action_mw: '%(action_)s\n%(mta)s-whois[sender="%(sender)s", dest="%(destemail)s", protocol="%(protocol)s"]',
  action_mwl: '%(action_)s\n%(mta)s-whois-lines[sender="%(sender)s", dest="%(destemail)s"]',
  action: '%(action_)s',
}

const COUNTER: CounterConfig = {type: 'increment', capture: 'host', value: 'value', time: 'filter'}

// ---------------------------------------------------------------------------------------------
// Values

/** Seconds per fail2ban time unit (MyTime.str2seconds: case-insensitive, abbreviations included). */
const TIME_UNITS: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>()
  const groups: [string[], number][] = [
    [['s', 'ss', 'se', 'sec', 'second', 'seconds'], 1],
    [['m', 'mm', 'mi', 'min', 'minute', 'minutes'], 60],
    [['h', 'hh', 'ho', 'hou', 'hour', 'hours'], 3600],
    [['d', 'dd', 'da', 'day', 'days'], 86400],
    [['w', 'ww', 'we', 'wee', 'week', 'weeks'], 7 * 86400],
    [['mo', 'mon', 'month', 'months'], ((365 * 3 + 366) * 86400) / 4 / 12],
    [['y', 'yy', 'ye', 'yea', 'year', 'years'], ((365 * 3 + 366) * 86400) / 4],
  ]
  for (const [names, secs] of groups) for (const n of names) m.set(n, secs)
  return m
})()

/**
 * A fail2ban time expression in seconds: a number (seconds), a number with a unit (`10m`, `1h`,
 * `2 days`, `1w`, `1mo`, `1y`), several of them side by side (`1h30m`, `1d 12h`: added), and the
 * arithmetic fail2ban allows between them (`1h-10m`, `2*1d`, parentheses). Returns the error
 * text for anything else.
 */
export function parseFail2banTime(text: string): number | {error: string} {
  const src = text.trim()
  const tokens: {t: 'num' | 'word' | 'op'; v: string}[] = []
  const re = /\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z]+)|([-+*/()]))/y
  let pos = 0
  while (pos < src.length) {
    re.lastIndex = pos
    const m = re.exec(src)
    if (!m) {
      if (/^\s*$/.test(src.slice(pos))) break
      return {error: `unexpected ${JSON.stringify(src.slice(pos).trim()[0])}`}
    }
    pos = re.lastIndex
    if (m[1] !== undefined) tokens.push({t: 'num', v: m[1]})
    else if (m[2] !== undefined) tokens.push({t: 'word', v: m[2].toLowerCase()})
    else tokens.push({t: 'op', v: m[3]!})
  }
  if (tokens.length === 0) return {error: 'empty'}
  let i = 0
  class Fail extends Error {}
  const peek = (): {t: string; v: string} | undefined => tokens[i]
  const startsFactor = (): boolean => {
    const p = peek()
    return p !== undefined && (p.t === 'num' || (p.t === 'op' && p.v === '('))
  }
  const factor = (): number => {
    const p = peek()
    if (p === undefined) throw new Fail('incomplete expression')
    if (p.t === 'op' && (p.v === '-' || p.v === '+')) {
      i++
      const v = factor()
      return p.v === '-' ? -v : v
    }
    if (p.t === 'op' && p.v === '(') {
      i++
      const v = expr()
      if (peek()?.v !== ')') throw new Fail('missing ")"')
      i++
      return v
    }
    if (p.t === 'num') {
      i++
      let v = Number(p.v)
      const u = peek()
      if (u?.t === 'word') {
        const secs = TIME_UNITS.get(u.v)
        if (secs === undefined) {
          const s = u.v.length > 1 ? closestName(u.v, TIME_UNITS.keys()) : undefined
          throw new Fail(`unknown time unit ${JSON.stringify(u.v)}${s !== undefined ? `; did you mean ${s}?` : ''} (units: s, m, h, d, w, mo, y)`)
        }
        i++
        v *= secs
      }
      return v
    }
    throw new Fail(`unexpected ${JSON.stringify(p.v)}`)
  }
  const term = (): number => {
    let v = factor()
    for (;;) {
      const p = peek()
      if (p?.t !== 'op' || (p.v !== '*' && p.v !== '/')) return v
      i++
      const r = factor()
      if (p.v === '/' && r === 0) throw new Fail('division by zero')
      v = p.v === '*' ? v * r : v / r
    }
  }
  const expr = (): number => {
    let v = term()
    for (;;) {
      const p = peek()
      if (p?.t === 'op' && (p.v === '+' || p.v === '-')) {
        i++
        const r = term()
        v = p.v === '+' ? v + r : v - r
      } else if (startsFactor()) v += term()
      else return v
    }
  }
  try {
    const v = expr()
    if (i < tokens.length) return {error: `unexpected ${JSON.stringify(tokens[i]!.v)}`}
    if (!Number.isFinite(v)) return {error: 'not a finite number'}
    return v
  } catch (e) {
    if (e instanceof Fail) return {error: e.message}
    throw e
  }
}

/** configparser's booleans. */
export function parseBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase()
  if (t === '1' || t === 'yes' || t === 'true' || t === 'on') return true
  if (t === '0' || t === 'no' || t === 'false' || t === 'off') return false
  return undefined
}

/** Python `int()` of an option value. */
function parseInt10(text: string): number | undefined {
  const t = text.trim()
  if (!/^[+-]?\d+(?:_\d+)*$/.test(t)) return undefined
  return Number.parseInt(t.replace(/_/g, ''), 10)
}

/**
 * The built-in action kind a fail2ban action name maps to, if any: the host firewall families
 * (iptables*, ip6tables*, nftables*, firewallcmd*, ipset*, ufw) and the mail ones (sendmail*,
 * mail*, smtp.py).
 */
export function builtinActionFor(name: string): BuiltinAction | undefined {
  const n = name.toLowerCase()
  if (n === 'smtp.py') return {kind: 'mail', variant: 'smtp', features: []}
  const parts = n.split('-')
  const head = parts[0]!
  const rest = parts.slice(1).filter((p) => p !== '')
  switch (head) {
    case 'iptables':
    case 'ip6tables':
      return {kind: 'firewall', variant: rest.includes('ipset') ? 'ipset' : 'iptables', features: rest}
    case 'nftables':
      return {kind: 'firewall', variant: 'nftables', features: rest}
    case 'firewallcmd':
      return {kind: 'firewall', variant: 'firewalld', features: rest}
    case 'ipset':
      return {kind: 'firewall', variant: 'ipset', features: rest}
    case 'ufw':
      return rest.length === 0 ? {kind: 'firewall', variant: 'ufw', features: []} : undefined
    case 'sendmail':
    case 'mail':
      return {kind: 'mail', variant: head, features: rest}
  }
  return undefined
}

/**
 * Splits a jail's `action` value into `NAME[params]` items: one per line, or several on a line
 * separated by whitespace; brackets (with quoted values) may span lines.
 */
export function splitActionList(value: string): string[] {
  const out: string[] = []
  const n = value.length
  const ws = (c: string | undefined): boolean => c !== undefined && /\s/.test(c)
  let i = 0
  while (i < n) {
    while (i < n && ws(value[i])) i++
    if (i >= n) break
    const start = i
    while (i < n && !ws(value[i]) && value[i] !== '[') i++
    let j = i
    while (j < n && ws(value[j])) j++
    if (value[j] === '[') {
      i = j
      while (i < n && value[i] === '[') {
        i++
        let quote: string | undefined
        while (i < n) {
          const c = value[i]!
          if (quote !== undefined) {
            if (c === quote) quote = undefined
          } else if (c === '"' || c === "'") quote = c
          else if (c === ']') break
          i++
        }
        if (i >= n) break
        i++
        let k = i
        while (k < n && ws(value[k])) k++
        if (value[k] === '[') i = k
        else break
      }
    }
    out.push(value.slice(start, i).trim())
  }
  return out.filter((s) => s !== '')
}

/** Names that `%(name)s` interpolations and `<name>` tags refer to, anywhere in the stack (lower case). */
function referencedNames(stack: IniStack): Set<string> {
  const out = new Set<string>()
  const scan = (v: string): void => {
    for (const m of v.matchAll(/%\(([^)]+)\)s/g)) {
      const k = m[1]!.toLowerCase()
      out.add(k)
      const slash = k.indexOf('/')
      if (slash >= 0) out.add(k.slice(slash + 1))
    }
    for (const m of v.matchAll(/<([^ <>]+)>/g)) out.add(m[1]!.toLowerCase())
  }
  for (const v of stack.defaults.values()) scan(v.value)
  for (const s of stack.sections.values()) for (const v of s.values()) scan(v.value)
  return out
}

function isVariableName(k: string): boolean {
  return STOCK_VARIABLES.has(k) || k.startsWith('action_') || k.startsWith('known/') || k.includes('?') ||
    /_(?:log|logs|logpath|backend)$/.test(k) || k.startsWith('syslog_')
}

/** Section headers `[name]` of the files read: the last place each section is written. */
function sectionHeaders(files: readonly string[]): Map<string, Origin> {
  const out = new Map<string, Origin>()
  for (const file of new Set(files)) {
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch {
      continue
    }
    text.split(/\r\n|\r|\n/).forEach((l, i) => {
      const m = /^\[([^\]]+)\]/.exec(l.trim())
      if (m && !/^\s/.test(l)) out.set(m[1]!, {file, line: i + 1})
    })
  }
  return out
}

function listNames(dir: string): string[] {
  try {
    return [...new Set(fs.readdirSync(dir).filter((n) => /\.(conf|local)$/.test(n)).map((n) => n.replace(/\.(conf|local)$/, '')))]
  } catch {
    return []
  }
}

function quoteShell(t: string): string {
  return /[\s"'\\]/.test(t) ? `"${t.replace(/(["\\])/g, '\\$1')}"` : t
}



/** True when `dir` looks like a fail2ban configuration tree (a jail.conf, jail.local or jail.d/). */
export function isFail2banTree(dir: string): boolean {
  return isFile(path.join(dir, 'jail.conf')) || isFile(path.join(dir, 'jail.local')) || isDir(path.join(dir, 'jail.d'))
}

// ---------------------------------------------------------------------------------------------
// The reader

type At = {file?: string; line?: number}

/** An action used by jails that spylog cannot map to a built-in kind (one warning each). */
interface UnmappedAction {
  readonly at: At
  readonly jails: string[]
  readonly why: 'commands' | 'python' | 'unknown'
  readonly file?: string
}

/** Read a fail2ban configuration directory into the model. Throws ConfigErrors. */
export function loadFail2banConfig(dir: string, opts: Fail2banConfigOptions = {}): SpylogConfig {
  return new Fail2banReader(path.resolve(dir), opts).run()
}

class Fail2banReader {
  private readonly errors: ConfigError[] = []
  private readonly warnings: string[] = []
  private readonly sources = new Map<string, SourceConfig>()
  private readonly filters: FilterConfig[] = []
  private readonly jails: JailConfig[] = []
  private readonly actions = new Map<string, ActionConfig>()
  private readonly unmapped = new Map<string, UnmappedAction>()
  private readonly filterDir: string
  private readonly actionDir: string
  private readonly logtypeCache = new Map<string, boolean>()
  private stack!: IniStack
  private headers = new Map<string, Origin>()

  constructor(private readonly dir: string, private readonly opts: Fail2banConfigOptions) {
    this.filterDir = path.join(dir, 'filter.d')
    this.actionDir = path.join(dir, 'action.d')
  }

  private error(at: At | undefined, field: string | undefined, message: string): void {
    this.errors.push(new ConfigError(message, at?.file ?? path.join(this.dir, 'jail.conf'), at?.line || undefined, field))
  }

  private warn(at: At | undefined, field: string | undefined, message: string): void {
    this.warnings.push(formatConfigError(message, at?.file, at?.line || undefined, field))
  }

  private fail(): never {
    const seen = new Set<string>()
    const order = new Map<string, number>()
    for (const f of this.stack?.files ?? []) if (!order.has(f)) order.set(f, order.size)
    const rank = (e: ConfigError): number => order.get(e.file ?? '') ?? order.size
    const errors = this.errors.filter((e) => !seen.has(e.message) && seen.add(e.message))
      .map((e, i) => ({e, i}))
      .sort((a, b) => rank(a.e) - rank(b.e) || (a.e.file === b.e.file ? (a.e.line ?? 0) - (b.e.line ?? 0) : 0) || a.i - b.i)
      .map((x) => x.e)
    throw new ConfigErrors(errors)
  }

  /** `[jail] option`, or `[DEFAULT] option` when the jail inherits the value. */
  private field(jail: string, option: string): string {
    return this.stack.sections.get(jail)?.has(option) === false && this.stack.defaults.has(option) ? `[DEFAULT] ${option}` : `[${jail}] ${option}`
  }

  run(): SpylogConfig {
    if (!isDir(this.dir)) {
      this.error({file: this.dir}, undefined, 'fail2ban configuration directory not found')
      this.fail()
    }
    if (!isFail2banTree(this.dir)) {
      this.error({file: this.dir}, undefined, 'not a fail2ban configuration directory (no jail.conf, jail.local or jail.d/)')
      this.fail()
    }
    try {
      this.stack = readConfigFile(path.join(this.dir, 'jail.conf'))
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      this.errors.push(e)
      this.fail()
    }
    for (const [k, v] of Object.entries(FALLBACK_DEFAULTS)) {
      if (!this.stack.defaults.has(k)) this.stack.defaults.set(k, {value: v, file: FALLBACK_FILE, line: 0})
    }
    this.headers = sectionHeaders(this.stack.files)
    const jailNames = this.stack.sectionNames().filter((n) => n !== 'INCLUDES' && n !== 'DEFAULT')
    const referenced = referencedNames(this.stack)

    this.checkNames('DEFAULT', this.stack.defaults, referenced)
    for (const name of jailNames) {
      const own = this.stack.sections.get(name)!
      const enabled = this.enabled(name)
      if (enabled) {
        this.checkNames(name, own, referenced)
        this.jail(name)
      } else {
        // A misspelt `enabled` silently disables a jail: report it even there.
        for (const [k, v] of own) {
          if (k !== 'enabled' && closestName(k, ['enabled']) !== undefined) this.error(v, `[${name}] ${k}`, `unknown option "${k}"; did you mean enabled?`)
        }
      }
    }
    this.reportUnmapped()
    if (this.jails.length === 0 && this.errors.length === 0) {
      this.warn({file: this.dir}, undefined, 'no jail is enabled (set enabled = true in a jail section of jail.local or jail.d/*.local)')
    }
    if (this.errors.length > 0) this.fail()
    return {
      configDir: this.dir,
      sources: [...this.sources.values()],
      filters: this.filters,
      jails: this.jails,
      actions: [...this.actions.values()],
      whiteIp: [],
      log: {level: 'info'},
      connect: {},
      jail: {parameters: {}},
      warnings: this.warnings,
    }
  }

  /** Unknown options close to a known one (typos); others are user variables. */
  private checkNames(section: string, opts: ReadonlyMap<string, IniValue>, referenced: ReadonlySet<string>): void {
    const known = new Set<string>(JAIL_OPTIONS)
    for (const [k, v] of opts) {
      if (known.has(k) || isVariableName(k) || referenced.has(k) || v.file === FALLBACK_FILE) continue
      const s = closestName(k, JAIL_OPTIONS)
      if (s !== undefined) this.error(v, `[${section}] ${k}`, `unknown option "${k}"; did you mean ${s}?`)
    }
  }

  // --- option access ---------------------------------------------------------------------------

  /** An option of a jail (or [DEFAULT]), interpolated; undefined when absent, null when it failed (error recorded). */
  private opt(jail: string, name: string, vars?: Record<string, string>): ResolvedValue | undefined | null {
    try {
      return this.stack.lookup(jail, name, vars)
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      const raw = this.stack.raw(jail, name)
      this.error(raw ?? {file: e.file, line: e.line}, `[${jail}] ${name}`, e.reason)
      return null
    }
  }

  /** An option that is set to something other than the empty string. */
  private given(jail: string, name: string, vars?: Record<string, string>): ResolvedValue | undefined | null {
    const v = this.opt(jail, name, vars)
    return v !== undefined && v !== null && v.value.trim() === '' ? undefined : v
  }

  private bool(jail: string, name: string, def: boolean): boolean {
    const v = this.given(jail, name)
    if (v === undefined || v === null) return def
    const b = parseBool(v.value)
    if (b === undefined) {
      this.error(v, this.field(jail, name), `expected true or false (also yes/no, on/off, 1/0), got ${JSON.stringify(v.value)}`)
      return def
    }
    return b
  }

  private time(jail: string, name: string, check: (n: number) => string | undefined): {value: number; at: At} | undefined {
    const v = this.given(jail, name)
    if (v === undefined || v === null) return undefined
    const t = parseFail2banTime(v.value)
    if (typeof t !== 'number') {
      this.error(v, this.field(jail, name), `expected a time: seconds or a number with a unit (10m, 1h, 1d, 1w, 1h30m), got ${JSON.stringify(v.value)}: ${t.error}`)
      return undefined
    }
    const bad = check(t)
    if (bad !== undefined) {
      this.error(v, this.field(jail, name), `${bad}, got ${JSON.stringify(v.value)}`)
      return undefined
    }
    return {value: t, at: v}
  }

  private enabled(jail: string): boolean {
    const v = this.given(jail, 'enabled')
    if (v === undefined || v === null) return false
    const b = parseBool(v.value)
    if (b === undefined) {
      this.error(v, this.field(jail, 'enabled'), `expected true or false (also yes/no, on/off, 1/0), got ${JSON.stringify(v.value)}`)
      return false
    }
    return b
  }

  // --- jails -----------------------------------------------------------------------------------

  private jail(name: string): void {
    const f = (o: string): string => this.field(name, o)
    const origin: Origin = this.headers.get(name) ?? {file: path.join(this.dir, 'jail.conf'), line: 0}
    const nErrors = this.errors.length

    // backend
    let backend = 'auto'
    let backendSpec = 'auto'
    let backendParams: Record<string, string> = {}
    const bv = this.given(name, 'backend')
    if (bv !== undefined && bv !== null) {
      try {
        const spec = parseFilterSpec(bv.value)
        const b = spec.name.toLowerCase()
        if ((BACKENDS as readonly string[]).includes(b)) {
          backend = b
          backendSpec = pyStrip(bv.value)
          backendParams = spec.params
        } else {
          const s = closestName(b, BACKENDS)
          this.error(bv, f('backend'), `expected ${BACKENDS.join(', ')}, got ${JSON.stringify(spec.name)}${s !== undefined ? `; did you mean ${s}?` : ''}`)
        }
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e
        this.error(bv, f('backend'), e.reason)
      }
    }
    const journal = backend === 'systemd'

    // filter
    let def: FilterDefinition | undefined
    let filterSpec: string | undefined
    const fv = this.opt(name, 'filter')
    if (fv !== undefined && fv !== null && fv.value.trim() !== '') {
      try {
        const spec = parseFilterSpec(fv.value)
        filterSpec = pyStrip(fv.value)
        const file = findFilter(spec.name, [this.filterDir])
        if (file === undefined) {
          const s = closestName(spec.name, listNames(this.filterDir))
          this.error(fv, f('filter'), `no filter "${spec.name}": ${path.join(this.filterDir, spec.name)}.conf (or .local) does not exist${s !== undefined ? `; did you mean ${s}?` : ''}`)
        } else {
          const params = {...spec.params}
          if (params.logtype === undefined && !this.definesLogtype(file)) params.logtype = journal ? 'journal' : 'file'
          try {
            def = loadFilterFile(file, params)
          } catch (e) {
            if (!(e instanceof ConfigError)) throw e
            this.errors.push(e.file !== undefined ? e : new ConfigError(e.reason, file, undefined, e.field))
          }
        }
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e
        this.error(fv, f('filter'), e.reason)
      }
    } else if (fv !== null) {
      this.warn(origin, `[${name}]`, 'no filter: this jail never sees a failure (it can only ban on request)')
    }

    // values of the filter, for %(known/…)s in the jail's options
    const known: Record<string, string> = {}
    if (def !== undefined) {
      const esc = (s: string): string => s.replaceAll('%', '%%')
      for (const [k, v] of Object.entries(def.params)) known[`known/${k}`] = esc(v)
      known['known/failregex'] = esc(def.failregex.join('\n'))
      known['known/ignoreregex'] = esc(def.ignoreregex.join('\n'))
      if (def.prefregex !== undefined) known['known/prefregex'] = esc(def.prefregex)
      if (def.datepattern !== undefined) known['known/datepattern'] = esc(def.datepattern)
      known['known/maxlines'] = String(def.maxlines)
      known['known/usedns'] = esc(def.usedns)
      known['known/journalmatch'] = esc(def.journalmatch.map((l) => l.map(quoteShell).join(' ')).join('\n'))
    }
    const over = (o: string): ResolvedValue | undefined | null => this.opt(name, o, known)
    const lines = (v: string): string[] => v.split('\n').filter((l) => l !== '')
    const fieldOrigins: Record<string, Origin> = {}
    const originOf = (v: At | undefined): Origin | undefined => (v?.file !== undefined ? {file: v.file, line: v.line ?? 0} : undefined)
    const setOrigin = (k: string, jailV: ResolvedValue | undefined | null, filterO: At | undefined): void => {
      const o = originOf(jailV ?? undefined) ?? originOf(filterO)
      if (o !== undefined) fieldOrigins[k] = o
    }

    const failV = over('failregex')
    const ignoreV = over('ignoreregex')
    const prefV = over('prefregex')
    const dateV = over('datepattern')
    const maxlinesV = over('maxlines')
    const usednsV = over('usedns')
    const jmV = over('journalmatch')
    const failregex = failV != null ? lines(failV.value) : (def?.failregex ?? [])
    const ignoreregex = ignoreV != null ? lines(ignoreV.value) : (def?.ignoreregex ?? [])
    const prefregex = prefV != null ? (prefV.value === '' ? undefined : prefV.value) : def?.prefregex
    const datepattern = dateV != null ? (dateV.value.trim() === '' ? undefined : dateV.value) : def?.datepattern
    setOrigin('failregex', failV, def?.origin.failregex)
    setOrigin('ignoreregex', ignoreV, def?.origin.ignoreregex)
    setOrigin('prefregex', prefV, def?.origin.prefregex)
    setOrigin('datepattern', dateV, def?.origin.datepattern)
    let maxlines = def?.maxlines ?? 1
    if (maxlinesV != null && maxlinesV.value.trim() !== '') {
      const n = parseInt10(maxlinesV.value)
      if (n === undefined || n < 1) this.error(maxlinesV, f('maxlines'), `expected a whole number ≥ 1, got ${JSON.stringify(maxlinesV.value)}`)
      else maxlines = n
    }
    let usedns = def?.usedns ?? 'warn'
    if (usednsV != null && usednsV.value.trim() !== '') usedns = usednsV.value.trim()
    if (!(USEDNS as readonly string[]).includes(usedns.toLowerCase())) {
      const at = usednsV ?? (def !== undefined ? {file: def.file} : origin)
      const s = closestName(usedns, USEDNS)
      this.error(at, f('usedns'), `expected ${USEDNS.join(', ')}, got ${JSON.stringify(usedns)}${s !== undefined ? `; did you mean ${s}?` : ''}`)
    }
    let journalmatch: string[][] = def?.journalmatch ?? []
    let journalLines: string[] = journalmatch.map((l) => l.map(quoteShell).join(' '))
    if (jmV != null) {
      journalLines = lines(jmV.value).map((l) => l.trim()).filter((l) => l !== '')
      journalmatch = []
      for (const l of journalLines) {
        try {
          journalmatch.push(shellSplit(l))
        } catch (e) {
          this.error(jmV, f('journalmatch'), `${(e as Error).message} in ${JSON.stringify(l)}`)
        }
      }
    }

    // log encoding and time zone
    let encoding = 'utf-8'
    const encV = this.given(name, 'logencoding')
    if (encV != null && encV.value.trim().toLowerCase() !== 'auto') {
      const e = encV.value.trim().toLowerCase().replace(/_/g, '-').replace(/^latin-(\d)$/, 'latin$1')
      try {
        encoding = new TextDecoder(e).encoding
      } catch {
        this.error(encV, f('logencoding'), `unknown encoding ${JSON.stringify(encV.value)} (expected auto, utf-8, latin1, cp1251, …)`)
      }
    }
    let timezone: string | undefined
    const tzV = this.given(name, 'logtimezone')
    if (tzV != null) {
      try {
        parseTimeZone(tzV.value)
        timezone = tzV.value.trim()
      } catch (e) {
        this.error(tzV, f('logtimezone'), (e as Error).message)
      }
    }

    // sources
    const sourceNames: string[] = []
    const skipIfNoLogs = this.bool(name, 'skip_if_nologs', false)
    const systemdIfNoLogs = this.bool(name, 'systemd_if_nologs', true)
    if (journal) this.journalSource(name, backendSpec, backendParams, journalmatch, jmV ?? (def !== undefined ? {file: def.file} : origin), sourceNames)
    else {
      const lp = this.given(name, 'logpath')
      if (lp === null) {
        // error recorded
      } else if (lp === undefined) {
        if (backend === 'auto' && systemdIfNoLogs) {
          this.warn(origin, f('logpath'), 'no logpath: backend auto reads the systemd journal instead (as fail2ban does with systemd_if_nologs)')
          this.journalSource(name, 'systemd', {}, journalmatch, origin, sourceNames)
        } else if (skipIfNoLogs) {
          this.warn(origin, f('logpath'), 'no logpath: the jail is skipped (skip_if_nologs)')
          return
        } else this.error(origin, f('logpath'), `missing: the log file(s) this jail reads (logpath = /var/log/…, globs allowed), or backend = systemd`)
      } else {
        for (const raw of lp.value.split('\n')) {
          let p = raw.trim()
          if (p === '') continue
          let tail = false
          const m = /^(.*\S)\s+(head|tail)$/i.exec(p)
          if (m) {
            p = m[1]!
            tail = m[2]!.toLowerCase() === 'tail'
          }
          const abs = path.isAbsolute(p) || path.win32.isAbsolute(p) ? p : path.resolve(this.dir, p)
          const src: FileSource = {
            name: `file:${abs}`, origin: {file: lp.file ?? origin.file, line: lp.line ?? 0}, spec: raw.trim(), implicit: true,
            kind: 'file', path: abs, eol: {text: '\r*\n', pattern: true}, skipExisting: tail, maxLine: 65536, encoding, backend,
          }
          sourceNames.push(this.addFileSource(src, name))
          if (this.opts.checkLogFiles !== false && !this.matchesFile(abs)) {
            this.warn(lp, f('logpath'), `no file matches ${JSON.stringify(abs)} (yet)`)
          }
        }
      }
    }
    // the filter
    let filterName: string | undefined
    if (def !== undefined) {
      if (failregex.length === 0) {
        this.error(failV ?? {file: def.file}, f('failregex'), `no failregex: filter "${def.name}" has none and the jail gives none`)
      } else {
        const cfg: FilterConfig = {
          name, origin: fieldOrigins.failregex ?? {file: def.file, line: 0}, enabled: true, sources: sourceNames, engine: 'fail2ban',
          failregex, ignoreregex, exclude: [], datepattern, stop: false, cfilter: [],
          fail2ban: {prefregex, maxlines, datepattern, usedns: usedns.toLowerCase(), journalmatch: journalLines.length > 0 ? journalLines : undefined, timezone},
          fieldOrigins,
        }
        try {
          buildFilter(cfg)
          this.filters.push(cfg)
          filterName = cfg.name
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e
          this.errors.push(e.file !== undefined ? e : new ConfigError(`${e.reason} (filter ${filterSpec ?? def.name})`, def.file, undefined, e.field))
        }
      }
    }

    // counting and banning
    let maxretry = DEFAULT_MAXRETRY
    const mr = this.given(name, 'maxretry')
    if (mr != null) {
      const n = parseInt10(mr.value)
      if (n === undefined || n < 1) this.error(mr, f('maxretry'), `expected a whole number ≥ 1, got ${JSON.stringify(mr.value)}`)
      else maxretry = n
    }
    const mm = this.given(name, 'maxmatches')
    if (mm != null) {
      const n = parseInt10(mm.value)
      if (n === undefined || n < 0) this.error(mm, f('maxmatches'), `expected a whole number ≥ 0, got ${JSON.stringify(mm.value)}`)
    }
    const findtime = this.time(name, 'findtime', (n) => (n > 0 ? undefined : 'expected a time > 0'))?.value ?? DEFAULT_FINDTIME
    const bt = this.time(name, 'bantime', () => undefined)?.value ?? DEFAULT_BANTIME
    const bantime = bt < 0 ? -1 : bt
    const banTimeIncrement = this.banTimeIncrement(name)

    // ignore lists
    const ignore = this.ignoreIp(name)
    const ignoreSelf = this.bool(name, 'ignoreself', true)
    const ic = this.given(name, 'ignorecommand')
    const ignoreCommand = ic != null ? ic.value.trim() : undefined

    // actions
    const actions = this.jailActions(name, known)
    if (actions.length === 0 && this.errors.length === nErrors) {
      this.warn(origin, `[${name}]`, 'no action spylog can run: offenders are counted and logged, never banned')
    }

    this.jails.push({
      name, origin, enabled: true, filters: filterName !== undefined ? [filterName] : [], findtime, maxretry, bantime, actions,
      parameters: {}, counter: COUNTER, cfilter: [], noreset: false,
      ignoreIp: ignore.ips, ignoreHosts: ignore.hosts, ignoreFiles: ignore.files, ignoreSelf, ignoreCommand, banTimeIncrement,
    })
  }

  private definesLogtype(filterFile: string): boolean {
    let v = this.logtypeCache.get(filterFile)
    if (v === undefined) {
      try {
        v = readConfigFile(filterFile).sections.get('Definition')?.has('logtype') ?? false
      } catch {
        v = false
      }
      this.logtypeCache.set(filterFile, v)
    }
    return v
  }

  private journalSource(jail: string, backendSpec: string, params: Record<string, string>, match: string[][], at: At, names: string[]): void {
    const groups: string[][] = []
    for (const line of match) {
      let cur: string[] = []
      for (const t of line) {
        if (t === '+') {
          if (cur.length > 0) groups.push(cur)
          cur = []
        } else if (!/^[A-Z0-9_]+=/.test(t)) {
          this.error(at, this.field(jail, 'journalmatch'), `expected FIELD=value terms (upper-case journal field names, "+" between alternatives), got ${JSON.stringify(t)}`)
        } else cur.push(t)
      }
      if (cur.length > 0) groups.push(cur)
    }
    const matchText = groups.length === 0 ? '*' : groups.map((g) => g.join(' ')).join(' + ')
    const opts = Object.entries(params).map(([k, v]) => `${k}=${v}`).join(', ')
    const sname = opts === '' ? `journal:${matchText}` : `journal[${opts}]:${matchText}`
    if (!this.sources.has(sname)) {
      const src: JournalSource = {name: sname, origin: {file: at.file ?? '', line: at.line ?? 0}, spec: backendSpec, implicit: true, kind: 'journal', match: groups}
      this.sources.set(sname, src)
    }
    names.push(sname)
    if ((this.opts.platform ?? process.platform) === 'win32') {
      this.warn(at, this.field(jail, 'backend'), 'the systemd journal does not exist on Windows: this jail will read nothing there')
    }
  }

  /** Adds a file source (shared by jails reading the same file the same way); its name. */
  private addFileSource(src: FileSource, jail: string): string {
    const prev = this.sources.get(src.name)
    if (prev === undefined) {
      this.sources.set(src.name, src)
      return src.name
    }
    if (prev.kind === 'file' && prev.skipExisting === src.skipExisting && prev.encoding === src.encoding && prev.backend === src.backend) return prev.name
    const name = `${src.name}#${jail}`
    if (!this.sources.has(name)) this.sources.set(name, {...src, name})
    return name
  }

  private matchesFile(p: string): boolean {
    const pattern = process.platform === 'win32' ? p.replace(/\\/g, '/') : p
    if (fg.isDynamicPattern(pattern)) {
      try {
        return fg.sync(pattern, {onlyFiles: true, suppressErrors: true}).length > 0
      } catch {
        return false
      }
    }
    return fs.existsSync(p)
  }

  private banTimeIncrement(jail: string): BanTimeIncrement | undefined {
    const f = (o: string): string => this.field(jail, o)
    const names = ['bantime.increment', 'bantime.factor', 'bantime.formula', 'bantime.multipliers', 'bantime.maxtime', 'bantime.rndtime', 'bantime.overalljails']
    if (!names.some((n) => this.stack.raw(jail, n) !== undefined && this.stack.raw(jail, n)!.value.trim() !== '')) return undefined
    const enabled = this.bool(jail, 'bantime.increment', false)
    let factor: number | undefined
    const fv = this.given(jail, 'bantime.factor')
    if (fv != null) {
      const t = fv.value.trim()
      const n = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN
      if (!(n > 0)) this.error(fv, f('bantime.factor'), `expected a number > 0, got ${JSON.stringify(fv.value)}`)
      else factor = n
    }
    let formula: string | undefined
    const fo = this.given(jail, 'bantime.formula')
    if (fo != null) {
      formula = fo.value.trim()
      const bad = checkFormula(formula)
      if (bad !== undefined) this.error(fo, f('bantime.formula'), bad)
    }
    let multipliers: number[] | undefined
    const mv = this.given(jail, 'bantime.multipliers')
    if (mv != null) {
      const parts = mv.value.trim().split(/\s+/)
      const nums = parts.map((p) => parseInt10(p))
      if (nums.some((n) => n === undefined || n < 0)) this.error(mv, f('bantime.multipliers'), `expected whole numbers ≥ 0 separated by spaces (1 2 4 8 16), got ${JSON.stringify(mv.value)}`)
      else multipliers = nums as number[]
    }
    const maxtime = this.time(jail, 'bantime.maxtime', (n) => (n > 0 ? undefined : 'expected a time > 0'))?.value
    const rndtime = this.time(jail, 'bantime.rndtime', (n) => (n >= 0 ? undefined : 'expected a time ≥ 0'))?.value
    const ov = this.given(jail, 'bantime.overalljails')
    const overalljails = ov != null ? this.bool(jail, 'bantime.overalljails', false) : undefined
    return {enabled, factor, formula, multipliers, maxtime, rndtime, overalljails}
  }

  private ignoreIp(jail: string): {ips: string[]; hosts: string[]; files: string[]} {
    const out = {ips: [] as string[], hosts: [] as string[], files: [] as string[]}
    const v = this.given(jail, 'ignoreip')
    if (v == null) return out
    for (const item of v.value.split(/[\s,]+/).filter((x) => x !== '')) {
      if (item.toLowerCase().startsWith('file:')) {
        const p = item.slice(5)
        if (p === '') {
          this.error(v, this.field(jail, 'ignoreip'), 'file: needs a path (file:/etc/fail2ban/ignoreip.list)')
          continue
        }
        const abs = path.isAbsolute(p) || path.win32.isAbsolute(p) ? p : path.resolve(this.dir, p)
        out.files.push(abs)
        if (!isFile(abs)) this.warn(v, this.field(jail, 'ignoreip'), `${JSON.stringify(abs)} does not exist (yet)`)
        continue
      }
      const net = canonicalNetwork(item) ?? dottedMask(item)
      if (net !== undefined) {
        out.ips.push(net)
        continue
      }
      if (isHostName(item)) {
        out.hosts.push(item.toLowerCase())
        continue
      }
      this.error(v, this.field(jail, 'ignoreip'), `expected IP addresses, networks (192.0.2.0/24, 10.0.0.0/255.0.0.0, 2001:db8::/32), host names or file:PATH, separated by spaces or commas; got ${JSON.stringify(item)}`)
    }
    return out
  }

  // --- actions ---------------------------------------------------------------------------------

  private jailActions(jail: string, known: Record<string, string>): JailActionRef[] {
    const out: JailActionRef[] = []
    const av = this.opt(jail, 'action', known)
    if (av === undefined || av === null) return out
    const at: Origin = {file: av.file ?? '', line: av.line ?? 0}
    for (const item of splitActionList(av.value)) {
      let spec: {name: string; params: Record<string, string>}
      try {
        spec = parseFilterSpec(item)
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e
        this.error(av, this.field(jail, 'action'), e.reason)
        continue
      }
      const ref = this.action(spec.name, spec.params, at, jail)
      if (ref !== undefined) out.push(ref)
    }
    return out
  }

  private noteUnmapped(name: string, at: At, jail: string, why: UnmappedAction['why'], file?: string): void {
    const u = this.unmapped.get(name)
    if (u === undefined) this.unmapped.set(name, {at, jails: [jail], why, file})
    else if (!u.jails.includes(jail)) u.jails.push(jail)
  }

  private reportUnmapped(): void {
    for (const [name, u] of this.unmapped) {
      const jails = `jail${u.jails.length > 1 ? 's' : ''} ${u.jails.map((j) => JSON.stringify(j)).join(', ')}`
      switch (u.why) {
        case 'commands':
          this.warn(u.at, 'action', `action "${name}" (${jails}) has no spylog built-in equivalent: spylog runs the commands of ${u.file} instead, as fail2ban would`)
          break
        case 'python':
          this.warn(u.at, 'action', `action "${name}" (${jails}) is a fail2ban Python action: spylog cannot run it and leaves it out`)
          break
        case 'unknown': {
          const s = closestName(name, listNames(this.actionDir))
          this.warn(u.at, 'action', `action "${name}" (${jails}) is unknown: no spylog built-in kind fits it and there is no ${path.join(this.actionDir, name)}.conf${s !== undefined ? ` (did you mean ${s}?)` : ''}; it is left out`)
          break
        }
      }
    }
  }

  /** The jail's reference to action `name` (creating the ActionConfig on first use), or undefined when it cannot run. */
  private action(name: string, params: Record<string, string>, at: Origin, jail: string): JailActionRef | undefined {
    const builtin = builtinActionFor(name)
    const file = name.endsWith('.py') ? undefined : findFilter(name, [this.actionDir])
    let cfg = this.actions.get(name)
    if (cfg === undefined) {
      if (builtin !== undefined) {
        let parameters: Record<string, ParamValue> = {}
        let origin: Origin = at
        if (file !== undefined) {
          const read = this.readAction(file, false)
          if (read !== undefined) parameters = read.init
          origin = {file, line: 0}
        }
        const module = {kind: 'module' as const, module: BUILTIN_ACTION_MODULES[builtin.kind]}
        cfg = {name, origin, ban: module, unban: builtin.kind === 'firewall' ? module : undefined, parameters, options: {}, builtin}
      } else if (name.endsWith('.py')) {
        this.noteUnmapped(name, at, jail, 'python')
        return undefined
      } else if (file !== undefined) {
        const read = this.readAction(file, true)
        if (read === undefined) return undefined
        this.noteUnmapped(name, at, jail, 'commands', file)
        const c = read.commands
        const cmd = (k: string): {kind: 'command'; command: string} | undefined => (c[k] !== undefined && c[k] !== '' ? {kind: 'command', command: c[k]!} : undefined)
        const options: Record<string, ParamValue> = {}
        for (const k of ACTION_EXTRA) if (c[k] !== undefined) options[k] = c[k]!
        cfg = {
          name, origin: read.origin, ban: cmd('actionban'), unban: cmd('actionunban'), parameters: {...read.definition, ...read.init}, options,
          start: c.actionstart || undefined, stop: c.actionstop || undefined, check: c.actioncheck || undefined,
        }
      } else {
        this.noteUnmapped(name, at, jail, 'unknown')
        return undefined
      }
      this.actions.set(name, cfg)
    } else if (builtin === undefined) this.noteUnmapped(name, at, jail, 'commands', file)

    // <known/x> in a parameter: the action's own default for x (dropped when it has none: the runner uses its default)
    const defaults = cfg.parameters
    const parameters: Record<string, ParamValue> = {}
    for (const [k, v] of Object.entries(params)) {
      let unresolved = false
      const r = v.replace(/<known\/([^>]+)>/g, (_m, x: string) => {
        const d = defaults[x]
        if (typeof d === 'string' || typeof d === 'number') return String(d)
        unresolved = true
        return ''
      })
      if (!unresolved) parameters[k] = r
    }
    return Object.keys(parameters).length > 0 ? {name, parameters, origin: at} : {name, origin: at}
  }

  /** An action.d file: its commands ([Definition] action*), other [Definition] options and [Init] parameters. */
  private readAction(file: string, report: boolean): {commands: Record<string, string>; definition: Record<string, string>; init: Record<string, string>; origin: Origin} | undefined {
    try {
      const stack = readConfigFile(file)
      const commands: Record<string, string> = {}
      const definition: Record<string, string> = {}
      const init: Record<string, string> = {}
      let origin: Origin = {file, line: 0}
      const all = new Set<string>([...ACTION_COMMANDS, ...ACTION_EXTRA])
      for (const opt of stack.options('Definition')) {
        if (opt === '__name__' || opt.startsWith('known/')) continue
        const v = stack.lookup('Definition', opt)
        if (v === undefined) continue
        if (all.has(opt)) {
          commands[opt] = v.value
          if (opt === 'actionban' && v.file !== undefined) origin = {file: v.file, line: v.line ?? 0}
        } else definition[opt] = v.value
      }
      if (stack.hasSection('Init')) {
        for (const opt of stack.options('Init')) {
          if (opt === '__name__' || opt.startsWith('known/')) continue
          const v = stack.lookup('Init', opt)
          if (v !== undefined) init[opt] = v.value
        }
      }
      return {commands, definition, init, origin}
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      if (report) this.errors.push(e.file !== undefined ? e : new ConfigError(e.reason, file, undefined, e.field))
      return undefined
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** `a.b.c.d/255.255.0.0` (a contiguous dotted mask) as `a.b.0.0/16`. */
function dottedMask(s: string): string | undefined {
  const m = /^([^/]+)\/(\d+\.\d+\.\d+\.\d+)$/.exec(s.trim())
  if (!m) return undefined
  const octets = m[2]!.split('.').map(Number)
  if (octets.some((o) => o > 255)) return undefined
  const bits = octets.map((o) => o.toString(2).padStart(8, '0')).join('')
  if (!/^1*0*$/.test(bits)) return undefined
  const len = bits.indexOf('0') < 0 ? 32 : bits.indexOf('0')
  const net = canonicalNetwork(`${m[1]}/${len}`)
  return net !== undefined && !net.includes(':') ? net : undefined
}

/** A DNS host name (not something that looks like a broken address). */
function isHostName(s: string): boolean {
  if (s.length > 253 || /^[\d.]+$/.test(s) || s.includes(':') || s.includes('/')) return false
  return /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/.test(s)
}

/** Names a `bantime.formula` may use (fail2ban evaluates it as Python with these in scope). */
const FORMULA_NAMES = new Set([
  'ban.Time', 'ban.Count', 'banFactor', 'if', 'else', 'and', 'or', 'not', 'min', 'max', 'abs', 'int', 'float', 'round', 'math.e', 'math.pi',
  'math.exp', 'math.log', 'math.log2', 'math.log10', 'math.pow', 'math.sqrt', 'math.floor', 'math.ceil',
])

/** Why a bantime.formula cannot be evaluated safely, if it cannot. */
function checkFormula(formula: string): string | undefined {
  if (formula === '') return 'expected an expression of ban.Time, ban.Count and banFactor'
  const stripped = formula.replace(/\d+(?:\.\d*)?(?:e[+-]?\d+)?/gi, ' ')
  if (/[^\w\s.+\-*/%()<>=!,]/.test(stripped)) return `unexpected character in ${JSON.stringify(formula)}: use numbers, + - * / % ** << >>, comparisons, parentheses and if/else`
  for (const m of stripped.matchAll(/[A-Za-z_][\w.]*/g)) {
    if (!FORMULA_NAMES.has(m[0])) {
      const s = closestName(m[0], FORMULA_NAMES)
      return `unknown name ${JSON.stringify(m[0])} in the formula${s !== undefined ? `; did you mean ${s}?` : ''} (known: ban.Time, ban.Count, banFactor, math.exp/log/pow/sqrt…, min, max)`
    }
  }
  let depth = 0
  for (const ch of formula) {
    if (ch === '(') depth++
    else if (ch === ')' && --depth < 0) break
  }
  if (depth !== 0) return `unbalanced parentheses in ${JSON.stringify(formula)}`
  return undefined
}
