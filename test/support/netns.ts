/**
 * Network namespaces for firewall tests: a "victim" namespace (where the firewall runs and a TCP
 * server listens) joined by a veth pair to an "attacker" namespace. Needs root and iproute2.
 * Everything created here is removed by `destroy()` (call it in `after()`), even half-built.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {createInterface} from 'node:readline'

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux only'
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const r = spawnSync('ip', ['netns', 'list'], {encoding: 'utf8'})
  if (r.error !== undefined || r.status !== 0) return `ip netns is unavailable: ${r.error?.message ?? r.stderr.trim()}`
  // listing works without privileges; creating one is the real test (containers may forbid it)
  const probe = `spylog-probe-${randomBytes(3).toString('hex')}`
  const add = spawnSync('ip', ['netns', 'add', probe], {encoding: 'utf8'})
  if (add.status !== 0) return `cannot create a network namespace: ${add.stderr.trim()}`
  spawnSync('ip', ['netns', 'del', probe])
  return undefined
}

/** Whether a program runs at all (`nft --version`). */
export function hasProgram(argv: string[]): boolean {
  const r = spawnSync(argv[0]!, argv.slice(1), {encoding: 'utf8'})
  return r.error === undefined && r.status === 0
}

function run(argv: string[], input?: string): {status: number | null; stdout: string; stderr: string} {
  const r = spawnSync(argv[0]!, argv.slice(1), {encoding: 'utf8', input})
  if (r.error !== undefined) throw r.error
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

function must(argv: string[]): string {
  const r = run(argv)
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`)
  return r.stdout
}

/** A victim/attacker pair of namespaces. */
export class NetnsPair {
  readonly id = randomBytes(3).toString('hex')
  readonly victim = `spylog-t-${this.id}-v`
  readonly attacker = `spylog-t-${this.id}-a`
  private readonly subnet = `10.${100 + (parseInt(this.id.slice(0, 2), 16) % 100)}.${parseInt(this.id.slice(2, 4), 16)}`
  readonly victimIp = `${this.subnet}.1`
  readonly attackerIp = `${this.subnet}.2`
  // canonical text (no leading zeros), as the firewall tools print it
  private readonly subnet6 = `fd00:5:${parseInt(this.id.slice(0, 4), 16).toString(16)}`
  readonly victimIp6 = `${this.subnet6}::1`
  readonly attackerIp6 = `${this.subnet6}::2`
  private created: string[] = []
  private servers: ChildProcess[] = []

  /** Creates the namespaces and the link (IPv4 /24 and IPv6 /64 on both ends). */
  create(): this {
    for (const ns of [this.victim, this.attacker]) {
      must(['ip', 'netns', 'add', ns])
      this.created.push(ns)
      must(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
    }
    const vv = `sv${this.id}`
    const va = `sa${this.id}`
    must(['ip', 'link', 'add', vv, 'netns', this.victim, 'type', 'veth', 'peer', 'name', va, 'netns', this.attacker])
    must(['ip', '-n', this.victim, 'addr', 'add', `${this.victimIp}/24`, 'dev', vv])
    must(['ip', '-n', this.attacker, 'addr', 'add', `${this.attackerIp}/24`, 'dev', va])
    must(['ip', '-n', this.victim, 'addr', 'add', `${this.victimIp6}/64`, 'dev', vv, 'nodad'])
    must(['ip', '-n', this.attacker, 'addr', 'add', `${this.attackerIp6}/64`, 'dev', va, 'nodad'])
    must(['ip', '-n', this.victim, 'link', 'set', vv, 'up'])
    must(['ip', '-n', this.attacker, 'link', 'set', va, 'up'])
    return this
  }

  /** Runs a command in a namespace and returns its output (throws on failure). */
  exec(ns: string, argv: string[], input?: string): string {
    const r = run(['ip', 'netns', 'exec', ns, ...argv], input)
    if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${ns}: exit ${r.status}: ${r.stderr.trim()}`)
    return r.stdout
  }

  /** Runs a command in a namespace; returns status and output whatever happens. */
  tryExec(ns: string, argv: string[]): {status: number | null; stdout: string; stderr: string} {
    return run(['ip', 'netns', 'exec', ns, ...argv])
  }

  /** Starts a TCP server in the victim namespace (all addresses, v4 and v6) and resolves with its port. */
  async startServer(): Promise<number> {
    const code = `const s=require('net').createServer(c=>{c.end('hi\\n')});s.listen({port:0,host:'::',ipv6Only:false},()=>console.log(s.address().port))`
    const child = spawn('ip', ['netns', 'exec', this.victim, process.execPath, '-e', code], {stdio: ['ignore', 'pipe', 'inherit']})
    this.servers.push(child)
    const rl = createInterface({input: child.stdout!})
    return new Promise((resolve, reject) => {
      child.once('exit', (c) => reject(new Error(`test server exited with ${c}`)))
      rl.once('line', (l) => resolve(Number(l)))
    })
  }

  /**
   * Tries one TCP connection from the attacker namespace. Resolves 'ok' when the server's
   * greeting arrived, else the error code (ECONNREFUSED, TIMEOUT, …). `waitMs` bounds the attempt.
   */
  connect(host: string, port: number, waitMs: number): Promise<string> {
    const code =
      `const c=require('net').connect({host:${JSON.stringify(host)},port:${port}});` +
      `const t=setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},${waitMs});` +
      `c.on('data',()=>{console.log('ok');process.exit(0)});c.on('error',e=>{console.log(e.code||e.message);process.exit(0)})`
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.attacker, process.execPath, '-e', code], {stdio: ['ignore', 'pipe', 'pipe']})
      let out = ''
      let err = ''
      child.stdout.on('data', (b: Buffer) => (out += b.toString()))
      child.stderr.on('data', (b: Buffer) => (err += b.toString()))
      child.on('error', reject)
      child.on('close', (c) => (c === 0 ? resolve(out.trim()) : reject(new Error(`connect helper exited with ${c}: ${err}`))))
    })
  }

  /** Polls `connect` until it gives `want` (or the deadline passes); returns the last answer. */
  async connectUntil(host: string, port: number, want: (r: string) => boolean, deadlineMs = 60_000, waitMs = 3000): Promise<string> {
    const end = Date.now() + deadlineMs
    let last = ''
    for (;;) {
      last = await this.connect(host, port, waitMs)
      if (want(last) || Date.now() > end) return last
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** Stops the servers and deletes the namespaces (their links, rules and sets go with them). */
  destroy(): void {
    for (const s of this.servers.splice(0)) s.kill('SIGKILL')
    for (const ns of this.created.splice(0)) {
      // processes still inside keep a namespace alive only as long as they live; the name goes now
      spawnSync('ip', ['netns', 'pids', ns], {encoding: 'utf8'}).stdout?.split('\n').filter((p) => /^\d+$/.test(p)).forEach((p) => {
        try {
          process.kill(Number(p), 'SIGKILL')
        } catch {
          // already gone
        }
      })
      spawnSync('ip', ['netns', 'del', ns])
    }
  }
}
