/**
 * The records that flow through the pipeline (see docs/architecture.md):
 * sources → LogRecord → filters → Failure → jails → Ticket → actions.
 */

/** One line or event from a source. */
export interface LogRecord {
  /** Name of the source that produced it. */
  source: string
  /** The text filters match against. */
  text: string
  /** Receive time, Unix seconds (may have a fraction). */
  received: number
  /**
   * Event time given by the source itself (journal entry time, event-log record time, syslog
   * timestamp), Unix seconds. When set, filters take it instead of reading a date from the text.
   */
  time?: number
  /** Structured fields (event id, channel, syslog facility, …); names in RECORD_FIELDS where one applies. */
  fields?: Record<string, string | number>
}

/**
 * Field names sources give structured data under, so that filters (lua-spylog's `trap` and
 * `events` keys) and tests agree on them. EventData values of a Windows event keep their own
 * names (`IpAddress`, `TargetUserName`, …) next to these.
 */
export const RECORD_FIELDS = {
  /** File sources: the path the line was read from. */
  file: 'file',
  /** Syslog: numeric facility and severity, host name, app name (RFC 5424) or tag (RFC 3164), process id, message id. */
  facility: 'facility',
  severity: 'severity',
  host: 'host',
  app: 'app',
  pid: 'pid',
  msgid: 'msgid',
  /** Network sources: the peer's address. */
  peer: 'peer',
  /** SNMP traps: enterprise OID (dotted text), generic and specific trap numbers (v2c: from snmpTrapOID). */
  trapEnterprise: 'trap.enterprise',
  trapGeneric: 'trap.generic',
  trapSpecific: 'trap.specific',
  /** Windows events (event log, or SNMP traps from the event-to-trap translator): provider/source name, event id, channel, record id. */
  eventSource: 'event.source',
  eventId: 'event.id',
  eventChannel: 'event.channel',
  eventRecord: 'event.record',
  /** Journal: the systemd unit and syslog identifier. */
  unit: 'unit',
} as const

/** A filter's verdict on one record (or a group of records, for multi-line filters). */
export interface Failure {
  /** Filter name. */
  filter: string
  /** Offender id: usually a normalised address, else the captured `fid`. */
  id: string
  /** The address, when the offender id is not itself an address. */
  ip?: string
  /** Event time, Unix seconds (fraction allowed); undefined when the line has no usable date. */
  time: number | undefined
  /** Named captures (user, port, …), plus merged multi-line data. */
  data: Record<string, unknown>
  /** The lines that make up this failure. */
  lines: string[]
}

/**
 * A jail's decision to ban one offender. Made by a jail (src/engine/jails), consumed by the
 * action queue (src/engine/actions), which turns it into one ban job and one scheduled unban
 * job per action of the jail.
 */
export interface Ticket {
  /** Unique id of this ban (the `<BAN_UUID>` tag; also the key of the stored ban). */
  uuid: string
  jail: string
  /** Filter of the failure that tripped the jail (the `<FILTER>` tag). */
  filter: string
  /** What is banned: an address, a network (`2001:db8::/64` for IPv6 prefix bans), or another captured value for non-address counters. */
  id: string
  /** Whether `id` is an address or network (firewall actions skip tickets that are not). */
  isAddress: boolean
  /** Ban start, Unix seconds (clock time the ticket was made; event time in a dry-run replay). */
  time: number
  /** Ban duration in seconds; -1 for a ban that is never lifted. */
  bantime: number
  /** How many earlier bans of this offender the ban history holds (0 for a first ban). */
  banCount: number
  /** Captures of the failures (`<user>` …, the last value wins) plus the jail's parameters. */
  data: Record<string, unknown>
  /** The failures that led to the ban, oldest first (at most the jail's maxretry, bounded). */
  failures: Failure[]
  /** Set by `spylog ban`: a ban an administrator asked for. */
  manual?: boolean
}
