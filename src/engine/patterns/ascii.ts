const NON_ASCII = /[^\x00-\x7f]/

/** True when every UTF-16 unit of `s` is ASCII. One native scan; callers compute it once per line. */
export function isAscii(s: string): boolean {
  return !NON_ASCII.test(s)
}
