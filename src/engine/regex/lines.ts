/**
 * Streaming line splitter for `spylog regex` (and anything else that reads whole log files):
 * bytes in, decoded lines out, in constant memory.
 *
 * Lines end at `\n` only; one `\r` before it is dropped (CRLF files), any other `\r` stays
 * (fail2ban-corpus SPEC §4.1). A UTF-8 byte-order mark at the start of the stream is skipped.
 *
 * How: each chunk is cut at its last `\n` byte; the complete lines before it go to a LineBatch,
 * which decodes them a piece (~32 KiB, cut at a `\n`) at a time and cuts one line at a time as
 * the consumer reads it, and the tail is carried to the next chunk. Both keep what is alive
 * small: cutting a whole chunk's ~10,000 lines up front kept them alive through the young
 * generation's collections, which copied them every time; decoding the whole 1 MiB chunk made
 * one large string that outlived a collection, was moved to the old generation and made it
 * fill and be collected every ~15 MiB of log (7 full collections on the bench log, 1 with
 * pieces; bench run 1.31–1.34 s → 1.27 s). For UTF-8 the common case costs two native scans per
 * chunk (`isAscii` or else `isUtf8`, and `indexOf(0)` for NUL bytes) and a decode, Latin-1's
 * for ASCII (same text, 18 ms instead of 108 ms on the bench log); only a chunk that fails a
 * scan is re-walked line by line to count the offending lines. On 1M sshd lines (104 MiB) this
 * takes about 0.1 s of CPU; before the Latin-1 path it took 0.23 s, against 0.35 s for
 * `node:readline`'s 'line' events and 0.45–0.56 s for its async iterator (which also split on
 * a lone `\r`: wrong here). UTF-16 input, where a `0x0A` byte may sit inside a character, is
 * decoded as a stream first and split afterwards.
 *
 * Nothing ever throws on content: invalid byte sequences decode to U+FFFD and are counted,
 * NUL-containing ("binary") lines are counted and passed on, and a line longer than
 * `maxLineBytes` is cut there (the rest of it is skipped) and counted.
 */
import {isAscii as isAsciiBuffer, isUtf8} from 'node:buffer'
import {TextDecoder} from 'node:util'

export interface DecodeStats {
  /** Lines holding bytes that are not valid in the input encoding (decoded as U+FFFD). */
  invalid: number
  /** Lines holding a NUL character. */
  binary: number
  /** Lines longer than the splitter's limit, cut to it. */
  overlong: number
}

export function newDecodeStats(): DecodeStats {
  return {invalid: 0, binary: 0, overlong: 0}
}

/** How the bytes of one encoding become text. */
interface Codec {
  /** Canonical name, for the report. */
  readonly name: string
  /** Whether a 0x0A byte always is a line feed (false for UTF-16). */
  readonly byteLines: boolean
  decode(bytes: Buffer): string
  /** Whether `bytes` decode without any replacement. */
  valid(bytes: Buffer): boolean
}

const UTF8: Codec = {
  name: 'utf-8',
  byteLines: true,
  decode: (b) => b.toString('utf8'),
  valid: (b) => isUtf8(b),
}

const LATIN1: Codec = {
  name: 'iso-8859-1',
  byteLines: true,
  decode: (b) => b.toString('latin1'),
  valid: () => true,
}

/** Windows-1252 code points of the bytes 0x80–0x9F (WHATWG: the five undefined ones stay C1 controls). */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
].map((c) => String.fromCharCode(c))
const C1 = /[\x80-\x9f]/g
const HAS_C1 = /[\x80-\x9f]/
const cp1252Char = (c: string): string => CP1252_HIGH[c.charCodeAt(0) - 0x80]!

/**
 * Windows-1252 done by hand: Node 20's TextDecoder decodes it as ISO-8859-1 (0x80 → U+0080
 * instead of €).
 */
const CP1252: Codec = {
  name: 'windows-1252',
  byteLines: true,
  decode: (b) => {
    const s = b.toString('latin1')
    return HAS_C1.test(s) ? s.replace(C1, cp1252Char) : s
  },
  valid: () => true,
}

function webCodec(label: string): Codec {
  const dec = new TextDecoder(label) // throws RangeError on an unknown label
  const name = dec.encoding
  if (name === 'windows-1252') return CP1252
  const byteLines = !name.startsWith('utf-16')
  return {
    name,
    byteLines,
    decode: (b) => dec.decode(b),
    valid: (b) => !dec.decode(b).includes('\uFFFD'),
  }
}

/** Thrown for an encoding name this machine cannot decode. */
export class UnknownEncodingError extends Error {
  constructor(readonly encoding: string) {
    super(`unknown encoding "${encoding}" (try utf-8, latin1, cp1252, iso-8859-15, utf-16le, …)`)
    this.name = 'UnknownEncodingError'
  }
}

/**
 * The codec for an encoding name: `utf8`/`utf-8` (default), `latin1`/`iso-8859-1` (true
 * ISO-8859-1 as in Python, unlike WHATWG's label), or any WHATWG label (`cp1252`,
 * `windows-1251`, `iso-8859-15`, `koi8-r`, `shift_jis`, `utf-16le`, …).
 */
function codecFor(encoding: string): Codec {
  const e = encoding.trim().toLowerCase().replace(/_/g, '-')
  if (e === '' || e === 'utf8' || e === 'utf-8') return UTF8
  if (e === 'latin1' || e === 'latin-1' || e === 'iso-8859-1' || e === 'iso8859-1' || e === 'l1' || e === 'binary' || e === 'ascii' || e === 'us-ascii') return LATIN1
  if (e === 'utf-16') return webCodec('utf-16le')
  try {
    return webCodec(encoding.trim())
  } catch {
    throw new UnknownEncodingError(encoding)
  }
}

/** Canonical name of an encoding, or UnknownEncodingError. */
export function encodingName(encoding: string): string {
  return codecFor(encoding).name
}

const LF = 0x0a
const CR = 13
const NUL = '\0'
const DEFAULT_MAX_LINE_BYTES = 1 << 20
/** Bytes decoded at a time (LineBatch.addBytes): well below V8's large-object size (128 KiB). */
const PIECE = 32 << 10

/**
 * The lines of one push() or end(): whole decoded texts of `\n`-separated lines, cut into lines
 * (one final `\r` dropped) as they are read, in order.
 */
export class LineBatch {
  /** Decoded texts, or bytes not decoded yet (see addBytes). */
  private readonly texts: (string | Buffer)[] = []
  /** Per text: whether its lines may end with a `\r` to drop (for bytes: their encoding). */
  private readonly crs: (boolean | 'latin1' | 'utf8')[] = []
  private t = 0
  private pos = 0

  /**
   * Add `body` (no final `\n`): one line, or several separated by `\n`; `cr`: drop a final `\r`
   * from each. (Or bytes, with their encoding: see addBytes.)
   */
  add(body: string, cr: boolean): void
  add(body: Buffer, encoding: 'latin1' | 'utf8'): void
  add(body: string | Buffer, how: boolean | 'latin1' | 'utf8'): void {
    this.texts.push(body)
    this.crs.push(how)
  }

  /**
   * Add the bytes of complete lines (no final `\n`), valid in `encoding`, to be decoded a piece
   * of about PIECE bytes at a time as the lines are read: the bytes must stay unchanged until
   * then. (A 1 MiB chunk decoded at once is one large string; it outlives a young-generation
   * collection while its lines are matched, is moved to the old generation, which then fills
   * and is collected every ~15 MiB of log. A piece dies young.)
   */
  addBytes(body: Buffer, encoding: 'latin1' | 'utf8'): void {
    let from = 0
    while (body.length - from > PIECE) {
      const nl = body.indexOf(LF, from + PIECE)
      if (nl < 0) break
      this.add(body.subarray(from, nl), encoding)
      from = nl + 1
    }
    this.add(from === 0 ? body : body.subarray(from), encoding)
  }

  /** The next line, or undefined when all have been read. */
  next(): string | undefined {
    const texts = this.texts
    while (this.t < texts.length) {
      const e = texts[this.t]!
      let s: string
      if (typeof e === 'string') s = e
      else {
        texts[this.t] = s = e.toString(this.crs[this.t] as 'latin1' | 'utf8')
        this.crs[this.t] = s.includes('\r')
      }
      const from = this.pos
      if (from <= s.length) {
        const nl = s.indexOf('\n', from)
        let end = nl < 0 ? s.length : nl
        this.pos = end + 1
        if (end > from && this.crs[this.t] === true && s.charCodeAt(end - 1) === CR) end--
        return s.slice(from, end)
      }
      texts[this.t] = ''
      this.t++
      this.pos = 0
    }
    return undefined
  }

  /** Forget every line (read or not). */
  clear(): void {
    this.texts.length = 0
    this.crs.length = 0
    this.t = 0
    this.pos = 0
  }

  /** The lines not read yet, as an array; the batch is cleared. */
  drain(): string[] {
    const out: string[] = []
    for (let l = this.next(); l !== undefined; l = this.next()) out.push(l)
    this.clear()
    return out
  }
}

export class LineSplitter {
  readonly encoding: string
  private readonly codec: Codec
  private readonly maxLineBytes: number
  /** Unterminated bytes of the current line (byte mode). */
  private carry: Buffer | undefined
  /** Unterminated text of the current line (text mode). */
  private textCarry = ''
  private textDecoder: TextDecoder | undefined
  /** Dropping the rest of an overlong line until its `\n`. */
  private skipping = false
  private atStart = true
  /**
   * Whether every line the last push() or end() appended is pure ASCII (known for UTF-8 and
   * Latin-1, where ASCII bytes are ASCII characters; false when unknown).
   */
  batchAscii = false

  constructor(encoding: string, readonly stats: DecodeStats = newDecodeStats(), maxLineBytes = DEFAULT_MAX_LINE_BYTES) {
    this.codec = codecFor(encoding)
    this.encoding = this.codec.name
    this.maxLineBytes = Math.max(16, maxLineBytes)
    if (!this.codec.byteLines) this.textDecoder = new TextDecoder(this.codec.name)
  }

  /** Start a new stream (byte-order mark allowed again, carried bytes dropped). */
  reset(): void {
    this.carry = undefined
    this.textCarry = ''
    this.skipping = false
    this.atStart = true
    if (!this.codec.byteLines) this.textDecoder = new TextDecoder(this.codec.name)
  }

  /** Feed one chunk; the complete lines it finishes are added to `out`. */
  push(chunk: Buffer, out: LineBatch): void {
    this.batchAscii = this.codec === UTF8 || this.codec === LATIN1
    if (!this.codec.byteLines) this.pushText(this.textDecoder!.decode(chunk, {stream: true}), out)
    else this.pushBytes(chunk, out)
  }

  /** End of stream: the last line, when the stream did not end with `\n`. */
  end(out: LineBatch): void {
    this.batchAscii = this.codec === UTF8 || this.codec === LATIN1
    if (!this.codec.byteLines) {
      const rest = this.textDecoder!.decode()
      if (rest !== '') this.pushText(rest, out)
      const last = this.textCarry
      this.textCarry = ''
      this.skipping = false
      if (last !== '') this.textLines(last, out)
    } else if (this.carry !== undefined) {
      const rest = this.carry
      this.carry = undefined
      this.skipping = false
      if (rest.length > 0) this.decodeBody(rest, out)
    }
    this.atStart = true
  }

  private pushBytes(chunk: Buffer, out: LineBatch): void {
    let buf = chunk
    if (this.skipping) {
      const nl = chunk.indexOf(LF)
      if (nl < 0) return
      this.skipping = false
      const cut = this.carry!
      this.carry = undefined
      this.decodeBody(cut, out)
      buf = chunk.subarray(nl + 1)
    }
    if (this.atStart) {
      if (this.carry !== undefined) {
        buf = Buffer.concat([this.carry, buf])
        this.carry = undefined
      }
      if (buf.length === 0) return
      if (this.codec === UTF8 && buf.length < 3 && buf[0] === 0xef && (buf.length < 2 || buf[1] === 0xbb)) {
        this.carry = Buffer.from(buf) // might be a partial BOM: wait for more
        return
      }
      this.atStart = false
      if (this.codec === UTF8 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3)
    } else if (this.carry !== undefined) {
      // Finish the carried line with the head of this chunk (no copy of the whole chunk).
      const nl = buf.indexOf(LF)
      const carry = this.carry
      this.carry = undefined
      if (nl < 0) {
        this.keep(Buffer.concat([carry, buf]))
        return
      }
      this.decodeBody(Buffer.concat([carry, buf.subarray(0, nl)]), out)
      buf = buf.subarray(nl + 1)
    }
    const last = buf.lastIndexOf(LF)
    if (last < 0) {
      if (buf.length > 0) this.keep(buf)
      return
    }
    this.decodeBody(buf.subarray(0, last), out)
    if (last + 1 < buf.length) this.keep(buf.subarray(last + 1))
  }

  /** Carry an unterminated tail (copied: the chunk may be reused), cutting an overlong one. */
  private keep(tail: Buffer): void {
    if (tail.length <= this.maxLineBytes) {
      this.carry = Buffer.from(tail)
      return
    }
    let n = this.maxLineBytes
    if (this.codec === UTF8) while (n > 0 && (tail[n]! & 0xc0) === 0x80) n--
    this.carry = Buffer.from(tail.subarray(0, n))
    this.skipping = true
    this.stats.overlong++
  }

  /** Decode complete lines (`body` holds no final `\n`). */
  private decodeBody(body: Buffer, out: LineBatch): void {
    const codec = this.codec
    // Pure ASCII in an ASCII-compatible encoding: valid, and Latin-1 decoding (a copy) gives the
    // same text as UTF-8 decoding at a fifth of its cost.
    const ascii = (codec === UTF8 || codec === LATIN1) && isAsciiBuffer(body)
    if (!ascii) this.batchAscii = false
    const clean = ascii || codec.valid(body)
    const hasNul = body.indexOf(0) >= 0
    if (clean && !hasNul) {
      if (ascii) out.addBytes(body, 'latin1')
      else if (codec === UTF8) out.addBytes(body, 'utf8')
      else {
        const text = codec.decode(body)
        out.add(text, text.includes('\r'))
      }
      return
    }
    // Rare: find the offending lines.
    let pos = 0
    for (;;) {
      const nl = body.indexOf(LF, pos)
      const sub = body.subarray(pos, nl < 0 ? body.length : nl)
      let line = codec.decode(sub)
      if (!clean && !codec.valid(sub)) this.stats.invalid++
      if (hasNul && line.includes(NUL)) this.stats.binary++
      if (line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1)
      out.add(line, false)
      if (nl < 0) break
      pos = nl + 1
    }
  }

  private pushText(text: string, out: LineBatch): void {
    let s = text
    if (this.skipping) {
      const nl = s.indexOf('\n')
      if (nl < 0) return
      this.skipping = false
      const cut = this.textCarry
      this.textCarry = ''
      this.textLines(cut, out)
      s = s.slice(nl + 1)
    }
    if (this.textCarry !== '') {
      s = this.textCarry + s
      this.textCarry = ''
    }
    if (this.atStart && s.length > 0) {
      this.atStart = false
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1)
    }
    const last = s.lastIndexOf('\n')
    if (last >= 0) this.textLines(s.slice(0, last), out)
    const tail = last >= 0 ? s.slice(last + 1) : s
    if (tail.length * 2 <= this.maxLineBytes) this.textCarry = tail
    else {
      this.textCarry = tail.slice(0, this.maxLineBytes >> 1)
      this.skipping = true
      this.stats.overlong++
    }
  }

  /** Complete decoded lines (`body` holds no final `\n`), with their invalid/NUL counts. */
  private textLines(body: string, out: LineBatch): void {
    out.add(body, body.includes('\r'))
    const bad = body.includes('\uFFFD')
    const nul = body.includes(NUL)
    if (bad || nul) {
      for (const line of body.split('\n')) {
        if (bad && line.includes('\uFFFD')) this.stats.invalid++
        if (nul && line.includes(NUL)) this.stats.binary++
      }
    }
  }
}
