#!/usr/bin/env node
// Jail benchmark (after `npm run build`): 1,000,000 distinct offenders, one failure each, through
// one jail (increment counter, maxretry 3, findtime 10 min, a WHITE_IP list, event-time
// counting) — the shape of an address-spraying botnet. Prints failures/s and the process RSS
// (the budget: under 300 MB for a million tracked offenders).
//
// Options (environment): BENCH_OFFENDERS (default 1000000).
// `node bench/jails.js` prints the result; `run()` returns it to other scripts.
import * as path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')

/** Runs the benchmark; resolves {offenders, seconds, failuresPerSecond, rssMiB, heapUsedMiB, currentlyFailed, tickets}. */
export async function run({offenders = Number(process.env.BENCH_OFFENDERS ?? 1_000_000)} = {}) {
  const mod = (p) => import(pathToFileURL(path.join(ROOT, 'dist/src/engine', p)).href)
  const {Jail} = await mod('jails/jail.js')
  const {MemoryBanHistory} = await mod('jails/history.js')
  const {NeverBan} = await mod('jails/ignore.js')
  const {nullLogger} = await mod('log/logger.js')

  const cfg = {
    name: 'sshd', origin: {file: 'bench', line: 0}, enabled: true, filters: ['sshd'], findtime: 600, maxretry: 3, bantime: 3600,
    actions: [], parameters: {}, counter: {type: 'increment', capture: 'host', value: 'value', time: 'filter'}, cfilter: [],
    noreset: false, ignoreIp: [],
  }
  const neverBan = new NeverBan({whiteIp: ['10.0.0.0/8', '192.168.0.0/16', '172.16.0.0/12', '198.51.100.7'], ignoreSelf: true})
  const jail = new Jail(cfg, {log: nullLogger, history: new MemoryBanHistory(), neverBan, clock: () => Date.now() / 1000})

  const rssBefore = process.memoryUsage().rss
  const t0 = 1_700_000_000
  const start = performance.now()
  let tickets = 0
  for (let i = 0; i < offenders; i++) {
    // Distinct public addresses from 11.0.0.0 upwards, one failure each, as a filter makes them.
    const n = 0x0b000000 + i
    const ip = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
    const time = t0 + i / 2000
    const line = `Jan 14 10:11:12 host sshd[${1000 + (i % 30000)}]: Failed password for invalid user u${i % 977} from ${ip} port ${1024 + (i % 60000)} ssh2`
    const f = {filter: 'sshd', id: ip, time, data: {host: ip, user: `u${i % 977}`}, lines: [line]}
    if (jail.add(f, time) !== undefined) tickets++
  }
  const seconds = (performance.now() - start) / 1000
  if (typeof globalThis.gc === 'function') globalThis.gc()
  const mem = process.memoryUsage()
  return {
    offenders, seconds: round(seconds), failuresPerSecond: Math.round(offenders / seconds), rssMiB: round(mem.rss / 2 ** 20),
    rssGrowthMiB: round((mem.rss - rssBefore) / 2 ** 20), heapUsedMiB: round(mem.heapUsed / 2 ** 20), maxRssMiB: round(process.resourceUsage().maxRSS / 1024),
    currentlyFailed: jail.stats.currentlyFailed, tickets,
  }
}

function round(x) {
  return Math.round(x * 10) / 10
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await run()
  console.log(`jails: ${r.offenders.toLocaleString('en')} distinct offenders in ${r.seconds} s: ${r.failuresPerSecond.toLocaleString('en')} failures/s; RSS ${r.rssMiB} MiB (peak ${r.maxRssMiB} MiB, heap ${r.heapUsedMiB} MiB); ${r.currentlyFailed.toLocaleString('en')} counters, ${r.tickets} tickets`)
  if (r.maxRssMiB >= 300) {
    console.error('jails: over the 300 MB budget')
    process.exitCode = 1
  }
}
