import {Args, Command, Flags} from '@oclif/core'
import chalk, {Chalk} from 'chalk'
import ora, {type Ora} from 'ora'
import {ConfigError} from '../engine/fail2ban/errors.js'
import {PatternError} from '../engine/patterns/types.js'
import {formatHeader, formatResults, rate, PLAIN, type Style} from '../engine/regex/format.js'
import {outFormatter} from '../engine/regex/out.js'
import {DIALECTS, RegexSession, RegexUsageError, UnknownEncodingError, defaultFilterDirs, type RegexReport} from '../engine/regex/report.js'

/** Batches stdout writes (64 KiB) and honours backpressure between input chunks. */
class Output {
  private buf = ''
  constructor(private readonly stream: NodeJS.WriteStream) {}
  line(s: string): void {
    this.buf += s + '\n'
    if (this.buf.length >= 65536) this.flush()
  }
  write(s: string): void {
    this.buf += s
    if (this.buf.length >= 65536) this.flush()
  }
  flush(): boolean {
    if (this.buf === '') return true
    const ok = this.stream.write(this.buf)
    this.buf = ''
    return ok
  }
  async drain(): Promise<void> {
    if (!this.flush() && this.stream.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        this.stream.once('drain', resolve)
      })
    }
  }
  async end(): Promise<void> {
    this.flush()
    if (this.stream.writableNeedDrain) await new Promise<void>((resolve) => this.stream.once('drain', resolve))
  }
}

function styleFor(level: number): Style {
  if (level === 0) return PLAIN
  const c = new Chalk({level: level as 0 | 1 | 2 | 3})
  return {title: c.bold, good: c.green, warn: c.yellow, bad: c.red, info: c.cyan, dim: c.dim}
}

/** The message of any error, on one line, without ANSI colours or oclif's help hints. */
function oneLine(err: Error): string {
  // eslint-disable-next-line no-control-regex
  const plain = err.message.replace(/\u001b\[[0-9;]*m/g, '')
  const lines = plain.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('See more help'))
  const first = lines[0] ?? err.name
  const missing = /^(Missing \d+ required args?):?$/.exec(first)
  if (missing) {
    const names = lines.slice(1).map((l) => l.split(/\s+/)[0]!).filter((t) => /^[A-Z][A-Z0-9_]*$/.test(t))
    return `${missing[1]!.toLowerCase()}: ${names.join(', ')}`
  }
  const nonexistent = /^Nonexistent flags?: (.*)$/.exec(first)
  if (nonexistent) return `unknown option${nonexistent[1]!.includes(',') ? 's' : ''}: ${nonexistent[1]}`
  return lines.join(' ')
}

/** Long runs (over a second) get a spinner, on a terminal only. */
const SPINNER_AFTER_SECONDS = 1

export default class Regex extends Command {
  static override summary = 'Test a failregex or a filter against a log, like fail2ban-regex'

  static override description = `Runs every line of LOG through a filter and reports how often each failregex, ignoreregex and date template hit, and how many lines matched, were ignored or missed.

LOG is a file, a glob (quote it: 'logs/*.log'), - for standard input, or else a log line given literally.
REGEX is a literal failregex (fail2ban tags such as <HOST> and <F-USER>…</F-USER> work; --dialect pcre or lua for other syntaxes), a fail2ban filter file (path/to/sshd.conf), or a filter name with optional parameters (sshd, 'sshd[mode=aggressive]') looked up in --filter-dir, /etc/fail2ban/filter.d, then among the FILTER{}s of the spylog configuration (the packaged library by default: sshd, nginx-http-auth, freeswitch …).
IGNOREREGEX is a literal ignoreregex, or a filter file whose ignoreregexes are used.

A line is "ignored" when an ignoreregex hit it or a failregex marked it <F-NOFAIL>, "matched" when a failregex found a failure in it, else "missed". Empty lines and lines starting with # are skipped. Lines are split on \\n (a \\r before it is dropped); lines with bytes invalid in --encoding and lines holding NUL characters are counted and still tested.

Exit status: 0 after a run (whatever matched), 2 for a usage error (bad regex, unknown filter, unreadable log, unknown option).`

  static override examples = [
    {description: 'A filter by name against a log file', command: '<%= config.bin %> <%= command.id %> /var/log/auth.log sshd'},
    {description: 'Filter parameters, and every missed line listed', command: "<%= config.bin %> <%= command.id %> /var/log/auth.log 'sshd[mode=aggressive]' --print-all-missed"},
    {description: 'A literal line and a literal failregex', command: "<%= config.bin %> <%= command.id %> 'Jan 10 10:00:01 h sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2' 'sshd\\[\\d+\\]: Failed \\S+ for <F-USER>\\S+</F-USER> from <HOST>'"},
    {description: 'Rotated logs through a filter file, offenders only (one per failure)', command: "<%= config.bin %> <%= command.id %> '/var/log/auth.log*' /etc/fail2ban/filter.d/sshd.conf -o ip | sort | uniq -c | sort -rn | head"},
    {description: 'Standard input, a custom output row per failure', command: "journalctl -u ssh -o short | <%= config.bin %> <%= command.id %> - sshd -o '<ip> <F-USER> <time>'"},
    {description: 'The whole report as JSON, with every hit (host, time, captures)', command: '<%= config.bin %> <%= command.id %> auth.log sshd --json -v > report.json'},
    {description: 'A PCRE literal regex on a Latin-1 log', command: "<%= config.bin %> <%= command.id %> old.log '^.*login failed for (?<user>\\w+) from (?<host>[\\d.]+)' --dialect pcre --encoding latin1"},
  ]

  static override args = {
    LOG: Args.string({required: true, ignoreStdin: true, description: 'log file, glob, - for standard input, or a literal log line'}),
    REGEX: Args.string({required: true, ignoreStdin: true, description: 'failregex, filter file, or filter name with options: sshd[mode=aggressive]'}),
    IGNOREREGEX: Args.string({required: false, ignoreStdin: true, description: 'ignoreregex, or a filter file whose ignoreregexes are used'}),
  }

  static override flags = {
    verbose: Flags.boolean({char: 'v', description: 'list every hit under its regex: offender, time, line number and captures; show regexes and date templates without hits'}),
    'print-all-matched': Flags.boolean({description: 'print every matched line'}),
    'print-all-missed': Flags.boolean({description: `print every missed line (default: only when fewer than 20)`}),
    'print-all-ignored': Flags.boolean({description: 'print every ignored line (default: only when fewer than 20)'}),
    out: Flags.string({
      char: 'o',
      helpValue: 'TOKEN',
      description: 'instead of the report, print one value per failure: id, ip, row, msg, matches, time, line, file, a capture name (user, port, F-USER, …), or a template such as "<ip> <F-USER> <time>"',
    }),
    json: Flags.boolean({description: 'print the whole report as JSON (hits under each regex with -v, line lists with the --print-all-* flags)'}),
    dialect: Flags.string({options: [...DIALECTS], default: 'fail2ban', description: 'syntax of a literal REGEX/IGNOREREGEX (filter files are always fail2ban)'}),
    config: Flags.string({helpValue: 'DIR', description: 'spylog configuration whose FILTER{}s a filter name may name (default: $SPYLOG_CONFIG, the platform directory, or the packaged config/)'}),
    'filter-dir': Flags.string({multiple: true, helpValue: 'DIR', description: 'directory of NAME.conf filters, searched before the defaults (repeatable)'}),
    encoding: Flags.string({char: 'e', default: 'utf-8', description: 'log encoding: utf-8, latin1, cp1252, iso-8859-15, utf-16le, …'}),
    datepattern: Flags.string({char: 'd', description: "date pattern overriding the filter's, e.g. '^%Y-%m-%d %H:%M:%S' or '{^LN-BEG}Epoch'"}),
    maxlines: Flags.integer({char: 'L', min: 1, description: "lines buffered for multi-line regexes (overrides the filter's maxlines)"}),
    timezone: Flags.string({description: 'time zone of dates without one (local, UTC, UTC+0200, Europe/Zurich, …); default local'}),
    'check-all': Flags.boolean({
      default: true,
      allowNo: true,
      description: 'try every failregex on each line (--no-check-all: stop at the first result, as the daemon does; always so with -o, as in fail2ban-regex)',
    }),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Regex)
    const stdout = process.stdout
    stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
      throw e
    })
    const filterDirs = [...(flags['filter-dir'] ?? []), ...defaultFilterDirs(this.config.root)]
    const session = await RegexSession.open({
      log: args.LOG,
      regex: args.REGEX,
      ignoreRegex: args.IGNOREREGEX,
      dialect: flags.dialect,
      filterDirs,
      config: flags.config,
      encoding: flags.encoding,
      datepattern: flags.datepattern,
      maxlines: flags.maxlines,
      timezone: flags.timezone,
      checkAll: flags['check-all'] && flags.out === undefined,
    })

    const out = new Output(stdout)
    const level = stdout.isTTY ? chalk.level : 0
    const style = flags.json || flags.out !== undefined ? PLAIN : styleFor(level)
    const report = !flags.json && flags.out === undefined
    if (report) out.write(formatHeader(session.source, session.log, style))
    await out.drain()

    // Progress: only on a terminal, only once a run has lasted a while, never over -o output on the same terminal.
    const spinnerOk = process.stderr.isTTY === true && !(flags.out !== undefined && stdout.isTTY)
    const size = session.size
    let spinner: Ora | undefined
    let lastUpdate = 0
    const onProgress = async (p: {lines: number; bytes: number; elapsed: number}): Promise<void> => {
      await out.drain()
      if (!spinnerOk || p.elapsed < SPINNER_AFTER_SECONDS) return
      if (p.elapsed - lastUpdate < 0.1) return
      lastUpdate = p.elapsed
      const pct = size ? ` (${Math.min(100, (100 * p.bytes) / size).toFixed(0)}%)` : ''
      const text = `${p.lines.toLocaleString('en-US')} lines${pct}, ${rate(p.lines, p.elapsed)} lines/s`
      if (spinner) spinner.text = text
      else spinner = ora({text, stream: process.stderr, discardStdin: false}).start()
    }

    let onFailure
    if (flags.out !== undefined) {
      const fmt = outFormatter(flags.out)
      onFailure = (m: Parameters<typeof fmt>[0], line: string, lineNo: number, file: string | undefined): void => out.line(fmt(m, line, lineNo, file))
    }
    let result: RegexReport
    try {
      result = await session.run(
        {
          matched: flags['print-all-matched'],
          missed: flags['print-all-missed'],
          ignored: flags['print-all-ignored'],
          failures: flags.verbose,
        },
        {onFailure, onProgress},
      )
    } finally {
      spinner?.stop()
    }

    if (flags.json) {
      const json: Partial<RegexReport> & {linesPerSecond: number} = {...result, linesPerSecond: result.elapsed > 0 ? Math.round((result.lines.total + result.lines.skipped) / result.elapsed) : 0}
      if (!flags['print-all-matched']) delete json.matchedLines
      if (!flags['print-all-missed']) delete json.missedLines
      if (!flags['print-all-ignored']) delete json.ignoredLines
      out.write(JSON.stringify(json, null, 2) + '\n')
    } else if (report) {
      out.write(
        formatResults(
          result,
          {
            verbose: flags.verbose,
            printAllMatched: flags['print-all-matched'],
            printAllMissed: flags['print-all-missed'],
            printAllIgnored: flags['print-all-ignored'],
          },
          style,
        ),
      )
    }
    await out.end()
  }

  override async catch(err: Error & {code?: string; oclif?: {exit?: number}}): Promise<void> {
    const usage =
      err instanceof RegexUsageError ||
      err instanceof ConfigError ||
      err instanceof PatternError ||
      err instanceof UnknownEncodingError ||
      err.oclif?.exit !== undefined ||
      /^E[A-Z]+$/.test(err.code ?? '')
    if (err.name === 'ExitError') throw err
    // A regex error of a literal REGEX has no file: "invalid failregex 1: …" reads better than "failregex: failregex 1: …".
    const message = err instanceof ConfigError && err.file === undefined && /^(?:(?:failregex|ignoreregex) \d+|prefregex): /.test(err.reason) ? `invalid ${err.reason}` : oneLine(err)
    const red = process.stderr.isTTY ? new Chalk({level: chalk.level}).red : (s: string): string => s
    if (usage) {
      process.stderr.write(`${red('Error:')} ${message}\n`)
      process.exitCode = 2
      return
    }
    process.stderr.write(`${red('Internal error:')} ${message}${process.env.DEBUG ? `\n${err.stack ?? ''}` : ' (set DEBUG=1 for the stack trace)'}\n`)
    process.exitCode = 1
  }
}
