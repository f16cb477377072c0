/** Shared pieces of the source tests. */
import {memorySink, SinkLogger} from '../../src/engine/log/logger.js'
import {MemoryPositionStore, type SourceContext} from '../../src/engine/sources/source.js'

/** A source context logging at debug level into `lines`, with positions kept in memory. */
export function context(lines: string[] = []): SourceContext {
  return {log: new SinkLogger('debug', [memorySink(lines)]), positions: new MemoryPositionStore()}
}
