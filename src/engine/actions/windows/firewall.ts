/**
 * The Windows Firewall action: banned addresses are kept in a few block rules
 * (`spylog-v4-NNNN`, `spylog-v6-NNNN`, at most 1,000 addresses each, see rules.ts) that are
 * rewritten in place. Writes are batched: bans and unbans change the desired state in memory and
 * a flush writes every touched rule once, at most once per `flush_interval` (1.5 s by default;
 * the first change after a quiet period is written at once). A ban job's promise resolves when
 * the flush that carried it succeeded.
 *
 * Two backends, both behind the Shell seam (shell.ts):
 * - `powershell` (default): one `powershell.exe` per flush running a fixed script (NetSecurity
 *   cmdlets: New-/Set-/Remove-NetFirewallRule, rules in group `spylog`); the plan is JSON on
 *   stdin. At start the rules are read back (`Get-NetFirewallRule -DisplayName spylog-*`), so the
 *   firewall itself is the record; the firewall profiles are checked too.
 * - `netsh`: `netsh advfirewall firewall add|set|delete rule` per rule, for hosts where
 *   PowerShell cannot run. netsh's output is localised, so the rule book is kept in the state
 *   file only; IPv6 rules hold 500 addresses so that a command line stays under 32,767.
 *
 * Rule bookkeeping (which jails hold which address, the rules as last written) is saved in
 * `<dataDir>/windows-firewall.json` after each flush. Nothing but validated literal addresses
 * reaches a rule; allow-listed and loopback addresses are refused.
 */
import fs from 'node:fs'
import path from 'node:path'
import type {ActionConfig, ParamValue} from '../../config/model.js'
import type {Logger} from '../../log/logger.js'
import {ActionError, type ActionContext, type ActionFactory, type ActionOp, type ActionRunner, type BanRequest} from '../action.js'
import {checkEntry, normaliseReadBack, parseRuleName, RULE_GROUP, RuleBook, type Family, type RuleOp, type RuleSnapshot} from './rules.js'
import {assertCommandLine, firstLine, POWERSHELL, powershellArgs, ProcessShell, type Shell} from './shell.js'

export type FirewallBackend = 'powershell' | 'netsh'

/** Description written on every rule. */
export const RULE_DESCRIPTION = 'Managed by spylog (banned addresses). Do not edit: remove with spylog firewall clear.'

/** The state file in the data directory. */
export const STATE_FILE = 'windows-firewall.json'

/**
 * The fixed PowerShell script behind both backends' PowerShell calls. Its input (stdin) is JSON:
 * `{ops: [{op: 'set', name, create, addresses} | {op: 'delete', name}], list?: true, clear?: true}`.
 * It applies the ops in order (idempotently: `set` creates a missing rule, `delete` ignores a
 * missing one), then optionally removes every spylog rule, then optionally reads spylog's rules
 * and the firewall profiles back. spylog's rules are those in group `spylog` and those whose
 * display name is exactly `spylog-v4-NNNN` / `spylog-v6-NNNN` (netsh cannot set a group). It prints one JSON object:
 * `{ok, done, error?, rules?: [{name, id, enabled, action, direction, addresses}], profiles?: [{name, enabled}], removed?: [names]}`.
 * Rule names are checked again here and an empty address list is refused, whatever the caller sent.
 */
export const FIREWALL_SCRIPT = `$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$out = [ordered]@{ ok = $true; done = 0 }
function Get-SpylogRules {
  @(Get-NetFirewallRule -DisplayName 'spylog-v*' -ErrorAction SilentlyContinue) + @(Get-NetFirewallRule -Group '${RULE_GROUP}' -ErrorAction SilentlyContinue) |
    Where-Object { $_ -ne $null -and ($_.DisplayName -cmatch '^spylog-v[46]-[0-9]{4}$' -or $_.Group -eq '${RULE_GROUP}') } |
    Sort-Object -Property Name -Unique
}
try {
  $plan = [Console]::In.ReadToEnd() | ConvertFrom-Json
  foreach ($o in @($plan.ops)) {
    $name = [string]$o.name
    if ($name -cnotmatch '^spylog-v[46]-[0-9]{4}$') { throw "refusing rule name '$name'" }
    if ($o.op -eq 'delete') {
      Remove-NetFirewallRule -Name $name -ErrorAction SilentlyContinue
    } elseif ($o.op -eq 'set') {
      $addr = [string[]]@($o.addresses)
      if ($addr.Count -eq 0) { throw "refusing to write an empty address list to $name" }
      if (Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue) {
        Set-NetFirewallRule -Name $name -RemoteAddress $addr
      } else {
        New-NetFirewallRule -Name $name -DisplayName $name -Group '${RULE_GROUP}' -Description '${RULE_DESCRIPTION}' -Direction Inbound -Action Block -Profile Any -Protocol Any -RemoteAddress $addr | Out-Null
      }
    } else {
      throw "unknown operation '$($o.op)'"
    }
    $out.done = $out.done + 1
  }
  if ($plan.clear) {
    $gone = @(Get-SpylogRules)
    $out.removed = @($gone | ForEach-Object { $_.DisplayName } | Sort-Object -Unique)
    $gone | Remove-NetFirewallRule -ErrorAction SilentlyContinue
  }
  if ($plan.list) {
    $out.rules = @(Get-SpylogRules | ForEach-Object {
      $f = $_ | Get-NetFirewallAddressFilter
      [ordered]@{ name = $_.DisplayName; id = $_.Name; enabled = [string]$_.Enabled; action = [string]$_.Action; direction = [string]$_.Direction; addresses = @($f.RemoteAddress | ForEach-Object { [string]$_ }) }
    })
    $out.profiles = @(Get-NetFirewallProfile | ForEach-Object { [ordered]@{ name = [string]$_.Name; enabled = [string]$_.Enabled } })
  }
} catch {
  $out.ok = $false
  $out.error = $_.Exception.Message
}
[Console]::Out.Write((ConvertTo-Json -InputObject $out -Depth 5 -Compress))
if (-not $out.ok) { exit 1 }
`

/** A spylog rule as read from the firewall. */
export interface FirewallRuleInfo {
  readonly name: string
  /** The rule's unique id (PowerShell Name); equals name for rules spylog created through PowerShell. */
  readonly id?: string
  readonly enabled?: boolean
  readonly action?: string
  readonly direction?: string
  /** Canonical addresses (Windows' read-back forms normalised). */
  readonly addresses: readonly string[]
  /** Entries that are not spylog's (a range, a keyword), or an empty list: this rule blocks "any". */
  readonly foreign: readonly string[]
}

export interface FirewallProfileInfo {
  readonly name: string
  readonly enabled: boolean
}

/** How to reach the firewall: the seam, the program playing powershell.exe, the backend, the state directory. */
export interface FirewallAccess {
  readonly shell?: Shell
  /** Program run in place of powershell.exe (tests: a fake). */
  readonly powershell?: string
  /** Program run in place of netsh.exe. */
  readonly netsh?: string
  readonly backend?: FirewallBackend
  /** Where the state file lives. */
  readonly dataDir?: string
  readonly timeoutMs?: number
}

interface ScriptReply {
  ok: boolean
  done: number
  error?: string
  rules?: Array<{name?: unknown; id?: unknown; enabled?: unknown; action?: unknown; direction?: unknown; addresses?: unknown}>
  profiles?: Array<{name?: unknown; enabled?: unknown}>
  removed?: unknown
}

class ScriptFailure extends Error {
  constructor(message: string, readonly done: number) {
    super(message)
  }
}

/** Runs FIREWALL_SCRIPT with a plan; throws ScriptFailure (with the count of ops done) on failure. */
async function runScript(a: FirewallAccess, plan: {ops: readonly RuleOp[]; list?: boolean; clear?: boolean}): Promise<ScriptReply> {
  const shell = a.shell ?? new ProcessShell()
  const program = a.powershell ?? POWERSHELL
  const args = powershellArgs(FIREWALL_SCRIPT)
  assertCommandLine(program, args)
  const input = JSON.stringify({ops: plan.ops.map(scriptOp), list: plan.list === true, clear: plan.clear === true})
  let r
  try {
    r = await shell.run(program, args, {input, timeoutMs: a.timeoutMs})
  } catch (e) {
    throw new ScriptFailure(`cannot run ${program}: ${(e as Error).message}`, 0)
  }
  let reply: ScriptReply | undefined
  try {
    const parsed = JSON.parse(r.stdout.trim()) as unknown
    if (parsed !== null && typeof parsed === 'object' && typeof (parsed as ScriptReply).ok === 'boolean') reply = parsed as ScriptReply
  } catch {
    reply = undefined
  }
  if (reply === undefined) {
    const why = firstLine(r.stderr) || firstLine(r.stdout) || (r.code === null ? 'killed (timeout?)' : `exit status ${r.code}`)
    throw new ScriptFailure(`${program} failed: ${why}`, 0)
  }
  if (!reply.ok || r.code !== 0) throw new ScriptFailure(`${program}: ${reply.error ?? `exit status ${r.code}`}`, Number(reply.done) || 0)
  return reply
}

function scriptOp(o: RuleOp): object {
  return o.op === 'delete' ? {op: 'delete', name: o.name} : {op: 'set', name: o.name, create: o.create, addresses: o.addresses}
}

function toRuleInfo(r: NonNullable<ScriptReply['rules']>[number]): FirewallRuleInfo | undefined {
  if (typeof r.name !== 'string') return undefined
  const raw = Array.isArray(r.addresses) ? r.addresses.filter((x): x is string => typeof x === 'string') : []
  const addresses: string[] = []
  const foreign: string[] = []
  for (const x of raw) {
    const c = normaliseReadBack(x)
    if (c === undefined) foreign.push(x)
    else addresses.push(c)
  }
  if (raw.length === 0) foreign.push('Any')
  return {
    name: r.name,
    id: typeof r.id === 'string' ? r.id : undefined,
    enabled: typeof r.enabled === 'string' ? r.enabled.toLowerCase() === 'true' : undefined,
    action: typeof r.action === 'string' ? r.action : undefined,
    direction: typeof r.direction === 'string' ? r.direction : undefined,
    addresses,
    foreign,
  }
}

/** netsh argv for one op (several when a `set` must fall back to `add`). */
export function netshArgs(o: RuleOp): string[][] {
  if (o.op === 'delete') return [['advfirewall', 'firewall', 'delete', 'rule', `name=${o.name}`]]
  const list = o.addresses.join(',')
  const add = ['advfirewall', 'firewall', 'add', 'rule', `name=${o.name}`, 'dir=in', 'action=block', 'profile=any', 'protocol=any', 'interface=any', `remoteip=${list}`, `description=${RULE_DESCRIPTION}`]
  if (o.create) return [['advfirewall', 'firewall', 'delete', 'rule', `name=${o.name}`], add]
  return [['advfirewall', 'firewall', 'set', 'rule', `name=${o.name}`, 'new', `remoteip=${list}`], add]
}

/** Writes ops with netsh; returns how many were done before a failure (throws then). */
async function runNetsh(a: FirewallAccess, ops: readonly RuleOp[]): Promise<void> {
  const shell = a.shell ?? new ProcessShell()
  const program = a.netsh ?? 'netsh.exe'
  let done = 0
  for (const o of ops) {
    const calls = netshArgs(o)
    const exec = async (args: string[]): Promise<{code: number | null; why: string}> => {
      assertCommandLine(program, args)
      try {
        const r = await shell.run(program, args, {timeoutMs: a.timeoutMs})
        return {code: r.code, why: firstLine(r.stdout) || firstLine(r.stderr)}
      } catch (e) {
        throw new ScriptFailure(`cannot run ${program}: ${(e as Error).message}`, done)
      }
    }
    if (o.op === 'delete') {
      await exec(calls[0]) // "No rules match" is fine: the rule is gone either way
    } else if (o.create) {
      await exec(calls[0]) // netsh `add` makes duplicates: remove a leftover of the same name first
      const r = await exec(calls[1])
      if (r.code !== 0) throw new ScriptFailure(`${program} add rule ${o.name} failed (exit ${r.code}): ${r.why}`, done)
    } else {
      const r = await exec(calls[0])
      if (r.code !== 0) {
        // The rule vanished (removed by hand, or by `spylog firewall clear`): create it again.
        const r2 = await exec(calls[1])
        if (r2.code !== 0) throw new ScriptFailure(`${program} set rule ${o.name} failed (exit ${r.code}): ${r.why}`, done)
      }
    }
    done++
  }
}

/** Reads spylog's rules and the firewall profiles (PowerShell backend). */
export async function readFirewall(a: FirewallAccess): Promise<{rules: FirewallRuleInfo[]; profiles: FirewallProfileInfo[]}> {
  const reply = await runScript(a, {ops: [], list: true})
  const rules = (reply.rules ?? []).map(toRuleInfo).filter((r): r is FirewallRuleInfo => r !== undefined)
  const profiles = (reply.profiles ?? []).flatMap((p) => (typeof p.name === 'string' ? [{name: p.name, enabled: String(p.enabled).toLowerCase() === 'true'}] : []))
  return {rules, profiles}
}

interface StateFile {
  version: 1
  backend: FirewallBackend
  /** The rules as last written. */
  rules: RuleSnapshot[]
  /** Address → jails holding a ban on it. */
  holders: Record<string, string[]>
}

/** Reads the state file; undefined when absent. Throws a clear error when it is not ours. */
export function readState(dataDir: string): StateFile | undefined {
  const file = path.join(dataDir, STATE_FILE)
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  try {
    const s = JSON.parse(text) as StateFile
    if (s?.version !== 1 || !Array.isArray(s.rules)) throw new Error('not a spylog Windows firewall state file')
    const rules = s.rules.filter((r) => typeof r?.name === 'string' && Array.isArray(r.addresses)).map((r) => ({name: r.name, addresses: r.addresses.filter((x) => typeof x === 'string')}))
    const holders: Record<string, string[]> = {}
    if (s.holders !== null && typeof s.holders === 'object') {
      for (const [k, v] of Object.entries(s.holders)) if (Array.isArray(v)) holders[k] = v.filter((x) => typeof x === 'string')
    }
    return {version: 1, backend: s.backend === 'netsh' ? 'netsh' : 'powershell', rules, holders}
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`)
  }
}

function writeState(dataDir: string, s: StateFile): void {
  fs.mkdirSync(dataDir, {recursive: true})
  const file = path.join(dataDir, STATE_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(s) + '\n')
  fs.renameSync(tmp, file)
}

/**
 * spylog's rules and the firewall profiles, for `spylog firewall list`: read from the firewall
 * (PowerShell), or from the state file (netsh: its output cannot be parsed reliably).
 */
export async function listFirewallRules(a: FirewallAccess): Promise<{source: 'firewall' | 'state'; rules: FirewallRuleInfo[]; profiles: FirewallProfileInfo[]}> {
  if ((a.backend ?? 'powershell') === 'netsh') {
    const s = a.dataDir === undefined ? undefined : readState(a.dataDir)
    const rules = (s?.rules ?? []).map((r) => ({name: r.name, addresses: r.addresses, foreign: []}))
    return {source: 'state', rules, profiles: []}
  }
  return {source: 'firewall', ...(await readFirewall(a))}
}

/**
 * Removes every spylog rule (`spylog firewall clear`, uninstall): with PowerShell every rule
 * named `spylog-v4-NNNN` / `spylog-v6-NNNN` or in group `spylog`; with netsh every rule the
 * state file names. The state file is removed too. Returns the names removed.
 */
export async function clearFirewallRules(a: FirewallAccess): Promise<string[]> {
  let removed: string[]
  const state = a.dataDir === undefined ? undefined : readState(a.dataDir)
  if ((a.backend ?? 'powershell') === 'netsh') {
    const names = (state?.rules ?? []).map((r) => r.name).filter((n) => parseRuleName(n) !== undefined)
    await runNetsh(a, names.map((name) => ({op: 'delete', name})))
    removed = names
  } else {
    const reply = await runScript(a, {ops: [], clear: true})
    removed = Array.isArray(reply.removed) ? reply.removed.filter((x): x is string => typeof x === 'string') : []
  }
  if (a.dataDir !== undefined) fs.rmSync(path.join(a.dataDir, STATE_FILE), {force: true})
  return removed
}

/** Options of the runner beyond the ActionConfig (tests and the CLI). */
export interface WindowsFirewallOptions extends FirewallAccess {
  /** Minimum time between two writes, milliseconds (default: the action's `flush_interval` option, else 1500). */
  readonly flushInterval?: number
  /** Addresses per rule (default 1000; IPv6 through netsh 500). */
  readonly capacity?: Partial<Record<Family, number>>
}

interface Waiter {
  resolve(): void
  reject(e: Error): void
}

/** Holder recorded for addresses found in a rule with no jail on record (a rule written before a crash). */
const UNKNOWN_HOLDER = '*'

/** The batched Windows Firewall runner. */
export class WindowsFirewallRunner implements ActionRunner {
  readonly name: string
  private readonly log: Logger
  private readonly access: FirewallAccess & {backend: FirewallBackend}
  private readonly interval: number
  private readonly book: RuleBook
  private readonly holders = new Map<string, Set<string>>()
  private waiters: Waiter[] = []
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined
  private lastWrite = 0
  private failures = 0
  private started = false
  private starting: Promise<void> | undefined
  /** Jail holders changed without a rule write: the state file needs saving. */
  private stateDirty = false
  /** Number of writes (PowerShell runs, or netsh batches) done: for tests and stats. */
  writes = 0

  constructor(cfg: ActionConfig, private readonly ctx: ActionContext, opts: WindowsFirewallOptions = {}) {
    this.name = cfg.name
    this.log = ctx.log
    const o = cfg.options
    const backend = opts.backend ?? optString(o, 'backend') ?? 'powershell'
    if (backend !== 'powershell' && backend !== 'netsh') throw new ActionError(`action ${cfg.name}: backend must be 'powershell' or 'netsh', not ${JSON.stringify(backend)}`, false)
    const timeoutMs = opts.timeoutMs ?? optNumber(o, 'timeout') ?? 60_000
    this.access = {...opts, backend, timeoutMs, dataDir: opts.dataDir ?? ctx.dataDir}
    this.interval = opts.flushInterval ?? optNumber(o, 'flush_interval') ?? 1500
    const cap = optNumber(o, 'capacity')
    this.book = new RuleBook({capacity: {v4: opts.capacity?.v4 ?? cap ?? 1000, v6: opts.capacity?.v6 ?? (backend === 'netsh' ? Math.min(cap ?? 500, 500) : cap ?? 1000)}})
  }

  unique(_op: ActionOp, req: BanRequest): string {
    return `${this.name}\u0000${req.ticket.jail}\u0000${req.ticket.id}`
  }

  /** Reads the rules back (once; concurrent callers share the work). */
  start(): Promise<void> {
    if (this.started) return Promise.resolve()
    this.starting ??= this.doStart().finally(() => {
      this.starting = undefined
    })
    return this.starting
  }

  private async doStart(): Promise<void> {
    if (this.access.shell === undefined && (this.ctx.platform ?? process.platform) !== 'win32' && this.ctx.dryRun !== true) {
      throw new ActionError(`action ${this.name}: the Windows Firewall action runs only on Windows (this is ${this.ctx.platform ?? process.platform}); use the nftables, ipset or iptables firewall action here`, false)
    }
    const dataDir = this.access.dataDir
    let state: StateFile | undefined
    try {
      state = dataDir === undefined ? undefined : readState(dataDir)
    } catch (e) {
      this.log.warning(`Windows Firewall: ignoring the state file: ${(e as Error).message}`)
    }
    let rules: RuleSnapshot[] = state?.rules ?? []
    if (this.access.backend === 'powershell' && this.ctx.dryRun !== true) {
      const fw = await readFirewall(this.access).catch((e: Error) => {
        throw new ActionError(`action ${this.name}: cannot read the Windows Firewall: ${e.message}`)
      })
      const off = fw.profiles.filter((p) => !p.enabled).map((p) => p.name)
      if (off.length > 0) this.log.warning(`Windows Firewall is off for the ${off.join(', ')} profile${off.length > 1 ? 's' : ''}: spylog's block rules have no effect there`)
      rules = fw.rules.map((r) => ({name: r.name, addresses: r.foreign.length > 0 ? [...r.addresses, ...r.foreign] : r.addresses}))
    }
    const {dropped} = this.book.load(rules, (text) => this.ctx.neverBan?.(text) !== true)
    for (const d of dropped) this.log.notice(`Windows Firewall: removing ${d} from spylog's rules (allow-listed, not an address, or a duplicate)`)
    for (const r of this.book.snapshot()) {
      for (const a of r.addresses) {
        const h = state?.holders[a]
        this.holders.set(a, new Set(h !== undefined && h.length > 0 ? h : [UNKNOWN_HOLDER]))
      }
    }
    this.started = true
    if (this.book.size > 0) this.log.info(`Windows Firewall: ${this.book.size} address${this.book.size === 1 ? '' : 'es'} in ${this.book.snapshot().length} spylog rule(s)`)
    if (this.book.pending) await this.flushNow()
  }

  async run(op: ActionOp, req: BanRequest): Promise<void> {
    const t = req.ticket
    if (!this.started) await this.start()
    if (!t.isAddress) throw new ActionError(`action ${this.name}: ${JSON.stringify(t.id)} is not an address; the Windows Firewall can only block addresses`, false)
    const e = checkEntry(t.id)
    if (typeof e === 'string') throw new ActionError(`action ${this.name}: refusing to block ${JSON.stringify(t.id)}: ${e}`, false)
    if (op === 'ban') {
      if (this.ctx.neverBan?.(e.text) === true || (e.text !== t.id && this.ctx.neverBan?.(t.id) === true)) {
        throw new ActionError(`action ${this.name}: refusing to block ${e.text}: it is allow-listed`, false)
      }
      let h = this.holders.get(e.text)
      if (h === undefined) this.holders.set(e.text, (h = new Set()))
      const before = h.size
      h.add(t.jail)
      const rule = this.book.add(e)
      if (!this.book.isDirty(rule)) {
        if (h.size !== before) this.markState()
        return
      }
      return this.waitFlush()
    }
    const h = this.holders.get(e.text)
    if (h !== undefined) {
      h.delete(t.jail)
      h.delete(UNKNOWN_HOLDER)
      if (h.size > 0) {
        this.markState()
        this.log.debug(`Windows Firewall: ${e.text} stays blocked (also banned by ${[...h].join(', ')})`)
        return
      }
      this.holders.delete(e.text)
    }
    const rule = this.book.remove(e.text)
    if (rule === undefined || !this.book.isDirty(rule)) return
    return this.waitFlush()
  }

  /** Writes pending changes now and waits for every write in progress. */
  async flushNow(): Promise<void> {
    for (;;) {
      if (this.timer !== undefined) {
        clearTimeout(this.timer)
        this.timer = undefined
      }
      if (this.flushing === undefined) break
      await this.flushing.catch(() => {})
    }
    if (this.book.pending || this.waiters.length > 0 || this.stateDirty) await this.flush()
  }

  async stop(): Promise<void> {
    if (!this.started) return
    await this.flushNow().catch((e: Error) => this.log.error(`Windows Firewall: last write failed: ${e.message}`))
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  /**
   * Makes the rules hold exactly the given active bans (after start(), once the daemon knows its
   * active bans from the store): addresses in spylog's rules that no active ban holds — left
   * behind by a lost store or an unban that never ran — are removed; holders are set from the
   * list. Bans in the list that are missing from the rules are not added here: the queue re-applies
   * them. Resolves when the rules are written.
   */
  async retainOnly(active: Iterable<{readonly jail: string; readonly id: string}>): Promise<string[]> {
    if (!this.started) await this.start()
    const keep = new Map<string, Set<string>>()
    for (const b of active) {
      const e = checkEntry(b.id)
      if (typeof e === 'string') continue
      let h = keep.get(e.text)
      if (h === undefined) keep.set(e.text, (h = new Set()))
      h.add(b.jail)
    }
    const removed: string[] = []
    for (const r of this.book.snapshot()) {
      for (const a of r.addresses) {
        const h = keep.get(a)
        if (h === undefined) {
          this.book.remove(a)
          this.holders.delete(a)
          removed.push(a)
        } else {
          this.holders.set(a, new Set(h))
        }
      }
    }
    if (removed.length > 0) this.log.notice(`Windows Firewall: removing ${removed.length} address${removed.length === 1 ? '' : 'es'} no active ban holds`)
    this.stateDirty = true
    await this.flushNow()
    return removed
  }

  /** The desired rules (for status and tests). */
  rules(): RuleSnapshot[] {
    return this.book.snapshot()
  }

  private markState(): void {
    this.stateDirty = true
    this.schedule()
  }

  private waitFlush(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({resolve, reject})
      this.schedule()
    })
  }

  private schedule(minDelay = 0): void {
    if (this.timer !== undefined || this.flushing !== undefined) return
    const wait = Math.max(minDelay, this.lastWrite + this.interval - Date.now(), 0)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flush().catch(() => {})
    }, wait)
  }

  private flush(): Promise<void> {
    const p = this.doFlush()
    this.flushing = p
    return p.finally(() => {
      if (this.flushing === p) this.flushing = undefined
      if (this.waiters.length > 0) this.schedule()
      else if (this.book.pending && this.failures > 0) this.schedule(this.interval * Math.min(2 ** this.failures, 40))
      else if (this.book.pending || this.stateDirty) this.schedule()
    })
  }

  private async doFlush(): Promise<void> {
    const waiters = this.waiters
    this.waiters = []
    this.stateDirty = false
    const ops = this.book.plan()
    try {
      if (ops.length > 0) await this.write(ops)
      this.failures = 0
      this.saveState()
      for (const w of waiters) w.resolve()
    } catch (e) {
      this.failures++
      const err = e instanceof ActionError ? e : new ActionError(`Windows Firewall: ${(e as Error).message}`)
      this.log.error(err.message)
      for (const w of waiters) w.reject(err)
      throw err
    } finally {
      this.lastWrite = Date.now()
    }
  }

  private async write(ops: readonly RuleOp[]): Promise<void> {
    if (this.log.enabled('debug')) {
      this.log.debug(`Windows Firewall: ${ops.map((o) => (o.op === 'delete' ? `delete ${o.name}` : `${o.create ? 'create' : 'set'} ${o.name} (${o.addresses.length})`)).join(', ')}`)
    }
    if (this.ctx.dryRun === true) {
      this.book.commit(ops)
      return
    }
    this.writes++
    try {
      if (this.access.backend === 'netsh') await runNetsh(this.access, ops)
      else await runScript(this.access, {ops})
    } catch (e) {
      if (e instanceof ScriptFailure) {
        this.book.commit(ops.slice(0, e.done))
        this.saveState()
      }
      throw e
    }
    this.book.commit(ops)
  }

  private saveState(): void {
    const dir = this.access.dataDir
    if (dir === undefined || this.ctx.dryRun === true) return
    const holders: Record<string, string[]> = {}
    for (const [a, h] of this.holders) holders[a] = [...h]
    try {
      writeState(dir, {version: 1, backend: this.access.backend, rules: this.book.snapshot(), holders})
    } catch (e) {
      this.log.error(`Windows Firewall: cannot save ${path.join(dir, STATE_FILE)}: ${(e as Error).message}`)
    }
  }
}

function optString(o: Readonly<Record<string, ParamValue>>, k: string): string | undefined {
  const v = o[k]
  return typeof v === 'string' ? v : undefined
}

function optNumber(o: Readonly<Record<string, ParamValue>>, k: string): number | undefined {
  const v = o[k]
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined
  return n !== undefined && Number.isFinite(n) && n >= 0 ? n : undefined
}

/**
 * The factory the daemon registers for the Windows Firewall (`@spylog.actions.firewall` on
 * Windows). Action options: `backend` ('powershell' | 'netsh'), `flush_interval` (ms),
 * `capacity` (addresses per rule), `timeout` (ms per PowerShell/netsh call).
 */
export const createWindowsFirewallAction: ActionFactory = (cfg, ctx) => new WindowsFirewallRunner(cfg, ctx)
