/**
 * Rule allocation for the Windows Firewall action: which banned address lives in which block
 * rule. Pure bookkeeping, no I/O — the runner (firewall.ts) asks for a plan, writes it through
 * the shell seam and commits it when the write succeeded.
 *
 * Rules are named `spylog-v4-NNNN` / `spylog-v6-NNNN` (NNNN from 0001) and hold at most
 * `capacity` addresses each (1,000; IPv6 through netsh 500, so that one `netsh` command line
 * stays under Windows' 32,767-character limit). A new address goes into the lowest-numbered rule
 * of its family with a free slot. A rule whose last address leaves is deleted, never written
 * empty: an empty remote-address list means "any", and a block rule for "any" locks everyone
 * out.
 */
import ipaddr from 'ipaddr.js'
import {canonicalAddress} from '../../net/address.js'

export type Family = 'v4' | 'v6'

/** Prefix of every rule spylog owns (rule Name and DisplayName, and the rule group). */
export const RULE_PREFIX = 'spylog'
/** The firewall rule group (PowerShell `-Group`, COM `Grouping`) spylog's rules carry. */
export const RULE_GROUP = 'spylog'
/** Field experience (IPBan, the CrowdSec bouncer): at most 1,000 addresses per rule. */
export const DEFAULT_CAPACITY = 1000
/** CreateProcess' command-line limit, in UTF-16 code units including the terminating NUL. */
export const MAX_COMMAND_LINE = 32767

const RULE_NAME = /^spylog-(v4|v6)-(\d{4})$/

/** `spylog-v4-0001` for family v4, number 1. */
export function ruleName(family: Family, n: number): string {
  return `${RULE_PREFIX}-${family}-${String(n).padStart(4, '0')}`
}

/** Family and number of one of spylog's rule names, or undefined for any other name. */
export function parseRuleName(name: string): {family: Family; n: number} | undefined {
  const m = RULE_NAME.exec(name)
  if (m === null) return undefined
  const n = Number(m[2])
  return n === 0 ? undefined : {family: m[1] as Family, n}
}

/** A validated, canonical block entry: a single address or a network. */
export interface BlockEntry {
  /** Canonical text: `203.0.113.5`, `2001:db8::1`, `198.51.100.0/24`, `2001:db8::/64`. */
  readonly text: string
  readonly family: Family
}

/** Why an id cannot enter a rule (undefined from checkEntry when it can). */
export type RefuseReason = 'not an address' | 'loopback' | 'unspecified' | 'multicast' | 'link-local' | 'network too wide'

/**
 * Validates a ticket id as something a block rule may hold, and returns its canonical text.
 * Only literal addresses and networks pass (ipaddr.js parses them; nothing else ever reaches a
 * script or a command line). Refused: loopback, unspecified, multicast and link-local addresses
 * (the firewall COM setter throws on some of them and none is a remote attacker), and networks
 * wider than /8 (IPv4) or /16 (IPv6), which would block large parts of the Internet — and any
 * network that contains a loopback address.
 */
export function checkEntry(id: string): BlockEntry | RefuseReason {
  if (typeof id !== 'string' || id.length === 0 || id.length > 64 || !/^[0-9A-Fa-f.:/]+$/.test(id)) return 'not an address'
  const slash = id.indexOf('/')
  if (slash < 0) {
    const c = canonicalAddress(id)
    if (c === undefined) return 'not an address'
    const reason = refuseRange(ipaddr.parse(c).range())
    return reason ?? {text: c, family: c.includes(':') ? 'v6' : 'v4'}
  }
  const addrText = id.slice(0, slash)
  const lenText = id.slice(slash + 1)
  if (!/^\d{1,3}$/.test(lenText)) return 'not an address'
  const c = canonicalAddress(addrText)
  if (c === undefined) return 'not an address'
  const v6 = c.includes(':')
  let len = Number(lenText)
  // An IPv4-mapped network written in IPv6 (`::ffff:1.2.3.0/120`) becomes the IPv4 network.
  if (!v6 && addrText.includes(':')) len -= 96
  const max = v6 ? 128 : 32
  if (len < 0 || len > max) return 'not an address'
  if (len === max) {
    const reason = refuseRange(ipaddr.parse(c).range())
    return reason ?? {text: c, family: v6 ? 'v6' : 'v4'}
  }
  if (len < (v6 ? 16 : 8)) return 'network too wide'
  const net = v6 ? ipaddr.IPv6.networkAddressFromCIDR(`${c}/${len}`) : ipaddr.IPv4.networkAddressFromCIDR(`${c}/${len}`)
  const first = refuseRange(net.range())
  if (first !== undefined && first !== 'unspecified') return first
  if (v6 ? ipaddr.parse('::1').match(net, len) : ipaddr.parse('127.0.0.1').match(net, len)) return 'loopback'
  if (first === 'unspecified') return 'network too wide'
  return {text: `${net.toString()}/${len}`, family: v6 ? 'v6' : 'v4'}
}

function refuseRange(range: string): RefuseReason | undefined {
  switch (range) {
    case 'loopback': return 'loopback'
    case 'unspecified': return 'unspecified'
    case 'multicast': return 'multicast'
    case 'linkLocal': return 'link-local'
    default: return undefined
  }
}

/**
 * Reads an address back as Windows reports it and returns spylog's canonical text: Windows
 * writes single IPv4 addresses as `a.b.c.d/255.255.255.255`, single IPv6 addresses as `a-a`
 * ranges, and networks with a dotted mask. Anything else (a real range `a-b`, a keyword such as
 * `LocalSubnet`) is returned undefined: it was not written by spylog.
 */
export function normaliseReadBack(s: string): string | undefined {
  const t = s.trim()
  if (t === '' || t.toLowerCase() === 'any') return undefined
  const dash = t.indexOf('-')
  if (dash >= 0) {
    const a = canonicalAddress(t.slice(0, dash))
    const b = canonicalAddress(t.slice(dash + 1))
    return a !== undefined && a === b ? a : undefined
  }
  const slash = t.indexOf('/')
  if (slash >= 0) {
    const addr = t.slice(0, slash)
    let len = t.slice(slash + 1)
    if (len.includes('.')) {
      try {
        const l = ipaddr.IPv4.parse(len).prefixLengthFromSubnetMask()
        if (l === null) return undefined
        len = String(l)
      } catch {
        return undefined
      }
    }
    const e = checkEntry(`${addr}/${len}`)
    return typeof e === 'string' ? undefined : e.text
  }
  return canonicalAddress(t)
}

/** One write the plan asks for. `set` creates the rule when `create` is true. */
export type RuleOp =
  | {readonly op: 'set'; readonly name: string; readonly family: Family; readonly create: boolean; readonly addresses: readonly string[]}
  | {readonly op: 'delete'; readonly name: string}

/** A rule as read back from the firewall (or from the state file). */
export interface RuleSnapshot {
  readonly name: string
  readonly addresses: readonly string[]
}

export interface RuleBookOptions {
  /** Addresses per rule, per family. */
  readonly capacity?: Partial<Record<Family, number>>
}

/**
 * The desired content of spylog's rules and what was last written to the firewall. `add` and
 * `remove` change the desired state and mark the touched rule dirty; `plan` lists the writes that
 * bring the firewall to the desired state; `commit` records a plan as written.
 */
export class RuleBook {
  readonly capacity: Readonly<Record<Family, number>>
  /** Desired addresses per rule name (insertion-ordered sets). */
  private readonly rules = new Map<string, Set<string>>()
  /** Address → its rule name. */
  private readonly where = new Map<string, string>()
  /** Rules as last written (or read back): name → address count (0 = absent). */
  private readonly applied = new Map<string, number>()
  private readonly dirty = new Set<string>()

  constructor(opts: RuleBookOptions = {}) {
    const cap = (f: Family): number => {
      const c = opts.capacity?.[f] ?? DEFAULT_CAPACITY
      if (!Number.isInteger(c) || c < 1 || c > 10000) throw new RangeError(`rule capacity for ${f} must be an integer 1–10000, got ${c}`)
      return c
    }
    this.capacity = {v4: cap('v4'), v6: cap('v6')}
  }

  /** Whether `text` (canonical) is in a rule's desired content. */
  has(text: string): boolean {
    return this.where.has(text)
  }

  /** The rule an address is (to be) written to. */
  ruleOf(text: string): string | undefined {
    return this.where.get(text)
  }

  /** Whether the rule holding `text` (or the rule it was removed from) still waits for a write. */
  isDirty(name: string): boolean {
    return this.dirty.has(name)
  }

  get pending(): boolean {
    return this.dirty.size > 0
  }

  /** Number of desired addresses. */
  get size(): number {
    return this.where.size
  }

  /** Adds an entry to the lowest rule of its family with a free slot; returns the rule name (unchanged when already present). */
  add(e: BlockEntry): string {
    const at = this.where.get(e.text)
    if (at !== undefined) return at
    const cap = this.capacity[e.family]
    let n = 1
    let name = ruleName(e.family, n)
    for (;;) {
      const set = this.rules.get(name)
      if (set === undefined || set.size < cap) break
      name = ruleName(e.family, ++n)
    }
    let set = this.rules.get(name)
    if (set === undefined) this.rules.set(name, (set = new Set()))
    set.add(e.text)
    this.where.set(e.text, name)
    this.dirty.add(name)
    return name
  }

  /** Removes an address; returns the rule it left, or undefined when it was not present. */
  remove(text: string): string | undefined {
    const name = this.where.get(text)
    if (name === undefined) return undefined
    this.where.delete(text)
    const set = this.rules.get(name)!
    set.delete(text)
    if (set.size === 0) this.rules.delete(name)
    this.dirty.add(name)
    return name
  }

  /**
   * Loads rules read back from the firewall (or the state file) as both desired and applied
   * state. Entries that are not valid, or that `keep` refuses (allow-listed meanwhile), or that
   * appear twice, or overflow a rule's capacity, are dropped and their rule marked dirty, so the
   * next plan rewrites it. Rules whose name is not one of spylog's are ignored.
   */
  load(rules: readonly RuleSnapshot[], keep: (text: string) => boolean = () => true): {dropped: string[]} {
    const dropped: string[] = []
    const sorted = [...rules].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const r of sorted) {
      const p = parseRuleName(r.name)
      if (p === undefined) continue
      this.applied.set(r.name, r.addresses.length)
      let set = this.rules.get(r.name)
      if (set === undefined) set = new Set()
      let changed = r.addresses.length === 0
      for (const a of r.addresses) {
        const e = checkEntry(a)
        if (typeof e === 'string' || e.family !== p.family || !keep(e.text) || this.where.has(e.text) || set.size >= this.capacity[p.family]) {
          dropped.push(a)
          changed = true
          continue
        }
        if (e.text !== a) changed = true
        set.add(e.text)
        this.where.set(e.text, r.name)
      }
      if (set.size > 0) this.rules.set(r.name, set)
      if (changed) this.dirty.add(r.name)
    }
    return {dropped}
  }

  /** The writes that bring the firewall to the desired state, rules in name order. */
  plan(): RuleOp[] {
    const ops: RuleOp[] = []
    for (const name of [...this.dirty].sort()) {
      const set = this.rules.get(name)
      const exists = this.applied.has(name)
      if (set === undefined || set.size === 0) {
        if (exists) ops.push({op: 'delete', name})
        continue
      }
      ops.push({op: 'set', name, family: parseRuleName(name)!.family, create: !exists, addresses: [...set]})
    }
    return ops
  }

  /** Records that `ops` were written; rules changed since the plan was made stay dirty. */
  commit(ops: readonly RuleOp[]): void {
    for (const o of ops) {
      if (o.op === 'delete') this.applied.delete(o.name)
      else this.applied.set(o.name, o.addresses.length)
      const set = this.rules.get(o.name)
      const now = set === undefined ? 0 : set.size
      const wrote = o.op === 'delete' ? 0 : o.addresses.length
      if (now === wrote && (o.op === 'delete' || sameMembers(set!, o.addresses))) this.dirty.delete(o.name)
    }
    // A rule planned for deletion that was never written needs no write.
    for (const name of [...this.dirty]) if (!this.rules.has(name) && !this.applied.has(name)) this.dirty.delete(name)
  }

  /** The desired rules, in name order (what the state file stores). */
  snapshot(): RuleSnapshot[] {
    return [...this.rules.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, set]) => ({name, addresses: [...set]}))
  }

  /** Names of every rule that exists on the firewall as far as this book knows. */
  appliedNames(): string[] {
    return [...this.applied.keys()].sort()
  }
}

function sameMembers(set: Set<string>, list: readonly string[]): boolean {
  if (set.size !== list.length) return false
  for (const a of list) if (!set.has(a)) return false
  return true
}
