/**
 * spylog's persistent state: one embedded store (nedb-promises, an append-only JSON-lines
 * database) in the data directory, with four datafiles:
 *
 * - `bans.db`      active bans, one document per (jail, offender), keyed by the ticket uuid;
 * - `jobs.db`      the action queue: pending ban and unban jobs (see actions/queue.ts);
 * - `history.db`   past bans `{id, jail, time, bantime}` (growing ban times, recidive);
 * - `positions.db` where sources resume (file offsets, cursors): `store.positions`.
 *
 * Every write is awaited before the caller goes on, so a job is on disk before it runs: after a
 * crash (even SIGKILL) the appended lines are in the file and the next start finds the job again.
 * nedb only appends; the datafiles are rewritten compactly when loaded, every `compactEvery`
 * writes and on close (its compaction writes a temporary file and renames it, so a crash during
 * compaction keeps the old file). A torn last line left by a crash is skipped on load instead of
 * refusing to start (corruptAlertThreshold 1).
 *
 * One process at a time: `spylog.lock` in the directory holds the owner's pid (a lock whose
 * process is gone, or that is older than the last boot, is taken over).
 *
 * Values that come from logs (ticket captures, failure lines) are stored as JSON text, never as
 * document fields: nedb refuses field names with `.` or a leading `$`, which captured names may have.
 */
import {mkdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Datastore from 'nedb-promises'
import type {PositionStore} from '../sources/source.js'

/** An active ban as stored (the queue keeps the same data in memory). */
export interface StoredBan {
  /** The ticket uuid (the `<BAN_UUID>` of its jobs). */
  readonly uuid: string
  readonly jail: string
  readonly id: string
  /** Ban start, Unix seconds. */
  readonly time: number
  /** Ban duration, seconds; -1 for a ban never lifted. */
  readonly bantime: number
  /** When the ban ends (Unix seconds); null: never. Extensions move it later. */
  readonly until: number | null
  /** The Ticket, as JSON. */
  readonly ticket: string
  /** The jobs' action references, as JSON (`{name, params, unique}[]`). */
  readonly refs: string
}

/** A queued job as stored. */
export interface StoredJob {
  /** Job id (random, unique). */
  readonly jid: string
  readonly op: 'ban' | 'unban'
  /** Action (runner) name. */
  readonly action: string
  /** The runner's duplicate key for the ban (`ActionRunner.unique`). */
  readonly unique: string
  /** When the job is due, Unix seconds; null: never (the unban job of a permanent ban). */
  readonly due: number | null
  readonly attempts: number
  /** The ticket the job runs for, as JSON. */
  readonly ticket: string
  /** Merged action parameters, as JSON. */
  readonly params: string
  /** A ban job made by a restart to re-apply an active ban. */
  readonly restore?: boolean
  /** Creation order (ties in due time run in this order). */
  readonly seq: number
}

/** One past ban. */
export interface BanHistoryEntry {
  readonly id: string
  readonly jail: string
  /** Ban start, Unix seconds. */
  readonly time: number
  readonly bantime: number
}

type Doc<T> = T & {_id: string}

const FILES = {bans: 'bans.db', jobs: 'jobs.db', history: 'history.db', positions: 'positions.db'} as const

/** Compact a datafile after this many writes (appends) to it. */
const COMPACT_EVERY = 2000

/** One datafile and its write counter. */
export class Collection<T extends object> {
  private writes = 0

  constructor(
    readonly ds: Datastore<Doc<T>>,
    private readonly compactEvery: number,
  ) {}

  /** Insert or replace the document with this key. */
  async put(key: string, doc: T): Promise<void> {
    await this.ds.update({_id: key}, {...doc, _id: key}, {upsert: true})
    await this.wrote()
  }

  async insertMany(docs: {key: string; doc: T}[]): Promise<void> {
    if (docs.length === 0) return
    await this.ds.insert(docs.map((d) => ({...d.doc, _id: d.key})) as Doc<T>[])
    await this.wrote(docs.length)
  }

  async remove(key: string): Promise<void> {
    await this.ds.remove({_id: key}, {multi: false})
    await this.wrote()
  }

  async get(key: string): Promise<T | undefined> {
    const d = await this.ds.findOne({_id: key})
    return d === null ? undefined : strip(d)
  }

  async all(): Promise<T[]> {
    return (await this.ds.find({})).map(strip)
  }

  async compact(): Promise<void> {
    this.writes = 0
    await (this.ds as unknown as {compactDatafileAsync(): Promise<void>}).compactDatafileAsync()
  }

  private async wrote(n = 1): Promise<void> {
    this.writes += n
    if (this.writes >= this.compactEvery) await this.compact()
  }
}

function strip<T extends object>(d: Doc<T>): T {
  const {_id, ...rest} = d as Doc<T> & Record<string, unknown>
  void _id
  return rest as unknown as T
}

/** Source positions on top of the positions datafile. */
class StorePositions implements PositionStore {
  constructor(private readonly c: Collection<{value: string}>) {}

  async get(key: string): Promise<unknown> {
    const d = await this.c.get(key)
    return d === undefined ? undefined : JSON.parse(d.value)
  }

  async set(key: string, value: unknown): Promise<void> {
    await this.c.put(key, {value: JSON.stringify(value)})
  }
}

export interface StoreOptions {
  /** Compact a datafile after this many writes (default 2000). */
  readonly compactEvery?: number
}

/** The persistent store. Open with `Store.open(dataDir)`; `Store.memory()` keeps nothing on disk. */
export class Store {
  readonly bans: Collection<StoredBan>
  readonly jobs: Collection<StoredJob>
  readonly history: Collection<BanHistoryEntry>
  /** Source positions (file offsets, journal cursors…). */
  readonly positions: PositionStore
  private readonly positionDocs: Collection<{value: string}>
  private closed = false

  private constructor(
    /** The data directory; undefined for a memory store. */
    readonly dir: string | undefined,
    options: StoreOptions,
  ) {
    const every = options.compactEvery ?? COMPACT_EVERY
    const make = <T extends object>(file: string): Collection<T> =>
      new Collection<T>(
        Datastore.create(dir === undefined ? {inMemoryOnly: true} : {filename: path.join(dir, file), corruptAlertThreshold: 1}) as unknown as Datastore<Doc<T>>,
        every,
      )
    this.bans = make<StoredBan>(FILES.bans)
    this.jobs = make<StoredJob>(FILES.jobs)
    this.history = make<BanHistoryEntry>(FILES.history)
    this.positionDocs = make<{value: string}>(FILES.positions)
    this.positions = new StorePositions(this.positionDocs)
  }

  /**
   * Opens (creating it when missing) the store in `dir`. Rejects with an error naming the
   * datafile when one cannot be read or written.
   */
  static async open(dir: string, options: StoreOptions = {}): Promise<Store> {
    try {
      mkdirSync(dir, {recursive: true})
    } catch (e) {
      throw new Error(`cannot create the data directory ${dir}: ${(e as Error).message}`)
    }
    lockDataDir(dir)
    const s = new Store(dir, options)
    for (const [name, c] of s.collections()) {
      try {
        await c.ds.load()
      } catch (e) {
        throw new Error(`cannot load ${path.join(dir, FILES[name])}: ${(e as Error).message}`)
      }
    }
    return s
  }

  /** A store that keeps everything in memory (`--dry-run`, tests). */
  static memory(options: StoreOptions = {}): Store {
    return new Store(undefined, options)
  }

  private collections(): [keyof typeof FILES, Collection<object>][] {
    return [['bans', this.bans], ['jobs', this.jobs], ['history', this.history], ['positions', this.positionDocs]]
  }

  // --- bans ------------------------------------------------------------------------------------

  async loadBans(): Promise<StoredBan[]> {
    return this.bans.all()
  }

  async putBan(b: StoredBan): Promise<void> {
    await this.bans.put(b.uuid, b)
  }

  async deleteBan(uuid: string): Promise<void> {
    await this.bans.remove(uuid)
  }

  // --- jobs ------------------------------------------------------------------------------------

  async loadJobs(): Promise<StoredJob[]> {
    return (await this.jobs.all()).sort((a, b) => a.seq - b.seq)
  }

  async putJob(j: StoredJob): Promise<void> {
    await this.jobs.put(j.jid, j)
  }

  /** Inserts new jobs in one append. */
  async addJobs(js: readonly StoredJob[]): Promise<void> {
    await this.jobs.insertMany(js.map((j) => ({key: j.jid, doc: j})))
  }

  async deleteJob(jid: string): Promise<void> {
    await this.jobs.remove(jid)
  }

  // --- history ---------------------------------------------------------------------------------

  async addHistory(e: BanHistoryEntry): Promise<void> {
    await this.history.insertMany([{key: `${e.time}:${Math.random().toString(36).slice(2)}`, doc: {id: e.id, jail: e.jail, time: e.time, bantime: e.bantime}}])
  }

  /** Past bans, oldest first; only those since `since` (Unix seconds) when given. */
  async loadHistory(since?: number): Promise<BanHistoryEntry[]> {
    const all = await this.history.all()
    return all.filter((e) => since === undefined || e.time >= since).sort((a, b) => a.time - b.time)
  }

  /** Forgets bans that started before `before` (Unix seconds); returns how many were removed. */
  async pruneHistory(before: number): Promise<number> {
    const n = await this.history.ds.remove({time: {$lt: before}}, {multi: true})
    await this.history.compact()
    return n
  }

  // --- maintenance -----------------------------------------------------------------------------

  /** Rewrites every datafile compactly (one line per document). */
  async compact(): Promise<void> {
    for (const [, c] of this.collections()) await c.compact()
  }

  /** Compacts and releases the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.dir !== undefined) {
      await this.compact()
      unlockDataDir(this.dir)
    }
  }
}

const LOCK_FILE = 'spylog.lock'

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Claims the data directory for this process (`spylog.lock` holds the pid): two daemons on one
 * store would corrupt it. A lock left by a process that is gone (a crash) is taken over.
 */
function lockDataDir(dir: string): void {
  const file = path.join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), {flag: 'wx'})
      return
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot lock the data directory ${dir}: ${(e as Error).message}`)
    }
    let pid = NaN
    let beforeBoot = false
    try {
      pid = Number(readFileSync(file, 'utf8').trim())
      // a lock older than the last boot is stale even if its pid was given to another process since
      beforeBoot = statSync(file).mtimeMs < Date.now() - os.uptime() * 1000 - 60_000
    } catch {
      // removed meanwhile: try again
    }
    if (pid === process.pid) return
    if (!beforeBoot && Number.isInteger(pid) && pid > 0 && pidAlive(pid)) throw new Error(`the data directory ${dir} is in use by process ${pid} (another spylog daemon?)`)
    rmSync(file, {force: true})
  }
  throw new Error(`cannot lock the data directory ${dir}`)
}

function unlockDataDir(dir: string): void {
  const file = path.join(dir, LOCK_FILE)
  try {
    if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, {force: true})
  } catch {
    // already gone
  }
}
