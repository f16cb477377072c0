import * as path from 'node:path'
import {Args, Command, Flags} from '@oclif/core'
import {Chalk, type ChalkInstance} from 'chalk'
import Table from 'cli-table3'
import ora from 'ora'
import {ConfigError} from '../engine/fail2ban/errors.js'
import {luaConfigProvider} from '../engine/testcases/spylog.js'
import {
  DEFAULT_NOW, DEFAULT_TIMEZONE, locateFail2banTree, runTestcases,
  type FoundResult, type HarnessReport, type Problem, type SampleFailure, type TestTree,
} from '../engine/testcases/harness.js'

export default class Testcases extends Command {
  static override description = 'Run the failJSON sample tests: every filter against its annotated sample log.\n\n' +
    'Without --fail2ban-dir, runs spylog\'s own testcases/ against config/filters. With --fail2ban-dir, runs a ' +
    'fail2ban tree: DIR/filter.d + DIR/logs, or fail2ban\'s source layout (DIR/config/filter.d + ' +
    'DIR/fail2ban/tests/files/logs). Samples are counted per filter test; "failed" also counts each problem ' +
    '(a failregex without samples, a greedy catch-all before <HOST>, unusable input). The last line reads ' +
    '"N passed, N failed". Exit status: 0 all passed, 1 a sample or check failed (a missing sample log included), ' +
    '2 unusable input (missing directory, bad JSON, a filter that does not load).'

  static override examples = [
    {description: 'Run spylog\'s own sample tests.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Run only the sshd and nginx-http-auth tests of a fail2ban tree.', command: '<%= config.bin %> <%= command.id %> --fail2ban-dir /usr/src/fail2ban sshd nginx-http-auth'},
    {description: 'Machine-readable report.', command: '<%= config.bin %> <%= command.id %> --fail2ban-dir ../fail2ban-corpus --json'},
  ]

  static override strict = false

  static override args = {
    filter: Args.string({description: 'filter name(s) to test (default: all)', required: false}),
  }

  static override flags = {
    config: Flags.string({description: 'spylog configuration directory whose filters are tested (default: the packaged config/)', helpValue: 'DIR', exclusive: ['fail2ban-dir']}),
    samples: Flags.string({description: 'directory of failJSON sample logs, one per filter name (default: the packaged testcases/)', helpValue: 'DIR', exclusive: ['fail2ban-dir']}),
    'fail2ban-dir': Flags.string({description: 'fail2ban tree to test (DIR/filter.d + DIR/logs, or a fail2ban source checkout)', helpValue: 'DIR'}),
    json: Flags.boolean({description: 'print the report as JSON'}),
    now: Flags.integer({description: 'harness "now" in Unix seconds: year-less dates, journal-mode samples', default: DEFAULT_NOW, helpValue: 'SECONDS'}),
    timezone: Flags.string({description: 'time zone of the sample dates and failJSON times (POSIX TZ, IANA name, UTC±hh:mm or local)', default: DEFAULT_TIMEZONE, helpValue: 'TZ'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Testcases)
    const names = (argv as string[]).filter((a) => a !== '')
    const f2b = flags['fail2ban-dir']
    const c = new Chalk({level: process.stdout.isTTY && !flags.json ? Math.max(new Chalk().level, 1) as 1 | 2 | 3 : 0})

    let tree: TestTree
    try {
      tree = f2b !== undefined
        ? locateFail2banTree(path.resolve(f2b))
        : {filterSources: [], provider: luaConfigProvider(path.resolve(flags.config ?? path.join(this.config.root, 'config'))), logsDir: path.resolve(flags.samples ?? path.join(this.config.root, 'testcases'))}
    } catch (e) {
      const msg = e instanceof ConfigError ? e.message : String(e)
      if (flags.json) this.log(JSON.stringify({filters: [], problems: [{kind: 'error', message: msg}], passed: 0, failed: 1, unusable: true}, null, 2))
      else {
        process.stderr.write(`${c.red('error')}: ${msg}\n`)
        this.log('0 passed, 1 failed')
      }
      process.exitCode = 2
      return
    }

    // ora divides by the terminal width: a pseudo-terminal reporting 0 columns would make it loop
    const spin = !!process.stderr.isTTY && (process.stderr.columns ?? 0) > 0
    const spinner = ora({text: 'testing filters', stream: process.stderr, isEnabled: spin, discardStdin: false})
    if (spin) spinner.start()
    let report: HarnessReport
    try {
      report = await runTestcases({
        ...tree,
        names,
        now: flags.now,
        timezone: flags.timezone,
        minFilterTests: f2b !== undefined ? 10 : 0,
        onProgress: (name, i, total) => {
          spinner.text = `testing ${name} (${i + 1}/${total})`
        },
      })
    } finally {
      spinner.stop()
    }

    process.exitCode = report.unusable ? 2 : report.failed > 0 ? 1 : 0
    if (flags.json) {
      this.log(JSON.stringify(report, null, 2))
      return
    }
    this.printReport(report, c)
  }

  private printReport(report: HarnessReport, c: ChalkInstance): void {
    const rel = (f: string): string => {
      const r = path.relative(process.cwd(), f)
      return r.startsWith('..' + path.sep + '..') ? f : r
    }
    const problem = (p: Problem, filter?: string): void => {
      const label = p.kind === 'error' ? c.red('ERROR') : c.yellow(p.kind.toUpperCase())
      const where = p.file !== undefined ? `${rel(p.file)}${p.line !== undefined ? `:${p.line}` : ''}: ` : ''
      this.log(`${label} ${filter ? c.bold(filter) + ': ' : ''}${where}${p.message}`)
    }
    for (const p of report.problems) problem(p)
    for (const f of report.filters) {
      for (const fl of f.failures) this.printFailure(fl, rel, c)
      for (const p of f.problems) problem(p, f.name)
    }
    if (report.filters.length > 0) {
      const table = new Table({
        head: ['filter', 'samples', 'passed', 'failed', 'problems'].map((h) => c.bold(h)),
        colAligns: ['left', 'right', 'right', 'right', 'right'],
        style: {head: [], border: []},
      })
      for (const f of report.filters) {
        const bad = f.failed > 0 || f.problems.length > 0
        table.push([
          bad ? c.red(f.name) : f.name,
          f.samples,
          f.passed,
          f.failed > 0 ? c.red(String(f.failed)) : f.failed,
          f.problems.length > 0 ? c.yellow(String(f.problems.length)) : f.problems.length,
        ])
      }
      this.log(table.toString())
    }
    const a = report.annotated
    if (a.total > 0) this.log(`failJSON lines (distinct file:line): ${a.passed} of ${a.total} passed`)
    const summary = `${report.passed} passed, ${report.failed} failed`
    this.log(report.failed > 0 ? c.red(summary) : c.green(summary))
  }

  private printFailure(f: SampleFailure, rel: (f: string) => string, c: ChalkInstance): void {
    this.log(`${c.red('FAIL')} ${c.bold(f.options)} ${rel(f.file)}:${f.line}`)
    this.log(`  line:     ${f.sample.trim() === '' ? JSON.stringify(f.sample) : f.sample}`)
    this.log(`  expected: ${JSON.stringify(f.expected)}`)
    this.log(`  found:    ${describeFound(f.found)}`)
    this.log(`  problem:  ${f.message}`)
    for (const r of f.regexes) {
      const which = r.kind === 'prefregex' ? 'prefregex' : `${r.kind} ${r.index + 1}`
      this.log(`  ${which}: ${c.dim(r.regex)}`)
    }
    this.log('')
  }
}

function describeFound(found: FoundResult): string {
  if (found.matches.length === 0) {
    const notes: string[] = []
    if (!found.prefregex) notes.push('prefregex did not match')
    if (found.ignoredBy.length > 0) notes.push(`ignored by ignoreregex ${found.ignoredBy.map((i) => i + 1).join(', ')}`)
    return `no match${notes.length ? ` (${notes.join('; ')})` : ''}`
  }
  return found.matches.map((m) => {
    const data = Object.entries(m.data).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')
    return `failregex ${m.regex + 1}: id=${m.id ?? '-'} time=${m.localTime ?? 'none'} attempts=${m.attempts}${data ? ' ' + data : ''}`
  }).join(' | ')
}
