/**
 * Failure counters of a jail (lua-spylog `counter`), one per offender key, designed for millions
 * of keys: a Map from key to a slot number, and the slots' numbers in typed arrays (no object per
 * offender, timestamps as plain numbers).
 *
 * Two window kinds:
 * - plain (no `resolution`): as lua-spylog, a key's window opens at its first failure and lasts
 *   `findtime`; a failure further than `findtime` from the window's start (either way: event
 *   times may arrive out of order) starts a new window;
 * - buckets (`resolution = r`): a sliding window of ⌈findtime / r⌉ buckets of r seconds; the
 *   count is the sum of the buckets within `findtime` of the key's latest bucket. Buckets are
 *   kept sparse (only non-empty ones), so a long findtime with a fine resolution stays small.
 * `fixed` counters keep nothing (the captured value is compared with maxretry directly) and do
 * not use this store.
 */

/** Copies a string that may be a slice of a longer one (a log line) so a key never pins the line. */
export function ownString(s: string): string {
  // V8 copies substrings shorter than 13 characters; longer ones may share the parent's memory.
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8')
}

export interface CounterStoreOptions {
  /** Window length, seconds. */
  readonly findtime: number
  /** Bucket size, seconds (sliding window); undefined: plain window. */
  readonly resolution?: number
  /** Initial slot capacity (grows by doubling). */
  readonly capacity?: number
}

/** Counts per key in time windows. Times are Unix seconds (fractions allowed). */
export class CounterStore {
  private readonly index = new Map<string, number>()
  private readonly findtime: number
  private readonly resolution: number | undefined
  /** Buckets in the sliding window. */
  private readonly nBuckets: number
  private cap: number
  /** Plain: window start. Buckets: latest bucket number. */
  private start: Float64Array
  /** Plain: the count. Buckets: unused. */
  private value: Float64Array
  /** Buckets: per slot [bucket, value, bucket, value, …], oldest first. */
  private pairs: (number[] | undefined)[] = []
  private free: number[] = []
  private next = 0

  constructor(opts: CounterStoreOptions) {
    this.findtime = opts.findtime
    this.resolution = opts.resolution !== undefined && opts.resolution > 0 ? opts.resolution : undefined
    this.nBuckets = this.resolution !== undefined ? Math.max(1, Math.ceil(this.findtime / this.resolution)) : 0
    this.cap = Math.max(16, opts.capacity ?? 1024)
    this.start = new Float64Array(this.cap)
    this.value = new Float64Array(this.resolution === undefined ? this.cap : 0)
  }

  /** Keys with a counter. */
  get size(): number {
    return this.index.size
  }

  keys(): IterableIterator<string> {
    return this.index.keys()
  }

  has(key: string): boolean {
    return this.index.has(key)
  }

  private slotFor(key: string): number {
    let slot = this.index.get(key)
    if (slot !== undefined) return slot
    slot = this.free.length > 0 ? this.free.pop()! : this.next++
    if (slot >= this.cap) this.grow()
    this.index.set(ownString(key), slot)
    return slot
  }

  private grow(): void {
    this.cap *= 2
    const s = new Float64Array(this.cap)
    s.set(this.start)
    this.start = s
    if (this.resolution === undefined) {
      const v = new Float64Array(this.cap)
      v.set(this.value)
      this.value = v
    }
  }

  /**
   * Adds `delta` for `key` at time `t`; returns the count in the key's window after adding.
   * A new key opens its window at `t`.
   */
  add(key: string, delta: number, t: number): number {
    const isNew = !this.index.has(key)
    const slot = this.slotFor(key)
    if (this.resolution === undefined) {
      if (isNew || Math.abs(t - this.start[slot]!) > this.findtime) {
        this.start[slot] = t
        this.value[slot] = 0
      }
      return (this.value[slot] = this.value[slot]! + delta)
    }
    const b = Math.floor(t / this.resolution)
    let p = this.pairs[slot]
    if (isNew || p === undefined) {
      this.pairs[slot] = [b, delta]
      this.start[slot] = b
      return delta
    }
    const latest = Math.max(this.start[slot]!, b)
    this.start[slot] = latest
    const oldest = latest - this.nBuckets + 1
    if (b < oldest) return this.sum(p, oldest) // older than the window: not counted
    // Drop buckets that left the window; add into b (kept sorted by bucket).
    let drop = 0
    while (drop < p.length && p[drop]! < oldest) drop += 2
    if (drop > 0) p = p.slice(drop)
    let i = p.length - 2
    while (i >= 0 && p[i]! > b) i -= 2
    if (i >= 0 && p[i] === b) p[i + 1]! += delta
    else p.splice(i + 2, 0, b, delta)
    this.pairs[slot] = p
    return this.sum(p, oldest)
  }

  private sum(p: number[], oldest: number): number {
    let n = 0
    for (let i = 0; i < p.length; i += 2) if (p[i]! >= oldest) n += p[i + 1]!
    return n
  }

  /** The count of `key` in its window as of time `t` (0 when its window has passed). */
  get(key: string, t: number): number {
    const slot = this.index.get(key)
    if (slot === undefined) return 0
    if (this.resolution === undefined) return Math.abs(t - this.start[slot]!) > this.findtime ? 0 : this.value[slot]!
    const p = this.pairs[slot]
    if (p === undefined) return 0
    const latest = Math.max(this.start[slot]!, Math.floor(t / this.resolution))
    return this.sum(p, latest - this.nBuckets + 1)
  }

  /** Forgets `key` (after a ban without noreset, or an unban). */
  delete(key: string): boolean {
    const slot = this.index.get(key)
    if (slot === undefined) return false
    this.index.delete(key)
    this.pairs[slot] = undefined
    this.free.push(slot)
    return true
  }

  /** Removes every key whose window has passed at time `t`; returns how many. */
  purge(t: number): number {
    let n = 0
    for (const [key, slot] of this.index) {
      let expired: boolean
      if (this.resolution === undefined) expired = t - this.start[slot]! > this.findtime
      else expired = Math.floor(t / this.resolution) - this.start[slot]! >= this.nBuckets
      if (expired) {
        this.index.delete(key)
        this.pairs[slot] = undefined
        this.free.push(slot)
        n++
      }
    }
    if (this.index.size === 0) {
      this.free = []
      this.next = 0
      this.pairs = []
    }
    return n
  }
}
