/**
 * Offender addresses: validation and the canonical text form used as the offender id
 * (IPv4 dotted quad, IPv6 lower-case compressed, IPv4-mapped IPv6 as IPv4).
 * ipaddr.js does the IPv6 parsing and formatting: it is small, well kept and exact on RFC 5952.
 */
import ipaddr from 'ipaddr.js'

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

/**
 * Strict IPv4 check: four decimal octets 0–255 without leading zeros (what IPV4 matches; a scan,
 * since every failure's address goes through here and a regex call costs more than the check).
 */
export function isIPv4(s: string): boolean {
  const n = s.length
  if (n < 7 || n > 15) return false
  let octets = 0
  let i = 0
  for (;;) {
    const start = i
    let v = 0
    while (i < n) {
      const d = s.charCodeAt(i) - 48
      if (d < 0 || d > 9) break
      v = v * 10 + d
      i++
    }
    const len = i - start
    if (len === 0 || len > 3 || v > 255 || (len > 1 && s.charCodeAt(start) === 48)) return false
    if (++octets === 4) return i === n
    if (i >= n || s.charCodeAt(i) !== 46) return false
    i++
  }
}

/** The regular expression isIPv4 implements (kept as its specification for tests). */
export const IPV4_PATTERN: RegExp = IPV4

/** Recently canonicalised IPv6 texts (offenders repeat; parsing IPv6 is the costly part). */
const v6Cache = new Map<string, string | null>()
const V6_CACHE_MAX = 4096

/** Canonical form of an IPv4 or IPv6 address, or undefined when `s` is not a valid address. */
export function canonicalAddress(s: string): string | undefined {
  if (isIPv4(s)) return s
  if (!s.includes(':')) return undefined
  const hit = v6Cache.get(s)
  if (hit !== undefined) return hit ?? undefined
  const c = canonicalIPv6(s)
  if (v6Cache.size >= V6_CACHE_MAX) v6Cache.clear()
  v6Cache.set(detached(s), c ?? null)
  return c
}

/**
 * A copy of `s` that does not keep its parent string alive. An address is often a slice of a
 * log line, itself a slice of a reader's input text (a 1 MiB chunk when this was written, a
 * ~32 KiB piece now): keyed by such slices, the cache kept that text per cached address (the
 * 1,000,000-line bench held 60+ MiB of dead chunks).
 * Concatenation then slicing makes V8 copy the text into a new string.
 */
function detached(s: string): string {
  return (' ' + s).slice(1)
}

function canonicalIPv6(s: string): string | undefined {
  const zone = s.indexOf('%')
  const bare = zone >= 0 ? s.slice(0, zone) : s
  if (!ipaddr.IPv6.isValid(bare)) return undefined
  try {
    const a = ipaddr.IPv6.parse(bare)
    if (a.isIPv4MappedAddress()) return a.toIPv4Address().toString()
    return a.toString()
  } catch {
    return undefined
  }
}

/** Canonical form of `addr/len` (network address kept as written, prefix validated). */
export function canonicalSubnet(addr: string, len: string): string | undefined {
  const a = canonicalAddress(addr)
  if (a === undefined) return undefined
  const n = Number(len)
  const max = a.includes(':') ? 128 : 32
  if (!/^\d+$/.test(len) || n > max) return undefined
  return `${a}/${n}`
}

/** Whether two address texts denote the same address (falls back to string equality). */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true
  const ca = canonicalAddress(a)
  return ca !== undefined && ca === canonicalAddress(b)
}
