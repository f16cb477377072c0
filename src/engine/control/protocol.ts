/**
 * The control channel between the `spylog` CLI and a running daemon: what the daemon offers
 * (ControlTarget) and the wire protocol (one JSON object per line, both ways).
 *
 *   request:  {"v":1,"id":7,"token":"…","cmd":"ban","args":{"jail":"sshd","ids":["192.0.2.1"]}}
 *   response: {"v":1,"id":7,"ok":true,"result":{…}}
 *             {"v":1,"id":7,"ok":false,"error":{"code":"not-found","message":"no jail \"sshd\""}}
 *
 * Every type here is plain JSON (no Date, Map, undefined in arrays), so a result travels over the
 * socket unchanged. Times are Unix seconds; durations are seconds, -1 meaning "never ends".
 */

import type {Source} from '../sources/source.js'
import {clip} from '../text.js'
import type {Failure, Ticket} from '../types.js'

/** Version of the wire protocol. A request or response of another version is refused with a clear error. */
export const PROTOCOL_VERSION = 1

/** Longest request line the server accepts (bytes, without the newline). */
export const MAX_REQUEST_BYTES = 1 << 20

/** Longest response line the client accepts (bytes). */
export const MAX_RESPONSE_BYTES = 256 << 20

// ---------------------------------------------------------------------------------------------
// What the daemon reports

/** A source and its counters (SourceStats of src/engine/sources/source.ts, plus identity). */
export interface SourceStatus {
  name: string
  /** Source kind (`file`, `journal`, `syslog-udp`, …). */
  kind: string
  /** What it reads: a path, a listen address, a journal match (for display). */
  spec?: string
  records: number
  bytes: number
  errors: number
  drops: number
  /** Receive time of the last record, Unix seconds. */
  lastRecord?: number
  state: 'starting' | 'running' | 'retrying' | 'failed' | 'stopped'
  lastError?: string
}

/** One jail in `spylog status`. */
export interface JailSummary {
  name: string
  /** Offenders with failures counted but not (yet) banned. */
  currentlyFailed: number
  /** Failures seen since start (survives a reload of an unchanged jail). */
  totalFailed: number
  currentlyBanned: number
  totalBanned: number
  /** Filters feeding the jail. */
  filters: string[]
  /** Sources feeding those filters. */
  sources: string[]
}

/** `spylog status`. */
export interface StatusResult {
  /** Daemon version (package version). */
  version: string
  pid: number
  /** Start time, Unix seconds. */
  started: number
  jails: JailSummary[]
  sources: SourceStatus[]
  /** Jobs waiting in the action queue. */
  queueDepth?: number
}

/** One failure behind a ban (a Failure without its captures' non-JSON values). */
export interface FailureInfo {
  filter: string
  /** Event time, Unix seconds, when the line had one. */
  time?: number
  /** The log lines of the failure. */
  lines: string[]
  /** Captures (user, port, …) as strings. */
  data?: Record<string, string>
}

/** One active ban. */
export interface BanInfo {
  jail: string
  id: string
  /** Ban start, Unix seconds. */
  time: number
  /** Ban duration, seconds; -1 permanent. */
  bantime: number
  /** Seconds until the unban, at the time of the reply; -1 permanent. */
  timeLeft: number
  /** Earlier bans of this offender (0 for a first ban). */
  banCount: number
  /** Set for a ban made by `spylog ban`. */
  manual?: boolean
}

/** `spylog status <jail>`: fail2ban-client's tree. */
export interface JailStatus {
  name: string
  filter: {
    filters: string[]
    /** The jail's sources (files, sockets, …) with their counters. */
    sources: SourceStatus[]
    currentlyFailed: number
    totalFailed: number
  }
  actions: {
    /** Action names. */
    names: string[]
    currentlyBanned: number
    totalBanned: number
    /** Active bans, soonest unban first. */
    banned: BanInfo[]
  }
}

/** An active ban with the failures that led to it (`spylog banned`). */
export interface BanDetail extends BanInfo {
  failures: FailureInfo[]
}

/** `spylog banned [ADDR…]`: per asked address (or every banned one), its bans. */
export interface BannedResult {
  entries: {id: string; bans: BanDetail[]}[]
}

/** `spylog ban <jail> <ADDR…>`. */
export interface BanResult {
  jail: string
  /** Newly banned (queued through the action queue). */
  banned: string[]
  /** Already banned in this jail (left as they are). */
  already: string[]
  /** Refused (whitelisted, local, not an address the jail's actions can ban…) and why. */
  refused: {id: string; reason: string}[]
}

/** `spylog unban <ADDR…>` / `--all`. */
export interface UnbanResult {
  /** Bans lifted (queued unban jobs), one entry per jail. */
  unbanned: {jail: string; id: string}[]
  /** Asked ids that no jail (or not the given jail) bans. */
  notBanned: string[]
}

/** `spylog reload [jail]`: either done, or the configuration errors (the running configuration stays). */
export type ReloadResult = {ok: true; jails: string[]} | {ok: false; errors: string[]}

/** `spylog ping`. */
export interface PingResult {
  pong: true
  version: string
  pid: number
}

/** A latency histogram: cumulative bucket counts, Prometheus style (`le` in seconds, ascending, without +Inf). */
export interface HistogramSnapshot {
  buckets: {le: number; count: number}[]
  /** Number of observations (the +Inf bucket). */
  count: number
  /** Sum of observed seconds. */
  sum: number
}

/** The numbers behind the Prometheus endpoint. */
export interface MetricsSnapshot {
  /** Start time of the daemon, Unix seconds. */
  started: number
  sources: {name: string; kind: string; records: number; bytes: number; errors: number; drops: number; state: SourceStatus['state']}[]
  filters: {
    name: string
    /** Lines (records) tested. */
    lines: number
    /** Lines that gave a failure. */
    matched: number
    /** Lines an ignoreregex (or exclusion) dropped. */
    ignored: number
    /** Time spent matching one line, seconds. */
    matchSeconds?: HistogramSnapshot
  }[]
  jails: {name: string; currentlyFailed: number; totalFailed: number; currentlyBanned: number; totalBanned: number}[]
  /** Jobs waiting in the action queue. */
  queueDepth: number
  actions: {name: string; jobs: number; failures: number}[]
}

/**
 * What the daemon implements for the control channel. Methods may be sync or async; they throw
 * ControlError for a request that cannot be served (unknown jail …); any other error is reported
 * to the client as `failed` with its message, and logged.
 */
export interface ControlTarget {
  status(): StatusResult | Promise<StatusResult>
  /** Throws ControlError('not-found') for an unknown jail. */
  jailStatus(name: string): JailStatus | Promise<JailStatus>
  /** Active bans of the given ids (canonical or as typed), or of every banned id when none given. */
  banned(ids?: string[]): BannedResult | Promise<BannedResult>
  /** Ban through the same queue as automatic bans (so the ban survives a restart). */
  ban(jail: string, ids: string[]): BanResult | Promise<BanResult>
  /** Unban ids (or every ban: `{all: true}`) in every jail, or only in `jail`. */
  unban(ids: string[] | {all: true}, jail?: string): UnbanResult | Promise<UnbanResult>
  /** Re-read the configuration (everything, or one jail). A configuration error keeps the running one. */
  reload(jail?: string): ReloadResult | Promise<ReloadResult>
  /** Stop the daemon. Called after the reply to `stop` was written. */
  stop(): void | Promise<void>
  ping(): PingResult | Promise<PingResult>
  metrics(): MetricsSnapshot | Promise<MetricsSnapshot>
}

// ---------------------------------------------------------------------------------------------
// Wire format

export const COMMANDS = ['status', 'banned', 'ban', 'unban', 'reload', 'stop', 'ping', 'metrics'] as const
export type CommandName = (typeof COMMANDS)[number]

/** Arguments of each command. */
export interface CommandArgs {
  status: {jail?: string}
  banned: {ids?: string[]}
  ban: {jail: string; ids: string[]}
  unban: {ids?: string[]; all?: boolean; jail?: string}
  reload: {jail?: string}
  stop: Record<string, never>
  ping: Record<string, never>
  metrics: Record<string, never>
}

/** Result of each command. */
export interface CommandResults {
  status: StatusResult | JailStatus
  banned: BannedResult
  ban: BanResult
  unban: UnbanResult
  reload: ReloadResult
  stop: {stopping: true}
  ping: PingResult
  metrics: MetricsSnapshot
}

export interface Request<C extends CommandName = CommandName> {
  v: number
  id: number | string
  token: string
  cmd: C
  args: CommandArgs[C]
}

/**
 * Error codes. The CLI maps them to exit codes: `failed`, `not-found`, `busy` → 1 (the request
 * failed); the others → 2 (usage or configuration: wrong token, other version, bad request).
 */
export const ERROR_CODES = ['version', 'unauthorized', 'bad-request', 'too-large', 'unknown-command', 'invalid', 'not-found', 'busy', 'failed'] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

export interface ErrorBody {
  code: ErrorCode
  message: string
}

export type Response<T = unknown> =
  | {v: number; id: number | string | null; ok: true; result: T}
  | {v: number; id: number | string | null; ok: false; error: ErrorBody}

/** Thrown by a ControlTarget (or the server) for a request that cannot be served; travels as `error`. */
export class ControlError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'ControlError'
  }
}

/** The message both sides give for a version mismatch. */
export function versionMismatch(daemon: unknown, client: unknown): string {
  const v = (x: unknown): string => (typeof x === 'number' && Number.isFinite(x) ? `v${x}` : 'an unknown version')
  return `version mismatch: daemon protocol ${v(daemon)}, client protocol ${v(client)} (run the spylog that started the daemon, or restart the daemon after an upgrade)`
}

/** Most ids one request may carry. */
export const MAX_IDS = 10_000
/** Longest id (address, network or captured value). */
export const MAX_ID_LENGTH = 256

/**
 * Checks a parsed request's command and arguments; returns them typed, or throws
 * ControlError('unknown-command' | 'bad-request'). Version and token are checked by the server.
 */
export function validateArgs(cmd: unknown, args: unknown): {cmd: CommandName; args: CommandArgs[CommandName]} {
  if (typeof cmd !== 'string' || !(COMMANDS as readonly string[]).includes(cmd)) {
    throw new ControlError('unknown-command', `unknown command ${JSON.stringify(String(cmd).slice(0, 64))} (known: ${COMMANDS.join(', ')})`)
  }
  const a: Record<string, unknown> = args === undefined || args === null ? {} : (args as Record<string, unknown>)
  if (typeof a !== 'object' || Array.isArray(a)) throw new ControlError('bad-request', `${cmd}: args must be an object`)
  const str = (k: string, required: boolean): string | undefined => {
    const x = a[k]
    if (x === undefined) {
      if (required) throw new ControlError('bad-request', `${cmd}: missing ${k}`)
      return undefined
    }
    if (typeof x !== 'string' || x === '' || x.length > MAX_ID_LENGTH) throw new ControlError('bad-request', `${cmd}: ${k} must be a non-empty string of at most ${MAX_ID_LENGTH} characters`)
    return x
  }
  const ids = (required: boolean): string[] | undefined => {
    const x = a.ids
    if (x === undefined) {
      if (required) throw new ControlError('bad-request', `${cmd}: missing ids`)
      return undefined
    }
    if (!Array.isArray(x) || x.length > MAX_IDS) throw new ControlError('bad-request', `${cmd}: ids must be an array of at most ${MAX_IDS} strings`)
    for (const i of x) {
      if (typeof i !== 'string' || i === '' || i.length > MAX_ID_LENGTH) throw new ControlError('bad-request', `${cmd}: each id must be a non-empty string of at most ${MAX_ID_LENGTH} characters`)
    }
    if (required && x.length === 0) throw new ControlError('bad-request', `${cmd}: ids must not be empty`)
    return x as string[]
  }
  switch (cmd as CommandName) {
    case 'status':
      return {cmd: 'status', args: {jail: str('jail', false)}}
    case 'reload':
      return {cmd: 'reload', args: {jail: str('jail', false)}}
    case 'banned':
      return {cmd: 'banned', args: {ids: ids(false)}}
    case 'ban':
      return {cmd: 'ban', args: {jail: str('jail', true)!, ids: ids(true)!}}
    case 'unban': {
      const all = a.all
      if (all !== undefined && typeof all !== 'boolean') throw new ControlError('bad-request', 'unban: all must be a boolean')
      const list = ids(false)
      if (all === true && list !== undefined && list.length > 0) throw new ControlError('bad-request', 'unban: give ids or all, not both')
      if (all !== true && (list === undefined || list.length === 0)) throw new ControlError('bad-request', 'unban: give ids, or all')
      return {cmd: 'unban', args: {ids: list, all: all === true ? true : undefined, jail: str('jail', false)}}
    }
    default:
      return {cmd: cmd as CommandName, args: {}}
  }
}

// ---------------------------------------------------------------------------------------------
// Conversions the daemon uses to fill replies

/** Longest capture value or log line kept in a reply (longer ones are cut, with an ellipsis). */
const MAX_TEXT = 4096

function cut(s: string): string {
  return clip(s, MAX_TEXT)
}

/** A Failure as plain JSON: captures stringified (objects as JSON), long texts cut. */
export function failureInfo(f: Failure): FailureInfo {
  const data: Record<string, string> = {}
  for (const [k, v] of Object.entries(f.data)) {
    if (v === undefined || v === null) continue
    data[k] = cut(typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v))
  }
  const out: FailureInfo = {filter: f.filter, lines: f.lines.map(cut)}
  if (f.time !== undefined) out.time = f.time
  if (Object.keys(data).length > 0) out.data = data
  return out
}

/** A Ticket as an active ban, with the time left at `now` (Unix seconds). */
export function banInfo(t: Ticket, now: number): BanInfo {
  const b: BanInfo = {
    jail: t.jail,
    id: t.id,
    time: t.time,
    bantime: t.bantime,
    timeLeft: t.bantime < 0 ? -1 : Math.max(0, Math.round(t.time + t.bantime - now)),
    banCount: t.banCount,
  }
  if (t.manual === true) b.manual = true
  return b
}

/** A Ticket with its failures (`spylog banned`). */
export function banDetail(t: Ticket, now: number): BanDetail {
  return {...banInfo(t, now), failures: t.failures.map(failureInfo)}
}

/** A running Source and its counters; `spec` says what it reads (path, address) for display. */
export function sourceStatus(s: Pick<Source, 'name' | 'kind' | 'stats'>, spec?: string): SourceStatus {
  const st = s.stats
  const out: SourceStatus = {name: s.name, kind: s.kind, records: st.records, bytes: st.bytes, errors: st.errors, drops: st.drops, state: st.state}
  if (spec !== undefined) out.spec = spec
  if (st.lastRecord !== undefined) out.lastRecord = st.lastRecord
  if (st.lastError !== undefined) out.lastError = st.lastError
  return out
}
