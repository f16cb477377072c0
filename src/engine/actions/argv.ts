/**
 * Command-line splitting for command actions. A command template is split into argv elements
 * ONCE, before any tag is substituted; tags are then replaced inside each element (tags.ts), so
 * a value taken from a log line can never add an argument, end a quote, or reach a shell.
 * Nothing is expanded here (no variables, globs, `~`, command substitution).
 *
 * Rules (a POSIX shell's word splitting and quoting, compatible with Windows command lines and
 * lua-spylog's `Args.split`):
 * - blanks (space, tab) separate elements; quoted parts join the text around them
 *   (`name="a b"` is the one element `name=a b`);
 * - `"…"` groups text; inside it `""` is one literal `"` (lua-spylog, Windows);
 * - `'…'` groups text literally;
 * - backslashes are literal except before a `"`: 2n backslashes and a quote give n backslashes
 *   and the quote's usual meaning, 2n+1 give n backslashes and a literal quote (Windows'
 *   CommandLineToArgvW rule; `C:\dir\x.exe` stays as written, `\"` is a quote);
 * - `""` or `''` alone is an empty element.
 *
 * With `quoting: 'posix'` (fail2ban's `ignorecommand`, written for a shell) backslashes and
 * double quotes follow a POSIX shell instead: a backslash outside quotes makes the next character
 * literal (`e\ f` is `e f`), inside `"…"` it escapes only `"`, `\`, `$` and a backquote, and `""`
 * inside double quotes is an empty pair of quotes, not a literal `"`. Nothing is expanded either.
 *
 * `splitScript` also cuts a fail2ban command (several lines, `cmd1 && cmd2`, `cmd1; cmd2`) into
 * commands run one after the other, and reports shell syntax that would need a shell (pipes,
 * redirections, `$…`, backquotes, `||`, `&`) as an error instead of running something else.
 */

/** A command line that cannot be split (unterminated quote, shell syntax where none is allowed). */
export class ArgvError extends Error {
  constructor(
    message: string,
    /** 0-based offset in the command line. */
    readonly at: number,
  ) {
    super(message)
    this.name = 'ArgvError'
  }
}

/** One command of a script and how it is chained to the previous one. */
export interface ScriptCommand {
  readonly argv: string[]
  /** `and`: runs only when the previous command succeeded (`&&`, a new line); `always`: after `;`. */
  readonly after: 'and' | 'always'
}

const BLANK = new Set([' ', '\t'])
const TAG_AT = /<[A-Za-z_][A-Za-z0-9_./-]*>/y

/** Which backslash and double-quote rules apply: Windows' (the default) or a POSIX shell's. */
export type Quoting = 'windows' | 'posix'

interface Options {
  /** Split commands at unquoted new lines, `&&` and `;`, and refuse other shell syntax. */
  readonly script: boolean
  readonly posix: boolean
}

/** Characters a backslash escapes inside POSIX double quotes. */
const POSIX_DQ_ESCAPES = '"\\$`'

/**
 * A run of backslashes at `i`, read by Windows' rule: before a `"`, 2n backslashes give n and
 * leave the quote its meaning, 2n+1 give n and a literal quote (consumed); elsewhere they are
 * literal. Returns the text and the index after what was consumed.
 */
function backslashes(line: string, i: number): {text: string; next: number} {
  let j = i
  while (j < line.length && line[j] === '\\') j++
  const count = j - i
  if (line[j] !== '"') return {text: '\\'.repeat(count), next: j}
  return count % 2 === 1 ? {text: '\\'.repeat(count >> 1) + '"', next: j + 1} : {text: '\\'.repeat(count >> 1), next: j}
}

function split(line: string, o: Options): ScriptCommand[] {
  const commands: ScriptCommand[] = []
  let argv: string[] = []
  let after: ScriptCommand['after'] = 'and'
  let cur = ''
  let inWord = false
  let i = 0
  const n = line.length
  const endWord = (): void => {
    if (inWord) argv.push(cur)
    cur = ''
    inWord = false
  }
  const endCommand = (next: ScriptCommand['after']): void => {
    endWord()
    if (argv.length > 0) commands.push({argv, after})
    argv = []
    after = next
  }
  while (i < n) {
    const c = line[i]!
    if (BLANK.has(c)) {
      endWord()
      i++
      continue
    }
    if (c === '\n' || c === '\r') {
      if (!o.script) {
        endWord()
        i++
        continue
      }
      // a backslash-newline continues the line (fail2ban scripts use it)
      if (cur.endsWith('\\') && inWord) {
        cur = cur.slice(0, -1)
        if (cur === '') inWord = false
        i++
        continue
      }
      endCommand('and')
      i++
      continue
    }
    if (c === '\\' && o.posix) {
      // the next character is literal (a trailing backslash stays)
      cur += i + 1 < n ? line[i + 1] : c
      inWord = true
      i += 2
      continue
    }
    if (c === '\\') {
      const r = backslashes(line, i)
      cur += r.text
      inWord = true
      i = r.next
      continue
    }
    if (c === '"') {
      inWord = true
      i++
      for (;;) {
        if (i >= n) throw new ArgvError('unterminated "quote"', i)
        const d = line[i]!
        if (o.posix) {
          if (d === '"') {
            i++
            break
          }
          if (d === '\\' && i + 1 < n && POSIX_DQ_ESCAPES.includes(line[i + 1]!)) i++
          cur += line[i]
          i++
          continue
        }
        if (d === '"') {
          if (line[i + 1] === '"') {
            cur += '"'
            i += 2
            continue
          }
          i++
          break
        }
        if (d === '\\') {
          const r = backslashes(line, i)
          cur += r.text
          i = r.next
          continue
        }
        cur += d
        i++
      }
      continue
    }
    if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) throw new ArgvError("unterminated 'quote'", i)
      cur += line.slice(i + 1, end)
      inWord = true
      i = end + 1
      continue
    }
    if (o.script) {
      if (c === '<') {
        // a `<tag>` is text (substituted later), not a redirection
        TAG_AT.lastIndex = i
        const m = TAG_AT.exec(line)
        if (m !== null) {
          cur += m[0]
          inWord = true
          i += m[0].length
          continue
        }
      }
      const two = line.slice(i, i + 2)
      if (two === '&&') {
        endCommand('and')
        i += 2
        continue
      }
      if (c === ';') {
        endCommand('always')
        i++
        continue
      }
      const bad = two === '||' ? '||' : two === '$(' ? '$(' : two === '${' ? '${' : '|&<>`'.includes(c) ? c : c === '$' && /[A-Za-z_0-9?#@*!$-]/.test(line[i + 1] ?? '') ? '$' + line[i + 1] : undefined
      if (bad !== undefined) throw new ArgvError(`shell syntax ${JSON.stringify(bad)} needs a shell, and spylog runs commands without one (captured text must never reach a shell)`, i)
    }
    cur += c
    inWord = true
    i++
  }
  endCommand('and')
  return commands
}

/**
 * Splits one command line into argv elements (new lines are blanks); throws ArgvError on an
 * unterminated quote. `quoting` picks Windows' backslash rules (default) or a POSIX shell's.
 */
export function splitCommandLine(line: string, quoting: Quoting = 'windows'): string[] {
  const cmds = split(line, {script: false, posix: quoting === 'posix'})
  return cmds.length === 0 ? [] : cmds[0]!.argv
}

/**
 * Splits a fail2ban-style command (one or more lines, `&&`, `;`) into commands; throws ArgvError
 * on shell syntax it cannot run without a shell.
 */
export function splitScript(script: string): ScriptCommand[] {
  return split(script, {script: true, posix: false})
}

/** Quotes argv elements back into one line (for logs and `--dry-run`): the inverse of splitCommandLine. */
export function joinCommandLine(argv: readonly string[]): string {
  return argv.map((a) => (a !== '' && !/[\s"'\\]/.test(a) ? a : `"${a.replace(/(\\*)"/g, (_m, b: string) => b + b + '\\"').replace(/(\\+)$/, '$1$1')}"`)).join(' ')
}

/** Options of splitLuaArgs. */
export interface LuaArgsOptions {
  /**
   * Tabs, carriage returns and new lines outside quotes separate arguments as spaces do, and
   * nothing is left over (the texts of the notifying built-ins: a mail body may be written over
   * several lines). Without it, as in lua-spylog, only spaces separate and a new line outside
   * quotes ends the arguments.
   */
  readonly multiline?: boolean
}

/**
 * Splits an argument string as lua-spylog's `Args.split` does (the process source's command,
 * the argument strings of `@spylog.actions.*` modules): fields separated by spaces (empty fields
 * dropped); a field in double quotes may contain spaces and new lines, `""` inside it is one
 * quote; `name="value with spaces"` is the one argument `name=value with spaces`; text glued to
 * a quote continues the argument. Backslashes are ordinary characters. Splitting stops at a new
 * line outside quotes: what follows is returned as `tail` (unused; callers warn about it), unless
 * `multiline` is set. Never throws: an unterminated quote runs to the end of the text.
 */
export function splitLuaArgs(s: string, o: LuaArgsOptions = {}): {args: string[]; tail?: string} {
  const multiline = o.multiline === true
  const args: string[] = []
  let i = 0
  const n = s.length
  const blank = (c: string): boolean => c === ' ' || (multiline && (c === '\t' || c === '\n' || c === '\r'))
  const quoted = (): string => {
    // at the opening quote
    i++
    let out = ''
    for (;;) {
      if (i >= n) return out
      const c = s[i]!
      if (c === '"') {
        if (s[i + 1] === '"') {
          out += '"'
          i += 2
          continue
        }
        i++
        return out
      }
      out += c
      i++
    }
  }
  const bare = (stopAtEq: boolean): string => {
    const start = i
    while (i < n && !blank(s[i]!) && s[i] !== '\n' && s[i] !== '"' && !(stopAtEq && s[i] === '=')) i++
    return s.slice(start, i)
  }
  while (i < n) {
    const c = s[i]!
    if (blank(c)) {
      i++
      continue
    }
    if (c === '\n') {
      const tail = s.slice(i + 1)
      return tail === '' ? {args} : {args, tail}
    }
    let field: string
    if (c === '"') field = quoted()
    else {
      field = bare(true)
      if (s[i] === '=') {
        i++
        field += '=' + (s[i] === '"' ? quoted() : bare(false))
      }
    }
    // Text glued to a quote (before or after it) continues the same argument.
    while (i < n && !blank(s[i]!) && s[i] !== '\n') field += s[i] === '"' ? quoted() : bare(false)
    if (field !== '' || c === '"') args.push(field)
  }
  return {args}
}
