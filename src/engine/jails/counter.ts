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
  // Slicing a fresh concatenation flattens it into a new string of its own: the key then holds
  // at most one extra character, never the line (and allocates nothing outside the V8 heap).
  return s.length < 13 ? s : (' ' + s).slice(1)
}

/**
 * The uint32 of a canonical dotted-quad IPv4 text (`192.0.2.1`; no leading zeros, no spaces), or
 * -1 for any other text, so that formatting the number gives back exactly the same text.
 */
export function ipv4Number(s: string): number {
  const n = s.length
  if (n < 7 || n > 15) return -1
  let acc = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1
      acc = acc * 256 + part
      part = 0
      digits = 0
      dots++
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1 // leading zero
      part = part * 10 + (c - 48)
      if (part > 255 || ++digits > 3) return -1
    } else return -1
  }
  if (dots !== 3 || digits === 0) return -1
  return acc * 256 + part
}

/** Dotted-quad text of a uint32. */
export function ipv4Text(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

const EMPTY = -1
const DELETED = -2

/**
 * IPv4 address → slot, open addressing in two typed arrays (8 bytes a bucket, at most half
 * full): a million IPv4 offenders cost 16 MB here instead of a Map entry and a string each.
 */
class Ipv4Index {
  private keys: Uint32Array
  private vals: Int32Array
  private mask: number
  /** Live entries. */
  size = 0

  get capacity(): number {
    return this.keys.length
  }
  /** Live entries and tombstones. */
  private filled = 0

  constructor(cap = 1024) {
    this.keys = new Uint32Array(cap)
    this.vals = new Int32Array(cap).fill(EMPTY)
    this.mask = cap - 1
  }

  private static hash(k: number): number {
    return Math.imul(k ^ (k >>> 16), 0x45d9f3b) ^ (Math.imul(k, 0x9e3779b1) >>> 15)
  }

  get(k: number): number {
    const keys = this.keys
    const vals = this.vals
    let i = Ipv4Index.hash(k) & this.mask
    for (;;) {
      const v = vals[i]!
      if (v === EMPTY) return -1
      if (v >= 0 && keys[i] === k) return v
      i = (i + 1) & this.mask
    }
  }

  /** Adds a key that is not present. */
  insert(k: number, slot: number): void {
    if ((this.filled + 1) * 2 > this.keys.length) this.rehash(this.size * 4 > this.keys.length ? this.keys.length * 2 : this.keys.length)
    let i = Ipv4Index.hash(k) & this.mask
    while (this.vals[i]! >= 0) i = (i + 1) & this.mask
    if (this.vals[i] === EMPTY) this.filled++
    this.keys[i] = k
    this.vals[i] = slot
    this.size++
  }

  /** Removes a key; returns its slot or -1. */
  delete(k: number): number {
    let i = Ipv4Index.hash(k) & this.mask
    for (;;) {
      const v = this.vals[i]!
      if (v === EMPTY) return -1
      if (v >= 0 && this.keys[i] === k) {
        this.vals[i] = DELETED
        this.size--
        return v
      }
      i = (i + 1) & this.mask
    }
  }

  *entries(): IterableIterator<[number, number]> {
    const vals = this.vals
    for (let i = 0; i < vals.length; i++) if (vals[i]! >= 0) yield [this.keys[i]!, vals[i]!]
  }

  private rehash(cap: number): void {
    const keys = this.keys
    const vals = this.vals
    this.keys = new Uint32Array(cap)
    this.vals = new Int32Array(cap).fill(EMPTY)
    this.mask = cap - 1
    this.size = 0
    this.filled = 0
    for (let i = 0; i < vals.length; i++) if (vals[i]! >= 0) this.insert(keys[i]!, vals[i]!)
  }
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
  /** Keys other than canonical IPv4 addresses → slot. */
  private readonly index = new Map<string, number>()
  /** Canonical IPv4 keys → slot. */
  private v4 = new Ipv4Index()
  private readonly initialCap: number
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
    this.cap = this.initialCap = Math.max(16, opts.capacity ?? 1024)
    this.start = new Float64Array(this.cap)
    this.value = new Float64Array(this.resolution === undefined ? this.cap : 0)
  }

  /** Keys with a counter. */
  get size(): number {
    return this.index.size + this.v4.size
  }

  *keys(): IterableIterator<string> {
    yield* this.index.keys()
    for (const [k] of this.v4.entries()) yield ipv4Text(k)
  }

  has(key: string): boolean {
    return this.slotOf(key) >= 0
  }

  /** The slot of a key, or -1. */
  private slotOf(key: string): number {
    const n = ipv4Number(key)
    if (n >= 0) return this.v4.get(n)
    return this.index.get(key) ?? -1
  }

  /** The slot of a key, created when missing (`isNew` tells). */
  private slotFor(key: string): number {
    const n = ipv4Number(key)
    let slot = n >= 0 ? this.v4.get(n) : (this.index.get(key) ?? -1)
    this.isNew = slot < 0
    if (slot >= 0) return slot
    slot = this.free.length > 0 ? this.free.pop()! : this.next++
    if (slot >= this.cap) this.grow()
    if (n >= 0) this.v4.insert(n, slot)
    else this.index.set(ownString(key), slot)
    return slot
  }

  private isNew = false

  private release(slot: number): void {
    this.pairs[slot] = undefined
    this.free.push(slot)
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
    const slot = this.slotFor(key)
    const isNew = this.isNew
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
    const slot = this.slotOf(key)
    if (slot < 0) return 0
    if (this.resolution === undefined) return Math.abs(t - this.start[slot]!) > this.findtime ? 0 : this.value[slot]!
    const p = this.pairs[slot]
    if (p === undefined) return 0
    const latest = Math.max(this.start[slot]!, Math.floor(t / this.resolution))
    return this.sum(p, latest - this.nBuckets + 1)
  }

  /** Forgets `key` (after a ban without noreset, or an unban). */
  delete(key: string): boolean {
    const n = ipv4Number(key)
    let slot: number
    if (n >= 0) slot = this.v4.delete(n)
    else {
      slot = this.index.get(key) ?? -1
      if (slot >= 0) this.index.delete(key)
    }
    if (slot < 0) return false
    this.release(slot)
    return true
  }

  /** Removes every key whose window has passed at time `t`; returns how many. */
  purge(t: number): number {
    let n = 0
    const expired = (slot: number): boolean =>
      this.resolution === undefined ? t - this.start[slot]! > this.findtime : Math.floor(t / this.resolution) - this.start[slot]! >= this.nBuckets
    for (const [key, slot] of this.index) {
      if (expired(slot)) {
        this.index.delete(key)
        this.release(slot)
        n++
      }
    }
    const gone: number[] = []
    for (const [k, slot] of this.v4.entries()) if (expired(slot)) gone.push(k)
    for (const k of gone) this.release(this.v4.delete(k))
    n += gone.length
    if (this.size === 0) {
      // Everything expired (the end of a spray): give the memory back.
      this.free = []
      this.next = 0
      this.pairs = []
      if (this.cap > this.initialCap) {
        this.cap = this.initialCap
        this.start = new Float64Array(this.cap)
        this.value = new Float64Array(this.resolution === undefined ? this.cap : 0)
      }
      if (this.v4.capacity > 1024) this.v4 = new Ipv4Index()
    }
    return n
  }
}
