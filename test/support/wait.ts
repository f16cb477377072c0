/** Waiting in tests: poll a condition with a deadline (never a fixed sleep), and a source context. */
import {memorySink, SinkLogger} from '../../src/engine/log/logger.js'
import {MemoryPositionStore, type SourceContext} from '../../src/engine/sources/source.js'

/** Resolves with `f()`'s first value that is neither undefined nor false; rejects after `ms` naming `what`. */
export async function waitFor<T>(what: string, f: () => T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = f()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A source context logging into `lines`, with positions in memory. */
export function sourceContext(lines: string[] = []): SourceContext {
  return {log: new SinkLogger('debug', [memorySink(lines)]), positions: new MemoryPositionStore()}
}
