/**
 * Syslog message parsing (pure functions; the syslog source feeds them).
 *
 * - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD…] MSG` (`-` for absent fields);
 *   structured data is flattened into fields `sd.<SD-ID>.<PARAM>`; a BOM before MSG is removed.
 * - RFC 3164 (BSD): `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, also with an RFC 3339 timestamp
 *   (rsyslog's forward format). A date without a year is taken in the current year (the previous
 *   one when that would put it more than a day in the future), in local time.
 * - Anything else (no `<PRI>`) is kept whole as the message.
 *
 * What filters see (`LogRecord.text`) is the MSG part only, as lua-spylog hands its filters the
 * message of a syslog packet; the header (facility, severity, host, app/tag, pid, msgid) goes to
 * fields and the timestamp to `LogRecord.time`, which date-less filters (and fail2ban filters,
 * whose date detection finds no date in a bare message) take as the event time.
 */
import {RECORD_FIELDS} from '../types.js'

export interface SyslogMessage {
  format: 'rfc5424' | 'rfc3164' | 'raw'
  facility?: number
  severity?: number
  /** Event time from the header, Unix seconds, when present and valid. */
  time?: number
  host?: string
  app?: string
  pid?: string
  msgid?: string
  /** Structured data, flattened: `sd.<id>.<param>` → value. */
  sd?: Record<string, string>
  message: string
}

const MONTHS: Readonly<Record<string, number>> = {Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11}

/** `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (RFC 3339 as RFC 5424 restricts it). */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:?\d{2})$/
/** `Mmm dd hh:mm:ss` (day space-padded or not), optional fraction. */
const BSD_TIME = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?= |$)/

/** Parses an RFC 3339 timestamp to Unix seconds; undefined when invalid (Feb 30, hour 25 …). */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s)
  if (m === null) return undefined
  const [y, mo, d, h, mi, se] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number]
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return undefined
  const ms = Date.UTC(y, mo - 1, d, h, mi, Math.min(se, 59))
  const check = new Date(ms)
  if (check.getUTCDate() !== d || check.getUTCMonth() !== mo - 1) return undefined
  let offset = 0
  const z = m[8]!
  if (z !== 'Z' && z !== 'z') {
    const sign = z[0] === '-' ? -1 : 1
    const digits = z.slice(1).replace(':', '')
    const oh = Number(digits.slice(0, 2))
    const om = Number(digits.slice(2))
    if (oh > 23 || om > 59) return undefined
    offset = sign * (oh * 60 + om) * 60
  }
  const frac = m[7] !== undefined ? Number(m[7]) : 0
  return ms / 1000 + frac - offset
}

/** Parses `Mmm dd hh:mm:ss` (local time, year inferred relative to `now`, ms). */
function parseBsdTime(m: RegExpExecArray, now: number): number | undefined {
  const mon = MONTHS[m[1]!]
  if (mon === undefined) return undefined
  const d = Number(m[2])
  const h = Number(m[3])
  const mi = Number(m[4])
  const s = Number(m[5])
  if (d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined
  const year = new Date(now).getFullYear()
  for (const y of [year, year - 1]) {
    const t = new Date(y, mon, d, h, mi, Math.min(s, 59))
    if (t.getDate() !== d) continue // Feb 29 of a non-leap year, Apr 31 …
    const ms = t.getTime()
    if (ms > now + 86_400_000 && y === year) continue // December's message received in January
    return ms / 1000 + (m[6] !== undefined ? Number(m[6]) : 0)
  }
  return undefined
}

/** Strips line endings and NULs at the end (a datagram or frame ending in "\n" or "\0"). */
function trimEnd(s: string): string {
  let e = s.length
  while (e > 0) {
    const c = s.charCodeAt(e - 1)
    if (c === 10 || c === 13 || c === 0) e--
    else break
  }
  return e === s.length ? s : s.slice(0, e)
}

function nil(v: string): string | undefined {
  return v === '-' || v === '' ? undefined : v
}

/** Reads the next space-delimited token from `s` at `i`: [token, index after the space] or undefined at the end. */
function token(s: string, i: number): [string, number] | undefined {
  if (i >= s.length) return undefined
  const sp = s.indexOf(' ', i)
  if (sp < 0) return [s.slice(i), s.length]
  return [s.slice(i, sp), sp + 1]
}

/**
 * Parses RFC 5424 structured data at `i`. Returns the flattened params and the index after the
 * SD, or undefined when it is malformed.
 */
function parseSd(s: string, i: number, out: Record<string, string>): number | undefined {
  let count = 0
  while (i < s.length && s.charCodeAt(i) === 91 /* [ */) {
    if (++count > 64) return undefined
    i++
    let j = i
    while (j < s.length && !' =]"'.includes(s[j]!)) j++
    const id = s.slice(i, j)
    if (id === '' || j >= s.length) return undefined
    i = j
    for (;;) {
      const c = s[i]
      if (c === ']') {
        i++
        break
      }
      if (c !== ' ') return undefined
      i++
      j = i
      while (j < s.length && !' =]"'.includes(s[j]!)) j++
      const name = s.slice(i, j)
      if (name === '' || s[j] !== '=' || s[j + 1] !== '"') return undefined
      i = j + 2
      let value = ''
      let start = i
      for (;;) {
        if (i >= s.length) return undefined
        const ch = s.charCodeAt(i)
        if (ch === 92 /* \ */ && i + 1 < s.length && '"\\]'.includes(s[i + 1]!)) {
          value += s.slice(start, i)
          start = i + 1
          i += 2
          continue
        }
        if (ch === 34 /* " */) break
        i++
      }
      value += s.slice(start, i)
      i++
      out[`sd.${id}.${name}`] = value
    }
  }
  return i
}

/** RFC 5424 after `<PRI>` (at `i`, where the version starts); undefined when not RFC 5424. */
function parse5424(s: string, i: number, pri: number): SyslogMessage | undefined {
  const v = /^[1-9]\d? /.exec(s.slice(i, i + 3))
  if (v === null) return undefined
  i += v[0].length
  const fields: string[] = []
  for (let k = 0; k < 5; k++) {
    const t = token(s, i)
    if (t === undefined || t[0] === '') return undefined
    fields.push(t[0])
    i = t[1]
  }
  const [ts, host, app, pid, msgid] = fields as [string, string, string, string, string]
  const out: SyslogMessage = {format: 'rfc5424', facility: pri >> 3, severity: pri & 7, message: ''}
  if (ts !== '-') {
    const t = parseRfc3339(ts)
    if (t !== undefined) out.time = t
  }
  const h = nil(host)
  if (h !== undefined) out.host = h
  const a = nil(app)
  if (a !== undefined) out.app = a
  const p = nil(pid)
  if (p !== undefined) out.pid = p
  const m = nil(msgid)
  if (m !== undefined) out.msgid = m
  if (s[i] === '-') i++
  else if (s[i] === '[') {
    const sd: Record<string, string> = {}
    const end = parseSd(s, i, sd)
    if (end !== undefined) {
      i = end
      out.sd = sd
    }
    // malformed SD: keep it in the message rather than lose the text
  }
  if (s[i] === ' ') i++
  let msg = s.slice(i)
  if (msg.charCodeAt(0) === 0xfeff) msg = msg.slice(1)
  out.message = msg
  return out
}

/** TAG[PID]: at the start of `s` (RFC 3164 §4.1.3, as written by syslog(3) and logger). */
const TAG = /^([^\s:[\]]{1,64})(?:\[([^\]\s]{0,32})\])?:(?: |$)/

function parse3164(s: string, i: number, pri: number, now: number): SyslogMessage {
  const out: SyslogMessage = {format: 'rfc3164', facility: pri >> 3, severity: pri & 7, message: ''}
  let rest = s.slice(i)
  let dated = false
  const bsd = BSD_TIME.exec(rest)
  if (bsd !== null) {
    const t = parseBsdTime(bsd, now)
    if (t !== undefined) out.time = t
    rest = rest.slice(bsd[0].length + 1)
    dated = true
  } else {
    const sp = rest.indexOf(' ')
    const first = sp < 0 ? rest : rest.slice(0, sp)
    if (first.length >= 20 && /^\d{4}-/.test(first)) {
      const t = parseRfc3339(first)
      if (t !== undefined) {
        out.time = t
        rest = sp < 0 ? '' : rest.slice(sp + 1)
        dated = true
      }
    }
  }
  // With a timestamp, the next word is the host, unless it already is the tag (`sshd[1]: …`,
  // as local senders omit the host).
  if (dated && !TAG.test(rest)) {
    const sp = rest.indexOf(' ')
    if (sp > 0) {
      out.host = rest.slice(0, sp)
      rest = rest.slice(sp + 1)
    } else if (sp < 0 && rest !== '') {
      out.host = rest
      rest = ''
    }
  }
  const tag = TAG.exec(rest)
  if (tag !== null) {
    out.app = tag[1]
    if (tag[2] !== undefined && tag[2] !== '') out.pid = tag[2]
    rest = rest.slice(tag[0].length)
  }
  if (rest.charCodeAt(0) === 0xfeff) rest = rest.slice(1)
  out.message = rest
  return out
}

/**
 * Parses one syslog message (already decoded text). Never throws: input that is not syslog
 * comes back as `{format: 'raw', message: text}`.
 * @param now clock (ms) for the year of RFC 3164 dates
 */
export function parseSyslog(text: string, now: number = Date.now()): SyslogMessage {
  let s = trimEnd(text)
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1)
  const pm = /^<(\d{1,3})>/.exec(s)
  if (pm === null) return {format: 'raw', message: s}
  const pri = Number(pm[1])
  if (pri > 191) return {format: 'raw', message: s}
  const i = pm[0].length
  return parse5424(s, i, pri) ?? parse3164(s, i, pri, now)
}

/** The record fields of a parsed message (names from RECORD_FIELDS; SD as `sd.<id>.<param>`). */
export function syslogFields(m: SyslogMessage): Record<string, string | number> {
  const F = RECORD_FIELDS
  const f: Record<string, string | number> = {}
  if (m.facility !== undefined) f[F.facility] = m.facility
  if (m.severity !== undefined) f[F.severity] = m.severity
  if (m.host !== undefined) f[F.host] = m.host
  if (m.app !== undefined) f[F.app] = m.app
  if (m.pid !== undefined) f[F.pid] = /^\d{1,9}$/.test(m.pid) ? Number(m.pid) : m.pid
  if (m.msgid !== undefined) f[F.msgid] = m.msgid
  if (m.sd !== undefined) Object.assign(f, m.sd)
  return f
}

const SP = 0x20
const LF = 0x0a
const CR = 0x0d

/**
 * Cuts a syslog TCP stream into messages (RFC 6587): octet counting (`LEN SP MSG`) or
 * newline-terminated frames, detected per message (a frame starting with a digit is
 * octet-counted). A message longer than `maxMessage` bytes is cut: its first `maxMessage`
 * bytes are delivered (flagged `truncated`), the rest is skipped, so memory stays bounded
 * whatever the peer sends.
 */
export class SyslogFramer {
  private buf: Buffer = Buffer.alloc(0)
  /** Bytes still to discard of an oversized octet-counted message. */
  private skip = 0
  /** Discarding the rest of an oversized newline-framed message. */
  private skipLine = false

  constructor(
    private readonly maxMessage: number,
    private readonly onMessage: (msg: Buffer, truncated: boolean) => void,
  ) {}

  push(chunk: Buffer): void {
    let buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    const len = buf.length
    const max = this.maxMessage
    let pos = 0
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - pos)
        pos += n
        this.skip -= n
        if (this.skip > 0) break
        continue
      }
      if (this.skipLine) {
        const lf = buf.indexOf(LF, pos)
        if (lf < 0) {
          pos = len
          break
        }
        pos = lf + 1
        this.skipLine = false
        continue
      }
      if (pos >= len) break
      const c = buf[pos]!
      if (c >= 0x31 && c <= 0x39) {
        let j = pos + 1
        while (j < len && j - pos < 10 && buf[j]! >= 0x30 && buf[j]! <= 0x39) j++
        if (j === len && j - pos < 10) break // the length may go on in the next chunk
        if (buf[j] === SP && j - pos <= 9) {
          const n = Number(buf.toString('latin1', pos, j))
          const start = j + 1
          if (n > max) {
            if (len - start < max) break
            this.onMessage(buf.subarray(start, start + max), true)
            pos = start + max
            this.skip = n - max
            continue
          }
          if (len - start < n) break
          this.deliver(buf, start, start + n, false)
          pos = start + n
          continue
        }
      }
      const lf = buf.indexOf(LF, pos)
      if (lf < 0) {
        if (len - pos > max) {
          this.onMessage(buf.subarray(pos, pos + max), true)
          this.skipLine = true
          pos = len
        }
        break
      }
      if (lf - pos > max) this.onMessage(buf.subarray(pos, pos + max), true)
      else this.deliver(buf, pos, lf, false)
      pos = lf + 1
    }
    buf = pos >= len ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos))
    this.buf = buf
  }

  /** The stream ended: a pending unterminated newline-framed message is delivered. */
  flush(): void {
    const b = this.buf
    this.buf = Buffer.alloc(0)
    if (this.skip > 0 || this.skipLine) {
      this.skip = 0
      this.skipLine = false
      return
    }
    if (b.length > this.maxMessage) this.onMessage(b.subarray(0, this.maxMessage), true)
    else if (b.length > 0) this.deliver(b, 0, b.length, false)
  }

  /** Bytes held waiting for the rest of a message. */
  get buffered(): number {
    return this.buf.length
  }

  private deliver(buf: Buffer, start: number, end: number, truncated: boolean): void {
    while (end > start && (buf[end - 1] === CR || buf[end - 1] === 0)) end--
    if (end > start) this.onMessage(buf.subarray(start, end), truncated)
  }
}
