/**
 * Shared shapes of the pattern dialects. Every dialect compiles once, at load, into a native
 * RegExp (or, for the rare Lua construct RegExp cannot express, a fengari fallback); the hot path
 * never re-parses a pattern.
 */

/** A pattern that could not be compiled. `position` is a 0-based offset into `pattern`. */
export class PatternError extends Error {
  constructor(
    message: string,
    readonly pattern: string,
    readonly position?: number,
  ) {
    super(position === undefined ? message : `${message} at position ${position}`)
    this.name = 'PatternError'
  }
}

/** Python-`re` (fail2ban) or PCRE regex compiled to native RegExps. */
export interface CompiledRegex {
  /** The pattern text as written. */
  readonly source: string
  /** Capture name → index into the array `exec` returns. */
  readonly groupNames: ReadonlyMap<string, number>
  /** Number of capture slots in `exec`'s result (excluding index 0). */
  readonly groupCount: number
  /** Literal strings of which at least one must occur in any subject that matches (empty: no prefilter). */
  readonly required: readonly string[]
  /** Whether the pattern as a whole is case-insensitive (affects how `required` is checked). */
  readonly ignoreCase: boolean
  /**
   * Search `subject` from `from` (default 0). The result's `index` is the match start; slots of
   * groups that did not participate are undefined. `ascii` may be passed when the caller already
   * knows whether the subject is pure ASCII (saves a scan).
   */
  exec(subject: string, from?: number, ascii?: boolean): RegExpExecArray | null
  /** Named capture of a result, or undefined. */
  group(m: RegExpExecArray, name: string): string | undefined
}
