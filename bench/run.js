#!/usr/bin/env node
// Regex-throughput benchmark (`npm run bench`, after the build):
//
// 1. generates (once, seeded) a 1,000,000-line sshd auth.log in bench/out/ (gen-sshd-log.js);
// 2. runs it through fail2ban's sshd filter (../shared/fail2ban-corpus/filter.d/sshd.conf) with
//    spylog's engine, in a child process: lines/s and peak RSS;
// 3. when fail2ban-regex is installed, runs the same file and filter through it
//    (`fail2ban-regex -r -o '<ip>\t<msg>'`), prints the speed ratio, and checks that both found
//    exactly the same failures: the same (address, line) rows, each failure printing one row
//    per line it is made of;
// 4. when sshguard's parser is installed (/usr/libexec/sshguard/sshg-parser), feeds it the same
//    file and compares throughput (its rules differ from fail2ban's, so only the counts are shown).
//
// Each tool runs BENCH_RUNS times (default 3), in rounds of one run of each: the table shows each tool's
// fastest run (the one the machine disturbed least; a shared VM varies by ±15 % and more from run
// to run) and the verdict both the fastest and the median ratio; every time is printed.
//
// Options (environment): BENCH_LINES (default 1000000), BENCH_SEED (42), BENCH_RUNS (3),
// BENCH_SKIP_F2B=1, BENCH_SKIP_SSHGUARD=1, F2B_CORPUS (default ../shared/fail2ban-corpus).
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {table} from './lib.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')
const OUT = path.join(HERE, 'out')
const ROW_FORMAT = '<ip>\t<msg>'

// ------------------------------------------------------------------------------------------------
// Child mode: spylog's engine on one file, rows to a file, statistics as JSON on stdout.

async function child(log, filter, rowsFile) {
  const {RegexSession} = await import(pathToFileURL(path.join(ROOT, 'dist/src/engine/regex/report.js')).href)
  const {outFormatter} = await import(pathToFileURL(path.join(ROOT, 'dist/src/engine/regex/out.js')).href)
  const fmt = outFormatter(ROW_FORMAT)
  const fd = fs.openSync(rowsFile, 'w')
  let buf = ''
  // -o semantics, as fail2ban-regex -o: the first failregex with a result wins (no check-all).
  const session = await RegexSession.open({log, regex: filter, checkAll: false})
  const report = await session.run({}, {
    onFailure(m, line, lineNo, file) {
      buf += fmt(m, line, lineNo, file) + '\n'
      if (buf.length > 1 << 16) {
        fs.writeSync(fd, buf)
        buf = ''
      }
    },
  })
  fs.writeSync(fd, buf)
  fs.closeSync(fd)
  const {lines, failures, elapsed, failregex} = report
  process.stdout.write(JSON.stringify({lines, failures, elapsed, maxRssKiB: process.resourceUsage().maxRSS, hits: failregex.map((r) => r.hits)}))
}

// ------------------------------------------------------------------------------------------------
// Helpers

/** Runs a command; stdout to `stdoutFile` (or collected), stdin from `stdinFile`. Polls peak RSS (Linux). */
function run(cmd, args, {stdoutFile, stdinFile} = {}) {
  return new Promise((resolve, reject) => {
    const out = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe'
    const inp = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore'
    const t0 = performance.now()
    const p = spawn(cmd, args, {stdio: [inp, out, 'pipe'], cwd: ROOT})
    let stdout = ''
    let stderr = ''
    p.stdout?.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    let hwm = 0
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'))
        if (m) hwm = Math.max(hwm, Number(m[1]))
      } catch {
        // exited, or not Linux
      }
    }, 25)
    p.on('error', (e) => {
      clearInterval(poll)
      reject(e)
    })
    p.on('close', (code) => {
      clearInterval(poll)
      if (typeof out === 'number') fs.closeSync(out)
      if (typeof inp === 'number') fs.closeSync(inp)
      resolve({code, stdout, stderr, seconds: (performance.now() - t0) / 1000, rssKiB: hwm || undefined})
    })
  })
}

function which(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      // next
    }
  }
  return undefined
}

function readRows(file, {dropPending = false} = {}) {
  const text = fs.readFileSync(file, 'utf8')
  const rows = text.split('\n')
  if (rows[rows.length - 1] === '') rows.pop()
  return dropPending ? rows.filter((r) => !r.startsWith('None\t')) : rows
}

/** Multiset comparison of two row lists: {same, onlyA, onlyB} with a few examples. */
function compareRows(a, b) {
  a.sort()
  b.sort()
  const onlyA = []
  const onlyB = []
  let i = 0
  let j = 0
  let nA = 0
  let nB = 0
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i] < b[j])) {
      nA++
      if (onlyA.length < 5) onlyA.push(a[i])
      i++
    } else if (i >= a.length || b[j] < a[i]) {
      nB++
      if (onlyB.length < 5) onlyB.push(b[j])
      j++
    } else {
      i++
      j++
    }
  }
  return {same: nA === 0 && nB === 0, nA, nB, onlyA, onlyB}
}

/** Summary of one tool's runs: sorted by `seconds` (fastest first), and the median seconds. */
function summary(results) {
  const sorted = results.slice().sort((a, b) => a.seconds - b.seconds)
  return {best: sorted[0], median: sorted[Math.floor((sorted.length - 1) / 2)].seconds, all: sorted.map((r) => r.seconds)}
}

/**
 * `n` rounds of one run of each tool, in order: each tool's summary by name, or {failed} with its
 * failing run (a tool that fails is not run again; when the first one, spylog, fails, nothing
 * else runs: there is nothing to compare with).
 */
async function rounds(n, tools) {
  const results = new Map(tools.map((t) => [t.name, []]))
  const failed = new Map()
  for (let i = 0; i < n && !failed.has(tools[0].name); i++) {
    for (const t of tools) {
      if (failed.has(t.name)) continue
      const r = await t.once()
      if (r.failed) failed.set(t.name, r)
      else results.get(t.name).push(r)
      if (failed.has(tools[0].name)) break
    }
  }
  const out = new Map()
  for (const t of tools) {
    const rs = results.get(t.name)
    out.set(t.name, failed.has(t.name) ? {failed: failed.get(t.name)} : rs.length > 0 ? summary(rs) : {notRun: true})
  }
  return out
}

const fmtTimes = (r) => r.all.map((t) => t.toFixed(2)).join(', ')

const fmtInt = (n) => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'))
const fmtMiB = (kib) => (kib === undefined ? '-' : `${(kib / 1024).toFixed(0)} MiB`)


// ------------------------------------------------------------------------------------------------

async function main() {
  const lines = Number(process.env.BENCH_LINES ?? 1_000_000)
  const seed = Number(process.env.BENCH_SEED ?? 42)
  const corpus = path.resolve(ROOT, process.env.F2B_CORPUS ?? '../shared/fail2ban-corpus')
  const filter = path.join(corpus, 'filter.d', 'sshd.conf')
  if (!fs.existsSync(path.join(ROOT, 'dist/src/engine/regex/report.js'))) {
    console.error('bench: dist/ is missing: run `npm run build` first (npm run bench does)')
    process.exit(1)
  }

  const {ensureLog} = await import('./gen-sshd-log.js')
  const log = path.join(OUT, 'sshd-auth.log')
  const t0 = performance.now()
  const g = ensureLog({lines, seed, out: log})
  console.log(`log: ${path.relative(ROOT, log)}: ${fmtInt(g.lines)} lines, ${(g.bytes / 1048576).toFixed(1)} MiB (${g.reused ? 'reused' : `generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`}, seed ${seed})`)

  if (!fs.existsSync(filter)) {
    console.log(`bench: skipped: no fail2ban corpus at ${corpus} (its filter.d/sshd.conf is the filter under test); set F2B_CORPUS`)
    return
  }
  console.log(`filter: ${filter}`)
  const rows = []

  const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))

  // The tools run in rounds, one run of each per round, so that all meet the machine's same
  // moods: run back to back, spylog's few seconds could all fall in a slow minute (or a fast one)
  // that fail2ban-regex's minutes average out.
  const spRows = path.join(OUT, 'spylog.rows')
  const f2Rows = path.join(OUT, 'fail2ban-regex.rows')
  const gRows = path.join(OUT, 'sshguard.out')
  const f2b = process.env.BENCH_SKIP_F2B === '1' ? undefined : which('fail2ban-regex')
  const sshg = '/usr/libexec/sshguard/sshg-parser'
  const withSshg = fs.existsSync(sshg) && process.env.BENCH_SKIP_SSHGUARD !== '1'
  const tools = [
    {
      name: 'spylog',
      once: async () => {
        const sp = await run(process.execPath, [fileURLToPath(import.meta.url), '--child', log, filter, spRows])
        if (sp.code !== 0) return {failed: true, ...sp}
        const stats = JSON.parse(sp.stdout)
        return {seconds: stats.elapsed, wall: sp.seconds, stats}
      },
    },
  ]
  if (f2b) {
    tools.push({
      name: 'fail2ban-regex',
      once: async () => {
        const f = await run(f2b, ['-r', '-o', ROW_FORMAT, log, filter], {stdoutFile: f2Rows})
        return f.code !== 0 ? {failed: true, ...f} : f
      },
    })
  }
  if (withSshg) {
    tools.push({
      name: 'sshguard parser',
      once: async () => {
        const g = await run(sshg, [], {stdinFile: log, stdoutFile: gRows})
        return g.code !== 0 ? {failed: true, ...g} : g
      },
    })
  }
  console.log(`running ${runs} round${runs > 1 ? 's' : ''} of ${tools.map((t) => t.name).join(', ')}, one run of each per round${f2b ? ' (fail2ban-regex: about half a minute per million lines)' : ''} …`)
  const results = await rounds(runs, tools)

  // spylog
  const spRuns = results.get('spylog')
  if (spRuns.failed) {
    console.error(`spylog failed (exit ${spRuns.failed.code}):\n${spRuns.failed.stderr}`)
    process.exit(1)
  }
  const s = spRuns.best.stats
  const spRate = s.lines.total / s.elapsed
  console.log(
    `spylog: ${fmtInt(s.lines.total)} lines in ${s.elapsed.toFixed(2)} s (engine, fastest of ${fmtTimes(spRuns)}), ${spRuns.best.wall.toFixed(2)} s wall: ${fmtInt(spRate)} lines/s, ` +
      `peak RSS ${fmtMiB(s.maxRssKiB)}; ${fmtInt(s.lines.matched)} matched, ${fmtInt(s.lines.ignored)} ignored, ${fmtInt(s.lines.missed)} missed, ${fmtInt(s.failures)} failures`,
  )
  rows.push(['spylog (engine)', fmtInt(s.lines.total), s.elapsed.toFixed(2), fmtInt(spRate), fmtMiB(s.maxRssKiB), `${fmtInt(s.failures)} failures`, '1.00'])

  // fail2ban-regex
  let verdict = process.env.BENCH_SKIP_F2B === '1' ? 'fail2ban-regex skipped (BENCH_SKIP_F2B=1)' : 'fail2ban-regex not installed (Debian package fail2ban): comparison skipped'
  if (f2b) {
    const fRuns = results.get('fail2ban-regex')
    if (fRuns.failed) {
      console.error(`fail2ban-regex failed (exit ${fRuns.failed.code}):\n${fRuns.failed.stderr.slice(0, 2000)}`)
      verdict = 'fail2ban-regex failed'
    } else {
      const f = fRuns.best
      const fRate = lines / f.seconds
      const a = readRows(spRows)
      const b = readRows(f2Rows, {dropPending: true})
      const cmp = compareRows(a, b)
      console.log(`fail2ban-regex: ${fmtInt(lines)} lines in ${f.seconds.toFixed(2)} s wall (fastest of ${fmtTimes(fRuns)}): ${fmtInt(fRate)} lines/s, peak RSS ${fmtMiB(f.rssKiB)}`)
      rows.push(['fail2ban-regex', fmtInt(lines), f.seconds.toFixed(2), fmtInt(fRate), fmtMiB(f.rssKiB), `${fmtInt(b.length)} rows`, (fRate / spRate).toFixed(2)])
      const ratios = `spylog is ${(spRate / fRate).toFixed(1)}× faster (fastest runs; medians: ${(fRuns.median / spRuns.median).toFixed(1)}×)`
      verdict = cmp.same
        ? `identical: both found the same ${fmtInt(a.length)} (address, line) failure rows; ${ratios}`
        : `DIFFERENT: ${fmtInt(cmp.nA)} rows only in spylog, ${fmtInt(cmp.nB)} only in fail2ban-regex\n` +
          `  only spylog:         ${cmp.onlyA.join('\n                       ')}\n` +
          `  only fail2ban-regex: ${cmp.onlyB.join('\n                       ')}`
    }
  }

  // sshguard
  let sshgNote = process.env.BENCH_SKIP_SSHGUARD === '1' ? 'sshguard skipped (BENCH_SKIP_SSHGUARD=1)' : 'sshguard not installed (Debian package sshguard): skipped'
  if (withSshg) {
    const gRuns = results.get('sshguard parser')
    if (gRuns.failed) sshgNote = `sshg-parser failed (exit ${gRuns.failed.code}): ${gRuns.failed.stderr.slice(0, 200)}`
    else {
      const r = gRuns.best
      const attacks = readRows(gRows)
      const addrs = new Set(attacks.map((l) => l.split(' ')[1]))
      const spAddrs = new Set(readRows(spRows).map((l) => l.slice(0, l.indexOf('\t'))))
      const gRate = lines / r.seconds
      rows.push(['sshguard sshg-parser', fmtInt(lines), r.seconds.toFixed(2), fmtInt(gRate), fmtMiB(r.rssKiB), `${fmtInt(attacks.length)} attacks`, (gRate / spRate).toFixed(2)])
      let common = 0
      for (const a of addrs) if (spAddrs.has(a)) common++
      sshgNote = `sshguard (fastest of ${fmtTimes(gRuns)} s): ${fmtInt(attacks.length)} attacks from ${fmtInt(addrs.size)} addresses (spylog: ${fmtInt(spAddrs.size)} addresses, ${fmtInt(common)} in common; its rules differ from fail2ban's sshd filter)`
    }
  }

  console.log('')
  console.log(await table(['tool', 'lines', 'seconds', 'lines/s', 'peak RSS', 'found', 'speed vs spylog'], rows))
  console.log(`fail2ban-regex comparison: ${verdict}`)
  console.log(sshgNote)
  console.log(`(seconds: each tool's fastest of ${runs} runs; spylog: engine time inside its process; the others: wall-clock time of the whole program)`)
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4], process.argv[5])
} else {
  await main()
}
