/**
 * Offenders that are never banned: the WHITE_IP list, a jail's fail2ban `ignoreip` (addresses,
 * networks, host names, `file:` lists), `ignoreself` (the host's own addresses), loopback and
 * unspecified addresses (always), and fail2ban's `ignorecommand` (a program asked per offender;
 * exit status 0 means "ignore").
 *
 * The synchronous checks (`reason`, `has`, `overlaps`) are the hot path: ranges are parsed once
 * into ipaddr.js values (no hand-written CIDR math), exact addresses sit in a Set, and an id is
 * parsed at most once per check. Host names are resolved with dns.lookup at `start()` and again
 * every `refreshInterval`; `file:` lists are read at `start()` and re-read when they change; own
 * addresses are re-read at every refresh.
 *
 * `ignorecommand` never goes through a shell: the command line is split into argv once
 * (quotes and backslashes as a POSIX shell reads them, nothing expanded), and each tag (`<ip>`,
 * `<fid>`, `<family>`, `<F-NAME>` / captured names) is substituted inside the one argument
 * where it is written, so a hostile id stays one inert argument.
 */
import {lookup} from 'node:dns/promises'
import fs from 'node:fs'
import os from 'node:os'
import ipaddr from 'ipaddr.js'
import {splitCommandLine} from '../actions/argv.js'
import {execArgv} from '../actions/exec.js'
import {replaceTags} from '../actions/tags.js'
import {canonicalNetwork} from '../config/model.js'
import type {JailConfig} from '../config/model.js'
import {nullLogger, type Logger} from '../log/logger.js'
import {canonicalAddress} from '../net/address.js'
import {quoteLine} from '../text.js'

type Addr = ipaddr.IPv4 | ipaddr.IPv6

/** An address being checked: its canonical text, parsed by ipaddr.js only when a network needs it. */
export class Probe {
  private parsed: Addr | undefined
  constructor(
    readonly canon: string,
    readonly v6: boolean,
  ) {}

  get addr(): Addr {
    return (this.parsed ??= ipaddr.parse(this.canon))
  }

  /** The probe of an address text (any form: IPv4-mapped is IPv4, a zone is dropped), or undefined. */
  static of(id: string): Probe | undefined {
    const c = canonicalAddress(id)
    return c === undefined ? undefined : new Probe(c, c.includes(':'))
  }
}

interface Net {
  readonly net: Addr
  readonly bits: number
  readonly label: string
}

/**
 * A set of addresses and networks parsed once (ipaddr.js values; exact addresses in a Map),
 * each with a label for log messages. Shared by the never-ban list and `acl` capture filters.
 */
export class RangeSet {
  private readonly exact = new Map<string, string>()
  private readonly nets4: Net[] = []
  private readonly nets6: Net[] = []
  /** The exact addresses parsed (for `overlap`), built on first need. */
  private parsedExact: {addr: Addr; label: string}[] | undefined

  /** Adds an address or network (any form `canonicalNetwork` reads); false when it is neither. */
  add(text: string, label: string): boolean {
    const c = canonicalNetwork(text)
    if (c === undefined) return false
    this.parsedExact = undefined
    const slash = c.indexOf('/')
    if (slash < 0) {
      if (!this.exact.has(c)) this.exact.set(c, label)
      return true
    }
    const [net, bits] = ipaddr.parseCIDR(c)
    const full = net.kind() === 'ipv4' ? 32 : 128
    if (bits === full) {
      if (!this.exact.has(c.slice(0, slash))) this.exact.set(c.slice(0, slash), label)
    } else (net.kind() === 'ipv4' ? this.nets4 : this.nets6).push({net, bits, label})
    return true
  }

  get size(): number {
    return this.exact.size + this.nets4.length + this.nets6.length
  }

  /** Adds every range of `other`, with its labels. */
  addAll(other: RangeSet): void {
    for (const [a, label] of other.exact) if (!this.exact.has(a)) this.exact.set(a, label)
    this.parsedExact = undefined
    this.nets4.push(...other.nets4)
    this.nets6.push(...other.nets6)
  }

  /** The label of a range holding the address text `id` (any form; IPv4-mapped is IPv4), or undefined. */
  lookup(id: string): string | undefined {
    const p = Probe.of(id)
    return p === undefined ? undefined : this.find(p)
  }

  /** The label of a range holding the probed address. */
  find(p: Probe): string | undefined {
    const e = this.exact.get(p.canon)
    if (e !== undefined) return e
    const nets = p.v6 ? this.nets6 : this.nets4
    if (nets.length === 0) return undefined
    const addr = p.addr
    for (const n of nets) if (addr.match(n.net, n.bits)) return n.label
    return undefined
  }

  /** The label of a range sharing any address with the network `net`/`bits`. */
  overlap(net: Addr, bits: number): string | undefined {
    const kind = net.kind()
    this.parsedExact ??= [...this.exact].map(([a, label]) => ({addr: ipaddr.parse(a), label}))
    for (const {addr, label} of this.parsedExact) if (addr.kind() === kind && addr.match(net, bits)) return label
    for (const n of kind === 'ipv4' ? this.nets4 : this.nets6) {
      if (net.match(n.net, Math.min(bits, n.bits))) return n.label
    }
    return undefined
  }
}

/** Always protected: loopback and unspecified addresses (IPv4-mapped forms are read as IPv4). */
const ALWAYS = new RangeSet()
for (const r of ['127.0.0.0/8', '::1', '0.0.0.0', '::']) ALWAYS.add(r, 'loopback')

/** Whether a probed address is loopback or unspecified (string tests on the canonical form: no parse). */
function isAlways(p: Probe): boolean {
  return p.v6 ? p.canon === '::1' || p.canon === '::' : p.canon.startsWith('127.') || p.canon === '0.0.0.0'
}

export interface NeverBanOptions {
  /** WHITE_IP{} (canonical addresses/networks). */
  readonly whiteIp?: readonly string[]
  /** The jail's `ignoreip` addresses/networks. */
  readonly ignoreIp?: readonly string[]
  /** `ignoreip` host names (resolved at start and every refreshInterval). */
  readonly ignoreHosts?: readonly string[]
  /** `ignoreip` `file:` lists (one address, network or host per line; `#` comments). */
  readonly ignoreFiles?: readonly string[]
  /** Never ban the host's own addresses (default true, as fail2ban's `ignoreself`). */
  readonly ignoreSelf?: boolean
  /** fail2ban `ignorecommand` (exit 0: ignore). */
  readonly ignoreCommand?: string
  /** Milliseconds before an ignorecommand is killed (counts as "not ignored"); default 10 000. */
  readonly commandTimeout?: number
  /** Seconds an ignorecommand answer is reused for the same id (fail2ban `ignorecache`); default 300. */
  readonly commandCacheTime?: number
  /** Seconds between host name / own address refreshes; default 300. */
  readonly refreshInterval?: number
  /** Milliseconds between checks of the ignore files for changes; default 5000. */
  readonly fileInterval?: number
  /** Jail name for log messages. */
  readonly jail?: string
  readonly log?: Logger
  /** Clock for the command cache, Unix seconds. */
  readonly clock?: () => number
}

/** Values an ignorecommand's tags take besides the id. */
export type CommandTags = Readonly<Record<string, unknown>>

/**
 * The never-ban list of one jail (or, with only `whiteIp`, the global one the action runners
 * get as `ActionContext.neverBan`). Call `start()` before use when host names, files or an own
 * address refresh are involved, and `stop()` at shutdown.
 */
export class NeverBan {
  private readonly fixed = new RangeSet()
  private hosts = new RangeSet()
  private files = new RangeSet()
  private self = new RangeSet()
  private readonly opts: NeverBanOptions
  private readonly log: Logger
  private readonly argv: string[] | undefined
  private readonly cmdCache = new Map<string, {until: number; ignore: boolean}>()
  private timer: NodeJS.Timeout | undefined
  private fileTimer: NodeJS.Timeout | undefined
  private checking = false
  /** State of each ignore file when it was last read (undefined: missing). */
  private readonly fileStats = new Map<string, {mtimeMs: number; size: number; ino: number}>()
  private readonly fileSets = new Map<string, RangeSet>()
  private readonly fileHosts = new Map<string, string[]>()

  constructor(opts: NeverBanOptions = {}) {
    this.opts = opts
    this.log = opts.log ?? nullLogger
    for (const w of opts.whiteIp ?? []) this.fixed.add(w, `WHITE_IP ${w}`)
    for (const w of opts.ignoreIp ?? []) this.fixed.add(w, `ignoreip ${w}`)
    if (opts.ignoreSelf !== false) this.readSelf()
    this.argv = opts.ignoreCommand !== undefined && opts.ignoreCommand.trim() !== '' ? splitCommandLine(opts.ignoreCommand, 'posix') : undefined
    if (this.argv !== undefined && this.argv.length === 0) this.argv = undefined
  }

  /** The never-ban list for a jail: WHITE_IP plus the jail's ignore settings. */
  static forJail(cfg: JailConfig, whiteIp: readonly string[], log?: Logger): NeverBan {
    return new NeverBan({
      whiteIp, ignoreIp: cfg.ignoreIp, ignoreHosts: cfg.ignoreHosts, ignoreFiles: cfg.ignoreFiles,
      ignoreSelf: cfg.ignoreSelf, ignoreCommand: cfg.ignoreCommand, jail: cfg.name, log,
    })
  }

  /** Resolves host names, reads ignore files, and starts their refresh. */
  async start(): Promise<void> {
    await Promise.all([this.resolveHosts(), ...(this.opts.ignoreFiles ?? []).map((f) => this.readFile(f))])
    const interval = (this.opts.refreshInterval ?? 300) * 1000
    if ((this.opts.ignoreHosts?.length ?? 0) > 0 || this.opts.ignoreSelf !== false || this.fileHosts.size > 0) {
      this.timer = setInterval(() => void this.refresh(), interval)
      this.timer.unref()
    }
    // Each file is compared with the state it had when it was last read (not with the previous
    // poll), so a change made while it was being read is not missed.
    if ((this.opts.ignoreFiles?.length ?? 0) > 0) {
      this.fileTimer = setInterval(() => void this.checkFiles(), this.opts.fileInterval ?? 5000)
      this.fileTimer.unref()
    }
  }

  private async checkFiles(): Promise<void> {
    if (this.checking) return
    this.checking = true
    try {
      for (const f of this.opts.ignoreFiles ?? []) {
        const st = await fs.promises.stat(f).catch(() => undefined)
        const seen = this.fileStats.get(f)
        const same = st === undefined ? seen === undefined : seen !== undefined && st.mtimeMs === seen.mtimeMs && st.size === seen.size && st.ino === seen.ino
        if (!same) {
          await this.readFile(f)
          this.rebuildFiles()
        }
      }
    } finally {
      this.checking = false
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    if (this.fileTimer !== undefined) clearInterval(this.fileTimer)
    this.fileTimer = undefined
  }

  /** Re-resolves host names and re-reads own addresses (also run by the refresh timer). */
  async refresh(): Promise<void> {
    if (this.opts.ignoreSelf !== false) this.readSelf()
    await this.resolveHosts()
    for (const f of this.fileHosts.keys()) await this.readFile(f)
    this.rebuildFiles()
  }

  /**
   * Why `id` must never be banned (a label such as `loopback`, `WHITE_IP 10.0.0.0/8`), or
   * undefined. `id` may be an address or a network (`2001:db8::/64`): a network is protected
   * when it holds any protected address. Ids that are not addresses are never protected here.
   */
  reason(id: string): string | undefined {
    if (id.includes('/')) {
      const c = canonicalNetwork(id)
      if (c === undefined) return undefined
      const [net, bits] = ipaddr.parseCIDR(c)
      return this.overlapReason(net, bits)
    }
    const p = Probe.of(id)
    if (p === undefined) return undefined
    return this.fixed.find(p) ?? this.hosts.find(p) ?? this.files.find(p) ?? this.self.find(p) ?? (isAlways(p) ? 'loopback' : undefined)
  }

  /** Whether `id` must never be banned (see `reason`). */
  has(id: string): boolean {
    return this.reason(id) !== undefined
  }

  /** Why the network `net`/`bits` holds a protected address, if it does. */
  overlapReason(net: Addr, bits: number): string | undefined {
    return this.fixed.overlap(net, bits) ?? this.hosts.overlap(net, bits) ?? this.files.overlap(net, bits) ?? this.self.overlap(net, bits) ?? ALWAYS.overlap(net, bits)
  }

  /** Whether an ignorecommand is configured (then `commandIgnores` must be awaited before a ban). */
  get hasCommand(): boolean {
    return this.argv !== undefined
  }

  /**
   * Runs the ignorecommand for `id` (argv, no shell; `<ip>` and the other tags substituted in
   * place). Resolves true when it exited with status 0. A timeout, a spawn error or another
   * status is "not ignored" (logged). Answers are cached for `commandCacheTime` seconds.
   */
  async commandIgnores(id: string, tags: CommandTags = {}): Promise<boolean> {
    const argv = this.argv
    if (argv === undefined) return false
    const now = (this.opts.clock ?? (() => Date.now() / 1000))()
    const hit = this.cmdCache.get(id)
    if (hit !== undefined && hit.until > now) return hit.ignore
    const values: Record<string, string> = {}
    for (const [k, v] of Object.entries(tags)) if (v !== undefined && v !== null && typeof v !== 'object') values[k.toLowerCase()] = String(v)
    const p = Probe.of(id)
    values['ip'] = id
    values['fid'] = id
    values['family'] = p === undefined ? '' : p.v6 ? 'inet6' : 'inet4'
    const args = argv.map((a) => substituteTags(a, values))
    const ignore = await this.run(args, id)
    if (this.cmdCache.size >= 10000) this.cmdCache.clear()
    this.cmdCache.set(id, {until: now + (this.opts.commandCacheTime ?? 300), ignore})
    return ignore
  }

  private async run(args: string[], id: string): Promise<boolean> {
    const where = this.opts.jail !== undefined ? `[${this.opts.jail}] ` : ''
    const timeoutMs = this.opts.commandTimeout ?? 10000
    let r
    try {
      // killTree: a script's children die with it, so a hung check never outlives its time limit
      r = await execArgv(args, {timeoutMs, killTree: true, maxOutput: 2000})
    } catch (e) {
      this.log.error(`${where}ignorecommand ${args[0]}: ${(((e as Error).cause ?? e) as Error).message}`)
      return false
    }
    if (r.timedOut) {
      this.log.error(`${where}ignorecommand ${args[0]} for ${id}: no answer within ${timeoutMs} ms, killed (not ignored)`)
      return false
    }
    if (r.code !== 0 && r.code !== 1) this.log.warning(`${where}ignorecommand ${args[0]} for ${id} exited with ${r.code ?? 'a signal'}${r.stderr !== '' ? `: ${r.stderr.trim().slice(0, 200)}` : ''} (not ignored)`)
    return r.code === 0
  }

  private readSelf(): void {
    const set = new RangeSet()
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) set.add(a.address.split('%')[0]!, `own address ${a.address}`)
    }
    this.self = set
  }

  private async resolveHosts(): Promise<void> {
    const names = [...(this.opts.ignoreHosts ?? []), ...[...this.fileHosts.values()].flat()]
    if (names.length === 0) return
    const set = new RangeSet()
    await Promise.all(names.map(async (h) => {
      try {
        for (const r of await lookup(h, {all: true})) set.add(r.address, `ignoreip host ${h}`)
      } catch (e) {
        this.log.warning(`${this.opts.jail !== undefined ? `[${this.opts.jail}] ` : ''}ignoreip: cannot resolve ${h}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
      }
    }))
    this.hosts = set
  }

  private async readFile(file: string): Promise<void> {
    const set = new RangeSet()
    const hosts: string[] = []
    let text: string
    // The state before the read: a write during the read makes the next check read again.
    const st = await fs.promises.stat(file).catch(() => undefined)
    if (st === undefined) this.fileStats.delete(file)
    else this.fileStats.set(file, {mtimeMs: st.mtimeMs, size: st.size, ino: st.ino})
    try {
      text = await fs.promises.readFile(file, 'utf8')
    } catch (e) {
      this.log.warning(`${this.opts.jail !== undefined ? `[${this.opts.jail}] ` : ''}ignoreip file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
      this.fileSets.set(file, set)
      this.rebuildFiles()
      return
    }
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim()
      if (line === '') return
      for (const item of line.split(/[\s,]+/)) {
        if (set.add(item, `ignoreip file ${file}:${i + 1}`)) continue
        if (/^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/.test(item) && !/^[\d.]+$/.test(item)) hosts.push(item)
        else this.log.warning(`${file}:${i + 1}: not an address, network or host name: ${quoteLine(item, 80)}`)
      }
    })
    const hostsChanged = (this.fileHosts.get(file) ?? []).join() !== hosts.join()
    this.fileSets.set(file, set)
    if (hosts.length > 0) this.fileHosts.set(file, hosts)
    else this.fileHosts.delete(file)
    this.rebuildFiles()
    if (hostsChanged) await this.resolveHosts()
  }

  private rebuildFiles(): void {
    const set = new RangeSet()
    for (const s of this.fileSets.values()) set.addAll(s)
    this.files = set
  }
}

/** Replaces `<name>` tags (case-insensitive; `<F-NAME>` too) inside one argument. Unknown tags stay. */
function substituteTags(arg: string, values: Readonly<Record<string, string>>): string {
  return replaceTags(arg, (name) => {
    const key = (name.startsWith('F-') ? name.slice(2) : name).toLowerCase()
    return Object.hasOwn(values, key) ? values[key] : undefined
  })
}
