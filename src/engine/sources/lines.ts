/**
 * Cuts a byte stream into lines: the decoder every stream source shares (files, TCP, processes).
 * - Decoding is streaming (a multi-byte character split across chunks is kept whole) with the
 *   configured encoding; invalid bytes become U+FFFD, never an error.
 * - The line ending is lua-spylog's `eol`: the default Lua pattern `\r*\n` (so CRLF and LF both
 *   work), a plain separator, or any Lua pattern.
 * - A line longer than `maxLine` characters is cut: its first `maxLine` characters are delivered
 *   once, the rest up to the next line ending is discarded and counted, so a hostile endless line
 *   costs bounded memory.
 */
import {TextDecoder} from 'node:util'
import {compileLua, type LuaPattern} from '../patterns/lua.js'
import type {LineEnding} from '../config/model.js'

export const DEFAULT_EOL: LineEnding = {text: '\\r*\\n', pattern: true}

export interface LineSplitterOptions {
  readonly eol?: LineEnding
  /** Longest line kept, characters (default 65536). */
  readonly maxLine?: number
  /** Encoding label understood by TextDecoder (default utf-8). */
  readonly encoding?: string
}

type Cutter = (text: string, from: number) => {start: number; end: number} | undefined

function cutterFor(eol: LineEnding): Cutter {
  if (eol.pattern && (eol.text === '\\r*\\n' || eol.text === '\r*\n' || eol.text === '%\r*\n')) {
    // The default: LF, with any CRs before it belonging to the ending.
    return (text, from) => {
      const nl = text.indexOf('\n', from)
      if (nl < 0) return undefined
      let start = nl
      while (start > from && text.charCodeAt(start - 1) === 13) start--
      return {start, end: nl + 1}
    }
  }
  if (!eol.pattern) {
    const sep = eol.text
    return (text, from) => {
      const i = text.indexOf(sep, from)
      return i < 0 ? undefined : {start: i, end: i + sep.length}
    }
  }
  const p: LuaPattern = compileLua(eol.text)
  return (text, from) => {
    const m = p.find(text, from + 1)
    // An empty match would never advance: treat it as "no line ending yet".
    return m === null || m.end === m.start ? undefined : {start: m.start, end: m.end}
  }
}

export class LineSplitter {
  private readonly decoder: TextDecoder
  private readonly cut: Cutter
  private readonly maxLine: number
  private pending = ''
  /** Discarding the rest of an oversized line until the next line ending. */
  private skipping = false
  /** Lines cut because they were longer than maxLine. */
  truncated = 0

  constructor(
    opts: LineSplitterOptions,
    private readonly onLine: (line: string) => void,
  ) {
    this.decoder = new TextDecoder(opts.encoding ?? 'utf-8', {fatal: false})
    this.cut = cutterFor(opts.eol ?? DEFAULT_EOL)
    this.maxLine = opts.maxLine ?? 65536
  }

  /** Feed bytes (or already decoded text). */
  push(chunk: Uint8Array | string): void {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, {stream: true})
    if (text.length === 0) return
    let buf = this.pending.length === 0 ? text : this.pending + text
    let from = 0
    for (;;) {
      const m = this.cut(buf, from)
      if (m === undefined) break
      if (this.skipping) this.skipping = false
      else this.emit(buf, from, m.start)
      from = m.end
    }
    buf = from === 0 ? buf : buf.slice(from)
    if (buf.length > this.maxLine) {
      // Keep a possible partial line ending (a pattern may span chunks) but never more than maxLine.
      if (!this.skipping) {
        this.onLine(buf.slice(0, this.maxLine))
        this.truncated++
        this.skipping = true
      }
      buf = buf.slice(-8)
    }
    this.pending = buf
  }

  /** The input ended (process exit, datagram, file replaced): deliver what is left as a line. */
  flush(): void {
    const tail = this.decoder.decode()
    const buf = this.pending + tail
    this.pending = ''
    if (this.skipping) {
      this.skipping = false
      return
    }
    if (buf.length > 0) this.emit(buf, 0, buf.length)
  }

  /** Characters held waiting for a line ending. */
  get buffered(): number {
    return this.pending.length
  }

  private emit(buf: string, start: number, end: number): void {
    if (end - start > this.maxLine) {
      this.onLine(buf.slice(start, start + this.maxLine))
      this.truncated++
    } else this.onLine(buf.slice(start, end))
  }
}
