/**
 * A small table of entries by string key, remembering insertion order: the multi-line failure
 * sessions of a fail2ban filter, by mlfid (at most a hundred, looked up on nearly every failure).
 *
 * A Map did this job, but its keys here are fresh slices of the line every time: the Map hashed
 * each in V8's runtime and compared it in full against the stored key; it was the costliest
 * single line of the failure bookkeeping. This table hashes in JavaScript (FNV-1a over the
 * key's tail, compiled inline by the optimiser), compares hashes before strings, and links its
 * entries intrusively (no allocation per entry beyond the entry itself).
 */

/** The links an entry carries; the table owns them (set by `add`, cleared by `delete`). */
export interface Keyed<E> {
  key: string
  hash: number
  /** Next entry in the same bucket. */
  chain: E | undefined
  older: E | undefined
  newer: E | undefined
}

/**
 * FNV-1a over the string's length and its last 8 UTF-16 code units, as a 32-bit integer. A
 * session id ends with what tells sessions apart (`host sshd[4711]: `): hashing only its tail
 * halves the cost on the bench log's ids (~21 characters); keys that share a tail share a
 * bucket, and `get` compares the whole key anyway.
 */
export function keyHash(s: string): number {
  const n = s.length
  let h = Math.imul(0x811c9dc5 ^ n, 0x01000193)
  for (let i = n > 8 ? n - 8 : 0; i < n; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h | 0
}

export class KeyedTable<E extends Keyed<E>> {
  private readonly buckets: (E | undefined)[]
  private readonly mask: number
  private head: E | undefined = undefined
  private tail: E | undefined = undefined
  size = 0

  /** `capacity`: the most entries the caller keeps; the table has at least four buckets per entry. */
  constructor(capacity: number) {
    let n = 8
    while (n < capacity * 4) n *= 2
    this.buckets = new Array<E | undefined>(n).fill(undefined)
    this.mask = n - 1
  }

  /** The entry with `key` (whose keyHash is `hash`), or undefined. */
  get(key: string, hash: number): E | undefined {
    for (let e = this.buckets[hash & this.mask]; e !== undefined; e = e.chain) {
      if (e.hash === hash && e.key === key) return e
    }
    return undefined
  }

  /** Add an entry whose key is not in the table (its `key` and `hash` set), as the newest. */
  add(e: E): void {
    const b = e.hash & this.mask
    e.chain = this.buckets[b]
    this.buckets[b] = e
    e.older = this.tail
    e.newer = undefined
    if (this.tail !== undefined) this.tail.newer = e
    else this.head = e
    this.tail = e
    this.size++
  }

  /** Remove an entry of this table. */
  delete(e: E): void {
    const b = e.hash & this.mask
    let p = this.buckets[b]
    if (p === e) this.buckets[b] = e.chain
    else {
      while (p !== undefined && p.chain !== e) p = p.chain
      if (p === undefined) return
      p.chain = e.chain
    }
    if (e.older !== undefined) e.older.newer = e.newer
    else this.head = e.newer
    if (e.newer !== undefined) e.newer.older = e.older
    else this.tail = e.older
    e.chain = e.older = e.newer = undefined
    this.size--
  }

  /** The entry added first among those left. */
  oldest(): E | undefined {
    return this.head
  }

  /** Entries from the oldest. */
  *entries(): IterableIterator<E> {
    for (let e = this.head; e !== undefined; e = e.newer) yield e
  }

  clear(): void {
    this.buckets.fill(undefined)
    this.head = this.tail = undefined
    this.size = 0
  }
}
