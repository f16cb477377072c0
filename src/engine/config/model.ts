/**
 * The validated configuration model: the one shape every part of spylog (daemon, `spylog regex`,
 * `spylog testcases`, control commands) consumes. The Lua reader (lua.ts, lua-spylog's
 * `SOURCE{}`/`FILTER{}`/`JAIL{}`/`ACTION{}` … format) and the fail2ban reader (jail.conf,
 * filter.d, action.d) both produce it; validation happens once, in the readers, so nothing
 * downstream re-checks a field.
 *
 * Conventions:
 * - every configuration object carries `origin` (file and 1-based line where it was defined);
 * - durations are seconds (lua-spylog's `purge_interval`, given in minutes, is converted);
 * - addresses and networks are canonical text (`canonicalAddress`; networks `addr/len`);
 * - lists that lua-spylog accepts as "a string or a list" are always arrays here;
 * - references between objects are by name (filter → sources, jail → filters and actions), and
 *   every name referenced exists (checked by the reader).
 */
import ipaddr from 'ipaddr.js'
import {ConfigError} from '../fail2ban/errors.js'
import {canonicalAddress} from '../net/address.js'

/** Where a configuration object (or field) was defined. */
export interface Origin {
  readonly file: string
  /** 1-based line; 0 when unknown. */
  readonly line: number
}

/** A value of action parameters and options: what a Lua table of strings/numbers/booleans holds. */
export type ParamValue = string | number | boolean | ParamValue[] | {[key: string]: ParamValue}

// ---------------------------------------------------------------------------------------------
// Sources

/**
 * How a stream is cut into lines (lua-spylog `eol`): `text` is a plain separator, or a Lua
 * pattern when `pattern` is true (the file default `'\r*\n'` is a pattern).
 */
export interface LineEnding {
  readonly text: string
  readonly pattern: boolean
}

interface SourceBase {
  /** The SOURCE{} name, or the source string itself for a source written inline in a filter. */
  readonly name: string
  readonly origin: Origin
  /** The source string as written (`file:…`, `net:udp://…`, …); for fail2ban, the logpath. */
  readonly spec: string
  /** True for a source written inline in a FILTER{} (or a fail2ban logpath): no SOURCE{} of its own. */
  readonly implicit: boolean
}

/** `file:<path>`: follow a growing log file. */
export interface FileSource extends SourceBase {
  readonly kind: 'file'
  /** Absolute path (relative paths are resolved against the configuration directory); may be a glob for fail2ban. */
  readonly path: string
  readonly eol: LineEnding
  /** Start at the end of an existing file (lua-spylog `skeep`, default true). */
  readonly skipExisting: boolean
  /** Extra stat polling interval, seconds (lua-spylog `poll`, ≥ 1). */
  readonly poll?: number
  /** Read buffer size in bytes (lua-spylog `buffer_size`). */
  readonly bufferSize?: number
  /** Longest line kept, bytes (lua-spylog `max_line`, default 4096). */
  readonly maxLine: number
  /** Text encoding of the file (spylog extension / fail2ban `logencoding`), default utf-8. */
  readonly encoding: string
  /** fail2ban `backend` (auto, polling, pyinotify …) when the source comes from a jail.conf. */
  readonly backend?: string
}

/** `net:tcp://host:port` (connect and read lines) or `net:udp://host:port` (one datagram per line). */
export interface NetSource extends SourceBase {
  readonly kind: 'net'
  readonly protocol: 'tcp' | 'udp'
  readonly host: string
  readonly port: number
  readonly eol: LineEnding
  /** Reconnect delay, seconds (default 30). */
  readonly reconnect: number
  readonly maxLine: number
}

/**
 * `syslog:udp://host[:port]` or `syslog:tcp://host[:port]`: a syslog receiver (RFC 3164/5424;
 * over TCP, RFC 6587 octet-counted or newline-framed); filters see the message part.
 */
export interface SyslogSource extends SourceBase {
  readonly kind: 'syslog'
  readonly protocol: 'udp' | 'tcp'
  readonly host: string
  /** Default 514. */
  readonly port: number
  /** Longest message kept, bytes (`max_line`; default 65536): longer ones are cut. */
  readonly maxMessage?: number
}

/** `trap:udp://host[:port]`: an SNMP trap receiver; filters select traps with `trap`. */
export interface TrapSource extends SourceBase {
  readonly kind: 'trap'
  readonly protocol: 'udp'
  readonly host: string
  /** Default 162. */
  readonly port: number
  /** Communities accepted (`community`: a string or a list); undefined: any community. */
  readonly community?: readonly string[]
}

/** `eventlog:udp://host[:port]`: Windows event-log records forwarded as SNMP traps (evntwin); filters select with `events`. */
export interface EventLogTrapSource extends SourceBase {
  readonly kind: 'eventlog'
  readonly protocol: 'udp'
  readonly host: string
  /** Default 162. */
  readonly port: number
}

/**
 * `eventlog:` or `eventlog:local`: this machine's event log, read by a PowerShell worker
 * (src/engine/sources/eventlog.ts), or by polling `wevtutil qe` where PowerShell cannot run.
 * The channels and event ids read are those of the filters' `events` (a selector names a
 * channel, or a provider whose channel is known or given with `channel = …`).
 */
export interface EventLogLocalSource extends SourceBase {
  readonly kind: 'eventlog'
  readonly protocol: 'local'
  /** Always '' and 0: only the udp form listens (kept so both forms share the field types). */
  readonly host: ''
  readonly port: 0
  /** `mode`: `auto` (PowerShell worker, wevtutil polling when it cannot run; default), `powershell`, `wevtutil`. */
  readonly mode: 'auto' | 'powershell' | 'wevtutil'
  /** `poll`: wevtutil polling interval, seconds (default 2). */
  readonly poll: number
  /** `max_age`: on catch-up after a restart, events older than this many seconds are skipped (default 86400). */
  readonly maxAge: number
  /** `render`: render the message text (the record text filters match; default true). */
  readonly render: boolean
  /** `powershell`: the PowerShell executable (default `%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe`). */
  readonly powershell?: string
  /** `worker`: the worker script (default the packaged resources/windows/eventlog.ps1). */
  readonly worker?: string
}

/** Either form of the `eventlog` source; `protocol` tells them apart. */
export type EventLogSource = EventLogTrapSource | EventLogLocalSource

/** FreeSWITCH log levels, by name, as `esl` sources accept them (`level`). */
export const ESL_LEVELS = ['CONSOLE', 'ALERT', 'CRIT', 'ERR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'] as const
export type EslLevel = (typeof ESL_LEVELS)[number]

/** `esl:[password@]host[:port]`: FreeSWITCH event socket log stream. */
export interface EslSource extends SourceBase {
  readonly kind: 'esl'
  /** Default `ClueCon`. */
  readonly password: string
  readonly host: string
  /** Default 8021. */
  readonly port: number
  /** Log level subscribed to (`level`, default WARNING). */
  readonly level: EslLevel
  /** Reconnect delay, seconds (default 30). */
  readonly reconnect: number
}

/** `process:<command>`: run a program and read its output lines (restarted when it exits). */
export interface ProcessSource extends SourceBase {
  readonly kind: 'process'
  /**
   * The program. Without `args` this is the whole command line (program and arguments, as
   * lua-spylog's `Args.split_command` reads it); with `args`, only the program.
   */
  readonly command: string
  /** `args`: one argument string to split, or the argument list. */
  readonly args?: string | readonly string[]
  /** Variables passed: `inherit` copied from spylog's environment, `set` given values (`%VAR%`/`$VAR` expanded by the runner). */
  readonly env?: {readonly inherit: readonly string[]; readonly set: Readonly<Record<string, string>>}
  readonly eol?: LineEnding
  /** Restart delay after exit, seconds (default 10, ≥ 1). */
  readonly restart: number
  readonly maxLine: number
  /** Streams read (default stdout). */
  readonly monitor: ReadonlyArray<'stdout' | 'stderr'>
}

/** systemd journal (fail2ban `backend = systemd`; no lua-spylog equivalent). */
export interface JournalSource extends SourceBase {
  readonly kind: 'journal'
  /** journalmatch expressions (each a list of FIELD=value terms, ANDed; expressions ORed). */
  readonly match: readonly (readonly string[])[]
}

export type SourceConfig = FileSource | NetSource | SyslogSource | TrapSource | EventLogSource | EslSource | ProcessSource | JournalSource
export type SourceKind = SourceConfig['kind']

// ---------------------------------------------------------------------------------------------
// Capture filters (cfilter)

interface CaptureFilterBase {
  readonly origin: Origin
  /** `type = 'allow'`: keep only captures the filter accepts; `'deny'` (default): drop them. */
  readonly mode: 'allow' | 'deny'
  /** The capture examined (`capture`; default `host` for acl/geoip, `number` for prefix). */
  readonly capture: string
}

/** `{'acl', filter = {cidr…}}`: the capture is an address inside one of the networks. */
export interface AclCaptureFilter extends CaptureFilterBase {
  readonly kind: 'acl'
  /** Canonical addresses and networks. */
  readonly networks: readonly string[]
}

/** `{'list', filter = {values…}, nocase = bool}`: the capture equals one of the values. */
export interface ListCaptureFilter extends CaptureFilterBase {
  readonly kind: 'list'
  readonly values: readonly string[]
  readonly nocase: boolean
}

/** `{'regex', filter = {patterns…}, engine = 'lua'|'pcre'}`: one of the patterns is found in the capture. */
export interface RegexCaptureFilter extends CaptureFilterBase {
  readonly kind: 'regex'
  readonly patterns: readonly string[]
  readonly engine: 'lua' | 'pcre'
}

/**
 * `{'prefix', prefix = …}`: the capture starts with one of the prefixes (longest match wins;
 * the value of a prefix map is its label). `file`: a prefix file (one prefix per line, optional
 * label after whitespace), path resolved against `<config>/jails`.
 */
export interface PrefixCaptureFilter extends CaptureFilterBase {
  readonly kind: 'prefix'
  readonly prefixes?: Readonly<Record<string, string>>
  readonly file?: string
}

/** `{'geoip', filter = {countries…, continent = {…}}, mmdb = …, cache = n}`: the address is located in one of the countries/continents. */
export interface GeoipCaptureFilter extends CaptureFilterBase {
  readonly kind: 'geoip'
  /** ISO country codes, upper case. */
  readonly countries: readonly string[]
  /** Continent codes, upper case. */
  readonly continents: readonly string[]
  /** MaxMind database path (default `<dataDir>/GeoLite2-Country.mmdb`). */
  readonly mmdb: string
  /** LRU cache size (entries), when given. */
  readonly cache?: number
}

export type CaptureFilterConfig = AclCaptureFilter | ListCaptureFilter | RegexCaptureFilter | PrefixCaptureFilter | GeoipCaptureFilter

// ---------------------------------------------------------------------------------------------
// Filters

/**
 * Pattern dialect of a filter: `lua` (Lua 5.3 patterns, lua-spylog's default engine), `pcre`
 * (lua-spylog `engine = 'pcre'`), `fail2ban` (spylog extension: Python `re` syntax with fail2ban's
 * `<HOST>`/`<F-…>` tags; captures are named by the tags).
 */
export type FilterEngine = 'lua' | 'pcre' | 'fail2ban'
export const FILTER_ENGINES: readonly FilterEngine[] = ['lua', 'pcre', 'fail2ban']

/** Event-log record selection (`events`): source name (`prefix`: written with a trailing `*`) and event ids. */
export interface EventSelector {
  /** A channel (`Security`, `Microsoft-Windows-…/Operational`) or a provider name (`MSSQLSERVER`). */
  readonly source: string
  readonly prefix: boolean
  /** Event ids; undefined: any. */
  readonly ids?: readonly number[]
  /** `channel = …` (native eventlog source): the channel a provider writes to, when it is not a well-known one. */
  readonly channel?: string
}

/** What a filter.d file adds to a fail2ban filter (present only for filters read from fail2ban). */
export interface Fail2banFilterOptions {
  readonly prefregex?: string
  readonly maxlines: number
  readonly datepattern?: string
  readonly usedns: string
  readonly journalmatch?: readonly string[]
  /** fail2ban `logtimezone`: zone of dates written without one (a `parseTimeZone` spec). */
  readonly timezone?: string
}

export interface FilterConfig {
  readonly name: string
  readonly origin: Origin
  /** lua-spylog filters are disabled unless `enabled = true`. */
  readonly enabled: boolean
  /** Names of the SourceConfigs this filter reads (lua-spylog `source`: exactly one). */
  readonly sources: readonly string[]
  readonly engine: FilterEngine
  /** At least one. */
  readonly failregex: readonly string[]
  readonly ignoreregex: readonly string[]
  /** Plain substring that must occur in a line before any regex runs. */
  readonly hint?: string
  /**
   * Capture names per failregex (lua-spylog `capture`, normalised to one list per failregex).
   * Undefined: lua-spylog's positional rule (one capture → host; two → date, host).
   */
  readonly capture?: readonly (readonly string[])[]
  /** Addresses/networks whose matches are dropped (canonical). */
  readonly exclude: readonly string[]
  /** strptime-like format of the captured `date` (spylog extension `date_format`; EPOCH, LEPOCH, TAI64N too). */
  readonly dateFormat?: string
  /** Date detection in the line (spylog extension / fail2ban `datepattern`), used when no `date` is captured. */
  readonly datepattern?: string
  /** After this filter matched a record, later filters of the same source are not tried. */
  readonly stop: boolean
  /** Trap sources: traps accepted, by specific id or enterprise OID. */
  readonly trap?: {readonly specific: readonly number[]; readonly enterprise: readonly string[]}
  /** Event-log sources: records accepted. */
  readonly events?: readonly EventSelector[]
  /** Capture filters applied to this filter's results before they reach the jails. */
  readonly cfilter: readonly CaptureFilterConfig[]
  /** Present for filters read from fail2ban filter.d files (run by Fail2banFilter). */
  readonly fail2ban?: Fail2banFilterOptions
  /** Origins of individual fields, when known (for messages such as a bad regex found later). */
  readonly fieldOrigins?: Readonly<Record<string, Origin>>
}

// ---------------------------------------------------------------------------------------------
// Jails

/**
 * How a jail counts (lua-spylog `counter`):
 * - `increment`: +1 per failure; `accumulate`: + the number in capture `value`; `fixed`: the
 *   value of capture `value` (default 1) is compared with maxretry directly, no window;
 * - `capture`: what is counted and banned (default `host`);
 * - `time`: `filter` counts in event time (captured dates), `internal` in receive time;
 * - `resolution`: sliding window made of buckets of this many seconds (else a window that
 *   restarts after `findtime`).
 */
export interface CounterConfig {
  readonly type: 'increment' | 'accumulate' | 'fixed'
  readonly capture: string
  readonly value: string
  readonly time: 'filter' | 'internal'
  readonly resolution?: number
}

/** One entry of a jail's `action` list: an action name and per-jail parameters (`{name, {params}}`). */
export interface JailActionRef {
  /** Action name (may contain `%{var}` references, expanded when the jail fires). */
  readonly name: string
  readonly parameters?: Readonly<Record<string, ParamValue>>
  readonly origin: Origin
}

/** fail2ban `bantime.increment` settings (jails read from jail.conf). */
export interface BanTimeIncrement {
  readonly enabled: boolean
  readonly factor?: number
  readonly formula?: string
  readonly multipliers?: readonly number[]
  readonly maxtime?: number
  readonly rndtime?: number
  readonly overalljails?: boolean
}

export interface JailConfig {
  readonly name: string
  readonly origin: Origin
  /** Default true (lua-spylog: a jail is enabled unless `enabled = false`). */
  readonly enabled: boolean
  /** Names of the filters feeding this jail. */
  readonly filters: readonly string[]
  /** Window, seconds (unused by `fixed` counters). */
  readonly findtime: number
  readonly maxretry: number
  /** Ban duration, seconds; -1: never lifted. */
  readonly bantime: number
  /** Random extra ban time, up to this many seconds. */
  readonly rndtime?: number
  readonly actions: readonly JailActionRef[]
  /** Jail parameters (templates with `%{name}`), combined with the global ones when the jail fires. */
  readonly parameters: Readonly<Record<string, ParamValue>>
  readonly counter: CounterConfig
  readonly cfilter: readonly CaptureFilterConfig[]
  /** Keep counting after a ban instead of resetting the offender's counter. */
  readonly noreset: boolean
  /** Offenders never banned by this jail (fail2ban `ignoreip`; canonical addresses/networks). */
  readonly ignoreIp: readonly string[]
  /** fail2ban `ignoreip` host names, resolved when the jail runs. */
  readonly ignoreHosts?: readonly string[]
  /** fail2ban `ignoreip` `file:` lists (absolute paths; one address, network or host per line), read when the jail runs. */
  readonly ignoreFiles?: readonly string[]
  /** fail2ban `ignoreself`: never ban the host's own addresses (fail2ban's default: true). */
  readonly ignoreSelf?: boolean
  /** fail2ban `ignorecommand`: a command with `<ip>` and other tags; exit status 0 means "ignore this offender". */
  readonly ignoreCommand?: string
  readonly banTimeIncrement?: BanTimeIncrement
  /**
   * spylog extension: count and ban IPv6 offenders by network, this prefix length (e.g. 64: an
   * attacker rotating addresses inside its /64 is one offender, banned as `2001:db8::/64`).
   * A network holding a never-ban address is not banned as a whole (the address alone is).
   */
  readonly ipv6Prefix?: number
}

// ---------------------------------------------------------------------------------------------
// Actions

interface ActionCommandBase {
  /** Per-command `unique` (overrides the action's). */
  readonly unique?: string
  /** Per-command `options` (override the action's). */
  readonly options?: Readonly<Record<string, ParamValue>>
}

/** An external command: a command line with `<TAG>`s, or a program with an argument string. */
export interface ExternalActionCommand extends ActionCommandBase {
  readonly kind: 'command'
  /** A whole command line when `args` is undefined, else the program. */
  readonly command: string
  readonly args?: string
}

/** A built-in action module (`'@spylog.actions.mail'` → module `spylog.actions.mail`) and its argument string. */
export interface ModuleActionCommand extends ActionCommandBase {
  readonly kind: 'module'
  readonly module: string
  readonly args?: string
}

export type ActionCommand = ExternalActionCommand | ModuleActionCommand

/**
 * Built-in action kinds: spylog does the work itself instead of running command templates.
 * `firewall` bans in the host firewall, `mail` sends a notification, `webhook` POSTs the ban as
 * JSON to a URL, `log` writes a line. Lua configurations call them as modules
 * (`'@spylog.actions.firewall'`, `'@spylog.actions.mail'`, …: see BUILTIN_ACTION_MODULES);
 * the fail2ban reader maps action.d names to them (iptables*, nftables*, firewallcmd*, ipset*,
 * ufw → firewall; sendmail*, mail*, smtp.py → mail).
 */
export type BuiltinActionKind = 'firewall' | 'mail' | 'webhook' | 'log'
export const BUILTIN_ACTION_MODULES: Readonly<Record<BuiltinActionKind, string>> = {
  firewall: 'spylog.actions.firewall',
  mail: 'spylog.actions.mail',
  webhook: 'spylog.actions.webhook',
  log: 'spylog.actions.log',
}

export interface BuiltinAction {
  readonly kind: BuiltinActionKind
  /**
   * The family the action was mapped from: `iptables`, `nftables`, `firewalld`, `ipset`, `ufw`
   * (firewall; where that firewall is not available, as on Windows, the platform's own firewall
   * is used) or `sendmail`, `mail`, `smtp` (mail); `spylog` for a Lua ACTION{} that calls the
   * module itself (`'@spylog.actions.webhook'` …).
   */
  readonly variant: string
  /** The rest of the fail2ban name, split at `-` (`allports`, `multiport`, `whois`, `lines`, `buffered`, …). */
  readonly features: readonly string[]
}

export interface ActionConfig {
  readonly name: string
  readonly origin: Origin
  readonly ban?: ActionCommand
  readonly unban?: ActionCommand
  /** Template identifying duplicate jobs (a job with the same expansion is not queued twice). */
  readonly unique?: string
  /** Default parameters (`<NAME>` tags), overridden by the jail's `{name, {params}}`. */
  readonly parameters: Readonly<Record<string, ParamValue>>
  /** Runner options (`timeout` in milliseconds as lua-spylog, mail server, …). */
  readonly options: Readonly<Record<string, ParamValue>>
  /** fail2ban action.d commands run when the jail starts / stops / checks (jail.conf actions). */
  readonly start?: string
  readonly stop?: string
  readonly check?: string
  /** Set when the action is one of spylog's built-in kinds (`ban`/`unban` then call BUILTIN_ACTION_MODULES[kind]). */
  readonly builtin?: BuiltinAction
}

// ---------------------------------------------------------------------------------------------
// Service settings

export const LOG_LEVELS = ['emerg', 'alert', 'fatal', 'error', 'warning', 'notice', 'info', 'debug', 'trace'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** LOG{}: the service log. */
export interface LogConfig {
  readonly origin?: Origin
  /** Default info. */
  readonly level: LogLevel
  /** Rotating file writer (lua-log's file writer options). */
  readonly file?: {
    readonly logDir: string
    readonly logName: string
    readonly maxSize?: number
    readonly maxRows?: number
    readonly rollCount?: number
    readonly closeFile?: boolean
    readonly flushInterval?: number
    readonly reuse?: boolean
    readonly byDay?: boolean
  }
  /** Log forwarding endpoint (lua-spylog `zmq`). */
  readonly zmq?: string
  readonly multithread?: boolean
  readonly prefix?: string
}

/** One transport endpoint between services: bind or connect to an address. */
export interface Endpoint {
  readonly type: 'bind' | 'connect'
  readonly address: string
  readonly origin: Origin
}

/**
 * CONNECT{}: how separate service processes find each other. Empty when the three services run
 * in one process (the default).
 */
export interface ConnectConfig {
  readonly filter?: {readonly jail?: Endpoint}
  readonly jail?: {readonly filter?: Endpoint; readonly action?: Endpoint}
  readonly action?: {readonly jail?: Endpoint}
}

/** Global jail settings (spylog.lua's `JAIL{ purge_interval = …, default = {…} }`). */
export interface JailGlobals {
  readonly origin?: Origin
  /** How often idle counters are purged, seconds (lua-spylog gives minutes). */
  readonly purgeInterval?: number
  /** `default.parameters`: global action parameters, the fallback of every jail's. */
  readonly parameters: Readonly<Record<string, ParamValue>>
}

export interface SpylogConfig {
  /** The directory the configuration was read from. */
  readonly configDir?: string
  readonly sources: readonly SourceConfig[]
  readonly filters: readonly FilterConfig[]
  readonly jails: readonly JailConfig[]
  readonly actions: readonly ActionConfig[]
  /** WHITE_IP{} (canonical). As in lua-spylog it applies where filters reference it (`exclude = WHITE_IP`). */
  readonly whiteIp: readonly string[]
  readonly log: LogConfig
  readonly connect: ConnectConfig
  readonly jail: JailGlobals
  /** Where persistent state lives (bans, job queue, file positions) and data files (GeoIP db). */
  readonly dataDir?: string
  /** Problems that do not stop the configuration from loading (an action mapped to nothing, a log glob matching no file…), formatted like ConfigError messages. */
  readonly warnings?: readonly string[]
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Several configuration errors reported together (each a ConfigError: file:line: field: message). */
export class ConfigErrors extends Error {
  readonly errors: readonly ConfigError[]

  constructor(errors: readonly ConfigError[]) {
    const n = errors.length
    super(n === 1 ? errors[0]!.message : `${n} configuration errors:\n` + errors.map((e) => '  ' + e.message.replaceAll('\n', '\n    ')).join('\n'))
    this.name = 'ConfigErrors'
    this.errors = errors
  }
}

// ---------------------------------------------------------------------------------------------
// Small shared helpers (readers and runtime agree on them)

/**
 * Canonical form of an address or network (`a.b.c.d`, `a.b.c.d/n`, IPv6 likewise; the network
 * address is masked), or undefined when `s` is neither.
 */
export function canonicalNetwork(s: string): string | undefined {
  const t = s.trim()
  const slash = t.indexOf('/')
  if (slash < 0) return canonicalAddress(t)
  const addr = canonicalAddress(t.slice(0, slash))
  const lenText = t.slice(slash + 1)
  if (addr === undefined || !/^\d{1,3}$/.test(lenText)) return undefined
  const len = Number(lenText)
  const v6 = addr.includes(':')
  if (len > (v6 ? 128 : 32)) return undefined
  const parsed = ipaddr.parse(addr)
  const bytes = parsed.toByteArray()
  for (let bit = len; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7))
  const net = ipaddr.fromByteArray(bytes).toString()
  return `${v6 ? canonicalAddress(net) ?? net : net}/${len}`
}

/**
 * Edit distance between two short strings: insertions, deletions, substitutions and
 * transpositions of adjacent characters (optimal string alignment), so `pcer` is 1 from `pcre`.
 */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0
  if (a.length === 0) return b.length
  if (b.length === 0) return a.length
  let prev2 = new Array<number>(b.length + 1).fill(0)
  let prev = new Array<number>(b.length + 1)
  let cur = new Array<number>(b.length + 1)
  for (let j = 0; j <= b.length; j++) prev[j] = j
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost)
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) d = Math.min(d, prev2[j - 2]! + 1)
      cur[j] = d
    }
    ;[prev2, prev, cur] = [prev, cur, prev2]
  }
  return prev[b.length]!
}

/**
 * The known name closest to `name` (case-insensitive edit distance ≤ 1/3 of its length, at least
 * 1, at most 3), if any. Ties go to a name that `name` is a prefix of (or that is a prefix of it),
 * then to one with the same first letter, then to the first.
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const n = name.toLowerCase()
  const limit = Math.min(3, Math.max(1, Math.floor(n.length / 3)))
  let best: string | undefined
  let bestScore = Infinity
  for (const k of known) {
    const kl = k.toLowerCase()
    const d = levenshtein(n, kl)
    if (d > limit) continue
    const score = d * 4 + (kl.startsWith(n) || n.startsWith(kl) ? 0 : 2) + (kl[0] === n[0] ? 0 : 1)
    if (score < bestScore) {
      bestScore = score
      best = k
    }
  }
  return best
}
