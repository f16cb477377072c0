/**
 * The control commands end to end: the built CLI (`node bin/run.js status …`, built by the
 * before hook when dist/ is stale) against a daemon stand-in (support/control-target.ts) served
 * by the real control server on a unix socket in this process. Every command in text and --json
 * mode, exit codes 0–3, a second user denied on the socket, a wrong token, a version mismatch.
 */
import {expect} from 'chai'
import {spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {SinkLogger, memorySink} from '../src/engine/log/logger.js'
import {startControlServer, type ControlServer} from '../src/engine/control/server.js'
import {JAILS, MemoryTarget} from './support/control-target.js'
import {repoRoot, tempTree} from './support/files.js'

const BIN = path.join(repoRoot, 'bin', 'run.js')

/** Rebuilds dist/ when a source file is newer than the compiled commands. */
function ensureBuilt(): void {
  const out = path.join(repoRoot, 'dist', 'src', 'commands', 'status.js')
  const newest = (d: string): number => Math.max(0, ...fs.readdirSync(d, {recursive: true, encoding: 'utf8'})
    .filter((f) => f.endsWith('.ts')).map((f) => fs.statSync(path.join(d, f)).mtimeMs))
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= newest(path.join(repoRoot, 'src'))) return
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(repoRoot, 'tsconfig.json')], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`)
}

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI asynchronously (the daemon answering it lives in this process). */
function run(argv: string[], opts: {user?: string; env?: NodeJS.ProcessEnv; tty?: boolean} = {}): Promise<Result> {
  // On a pseudo-terminal (util-linux script); the arguments are temporary paths and plain words, quoted for its shell.
  const quoted = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`
  const [cmd, args] = opts.tty === true
    ? ['script', ['-qec', [process.execPath, BIN, ...argv].map(quoted).join(' '), '/dev/null']]
    : opts.user === undefined
    ? [process.execPath, [BIN, ...argv]]
    : ['setpriv', [`--reuid=${opts.user}`, '--regid=nogroup', '--clear-groups', '--', process.execPath, BIN, ...argv]]
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args as string[], {env: {...process.env, NO_COLOR: '1', FORCE_COLOR: '0', SPYLOG_SOCKET: '', SPYLOG_DATA_DIR: '', ...opts.env}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (status) => resolve({status, stdout, stderr}))
  })
}

interface Daemon {
  dir: string
  socketPath: string
  dataDir: string
  target: MemoryTarget
  server: ControlServer
  logLines: string[]
  /** The CLI against this daemon. */
  cli(...argv: string[]): Promise<Result>
  /** The CLI with --json; asserts the exit code and parses stdout. */
  json(exit: number, ...argv: string[]): Promise<any>
}

const servers: ControlServer[] = []

async function startDaemon(): Promise<Daemon> {
  const dir = tempTree({'jails.json': JSON.stringify({jails: JAILS}), 'run/.keep': ''}, 'spylog-cli-')
  // Directories other users may traverse, so the socket's own mode is what keeps them out.
  fs.chmodSync(dir, 0o755)
  fs.chmodSync(path.join(dir, 'run'), 0o755)
  const target = new MemoryTarget(path.join(dir, 'jails.json'))
  target.now = Math.floor(Date.now() / 1000)
  target.started = target.now - 3723
  const logLines: string[] = []
  const dataDir = path.join(dir, 'data')
  const server = await startControlServer({target, socketPath: path.join(dir, 'run', 'spylog.sock'), dataDir, log: new SinkLogger('debug', [memorySink(logLines)])})
  servers.push(server)
  target.onStop = () => server.close()
  const flags = ['--socket', server.socketPath, '--data-dir', dataDir]
  const d: Daemon = {
    dir,
    socketPath: server.socketPath,
    dataDir,
    target,
    server,
    logLines,
    cli: (...argv) => run([...argv, ...flags]),
    json: async (exit, ...argv) => {
      const r = await run([...argv, ...flags, '--json'])
      expect(r.status, `${argv.join(' ')}: ${r.stderr}${r.stdout}`).to.equal(exit)
      return JSON.parse(r.stdout)
    },
  }
  return d
}

/** Three failures of 192.0.2.7 (banned, one line carrying a terminal escape), one of 198.51.100.4 (not yet). */
function seed(t: MemoryTarget): void {
  t.fail('sshd', '192.0.2.7', 'sshd[10]: Failed password for root from 192.0.2.7 port 4001', {user: 'root'})
  t.fail('sshd', '192.0.2.7', 'sshd[10]: Failed password for \u001b[2Jadmin from 192.0.2.7 port 4002', {user: '\u001b[2Jadmin'})
  t.fail('sshd', '192.0.2.7', 'sshd[10]: Failed password for root from 192.0.2.7 port 4003', {user: 'root'})
  t.fail('sshd', '198.51.100.4', 'sshd[11]: Failed password for bob from 198.51.100.4 port 5000', {user: 'bob'})
}

describe('control commands (spylog status, banned, ban, unban, reload, stop, ping)', function () {
  this.timeout(300_000)
  before(ensureBuilt)
  let d: Daemon

  beforeEach(async () => {
    d = await startDaemon()
    seed(d.target)
  })
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close()
  })

  it('ping: pong with version and pid; --json', async () => {
    const r = await d.cli('ping')
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout.trim()).to.equal(`pong from spylog 0.1.0-test (pid ${process.pid}) at ${d.socketPath}`)
    expect(await d.json(0, 'ping')).to.deep.equal({pong: true, version: '0.1.0-test', pid: process.pid})
  })

  it('status: the jail and source tables; --json is the daemon status', async () => {
    const r = await d.cli('status')
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stderr).to.equal('')
    expect(r.stdout).to.match(new RegExp(`^spylog 0\\.1\\.0-test \\(pid ${process.pid}\\), up 1h\\d+m, 0 jobs queued`))
    expect(r.stdout).to.contain('Jails (2)')
    expect(r.stdout).to.match(/│ jail\s+│ currently failed │ total failed │ currently banned │ total banned │ filters\s+│ sources\s+│/)
    expect(r.stdout).to.match(/│ sshd\s+│ 1\s+│ 4\s+│ 1\s+│ 1\s+│ sshd\s+│ auth\s+│/)
    expect(r.stdout).to.match(/│ recidive\s+│ 0\s+│ 0\s+│ 0\s+│ 0\s+│ recidive\s+│ spylog-log\s+│/)
    expect(r.stdout).to.contain('Sources (2)')
    const bytes = d.target.sources.get('auth')!.bytes
    expect(r.stdout).to.match(new RegExp(`│ auth\\s+│ file\\s+│ running\\s+│ 4\\s+│ ${bytes}\\s+│ 0\\s+│ 0\\s+│ \\d+s ago\\s+│`))
    expect(r.stdout).to.not.match(/\u001b\[/)
    expect(await d.json(0, 'status')).to.deep.equal(d.target.status())
  })

  it("status JAIL: fail2ban-client's tree with the banned addresses and time left; --json", async () => {
    d.target.ban('sshd', ['203.0.113.0/24'])
    d.target.now += 61
    const r = await d.cli('status', 'sshd')
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout).to.equal([
      'Status for the jail: sshd',
      '|- Filter',
      '|  |- Currently failed: 1',
      '|  |- Total failed:     4',
      '|  |- Filters:          sshd',
      '|  `- Sources:          /var/log/auth.log (file, running, 4 records)',
      '`- Actions',
      '   |- Actions:          nftables',
      '   |- Currently banned: 2',
      '   |- Total banned:     2',
      '   `- Banned IP list:   192.0.2.7 (8m59s left)',
      '                        203.0.113.0/24 (8m59s left, manual)',
      '',
    ].join('\n'))
    const j = await d.json(0, 'status', 'sshd')
    expect(j).to.deep.equal(d.target.jailStatus('sshd'))
    expect(j.actions.banned.map((b: any) => [b.id, b.timeLeft])).to.deep.equal([['192.0.2.7', 539], ['203.0.113.0/24', 539]])
  })

  it('status of an unknown jail: exit 1 with the reason (text on stderr, JSON on stdout)', async () => {
    const r = await d.cli('status', 'nginx')
    expect(r.status).to.equal(1)
    expect(r.stdout).to.equal('')
    expect(r.stderr.trim()).to.equal('error: no jail "nginx" (jails: sshd, recidive)')
    expect(await d.json(1, 'status', 'nginx')).to.deep.equal({ok: false, error: {code: 'not-found', message: 'no jail "nginx" (jails: sshd, recidive)'}, exitCode: 1})
  })

  it('banned: per address the jails, time left and the failures, with control characters escaped; --json', async () => {
    const r = await d.cli('banned', '192.0.2.7', '198.51.100.4')
    expect(r.status, r.stderr).to.equal(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).to.equal('192.0.2.7')
    expect(lines[1]).to.match(/^ {2}sshd: 10m left \(banned \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, for 10m, 1st ban\)$/)
    expect(lines[2]).to.equal('    3 failures:')
    expect(r.stdout).to.contain('      sshd[10]: Failed password for root from 192.0.2.7 port 4001')
    expect(r.stdout).to.contain('sshd (user=\\x1b[2Jadmin)')
    expect(r.stdout).to.contain('      sshd[10]: Failed password for \\x1b[2Jadmin from 192.0.2.7 port 4002')
    expect(r.stdout).to.not.contain('\u001b')
    expect(r.stdout).to.match(/^198\.51\.100\.4: not banned$/m)

    const j = await d.json(0, 'banned', '192.0.2.7')
    expect(j.entries).to.have.length(1)
    expect(j.entries[0].bans[0]).to.include({jail: 'sshd', id: '192.0.2.7', bantime: 600, timeLeft: 600, banCount: 0})
    expect(j.entries[0].bans[0].failures.map((f: any) => f.lines[0])).to.have.length(3)
    expect(j.entries[0].bans[0].failures[1].data.user).to.equal('\u001b[2Jadmin')

    const all = await d.cli('banned')
    expect(all.stdout.split('\n')[0]).to.equal('192.0.2.7')
    d.target.unban({all: true})
    expect((await d.cli('banned')).stdout.trim()).to.equal('no active bans')
  })

  it('ban: bans through the daemon; already banned is fine, refused addresses give exit 1; --json', async () => {
    const r = await d.cli('ban', 'sshd', '203.0.113.5', '2001:DB8::1')
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout.trim()).to.equal('sshd: banned 203.0.113.5, 2001:db8::1')
    expect(d.target.jailStatus('sshd').actions.banned.map((b) => b.id)).to.have.members(['192.0.2.7', '203.0.113.5', '2001:db8::1'])

    const again = await d.cli('ban', 'sshd', '203.0.113.5')
    expect(again.status).to.equal(0)
    expect(again.stdout.trim()).to.equal('sshd: already banned 203.0.113.5')

    const refused = await d.cli('ban', 'sshd', '127.0.0.1', '198.51.100.9')
    expect(refused.status).to.equal(1)
    expect(refused.stdout).to.contain('sshd: banned 198.51.100.9')
    expect(refused.stdout).to.contain('sshd: refused 127.0.0.1: a local address is never banned')

    const j = await d.json(1, 'ban', 'recidive', '198.51.100.10', '::1')
    expect(j).to.deep.equal({jail: 'recidive', banned: ['198.51.100.10'], already: [], refused: [{id: '::1', reason: 'a local address is never banned'}]})
    expect(d.target.jailStatus('recidive').actions.banned[0]).to.include({id: '198.51.100.10', timeLeft: -1, manual: true})

    const unknown = await d.cli('ban', 'nojail', '198.51.100.11')
    expect(unknown.status).to.equal(1)
    expect(unknown.stderr).to.match(/error: no jail "nojail"/)
    const usage = await d.cli('ban', 'sshd')
    expect(usage.status).to.equal(2)
  })

  it('unban: addresses (everywhere or in one jail), --all; not banned gives exit 1; usage errors exit 2; --json', async () => {
    d.target.ban('recidive', ['192.0.2.7', '203.0.113.5'])
    const one = await d.cli('unban', '192.0.2.7', '--jail', 'recidive')
    expect(one.status, one.stderr).to.equal(0)
    expect(one.stdout.trim()).to.equal('unbanned 192.0.2.7 (recidive)')
    expect(d.target.banned(['192.0.2.7']).entries[0]!.bans.map((b) => b.jail)).to.deep.equal(['sshd'])

    const missing = await d.cli('unban', '192.0.2.7', '198.51.100.200')
    expect(missing.status).to.equal(1)
    expect(missing.stdout).to.contain('unbanned 192.0.2.7 (sshd)')
    expect(missing.stdout).to.contain('not banned: 198.51.100.200')

    expect(await d.json(0, 'unban', '--all')).to.deep.equal({unbanned: [{jail: 'recidive', id: '203.0.113.5'}], notBanned: []})
    expect(d.target.status().jails.every((j) => j.currentlyBanned === 0)).to.equal(true)
    const none = await d.cli('unban', '--all')
    expect(none.status).to.equal(0)
    expect(none.stdout.trim()).to.equal('no active bans')

    for (const argv of [['unban'], ['unban', '--all', '192.0.2.7']]) {
      const r = await d.cli(...argv)
      expect(r.status, argv.join(' ')).to.equal(2)
      expect(r.stderr).to.match(/give (the addresses to unban, or --all|addresses or --all, not both)/)
    }
  })

  it('reload: re-reads the configuration; a broken one is reported (exit 2) and the running jails stay; --json', async () => {
    const file = path.join(d.dir, 'jails.json')
    const ok = await d.cli('reload')
    expect(ok.status, ok.stderr).to.equal(0)
    expect(ok.stdout.trim()).to.equal('reloaded')

    fs.writeFileSync(file, JSON.stringify({jails: [...JAILS, {name: 'nginx', filters: ['nginx'], sources: ['access'], actions: ['nftables'], maxretry: 5, bantime: 60}]}))
    const added = await d.json(0, 'reload')
    expect(added).to.deep.equal({ok: true, jails: ['nginx']})
    expect(d.target.status().jails.find((j) => j.name === 'sshd')).to.include({totalFailed: 4, currentlyBanned: 1})

    fs.writeFileSync(file, JSON.stringify({jails: [{name: 'sshd', maxretry: 0, bantime: 600}, {name: '', maxretry: 3, bantime: 'x'}]}))
    const broken = await d.cli('reload')
    expect(broken.status).to.equal(2)
    expect(broken.stdout).to.equal('')
    const errs = broken.stderr.trim().split('\n')
    expect(errs).to.deep.equal([
      `error: ${file}: jails[0].maxretry: expected a number ≥ 1`,
      `error: ${file}: jails[1].name: expected a name`,
      `error: ${file}: jails[1].bantime: expected seconds`,
      'not reloaded: 3 configuration errors; the running configuration stays in place',
    ])
    expect(d.target.status().jails.map((j) => j.name)).to.deep.equal(['sshd', 'recidive', 'nginx'])
    const j = await d.json(2, 'reload')
    expect(j.ok).to.equal(false)
    expect(j.errors).to.have.length(3)

    fs.writeFileSync(file, JSON.stringify({jails: JAILS}))
    const unknown = await d.cli('reload', 'nginx')
    expect(unknown.status).to.equal(1)
    expect(unknown.stderr).to.match(/error: no jail "nginx" in .*jails\.json/)
  })

  it('stop: the daemon stops, the command waits until it is gone; then every command reports no daemon (exit 3)', async () => {
    const r = await d.cli('stop')
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout.trim()).to.equal(`spylog at ${d.socketPath} stopped`)
    expect(d.target.stopped).to.equal(true)
    expect(fs.existsSync(d.socketPath)).to.equal(false)
    expect(d.logLines.join('\n')).to.match(/NOTICE control: stop requested/)

    for (const argv of [['ping'], ['status'], ['stop'], ['ban', 'sshd', '192.0.2.1']]) {
      const x = await d.cli(...argv)
      expect(x.status, argv.join(' ')).to.equal(3)
      expect(x.stderr.trim()).to.equal(`error: no spylog daemon running at ${d.socketPath}`)
    }
    expect(await d.json(3, 'status')).to.deep.equal({ok: false, error: {code: 'no-daemon', message: `no spylog daemon running at ${d.socketPath}`}, exitCode: 3})
  })

  it('stop --json prints the reply', async () => {
    expect(await d.json(0, 'stop')).to.deep.equal({stopping: true})
    expect(d.target.stopped).to.equal(true)
  })

  it('another user is denied on the socket (exit 2) and the daemon is untouched', async () => {
    const home = tempTree({})
    fs.chmodSync(home, 0o777)
    const r = await run(['unban', '--all', '--socket', d.socketPath, '--token-file', path.join(d.dataDir, 'control.token')], {user: 'nobody', env: {HOME: home}})
    expect(r.status, r.stderr + r.stdout).to.equal(2)
    expect(r.stderr.trim()).to.equal(`error: permission denied on ${d.socketPath} (run as the daemon's user or root)`)
    expect(d.target.status().jails.find((j) => j.name === 'sshd')!.currentlyBanned).to.equal(1)
  })

  it('a wrong token is refused (exit 2) and logged by the daemon; a missing or unreadable token file is a clear error', async () => {
    const bad = path.join(tempTree({'t': 'a'.repeat(64) + '\n'}), 't')
    const r = await run(['unban', '--all', '--socket', d.socketPath, '--token-file', bad])
    expect(r.status).to.equal(2)
    expect(r.stderr.trim()).to.equal('error: wrong or missing control token')
    expect(d.logLines.join('\n')).to.match(/WARNING control: refused a request on .*spylog\.sock: wrong token \(command "unban"\)/)
    expect(d.target.status().jails.find((j) => j.name === 'sshd')!.currentlyBanned).to.equal(1)

    const none = await run(['ping', '--socket', d.socketPath, '--data-dir', path.join(d.dir, 'elsewhere')])
    expect(none.status).to.equal(2)
    expect(none.stderr.trim()).to.equal(`error: no control token at ${path.join(d.dir, 'elsewhere', 'control.token')} (pass --token-file, or --data-dir with the daemon's data directory)`)

    const garbage = path.join(tempTree({'t': 'hello'}), 't')
    const g = await run(['ping', '--socket', d.socketPath, '--token-file', garbage])
    expect(g.status).to.equal(2)
    expect(g.stderr).to.contain('does not hold a control token (64 hex characters)')
  })

  it('colours only on a terminal, and never with --json or NO_COLOR', async () => {
    const flags = ['--socket', d.socketPath, '--data-dir', d.dataDir]
    const colour = {NO_COLOR: undefined, FORCE_COLOR: undefined}
    // eslint-disable-next-line no-control-regex
    const ansi = /\u001b\[[0-9;]*m/
    const tty = await run(['status', ...flags], {tty: true, env: colour})
    expect(tty.status, tty.stdout).to.equal(0)
    expect(tty.stdout).to.match(ansi)
    expect(tty.stdout).to.contain('sshd')
    const json = await run(['status', ...flags, '--json'], {tty: true, env: colour})
    expect(json.stdout).to.not.match(ansi)
    expect(JSON.parse(json.stdout.replaceAll('\r\n', '\n')).jails).to.have.length(2)
    const noColor = await run(['status', ...flags], {tty: true, env: {NO_COLOR: '1', FORCE_COLOR: undefined}})
    expect(noColor.stdout).to.not.match(ansi)
    const piped = await run(['status', ...flags], {env: colour})
    expect(piped.stdout).to.not.match(ansi)
  })

  it('$SPYLOG_SOCKET and $SPYLOG_DATA_DIR find the daemon without flags', async () => {
    const r = await run(['ping'], {env: {SPYLOG_SOCKET: d.socketPath, SPYLOG_DATA_DIR: d.dataDir}})
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout).to.match(/^pong from spylog/)
  })

  it('a daemon that does not answer: exit 1 after --timeout', async () => {
    const socketPath = path.join(d.dir, 'run', 'mute.sock')
    const conns: net.Socket[] = []
    const mute = net.createServer((s) => void conns.push(s))
    await new Promise<void>((resolve) => mute.listen(socketPath, resolve))
    try {
      const r = await run(['status', '--socket', socketPath, '--data-dir', d.dataDir, '--timeout', '1'])
      expect(r.status).to.equal(1)
      expect(r.stderr.trim()).to.equal(`error: no reply from the daemon at ${socketPath} within 1 s`)
    } finally {
      for (const c of conns) c.destroy()
      await new Promise((resolve) => mute.close(resolve))
    }
  })

  it('a daemon speaking another protocol version: a clear mismatch error (exit 2)', async () => {
    const socketPath = path.join(d.dir, 'run', 'v2.sock')
    const fake = net.createServer((s) => s.once('data', () => s.end(JSON.stringify({v: 2, id: 1, ok: true, result: {pong: true}}) + '\n')))
    await new Promise<void>((resolve) => fake.listen(socketPath, resolve))
    try {
      const r = await run(['ping', '--socket', socketPath, '--data-dir', d.dataDir])
      expect(r.status).to.equal(2)
      expect(r.stderr.trim()).to.match(/^error: version mismatch: daemon protocol v2, client protocol v1 \(run the spylog that started the daemon, or restart the daemon after an upgrade\)$/)
    } finally {
      await new Promise((resolve) => fake.close(resolve))
    }
  })
})
