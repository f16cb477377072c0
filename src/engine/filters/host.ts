/**
 * The daemon runs its filters in a worker thread under a watchdog, so that no line can stall the
 * daemon: sources keep reading, jails keep counting, bans and unbans keep running while a filter
 * works, and a filter that spends longer than `watchdogMs` on one line is stopped (the worker is
 * terminated and restarted, the line is skipped and reported once with its source and filter).
 *
 * V8's linear-time fallback already bounds most regexes (patterns/safety.ts); what it cannot take
 * (look-arounds of a pattern's own, subjects with astral characters) is bounded here.
 *
 * Records are sent in batches (one message per batch, at most one batch in flight); failures come
 * back as soon as they are found, so the records of a batch processed before a stopped line keep
 * their failures, and the records after it are sent again to the new worker. The queue in front
 * of the worker is bounded: beyond `maxQueue` records, new ones are dropped and counted, with one
 * warning per episode.
 */
import {Worker} from 'node:worker_threads'
import type {SpylogConfig} from '../config/model.js'
import type {Logger} from '../log/logger.js'
import type {Failure, LogRecord} from '../types.js'
import {readStats, STAT_SLOTS, type FilterStats} from './service.js'

export interface FilterHostOptions {
  readonly log: Logger
  /** The filters to run (the enabled ones some enabled jail reads). */
  readonly only?: ReadonlySet<string>
  /** A line taking longer than this stops the worker (default 10,000 ms). */
  readonly watchdogMs?: number
  /** Records waiting for the worker beyond which new ones are dropped (default 100,000). */
  readonly maxQueue?: number
  /** Records per message (default 512). */
  readonly batch?: number
}

/** What the worker posts. */
export type WorkerMessage =
  | {type: 'ready'}
  | {type: 'init-error'; message: string}
  | {type: 'failure'; failure: Failure}
  | {type: 'done'; seq: number}

/** What the host posts. */
export type HostMessage =
  | {type: 'init'; filters: SpylogConfig['filters']; only?: string[]}
  | {type: 'batch'; seq: number; records: LogRecord[]}

export interface FilterHostStats {
  /** Records waiting for the worker. */
  queued: number
  /** Records dropped because the queue was full. */
  dropped: number
  /** Lines skipped because a filter took longer than the watchdog allows. */
  stopped: number
  /** Worker restarts (after a stop or a crash). */
  restarts: number
}

// Compiled: dist/…/worker.js. Under tsx (tests run the TypeScript sources) a worker does not
// inherit the loader: a small bootstrap registers tsx in the worker, then imports worker.ts.
const TS = import.meta.url.endsWith('.ts')
const WORKER_URL = new URL(TS ? './worker.ts' : './worker.js', import.meta.url)

function newWorker(workerData: unknown): Worker {
  if (!TS) return new Worker(WORKER_URL, {workerData})
  const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(WORKER_URL.href)}) })`
  return new Worker(boot, {eval: true, workerData})
}

export class FilterHost {
  readonly stats: FilterHostStats = {queued: 0, dropped: 0, stopped: 0, restarts: 0}
  private worker: Worker | undefined
  /** [0]: time (ms, performance.timeOrigin + performance.now(): comparable across threads) when the current record started (0 when idle); [1]: its index in the batch. */
  private shared = new Float64Array(new SharedArrayBuffer(16))
  private queue: LogRecord[] = []
  private inFlight: LogRecord[] | undefined
  private seq = 0
  private ready = false
  private dropping = false
  private stopped = false
  private timer: NodeJS.Timeout | undefined
  private idleWaiters: Array<() => void> = []
  private roomWaiters: Array<() => void> = []
  /** Filter counters, written by the worker (STAT_FIELDS per filter, configuration order); kept across worker restarts. */
  private readonly counters: Float64Array
  private readonly watchdogMs: number
  private readonly maxQueue: number
  private readonly batch: number

  private constructor(
    private readonly filters: SpylogConfig['filters'],
    private readonly onFailure: (f: Failure) => void,
    private readonly opts: FilterHostOptions,
  ) {
    this.watchdogMs = opts.watchdogMs ?? 10_000
    this.maxQueue = opts.maxQueue ?? 100_000
    this.batch = opts.batch ?? 512
    this.counters = new Float64Array(new SharedArrayBuffer(Math.max(1, filters.length) * STAT_SLOTS * 8))
  }

  /** Starts the worker; rejects with the filters' build error (a configuration problem). */
  static async start(filters: SpylogConfig['filters'], onFailure: (f: Failure) => void, opts: FilterHostOptions): Promise<FilterHost> {
    const host = new FilterHost(filters, onFailure, opts)
    await host.spawn()
    host.timer = setInterval(() => host.watch(), Math.min(500, Math.max(10, host.watchdogMs / 4)))
    host.timer.unref()
    return host
  }

  /** Queues one record for the filters. Never blocks; drops (and counts) when the queue is full. */
  push(record: LogRecord): void {
    if (this.stopped) return
    if (this.queue.length >= this.maxQueue) {
      this.stats.dropped++
      if (!this.dropping) {
        this.dropping = true
        this.opts.log.warning(`filters: ${this.maxQueue} records waiting, dropping new records until the filters catch up`)
      }
      return
    }
    if (this.dropping && this.queue.length < this.maxQueue / 2) {
      this.dropping = false
      this.opts.log.notice(`filters caught up (${this.stats.dropped} records dropped so far)`)
    }
    this.queue.push(record)
    this.stats.queued = this.queue.length
    if (this.inFlight === undefined && this.ready) this.sendNext()
  }

  /**
   * Back-pressure for sources that can wait: undefined while fewer than a quarter of `maxQueue`
   * records wait, else a promise that resolves once the queue is down to an eighth.
   */
  pressure(): Promise<void> | undefined {
    if (this.stopped || this.queue.length < this.maxQueue / 4) return undefined
    return new Promise((resolve) => this.roomWaiters.push(resolve))
  }

  /** Resolves when every queued record has been filtered. */
  idle(): Promise<void> {
    if (this.inFlight === undefined && this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Per-filter counters of the filters the worker runs. */
  filterStats(): Array<{name: string; sources: readonly string[]; stats: FilterStats}> {
    const out: Array<{name: string; sources: readonly string[]; stats: FilterStats}> = []
    this.filters.forEach((f, i) => {
      if (f.enabled && (this.opts.only === undefined || this.opts.only.has(f.name))) out.push({name: f.name, sources: f.sources, stats: readStats(this.counters, i)})
    })
    return out
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    const w = this.worker
    this.worker = undefined
    if (w !== undefined) await w.terminate()
    for (const r of this.idleWaiters.splice(0)) r()
    for (const r of this.roomWaiters.splice(0)) r()
  }

  private spawn(): Promise<void> {
    this.ready = false
    this.shared = new Float64Array(new SharedArrayBuffer(16))
    const w = newWorker({shared: this.shared, counters: this.counters})
    this.worker = w
    return new Promise<void>((resolve, reject) => {
      let settled = false
      w.on('message', (m: WorkerMessage) => {
        if (w !== this.worker) return
        switch (m.type) {
          case 'ready':
            this.ready = true
            settled = true
            resolve()
            if (this.inFlight === undefined) this.sendNext()
            break
          case 'init-error':
            settled = true
            // A worker that could not build the filters must not keep the process alive.
            this.worker = undefined
            void w.terminate()
            reject(new Error(m.message))
            break
          case 'failure':
            this.onFailure(m.failure)
            break
          case 'done':
            this.inFlight = undefined
            this.sendNext()
            break
        }
      })
      w.on('error', (err) => {
        if (w !== this.worker) return
        if (!settled) {
          settled = true
          this.worker = undefined
          void w.terminate()
          reject(err)
          return
        }
        this.opts.log.error(`filters: worker failed: ${err.message}; restarting it`)
        this.restart(undefined)
      })
      w.on('exit', (code) => {
        if (w !== this.worker || this.stopped) return
        if (!settled) {
          settled = true
          reject(new Error(`filter worker exited with code ${code}`))
          return
        }
        this.opts.log.error(`filters: worker exited (code ${code}); restarting it`)
        this.restart(undefined)
      })
      w.postMessage({type: 'init', filters: this.filters, only: this.opts.only === undefined ? undefined : [...this.opts.only]} satisfies HostMessage)
    })
  }

  private sendNext(): void {
    if (this.worker === undefined || !this.ready) return
    if (this.queue.length === 0) {
      for (const r of this.idleWaiters.splice(0)) r()
      for (const r of this.roomWaiters.splice(0)) r()
      return
    }
    const n = Math.min(this.batch, this.queue.length)
    const records = this.queue.splice(0, n)
    this.stats.queued = this.queue.length
    if (this.roomWaiters.length > 0 && this.queue.length <= this.maxQueue / 8) for (const r of this.roomWaiters.splice(0)) r()
    this.inFlight = records
    this.worker.postMessage({type: 'batch', seq: ++this.seq, records} satisfies HostMessage)
  }

  private watch(): void {
    const started = this.shared[0]!
    if (started === 0 || this.inFlight === undefined) return
    if (performance.timeOrigin + performance.now() - started < this.watchdogMs) return
    const i = Math.trunc(this.shared[1]!)
    const rec = this.inFlight[i]
    this.stats.stopped++
    this.opts.log.warning(
      `filters: a line of source ${rec?.source ?? '?'} took longer than ${this.watchdogMs} ms; skipped it and restarted the filters ` +
        `(line starts ${JSON.stringify((rec?.text ?? '').slice(0, 120))})`,
    )
    this.restart(i)
  }

  /** Replaces the worker; the records of the batch in flight after `culprit` are sent again (all of them when undefined). */
  private restart(culprit: number | undefined): void {
    const old = this.worker
    const batch = this.inFlight ?? []
    this.inFlight = undefined
    this.queue.unshift(...batch.slice(culprit === undefined ? 0 : culprit + 1))
    this.stats.restarts++
    this.worker = undefined
    if (old !== undefined) void old.terminate()
    if (this.stopped) return
    this.spawn().catch((err: Error) => this.opts.log.error(`filters: cannot restart the worker: ${err.message}`))
  }
}
