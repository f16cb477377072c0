#!/usr/bin/env node
// End-to-end benchmark through the daemon (after `npm run build`): the Engine with the real file
// source, spylog's packaged sshd filter (config/filters/sshd.lua) in the filter worker, one jail,
// the persistent action queue (nedb store in a temporary data directory) and an action runner.
//
// 1. Ban latency under load: a writer process appends BENCH_E2E_RATE benign sshd/cron lines per
//    second (default 20,000, syslog time stamps) to the watched log. BENCH_E2E_OFFENDERS offenders
//    (default 200) each have maxretry - 1 failures in the log already; then, one after the other,
//    the offender's maxretry-th failure is appended and the time until the ban action starts is
//    measured: the action is the built-in `log` action's kind with its factory replaced (through
//    the Engine's `actionFactories`) by a runner whose run('ban') records performance.now().
//    The same run splits the time into stages: write → record out of the file source (the
//    source's sink, wrapped through `sourceFactory`), → failure back from the filter worker,
//    → ticket submitted to the action queue (jail, never-ban check) → ban action started (the
//    queue stores the ban, its history entry and its jobs in the nedb store first).
//    Median, p99 and max; target p99 < 50 ms.
// 2. Memory: in a child process, BENCH_E2E_TRACKED distinct offenders (default 1,000,000; one
//    failure each, maxretry high so none is banned) appended to the watched log in chunks and
//    read by the same pipeline (file source, filter worker, jail); the process RSS once every
//    failure is counted (after a GC) and its peak; target < 300 MB.
//
// `run()` returns the numbers (for bench/run.js); run directly, it prints a table.
// Options (environment): BENCH_E2E_RATE, BENCH_E2E_OFFENDERS, BENCH_E2E_TRACKED, BENCH_E2E_SKIP_MEMORY=1.
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {table} from './lib.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')
const MAXRETRY = 3

const mod = (p) => import(pathToFileURL(path.join(ROOT, 'dist/src/engine', p)).href)

const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n) => String(n).padStart(2, '0')
/** A syslog (RFC 3164) time stamp in local time, as rsyslog writes /var/log/auth.log. */
const stamp = (d) => `${MON[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`

/** The writer: appends `rate` benign lines/s (in one write every ~5 ms) until its stdin closes, then prints how many. */
const WRITER = `
const fs = require('fs')
const [file, rate] = [process.argv[1], Number(process.argv[2])]
const fd = fs.openSync(file, 'a')
const MON = ${JSON.stringify(MON)}
const p2 = (n) => String(n).padStart(2, '0')
let sec = -1, st = ''
const stamp = () => {
  const d = new Date(), s = Math.floor(d.getTime() / 1000)
  if (s !== sec) { sec = s; st = MON[d.getMonth()] + ' ' + String(d.getDate()).padStart(2, ' ') + ' ' + p2(d.getHours()) + ':' + p2(d.getMinutes()) + ':' + p2(d.getSeconds()) }
  return st
}
const line = (n) => {
  const pid = 20000 + (n % 9000), a = (n >>> 8) & 255, b = n & 255, port = 1024 + (n % 60000)
  switch (n % 4) {
    case 0: return stamp() + ' web1 sshd[' + pid + ']: Accepted publickey for deploy from 10.20.' + a + '.' + b + ' port ' + port + ' ssh2: ED25519 SHA256:q0nTSm3xZ8hP1bXo6bqv1W8wC2V5u3yQ9f1S0aKkW0E'
    case 1: return stamp() + ' web1 sshd[' + pid + ']: pam_unix(sshd:session): session opened for user deploy(uid=1000) by deploy(uid=0)'
    case 2: return stamp() + ' web1 sshd[' + pid + ']: Received disconnect from 10.20.' + a + '.' + b + ' port ' + port + ':11: disconnected by user'
    default: return stamp() + ' web1 CRON[' + pid + ']: pam_unix(cron:session): session closed for user root'
  }
}
let n = 0, stop = false
const t0 = performance.now()
const tick = () => {
  const owed = Math.floor(((performance.now() - t0) / 1000) * rate) - n
  if (owed > 0) {
    let buf = ''
    for (let i = 0; i < owed; i++) buf += line(n++) + '\\n'
    fs.writeSync(fd, buf)
  }
  if (!stop) setTimeout(tick, 5)
}
tick()
process.stdin.on('data', () => {})
process.stdin.on('end', () => { stop = true; process.stdout.write(JSON.stringify({lines: n, seconds: (performance.now() - t0) / 1000})); process.exit(0) })
`

/** A configuration directory: the packaged sshd filter, one file source, one jail whose action is `mark`. */
function configTree(dir, log, {maxretry, bantime}) {
  const files = {
    'spylog.lua': `WHITE_IP{ '127.0.0.1/8', '::1' }\nLOG{ level = 'warning' }\nJAIL{ default = { findtime = 600; maxretry = ${maxretry}; bantime = ${bantime}; action = { 'mark' } } }\n`,
    'sources/auth.lua': `SOURCE{ 'auth', ${JSON.stringify(`file:${log}`)} }\n`,
    'filters/sshd.lua': fs.readFileSync(path.join(ROOT, 'config/filters/sshd.lua'), 'utf8'),
    'lib/syslog.lua': fs.readFileSync(path.join(ROOT, 'config/lib/syslog.lua'), 'utf8'),
    'jails/sshd.lua': `JAIL{ 'sshd'; filter = 'sshd' }\n`,
    // A built-in action (kind `log`); the benchmark replaces its factory to time the ban's start.
    'actions/mark.lua': `ACTION{ 'mark'; ban = '@spylog.actions.log'; unban = '@spylog.actions.log' }\n`,
  }
  const conf = path.join(dir, 'conf')
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(conf, rel)), {recursive: true})
    fs.writeFileSync(path.join(conf, rel), text)
  }
  return conf
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return {median: round(quantile(s, 0.5)), p99: round(quantile(s, 0.99)), max: round(s[s.length - 1])}
}

const round = (x) => Math.round(x * 100) / 100
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function waitFor(what, cond, ms) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`)
    await sleep(2)
  }
}

const offenderIp = (i) => `198.18.${(i >>> 8) & 255}.${i & 255}`
const failLine = (i, k) => `${stamp(new Date())} web1 sshd[${30000 + i}]: Failed password for invalid user oracle${k} from ${offenderIp(i)} port ${40000 + k} ssh2\n`

/** Part 1: ban latency under a 20,000 lines/s writer. */
export async function latency({offenders = Number(process.env.BENCH_E2E_OFFENDERS ?? 200), rate = Number(process.env.BENCH_E2E_RATE ?? 20_000)} = {}) {
  const {loadLuaConfig} = await mod('config/lua.js')
  const {Engine} = await mod('daemon/engine.js')
  const {createSource} = await mod('sources/index.js')
  const {nullLogger} = await mod('log/logger.js')

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spylog-bench-e2e-'))
  const log = path.join(dir, 'auth.log')
  fs.writeFileSync(log, '')
  const cfg = loadLuaConfig(configTree(dir, log, {maxretry: MAXRETRY, bantime: 3600}))

  // Stage marks per offender index.
  const written = new Map()
  const sourced = new Map()
  const failed = new Map()
  const submitted = new Map()
  const banned = new Map()
  const marker = /from 198\.18\.(\d+)\.(\d+) port (\d+)/
  const idx = (text) => {
    const m = marker.exec(text)
    return m === null || Number(m[3]) !== 40000 + MAXRETRY - 1 ? undefined : Number(m[1]) * 256 + Number(m[2])
  }
  let records = 0
  const sourceFactory = (c, ctx, selectors) => {
    const s = createSource(c, ctx, selectors)
    const start = s.start.bind(s)
    s.start = (sink) =>
      start((r) => {
        records++
        if (r.text.includes('Failed password')) {
          const i = idx(r.text)
          if (i !== undefined) sourced.set(i, performance.now())
        }
        sink(r)
      })
    return s
  }
  const mark = () => ({
    name: 'mark',
    unique: (op, req) => `${req.ticket.jail}\0${req.ticket.id}`,
    async run(op, req) {
      if (op !== 'ban') return
      const t = performance.now()
      const m = /^198\.18\.(\d+)\.(\d+)$/.exec(req.ticket.id)
      if (m !== null) banned.set(Number(m[1]) * 256 + Number(m[2]), t)
    },
  })
  const engine = await Engine.start(cfg, {log: nullLogger, dataDir: path.join(dir, 'data'), actionFactories: {log: mark}, sourceFactory})
  // The filter worker's failures come back through onFailure: note when the offender's last one did.
  const onFailure = engine.onFailure.bind(engine)
  engine.onFailure = (f) => {
    if (f.id.startsWith('198.18.') && f.lines !== undefined) {
      const i = idx(f.lines[f.lines.length - 1] ?? '')
      if (i !== undefined) failed.set(i, performance.now())
    }
    onFailure(f)
  }
  // The jail's ticket enters the action queue (after the jail's never-ban check).
  const submit = engine.queue.submit.bind(engine.queue)
  engine.queue.submit = (t, refs) => {
    const m = /^198\.18\.(\d+)\.(\d+)$/.exec(t.id)
    if (m !== null) submitted.set(Number(m[1]) * 256 + Number(m[2]), performance.now())
    return submit(t, refs)
  }

  const writer = spawn(process.execPath, ['-e', WRITER, log, String(rate)], {stdio: ['pipe', 'pipe', 'inherit']})
  let writerOut = ''
  writer.stdout.on('data', (d) => (writerOut += d))
  const writerDone = new Promise((resolve) => writer.on('exit', resolve))
  const t0 = performance.now()
  let seconds = 0
  try {
    // Everyone's first maxretry - 1 failures, then a moment of load alone.
    let pre = ''
    for (let i = 0; i < offenders; i++) for (let k = 0; k < MAXRETRY - 1; k++) pre += failLine(i, k)
    fs.appendFileSync(log, pre)
    await sleep(1000)
    for (let i = 0; i < offenders; i++) {
      const line = failLine(i, MAXRETRY - 1)
      written.set(i, performance.now())
      fs.appendFileSync(log, line)
      await waitFor(`the ban of offender ${i}`, () => banned.has(i), 30_000)
      // 10–40 ms apart, so the failure lands at a random point of the writer's cycle
      await sleep(10 + Math.random() * 30)
    }
    seconds = (performance.now() - t0) / 1000
  } finally {
    writer.stdin.end()
    await writerDone
    await engine.stop()
    fs.rmSync(dir, {recursive: true, force: true})
  }
  const w = JSON.parse(writerOut || '{"lines":0,"seconds":0}')
  const d = (a, b) => [...a.keys()].map((i) => b.get(i) - a.get(i))
  return {
    offenders,
    rate: Math.round(w.lines / w.seconds),
    benignLines: w.lines,
    records,
    seconds: round(seconds),
    writeToBan: summary(d(written, banned)),
    stages: {
      writeToSource: summary(d(written, sourced)),
      sourceToFailure: summary(d(sourced, failed)),
      failureToQueue: summary(d(failed, submitted)),
      queueToBan: summary(d(submitted, banned)),
    },
  }
}

/**
 * Part 2 (run in a child with --expose-gc): RSS with `tracked` distinct offenders counted by the
 * Engine's jail. The log is appended in chunks of `chunk` lines, each once the previous one is
 * through the filters: the filter host drops records beyond its queue bound (100,000) rather
 * than hold back a source, so a log read in one go (`--from-start` over a million lines) would
 * lose most of them; `dropped` reports the host's count (0 here).
 */
export async function memoryChild(tracked, chunk = 20_000) {
  const {loadLuaConfig} = await mod('config/lua.js')
  const {Engine} = await mod('daemon/engine.js')
  const {nullLogger} = await mod('log/logger.js')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spylog-bench-e2e-mem-'))
  const log = path.join(dir, 'auth.log')
  fs.writeFileSync(log, '')
  const cfg = loadLuaConfig(configTree(dir, log, {maxretry: 1000, bantime: 3600}))
  globalThis.gc?.()
  const rssBefore = process.memoryUsage().rss
  const engine = await Engine.start(cfg, {log: nullLogger, dataDir: path.join(dir, 'data'), actionFactories: {log: () => ({name: 'mark', unique: () => '', run: async () => {}})}})
  const t0 = performance.now()
  try {
    const records = () => engine.status().sources[0].records
    for (let from = 0; from < tracked; from += chunk) {
      const st = stamp(new Date())
      let buf = ''
      const to = Math.min(tracked, from + chunk)
      for (let i = from; i < to; i++) {
        // distinct public addresses from 11.0.0.0 upwards, one failure each
        const n = 0x0b000000 + i
        buf += `${st} web1 sshd[${1000 + (i % 30000)}]: Failed password for invalid user u${i % 977} from ${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255} port ${1024 + (i % 60000)} ssh2\n`
      }
      fs.appendFileSync(log, buf)
      await waitFor(`the file source to read ${to} lines`, () => records() >= to, 120_000)
      await engine.idle()
    }
    const seconds = (performance.now() - t0) / 1000
    globalThis.gc?.()
    await sleep(200)
    globalThis.gc?.()
    const mem = process.memoryUsage()
    const j = engine.status().jails[0]
    return {
      tracked, seconds: round(seconds), failuresPerSecond: Math.round(tracked / seconds), totalFailed: j.totalFailed, currentlyFailed: j.currentlyFailed, totalBanned: j.totalBanned,
      dropped: engine.filters?.stats.dropped, rssMiB: round(mem.rss / 2 ** 20), rssBeforeMiB: round(rssBefore / 2 ** 20), heapUsedMiB: round(mem.heapUsed / 2 ** 20),
      arrayBuffersMiB: round(mem.arrayBuffers / 2 ** 20),
      maxRssMiB: round(process.resourceUsage().maxRSS / 1024),
    }
  } finally {
    await engine.stop()
    fs.rmSync(dir, {recursive: true, force: true})
  }
}

/** Part 2, from the parent: the child's JSON. */
export function memory({tracked = Number(process.env.BENCH_E2E_TRACKED ?? 1_000_000)} = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--memory-child', String(tracked)], {stdio: ['ignore', 'pipe', 'inherit']})
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.on('error', reject)
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`bench: memory child exited with ${code}`))))
  })
}

/** Both parts: {latency, memory}. */
export async function run() {
  const l = await latency()
  const m = process.env.BENCH_E2E_SKIP_MEMORY === '1' ? undefined : await memory()
  return {latency: l, memory: m}
}


if (process.argv[2] === '--memory-child') {
  process.stdout.write(JSON.stringify(await memoryChild(Number(process.argv[3]))))
} else if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!fs.existsSync(path.join(ROOT, 'dist/src/engine/daemon/engine.js'))) {
    console.error('bench: dist/ is missing: run `npm run build` first')
    process.exit(1)
  }
  const {latency: l, memory: m} = await run()
  const ms = (s) => [`${s.median} ms`, `${s.p99} ms`, `${s.max} ms`]
  console.log(`e2e: ${l.offenders} offenders banned at maxretry ${MAXRETRY} while a writer appended ${l.rate.toLocaleString('en')} benign lines/s (${l.benignLines.toLocaleString('en')} lines, ${l.records.toLocaleString('en')} records read, ${l.seconds} s)`)
  console.log(await table(['from', 'to', 'median', 'p99', 'max'], [
    ['append of the maxretry-th failure', 'start of the ban action', ...ms(l.writeToBan)],
    ['  append', 'record out of the file source', ...ms(l.stages.writeToSource)],
    ['  record', 'failure back from the filter worker', ...ms(l.stages.sourceToFailure)],
    ['  failure', 'ticket into the action queue (jail, never-ban)', ...ms(l.stages.failureToQueue)],
    ['  ticket', 'ban action started (queue: ban, history, jobs stored first)', ...ms(l.stages.queueToBan)],
  ]))
  let bad = l.writeToBan.p99 >= 50
  if (bad) console.error('e2e: p99 over the 50 ms target')
  if (m !== undefined) {
    console.log(`e2e memory: ${m.tracked.toLocaleString('en')} distinct offenders through file source → filter worker → jail in ${m.seconds} s (${m.failuresPerSecond.toLocaleString('en')} failures/s): ` +
      `RSS ${m.rssMiB} MiB after GC (${m.rssBeforeMiB} MiB before the engine started; peak ${m.maxRssMiB} MiB; heap ${m.heapUsedMiB} MiB, array buffers ${m.arrayBuffersMiB} MiB); ${m.currentlyFailed.toLocaleString('en')} counters, ${m.totalBanned} bans, ${m.dropped ?? '?'} records dropped by the filter host`)
    if (m.maxRssMiB >= 300) {
      console.error('e2e memory: peak RSS over the 300 MB budget')
      bad = true
    }
  }
  if (bad) process.exitCode = 1
}
