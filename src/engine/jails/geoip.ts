/**
 * Country and continent of an address, from a MaxMind database (GeoLite2-Country or any db with
 * `country.iso_code` / `continent.code`), for `geoip` capture filters.
 *
 * The database is read through the `maxmind` package (its mmdb reader: the format is a binary
 * search tree plus a typed data section, not worth re-implementing), once per file and shared
 * by every filter that names it. Answers are kept in an LRU of recent addresses when the
 * filter asks for a cache (`cache = n`), as lua-spylog did with lua-lru.
 */
import fs from 'node:fs'
import {Reader, type CountryResponse} from 'maxmind'
import {canonicalAddress} from '../net/address.js'

/** Where an address is. `--` stands for "not in the database", as in lua-spylog. */
export interface GeoLocation {
  readonly country: string
  readonly continent: string
}

/** Looks addresses up (synchronously: the database is in memory). */
export interface GeoipProvider {
  /** The location of `ip`, or undefined when `ip` is not an address. */
  lookup(ip: string): GeoLocation | undefined
}

const UNKNOWN: GeoLocation = {country: '--', continent: '--'}

/** A small LRU map (Map keeps insertion order: a hit is moved to the end, the first key is the oldest). */
export class Lru<K, V> {
  private readonly map = new Map<K, V>()
  constructor(readonly max: number) {}

  get(k: K): V | undefined {
    const v = this.map.get(k)
    if (v !== undefined) {
      this.map.delete(k)
      this.map.set(k, v)
    }
    return v
  }

  set(k: K, v: V): void {
    this.map.delete(k)
    this.map.set(k, v)
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K)
  }

  get size(): number {
    return this.map.size
  }
}

/** A MaxMind database reader. */
export class MmdbGeoip implements GeoipProvider {
  private readonly reader: Reader<CountryResponse>

  /** Reads the database file now (throws an Error naming the file when it cannot). */
  constructor(readonly path: string) {
    let buf: Buffer
    try {
      buf = fs.readFileSync(path)
    } catch (e) {
      throw new Error(`GeoIP database ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (download GeoLite2-Country.mmdb from MaxMind into the data directory, or set mmdb)' : (e as Error).message}`)
    }
    try {
      this.reader = new Reader<CountryResponse>(buf)
    } catch (e) {
      throw new Error(`GeoIP database ${path}: not a MaxMind database (${(e as Error).message})`)
    }
  }

  lookup(ip: string): GeoLocation | undefined {
    const a = canonicalAddress(ip)
    if (a === undefined) return undefined
    let r: CountryResponse | null
    try {
      r = this.reader.get(a)
    } catch {
      return undefined
    }
    if (r === null) return UNKNOWN
    return {country: r.country?.iso_code ?? '--', continent: r.continent?.code ?? '--'}
  }
}

/** Adds an LRU of `size` recent answers in front of a provider. */
export class CachedGeoip implements GeoipProvider {
  private readonly cache: Lru<string, GeoLocation | null>
  constructor(
    private readonly inner: GeoipProvider,
    size: number,
  ) {
    this.cache = new Lru(size)
  }

  lookup(ip: string): GeoLocation | undefined {
    const hit = this.cache.get(ip)
    if (hit !== undefined) return hit ?? undefined
    const r = this.inner.lookup(ip)
    this.cache.set(ip, r ?? null)
    return r
  }
}

const opened = new Map<string, MmdbGeoip>()

/**
 * The provider for a database file: the file is opened once per process (later calls share the
 * reader); `cache` puts an LRU of that many addresses in front of it.
 */
export function openGeoip(path: string, cache?: number): GeoipProvider {
  let db = opened.get(path)
  if (db === undefined) {
    db = new MmdbGeoip(path)
    opened.set(path, db)
  }
  return cache !== undefined && cache > 0 ? new CachedGeoip(db, cache) : db
}

/** Forgets opened databases (a reload re-reads updated files). */
export function closeGeoipDatabases(): void {
  opened.clear()
}
