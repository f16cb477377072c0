/**
 * Errors raised while reading fail2ban-style configuration (filter.d, jail.conf, …).
 *
 * A ConfigError is always a user mistake (bad syntax, missing file or name, …), never a bug:
 * callers print `err.message` as is, without a stack trace. The message is
 * "<file>:<line>: <field>: <what is wrong>", each location part present only when known;
 * the bare description is kept in `reason`.
 */
export class ConfigError extends Error {
  /** The description without the location prefix. */
  readonly reason: string

  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
    readonly field?: string,
  ) {
    super(formatConfigError(message, file, line, field))
    this.name = 'ConfigError'
    this.reason = message
  }
}

export function formatConfigError(message: string, file?: string, line?: number, field?: string): string {
  let where = ''
  if (file !== undefined && file !== '') where += line !== undefined ? `${file}:${line}: ` : `${file}: `
  else if (line !== undefined) where += `line ${line}: `
  if (field !== undefined && field !== '') where += `${field}: `
  return where + message
}
