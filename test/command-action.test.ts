import {expect} from 'chai'
import {randomUUID} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {ActionError, type ActionContext, type ActionFactory, type ActionRunner} from '../src/engine/actions/action.js'
import {ArgvError, joinCommandLine, splitCommandLine, splitScript} from '../src/engine/actions/argv.js'
import {CommandRunner} from '../src/engine/actions/command.js'
import {createActionRunner} from '../src/engine/actions/factory.js'
import {ActionQueue} from '../src/engine/actions/queue.js'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import type {ActionConfig} from '../src/engine/config/model.js'
import {ConfigError} from '../src/engine/fail2ban/errors.js'
import {memorySink, nullLogger, SinkLogger} from '../src/engine/log/logger.js'
import {Store} from '../src/engine/store/store.js'
import type {Ticket} from '../src/engine/types.js'
import {tempTree} from './support/files.js'
import {alive, waitFor as until} from './support/wait.js'

/** A tiny program that appends the arguments it received (after the output file) as one JSON line. */
const RECORDER = `import fs from 'node:fs'
const [out, ...rest] = process.argv.slice(2)
fs.appendFileSync(out, JSON.stringify(rest) + '\\n')
`

/** Starts a grandchild that sleeps, writes its pid, and sleeps itself. */
const HANGER = `import {spawn} from 'node:child_process'
import fs from 'node:fs'
const g = spawn('sleep', ['300'], {stdio: 'ignore'})
fs.writeFileSync(process.argv[2], String(g.pid))
setTimeout(() => {}, 300000)
`

function ticket(id: string, data: Record<string, unknown> = {}, more: Partial<Ticket> = {}): Ticket {
  return {
    uuid: randomUUID(), jail: 'sshd', filter: 'sshd-auth', id, isAddress: true, time: 1_700_000_000, bantime: 600, banCount: 0, data,
    failures: [{filter: 'sshd-auth', id, time: 1_700_000_000, data, lines: ['first failure', 'Invalid user x from 192.0.2.1']}],
    ...more,
  }
}

const ctx: ActionContext = {log: nullLogger}

function action(a: Partial<ActionConfig> & {name: string}): ActionConfig {
  return {origin: {file: '/etc/spylog/actions/test.lua', line: 3}, parameters: {}, options: {}, ...a}
}

describe('argv splitting', () => {
  it('splits at blanks and groups quoted text without expanding anything', () => {
    expect(splitCommandLine('netsh ipsec static add filter description="<DATE> <FILTER>" x')).to.deep.equal(['netsh', 'ipsec', 'static', 'add', 'filter', 'description=<DATE> <FILTER>', 'x'])
    expect(splitCommandLine(`a "say ""hi""" 'it''s' "" $HOME *.log ~ $(id)`)).to.deep.equal(['a', 'say "hi"', 'its', '', '$HOME', '*.log', '~', '$(id)'])
    expect(splitCommandLine('C:\\tools\\block.exe \\"q\\" "a\\"b"')).to.deep.equal(['C:\\tools\\block.exe', '"q"', 'a"b'])
    expect(splitCommandLine('"C:\\Program Files\\x\\\\" next')).to.deep.equal(['C:\\Program Files\\x\\', 'next'])
    expect(splitCommandLine('  a\tb \n c  ')).to.deep.equal(['a', 'b', 'c'])
  })

  it('round-trips through joinCommandLine', () => {
    const cases = [['a', 'b c', '', 'd"e', 'f\\', 'g\\"h', "i'j", 'k\nl']]
    for (const argv of cases) expect(splitCommandLine(joinCommandLine(argv))).to.deep.equal(argv)
  })

  it('rejects an unterminated quote with its position', () => {
    expect(() => splitCommandLine('a "b c')).to.throw(ArgvError, 'unterminated "quote"')
    expect(() => splitCommandLine("a 'b")).to.throw(ArgvError, "unterminated 'quote'")
  })

  it('cuts fail2ban scripts at new lines, && and ; and refuses what needs a shell', () => {
    expect(splitScript('iptables -N f2b\n  iptables -A f2b -j RETURN && iptables -I INPUT -j f2b; echo "a;b && c"')).to.deep.equal([
      {argv: ['iptables', '-N', 'f2b'], after: 'and'},
      {argv: ['iptables', '-A', 'f2b', '-j', 'RETURN'], after: 'and'},
      {argv: ['iptables', '-I', 'INPUT', '-j', 'f2b'], after: 'and'},
      {argv: ['echo', 'a;b && c'], after: 'always'},
    ])
    for (const [s, bad] of [['echo <ip> >> /etc/hosts.deny', '>'], ['a | b', '|'], ['a || b', '||'], ['echo $(id)', '$('], ['echo `id`', '`'], ['echo $HOME', '$H'], ['a &', '&']]) {
      expect(() => splitScript(s!), s).to.throw(ArgvError, `shell syntax ${JSON.stringify(bad)} needs a shell`)
    }
    expect(splitScript("echo '$(id) | x' \"a>b\"")).to.deep.equal([{argv: ['echo', '$(id) | x', 'a>b'], after: 'and'}])
  })
})

describe('command actions', function () {
  let dir: string
  let rec: string
  let out: string
  const params = () => ({node: process.execPath, rec, out})
  const recorded = (): string[][] => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]) : [])

  beforeEach(() => {
    dir = tempTree({'record.mjs': RECORDER, 'hang.mjs': HANGER})
    rec = path.join(dir, 'record.mjs')
    out = path.join(dir, `out-${randomUUID()}.jsonl`)
  })

  it('passes captured text as one literal argument: no quote, $(), backquote or blank escapes it', async () => {
    const pwned = path.join(dir, 'pwned')
    const runner = new CommandRunner(action({name: 'rec', ban: {kind: 'command', command: '"<node>" "<rec>" "<out>" user=<user> <user> "quoted <user>" <HOST>'}, parameters: params()}), ctx)
    const hostile = [
      `x"; touch ${pwned}; "`, `$(touch ${pwned})`, `\`touch ${pwned}\``, `a b c`, `' ; touch ${pwned} #`, `<HOST>`, `--help`, `x\ntouch ${pwned}`, `&& touch ${pwned}`, `| touch ${pwned}`, `C:\\"x"\\`, '',
    ]
    for (const user of hostile) await runner.run('ban', {ticket: ticket('192.0.2.1', {user}), params: {}})
    const got = recorded()
    expect(got).to.have.length(hostile.length)
    hostile.forEach((user, i) => expect(got[i], JSON.stringify(user)).to.deep.equal([`user=${user}`, user, `quoted ${user}`, '192.0.2.1']))
    expect(fs.existsSync(pwned)).to.equal(false)
    // a capture in the program position is not used: the program comes from parameters only
    const prog = new CommandRunner(action({name: 'prog', ban: {kind: 'command', command: '<user> "<rec>" "<out>"'}, parameters: params()}), ctx)
    let err: unknown
    try {
      await prog.run('ban', {ticket: ticket('192.0.2.1', {user: process.execPath}), params: {}})
    } catch (e) {
      err = e
    }
    expect(err).to.be.instanceOf(ActionError)
    expect((err as ActionError).retry).to.equal(false)
    expect(recorded()).to.have.length(hostile.length)
  })

  it('fills the tags of lua-spylog actions, and gives the unban the ban\'s UUID', async () => {
    const cfg = action({
      name: 'fw',
      ban: {kind: 'command', command: '"<node>" "<rec>" "<out>" ban name="Spylog <UUID>" description="<DATE> <FILTER> <JAIL> <BANTIME>" remoteip=<HOST>/<NET> localport=<PORT> protocol=<PROTOCOL> list=<FILTERLIST> <MSG> <nosuch>'},
      unban: {kind: 'command', command: '"<node>" "<rec>" "<out>" unban "name=Spylog <BAN_UUID>"'},
      unique: 'fw <HOST>',
      parameters: {...params(), filterlist: 'BlockList', net: '32', port: 'any', protocol: 'any'},
    })
    const runner = new CommandRunner(cfg, ctx)
    expect(runner.reversible).to.equal(true)
    const t = ticket('192.0.2.7')
    await runner.run('ban', {ticket: t, params: {port: '22', protocol: 'tcp'}})
    await runner.run('unban', {ticket: t, params: {}})
    const d = new Date(t.time * 1000)
    const p = (n: number) => String(n).padStart(2, '0')
    const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
    expect(recorded()).to.deep.equal([
      ['ban', `name=Spylog ${t.uuid}`, `description=${date} sshd-auth sshd 600`, 'remoteip=192.0.2.7/32', 'localport=22', 'protocol=tcp', 'list=BlockList', 'first failure', ''],
      ['unban', `name=Spylog ${t.uuid}`],
    ])
    expect(runner.unique('ban', {ticket: t, params: {}})).to.equal('fw 192.0.2.7')
    const net = ticket('2001:db8::/64', {}, {})
    await runner.run('ban', {ticket: net, params: {}})
    expect(recorded()[2]![3]).to.equal('remoteip=2001:db8::/64')
  })

  it('reads the program and argument string form of the Lua reader, with parameters of the jail', async () => {
    const cfgDir = tempTree({
      'actions/rec.lua': `ACTION{"rec",
  ban = { [[${process.execPath}]], { [[${rec}]], [[${out}]], "add=<HOST>,<JAIL>", "<user>" } };
  parameters = { category = 'ssh' };
}`,
    })
    const cfg = loadLuaConfig(cfgDir).actions.find((a) => a.name === 'rec')!
    const runner = createActionRunner(cfg, ctx, {})
    expect(runner.reversible).to.equal(false)
    await runner.run('ban', {ticket: ticket('192.0.2.8', {user: 'a "b" c'}), params: {}})
    expect(recorded()).to.deep.equal([['add=192.0.2.8,sshd', 'a "b" c']])
  })

  it('fails a job with the exit status and the end of stderr', async () => {
    const runner = new CommandRunner(action({name: 'bad', ban: {kind: 'command', command: '"<node>" -e "process.stderr.write(\'boom: \' + process.argv[1]); process.exit(3)" <HOST>'}, parameters: params()}), ctx)
    let err: unknown
    try {
      await runner.run('ban', {ticket: ticket('192.0.2.9'), params: {}})
    } catch (e) {
      err = e
    }
    expect(err).to.be.instanceOf(ActionError)
    expect((err as Error).message).to.equal(`"${process.execPath}" exited with status 3: boom: 192.0.2.9`)
    const missing = new CommandRunner(action({name: 'missing', ban: {kind: 'command', command: '/nonexistent/spylog-tool <HOST>'}}), ctx)
    let err2: unknown
    try {
      await missing.run('ban', {ticket: ticket('192.0.2.9'), params: {}})
    } catch (e) {
      err2 = e
    }
    expect((err2 as Error).message).to.equal('cannot run "/nonexistent/spylog-tool": program not found')
  })

  it('kills a command that outlives its timeout, with the processes it started', async () => {
    const pidFile = path.join(dir, 'grandchild.pid')
    const runner = new CommandRunner(action({name: 'slow', ban: {kind: 'command', command: `"<node>" "${path.join(dir, 'hang.mjs')}" "${pidFile}"`}, parameters: params(), options: {timeout: 1500}}), ctx)
    let err: unknown
    try {
      await runner.run('ban', {ticket: ticket('192.0.2.10'), params: {}})
    } catch (e) {
      err = e
    }
    expect((err as Error).message).to.match(/did not finish within 1500 ms and was killed$/)
    // the grandchild may not have been started when the timeout hit on a loaded machine
    if (fs.existsSync(pidFile)) {
      const pid = Number(fs.readFileSync(pidFile, 'utf8'))
      await until('the grandchild to die', () => !alive(pid))
    }
  })

  it('logs what it would run in a dry run and runs nothing', async () => {
    const lines: string[] = []
    const runner = new CommandRunner(action({name: 'rec', ban: {kind: 'command', command: '"<node>" "<rec>" "<out>" <HOST> "<user>"'}, parameters: params()}), {log: new SinkLogger('info', [memorySink(lines)]), dryRun: true})
    await runner.run('ban', {ticket: ticket('192.0.2.11', {user: 'two words'}), params: {}})
    expect(fs.existsSync(out)).to.equal(false)
    expect(lines).to.have.length(1)
    expect(lines[0]).to.contain(`[sshd] action "rec" ban 192.0.2.11: would run: ${process.execPath} ${rec} ${out} 192.0.2.11 "two words"`)
  })

  it('runs fail2ban action.d commands: parameters expanded before splitting, ban values after', async () => {
    const cfg = action({
      name: 'hook', origin: {file: '/etc/fail2ban/action.d/hook.conf', line: 0},
      ban: {kind: 'command', command: '<recorder> one <ip> <name>\n<recorder> two "<F-USER>" && <recorder> three <port>'},
      unban: {kind: 'command', command: '<recorder> unban <ip>'},
      parameters: {recorder: `"${process.execPath}" "${rec}" "${out}"`, port: 'ssh'},
    })
    const runner = createActionRunner(cfg, ctx, {})
    await runner.run('ban', {ticket: ticket('192.0.2.12', {user: 'root; id'}), params: {name: 'sshd-custom'}})
    await runner.run('unban', {ticket: ticket('192.0.2.12'), params: {}})
    expect(recorded()).to.deep.equal([['one', '192.0.2.12', 'sshd-custom'], ['two', 'root; id'], ['three', 'ssh'], ['unban', '192.0.2.12']])
    const shell = action({name: 'hostsdeny', origin: {file: '/etc/fail2ban/action.d/hostsdeny.conf', line: 0}, ban: {kind: 'command', command: 'echo <ip> >> <file>'}})
    expect(() => createActionRunner(shell, ctx, {})).to.throw(ConfigError, /^\/etc\/fail2ban\/action.d\/hostsdeny.conf: ban: action "hostsdeny": shell syntax ">" needs a shell/)
  })

  it('dispatches built-in and module actions to the registered factories, naming what is missing', () => {
    const made: string[] = []
    const fake = (kind: string): ActionFactory => (cfg) => {
      made.push(`${kind}:${cfg.name}`)
      return {name: cfg.name, unique: () => 'k', run: async () => undefined} satisfies ActionRunner
    }
    const builtins = {firewall: fake('firewall'), mail: fake('mail'), growl: fake('growl')}
    const fw = createActionRunner(action({name: 'iptables-multiport', builtin: {kind: 'firewall', variant: 'iptables', features: ['multiport']}, ban: {kind: 'module', module: 'spylog.actions.firewall'}, unban: {kind: 'module', module: 'spylog.actions.firewall'}}), ctx, builtins)
    expect(fw.reversible).to.equal(undefined)
    const mail = createActionRunner(action({name: 'mail', ban: {kind: 'module', module: 'spylog.actions.mail', args: '"subject"'}}), ctx, builtins)
    expect([mail.reversible, mail.reapply]).to.deep.equal([false, false])
    const mail2 = createActionRunner(action({name: 'mail2', ban: {kind: 'module', module: 'spylog.actions.mail'}, unban: {kind: 'module', module: 'spylog.actions.mail'}}), ctx, builtins)
    expect([mail2.reversible, mail2.reapply]).to.deep.equal([undefined, false])
    expect(fw.reapply).to.equal(undefined)
    createActionRunner(action({name: 'g', ban: {kind: 'module', module: 'spylog.actions.growl'}}), ctx, builtins)
    expect(made).to.deep.equal(['firewall:iptables-multiport', 'mail:mail', 'mail:mail2', 'growl:g'])
    expect(() => createActionRunner(action({name: 'fw2', builtin: {kind: 'firewall', variant: 'nftables', features: []}}), ctx, {})).to.throw(ConfigError, '/etc/spylog/actions/test.lua:3: action "fw2": the built-in firewall action (nftables) is not available in this build')
    expect(() => createActionRunner(action({name: 'x', ban: {kind: 'module', module: 'spylog.actions.nosuch'}}), ctx, builtins)).to.throw(ConfigError, 'action "x": no action module "@spylog.actions.nosuch"')
    expect(() => createActionRunner(action({name: 'y', ban: {kind: 'command', command: 'a "b'}}), ctx, builtins)).to.throw(ConfigError, '/etc/spylog/actions/test.lua:3: ban: action "y": unterminated "quote"')
    expect(() => createActionRunner(action({name: 'z', ban: {kind: 'command', command: 'C:\\tools\\block.cmd <HOST>'}}), ctx, builtins)).to.throw(ConfigError, 'action "z": "C:\\tools\\block.cmd" is a batch file, which only cmd.exe runs')
  })

  it('bans and unbans through the queue with a real command', async () => {
    const runner = createActionRunner(action({
      name: 'rec', ban: {kind: 'command', command: '"<node>" "<rec>" "<out>" ban <HOST> <JAIL>'}, unban: {kind: 'command', command: '"<node>" "<rec>" "<out>" unban <HOST> <JAIL>'}, parameters: params(),
    }), ctx, {})
    const q = new ActionQueue({store: Store.memory(), log: nullLogger, runners: new Map([['rec', runner]])})
    await q.start()
    try {
      await q.submit({...ticket('192.0.2.13'), time: Date.now() / 1000, bantime: 0.5}, [{name: 'rec', params: {}}])
      await until('the ban and the unban', () => recorded().length === 2)
      expect(recorded()).to.deep.equal([['ban', '192.0.2.13', 'sshd'], ['unban', '192.0.2.13', 'sshd']])
    } finally {
      await q.stop()
    }
  })
})
