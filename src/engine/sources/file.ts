/**
 * The file source (`file:<path>`, fail2ban `logpath`): follows growing log files like `tail -F`.
 *
 * - `path` may be a glob (fast-glob syntax): every match is followed, and files that appear later
 *   are picked up (the glob is re-scanned periodically and when a watched directory changes).
 * - Existing content is skipped unless `skipExisting` is false or the daemon runs `--from-start`;
 *   a file that appears after the start is read from its beginning.
 * - Rotation: rename-and-create (the old file is drained to its end, and kept open for a grace
 *   period for writers that have not reopened yet, before the new file is read from the start),
 *   copytruncate (size below the read offset, or a changed first line) and delete-and-recreate.
 *   A file that a glob matches under a new name after a rotation (`app.log` → `app.log.1`) is
 *   recognised by its inode and continued where the old name stopped, never read twice.
 * - Changes are seen through fs.watch on the directories, plus stat polling (`poll` seconds, or
 *   a 1 s fallback) for network shares and file systems without change events.
 * - Positions are kept in the PositionStore under `file:<absolute path>` ({@link FilePosition}):
 *   a restart resumes at the saved offset when the file's first line is unchanged, and reads a
 *   replaced file from the start.
 * - Reading is in bounded chunks (awaited, so the event loop runs between them); lines are cut
 *   by the shared {@link LineSplitter} (encoding, `eol`, `maxLine`), so invalid bytes, NULs and
 *   endless lines cost bounded memory and never an exception.
 */
import {createHash} from 'node:crypto'
import {constants as fsc, promises as fsp, watch, type FSWatcher, type Stats} from 'node:fs'
import nodePath from 'node:path'
import fg from 'fast-glob'
import type {FileSource, LineEnding} from '../config/model.js'
import {RECORD_FIELDS, type LogRecord} from '../types.js'
import {LineSplitter} from './lines.js'
import {newStats, type FilePosition, type RecordSink, type Source, type SourceContext, type SourceStats} from './source.js'

/** Tuning knobs (tests and the benchmark shorten them; the daemon keeps the defaults). */
export interface FileSourceOptions {
  /** Stat polling interval when the configuration gives no `poll`, ms (default 1000). */
  readonly pollMs?: number
  /** Glob re-scan interval, ms (default 5000, and at most the poll interval when `poll` is set). */
  readonly rescanMs?: number
  /** How often changed positions are saved, ms (default 5000). */
  readonly saveMs?: number
  /** How long a rotated-away or deleted file is still drained, ms (default 5000). */
  readonly graceMs?: number
  /** Read chunk size, bytes (default 64 KiB, or the configuration's `bufferSize`). */
  readonly chunkSize?: number
  /** Use fs.watch (default true; false = stat polling only, as fail2ban's `backend = polling`). */
  readonly watch?: boolean
}

/** Bytes of the file's start that identify it (the first line, at most this many bytes). */
const HEAD_MAX = 1024

/** The position key of a file. */
export function filePositionKey(path: string): string {
  return `file:${path}`
}

/** The fingerprint window: the first line of `window` (with its LF), or all of it without one. */
function headOf(window: Buffer): Buffer {
  const nl = window.indexOf(10)
  return nl < 0 ? window : window.subarray(0, nl + 1)
}

function hashHead(head: Buffer): string {
  return createHash('sha1').update(head).digest('hex')
}

/**
 * The bytes that end a line in the raw file, so that the offset after the last complete line is
 * known without re-encoding text: `bytes` found at a multiple of `unit` (2 for UTF-16) ends a
 * line. For the default ending (`\r*\n`) it is the LF; for a plain separator, the separator's
 * bytes when the encoding cannot hide them inside a character (UTF-8, single-byte encodings,
 * UTF-16). Undefined for Lua-pattern endings and multi-byte legacy encodings.
 */
export function lineEndBytes(eol: LineEnding, encoding: string): {bytes: Buffer; unit: number} | undefined {
  const enc = encoding.trim().toLowerCase()
  const lf = eol.pattern ? ['\\r*\\n', '\r*\n', '%\r*\n', '\\n', '\n'].includes(eol.text) : eol.text === '\n'
  const sep = lf ? '\n' : eol.pattern || eol.text === '' ? undefined : eol.text
  if (sep === undefined) return undefined
  if (/^(utf-?16(le)?|ucs-?2|unicode|unicodefeff|csunicode|iso-10646-ucs-2)$/.test(enc)) return {bytes: Buffer.from(sep, 'utf16le'), unit: 2}
  if (/^(utf-?16be|unicodefffe)$/.test(enc)) return {bytes: Buffer.from(sep, 'utf16le').swap16(), unit: 2}
  // LF is LF in every ASCII-compatible encoding (no multi-byte character contains 0x0A).
  if (sep === '\n') return {bytes: Buffer.from([10]), unit: 1}
  // Other ASCII separators: only where no multi-byte character can contain ASCII bytes.
  if (!/^[\x00-\x7f]+$/.test(sep)) return enc === 'utf-8' || enc === 'utf8' ? {bytes: Buffer.from(sep, 'utf8'), unit: 1} : undefined
  const singleOrUtf8 = /^(utf-?8|unicode-1-1-utf-8|us-ascii|ascii|latin-?1|l1|iso-?8859-?\d+|iso_8859-\d+|windows-125\d|cp125\d|x-cp125\d|cp8\d\d|ibm8\d\d|koi8-?[ru]?|koi|macintosh|mac|x-mac-cyrillic|windows-874|tis-620)$/
  return singleOrUtf8.test(enc) ? {bytes: Buffer.from(sep, 'latin1'), unit: 1} : undefined
}

/**
 * The offset just after the last line ending in `chunk` (which starts at file offset `at`),
 * with `carry` = the bytes before it (an ending split across reads); -1 when there is none.
 */
function lastEnd(end: {bytes: Buffer; unit: number}, chunk: Buffer, at: number, carry: Buffer): number {
  const sep = end.bytes
  const hay = carry.length === 0 ? chunk : Buffer.concat([carry, chunk])
  const base = at - carry.length
  let i = sep.length === 1 ? hay.lastIndexOf(sep[0]) : hay.lastIndexOf(sep)
  while (i >= 0 && (base + i) % end.unit !== 0) i = i === 0 ? -1 : hay.lastIndexOf(sep, i - 1)
  return i < 0 ? -1 : base + i + sep.length
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/** An open file being read. */
interface OpenFile {
  readonly fh: fsp.FileHandle
  readonly ino: number
  readonly dev: number
  /** Next byte to read. */
  pos: number
  /** Offset just after the last complete line delivered (what a restart resumes at). */
  lineOffset: number
  readonly splitter: LineSplitter
  /** The first line (or first bytes) as far as read: recognises truncation and replacement. */
  head: Buffer
  /** True once `head` holds a whole first line or HEAD_MAX bytes. */
  headDone: boolean
  /** When a rotated-away file may be closed (grace period end), ms. */
  until: number
  /** The last bytes read, when a line ending is longer than one byte (it may span two reads). */
  carry?: Buffer
}

interface Released {
  readonly offset: number
  readonly at: number
  readonly path: string
  readonly head: Buffer
}

/** How long a released inode's offset is remembered, ms. */
const RELEASED_TTL = 120_000

const EMPTY = Buffer.alloc(0)

const inodeKey = (dev: number, ino: number): string => `${dev}:${ino}`

/** Files and inodes shared by the followers of one source (rotation hand-over between glob matches). */
class Registry {
  /** Inode → the follower that has it open (current or draining). */
  readonly owners = new Map<string, Follower>()
  /**
   * Inode → where a closed file was left: a rotated file that the glob matches under its new name
   * continues there. The path and first line guard against a reused inode number.
   */
  readonly released = new Map<string, Released>()

  release(f: OpenFile, path: string): void {
    const k = inodeKey(f.dev, f.ino)
    this.owners.delete(k)
    this.released.set(k, {offset: f.pos, at: Date.now(), path, head: f.head})
    if (this.released.size > 256) {
      const oldest = this.released.keys().next().value
      if (oldest !== undefined) this.released.delete(oldest)
    }
  }
}

/** How a follower positions itself in a file it opens for the first time. */
type StartMode = 'initial' | 'new'

/** Follows one path. */
class Follower {
  private cur: OpenFile | undefined
  private readonly drain: OpenFile[] = []
  private running: Promise<void> | undefined
  private again = false
  private mode: StartMode
  private waitingLogged = false
  private notFileLogged = false
  private buf: Buffer | undefined
  /** Position last saved (to skip unchanged saves). */
  private saved = ''
  closed = false
  /** Settles once the follower has looked at its file the first time (opened and positioned, or found missing). */
  readonly positioned: Promise<void>
  private markPositioned: () => void = () => undefined

  constructor(
    readonly path: string,
    private readonly src: FileSourceImpl,
    mode: StartMode,
  ) {
    this.mode = mode
    this.positioned = new Promise<void>((resolve) => (this.markPositioned = resolve))
  }

  /** Check the file now (coalesced: a check running re-runs once when it ends). */
  check(): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.running !== undefined) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      try {
        do {
          this.again = false
          await this.step()
        } while (this.again && !this.closed)
      } catch (e) {
        this.src.fail(`${this.path}: ${errText(e)}`)
      } finally {
        this.running = undefined
        this.markPositioned()
      }
    })()
    return this.running
  }

  /** Whether the follower still has something to do (a current file, or files draining). */
  get active(): boolean {
    return this.cur !== undefined || this.drain.length > 0
  }

  private async step(): Promise<void> {
    const now = Date.now()
    // Rotated-away files first: they hold the older lines.
    for (let i = 0; i < this.drain.length; i++) {
      const d = this.drain[i]
      const before = d.pos
      await this.readAll(d)
      if (d.pos !== before) d.until = now + this.src.graceMs
      if (now >= d.until || this.src.stopping) {
        this.drain.splice(i--, 1)
        if (this.drain.length === 0) this.src.drainingFollowers.delete(this)
        await this.closeFile(d, true)
      }
    }
    if (this.src.stopping) return
    if (this.drain.length > 0) this.markPositioned()
    let st: Stats | undefined
    try {
      st = await fsp.stat(this.path)
    } catch (e) {
      if (!isMissing(e)) throw e
    }
    const cur = this.cur
    if (cur !== undefined) {
      if (st === undefined || !st.isFile() || st.ino !== cur.ino || st.dev !== cur.dev) {
        // Renamed away or deleted: drain it, keep draining for the grace period, then follow the new file.
        await this.readAll(cur)
        cur.until = now + this.src.graceMs
        this.drain.push(cur)
        this.src.drainingFollowers.add(this)
        this.cur = undefined
        this.src.log.info(`file source ${this.src.name}: ${this.path} was ${st === undefined ? 'removed' : 'replaced'} (rotation); following the new file`)
        this.mode = 'new'
      } else {
        const size = (await cur.fh.stat()).size
        if (size < cur.pos || !(await this.sameHead(cur, size))) {
          // copytruncate (or rewritten in place): the content before our offset is gone.
          this.src.log.info(`file source ${this.src.name}: ${this.path} was truncated; reading it from the start`)
          cur.splitter.flush()
          cur.pos = 0
          cur.lineOffset = 0
          cur.head = Buffer.alloc(0)
          cur.headDone = false
          cur.carry = undefined
        }
        this.markPositioned()
        await this.readAll(cur)
        return
      }
    }
    if (st === undefined || !st.isFile()) this.markPositioned()
    if (st !== undefined && !st.isFile()) {
      if (!this.notFileLogged) {
        this.notFileLogged = true
        this.src.fail(`${this.path} is not a regular file`)
      }
      return
    }
    this.notFileLogged = false
    if (st === undefined) {
      if (!this.waitingLogged && this.drain.length === 0) {
        this.waitingLogged = true
        this.src.log.info(`file source ${this.src.name}: waiting for ${this.path} to appear`)
      }
      this.mode = 'new'
      return
    }
    await this.open(st)
    this.markPositioned()
    // A file found rotated at start-up holds older lines than the new one: read it first.
    for (const d of this.drain) await this.readAll(d)
    if (this.cur !== undefined) await this.readAll(this.cur)
  }

  /** Opens the file at the path and positions in it. */
  private async open(st: Stats): Promise<void> {
    const key = inodeKey(st.dev, st.ino)
    const owner = this.src.registry.owners.get(key)
    // Another name of the same file is still being read (rotated file picked up by the glob): wait for it.
    if (owner !== undefined && owner !== this) return
    let fh: fsp.FileHandle
    try {
      fh = await fsp.open(this.path, fsc.O_RDONLY)
    } catch (e) {
      if (isMissing(e)) return
      throw e
    }
    let ok = false
    try {
      const fst = await fh.stat()
      const f: OpenFile = {fh, ino: fst.ino, dev: fst.dev, pos: 0, lineOffset: 0, splitter: this.src.splitterFor(this.path), head: Buffer.alloc(0), headDone: false, until: 0}
      const start = await this.startOffset(f, fst.size)
      f.pos = start
      f.lineOffset = start
      await this.refreshHead(f)
      this.cur = f
      this.src.registry.owners.set(inodeKey(f.dev, f.ino), this)
      this.waitingLogged = false
      ok = true
    } finally {
      if (!ok) await fh.close().catch(() => undefined)
    }
  }

  private async startOffset(f: OpenFile, size: number): Promise<number> {
    const k = inodeKey(f.dev, f.ino)
    const rel = this.src.registry.released.get(k)
    if (rel !== undefined) {
      this.src.registry.released.delete(k)
      if (rel.path !== this.path && Date.now() - rel.at < RELEASED_TTL && rel.offset <= size) {
        const head = await this.readHead(f, Math.min(rel.offset, HEAD_MAX))
        if (head.equals(headOf(rel.head.subarray(0, Math.min(rel.head.length, rel.offset))))) {
          this.src.log.info(`file source ${this.src.name}: ${this.path} is the rotated ${rel.path}; continuing at byte ${rel.offset}`)
          return rel.offset
        }
      }
    }
    if (this.mode === 'new') return 0
    this.mode = 'new'
    const saved = await this.src.loadPosition(this.path)
    if (saved !== undefined) {
      if (saved.ino !== undefined && (saved.ino !== f.ino || saved.dev !== f.dev) && saved.offset > 0 && (await this.resumeRotated(saved))) {
        // Rotated while spylog was not running: the rest of the old file is being read; this one is new.
        return 0
      }
      if (saved.offset <= size && saved.offset > 0) {
        const head = await this.readHead(f, Math.min(saved.offset, HEAD_MAX))
        if (hashHead(head) === saved.fingerprint) return saved.offset
        this.src.log.info(`file source ${this.src.name}: ${this.path} is not the file last read (first line changed); reading it from the start`)
      } else if (saved.offset > size) {
        this.src.log.info(`file source ${this.src.name}: ${this.path} is shorter than the saved position; reading it from the start`)
      }
      return 0
    }
    if (this.src.fromStart) return 0
    return this.src.lineEnd !== undefined ? await this.lastLineEnd(f, size) : size
  }

  /**
   * The file last read was rotated while the source was stopped: finds it next to the path under
   * a rotated name (`app.log.1`, `app.log-20240514`, `app-1.log`, not compressed) by its inode and
   * first line, and reads it on from the saved offset (as a draining file). False when not found.
   */
  private async resumeRotated(saved: FilePosition): Promise<boolean> {
    const dir = nodePath.dirname(this.path)
    const base = nodePath.basename(this.path)
    const stem = base.replace(/\.[^.]*$/, '')
    let names: string[]
    try {
      names = await fsp.readdir(dir)
    } catch {
      return false
    }
    for (const n of names) {
      if (n === base || !(n.startsWith(base) || (stem !== '' && stem !== base && /^[-._]/.test(n.slice(stem.length)) && n.startsWith(stem)))) continue
      if (/\.(gz|bz2|xz|zst|lz4|lzma|z|zip|7z)$/i.test(n)) continue
      const p = nodePath.join(dir, n)
      let st: Stats
      try {
        st = await fsp.stat(p)
      } catch {
        continue
      }
      const key = inodeKey(st.dev, st.ino)
      if (!st.isFile() || st.ino !== saved.ino || st.dev !== saved.dev || st.size < saved.offset || this.src.registry.owners.has(key)) continue
      let fh: fsp.FileHandle
      try {
        fh = await fsp.open(p, fsc.O_RDONLY)
      } catch {
        continue
      }
      const f: OpenFile = {fh, ino: st.ino, dev: st.dev, pos: saved.offset, lineOffset: saved.offset, splitter: this.src.splitterFor(this.path), head: Buffer.alloc(0), headDone: false, until: Date.now() + this.src.graceMs}
      if (hashHead(await this.readHead(f, Math.min(saved.offset, HEAD_MAX))) !== saved.fingerprint) {
        await fh.close().catch(() => undefined)
        continue
      }
      await this.refreshHead(f)
      this.drain.push(f)
      this.src.drainingFollowers.add(this)
      this.src.registry.owners.set(key, this)
      this.src.log.info(`file source ${this.src.name}: ${this.path} was rotated to ${p} while stopped; reading the rest of it from byte ${saved.offset}`)
      return true
    }
    return false
  }

  /** The offset just after the last line ending before `size` (so a line being written is not cut), within 64 KiB. */
  private async lastLineEnd(f: OpenFile, size: number): Promise<number> {
    if (size === 0 || this.src.lineEnd === undefined) return size
    const n = Math.min(size, 65536)
    const buf = Buffer.allocUnsafe(n)
    const {bytesRead} = await f.fh.read(buf, 0, n, size - n)
    const e = lastEnd(this.src.lineEnd, buf.subarray(0, bytesRead), size - n, EMPTY)
    return e < 0 ? size : e
  }

  private async readHead(f: OpenFile, n: number): Promise<Buffer> {
    if (n <= 0) return Buffer.alloc(0)
    const buf = Buffer.allocUnsafe(n)
    const {bytesRead} = await f.fh.read(buf, 0, n, 0)
    return headOf(buf.subarray(0, bytesRead))
  }

  /** Extends the kept first line while it is incomplete. */
  private async refreshHead(f: OpenFile): Promise<void> {
    if (f.headDone) return
    const n = Math.min(f.lineOffset > 0 ? Math.max(f.lineOffset, f.pos) : f.pos, HEAD_MAX)
    if (n <= f.head.length) return
    f.head = Buffer.from(await this.readHead(f, n))
    f.headDone = f.head.length >= HEAD_MAX || f.head.indexOf(10) >= 0
  }

  /** Whether the file still starts with the first line read from it (a copytruncate that grew past our offset changes it). */
  private async sameHead(f: OpenFile, size: number): Promise<boolean> {
    const n = f.head.length
    if (n === 0 || size < n) return n === 0
    const buf = Buffer.allocUnsafe(n)
    const {bytesRead} = await f.fh.read(buf, 0, n, 0)
    return bytesRead === n && buf.equals(f.head)
  }

  /** Reads from the position to the end of the file in bounded chunks. */
  private async readAll(f: OpenFile): Promise<void> {
    // Each follower reads into its own buffer: reads of different files run concurrently.
    const buf = (this.buf ??= Buffer.allocUnsafe(this.src.chunkSize))
    let n: number
    do {
      if (this.src.stopping && f === this.cur) break
      // The filters are behind (a big backlog): wait instead of reading on.
      const full = this.src.ctx.pressure?.()
      if (full !== undefined) await full
      ;({bytesRead: n} = await f.fh.read(buf, 0, buf.length, f.pos))
      if (n === 0) break
      const start = f.pos
      f.pos += n
      this.src.stats.bytes += n
      const chunk = buf.subarray(0, n)
      const cut = f.splitter.truncated
      f.splitter.push(chunk)
      // Oversized lines are cut: each discarded rest counts as a drop.
      if (f.splitter.truncated !== cut) this.src.stats.drops += f.splitter.truncated - cut
      const end = this.src.lineEnd
      if (end !== undefined) {
        const e = lastEnd(end, chunk, start, f.carry ?? EMPTY)
        if (e >= 0) f.lineOffset = e
        if (end.bytes.length > 1) f.carry = Buffer.from(chunk.subarray(Math.max(0, n - end.bytes.length + 1)))
      } else if (f.splitter.buffered === 0) f.lineOffset = f.pos
      if (!f.headDone) await this.refreshHead(f)
    } while (n === buf.length)
  }

  private async closeFile(f: OpenFile, flush: boolean): Promise<void> {
    if (flush) f.splitter.flush()
    this.src.registry.release(f, this.path)
    await f.fh.close().catch(() => undefined)
  }

  /** The position to save, or undefined when there is no current file. */
  position(): FilePosition | undefined {
    const f = this.cur
    if (f === undefined) return undefined
    const head = f.lineOffset >= HEAD_MAX ? f.head : headOf(f.head.subarray(0, Math.min(f.head.length, f.lineOffset)))
    return {offset: f.lineOffset, fingerprint: hashHead(head), ino: f.ino, dev: f.dev}
  }

  async savePosition(): Promise<void> {
    const p = this.position()
    if (p === undefined) return
    const text = `${p.offset}/${p.fingerprint}/${p.ino}`
    if (text === this.saved) return
    this.saved = text
    await this.src.savePosition(this.path, p)
  }

  /** Stops: waits for a running check, saves the position, closes the files (draining ones are read to their end first). */
  async close(): Promise<void> {
    // No check may start any more (it would read the draining files concurrently with the loop below).
    this.closed = true
    await this.running
    for (const d of this.drain.splice(0)) {
      await this.readAll(d).catch(() => undefined)
      await this.closeFile(d, true)
    }
    this.src.drainingFollowers.delete(this)
    await this.savePosition().catch((e) => this.src.fail(`${this.path}: saving the position: ${errText(e)}`))
    if (this.cur !== undefined) {
      const f = this.cur
      this.cur = undefined
      this.src.registry.owners.delete(inodeKey(f.dev, f.ino))
      await f.fh.close().catch(() => undefined)
    }
    this.buf = undefined
  }
}

class FileSourceImpl implements Source {
  readonly kind = 'file' as const
  readonly stats: SourceStats = newStats()
  readonly registry = new Registry()
  readonly name: string
  readonly log: SourceContext['log']
  readonly chunkSize: number
  readonly graceMs: number
  /** What ends a line in the raw bytes (undefined: only a drained splitter marks a line end). */
  readonly lineEnd: {bytes: Buffer; unit: number} | undefined
  readonly fromStart: boolean
  stopping = false
  /** Followers still draining rotated-away files (checked on any change in their directory). */
  readonly drainingFollowers = new Set<Follower>()
  private sink: RecordSink = () => undefined
  private readonly followers = new Map<string, Follower>()
  private readonly watchers = new Map<string, FSWatcher>()
  private readonly pattern: string | undefined
  private readonly globBase: string | undefined
  private readonly pollMs: number
  private readonly rescanMs: number
  private readonly saveMs: number
  private readonly useWatch: boolean
  private timers: NodeJS.Timeout[] = []
  private rescanning: Promise<void> | undefined
  private rescanAgain = false
  private rescanSoon: NodeJS.Timeout | undefined
  private errorLogged = ''

  constructor(
    private readonly cfg: FileSource,
    readonly ctx: SourceContext,
    opts: FileSourceOptions,
  ) {
    this.name = cfg.name
    this.log = ctx.log
    const platform = ctx.platform ?? process.platform
    const abs = nodePath.resolve(cfg.path)
    const pattern = platform === 'win32' ? abs.replace(/\\/g, '/') : abs
    if (fg.isDynamicPattern(pattern)) {
      this.pattern = pattern
      const base = fg.generateTasks([pattern])[0]?.base
      this.globBase = base === undefined ? undefined : nodePath.resolve(base)
    } else this.followers.set(abs, new Follower(abs, this, 'initial'))
    this.pollMs = cfg.poll !== undefined ? Math.max(cfg.poll * 1000, 100) : opts.pollMs ?? 1000
    this.rescanMs = opts.rescanMs ?? (cfg.poll !== undefined ? Math.min(this.pollMs, 5000) : 5000)
    this.saveMs = opts.saveMs ?? 5000
    this.graceMs = opts.graceMs ?? 5000
    this.useWatch = opts.watch ?? (cfg.backend === undefined || !/^polling\b/.test(cfg.backend))
    this.chunkSize = Math.max(opts.chunkSize ?? cfg.bufferSize ?? 65536, 256)
    this.lineEnd = lineEndBytes(cfg.eol, cfg.encoding)
    this.fromStart = ctx.fromStart === true || !cfg.skipExisting
  }

  /** The splitter of one open file: its lines become records carrying the path. */
  splitterFor(path: string): LineSplitter {
    return new LineSplitter({eol: this.cfg.eol, maxLine: this.cfg.maxLine, encoding: this.cfg.encoding}, (text) => {
      const now = Date.now() / 1000
      const rec: LogRecord = {source: this.name, text, received: now, fields: {[RECORD_FIELDS.file]: path}}
      this.stats.records++
      this.stats.lastRecord = now
      try {
        this.sink(rec)
      } catch (e) {
        this.fail(`the record sink threw: ${errText(e)}`)
      }
    })
  }

  async start(sink: RecordSink): Promise<void> {
    if (this.stats.state === 'running') return
    this.sink = sink
    this.stopping = false
    this.stats.state = 'running'
    if (this.pattern !== undefined) await this.rescan(true)
    for (const f of this.followers.values()) this.watchDir(nodePath.dirname(f.path))
    if (this.globBase !== undefined) this.watchDir(this.globBase)
    // Set up = every file opened and positioned (a start-up read of a big file goes on afterwards).
    for (const f of this.followers.values()) void f.check()
    await Promise.all([...this.followers.values()].map((f) => f.positioned))
    this.every(this.pollMs, () => this.poll())
    if (this.pattern !== undefined) this.every(this.rescanMs, () => void this.rescan(false))
    this.every(this.saveMs, () => void this.saveAll())
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => {
      if (!this.stopping) fn()
    }, ms)
    t.unref()
    this.timers.push(t)
  }

  /** Stat polling: every follower looks at its file. */
  private poll(): void {
    for (const f of this.followers.values()) void f.check()
    // Watchers lost (directory removed and re-created) are set up again.
    if (this.useWatch) {
      for (const f of this.followers.values()) this.watchDir(nodePath.dirname(f.path))
      if (this.globBase !== undefined) this.watchDir(this.globBase)
    }
  }

  /** Finds the glob's matches; new ones get a follower (read from the start unless found at start-up). */
  private rescan(initial: boolean): Promise<void> {
    if (this.rescanning !== undefined) {
      this.rescanAgain = true
      return this.rescanning
    }
    this.rescanning = (async () => {
      try {
        do {
          this.rescanAgain = false
          let found: string[]
          try {
            found = await fg(this.pattern!, {absolute: true, onlyFiles: true, dot: true, followSymbolicLinks: true, suppressErrors: true})
          } catch (e) {
            this.fail(`scanning ${this.cfg.path}: ${errText(e)}`)
            return
          }
          if (this.stopping) return
          for (const p of found) {
            const abs = nodePath.resolve(p)
            if (this.followers.has(abs)) continue
            const f = new Follower(abs, this, initial ? 'initial' : 'new')
            this.followers.set(abs, f)
            this.log.info(`file source ${this.name}: following ${abs}`)
            this.watchDir(nodePath.dirname(abs))
            if (!initial) void f.check()
          }
          // Followers of files that no longer exist and have nothing left to drain are dropped.
          const set = new Set(found.map((p) => nodePath.resolve(p)))
          for (const [p, f] of this.followers) {
            if (!set.has(p) && !f.active) {
              this.followers.delete(p)
              await f.close()
            }
          }
        } while (this.rescanAgain && !this.stopping)
      } finally {
        this.rescanning = undefined
      }
    })()
    return this.rescanning
  }

  private watchDir(dir: string): void {
    if (!this.useWatch || this.stopping || this.watchers.has(dir)) return
    let w: FSWatcher
    try {
      w = watch(dir, {persistent: false}, (_event, filename) => this.onWatch(dir, filename === null ? null : String(filename)))
    } catch {
      return // the directory does not exist (yet): polling and re-scans continue
    }
    w.on('error', () => {
      w.close()
      if (this.watchers.get(dir) === w) this.watchers.delete(dir)
    })
    this.watchers.set(dir, w)
  }

  private onWatch(dir: string, filename: string | null): void {
    if (this.stopping) return
    if (filename === null) {
      for (const f of this.followers.values()) if (nodePath.dirname(f.path) === dir) void f.check()
    } else {
      const f = this.followers.get(nodePath.join(dir, filename))
      if (f !== undefined) void f.check()
      // A rotated-away file (new name) may still be written to: its follower drains it.
      for (const o of this.drainingFollowers) if (o !== f && nodePath.dirname(o.path) === dir) void o.check()
    }
    if (this.pattern !== undefined && this.rescanSoon === undefined) {
      this.rescanSoon = setTimeout(() => {
        this.rescanSoon = undefined
        if (!this.stopping) void this.rescan(false)
      }, 50)
      this.rescanSoon.unref()
    }
  }

  async loadPosition(path: string): Promise<FilePosition | undefined> {
    try {
      const v = (await this.ctx.positions.get(filePositionKey(path))) as Partial<FilePosition> | undefined
      if (v === undefined || v === null || typeof v !== 'object' || typeof v.offset !== 'number' || typeof v.fingerprint !== 'string') return undefined
      if (!Number.isSafeInteger(v.offset) || v.offset < 0) return undefined
      return v as FilePosition
    } catch (e) {
      this.fail(`reading the saved position of ${path}: ${errText(e)}`)
      return undefined
    }
  }

  async savePosition(path: string, p: FilePosition): Promise<void> {
    await this.ctx.positions.set(filePositionKey(path), p)
  }

  private async saveAll(): Promise<void> {
    for (const f of this.followers.values()) {
      await f.savePosition().catch((e) => this.fail(`${f.path}: saving the position: ${errText(e)}`))
    }
  }

  /** Counts and logs a problem (each distinct message once in a row); reading goes on. */
  fail(message: string): void {
    this.stats.errors++
    this.stats.lastError = message
    if (message !== this.errorLogged) {
      this.errorLogged = message
      this.log.warning(`file source ${this.name}: ${message}`)
    }
  }

  async stop(): Promise<void> {
    if (this.stats.state === 'stopped') return
    this.stopping = true
    for (const t of this.timers) clearInterval(t)
    this.timers = []
    if (this.rescanSoon !== undefined) clearTimeout(this.rescanSoon)
    this.rescanSoon = undefined
    for (const w of this.watchers.values()) w.close()
    this.watchers.clear()
    await this.rescanning
    for (const f of this.followers.values()) await f.close()
    // Followers are made again on the next start (positions are in the store).
    const statics = [...this.followers.keys()]
    this.followers.clear()
    if (this.pattern === undefined) for (const p of statics) this.followers.set(p, new Follower(p, this, 'initial'))
    this.stats.state = 'stopped'
  }
}

/**
 * A file source: records `{source: cfg.name, text, received, fields: {file: <path>}}`, one per
 * line of the followed file(s). `opts` shortens intervals (tests, benchmarks).
 */
export function createFileSource(cfg: FileSource, ctx: SourceContext, opts: FileSourceOptions = {}): Source {
  return new FileSourceImpl(cfg, ctx, opts)
}
