import * as path from 'node:path'
import {Command, Flags} from '@oclif/core'
import {CONFIG_FLAGS, configErrorsOf, printConfigErrors} from '../../cli/config.js'
import {Chalk, type ChalkInstance} from 'chalk'
import Table from 'cli-table3'
import {loadConfigDetailed, type ConfigLocation} from '../../engine/config/load.js'
import {type ActionConfig, type JailConfig, type Origin, type SourceConfig, type SpylogConfig} from '../../engine/config/model.js'

export default class ConfigCheck extends Command {
  static override description = 'Load and validate the configuration, and show what it resolves to.\n\n' +
    'The configuration directory is --config DIR, else $SPYLOG_CONFIG, else the platform default ' +
    '(%ProgramData%\\spylog on Windows, /etc/spylog on Linux) when it exists, else the config/ directory packaged ' +
    'with spylog. A lua-spylog directory and a fail2ban tree (jail.conf / jail.local / jail.d) are both recognised. ' +
    '--fail2ban DIR reads a fail2ban tree instead; together with --config, both are read and merged.\n\n' +
    'Prints the sources, filters, jails and actions, then the warnings. Exit status: 0 valid, 2 invalid ' +
    '(every error is printed, one per line).'

  static override examples = [
    {description: 'Check the configuration spylog would use.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Check a fail2ban tree: enabled jails, their filters, log files and actions.', command: '<%= config.bin %> <%= command.id %> --fail2ban /etc/fail2ban'},
    {description: 'Check a Lua configuration together with a fail2ban tree.', command: '<%= config.bin %> <%= command.id %> --config /etc/spylog --fail2ban /etc/fail2ban'},
    {description: 'Machine-readable result (the resolved model, or the errors).', command: '<%= config.bin %> <%= command.id %> --config C:\\ProgramData\\spylog --json'},
  ]

  static override flags = {
    ...CONFIG_FLAGS,
    json: Flags.boolean({description: 'print the result as JSON'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ConfigCheck)
    const c = new Chalk({level: process.stdout.isTTY && !flags.json ? Math.max(new Chalk().level, 1) as 1 | 2 | 3 : 0})
    const ce = new Chalk({level: process.stderr.isTTY && !flags.json ? Math.max(new Chalk().level, 1) as 1 | 2 | 3 : 0})
    let config: SpylogConfig
    let locations: ConfigLocation[]
    try {
      ;({config, locations} = loadConfigDetailed({config: flags.config, fail2ban: flags.fail2ban}))
    } catch (e) {
      const errors = configErrorsOf(e)
      if (errors === undefined) throw e
      process.exitCode = 2
      if (flags.json) {
        this.log(JSON.stringify({
          valid: false,
          errors: errors.map((x) => ({message: x.message, file: x.file, line: x.line, field: x.field, reason: x.reason})),
        }, null, 2))
        return
      }
      printConfigErrors(errors, ce)
      return
    }
    const warnings = config.warnings ?? []
    if (flags.json) {
      this.log(JSON.stringify({valid: true, locations, warnings, config}, null, 2))
      return
    }
    this.print(config, locations, c)
  }

  private print(config: SpylogConfig, locations: ConfigLocation[], c: ChalkInstance): void {
    const rel = (f: string): string => {
      if (f === '' || !path.isAbsolute(f)) return f
      const r = path.relative(process.cwd(), f)
      return r === '' ? '.' : r.startsWith('..' + path.sep + '..') || path.isAbsolute(r) ? f : r
    }
    const at = (o: Origin): string => (o.file === '' ? '' : `${rel(o.file)}${o.line > 0 ? `:${o.line}` : ''}`)
    const table = (head: string[]): Table.Table => new Table({head: head.map((h) => c.bold(h)), style: {head: [], border: []}})

    for (const l of locations) this.log(`${c.bold('configuration')}: ${l.dir} (${l.format}, from ${l.from})`)

    this.log('')
    this.log(c.bold(`Sources (${config.sources.length})`))
    if (config.sources.length > 0) {
      const t = table(['source', 'kind', 'reads', 'used by'])
      for (const s of config.sources) {
        const users = config.filters.filter((f) => f.sources.includes(s.name)).map((f) => f.name)
        t.push([s.name, s.kind, describeSource(s, rel), users.join('\n')])
      }
      this.log(t.toString())
    }

    this.log('')
    this.log(c.bold(`Filters (${config.filters.length})`))
    if (config.filters.length > 0) {
      const t = table(['filter', 'engine', 'regexes', 'sources', 'defined at'])
      for (const f of config.filters) {
        const parts = [`${f.failregex.length} failregex`]
        if (f.ignoreregex.length > 0) parts.push(`${f.ignoreregex.length} ignoreregex`)
        if (f.fail2ban?.prefregex !== undefined) parts.push('prefregex')
        if ((f.fail2ban?.maxlines ?? 1) > 1) parts.push(`maxlines ${f.fail2ban!.maxlines}`)
        t.push([f.enabled ? f.name : `${f.name} ${c.dim('(disabled)')}`, f.engine, parts.join('\n'), f.sources.join('\n'), at(f.origin)])
      }
      this.log(t.toString())
    }

    this.log('')
    this.log(c.bold(`Jails (${config.jails.length})`))
    if (config.jails.length > 0) {
      const t = table(['jail', 'filters', 'maxretry', 'findtime', 'bantime', 'actions', 'ignores'])
      for (const j of config.jails) {
        t.push([
          j.enabled ? j.name : `${j.name} ${c.dim('(disabled)')}`,
          j.filters.join('\n'),
          j.maxretry,
          j.counter.type === 'fixed' ? '-' : formatDuration(j.findtime),
          formatBantime(j),
          j.actions.map((a) => a.name).join('\n'),
          describeIgnores(j),
        ])
      }
      this.log(t.toString())
    }

    this.log('')
    this.log(c.bold(`Actions (${config.actions.length})`))
    if (config.actions.length > 0) {
      const t = table(['action', 'kind', 'defined at'])
      for (const a of config.actions) t.push([a.name, describeAction(a), at(a.origin)])
      this.log(t.toString())
    }

    const warnings = config.warnings ?? []
    if (warnings.length > 0) {
      this.log('')
      for (const w of warnings) this.log(`${c.yellow('warning')}: ${w}`)
    }
    this.log('')
    const n = (k: number, what: string): string => `${k} ${what}${k === 1 ? '' : 's'}`
    this.log(c.green(`valid: ${n(config.sources.length, 'source')}, ${n(config.filters.length, 'filter')}, ${n(config.jails.length, 'jail')}, ` +
      `${n(config.actions.length, 'action')}, ${n(warnings.length, 'warning')}`))
  }
}

/** 600 → 10m, 5400 → 1h30m, -1 → permanent. */
export function formatDuration(s: number): string {
  if (s < 0) return 'permanent'
  if (s === 0) return '0s'
  const units: [string, number][] = [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]
  let rest = s
  let out = ''
  for (const [u, n] of units) {
    const k = Math.floor(rest / n)
    if (k > 0) {
      out += `${k}${u}`
      rest -= k * n
    }
  }
  if (rest > 0) out += `${Math.round(rest * 1000) / 1000}s`.replace(/^0\./, '0.')
  return out
}

function formatBantime(j: JailConfig): string {
  const b = formatDuration(j.bantime)
  const inc = j.banTimeIncrement
  if (inc === undefined || !inc.enabled) return b
  const extra: string[] = []
  if (inc.multipliers !== undefined) extra.push(`×${inc.multipliers.join(',')}`)
  else if (inc.factor !== undefined) extra.push(`factor ${inc.factor}`)
  if (inc.maxtime !== undefined) extra.push(`max ${formatDuration(inc.maxtime)}`)
  return `${b}, increasing${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`
}

function describeIgnores(j: JailConfig): string {
  const items = [...j.ignoreIp, ...(j.ignoreHosts ?? []), ...(j.ignoreFiles ?? []).map((f) => `file:${f}`)]
  if (j.ignoreSelf === true) items.unshift('self')
  if (j.ignoreCommand !== undefined && j.ignoreCommand !== '') items.push('command')
  if (items.length <= 4) return items.join('\n')
  return [...items.slice(0, 3), `+${items.length - 3} more`].join('\n')
}

function describeSource(s: SourceConfig, rel: (f: string) => string): string {
  switch (s.kind) {
    case 'file': {
      const extra: string[] = []
      if (s.backend !== undefined && s.backend !== 'auto') extra.push(s.backend)
      if (s.encoding !== 'utf-8') extra.push(s.encoding)
      if (s.backend !== undefined && s.skipExisting) extra.push('tail')
      return rel(s.path) + (extra.length > 0 ? ` (${extra.join(', ')})` : '')
    }
    case 'journal':
      return s.match.length === 0 ? 'the whole journal' : s.match.map((g) => g.join(' ')).join('\n')
    default:
      return s.spec
  }
}

function describeAction(a: ActionConfig): string {
  if (a.builtin !== undefined) return `${a.builtin.kind} (${a.builtin.variant})`
  const cmd = a.ban ?? a.unban
  if (cmd?.kind === 'module') return `module ${cmd.module}`
  return 'commands'
}
