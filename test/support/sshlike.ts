/**
 * An "sshd-like" pair for end-to-end firewall tests in network namespaces (see netns.ts):
 *
 * - `startSshLikeServer`: a TCP server (node) in the victim namespace. It greets every connection
 *   with one line, reads `<user> <password>` and answers `welcome` for the right password; for a
 *   wrong one it appends the line OpenSSH writes to the auth log
 *   (`<Mon dd hh:mm:ss> <host> sshd[<pid>]: Failed password for <user> from <peer> port <p> ssh2`)
 *   and answers `denied`. A connection that sends nothing is not logged (like a port scan).
 * - `AttackerClient`: one long-lived node process in the attacker namespace that makes
 *   connections on request (from a chosen source address) without the cost of a new process per
 *   attempt, and can probe a port by itself every few milliseconds, reporting each outcome with
 *   its wall-clock time, so a short ban cannot slip between two attempts on a loaded machine.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {createInterface} from 'node:readline'

const SERVER = String.raw`
const net = require('net'), fs = require('fs'), os = require('os')
const logPath = process.argv[1]
const MON = ['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec']
const p2 = (n) => String(n).padStart(2, '0')
const stamp = (d) => MON[d.getMonth()] + ' ' + String(d.getDate()).padStart(2, ' ') + ' ' + p2(d.getHours()) + ':' + p2(d.getMinutes()) + ':' + p2(d.getSeconds())
const s = net.createServer((c) => {
  const peer = String(c.remoteAddress).replace(/^::ffff:/, ''), peerPort = c.remotePort
  let buf = ''
  c.setEncoding('utf8')
  c.on('error', () => {})
  c.write('SSH-2.0-spylog_test\r\n')
  c.on('data', (d) => {
    buf += d
    const i = buf.indexOf('\n')
    if (i < 0) return
    const [user, pass] = buf.slice(0, i).trim().split(' ')
    if (pass === 'letmein') return void c.end('welcome\n')
    fs.appendFileSync(logPath, stamp(new Date()) + ' victim sshd[' + process.pid + ']: Failed password for ' + user + ' from ' + peer + ' port ' + peerPort + ' ssh2\n')
    c.end('denied\n')
  })
})
s.listen({port: 0, host: '0.0.0.0'}, () => console.log(s.address().port))
`

const CLIENT = String.raw`
const net = require('net')
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
function attempt(a) {
  return new Promise((resolve) => {
    const t0 = Date.now()
    let got = '', sent = false, done = false
    const c = net.connect({host: a.host, port: a.port, localAddress: a.from})
    const fin = (r) => { if (done) return; done = true; clearTimeout(tm); c.destroy(); resolve({r, t0, t1: Date.now()}) }
    const tm = setTimeout(() => fin('TIMEOUT'), a.timeoutMs)
    c.setEncoding('utf8')
    c.on('data', (d) => {
      got += d
      if (sent || !got.includes('\n')) return
      if (a.line === undefined) return fin('ok')
      sent = true
      got = ''
      c.write(a.line + '\n')
    })
    c.on('end', () => fin(sent ? got.trim() : 'CLOSED'))
    c.on('close', () => fin(sent ? got.trim() : 'CLOSED'))
    c.on('error', (e) => fin(e.code || e.message))
  })
}
const probes = new Map()
require('readline').createInterface({input: process.stdin}).on('line', async (l) => {
  const m = JSON.parse(l)
  if (m.op === 'attempt') return out({id: m.id, ...(await attempt(m))})
  if (m.op === 'probe') {
    probes.set(m.id, true)
    out({id: m.id, started: true})
    while (probes.get(m.id)) {
      out({probe: m.id, ...(await attempt(m))})
      await new Promise((r) => setTimeout(r, m.everyMs))
    }
    return
  }
  if (m.op === 'stop') { probes.delete(m.probe); return out({id: m.id}) }
})
process.stdin.on('end', () => process.exit(0))
`

/** Starts the sshd-like server in namespace `ns`, logging failures to `logPath`; resolves with its port and process. */
export async function startSshLikeServer(ns: string, logPath: string): Promise<{port: number; child: ChildProcess}> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, logPath], {stdio: ['ignore', 'pipe', 'inherit']})
  const rl = createInterface({input: child.stdout!})
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (c) => reject(new Error(`sshd-like server exited with ${c}`)))
    rl.once('line', (l) => resolve(Number(l)))
  })
  return {port, child}
}

/** One connection outcome: `ok` (greeting seen), `welcome`/`denied` (login answer), or an error code (ECONNREFUSED, TIMEOUT…); wall-clock ms. */
export interface Attempt {
  r: string
  t0: number
  t1: number
}

/** A long-lived connection maker in the attacker namespace. */
export class AttackerClient {
  private readonly child: ChildProcess
  private nextId = 1
  private readonly waiting = new Map<number, (m: Record<string, unknown>) => void>()
  private readonly probeResults = new Map<number, Attempt[]>()
  private exited: Error | undefined

  constructor(ns: string) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT], {stdio: ['pipe', 'pipe', 'inherit']})
    this.child.on('error', (e) => this.fail(e))
    this.child.on('exit', (c) => this.fail(new Error(`attacker client exited with ${c}`)))
    createInterface({input: this.child.stdout!}).on('line', (l) => {
      const m = JSON.parse(l) as Record<string, unknown> & {id?: number; probe?: number}
      if (m.probe !== undefined) this.probeResults.get(m.probe)?.push(m as unknown as Attempt)
      else if (m.id !== undefined) {
        const w = this.waiting.get(m.id)
        this.waiting.delete(m.id)
        w?.(m)
      }
    })
  }

  private fail(e: Error): void {
    this.exited ??= e
    for (const w of this.waiting.values()) w({error: e.message})
    this.waiting.clear()
  }

  private call(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.exited !== undefined) return Promise.reject(this.exited)
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (m) => (m.error !== undefined ? reject(new Error(String(m.error))) : resolve(m)))
      this.child.stdin!.write(JSON.stringify({...msg, id}) + '\n')
    })
  }

  /** One login attempt `user password` from source address `from`; resolves with `welcome`, `denied` or an error code. */
  async login(from: string, host: string, port: number, user: string, password: string, timeoutMs = 10_000): Promise<string> {
    return ((await this.call({op: 'attempt', from, host, port, line: `${user} ${password}`, timeoutMs})) as unknown as Attempt).r
  }

  /** One plain connection (waits for the greeting): `ok` or an error code. */
  async connect(from: string, host: string, port: number, timeoutMs = 10_000): Promise<string> {
    return ((await this.call({op: 'attempt', from, host, port, timeoutMs})) as unknown as Attempt).r
  }

  /**
   * Starts connecting from `from` every `everyMs` (each attempt bounded by `timeoutMs`); returns
   * the live list of outcomes and a function that stops the probe.
   */
  async probe(from: string, host: string, port: number, everyMs: number, timeoutMs: number): Promise<{results: Attempt[]; stop: () => Promise<void>}> {
    const id = this.nextId
    const results: Attempt[] = []
    this.probeResults.set(id, results)
    await this.call({op: 'probe', from, host, port, everyMs, timeoutMs})
    return {
      results,
      stop: async () => {
        await this.call({op: 'stop', probe: id})
      },
    }
  }

  /** Ends the process. */
  close(): void {
    this.child.stdin?.end()
    if (this.child.exitCode === null) this.child.kill('SIGKILL')
  }
}
