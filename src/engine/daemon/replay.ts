/**
 * `spylog run --dry-run --from-start`: replays the existing content of the configuration's log
 * files through the same filters and jails the daemon runs, in event time, and returns the
 * timeline of the bans they would have made (and when each would have been lifted). A way to tune
 * findtime and maxretry on real logs before a jail blocks anyone.
 *
 * Each file is read once, from the start, through its filters (as the daemon's file source
 * would); the failures of all files are then put in event-time order and counted by the jails
 * with a clock that follows the events, so the answer is what live operation would have done.
 * Nothing runs: no action, no store.
 */
import fs from 'node:fs'
import fg from 'fast-glob'
import type {SpylogConfig} from '../config/model.js'
import {FilterService} from '../filters/service.js'
import {buildCaptureFilter} from '../jails/cfilter.js'
import {MemoryBanHistory} from '../jails/history.js'
import {NeverBan} from '../jails/ignore.js'
import {Jail} from '../jails/jail.js'
import type {Logger} from '../log/logger.js'
import {LineSplitter} from '../sources/lines.js'
import type {Failure, Ticket} from '../types.js'

export interface ReplayBan {
  readonly jail: string
  readonly id: string
  /** Ban time, Unix seconds (the event time of the failure that tripped the jail). */
  readonly time: number
  /** Seconds; -1 permanent. */
  readonly bantime: number
  /** Failures that led to it. */
  readonly failures: number
  readonly filter: string
  /** Set when the jail's ignorecommand let the offender go (whitelisted and local addresses make no ban at all). */
  readonly ignored?: string
}

export interface ReplayResult {
  /** Files read per source. */
  readonly files: Record<string, string[]>
  readonly lines: number
  readonly failures: number
  readonly bans: ReplayBan[]
  /** Failures without a usable date (counted at the time of the previous dated one). */
  readonly undated: number
}

export interface ReplayOptions {
  readonly log: Logger
  /** Called with (bytes read, total bytes) as files are read (progress). */
  readonly progress?: (done: number, total: number) => void
}

/** Replays the file sources of `config` (see the module comment). */
export async function replay(config: SpylogConfig, opts: ReplayOptions): Promise<ReplayResult> {
  const jailCfgs = config.jails.filter((j) => j.enabled)
  const filterNames = new Set(jailCfgs.flatMap((j) => j.filters))
  const service = new FilterService(config, {log: opts.log, captureFilter: (c) => buildCaptureFilter(c, {log: opts.log})}, filterNames)
  const wanted = new Set(service.sources)
  const files: Record<string, string[]> = {}
  const all: {src: string; path: string; size: number}[] = []
  for (const s of config.sources) {
    if (s.kind !== 'file' || !wanted.has(s.name)) continue
    const paths = fg.isDynamicPattern(s.path.replaceAll('\\', '/')) ? await fg(s.path.replaceAll('\\', '/'), {onlyFiles: true, absolute: true}) : fs.existsSync(s.path) ? [s.path] : []
    files[s.name] = paths
    for (const p of paths) all.push({src: s.name, path: p, size: fs.statSync(p).size})
  }
  const total = all.reduce((n, f) => n + f.size, 0)
  let done = 0
  let lines = 0
  const failures: Failure[] = []
  for (const f of all) {
    const src = config.sources.find((s) => s.name === f.src)!
    const splitter = new LineSplitter(src.kind === 'file' ? {eol: src.eol, maxLine: src.maxLine, encoding: src.encoding} : {}, (text) => {
      lines++
      service.process({source: f.src, text, received: Date.now() / 1000}, (x) => void failures.push(x))
    })
    const fd = fs.openSync(f.path, 'r')
    try {
      const buf = Buffer.allocUnsafe(1 << 20)
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null)
        if (n <= 0) break
        splitter.push(buf.subarray(0, n))
        done += n
        opts.progress?.(done, total)
        // Let a spinner and signals through on big files.
        await new Promise((r) => setImmediate(r))
      }
      splitter.flush()
    } finally {
      fs.closeSync(fd)
    }
  }
  // Event-time order; undated failures keep their place after the dated one before them.
  let last = -Infinity
  let undated = 0
  const timed = failures.map((f, i) => {
    if (f.time === undefined) undated++
    else last = f.time
    return {f, t: f.time ?? last, i}
  })
  timed.sort((a, b) => a.t - b.t || a.i - b.i)

  let clock = timed.length > 0 && Number.isFinite(timed[0]!.t) ? timed[0]!.t : Date.now() / 1000
  const history = new MemoryBanHistory()
  const jails = new Map<string, {jail: Jail; never: NeverBan}[]>()
  for (const cfg of jailCfgs) {
    const never = NeverBan.forJail(cfg, config.whiteIp, opts.log)
    await never.start()
    const jail = new Jail(cfg, {log: opts.log, history, neverBan: never, globals: config.jail.parameters, clock: () => clock, timeFromEvents: true})
    for (const f of cfg.filters) {
      let list = jails.get(f)
      if (list === undefined) jails.set(f, (list = []))
      list.push({jail, never})
    }
  }
  const bans: ReplayBan[] = []
  try {
    for (const {f, t} of timed) {
      if (Number.isFinite(t)) clock = t
      for (const {jail} of jails.get(f.filter) ?? []) {
        const ticket: Ticket | undefined = jail.add(f, clock)
        if (ticket === undefined) continue
        // Never-banned offenders make no ticket at all; the ignorecommand is asked here.
        const admitted = await jail.admit(ticket)
        bans.push({jail: ticket.jail, id: ticket.id, time: ticket.time, bantime: ticket.bantime, failures: ticket.failures.length, filter: ticket.filter, ...(admitted ? {} : {ignored: 'ignorecommand'})})
      }
    }
  } finally {
    for (const list of jails.values()) for (const {never} of list) never.stop()
  }
  return {files, lines, failures: failures.length, bans, undated}
}
