/**
 * Waiting in tests: poll a condition with a generous deadline (the machine may be loaded), never
 * sleep a fixed time and hope.
 */

/**
 * Polls `cond` until it returns something other than undefined or false, and resolves with it;
 * rejects naming `what` after `ms` milliseconds (default 60 s).
 */
export async function waitFor<T>(what: string, cond: () => T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = cond()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Whether process `pid` still exists (to wait for it to die: `waitFor('…', () => !alive(pid))`). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
