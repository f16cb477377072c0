/**
 * Regex safety, set once when the pattern engine loads (before any pattern is compiled):
 * V8 abandons a backtracking regex that backtracks excessively on a line and re-runs it on its
 * linear-time engine. On Node 20 that engine takes regexes without the u and i flags, look-arounds
 * and back-references, which is why pyre.ts compiles the ASCII and BMP variants of every pattern
 * in that form wherever the pattern allows (subjects with astral characters use the exact
 * `u`-flag variant, bounded only by the line length). Lines are cut at 64 KiB by the filters.
 */
import v8 from 'node:v8'

v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks')
// V8's default (50,000 backtracks) lets a quadratic regex spend seconds on one 64 KiB line before
// the fallback; 5,000 bounds that to tens of milliseconds (measured on the fail2ban corpus) and
// leaves ordinary lines untouched: they backtrack far less.
v8.setFlagsFromString('--regexp-backtracks-before-fallback=5000')

export const REGEX_FALLBACK_ENABLED = true
