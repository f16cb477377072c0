/**
 * Ban history: the bans each offender received, for growing ban times (fail2ban's
 * `bantime.increment`, which counts earlier bans of the same jail, or of every jail with
 * `bantime.overalljails`) and for `status`. The store helper persists the entries (`entries()`
 * to save, `load()` at start); this module keeps them in memory, indexed by offender.
 */

/** One ban as the history keeps it. */
export interface BanHistoryEntry {
  /** Offender id (address, network or other captured value). */
  readonly id: string
  readonly jail: string
  /** Ban start, Unix seconds. */
  readonly time: number
  /** Ban duration, seconds (-1: permanent). */
  readonly bantime: number
}

/** What jails need from a ban history. */
export interface BanHistory {
  /** Earlier bans of `id`: in `jail`, or in every jail when `jail` is undefined (overalljails). */
  count(id: string, jail: string | undefined): number
  /** Records a ban. */
  add(entry: BanHistoryEntry): void
  /** Replaces nothing: adds stored entries (at start). */
  load(entries: Iterable<BanHistoryEntry>): void
}

/**
 * The in-memory history. Entries older than `maxAge` seconds (when given) are dropped by
 * `prune(now)`, as fail2ban's `dbpurgeage` does; counting never drops anything by itself.
 */
export class MemoryBanHistory implements BanHistory {
  private readonly byId = new Map<string, BanHistoryEntry[]>()
  private total = 0

  count(id: string, jail: string | undefined): number {
    const list = this.byId.get(id)
    if (list === undefined) return 0
    if (jail === undefined) return list.length
    let n = 0
    for (const e of list) if (e.jail === jail) n++
    return n
  }

  add(entry: BanHistoryEntry): void {
    const list = this.byId.get(entry.id)
    if (list === undefined) this.byId.set(entry.id, [entry])
    else list.push(entry)
    this.total++
  }

  load(entries: Iterable<BanHistoryEntry>): void {
    for (const e of entries) this.add(e)
  }

  /** The bans of one offender, oldest first as added. */
  of(id: string): readonly BanHistoryEntry[] {
    return this.byId.get(id) ?? []
  }

  /** Every entry (for persisting). */
  *entries(): IterableIterator<BanHistoryEntry> {
    for (const list of this.byId.values()) yield* list
  }

  get size(): number {
    return this.total
  }

  /** Drops entries that started more than `maxAge` seconds before `now`; returns how many. */
  prune(now: number, maxAge: number): number {
    let dropped = 0
    for (const [id, list] of this.byId) {
      const keep = list.filter((e) => e.time + maxAge >= now)
      dropped += list.length - keep.length
      if (keep.length === 0) this.byId.delete(id)
      else if (keep.length !== list.length) this.byId.set(id, keep)
    }
    this.total -= dropped
    return dropped
  }
}
