/**
 * The seam between spylog and Windows' own tools (PowerShell, netsh, sc.exe). Every call is one
 * process started from an argv array with `shell: false` — never through `cmd.exe`, whose line
 * limit is 8,191 characters and whose quoting rules would make captured text dangerous. Data
 * (address lists) goes to PowerShell on stdin as JSON, so no address is ever part of a script's
 * source text. Tests replace the Shell with a fake that records the calls and keeps its own model
 * of the firewall.
 */
import {clip} from '../../text.js'
import {execArgv, ExecStartError} from '../exec.js'
import {MAX_COMMAND_LINE} from './rules.js'

/** What one process returned. `code` is null when it was killed (timeout, signal). */
export interface ShellResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface ShellRunOptions {
  /** Written to the process' stdin, which is then closed. */
  readonly input?: string
  /** Kill the process after this many milliseconds. */
  readonly timeoutMs?: number
}

/** Runs one program from an argv array. */
export interface Shell {
  run(file: string, args: readonly string[], opts?: ShellRunOptions): Promise<ShellResult>
}

/** Output kept per stream; firewall listings of thousands of rules fit comfortably. */
const MAX_OUTPUT = 64 << 20

/** The real shell: execArgv (`shell: false`), stdin fed and closed, output collected; rejects with the spawn error when the program cannot start. */
export class ProcessShell implements Shell {
  async run(file: string, args: readonly string[], opts: ShellRunOptions = {}): Promise<ShellResult> {
    const timeoutMs = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? opts.timeoutMs : Infinity
    try {
      const r = await execArgv([file, ...args], {input: opts.input ?? '', timeoutMs, maxOutput: MAX_OUTPUT})
      return {code: r.code, stdout: r.stdout, stderr: r.stderr}
    } catch (e) {
      throw e instanceof ExecStartError && e.cause !== undefined ? e.cause : e
    }
  }
}

/**
 * Length of the command line Windows builds from `file` and `args` (libuv quotes arguments the
 * way CommandLineToArgvW reads them back), plus the terminating NUL. CreateProcess refuses more
 * than 32,767.
 */
export function commandLineLength(file: string, args: readonly string[]): number {
  let n = quotedLength(file)
  for (const a of args) n += 1 + quotedLength(a)
  return n + 1
}

function quotedLength(arg: string): number {
  if (arg === '') return 2
  if (!/[\s"]/.test(arg)) return arg.length
  // Quoted: each `"` is escaped, backslashes before a quote (or the closing quote) are doubled.
  let n = 2
  let slashes = 0
  for (const ch of arg) {
    if (ch === '\\') {
      slashes++
      continue
    }
    if (ch === '"') n += slashes * 2 + 2
    else n += slashes + ch.length
    slashes = 0
  }
  return n + slashes * 2
}

/** Throws when a call would exceed Windows' command-line limit (spylog splits its work so that it never does). */
export function assertCommandLine(file: string, args: readonly string[]): void {
  const n = commandLineLength(file, args)
  if (n > MAX_COMMAND_LINE) throw new Error(`command line of ${file} would be ${n} characters, over Windows' limit of ${MAX_COMMAND_LINE}`)
}

/** The PowerShell program spylog runs (Windows PowerShell 5.1 ships with every supported Windows). */
export const POWERSHELL = 'powershell.exe'

/**
 * Arguments that run `script` in a clean, non-interactive PowerShell: the script is passed as
 * `-EncodedCommand` (base64 of UTF-16LE, so no quoting question arises) and stays constant;
 * the data it works on is read from stdin.
 */
export function powershellArgs(script: string): string[] {
  return ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand', Buffer.from(script, 'utf16le').toString('base64')]
}

/** The script text back from arguments built by powershellArgs (for fakes and diagnostics). */
export function decodePowershellArgs(args: readonly string[]): string | undefined {
  const i = args.indexOf('-EncodedCommand')
  if (i < 0 || i + 1 >= args.length) return undefined
  return Buffer.from(args[i + 1], 'base64').toString('utf16le')
}

/** First meaningful line of a tool's error output, for a one-line error message. */
export function firstLine(s: string): string {
  for (const l of s.split(/\r?\n/)) {
    const t = l.trim()
    if (t !== '') return clip(t, 300)
  }
  return ''
}
