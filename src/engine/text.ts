/**
 * Text helpers for messages that quote outside text (log lines, captures, tool output, request
 * fields): cutting it to a length, and quoting it so that it cannot forge a line or hide itself.
 */

/** `s` cut to at most `max` characters, with an ellipsis when something was cut. */
export function clip(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) + '…' : s
}

/**
 * `s` as a quoted string for a message: cut to `max` characters (ellipsis), in double quotes,
 * every control and line-separator character escaped (JSON's escapes, plus DEL, C1, U+2028/9).
 */
export function quoteLine(s: string, max = 200): string {
  return JSON.stringify(clip(s, max)).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}
