/**
 * What every source offers the pipeline. A source turns its input (a file, a socket, a process,
 * the journal, the event log) into LogRecords and hands each to the sink it was started with.
 * Sources never block the pipeline and never throw into it: problems are counted, logged once,
 * and retried with back-off.
 */
import type {SourceConfig} from '../config/model.js'
import type {Logger} from '../log/logger.js'
import type {LogRecord} from '../types.js'

/** Receives the records of a source, in order. Must not throw and must return quickly. */
export type RecordSink = (record: LogRecord) => void

export type SourceState = 'starting' | 'running' | 'retrying' | 'failed' | 'stopped'

/** Counters shown by `spylog status` and exported as metrics. */
export interface SourceStats {
  records: number
  bytes: number
  errors: number
  /** Records dropped (full buffer, oversized input). */
  drops: number
  /** Receive time (Unix seconds) of the last record. */
  lastRecord?: number
  state: SourceState
  /** The reason of the last failure (start-up or runtime), for status. */
  lastError?: string
}

/** Where a file source resumes: byte offset and a fingerprint of the file's start. */
export interface FilePosition {
  /** Byte offset of the first unread byte. */
  offset: number
  /** Hash (hex) of the file's first line (or first bytes), to recognise a replaced file. */
  fingerprint: string
  /** Inode/device when known (rotation detection). */
  ino?: number
  dev?: number
}

/** Persistent positions of sources (file offsets, journal cursors, event-log record ids). */
export interface PositionStore {
  get(key: string): Promise<unknown>
  set(key: string, value: unknown): Promise<void>
}

/** An in-memory PositionStore (tests, `--dry-run`). */
export class MemoryPositionStore implements PositionStore {
  readonly values = new Map<string, unknown>()
  async get(key: string): Promise<unknown> {
    return this.values.get(key)
  }
  async set(key: string, value: unknown): Promise<void> {
    this.values.set(key, value)
  }
}

export interface SourceContext {
  readonly log: Logger
  /** Saved positions; sources that can resume read and write theirs under their own key. */
  readonly positions: PositionStore
  /** Read existing content from the start instead of the end (`spylog run --from-start`). */
  readonly fromStart?: boolean
  /** The platform (tests pass another to exercise platform branches). */
  readonly platform?: NodeJS.Platform
  /**
   * Back-pressure from the pipeline: undefined while it has room, else a promise that resolves
   * when it has room again. Sources that can wait without losing input (files) call it between
   * reads; sources that cannot (datagrams, peers that keep sending) count drops instead.
   */
  readonly pressure?: () => Promise<void> | undefined
}

export interface Source {
  readonly name: string
  readonly kind: SourceConfig['kind']
  readonly stats: SourceStats
  /**
   * Start delivering records to `sink`. Resolves once the source is set up or has failed to
   * start (then state is 'retrying' or 'failed', lastError says why); never rejects for a
   * runtime problem of the input.
   */
  start(sink: RecordSink): Promise<void>
  /** Stop reading, save the position, release sockets/processes/files. Idempotent. */
  stop(): Promise<void>
}

export function newStats(): SourceStats {
  return {records: 0, bytes: 0, errors: 0, drops: 0, state: 'starting'}
}
