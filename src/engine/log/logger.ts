/**
 * spylog's own log. Every part of the daemon writes through a Logger; where the lines go (the
 * console with `--foreground`, a file, both) is the daemon's choice. Ban and unban lines have a
 * stable format that the packaged `recidive` filter reads:
 *
 *   2024-05-14 10:11:12.345 spylog[1234]: NOTICE [sshd] Ban 203.0.113.5
 *
 * Anything after the address (` (5 failures, filter sshd: …)`) is the reason; the recidive filter
 * anchors on the address and end of line, so reasons are written on separate INFO lines.
 */
import {appendFileSync, mkdirSync} from 'node:fs'
import {dirname} from 'node:path'
import {LOG_LEVELS, type LogLevel} from '../config/model.js'

export interface Logger {
  readonly level: LogLevel
  log(level: LogLevel, message: string): void
  error(message: string): void
  warning(message: string): void
  notice(message: string): void
  info(message: string): void
  debug(message: string): void
  /** Whether a message of this level would be written (skip building expensive messages). */
  enabled(level: LogLevel): boolean
}

const RANK: Readonly<Record<LogLevel, number>> = Object.fromEntries(LOG_LEVELS.map((l, i) => [l, i])) as Record<LogLevel, number>

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

function localSeconds(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** `YYYY-MM-DD HH:MM:SS.mmm` in local time (the format fail2ban's date detector reads). */
export function formatLogTime(ms: number): string {
  const d = new Date(ms)
  return `${localSeconds(d)}.${pad(d.getMilliseconds(), 3)}`
}

/** `YYYY-MM-DD HH:MM:SS` in local time, to the second (tags, tables). */
export function formatLocalTime(ms: number): string {
  return localSeconds(new Date(ms))
}

/** One log line (without newline): `<time> spylog[<pid>]: <LEVEL> <message>`. */
export function formatLogLine(level: LogLevel, message: string, ms = Date.now(), pid = process.pid): string {
  // A message never spans lines: an embedded newline (from a quoted log line) would forge a line.
  const safe = message.includes('\n') || message.includes('\r') ? message.replace(/[\r\n]+/g, ' ⏎ ') : message
  return `${formatLogTime(ms)} spylog[${pid}]: ${level.toUpperCase()} ${safe}`
}

/** The stable ban/unban message (after the level): `[jail] Ban id` / `[jail] Unban id`. */
export function banMessage(kind: 'Ban' | 'Unban' | 'Restore Ban', jail: string, id: string): string {
  return `[${jail}] ${kind} ${id}`
}

export type LogSink = (line: string, level: LogLevel) => void

/** A logger writing formatted lines to sinks (console, file, memory for tests). */
export class SinkLogger implements Logger {
  constructor(
    readonly level: LogLevel,
    private readonly sinks: LogSink[],
  ) {}

  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.level]
  }

  log(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return
    const line = formatLogLine(level, message)
    for (const s of this.sinks) s(line, level)
  }

  error(m: string): void { this.log('error', m) }
  warning(m: string): void { this.log('warning', m) }
  notice(m: string): void { this.log('notice', m) }
  info(m: string): void { this.log('info', m) }
  debug(m: string): void { this.log('debug', m) }
}

/** Appends lines to a file (created with its directory), synchronously so nothing is lost on a crash. */
export function fileSink(path: string): LogSink {
  mkdirSync(dirname(path), {recursive: true})
  return (line) => appendFileSync(path, line + '\n')
}

/** Writes to stderr (the console of `spylog run --foreground`). */
export function consoleSink(): LogSink {
  return (line) => process.stderr.write(line + '\n')
}

/** Keeps lines in memory (tests). */
export function memorySink(into: string[]): LogSink {
  return (line) => void into.push(line)
}

/** A logger that drops everything. */
export const nullLogger: Logger = new SinkLogger('emerg', [])
