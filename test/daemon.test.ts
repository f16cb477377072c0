/**
 * The daemon end to end: a real log file, the real file source, filters in their worker, jails,
 * the persistent queue and a real command action (a recording program run from argv), through
 * the Engine and through `spylog run` with the control commands.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {expect} from 'chai'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import {daemonActionFactories, Engine} from '../src/engine/daemon/engine.js'
import {createActionRunner} from '../src/engine/actions/factory.js'
import {WindowsFirewallRunner} from '../src/engine/actions/windows/firewall.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {repoRoot, tempTree} from './support/files.js'
import {waitFor as until} from './support/wait.js'

const RECORDER = `import fs from 'node:fs'
fs.appendFileSync(process.argv[2], JSON.stringify(process.argv.slice(3)) + '\\n')
`

function config(opts: {bantime?: number; maxretry?: number; extra?: string} = {}): Record<string, string> {
  return {
    'record.mjs': RECORDER,
    'auth.log': '',
    'conf/spylog.lua': `
WHITE_IP{ '127.0.0.1/8', '::1' }
LOG{ level = 'info' }
JAIL{ default = { findtime = 600; maxretry = ${opts.maxretry ?? 3}; bantime = ${opts.bantime ?? 2}; action = { 'rec' } } }
`,
    'conf/sources/s.lua': `SOURCE{ 'auth', 'file:@DIR@/auth.log' }`,
    'conf/filters/f.lua': `
FILTER{ 'sshd'; enabled = true; source = 'auth'; engine = 'fail2ban';
  failregex = [[Failed password for <F-USER>\\S+</F-USER> from <HOST>]] }
`,
    'conf/jails/j.lua': `JAIL{ 'sshd'; filter = 'sshd' }\n${opts.extra ?? ''}`,
    'conf/actions/a.lua': `
ACTION{ 'rec';
  ban   = '"<node>" "<rec>" "<out>" ban <HOST> <JAIL> <user>';
  unban = '"<node>" "<rec>" "<out>" unban <HOST> <JAIL>';
  parameters = { node = [[${process.execPath}]], rec = [[@DIR@/record.mjs]], out = [[@DIR@/actions.jsonl]] };
}
`,
  }
}

const recorded = (dir: string): string[][] => {
  const f = path.join(dir, 'actions.jsonl')
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as string[]) : []
}


function fail(dir: string, ip: string, user = 'root', n = 1): void {
  for (let i = 0; i < n; i++) fs.appendFileSync(path.join(dir, 'auth.log'), `sshd[${100 + i}]: Failed password for ${user} from ${ip} port 4711 ssh2\n`)
}

describe('daemon: sources → filters → jails → actions', function () {
  this.timeout(120_000)

  it('bans after maxretry failures in a watched log, runs nothing a captured user name holds, lifts the ban on time, never bans WHITE_IP', async () => {
    const dir = tempTree(config({bantime: 2}))
    const lines: string[] = []
    const log = new SinkLogger('info', [memorySink(lines)])
    const engine = await Engine.start(loadLuaConfig(path.join(dir, 'conf')), {log, dataDir: path.join(dir, 'data')})
    try {
      const pwned = path.join(dir, 'pwned')
      const hostile = `x";touch${'${IFS}'}${pwned};"$(touch${'${IFS}'}${pwned})`
      fail(dir, '127.0.0.1', 'root', 5)
      fail(dir, '203.0.113.9', hostile, 2)
      // Two failures: no ban yet; the third bans.
      await engine.idle()
      expect(recorded(dir)).to.deep.equal([])
      fail(dir, '203.0.113.9', hostile)
      const ban = await until('the ban', () => recorded(dir).find((r) => r[0] === 'ban'))
      expect(ban).to.deep.equal(['ban', '203.0.113.9', 'sshd', hostile])
      expect(fs.existsSync(pwned)).to.equal(false)
      expect(lines.some((l) => / NOTICE \[sshd\] Ban 203\.0\.113\.9$/.test(l))).to.equal(true)
      const st = engine.status()
      expect(st.jails[0]).to.include({name: 'sshd', currentlyBanned: 1, totalBanned: 1})
      expect(st.sources[0]).to.include({name: 'auth', state: 'running'})
      expect(st.sources[0]!.records).to.be.at.least(8)
      // bantime 2 s: the unban runs by itself.
      await until('the unban', () => recorded(dir).find((r) => r[0] === 'unban'), 20_000)
      expect(lines.some((l) => / NOTICE \[sshd\] Unban 203\.0\.113\.9$/.test(l))).to.equal(true)
      expect(recorded(dir).filter((r) => r[1] === '127.0.0.1')).to.deep.equal([])
      expect(engine.status().jails[0]!.currentlyBanned).to.equal(0)
    } finally {
      await engine.stop()
    }
  })

  it('re-applies active bans after a restart without unbanning first, and runs an unban that fell due while it was stopped', async () => {
    const dir = tempTree(config({bantime: 3600, extra: `JAIL{ 'short'; filter = 'sshd'; bantime = 2; maxretry = 3 }`}))
    const cfg = loadLuaConfig(path.join(dir, 'conf'))
    const log = new SinkLogger('info', [])
    const dataDir = path.join(dir, 'data')
    let engine = await Engine.start(cfg, {log, dataDir})
    fail(dir, '198.51.100.20', 'admin', 3)
    await until('both bans', () => recorded(dir).filter((r) => r[0] === 'ban').length === 2)
    await engine.stop()
    // Stopped for longer than the short jail's bantime.
    await new Promise((r) => setTimeout(r, 2500))
    fs.writeFileSync(path.join(dir, 'actions.jsonl'), '')
    engine = await Engine.start(cfg, {log, dataDir})
    try {
      await until('restore and overdue unban', () => recorded(dir).length >= 2)
      await engine.idle()
      const after = recorded(dir)
      // The long ban is applied again (no unban of it), the short one is lifted.
      expect(after).to.deep.include(['ban', '198.51.100.20', 'sshd', 'admin'])
      expect(after).to.deep.include(['unban', '198.51.100.20', 'short'])
      expect(after.filter((r) => r[0] === 'unban' && r[2] === 'sshd')).to.deep.equal([])
      expect(engine.banned(['198.51.100.20']).entries[0]!.bans.map((b) => b.jail)).to.deep.equal(['sshd'])
      // The failures that led to the ban are kept with it.
      expect(engine.banned(['198.51.100.20']).entries[0]!.bans[0]!.failures).to.have.length(3)
      // A manual unban goes through the same queue.
      const u = await engine.unban(['198.51.100.20'])
      expect(u.unbanned).to.deep.equal([{jail: 'sshd', id: '198.51.100.20'}])
      await until('the manual unban', () => recorded(dir).find((r) => r[0] === 'unban' && r[2] === 'sshd'))
    } finally {
      await engine.stop()
    }
  })

  it('bans IPv6 offenders by prefix with ipv6_prefix = 64: three addresses of one /64 make one ban of the network', async () => {
    const dir = tempTree(config({bantime: 3600}))
    fs.writeFileSync(path.join(dir, 'conf/jails/j.lua'), `JAIL{ 'sshd'; filter = 'sshd'; ipv6_prefix = 64 }`)
    const engine = await Engine.start(loadLuaConfig(path.join(dir, 'conf')), {log: new SinkLogger('info', []), dataDir: path.join(dir, 'data')})
    try {
      for (const a of ['2001:db8:7:1::1', '2001:db8:7:1:ffff::2', '2001:db8:7:1::3']) fail(dir, a)
      const ban = await until('the network ban', () => recorded(dir).find((r) => r[0] === 'ban'))
      expect(ban.slice(0, 3)).to.deep.equal(['ban', '2001:db8:7:1::', 'sshd'])
      expect(engine.status().jails[0]!.currentlyBanned).to.equal(1)
      expect(engine.banned().entries.map((e) => e.id)).to.deep.equal(['2001:db8:7:1::/64'])
    } finally {
      await engine.stop()
    }
  })

  it('bans in Windows Defender Firewall on Windows and in nftables/iptables on Linux with the same packaged firewall action', () => {
    const cfg = loadLuaConfig(path.join(repoRoot, 'config'), {platform: 'windows'})
    const fw = cfg.actions.find((a) => a.name === 'firewall')!
    const log = new SinkLogger('info', [])
    const win = createActionRunner(fw, {log, platform: 'win32', dataDir: tempTree({})}, daemonActionFactories())
    expect(win).to.be.instanceOf(WindowsFirewallRunner)
    const linux = createActionRunner(fw, {log, platform: 'linux'}, daemonActionFactories())
    expect(linux).to.not.be.instanceOf(WindowsFirewallRunner)
    expect(linux.constructor.name).to.match(/Nftables|Ipset|Iptables/)
  })

  it('reads a backlog far larger than the filter queue from the start without losing a line (files wait for the filters)', async () => {
    const dir = tempTree(config({maxretry: 1000000}))
    // 30,000 lines, six times the filter queue (a 64 KiB read holds about a thousand of them).
    const n = 30_000
    const lines: string[] = []
    for (let i = 0; i < n; i++) lines.push(`sshd[1]: Failed password for u${i} from 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} port 22 ssh2`)
    fs.writeFileSync(path.join(dir, 'auth.log'), lines.join('\n') + '\n')
    const logLines: string[] = []
    const engine = await Engine.start(loadLuaConfig(path.join(dir, 'conf')), {log: new SinkLogger('info', [memorySink(logLines)]), dataDir: path.join(dir, 'data'), fromStart: true, filterQueue: 5000})
    try {
      await until('every line counted', () => engine.status().jails[0]!.totalFailed >= n, 90_000)
      await engine.idle()
      expect(engine.status().jails[0]!.totalFailed).to.equal(n)
      expect(engine.status().sources[0]!.records).to.equal(n)
      expect(logLines.filter((l) => l.includes('dropping'))).to.deep.equal([])
    } finally {
      await engine.stop()
    }
  })

  it('replays existing logs in event time with --dry-run --from-start and prints the ban timeline', () => {
    const dir = tempTree(config({bantime: 600, maxretry: 3}))
    const lines: string[] = []
    for (let i = 0; i < 3; i++) lines.push(`Jan 10 10:0${i}:00 host sshd[1]: Failed password for root from 192.0.2.50 port 22 ssh2`)
    // Spread over more than findtime: no ban for this one.
    for (let i = 0; i < 3; i++) lines.push(`Jan 10 1${i}:30:00 host sshd[1]: Failed password for root from 192.0.2.51 port 22 ssh2`)
    fs.writeFileSync(path.join(dir, 'auth.log'), lines.join('\n') + '\n')
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'run', '--dry-run', '--from-start', '--json', '--config', path.join(dir, 'conf')], {encoding: 'utf8'})
    expect(r.status, r.stderr).to.equal(0)
    const out = JSON.parse(r.stdout) as {lines: number; failures: number; bans: {jail: string; id: string; time: number; bantime: number; failures: number}[]}
    expect(out.lines).to.equal(6)
    expect(out.failures).to.equal(6)
    expect(out.bans.map((b) => [b.jail, b.id, b.failures, b.bantime])).to.deep.equal([['sshd', '192.0.2.50', 3, 600]])
    // The ban happens at the third failure's own time (10:02), not at the time of the replay.
    const d = new Date(out.bans[0]!.time * 1000)
    expect([d.getHours(), d.getMinutes()]).to.deep.equal([10, 2])
    // Nothing ran.
    expect(recorded(dir)).to.deep.equal([])
  })

  it('runs a fail2ban tree unchanged (spylog run --fail2ban): jail.conf + jail.local, filter.d, logpath', () => {
    const dir = tempTree({
      'f2b/jail.conf': '[DEFAULT]\nfindtime = 10m\nmaxretry = 5\nbantime = 1h\nbackend = auto\n\n[myapp]\nenabled = false\nfilter = myapp\nlogpath = @DIR@/app.log\n',
      'f2b/jail.local': '[myapp]\nenabled = true\nmaxretry = 2\nbantime = 30m\n',
      'f2b/filter.d/myapp.conf': '[Definition]\nfailregex = <HOST> login failed for <F-USER>\\S+</F-USER>$\ndatepattern = ^%%Y-%%m-%%d %%H:%%M:%%S\n',
      'app.log': ['2024-03-01 10:00:00 198.51.100.4 login failed for a', '2024-03-01 10:00:30 198.51.100.4 login failed for b', '2024-03-01 10:01:00 198.51.100.5 login failed for a'].join('\n') + '\n',
    })
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'run', '--dry-run', '--from-start', '--json', '--fail2ban', path.join(dir, 'f2b')], {encoding: 'utf8'})
    expect(r.status, r.stderr).to.equal(0)
    const out = JSON.parse(r.stdout) as {bans: {jail: string; id: string; bantime: number; failures: number}[]}
    expect(out.bans.map((b) => [b.jail, b.id, b.bantime, b.failures])).to.deep.equal([['myapp', '198.51.100.4', 1800, 2]])
  })

  it('runs the filter, jail and action services as three processes joined by local sockets (--only)', async () => {
    const dir = tempTree(config({bantime: 3600}))
    const procs: ChildProcess[] = []
    const sock = (role: string): string => path.join(dir, `ctl-${role}.sock`)
    const ctl = (role: string, ...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin/run.js'), ...args, '--socket', sock(role), '--data-dir', path.join(dir, 'data')], {encoding: 'utf8'})
    try {
      for (const role of ['action', 'jail', 'filter']) {
        procs.push(spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'run', '--only', role, '--config', path.join(dir, 'conf'), '--data-dir', path.join(dir, 'data'), '--socket', sock(role)], {stdio: 'ignore'}))
        await until(`the ${role} service`, () => ctl(role, 'ping').status === 0, 60_000)
      }
      fail(dir, '203.0.113.33', 'guest', 3)
      const ban = await until('the ban through three processes', () => recorded(dir).find((r) => r[0] === 'ban'))
      expect(ban).to.deep.equal(['ban', '203.0.113.33', 'sshd', 'guest'])
      // Each service answers for its part.
      const jails = JSON.parse(ctl('jail', 'status', '--json').stdout) as {jails: {name: string; totalBanned: number}[]}
      expect(jails.jails).to.deep.include({...jails.jails[0], name: 'sshd', totalBanned: 1})
      const banned = ctl('action', 'banned', '--json')
      expect(banned.status, banned.stderr).to.equal(0)
      expect(banned.stdout).to.contain('203.0.113.33')
      const wrong = ctl('filter', 'banned', '--json')
      expect(wrong.status).to.not.equal(0)
      expect(wrong.stdout + wrong.stderr).to.match(/runs only the filter service/)
    } finally {
      for (const p of procs) p.kill('SIGTERM')
      await until('the services to exit', () => procs.every((p) => p.exitCode !== null || p.signalCode !== null))
    }
  })

  describe('spylog run with the control commands', () => {
    let dir: string
    let child: ChildProcess
    let stderr = ''
    const cli = (...args: string[]): {status: number | null; stdout: string; stderr: string} =>
      spawnSync(process.execPath, [path.join(repoRoot, 'bin/run.js'), ...args, '--socket', path.join(dir, 'ctl.sock'), '--data-dir', path.join(dir, 'data')], {encoding: 'utf8'})

    before(async () => {
      dir = tempTree(config({bantime: 3600}))
      child = spawn(process.execPath, [
        path.join(repoRoot, 'bin/run.js'), 'run', '--foreground', '--config', path.join(dir, 'conf'),
        '--data-dir', path.join(dir, 'data'), '--socket', path.join(dir, 'ctl.sock'), '--metrics', '127.0.0.1:0',
      ], {stdio: ['ignore', 'ignore', 'pipe']})
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
      await until('the daemon to answer ping', () => cli('ping').status === 0, 60_000)
    })

    after(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })

    it('answers status, ban, banned and unban in text and JSON', async () => {
      const st = cli('status', '--json')
      expect(st.status, st.stderr).to.equal(0)
      expect((JSON.parse(st.stdout) as {jails: {name: string}[]}).jails.map((j) => j.name)).to.deep.equal(['sshd'])
      expect(cli('status').stdout).to.match(/sshd/)
      // A refused address (local) makes the exit status 1; the other one is banned.
      const b = cli('ban', 'sshd', '192.0.2.77', '127.0.0.1', '--json')
      expect(b.status, b.stderr).to.equal(1)
      const br = JSON.parse(b.stdout) as {banned: string[]; refused: {id: string}[]}
      expect(br.banned).to.deep.equal(['192.0.2.77'])
      expect(br.refused.map((x) => x.id)).to.deep.equal(['127.0.0.1'])
      await until('the manual ban to run', () => recorded(dir).find((r) => r[0] === 'ban' && r[1] === '192.0.2.77'))
      const bd = cli('banned', '192.0.2.77', '--json')
      expect(bd.status, bd.stderr).to.equal(0)
      expect(JSON.stringify(JSON.parse(bd.stdout))).to.match(/"jail":"sshd"/)
      const js = cli('status', 'sshd', '--json')
      expect((JSON.parse(js.stdout) as {actions: {banned: {id: string}[]}}).actions.banned.map((x) => x.id)).to.deep.equal(['192.0.2.77'])
      const ub = cli('unban', '192.0.2.77')
      expect(ub.status, ub.stderr).to.equal(0)
      await until('the manual unban to run', () => recorded(dir).find((r) => r[0] === 'unban' && r[1] === '192.0.2.77'))
    })

    it('serves metrics, keeps the running configuration when a reload finds errors, reloads a good one', async () => {
      const url = await until('the metrics URL in the log', () => /metrics: (http:\/\/\S+)/.exec(stderr)?.[1])
      const text = await (await fetch(url)).text()
      expect(text).to.match(/^spylog_filter_lines_total\{filter="sshd"\} \d+$/m)
      expect(text).to.match(/^spylog_filter_match_seconds_bucket\{filter="sshd",le="\+Inf"\} \d+$/m)
      fs.writeFileSync(path.join(dir, 'conf/jails/broken.lua'), `JAIL{ 'broken'; filter = 'no-such-filter' }`)
      const bad = cli('reload')
      expect(bad.status).to.equal(2)
      expect(bad.stdout + bad.stderr).to.match(/no-such-filter/)
      expect(cli('ping').status).to.equal(0)
      fs.writeFileSync(path.join(dir, 'conf/jails/broken.lua'), `JAIL{ 'second'; filter = 'sshd'; maxretry = 1 }`)
      const good = cli('reload', '--json')
      expect(good.status, good.stderr).to.equal(0)
      const st = JSON.parse(cli('status', '--json').stdout) as {jails: {name: string}[]}
      expect(st.jails.map((j) => j.name).sort()).to.deep.equal(['second', 'sshd'])
      // The new jail works: one failure bans.
      fail(dir, '192.0.2.88')
      await until('the new jail to ban', () => recorded(dir).find((r) => r[0] === 'ban' && r[1] === '192.0.2.88' && r[2] === 'second'))
    })

    it('answers every read command in both output modes; refuses another user and a wrong token, and says so in its log', async () => {
      for (const argv of [['ping'], ['status'], ['status', 'sshd'], ['banned']]) {
        const text = cli(...argv)
        expect(text.status, `${argv.join(' ')}: ${text.stderr}`).to.equal(0)
        expect(text.stdout.length, argv.join(' ')).to.be.greaterThan(0)
        const json = cli(...argv, '--json')
        expect(json.status, `${argv.join(' ')} --json: ${json.stderr}`).to.equal(0)
        expect(() => JSON.parse(json.stdout), argv.join(' ')).to.not.throw()
      }
      const home = tempTree({})
      fs.chmodSync(home, 0o777)
      const other = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, path.join(repoRoot, 'bin/run.js'), 'unban', '--all', '--socket', path.join(dir, 'ctl.sock'), '--token-file', path.join(dir, 'data', 'control.token')], {encoding: 'utf8', env: {...process.env, HOME: home}})
      expect(other.status, other.stderr).to.equal(2)
      expect(other.stderr).to.match(/permission denied/)
      const bad = path.join(tempTree({t: 'b'.repeat(64) + '\n'}), 't')
      const wrong = spawnSync(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'unban', '--all', '--socket', path.join(dir, 'ctl.sock'), '--token-file', bad], {encoding: 'utf8'})
      expect(wrong.status).to.equal(2)
      expect(wrong.stderr).to.match(/wrong or missing control token/)
      await until('the refusal in the daemon log', () => /WARNING control: refused a request .*wrong token/.test(stderr))
    })

    it('stops on `spylog stop` and exits 0', async () => {
      const s = cli('stop')
      expect(s.status, s.stderr).to.equal(0)
      await until('the daemon to exit', () => child.exitCode !== null)
      expect(child.exitCode).to.equal(0)
      expect(cli('ping').status).to.equal(3)
    })
  })
})
