/**
 * Capture filters (lua-spylog `cfilter`): predicates on a failure's captures that keep or drop
 * it, applied after a filter matched (FILTER{ cfilter = … }) and again in the jail (JAIL{
 * cfilter = … }, and a counter's `prefix`).
 *
 * Each kind looks at one capture (`capture`) and asks whether it is "in" the filter's set:
 * - `acl`: an address inside one of the networks (IPv4/IPv6, ipaddr.js does the matching);
 * - `list`: equal to one of the values (`nocase`: compared upper-cased);
 * - `regex`: one of the patterns is found in it (Lua patterns, or PCRE via the pattern engine);
 * - `prefix`: starts with one of the prefixes (longest match; prefixes inline or from a file);
 * - `geoip`: the address is located in one of the countries or continents (MaxMind db).
 * `type = 'deny'` (default) drops failures that are in the set; `'allow'` keeps only those. A
 * missing capture is "not in the set" (so an allow filter drops the failure), and a geoip lookup
 * of something that is not an address drops the failure in either mode, as lua-spylog did.
 */
import fs from 'node:fs'
import type {CaptureFilterConfig, PrefixCaptureFilter} from '../config/model.js'
import {ConfigError} from '../fail2ban/errors.js'
import {nullLogger, type Logger} from '../log/logger.js'
import {compileLua} from '../patterns/lua.js'
import {compilePython} from '../patterns/pyre.js'
import {quoteLine} from '../text.js'
import {openGeoip, type GeoipProvider} from './geoip.js'
import {RangeSet} from './ignore.js'

/** Keeps (true) or drops (false) a failure, given its captures. */
export type CaptureFilter = (data: Readonly<Record<string, unknown>>) => boolean

export interface CaptureFilterOptions {
  readonly log?: Logger
  /**
   * Opens the GeoIP database of a geoip filter (default: `openGeoip`, one shared reader per
   * file); or a provider to use for every geoip filter.
   */
  readonly geoip?: GeoipProvider | ((mmdb: string, cache: number | undefined) => GeoipProvider)
}

/** Captured value as text; undefined when absent. */
function valueOf(data: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = data[name]
  if (v === undefined || v === null) return undefined
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  return undefined
}

/** A prefix → label table answering "the longest prefix of this value". */
export class PrefixTable {
  private readonly map = new Map<string, string>()
  private lengths: number[] = []

  add(prefix: string, label: string): void {
    if (prefix === '') return
    this.map.set(prefix, label)
    if (!this.lengths.includes(prefix.length)) this.lengths = [...this.lengths, prefix.length].sort((a, b) => b - a)
  }

  get size(): number {
    return this.map.size
  }

  /** The longest prefix of `value` in the table and its label. */
  longest(value: string): {prefix: string; label: string} | undefined {
    for (const n of this.lengths) {
      if (n > value.length) continue
      const p = value.slice(0, n)
      const label = this.map.get(p)
      if (label !== undefined) return {prefix: p, label}
    }
    return undefined
  }

  /**
   * Reads a prefix file: one prefix per line, an optional label after blanks; empty lines and
   * lines starting with `#` are skipped.
   */
  static fromFile(file: string, origin?: {file: string; line: number}): PrefixTable {
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (e) {
      throw new ConfigError(`prefix file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, origin?.file, origin?.line, 'prefix')
    }
    const t = new PrefixTable()
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim()
      if (line === '' || line.startsWith('#')) continue
      const m = /^(\S+)(?:\s+(.*))?$/.exec(line)!
      t.add(m[1]!, m[2]?.trim() ?? '')
    }
    return t
  }
}

/** The prefix table of a prefix filter (inline prefixes, or its file). */
export function prefixTable(cfg: PrefixCaptureFilter): PrefixTable {
  if (cfg.file !== undefined) return PrefixTable.fromFile(cfg.file, cfg.origin)
  const t = new PrefixTable()
  for (const [p, label] of Object.entries(cfg.prefixes ?? {})) t.add(p, label)
  return t
}

/**
 * Builds one capture filter. Errors in the configuration that only show now (a prefix file or
 * GeoIP database that cannot be read, a pattern that does not compile) are ConfigErrors naming
 * the cfilter's origin.
 */
export function buildCaptureFilter(cfg: CaptureFilterConfig, opts: CaptureFilterOptions = {}): CaptureFilter {
  const allow = cfg.mode === 'allow'
  const name = cfg.capture
  const fail = (msg: string): never => {
    throw new ConfigError(msg, cfg.origin.file, cfg.origin.line, 'cfilter')
  }
  let inSet: (v: string) => boolean
  switch (cfg.kind) {
    case 'acl': {
      const set = new RangeSet()
      for (const n of cfg.networks) if (!set.add(n, n)) fail(`acl: not an address or network: ${JSON.stringify(n)}`)
      inSet = (v) => set.lookup(v) !== undefined
      break
    }
    case 'list': {
      const values = new Set(cfg.nocase ? cfg.values.map((x) => x.toUpperCase()) : cfg.values)
      inSet = cfg.nocase ? (v) => values.has(v.toUpperCase()) : (v) => values.has(v)
      break
    }
    case 'regex': {
      const tests: ((v: string) => boolean)[] = []
      for (const p of cfg.patterns) {
        try {
          if (cfg.engine === 'lua') {
            const c = compileLua(p)
            tests.push((v) => c.find(v) !== null)
          } else {
            const c = compilePython(p, {flavor: 'pcre'})
            tests.push((v) => c.exec(v) !== null)
          }
        } catch (e) {
          fail(`regex ${JSON.stringify(p)}: ${(e as Error).message}`)
        }
      }
      inSet = (v) => tests.some((t) => t(v))
      break
    }
    case 'prefix': {
      const table = prefixTable(cfg)
      inSet = (v) => table.longest(v) !== undefined
      break
    }
    case 'geoip': {
      let provider: GeoipProvider
      try {
        provider = opts.geoip === undefined ? openGeoip(cfg.mmdb, cfg.cache) : typeof opts.geoip === 'function' ? opts.geoip(cfg.mmdb, cfg.cache) : opts.geoip
      } catch (e) {
        return fail((e as Error).message)
      }
      const countries = new Set(cfg.countries.map((c) => c.toUpperCase()))
      const continents = new Set(cfg.continents.map((c) => c.toUpperCase()))
      const log = opts.log ?? nullLogger
      return (data) => {
        const v = valueOf(data, name)
        if (v === undefined) return !allow
        const loc = provider.lookup(v)
        if (loc === undefined) {
          if (log.enabled('debug')) log.debug(`geoip cfilter: ${quoteLine(v, 80)} is not an address: failure dropped`)
          return false
        }
        return countries.has(loc.country) || continents.has(loc.continent) ? allow : !allow
      }
    }
  }
  return (data) => {
    const v = valueOf(data, name)
    return v !== undefined && inSet(v) ? allow : !allow
  }
}

/** All of a list of capture filters: keeps a failure only when every one keeps it. */
export function buildCaptureFilters(list: readonly CaptureFilterConfig[], opts: CaptureFilterOptions = {}): CaptureFilter | undefined {
  if (list.length === 0) return undefined
  const fs_ = list.map((c) => buildCaptureFilter(c, opts))
  if (fs_.length === 1) return fs_[0]
  return (data) => {
    for (const f of fs_) if (!f(data)) return false
    return true
  }
}
