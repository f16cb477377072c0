import * as path from 'node:path'
import {Command, Flags} from '@oclif/core'
import {CONFIG_FLAGS, configErrorsOf, printConfigErrors} from '../cli/config.js'
import {Chalk} from 'chalk'
import Table from 'cli-table3'
import ora from 'ora'
import {loadConfigDetailed, type LoadConfigOptions} from '../engine/config/load.js'
import {LOG_LEVELS, type LogLevel, type SpylogConfig} from '../engine/config/model.js'
import {defaultDataDir, defaultSocketPath} from '../engine/control/paths.js'
import {startControlServer, type ControlServer} from '../engine/control/server.js'
import {parseListenAddress, startMetricsServer, type MetricsServer} from '../engine/control/metrics.js'
import {Engine, SERVICE_ROLES, type ServiceRole} from '../engine/daemon/engine.js'
import {replay} from '../engine/daemon/replay.js'
import {consoleSink, fileSink, formatLocalTime, SinkLogger, type LogSink} from '../engine/log/logger.js'

function duration(s: number): string {
  if (s < 0) return 'permanent'
  const units: [number, string][] = [[604800, 'w'], [86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']]
  for (const [n, u] of units) if (s >= n && s % n === 0) return `${s / n}${u}`
  return `${Math.round(s)}s`
}

/** Local time of a Unix time in seconds, to the second. */
function stamp(t: number): string {
  return formatLocalTime(t * 1000)
}

/** The control socket of a single-service process: the default one with the service name appended. */
function roleSocket(socket: string, role: string): string {
  return socket.startsWith('\\\\.\\pipe\\') ? `${socket}-${role}` : socket.replace(/\.sock$/, '') + `-${role}.sock`
}

export default class Run extends Command {
  static override description = 'Run the daemon: sources → filters → jails → actions.\n\n' +
    'Reads the configuration (see `spylog config check`), follows the log sources, counts failures per offender in ' +
    'the jails and bans through the actions; every ban is stored in the data directory and lifted on time, also ' +
    'across restarts. `spylog status`, `ban`, `unban`, `reload` and `stop` talk to the running daemon over its ' +
    'control socket (a named pipe on Windows). SIGINT/SIGTERM stop it gracefully; SIGHUP reloads the configuration.\n\n' +
    '--dry-run runs everything but the actions and logs what they would do. With --from-start as well, the existing ' +
    'content of the log files is replayed in event time and the timeline of bans is printed, then spylog exits: a ' +
    'way to tune findtime and maxretry on real logs.'

  static override examples = [
    {description: 'Run in the console with the configuration spylog finds (/etc/spylog, %ProgramData%\\spylog or the packaged one).', command: '<%= config.bin %> <%= command.id %> --foreground'},
    {description: 'Run a fail2ban configuration unchanged.', command: '<%= config.bin %> <%= command.id %> --fail2ban /etc/fail2ban'},
    {description: 'What would the jails have banned in the existing logs?', command: '<%= config.bin %> <%= command.id %> --dry-run --from-start --config ./my-config'},
    {description: 'Serve Prometheus metrics on loopback.', command: '<%= config.bin %> <%= command.id %> --metrics 127.0.0.1:9180'},
    {description: 'The three services as separate processes (lua-spylog style), joined by local sockets.', command: '<%= config.bin %> <%= command.id %> --only action & <%= config.bin %> <%= command.id %> --only jail & <%= config.bin %> <%= command.id %> --only filter'},
  ]

  static override flags = {
    ...CONFIG_FLAGS,
    foreground: Flags.boolean({description: 'log to the console (as well as to the configured log file)'}),
    'dry-run': Flags.boolean({description: 'run everything but the actions; log what they would do'}),
    'from-start': Flags.boolean({description: 'read existing log content from the start (with --dry-run: replay and print the ban timeline)'}),
    'data-dir': Flags.string({description: 'where bans, jobs and file positions are kept (default: $SPYLOG_DATA_DIR, /var/lib/spylog as root, %ProgramData%\\spylog\\data on Windows)', helpValue: 'DIR'}),
    socket: Flags.string({description: 'control socket path (named pipe on Windows)', helpValue: 'PATH'}),
    metrics: Flags.string({description: 'serve Prometheus metrics at http://HOST:PORT/metrics', helpValue: 'HOST:PORT'}),
    'log-level': Flags.string({description: 'log level (overrides LOG{ level })', options: [...LOG_LEVELS]}),
    json: Flags.boolean({description: 'with --dry-run --from-start: print the timeline as JSON'}),
    only: Flags.string({
      description: 'run one service only (filter: sources and filters; jail: counting; action: the ban queue), joined to the others at the CONNECT{} endpoints, else at sockets in the data directory; its control socket is the default one with the service name appended',
      options: [...SERVICE_ROLES],
    }),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Run)
    const ce = new Chalk({level: process.stderr.isTTY ? Math.max(new Chalk().level, 1) as 1 | 2 | 3 : 0})
    const loadOpts: LoadConfigOptions = {config: flags.config, fail2ban: flags.fail2ban}
    let config: SpylogConfig
    try {
      config = loadConfigDetailed(loadOpts).config
    } catch (e) {
      const errors = configErrorsOf(e)
      if (errors === undefined) throw e
      printConfigErrors(errors, ce, ': spylog did not start')
      process.exitCode = 2
      return
    }
    const level = (flags['log-level'] as LogLevel | undefined) ?? config.log.level
    const sinks: LogSink[] = []
    if (flags.foreground || flags['dry-run']) sinks.push(consoleSink())
    const file = config.log.file
    if (file !== undefined && !flags['dry-run']) {
      const p = path.join(file.logDir, file.logName)
      try {
        sinks.push(fileSink(p))
      } catch (e) {
        process.stderr.write(`${ce.yellow('warning')}: cannot write the log file ${p}: ${(e as Error).message}; logging to the console\n`)
        if (!flags.foreground) sinks.push(consoleSink())
      }
    }
    if (sinks.length === 0) sinks.push(consoleSink())
    const log = new SinkLogger(level, sinks)
    for (const w of config.warnings ?? []) log.warning(w)

    if (flags['dry-run'] && flags['from-start']) {
      await this.replay(config, log, flags.json)
      return
    }

    const dataDir = flags['data-dir'] ?? defaultDataDir()
    let engine: Engine
    try {
      engine = await Engine.start(config, {
        log, dataDir, dryRun: flags['dry-run'], fromStart: flags['from-start'], only: flags.only as ServiceRole | undefined,
        loadConfig: () => loadConfigDetailed(loadOpts).config,
      })
    } catch (e) {
      process.stderr.write(`${ce.red('error')}: spylog did not start: ${(e as Error).message}\n`)
      process.exitCode = 2
      return
    }
    let control: ControlServer | undefined
    let metrics: MetricsServer | undefined
    try {
      const socketPath = flags.socket ?? (flags.only === undefined ? undefined : roleSocket(defaultSocketPath({dataDir}), flags.only))
      control = await startControlServer({target: engine, socketPath, dataDir, log})
      if (flags.metrics !== undefined) {
        const {host, port} = parseListenAddress(flags.metrics)
        metrics = await startMetricsServer({target: engine, host, port, log})
        log.info(`metrics: ${metrics.url}`)
      }
    } catch (e) {
      process.stderr.write(`${ce.red('error')}: ${(e as Error).message}\n`)
      await engine.stop()
      process.exitCode = 2
      return
    }
    const stop = (sig: string): void => {
      log.notice(`${sig}: stopping`)
      void engine.stop()
    }
    const onInt = (): void => stop('SIGINT')
    const onTerm = (): void => stop('SIGTERM')
    const onHup = (): void => {
      void engine.reload().then((r) => {
        if (!r.ok) log.error(`reload refused, the running configuration stays:\n  ${r.errors.join('\n  ')}`)
      })
    }
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    if (process.platform !== 'win32') process.on('SIGHUP', onHup)
    await engine.stopped
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
    process.off('SIGHUP', onHup)
    await control.close()
    await metrics?.close()
  }

  private async replay(config: SpylogConfig, log: SinkLogger, json: boolean): Promise<void> {
    const spinner = process.stderr.isTTY && !json ? ora({text: 'replaying the logs', stream: process.stderr}).start() : undefined
    const result = await replay(config, {
      log,
      progress: spinner === undefined ? undefined : (done, total) => (spinner.text = `replaying the logs: ${total > 0 ? Math.floor((done / total) * 100) : 100}%`),
    })
    spinner?.stop()
    if (json) {
      this.log(JSON.stringify(result, null, 2))
      return
    }
    const c = new Chalk({level: process.stdout.isTTY ? Math.max(new Chalk().level, 1) as 1 | 2 | 3 : 0})
    const nFiles = Object.values(result.files).reduce((n, f) => n + f.length, 0)
    this.log(`${result.lines} lines from ${nFiles} files, ${result.failures} failures${result.undated > 0 ? ` (${result.undated} without a date)` : ''}, ${result.bans.length} bans`)
    if (result.bans.length === 0) return
    const t = new Table({head: ['time', 'jail', 'offender', 'failures', 'ban', 'lifted'].map((h) => c.bold(h)), style: {head: [], border: []}})
    for (const b of result.bans) {
      t.push([stamp(b.time), b.jail, b.ignored === undefined ? b.id : `${b.id} ${c.dim(`(${b.ignored})`)}`, String(b.failures), duration(b.bantime), b.bantime < 0 ? '-' : stamp(b.time + b.bantime)])
    }
    this.log(t.toString())
  }
}
