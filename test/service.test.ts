/**
 * `spylog service …`: the systemd unit (content, `systemd-analyze verify`, offline enable with the
 * real `systemctl --root`, uninstall, status), the systemctl steps when systemd runs (through the
 * Shell seam, recorded), and the Windows service behind its seams: node-windows absent → a clear
 * error; a stand-in node-windows → the configuration spylog installs, `sc.exe` state parsing, and
 * uninstall clearing the firewall rules.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {EventEmitter} from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import {WindowsFirewallRunner} from '../src/engine/actions/windows/firewall.js'
import type {Shell, ShellResult, ShellRunOptions} from '../src/engine/actions/windows/shell.js'
import {controlUnit, installUnit, renderUnit, ServiceError, uninstallUnit, unitStatus} from '../src/engine/service/systemd.js'
import {installWindowsService, launcherSource, loadNodeWindows, uninstallWindowsService, windowsServiceStatus, type NodeWindowsModule} from '../src/engine/service/windows.js'
import {SinkLogger} from '../src/engine/log/logger.js'
import {FakeWindowsFirewall} from './fixtures/windows-firewall/fake-firewall.js'
import {repoRoot, tempTree} from './support/files.js'

const BIN = path.join(repoRoot, 'bin', 'run.js')

function cli(args: string[]): {status: number | null; stdout: string; stderr: string} {
  const r = spawnSync(process.execPath, [BIN, ...args], {cwd: repoRoot, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  // oclif wraps error messages and prefixes the continuation lines with ›: join them back.
  return {status: r.status, stdout: r.stdout, stderr: r.stderr.replace(/\s*\n\s*›\s*/g, ' ')}
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

/** Records calls and answers them from a table (a stand-in for systemctl / sc.exe). */
class RecordingShell implements Shell {
  readonly calls: string[][] = []
  constructor(private readonly answer: (file: string, args: readonly string[]) => ShellResult = () => ({code: 0, stdout: '', stderr: ''})) {}
  async run(file: string, args: readonly string[], _opts?: ShellRunOptions): Promise<ShellResult> {
    this.calls.push([file, ...args])
    return this.answer(file, args)
  }
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<Error> {
  try {
    await p
  } catch (e) {
    expect((e as Error).message).to.match(re)
    return e as Error
  }
  return expect.fail(`expected a rejection matching ${re}`)
}

describe('systemd unit', () => {
  it('runs the current node with bin/run.js run, restarts on failure, keeps CAP_NET_ADMIN and hardening', () => {
    const unit = renderUnit({config: '/etc/spylog'})
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1]
    expect(exec).to.equal(`${process.execPath} ${BIN} run --config /etc/spylog`)
    expect(unit).to.match(/^Restart=on-failure$/m)
    const caps = /^CapabilityBoundingSet=(.*)$/m.exec(unit)![1].split(' ')
    expect(caps).to.include('CAP_NET_ADMIN')
    expect(caps).to.not.include('CAP_SYS_ADMIN')
    for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=full', 'PrivateTmp=yes', 'ProtectKernelModules=yes', 'StateDirectory=spylog', 'WantedBy=multi-user.target']) {
      expect(unit).to.include(`\n${line}\n`)
    }
    expect(unit, 'V8 needs W+X memory').to.not.match(/^MemoryDenyWriteExecute=yes/m)
    expect(unit).to.match(/^RestrictAddressFamilies=.*AF_NETLINK/m)
  })

  it('quotes paths with spaces and escapes % and $ in ExecStart', () => {
    const unit = renderUnit({node: '/opt/node 20/bin/node', bin: '/srv/spy%log/bin/run.js', config: '/etc/$pylog conf'})
    expect(/^ExecStart=(.*)$/m.exec(unit)![1]).to.equal('"/opt/node 20/bin/node" /srv/spy%%log/bin/run.js run --config "/etc/$$pylog conf"')
    expect(() => renderUnit({node: 'node'})).to.throw(ServiceError, /absolute/)
    expect(() => renderUnit({config: '/etc/x\nExecStartPre=/bin/rm'})).to.throw(ServiceError, /line break/)
  })

  it('passes systemd-analyze verify', function () {
    if (!has('systemd-analyze')) this.skip()
    const dir = tempTree({})
    const file = path.join(dir, 'spylog.service')
    fs.writeFileSync(file, renderUnit({config: dir}))
    const r = spawnSync('systemd-analyze', ['verify', file], {encoding: 'utf8'})
    const mine = r.stderr.split('\n').filter((l) => l.includes('spylog.service'))
    expect(mine, r.stderr).to.deep.equal([])
    expect(r.status, r.stderr).to.equal(0)
  })
})

describe('spylog service (systemd)', () => {
  it('install --root writes and enables the unit offline; status; uninstall removes both', function () {
    if (!has('systemctl')) this.skip()
    const root = tempTree({})
    const unit = path.join(root, 'etc', 'systemd', 'system', 'spylog.service')
    const wants = path.join(root, 'etc', 'systemd', 'system', 'multi-user.target.wants', 'spylog.service')

    const before = cli(['service', 'status', '--root', root])
    expect(before.status, before.stderr).to.equal(0)
    expect(before.stdout).to.match(/spylog\.service is not installed/)

    const i = cli(['service', 'install', '--root', root, '--config', '/etc/spylog'])
    expect(i.status, i.stderr).to.equal(0)
    expect(i.stdout).to.include(`Wrote ${unit}`)
    expect(i.stdout).to.match(/enabled offline/)
    expect(fs.readFileSync(unit, 'utf8')).to.match(/^ExecStart=.* run --config \/etc\/spylog$/m)
    expect(fs.lstatSync(wants).isSymbolicLink()).to.equal(true)

    const s = cli(['service', 'status', '--root', root, '--json'])
    expect(s.status, s.stderr).to.equal(0)
    expect(JSON.parse(s.stdout)).to.deep.include({installed: true, enabled: 'enabled', systemd: false, unitPath: unit})
    const h = cli(['service', 'status', '--root', root])
    expect(h.stdout).to.match(/spylog\.service: installed \(.*\), enabled/)

    const st = cli(['service', 'start', '--root', root])
    expect(st.status).to.equal(2)
    expect(st.stderr).to.match(/cannot start a service under --root/)
    expect(st.stderr).to.not.match(/\n\s+at /)

    const u = cli(['service', 'uninstall', '--root', root, '--json'])
    expect(u.status, u.stderr).to.equal(0)
    expect(JSON.parse(u.stdout).ran).to.deep.equal([`systemctl --root=${root} disable spylog.service`])
    expect(fs.existsSync(unit)).to.equal(false)
    expect(fs.existsSync(wants)).to.equal(false)
    expect(cli(['service', 'status', '--root', root, '--json']).stdout).to.include('"installed": false')
  })

  it('without systemd running, writes the unit and says what to run later', async () => {
    const unitDir = tempTree({})
    const shell = new RecordingShell()
    const r = await installUnit({unitDir, booted: false, shell})
    expect(shell.calls).to.deep.equal([])
    expect(fs.existsSync(path.join(unitDir, 'spylog.service'))).to.equal(true)
    expect(r.notes.join('\n')).to.match(/systemd is not running .*systemctl daemon-reload && systemctl enable --now spylog\.service/)
    await rejects(controlUnit({unitDir, booted: false, shell}, 'start'), /cannot start spylog\.service: systemd is not running/)
    const s = await unitStatus({unitDir, booted: false, shell})
    expect(s).to.deep.include({installed: true, systemd: false, enabled: 'disabled'})
    const u = await uninstallUnit({unitDir, booted: false, shell})
    expect(u.notes.join('\n')).to.match(/systemd is not running/)
    expect(fs.existsSync(path.join(unitDir, 'spylog.service'))).to.equal(false)
    expect(shell.calls).to.deep.equal([])
  })

  it('with systemd running: daemon-reload + enable --now, start/stop, status from systemctl show, disable on uninstall', async () => {
    const unitDir = tempTree({})
    const shell = new RecordingShell((_f, args) => args[0] === 'show'
      ? {code: 0, stdout: 'LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=4242\n', stderr: ''}
      : {code: 0, stdout: '', stderr: ''})
    const o = {unitDir, booted: true, shell, systemctl: '/usr/bin/systemctl'}
    const r = await installUnit(o)
    expect(shell.calls).to.deep.equal([['/usr/bin/systemctl', 'daemon-reload'], ['/usr/bin/systemctl', 'enable', '--now', 'spylog.service']])
    expect(r.ran).to.have.length(2)
    await controlUnit(o, 'stop')
    await controlUnit(o, 'start')
    expect(shell.calls.slice(2)).to.deep.equal([['/usr/bin/systemctl', 'stop', 'spylog.service'], ['/usr/bin/systemctl', 'start', 'spylog.service']])
    expect(await unitStatus(o)).to.deep.equal({manager: 'systemd', unitPath: path.join(unitDir, 'spylog.service'), installed: true, systemd: true, enabled: 'enabled', active: 'active', sub: 'running', pid: 4242})
    shell.calls.length = 0
    await uninstallUnit(o)
    expect(shell.calls).to.deep.equal([['/usr/bin/systemctl', 'disable', '--now', 'spylog.service'], ['/usr/bin/systemctl', 'daemon-reload']])
    expect(fs.existsSync(path.join(unitDir, 'spylog.service'))).to.equal(false)
  })

  it('reports a failing systemctl with its message', async () => {
    const unitDir = tempTree({})
    const shell = new RecordingShell(() => ({code: 1, stdout: '', stderr: 'Failed to enable unit: Access denied\n'}))
    await rejects(installUnit({unitDir, booted: true, shell}), /systemctl daemon-reload failed: Failed to enable unit: Access denied/)
  })
})

/** A stand-in for node-windows' Service: records its configuration and answers like the real one. */
function fakeNodeWindows(log: Array<{op: string; config: Record<string, unknown>; dir?: string}>, installed: {value: boolean}): NodeWindowsModule {
  class Service extends EventEmitter {
    constructor(readonly config: Record<string, unknown>) {
      super()
    }
    get exists(): boolean {
      return installed.value
    }
    install(dir?: string): void {
      log.push({op: 'install', config: this.config, dir})
      const ev = installed.value ? 'alreadyinstalled' : 'install'
      installed.value = true
      setImmediate(() => this.emit(ev))
    }
    uninstall(): void {
      log.push({op: 'uninstall', config: this.config})
      const ev = installed.value ? 'uninstall' : 'alreadyuninstalled'
      installed.value = false
      setImmediate(() => this.emit(ev))
    }
  }
  return {Service: Service as unknown as NodeWindowsModule['Service']}
}

const SC_RUNNING = `
SERVICE_NAME: spylog.exe
        TYPE               : 10  WIN32_OWN_PROCESS
        STATE              : 4  RUNNING
                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)
        WIN32_EXIT_CODE    : 0  (0x0)
        SERVICE_EXIT_CODE  : 0  (0x0)
        CHECKPOINT         : 0x0
        WAIT_HINT          : 0x0
        PID                : 5120
        FLAGS              :
`

describe('spylog service (Windows, behind the seams)', () => {
  it('without node-windows: a clear error, from the module and from the CLI', async () => {
    const e = await rejects(loadNodeWindows('node-windows-not-installed-here'), /needs the node-windows package, which is not installed/)
    expect(e).to.be.instanceOf(ServiceError)
    const r = cli(['service', 'install', '--target', 'windows'])
    if (fs.existsSync(path.join(repoRoot, 'node_modules', 'node-windows'))) return // installed (on Windows): nothing to check here
    expect(r.status).to.equal(1)
    expect(r.stderr).to.match(/node-windows package, which is not installed/)
    expect(r.stderr).to.not.match(/\n\s+at /)
  })

  it('installs as LocalSystem from %ProgramData%\\spylog, starts it, and reads its state', async () => {
    const programData = tempTree({'spylog/spylog.lua': '-- config\n'})
    const log: Array<{op: string; config: Record<string, unknown>; dir?: string}> = []
    const installed = {value: false}
    const sc = new RecordingShell((_f, args) => (args[0] === 'queryex' ? (installed.value ? {code: 0, stdout: SC_RUNNING, stderr: ''} : {code: 1060, stdout: '', stderr: ''}) : {code: 0, stdout: '', stderr: ''}))
    const o = {programData, load: async () => fakeNodeWindows(log, installed), shell: sc, node: 'C:\\Program Files\\nodejs\\node.exe'}
    expect(await windowsServiceStatus(o)).to.deep.equal({manager: 'windows', installed: false})
    const r = await installWindowsService(o)
    expect(log).to.have.length(1)
    const c = log[0].config
    expect(c).to.deep.include({name: 'spylog', execPath: 'C:\\Program Files\\nodejs\\node.exe', script: path.join(programData, 'spylog', 'service', 'launch.mjs')})
    expect(c.env).to.deep.equal([{name: 'SPYLOG_CONFIG', value: path.join(programData, 'spylog')}])
    expect(c, 'LocalSystem: no account configured').to.not.have.any.keys('logOnAs', 'user', 'allowServiceLogon')
    expect(log[0].dir).to.equal(path.join(programData, 'spylog', 'service'))
    expect(sc.calls).to.deep.include(['sc.exe', 'start', 'spylog.exe'])
    expect(r.notes).to.deep.equal([])
    expect(await windowsServiceStatus(o)).to.deep.equal({manager: 'windows', installed: true, state: 'running', pid: 5120})
    // Installing again is not an error.
    expect((await installWindowsService(o)).notes).to.deep.equal(['the service was already installed'])
  })

  it('the launcher runs bin/run.js with run --config', () => {
    const dir = tempTree({'fake-bin.mjs': 'process.stdout.write(JSON.stringify(process.argv.slice(2)))\n'})
    const launcher = path.join(dir, 'launch.mjs')
    fs.writeFileSync(launcher, launcherSource(path.join(dir, 'fake-bin.mjs'), 'C:\\ProgramData\\spylog'))
    const r = spawnSync(process.execPath, [launcher, '--whatever-winsw-adds'], {encoding: 'utf8'})
    expect(r.status, r.stderr).to.equal(0)
    expect(JSON.parse(r.stdout)).to.deep.equal(['run', '--config', 'C:\\ProgramData\\spylog'])
  })

  it('uninstall removes the service and leaves no spylog firewall rule behind', async () => {
    const programData = tempTree({})
    const fw = new FakeWindowsFirewall()
    const runner = new WindowsFirewallRunner({name: 'fw', origin: {file: '', line: 0}, parameters: {}, options: {}}, {log: new SinkLogger('error', []), platform: 'win32', dataDir: path.join(programData, 'spylog', 'data')}, {shell: fw, flushInterval: 0})
    await runner.start()
    for (const a of ['203.0.113.1', '203.0.113.2', '2001:db8::9']) await runner.run('ban', {ticket: {uuid: a, jail: 'rdp', filter: 'rdp', id: a, isAddress: true, time: 0, bantime: 60, banCount: 0, data: {}, failures: []}, params: {}})
    await runner.stop()
    fw.rules.push({id: 'CoreNet-DHCP-In', displayName: 'Core Networking - DHCP (DHCP-In)', group: '@FirewallAPI.dll,-25000', enabled: true, action: 'Allow', remote: []})
    expect(fw.table().size).to.equal(2)
    const log: Array<{op: string; config: Record<string, unknown>}> = []
    const installed = {value: true}
    const shell: Shell = {run: (f, a, opts) => fw.run(f, a, opts)}
    const r = await uninstallWindowsService({programData, load: async () => fakeNodeWindows(log, installed), shell})
    expect(log.map((l) => l.op)).to.deep.equal(['uninstall'])
    expect(r.ran).to.deep.equal(['node-windows uninstall', 'firewall clear (2 rules removed)'])
    expect(fw.table().size).to.equal(0)
    expect(fw.rules.map((x) => x.displayName)).to.deep.equal(['Core Networking - DHCP (DHCP-In)'])
    expect(fs.existsSync(path.join(programData, 'spylog', 'data', 'windows-firewall.json'))).to.equal(false)
    // --keep-rules leaves them.
    installed.value = true
    const k = await uninstallWindowsService({programData, load: async () => fakeNodeWindows(log, installed), shell, keepRules: true})
    expect(k.notes.join('\n')).to.match(/kept spylog's firewall rules/)
  })
})
