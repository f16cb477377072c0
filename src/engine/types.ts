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
  /** Structured fields (event id, channel, syslog facility, …). */
  fields?: Record<string, string | number>
}

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
