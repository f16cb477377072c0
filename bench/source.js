#!/usr/bin/env node
// File-source benchmark (after the build: `npm run build && node bench/source.js`):
//
// 1. throughput: a writer process appends BENCH_SOURCE_LINES lines (default 1,000,000, sshd-like,
//    ~100 bytes) as fast as it can in 64 KiB writes; the file source (fs.watch + 1 s polling,
//    64 KiB reads) delivers them as LogRecords: lines/s from the first record to the last;
//    then the same file read again from its start (`--from-start`), the reader's own ceiling;
// 2. latency: a writer appends one line every ~2 ms (BENCH_SOURCE_PROBES lines, default 2000),
//    each carrying its wall-clock write time with sub-millisecond precision; the delay from
//    write to LogRecord is measured (median and p99), with fs.watch and with stat polling only
//    (`poll = 1`: the delay is then bounded by the poll interval).
//
// `run()` returns the numbers (for bench/run.js); run directly, it prints a table.
import {spawn} from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')

const WRITER = `
const fs = require('fs')
const [file, mode, count] = [process.argv[1], process.argv[2], Number(process.argv[3])]
const fd = fs.openSync(file, 'a')
const now = () => performance.timeOrigin + performance.now()
if (mode === 'bulk') {
  const pad = 'sshd[12345]: Failed password for invalid user admin from 192.0.2.77 port 50000 ssh2'
  let buf = '', n = 0
  while (n < count) {
    buf += 'srv ' + (++n) + ' ' + pad + '\\n'
    if (buf.length >= 65536) { fs.writeSync(fd, buf); buf = '' }
  }
  if (buf !== '') fs.writeSync(fd, buf)
  fs.closeSync(fd)
} else {
  let n = 0
  const t = setInterval(() => {
    fs.writeSync(fd, 'probe ' + (++n) + ' ' + now().toFixed(3) + '\\n')
    if (n >= count) { clearInterval(t); fs.closeSync(fd) }
  }, 2)
}
`

function runWriter(file, mode, count) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', WRITER, file, mode, String(count)], {stdio: ['ignore', 'ignore', 'inherit']})
    c.on('error', reject)
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited with ${code}`))))
  })
}

function waitFor(cond, ms) {
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms
    const t = setInterval(() => {
      if (cond()) (clearInterval(t), resolve())
      else if (Date.now() > end) (clearInterval(t), reject(new Error('benchmark timed out')))
    }, 5)
  })
}

function cfg(p, over = {}) {
  return {name: 'bench', origin: {file: 'bench', line: 0}, spec: `file:${p}`, implicit: false, kind: 'file', path: p, eol: {text: '\\r*\\n', pattern: true}, skipExisting: true, maxLine: 4096, encoding: 'utf-8', ...over}
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

async function load() {
  const file = await import(pathToFileURL(path.join(ROOT, 'dist/src/engine/sources/file.js')).href)
  const source = await import(pathToFileURL(path.join(ROOT, 'dist/src/engine/sources/source.js')).href)
  const logger = await import(pathToFileURL(path.join(ROOT, 'dist/src/engine/log/logger.js')).href)
  return {createFileSource: file.createFileSource, MemoryPositionStore: source.MemoryPositionStore, nullLogger: logger.nullLogger}
}

async function throughput(mod, dir, lines) {
  const p = path.join(dir, 'bulk.log')
  fs.writeFileSync(p, '')
  const src = mod.createFileSource(cfg(p), {log: mod.nullLogger, positions: new mod.MemoryPositionStore()})
  let n = 0
  let first = 0
  let last = 0
  await src.start(() => {
    if (n++ === 0) first = performance.now()
    last = performance.now()
  })
  const t0 = performance.now()
  await runWriter(p, 'bulk', lines)
  const writeMs = performance.now() - t0
  await waitFor(() => n >= lines, 600_000)
  await src.stop()
  const seconds = (last - first) / 1000
  return {lines: n, seconds, linesPerSec: Math.round(n / Math.max(seconds, 1e-6)), writeSeconds: writeMs / 1000, mbPerSec: src.stats.bytes / 1048576 / Math.max(seconds, 1e-6)}
}

/** Reading an existing file from its start (`--from-start`): the source's own ceiling, no writer. */
async function readBack(mod, dir, lines) {
  const p = path.join(dir, 'bulk.log')
  const src = mod.createFileSource(cfg(p, {skipExisting: false}), {log: mod.nullLogger, positions: new mod.MemoryPositionStore()})
  let n = 0
  const t0 = performance.now()
  await src.start(() => void n++)
  await waitFor(() => n >= lines, 600_000)
  const seconds = (performance.now() - t0) / 1000
  await src.stop()
  return {lines: n, seconds, linesPerSec: Math.round(n / seconds), mbPerSec: src.stats.bytes / 1048576 / seconds}
}

async function latency(mod, dir, probes, poll) {
  const p = path.join(dir, poll ? 'probe-poll.log' : 'probe-watch.log')
  fs.writeFileSync(p, '')
  const src = mod.createFileSource(cfg(p, poll ? {poll: 1} : {}), {log: mod.nullLogger, positions: new mod.MemoryPositionStore()}, poll ? {watch: false} : {})
  const delays = []
  await src.start((r) => {
    const at = performance.timeOrigin + performance.now()
    const sent = Number(r.text.slice(r.text.lastIndexOf(' ') + 1))
    delays.push(at - sent)
  })
  await runWriter(p, 'probe', probes)
  await waitFor(() => delays.length >= probes, 120_000)
  await src.stop()
  delays.sort((a, b) => a - b)
  return {probes: delays.length, medianMs: quantile(delays, 0.5), p99Ms: quantile(delays, 0.99), maxMs: delays[delays.length - 1]}
}

/**
 * Runs the file-source benchmark; returns {throughput (while a writer appends), readBack (an
 * existing file from its start), latency: {watch, poll} (append → record, ms)}.
 */
export async function run({lines = Number(process.env.BENCH_SOURCE_LINES ?? 1_000_000), probes = Number(process.env.BENCH_SOURCE_PROBES ?? 2000)} = {}) {
  const mod = await load()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spylog-bench-source-'))
  try {
    const tp = await throughput(mod, dir, lines)
    const rb = await readBack(mod, dir, lines)
    const watch = await latency(mod, dir, probes, false)
    const poll = await latency(mod, dir, Math.min(probes, 500), true)
    return {throughput: tp, readBack: rb, latency: {watch, poll}}
  } finally {
    fs.rmSync(dir, {recursive: true, force: true})
  }
}

async function main() {
  const r = await run()
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-')
  const rows = [
    ['file source, writer appending', `${r.throughput.linesPerSec.toLocaleString('en')} lines/s`, `${f(r.throughput.mbPerSec)} MiB/s, ${r.throughput.lines.toLocaleString('en')} lines in ${f(r.throughput.seconds, 2)} s`],
    ['file source, existing file from start', `${r.readBack.linesPerSec.toLocaleString('en')} lines/s`, `${f(r.readBack.mbPerSec)} MiB/s`],
    ['append → record (fs.watch)', `median ${f(r.latency.watch.medianMs, 2)} ms`, `p99 ${f(r.latency.watch.p99Ms, 2)} ms, max ${f(r.latency.watch.maxMs, 2)} ms (${r.latency.watch.probes} lines)`],
    ['append → record (poll 1 s)', `median ${f(r.latency.poll.medianMs, 0)} ms`, `p99 ${f(r.latency.poll.p99Ms, 0)} ms, max ${f(r.latency.poll.maxMs, 0)} ms (${r.latency.poll.probes} lines)`],
  ]
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i].length)))
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(w[i])).join('  '))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e)
    process.exit(1)
  })
}
