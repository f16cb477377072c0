/**
 * fail2ban's phase-3 regex tags (SPEC §3): `<HOST>`, `<ADDR>`, `<IP4>`, `<F-USER>…</F-USER>`,
 * `<SKIPLINES>` … are expanded into Python-`re` text right before the regex is compiled.
 */

const IP4 = '(?:::f{4,6}:)?(?P<ip4>(?:\\d{1,3}\\.){3}\\d{1,3})'
/*
 * fail2ban writes the IPv6 tail as `(?:H|(?<=:):)`. Every repetition of the preceding
 * `(?:H::?|:){1,7}` ends with ':', so that look-behind always holds and `(?:H|:)` matches exactly
 * the same (checked on 300,000 random strings with python3's re: no difference). Without the
 * look-behind every `<HOST>` regex stays eligible for V8's linear-time fallback.
 */
const IP6 = '(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|:))'
const DNS = '(?P<dns>[\\w\\-.^_]*\\w)'
const ADDR = `\\[?(?:${IP4}|${IP6})\\]?`
const CIDR = '(?P<cidr>\\d+)'
const SUBNET = `\\[?(?:${IP4}|${IP6})(?:/${CIDR})?\\]?`

const STATIC: Record<string, string> = {
  IP4, 'F-IP4/': IP4,
  IP6, 'F-IP6/': IP6,
  DNS, 'F-DNS/': DNS,
  ADDR, 'F-ADDR/': ADDR,
  CIDR, 'F-CIDR/': CIDR,
  SUBNET, 'F-SUBNET/': SUBNET,
  'F-ID/': '(?P<fid>\\S+)',
  'F-PORT/': '(?P<fport>\\w+)',
}

const TAG = /<\/?[\w-]+\/?>/g
const CUSTOM = /^(\/?)F-([A-Z0-9_-]+)$/

/** Name of the capture group an `<F-NAME>` tag opens. */
export function tagGroupName(tag: string): string {
  const n = tag.toLowerCase()
  return n === 'id' ? 'fid' : n === 'port' ? 'fport' : n
}

/** Expand the phase-3 tags of one regex. `usedns = 'no'` makes `<HOST>` an address only. */
export function expandTags(regex: string, usedns = 'warn'): string {
  const open = new Set<string>()
  let skip = 0
  return regex.replace(TAG, (tag) => {
    const name = tag.slice(1, -1)
    if (name === 'HOST') return usedns === 'no' ? ADDR : `(?:${ADDR}|${DNS})`
    if (name === 'SKIPLINES') return `\\n(?P<skiplines${skip++}>(?:(?:.*\\n)*?))`
    const stat = STATIC[name]
    if (stat !== undefined) return stat
    const m = CUSTOM.exec(name)
    if (!m) return tag
    if (m[1]) return open.has(m[2]) ? ')' : tag
    open.add(m[2])
    return `(?P<${tagGroupName(m[2])}>`
  })
}

/**
 * Python ≥ 3.11 rejects global flags in the middle of a pattern; fail2ban rewrites the forms
 * `((?i)X)` and `(?:(?i)X)` to the scoped `(?i:X)` (which makes the first form non-capturing).
 */
export function rewriteInlineFlags(regex: string): string {
  return regex.replace(/\((?:\?:)?\(\?([a-z]+)\)/g, '(?$1:')
}

/** The full `<HOST>` expansion, used by the greedy catch-all lint. */
export function hostExpansion(usedns = 'warn'): string {
  return expandTags('<HOST>', usedns)
}
