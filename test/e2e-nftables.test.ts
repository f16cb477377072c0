/**
 * End to end with real parts only: an sshd-like server in a victim network namespace writes real
 * "Failed password" lines to a log file; the Engine (in this process) reads that file through the
 * real file source, matches it with spylog's packaged sshd filter in the filter worker, counts in
 * the jail and bans through the built-in firewall action with the nftables backend, run inside the
 * victim namespace (`options.netns`). An attacker namespace, joined by a veth pair, tries to log in
 * with a wrong password, is refused by the kernel while banned, and gets in again after `bantime`.
 * A second attacker address listed in WHITE_IP fails many more times and is never banned.
 */
import fs from 'node:fs'
import path from 'node:path'
import {expect} from 'chai'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import {Engine} from '../src/engine/daemon/engine.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {repoRoot, tempTree} from './support/files.js'
import {hasProgram, NetnsPair, netnsUnavailable} from './support/netns.js'
import {AttackerClient, type Attempt, startSshLikeServer} from './support/sshlike.js'

const MAXRETRY = 3
const BANTIME = 3

/** The kernel's answer to a rejected SYN (EHOSTUNREACH if the reject also hit neighbour discovery). */
const refused = (r: string): boolean => r === 'ECONNREFUSED' || r === 'EHOSTUNREACH'

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('end to end: sshd-like log → Engine → nftables in a network namespace', function () {
  this.timeout(180_000)
  let pair: NetnsPair | undefined
  let client: AttackerClient | undefined
  let engine: Engine | undefined
  let dir = ''
  let port = 0
  let whiteIp = ''
  const logged: string[] = []

  before(async function () {
    const why = netnsUnavailable() ?? (hasProgram(['nft', '--version']) ? undefined : 'nft is not installed')
    if (why !== undefined) {
      console.log(`      (skipped: ${why})`)
      this.skip()
    }
    pair = new NetnsPair().create()
    // A second attacker address on the same link: the one WHITE_IP lists.
    whiteIp = pair.attackerIp.replace(/\.\d+$/, '.3')
    pair.exec(pair.attacker, ['ip', 'addr', 'add', `${whiteIp}/24`, 'dev', `sa${pair.id}`])
    dir = tempTree({
      'auth.log': '',
      'conf/spylog.lua': `
WHITE_IP{ '127.0.0.1/8', '::1', '${whiteIp}' }
LOG{ level = 'info' }
JAIL{ default = { findtime = 600; maxretry = ${MAXRETRY}; bantime = ${BANTIME}; action = { 'fw' } } }
`,
      'conf/sources/auth.lua': `SOURCE{ 'auth', 'file:@DIR@/auth.log' }`,
      // spylog's own shipped sshd filter and its syslog helper, unchanged
      'conf/filters/sshd.lua': fs.readFileSync(path.join(repoRoot, 'config/filters/sshd.lua'), 'utf8'),
      'conf/lib/syslog.lua': fs.readFileSync(path.join(repoRoot, 'config/lib/syslog.lua'), 'utf8'),
      'conf/jails/sshd.lua': `JAIL{ 'sshd'; filter = 'sshd' }`,
      'conf/actions/fw.lua': `
ACTION{ 'fw';
  ban   = '@spylog.actions.firewall';
  unban = '@spylog.actions.firewall';
  options = { backend = 'nftables'; netns = '${pair.victim}' };
  parameters = { blocktype = 'reject' };
}
`,
    })
    port = (await startSshLikeServer(pair.victim, path.join(dir, 'auth.log'))).port
    client = new AttackerClient(pair.attacker)
    const log = new SinkLogger('info', [memorySink(logged)])
    engine = await Engine.start(loadLuaConfig(path.join(dir, 'conf')), {log, dataDir: path.join(dir, 'data')})
  })

  after(async () => {
    try {
      await engine?.stop()
    } finally {
      client?.close()
      pair?.destroy()
    }
  })

  const authLines = (): string[] => fs.readFileSync(path.join(dir, 'auth.log'), 'utf8').split('\n').filter((l) => l !== '')
  /** Waits until the file source has read every line of the log and everything it caused is done. */
  const settled = async (): Promise<void> => {
    const n = authLines().length
    await until(`the file source to read ${n} lines`, () => engine!.status().sources.find((s) => s.name === 'auth')!.records >= n)
    await engine!.idle()
  }
  const nftSet = (): string => pair!.exec(pair!.victim, ['nft', 'list', 'set', 'inet', 'spylog', 'addr-rej-v4'])

  it('refuses the attacker after maxretry failed logins, lets it in again after bantime, never bans the WHITE_IP address', async () => {
    const p = pair!
    const c = client!
    expect(await c.connect(p.attackerIp, p.victimIp, port)).to.equal('ok')
    expect(await c.connect(whiteIp, p.victimIp, port)).to.equal('ok')

    // The whitelisted address fails far more often than maxretry: every attempt reaches the server.
    for (let i = 0; i < 4 * MAXRETRY; i++) expect(await c.login(whiteIp, p.victimIp, port, 'admin', `guess${i}`)).to.equal('denied')
    // The attacker fails maxretry - 1 times: not yet banned.
    for (let i = 0; i < MAXRETRY - 1; i++) expect(await c.login(p.attackerIp, p.victimIp, port, 'root', `guess${i}`)).to.equal('denied')
    await settled()
    const lines = authLines()
    expect(lines).to.have.length(5 * MAXRETRY - 1)
    expect(lines.filter((l) => new RegExp(`sshd\\[\\d+\\]: Failed password for admin from ${esc(whiteIp)} port \\d+ ssh2$`).test(l))).to.have.length(4 * MAXRETRY)
    expect(engine!.status().jails.find((j) => j.name === 'sshd')).to.include({currentlyBanned: 0, totalBanned: 0})
    expect(await c.connect(p.attackerIp, p.victimIp, port)).to.equal('ok')

    // Both addresses probe the port continuously from now on (each attempt bounded, 50 ms apart).
    const attacker = await c.probe(p.attackerIp, p.victimIp, port, 50, 5000)
    const white = await c.probe(whiteIp, p.victimIp, port, 50, 5000)
    let attackerResults: Attempt[] = []
    let whiteResults: Attempt[] = []
    let tFail = 0
    try {
      // The maxretry-th failure.
      tFail = Date.now()
      expect(await c.login(p.attackerIp, p.victimIp, port, 'root', 'guess-last')).to.equal('denied')
      // Within a bounded time the kernel in the victim namespace refuses the attacker ...
      const firstRefused = await until('the attacker to be refused', () => attacker.results.find((a) => a.t0 >= tFail && refused(a.r)), 60_000)
      // ... and after bantime lets it in again (spylog's unban or the set element's own timeout).
      await until('the attacker to get in again after bantime', () => attacker.results.find((a) => a.t0 > firstRefused.t1 && a.r === 'ok'), 60_000)
      console.log(`      (ban in force ${firstRefused.t0 - tFail} ms after the failing login; load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`)
    } finally {
      await attacker.stop()
      await white.stop()
      attackerResults = attacker.results.slice()
      whiteResults = white.results.slice()
    }
    // The attacker was either let in or refused by the kernel, nothing else (no timeouts, no resets).
    expect(attackerResults.filter((a) => a.r !== 'ok' && !refused(a.r))).to.deep.equal([])
    // Before its maxretry-th failure it was never refused.
    expect(attackerResults.filter((a) => a.t1 < tFail && a.r !== 'ok')).to.deep.equal([])
    // Refused as one block: once let in again, it stays in.
    const refusedIdx = attackerResults.map((a, i) => (refused(a.r) ? i : -1)).filter((i) => i >= 0)
    expect(refusedIdx[refusedIdx.length - 1]! - refusedIdx[0]! + 1).to.equal(refusedIdx.length)
    expect(attackerResults.slice(refusedIdx[refusedIdx.length - 1]! + 1).every((a) => a.r === 'ok')).to.equal(true)
    // The whitelisted address on the same link was let in every time, during the ban too.
    expect(whiteResults.length).to.be.greaterThan(0)
    expect(whiteResults.filter((a) => a.r !== 'ok')).to.deep.equal([])

    // spylog logged the ban and lifts it in its own books as well; the set no longer holds the address.
    expect(logged.some((l) => new RegExp(` NOTICE \\[sshd\\] Ban ${esc(p.attackerIp)}$`).test(l)), logged.join('\n')).to.equal(true)
    await until('spylog\'s unban', () => logged.some((l) => new RegExp(` NOTICE \\[sshd\\] Unban ${esc(p.attackerIp)}$`).test(l)), 60_000)
    await until('no active ban in the jail', () => engine!.status().jails.find((j) => j.name === 'sshd')!.currentlyBanned === 0)
    expect(nftSet()).not.to.include(p.attackerIp)
    expect(await c.login(p.attackerIp, p.victimIp, port, 'root', 'letmein')).to.equal('welcome')

    // More failures from the whitelisted address, well after the ban: still never banned.
    for (let i = 0; i < 2 * MAXRETRY; i++) expect(await c.login(whiteIp, p.victimIp, port, 'admin', `again${i}`)).to.equal('denied')
    await settled()
    expect(engine!.status().jails.find((j) => j.name === 'sshd')).to.include({currentlyBanned: 0, totalBanned: 1})
    expect(engine!.banned([whiteIp]).entries.flatMap((e) => e.bans)).to.deep.equal([])
    expect(logged.filter((l) => l.includes(`Ban ${whiteIp}`))).to.deep.equal([])
    expect(nftSet()).not.to.include(whiteIp)
    expect(await c.login(whiteIp, p.victimIp, port, 'admin', 'letmein')).to.equal('welcome')
  })
})
