/**
 * `trap:udp://host:port` (SNMP traps) and `eventlog:udp://host:port` (Windows events forwarded
 * as SNMP traps by evntwin / the Event to Trap Translator).
 *
 * Decoding (BER, v1 Trap-PDU, v2c SNMPv2-Trap and Inform) is net-snmp's: its Receiver takes the
 * datagrams of our own socket (so spylog controls the bind address, port 0 in tests, and the
 * error handling), checks the community, and answers informs. v2c notifications are mapped to
 * v1 terms as RFC 3584 §3.2 says, so filters select both with the same `trap` key:
 * `trap.enterprise`, `trap.generic` (0–6), `trap.specific`.
 *
 * What the text filters see follows lua-spylog:
 * - trap sources: lua-spylog tries its failregex on each string-valued variable binding of the
 *   trap in turn. spylog emits one record per string binding (text = the value, field `trap.oid`
 *   = its OID), all carrying the trap's fields; a trap without string bindings yields no record.
 * - eventlog sources: the enterprise OID names the event source
 *   (`1.3.6.1.4.1.311.1.13.1.<len>.<ASCII codes of the source name>`); the specific trap number's
 *   low 16 bits are the event id (its top 2 bits the severity); the bindings under
 *   `1.3.6.1.4.1.311.1.13.1.9999.<n>` are 1 text, 2 user, 3 computer, 4 type, 5 category and from
 *   6 on the insertion strings. One record per event: text = the event text (binding 9999.1), as
 *   lua-spylog's `trap2text`; fields event.source, event.id, event.severity, event.type,
 *   event.user, event.computer, event.category, event.var1…; traps that are not evntwin events
 *   are ignored.
 *
 * Octet strings are decoded as UTF-8 when valid, else as windows-1252 (evntwin sends the ANSI
 * code page; `encoding` overrides).
 */
import type dgram from 'node:dgram'
import {EventEmitter} from 'node:events'
import {TextDecoder} from 'node:util'
import snmp from 'net-snmp'
import type {EventLogSource, TrapSource} from '../config/model.js'
import {RECORD_FIELDS} from '../types.js'
import {Backoff, bindUdp, boundAddress, closeQuietly, ManagedSource} from './backoff.js'
import type {Source, SourceContext} from './source.js'

export interface TrapVarbind {
  oid: string
  /** ASN.1 type (net-snmp ObjectType). */
  type: number
  /** Octet strings as Buffers; integers as numbers; OIDs and addresses as text. */
  value: unknown
}

/** A decoded trap in SNMPv1 terms. */
export interface DecodedTrap {
  /** 1 (v1), 2 (v2c) or 3 (v3 without authentication, accepted only when no community is configured). */
  version: 1 | 2 | 3
  community: string
  enterprise: string
  /** Agent address (v1 agent-addr, v2c snmpTrapAddress), when given. */
  agent?: string
  generic: number
  specific: number
  /** The bindings of the trap itself (v2c: without sysUpTime, snmpTrapOID and the RFC 3584 extras). */
  varbinds: TrapVarbind[]
}

export type TrapDecodeResult = {trap: DecodedTrap} | {error: string; rejected?: boolean}

const OID_SYS_UPTIME = '1.3.6.1.2.1.1.3.0'
const OID_TRAP_OID = '1.3.6.1.6.3.1.1.4.1.0'
const OID_TRAP_ENTERPRISE = '1.3.6.1.6.3.1.1.4.3.0'
const OID_TRAP_ADDRESS = '1.3.6.1.6.3.18.1.3.0'
const OID_TRAP_COMMUNITY = '1.3.6.1.6.3.18.1.4.0'
const OID_GENERIC_TRAPS = '1.3.6.1.6.3.1.1.5.'

/** A socket stand-in for net-snmp's Listener when we feed it datagrams ourselves. */
class NoSocket extends EventEmitter {
  bind(): void {}
  close(cb?: () => void): void {
    cb?.()
  }
  send(): void {}
  address(): {address: string; port: number} {
    return {address: '0.0.0.0', port: 0}
  }
}

interface PduLike {
  type: number
  enterprise?: string
  agentAddr?: string
  generic?: number
  specific?: number
  community?: string
  user?: string
  varbinds?: {oid: string; type: number; value: unknown}[]
}

/**
 * One net-snmp Receiver used as a decoder: `feed` hands it a datagram (with the socket an inform
 * response goes out on) and returns what it made of it, synchronously.
 */
export class TrapDecoder {
  private readonly receiver: {onMsg(socket: unknown, buffer: Buffer, rinfo: unknown): void; getAuthorizer(): {addCommunity(c: string): void}}
  private result: TrapDecodeResult | undefined
  private readonly dummy = new NoSocket()

  /** @param communities accepted communities; undefined: any */
  constructor(communities?: readonly string[]) {
    this.receiver = snmp.createReceiver(
      {disableAuthorization: communities === undefined, includeAuthentication: true, dgramModule: {createSocket: () => new NoSocket()}},
      (error: Error | null, data: {pdu: PduLike; rinfo: unknown} | undefined) => {
        if (error) {
          const rejected = /community|user/i.test(error.message)
          this.result = {error: error.message, rejected}
        } else if (data) this.result = toTrap(data.pdu)
      },
    )
    for (const c of communities ?? []) this.receiver.getAuthorizer().addCommunity(c)
  }

  /** Decodes one datagram. Never throws. */
  feed(buf: Buffer, rinfo: dgram.RemoteInfo | {address: string; port: number; family?: string; size?: number} = {address: '0.0.0.0', port: 0}, socket?: dgram.Socket): TrapDecodeResult {
    this.result = undefined
    try {
      this.receiver.onMsg(socket ?? this.dummy, buf, rinfo)
    } catch (e) {
      return {error: (e as Error).message}
    }
    const r = this.result ?? {error: 'not a trap'}
    this.result = undefined
    return r
  }
}

function toTrap(pdu: PduLike): TrapDecodeResult {
  const vbs = Array.isArray(pdu.varbinds) ? pdu.varbinds : []
  const community = typeof pdu.community === 'string' ? pdu.community : ''
  if (pdu.type === snmp.PduType.Trap) {
    if (typeof pdu.enterprise !== 'string' || typeof pdu.generic !== 'number' || typeof pdu.specific !== 'number') return {error: 'incomplete v1 trap'}
    return {trap: {version: 1, community, enterprise: pdu.enterprise, agent: pdu.agentAddr, generic: pdu.generic, specific: pdu.specific, varbinds: vbs}}
  }
  // SNMPv2-Trap / Inform: sysUpTime.0, snmpTrapOID.0, then the bindings (RFC 3416 §4.2.6).
  const trapOid = vbs.find((v) => v.oid === OID_TRAP_OID)?.value
  if (typeof trapOid !== 'string' || !/^\d+(\.\d+)+$/.test(trapOid)) return {error: 'v2c notification without snmpTrapOID.0'}
  let enterprise: string
  let generic: number
  let specific: number
  const last = Number(trapOid.slice(trapOid.lastIndexOf('.') + 1))
  const ent = vbs.find((v) => v.oid === OID_TRAP_ENTERPRISE)?.value
  if (trapOid.startsWith(OID_GENERIC_TRAPS) && trapOid.split('.').length === 10 && last >= 1 && last <= 6) {
    generic = last - 1
    specific = 0
    enterprise = typeof ent === 'string' ? ent : trapOid.slice(0, trapOid.lastIndexOf('.'))
  } else {
    generic = 6
    specific = last
    let e = trapOid.slice(0, trapOid.lastIndexOf('.'))
    if (e.endsWith('.0')) e = e.slice(0, -2)
    enterprise = e
  }
  const addr = vbs.find((v) => v.oid === OID_TRAP_ADDRESS)?.value
  const skip = new Set([OID_SYS_UPTIME, OID_TRAP_OID, OID_TRAP_ENTERPRISE, OID_TRAP_ADDRESS, OID_TRAP_COMMUNITY])
  return {trap: {version: typeof pdu.user === 'string' ? 3 : 2, community, enterprise, agent: typeof addr === 'string' ? addr : undefined, generic, specific, varbinds: vbs.filter((v) => !skip.has(v.oid))}}
}

const utf8 = new TextDecoder('utf-8', {fatal: true})
const cp1252 = new TextDecoder('windows-1252')

/** Text of a binding value: octet strings decoded (UTF-8 when valid, else `fallback`), numbers and OIDs as text. */
export function varbindText(v: TrapVarbind, fallback: TextDecoder = cp1252): string | undefined {
  if (v.type !== snmp.ObjectType.OctetString) return undefined
  const b = v.value
  if (!Buffer.isBuffer(b)) return typeof b === 'string' ? b : undefined
  try {
    return utf8.decode(b)
  } catch {
    return fallback.decode(b)
  }
}

/** A record a trap yields: text and fields. */
export interface TrapRecord {
  text: string
  fields: Record<string, string | number>
}

/** lua-spylog's trap semantics: one record per string binding, with the trap's fields. */
export function trapRecords(t: DecodedTrap, peer: string, fallback?: TextDecoder): TrapRecord[] {
  const base: Record<string, string | number> = {
    [RECORD_FIELDS.trapEnterprise]: t.enterprise,
    [RECORD_FIELDS.trapGeneric]: t.generic,
    [RECORD_FIELDS.trapSpecific]: t.specific,
    [RECORD_FIELDS.peer]: peer,
    'trap.version': t.version === 1 ? 'v1' : t.version === 2 ? 'v2c' : 'v3',
  }
  if (t.agent !== undefined) base['trap.agent'] = t.agent
  const out: TrapRecord[] = []
  for (const v of t.varbinds) {
    const text = varbindText(v, fallback)
    if (text === undefined) continue
    out.push({text, fields: {...base, 'trap.oid': v.oid}})
  }
  return out
}

/** The evntwin enterprise prefix (Microsoft's event-log traps). */
export const EVENTLOG_OID = '1.3.6.1.4.1.311.1.13.1'
const EVENT_FIELDS: Readonly<Record<string, string>> = {'2': 'event.user', '3': 'event.computer', '4': 'event.type', '5': 'event.category'}
const EVENT_TYPES: Readonly<Record<string, string>> = {'1': 'Error', '2': 'Warning', '4': 'Informational', '8': 'Success Audit', '16': 'Failure Audit'}
const EVENT_SEVERITIES = ['Success', 'Informational', 'Warning', 'Error'] as const

/** The event source name of an evntwin enterprise OID (`…13.1.<len>.<codes>`), or undefined. */
export function eventSourceOfOid(oid: string): string | undefined {
  if (!oid.startsWith(EVENTLOG_OID + '.')) return undefined
  const parts = oid.slice(EVENTLOG_OID.length + 1).split('.')
  const len = Number(parts[0])
  if (!Number.isInteger(len) || len < 1 || len > 255 || len === 9999 || parts.length < len + 1) return undefined
  let name = ''
  for (let i = 1; i <= len; i++) {
    const c = Number(parts[i])
    if (!Number.isInteger(c) || c < 1 || c > 255) return undefined
    name += String.fromCharCode(c)
  }
  return name
}

/** An evntwin event trap as one record (lua-spylog's `trap2event`/`trap2text`); undefined when it is not one. */
export function eventRecord(t: DecodedTrap, peer: string, fallback?: TextDecoder): TrapRecord | undefined {
  const source = eventSourceOfOid(t.enterprise)
  if (source === undefined) return undefined
  const fields: Record<string, string | number> = {
    [RECORD_FIELDS.eventSource]: source,
    [RECORD_FIELDS.eventId]: t.specific & 0xffff,
    'event.severity': EVENT_SEVERITIES[(t.specific >>> 30) & 3]!,
    [RECORD_FIELDS.trapEnterprise]: t.enterprise,
    [RECORD_FIELDS.trapGeneric]: t.generic,
    [RECORD_FIELDS.trapSpecific]: t.specific,
    [RECORD_FIELDS.peer]: peer,
  }
  if (t.agent !== undefined) fields['trap.agent'] = t.agent
  let text: string | undefined
  const prefix = EVENTLOG_OID + '.9999.'
  for (const v of t.varbinds) {
    if (!v.oid.startsWith(prefix)) continue
    const n = v.oid.slice(prefix.length).split('.')[0]!
    const value = varbindText(v, fallback) ?? (typeof v.value === 'number' || typeof v.value === 'string' ? String(v.value) : undefined)
    if (value === undefined) continue
    if (n === '1') text ??= value
    else if (n === '4') fields['event.type'] = EVENT_TYPES[value] ?? value
    else if (EVENT_FIELDS[n] !== undefined) fields[EVENT_FIELDS[n]] = value
    else if (/^\d+$/.test(n) && Number(n) >= 6) fields[`event.var${Number(n) - 5}`] = value
  }
  if (text === undefined) return undefined
  return {text, fields}
}

export interface TrapOptions {
  /** First retry delay after a bind failure, ms (default 1000; doubles up to 60 s). */
  retryMs?: number
  /** Decoding of octet strings that are not valid UTF-8 (default windows-1252). */
  encoding?: string
}

/** The SNMP trap receiver behind `trap:` and `eventlog:udp://` sources. */
export class TrapReceiver extends ManagedSource implements Source {
  readonly kind: 'trap' | 'eventlog'
  private sock: dgram.Socket | undefined
  private readonly decoder: TrapDecoder
  private readonly fallback: TextDecoder
  /** Traps received that yielded no record (no string binding, not an evntwin event). */
  ignored = 0

  constructor(
    readonly cfg: TrapSource | EventLogSource,
    ctx: SourceContext,
    opts: TrapOptions = {},
  ) {
    super(cfg.name, ctx, new Backoff(opts.retryMs ?? 1000, 60_000))
    this.kind = cfg.kind
    this.decoder = new TrapDecoder(cfg.kind === 'trap' ? cfg.community : undefined)
    this.fallback = new TextDecoder(opts.encoding ?? 'windows-1252')
  }

  address(): {address: string; port: number} | undefined {
    return boundAddress(this.sock)
  }

  get boundPort(): number | undefined {
    return this.address()?.port
  }

  protected async open(): Promise<void> {
    this.sock = await bindUdp(this.cfg.host, this.cfg.port, (msg, rinfo) => this.datagram(msg, rinfo), (e) => {
      this.stats.errors++
      this.stats.lastError = e.message
    })
    this.ctx.log.info(`${this.label} ${this.kind === 'trap' ? 'SNMP trap' : 'event-log trap'} receiver listening on udp://${this.cfg.host}:${this.boundPort}`)
  }

  protected async close(): Promise<void> {
    const s = this.sock
    this.sock = undefined
    await closeQuietly(s)
  }

  private datagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const r = this.decoder.feed(msg, rinfo, this.sock)
    if ('error' in r) {
      this.drops.drop(r.rejected ? `trap rejected from ${rinfo.address}: ${r.error}` : `malformed SNMP packet from ${rinfo.address}: ${r.error}`)
      return
    }
    if (this.kind === 'eventlog') {
      const e = eventRecord(r.trap, rinfo.address, this.fallback)
      if (e === undefined) {
        this.ignored++
        return
      }
      this.emitter.emit(e.text, e.fields, undefined, msg.length)
      return
    }
    const recs = trapRecords(r.trap, rinfo.address, this.fallback)
    if (recs.length === 0) this.ignored++
    recs.forEach((x, i) => this.emitter.emit(x.text, x.fields, undefined, i === 0 ? msg.length : 0))
  }
}

/** The source of a `trap:udp://` or `eventlog:udp://` configuration. */
export function createTrapSource(cfg: TrapSource | EventLogSource, ctx: SourceContext, opts?: TrapOptions): TrapReceiver {
  return new TrapReceiver(cfg, ctx, opts)
}
