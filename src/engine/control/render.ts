/**
 * The CLI side of the control commands (`spylog status | banned | ban | unban | reload | stop |
 * ping`): their shared flags, the request/exit-code plumbing, and the text shown for each reply
 * (cli-table3 tables, fail2ban-client's status tree). Log text quoted in a reply (the failures
 * behind a ban) is shown with control characters escaped, so a crafted log line cannot drive the
 * terminal.
 */
import {Flags, type Command} from '@oclif/core'
import {Chalk, type ChalkInstance} from 'chalk'
import Table from 'cli-table3'
import {formatLocalTime} from '../log/logger.js'
import {ControlClientError, request, type ExitCode} from './client.js'
import {resolveControlPaths} from './paths.js'
import type {
  BanDetail,
  BanInfo,
  BannedResult,
  BanResult,
  CommandArgs,
  CommandName,
  CommandResults,
  JailStatus,
  ReloadResult,
  SourceStatus,
  StatusResult,
  UnbanResult,
} from './protocol.js'

// ---------------------------------------------------------------------------------------------
// Text helpers

/** Escapes control characters (C0, DEL, C1: terminal escapes, carriage returns) as \xNN / \uNNNN. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const n = c.charCodeAt(0)
    if (c === '\t') return '\\t'
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`
  })
}

/** A compact span: 45s, 9m59s, 2h3m, 1d2h, 3w; -1 → permanent. At most two units. */
export function formatSpan(seconds: number): string {
  if (seconds < 0) return 'permanent'
  const s = Math.floor(seconds)
  if (s < 60) return `${s}s`
  const units: [string, number][] = [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]
  let rest = s
  const parts: string[] = []
  for (const [u, n] of units) {
    const k = Math.floor(rest / n)
    rest -= k * n
    if (k > 0) parts.push(`${k}${u}`)
    else if (parts.length > 0) break // adjacent units only: 1h, not 1h5s
    if (parts.length === 2) break
  }
  return parts.join('')
}

/** Local date and time of a Unix time, to the second. */
export function formatTime(unixSeconds: number): string {
  return formatLocalTime(unixSeconds * 1000)
}

function timeLeft(b: BanInfo): string {
  return b.timeLeft < 0 || b.bantime < 0 ? 'permanent' : `${formatSpan(b.timeLeft)} left`
}

function ordinal(n: number): string {
  const k = n % 100
  const suffix = k >= 11 && k <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')
  return `${n}${suffix}`
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`

function table(head: string[], c: ChalkInstance): Table.Table {
  return new Table({head: head.map((h) => c.bold(h)), style: {head: [], border: []}})
}

function stateText(s: SourceStatus['state'], c: ChalkInstance): string {
  switch (s) {
    case 'running':
      return c.green(s)
    case 'retrying':
    case 'starting':
      return c.yellow(s)
    case 'failed':
      return c.red(s)
    default:
      return c.dim(s)
  }
}

// ---------------------------------------------------------------------------------------------
// Replies as text

/** `spylog status`: the jails and the sources, as tables. */
export function renderStatus(s: StatusResult, c: ChalkInstance, now = Date.now() / 1000): string {
  const out: string[] = []
  const queued = s.queueDepth !== undefined ? `, ${plural(s.queueDepth, 'job')} queued` : ''
  out.push(`spylog ${printable(s.version)} (pid ${s.pid}), up ${formatSpan(Math.max(0, now - s.started))}${queued}`)
  out.push('')
  out.push(c.bold(`Jails (${s.jails.length})`))
  if (s.jails.length > 0) {
    const t = table(['jail', 'currently failed', 'total failed', 'currently banned', 'total banned', 'filters', 'sources'], c)
    for (const j of s.jails) {
      t.push([printable(j.name), j.currentlyFailed, j.totalFailed, j.currentlyBanned > 0 ? c.red(String(j.currentlyBanned)) : '0', j.totalBanned,
        j.filters.map(printable).join('\n'), j.sources.map(printable).join('\n')])
    }
    out.push(t.toString())
  }
  out.push('')
  out.push(c.bold(`Sources (${s.sources.length})`))
  if (s.sources.length > 0) {
    const withErrors = s.sources.some((x) => x.lastError !== undefined && x.lastError !== '')
    const t = table(['source', 'kind', 'state', 'records', 'bytes', 'errors', 'drops', 'last record', ...(withErrors ? ['last error'] : [])], c)
    for (const x of s.sources) {
      const last = x.lastRecord === undefined ? '-' : `${formatSpan(Math.max(0, now - x.lastRecord))} ago`
      const row: (string | number)[] = [printable(x.name), printable(x.kind), stateText(x.state, c), x.records, x.bytes, x.errors > 0 ? c.yellow(String(x.errors)) : '0', x.drops, last]
      if (withErrors) row.push(printable(x.lastError ?? ''))
      t.push(row)
    }
    out.push(t.toString())
  }
  return out.join('\n')
}

/** A tree in fail2ban-client's style: `|-` items, `` `- `` last item, values aligned. */
function tree(title: string, branches: {name: string; items: [string, string[]][]}[]): string {
  const out = [title]
  const width = Math.max(0, ...branches.flatMap((b) => b.items.map(([k]) => k.length))) + 1
  branches.forEach((b, bi) => {
    const lastBranch = bi === branches.length - 1
    out.push(`${lastBranch ? '`-' : '|-'} ${b.name}`)
    const pad = lastBranch ? '   ' : '|  '
    b.items.forEach(([k, values], ii) => {
      const lastItem = ii === b.items.length - 1
      const head = `${pad}${lastItem ? '`-' : '|-'} ${(k + ':').padEnd(width + 1)}`
      const vs = values.length === 0 ? [''] : values
      out.push((head + vs[0]).trimEnd())
      const cont = `${pad}${lastItem ? '  ' : '| '} ${' '.repeat(width + 1)}`
      for (const v of vs.slice(1)) out.push(cont + v)
    })
  })
  return out.join('\n')
}

/** `spylog status <jail>`: fail2ban-client's tree. */
export function renderJailStatus(j: JailStatus, c: ChalkInstance): string {
  const sources = j.filter.sources.map((s) => `${printable(s.spec ?? s.name)} (${printable(s.kind)}, ${stateText(s.state, c)}, ${plural(s.records, 'record')})`)
  const banned = j.actions.banned.map((b) => `${printable(b.id)} (${timeLeft(b)}${b.manual === true ? ', manual' : ''})`)
  return tree(`Status for the jail: ${c.bold(printable(j.name))}`, [
    {
      name: 'Filter',
      items: [
        ['Currently failed', [String(j.filter.currentlyFailed)]],
        ['Total failed', [String(j.filter.totalFailed)]],
        ['Filters', [j.filter.filters.map(printable).join(' ')]],
        ['Sources', sources],
      ],
    },
    {
      name: 'Actions',
      items: [
        ['Actions', [j.actions.names.map(printable).join(' ')]],
        ['Currently banned', [String(j.actions.currentlyBanned)]],
        ['Total banned', [String(j.actions.totalBanned)]],
        ['Banned IP list', banned],
      ],
    },
  ])
}

function renderBanDetail(b: BanDetail, c: ChalkInstance): string[] {
  const out: string[] = []
  const what = [`banned ${formatTime(b.time)}`, b.bantime < 0 ? 'permanent' : `for ${formatSpan(b.bantime)}`, `${ordinal(b.banCount + 1)} ban`]
  if (b.manual === true) what.push('manual')
  out.push(`  ${c.bold(printable(b.jail))}: ${b.bantime < 0 ? c.red('permanent') : timeLeft(b)} (${what.join(', ')})`)
  if (b.failures.length > 0) out.push(`    ${plural(b.failures.length, 'failure')}:`)
  for (const f of b.failures) {
    const when = f.time === undefined ? '' : `${formatTime(f.time)} `
    const data = f.data === undefined ? '' : Object.entries(f.data).map(([k, v]) => `${printable(k)}=${printable(v)}`).join(' ')
    out.push(`    ${c.dim(when)}${printable(f.filter)}${data === '' ? '' : ` (${data})`}`)
    for (const l of f.lines) out.push(`      ${printable(l)}`)
  }
  return out
}

/** `spylog banned`: per id, the jails that ban it, time left, and the failures. */
export function renderBanned(r: BannedResult, c: ChalkInstance, asked?: string[]): string {
  if (r.entries.length === 0) return asked !== undefined && asked.length > 0 ? `${asked.map(printable).join(', ')}: not banned` : 'no active bans'
  const out: string[] = []
  for (const e of r.entries) {
    if (e.bans.length === 0) {
      out.push(`${printable(e.id)}: ${c.dim('not banned')}`)
      continue
    }
    out.push(c.bold(printable(e.id)))
    for (const b of e.bans) out.push(...renderBanDetail(b, c))
  }
  return out.join('\n')
}

/** `spylog ban`: what was banned, what already was, what was refused and why. Exit 1 when something was refused. */
export function renderBan(r: BanResult, c: ChalkInstance): {text: string; exitCode: ExitCode} {
  const out: string[] = []
  const jail = printable(r.jail)
  if (r.banned.length > 0) out.push(`${jail}: banned ${r.banned.map(printable).join(', ')}`)
  if (r.already.length > 0) out.push(`${jail}: already banned ${r.already.map(printable).join(', ')}`)
  for (const x of r.refused) out.push(c.red(`${jail}: refused ${printable(x.id)}: ${printable(x.reason)}`))
  return {text: out.join('\n'), exitCode: r.refused.length > 0 ? 1 : 0}
}

/** `spylog unban`: the lifted bans; exit 1 when an asked id was not banned. */
export function renderUnban(r: UnbanResult, c: ChalkInstance, all: boolean): {text: string; exitCode: ExitCode} {
  const out: string[] = []
  const byId = new Map<string, string[]>()
  for (const u of r.unbanned) byId.set(u.id, [...(byId.get(u.id) ?? []), u.jail])
  for (const [id, jails] of byId) out.push(`unbanned ${printable(id)} (${jails.map(printable).join(', ')})`)
  if (all && r.unbanned.length === 0) out.push('no active bans')
  else if (all) out.push(`${plural(r.unbanned.length, 'ban')} lifted`)
  for (const id of r.notBanned) out.push(c.yellow(`not banned: ${printable(id)}`))
  return {text: out.join('\n'), exitCode: r.notBanned.length > 0 ? 1 : 0}
}

/** `spylog reload`: done, or the configuration errors (exit 2; the running configuration stays). */
export function renderReload(r: ReloadResult, c: ChalkInstance): {text: string; errorText?: string; exitCode: ExitCode} {
  if (r.ok) return {text: `reloaded${r.jails.length > 0 ? `: ${r.jails.map(printable).join(', ')}` : ''}`, exitCode: 0}
  const lines = r.errors.map((e) => `${c.red('error')}: ${e.split('\n').map(printable).join('\n  ')}`)
  lines.push(c.red(`not reloaded: ${plural(r.errors.length, 'configuration error')}; the running configuration stays in place`))
  return {text: '', errorText: lines.join('\n'), exitCode: 2}
}

// ---------------------------------------------------------------------------------------------
// Command plumbing

/** What every control command's help says about exit codes. */
export const EXIT_CODES_HELP = 'Exit status: 0 done, 1 the request failed (unknown jail, refused, timeout), ' +
  '2 usage or configuration error (permission denied, wrong token, protocol version mismatch, bad arguments), 3 no daemon running.'

/** What the help says about finding the daemon. */
export const CHANNEL_HELP = 'The daemon is reached through its control socket (--socket, $SPYLOG_SOCKET, else /run/spylog/spylog.sock for root, ' +
  '$XDG_RUNTIME_DIR/spylog/spylog.sock for other users; the named pipe \\\\.\\pipe\\spylog on Windows) with the token in ' +
  "control.token of the daemon's data directory (--token-file, --data-dir, $SPYLOG_DATA_DIR, else /var/lib/spylog for root, %ProgramData%\\spylog on Windows)."

/** Flags shared by the control commands. */
export const controlFlags = {
  json: Flags.boolean({description: 'print the reply (or the error) as JSON'}),
  socket: Flags.string({helpValue: 'PATH', description: 'control socket of the daemon (named pipe on Windows)'}),
  'token-file': Flags.string({helpValue: 'FILE', description: 'file holding the control token'}),
  'data-dir': Flags.string({helpValue: 'DIR', description: "the daemon's data directory (its control.token is used)"}),
  timeout: Flags.integer({min: 1, default: 30, helpValue: 'SECONDS', description: 'how long to wait for the reply'}),
}

export interface ControlFlags {
  json: boolean
  socket?: string
  'token-file'?: string
  'data-dir'?: string
  timeout: number
}

/** Colours for stdout/stderr: only on a terminal, never with --json or NO_COLOR. */
export function colours(json: boolean): {out: ChalkInstance; err: ChalkInstance} {
  const level = (tty: boolean | undefined): 0 | 1 | 2 | 3 =>
    tty === true && !json && (process.env.NO_COLOR ?? '') === '' ? (Math.max(new Chalk().level, 1) as 1 | 2 | 3) : 0
  return {out: new Chalk({level: level(process.stdout.isTTY)}), err: new Chalk({level: level(process.stderr.isTTY)})}
}

/**
 * Sends `cmd` to the daemon and shows the reply: JSON with --json, else `show(result)`. Sets the
 * exit code (0, or show's; an error's: 1, 2 or 3) and prints errors as `error: …` on stderr (as
 * `{"ok":false,"error":{…}}` on stdout with --json). Returns the result, or undefined on error.
 */
export async function runControl<C extends CommandName>(
  command: Command,
  flags: ControlFlags,
  cmd: C,
  args: CommandArgs[C],
  show: (result: CommandResults[C], c: ChalkInstance, socketPath: string) => {text: string; errorText?: string; exitCode?: ExitCode} | string,
): Promise<CommandResults[C] | undefined> {
  const {out, err} = colours(flags.json)
  const paths = resolveControlPaths({socket: flags.socket, tokenFile: flags['token-file'], dataDir: flags['data-dir']})
  try {
    const result = await request({socketPath: paths.socketPath, tokenFile: paths.tokenFile, timeoutMs: flags.timeout * 1000}, cmd, args)
    const shown = show(result, out, paths.socketPath)
    const r = typeof shown === 'string' ? {text: shown} : shown
    if (flags.json) command.log(JSON.stringify(result, null, 2))
    else {
      if (r.text !== '') command.log(r.text)
      if (r.errorText !== undefined) process.stderr.write(r.errorText + '\n')
    }
    process.exitCode = r.exitCode ?? 0
    return result
  } catch (e) {
    if (!(e instanceof ControlClientError)) throw e
    if (flags.json) command.log(JSON.stringify({ok: false, error: {code: e.code, message: e.message}, exitCode: e.exitCode}, null, 2))
    else process.stderr.write(`${err.red('error')}: ${e.message}\n`)
    process.exitCode = e.exitCode
    return undefined
  }
}
