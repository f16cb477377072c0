/**
 * Crash safety of the action queue: a child process runs Store + ActionQueue with a file-backed
 * action; the test streams thousands of short bans (50–500 ms, on 300 offenders), permanent bans and manual unbans
 * into it, SIGKILLs it at random moments (seeded), starts it again on the same data directory,
 * and at the end checks that the action's applied state is exactly the set of active bans
 * (every due unban ran, every active ban is applied) and that no acknowledged ban or unban was lost.
 */
import {expect} from 'chai'
import {spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'
import {prng, repoRoot, tempTree} from './support/files.js'

const here = fileURLToPath(import.meta.url)
const childScript = path.join(path.dirname(here), 'support', 'queue-child' + path.extname(here))

/** One running child and its replies. */
class Child {
  readonly proc: ChildProcess
  readonly acked = new Set<string>()
  readonly replies = new Map<string, string>()
  ready = false
  exited = false
  stderr = ''

  constructor(dir: string, ops: string, logFile: string, failRate: number) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', childScript, dir, ops, logFile, String(failRate)], {cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe']})
    this.proc.stdin!.on('error', () => undefined)
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.proc.on('exit', () => (this.exited = true))
    createInterface({input: this.proc.stdout!}).on('line', (l) => {
      if (l === 'ready') this.ready = true
      else if (l.startsWith('ok ')) this.acked.add(l.slice(3))
      else if (l.startsWith('active ')) {
        const [, tag, json] = l.split(' ')
        this.replies.set(tag!, json!)
      }
    })
  }

  send(line: string): void {
    if (!this.exited) this.proc.stdin!.write(line + '\n')
  }

  kill(): Promise<void> {
    if (this.exited) return Promise.resolve()
    return new Promise((r) => {
      this.proc.once('exit', () => r())
      this.proc.kill('SIGKILL')
    })
  }
}

async function until(cond: () => boolean, what: string, child?: Child, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (child?.exited) throw new Error(`queue child exited while waiting for ${what}: ${child.stderr}`)
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${child !== undefined ? `; child stderr: ${child.stderr}` : ''}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** Folds the operations file: ids whose last operation was a ban. */
function appliedState(opsFile: string): Set<string> {
  const banned = new Set<string>()
  if (!fs.existsSync(opsFile)) return banned
  for (const line of fs.readFileSync(opsFile, 'utf8').split('\n')) {
    if (line === '') continue
    const [op, id] = line.split(' ')
    if (op === 'ban') banned.add(id!)
    else if (op === 'unban') banned.delete(id!)
    else throw new Error(`bad operations line ${JSON.stringify(line)}`)
  }
  return banned
}

describe('ActionQueue crash safety', function () {
  const children: Child[] = []
  afterEach(async () => {
    for (const c of children.splice(0)) await c.kill()
  })

  it('loses no ban or unban across thousands of cycles with random SIGKILLs', async () => {
    const seed = Number(process.env.SPYLOG_CRASH_SEED ?? 0x5eed)
    const rand = prng(seed)
    const tmp = tempTree({})
    const dir = path.join(tmp, 'data')
    const ops = path.join(tmp, 'ops.txt')
    const logFile = path.join(tmp, 'spylog.log')
    const ROUNDS = 10
    const BATCH = 4

    // permanent bans: state per id ('sent' | 'acked'), and manual unbans likewise
    const permBan = new Map<string, 'sent' | 'acked'>()
    const permUnban = new Map<string, 'sent' | 'acked'>()
    let tagNo = 0
    let shortBans = 0
    let kills = 0
    let nextPerm = 0

    for (let round = 0; round < ROUNDS; round++) {
      const child = new Child(dir, ops, logFile, 0.05)
      children.push(child)
      await until(() => child.ready, `the child to start (round ${round})`, child)
      const pending = new Map<string, () => void>()
      // stream commands in small batches and kill at a random moment (while commands are being
      // stored, jobs run, bans end)
      const killAt = Date.now() + 300 + Math.floor(rand() * 1500)
      while (Date.now() < killAt) {
        for (let i = 0; i < BATCH; i++) {
          const tag = String(tagNo++)
          const r = rand()
          if (r < 0.06) {
            const id = `P${nextPerm++}`
            permBan.set(id, 'sent')
            pending.set(tag, () => permBan.set(id, 'acked'))
            child.send(`ban ${tag} ${id} -1`)
          } else if (r < 0.09) {
            // unban a permanent ban acknowledged earlier and not unbanned yet
            const candidates = [...permBan].filter(([id, st]) => st === 'acked' && !permUnban.has(id)).map(([id]) => id)
            if (candidates.length === 0) continue
            const id = candidates[Math.floor(rand() * candidates.length)]!
            permUnban.set(id, 'sent')
            pending.set(tag, () => permUnban.set(id, 'acked'))
            child.send(`unban ${tag} ${id}`)
          } else {
            const id = `S${Math.floor(rand() * 300)}`
            const bantime = Math.round((0.05 + rand() * 0.45) * 1000) / 1000
            pending.set(tag, () => shortBans++)
            child.send(`ban ${tag} ${id} ${bantime}`)
          }
        }
        await new Promise((r) => setTimeout(r, 10))
      }
      await child.kill()
      kills++
      for (const [tag, f] of pending) if (child.acked.has(tag)) f()
    }

    // the last start: let every short ban end, drain the queue, read the active bans
    const lastKill = Date.now()
    const child = new Child(dir, ops, logFile, 0.05)
    children.push(child)
    await until(() => child.ready, 'the final child to start', child)
    await until(() => Date.now() > lastKill + 600, 'every short ban to be over')
    child.send('drain d1')
    await until(() => child.acked.has('d1'), 'the queue to drain', child)
    child.send('active a1')
    await until(() => child.replies.has('a1'), 'the active list', child)
    const active = new Set(JSON.parse(child.replies.get('a1')!) as string[])
    const applied = appliedState(ops)
    if (process.env.SPYLOG_CRASH_KEEP) fs.cpSync(tmp, process.env.SPYLOG_CRASH_KEEP, {recursive: true})

    expect(shortBans, 'short bans stored').to.be.greaterThan(1000)
    expect(kills).to.equal(ROUNDS)
    // the firewall state is exactly the active bans: every due unban ran, every active ban is applied
    expect([...applied].sort()).to.deep.equal([...active].sort())
    expect([...active].filter((id) => id.startsWith('S'))).to.deep.equal([])
    // no acknowledged permanent ban or manual unban was lost
    for (const [id, s] of permBan) {
      const u = permUnban.get(id)
      if (u === 'acked') expect(active.has(id), `${id} was unbanned`).to.equal(false)
      else if (s === 'acked' && u === undefined) expect(active.has(id), `${id} is banned`).to.equal(true)
    }
    expect([...permBan.values()].filter((s) => s === 'acked').length).to.be.greaterThan(20)
    expect([...permUnban.values()].filter((s) => s === 'acked').length).to.be.greaterThan(5)
    // the short bans were really applied and lifted (not just cancelled)
    const opLines = fs.readFileSync(ops, 'utf8').split('\n')
    console.log(`      ${shortBans} short bans stored, ${opLines.filter((l) => /^ban S/.test(l)).length} applied, ${opLines.filter((l) => /^unban S/.test(l)).length} lifted, ${kills} kills`)
    expect(opLines.filter((l) => /^ban S/.test(l)).length).to.be.greaterThan(200)
    expect(opLines.filter((l) => /^unban S/.test(l)).length).to.be.greaterThan(200)
    // the log has the stable lines, one per line
    const log = fs.readFileSync(logFile, 'utf8')
    expect(log).to.match(/ NOTICE \[j\] Ban S\d+\n/)
    expect(log).to.match(/ NOTICE \[j\] Unban S\d+\n/)
    expect(log).to.match(/ NOTICE \[j\] Restore Ban P\d+\n/)
  })
})
