import fs from 'node:fs'
import path from 'node:path'
import {expect} from 'chai'
import type {ActionConfig, ParamValue} from '../src/engine/config/model.js'
import {ActionError} from '../src/engine/actions/action.js'
import {LogRunner} from '../src/engine/actions/builtin/log.js'
import {splitLuaArgs} from '../src/engine/actions/argv.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import type {Ticket} from '../src/engine/types.js'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import {configErrors} from './support/config.js'
import {tempTree} from './support/files.js'

const ticket: Ticket = {
  uuid: '6f1c2d1e-0000-4000-8000-000000000001', jail: 'sshd', filter: 'sshd-auth', id: '203.0.113.5', isAddress: true, time: 1_700_000_000, bantime: 600, banCount: 2,
  data: {user: 'root'}, failures: [
    {filter: 'sshd-auth', id: '203.0.113.5', time: 1_699_999_990, data: {}, lines: ['Failed password for root from 203.0.113.5']},
    {filter: 'sshd-auth', id: '203.0.113.5', time: 1_699_999_995, data: {}, lines: ['Failed password for root from 203.0.113.5 port 2222']},
  ],
}

function action(options: Record<string, ParamValue>, banArgs?: string): ActionConfig {
  return {
    name: 'banlog', origin: {file: '/etc/spylog/actions/log.lua', line: 3}, parameters: {}, options,
    ban: {kind: 'module', module: 'spylog.actions.log', args: banArgs}, unban: {kind: 'module', module: 'spylog.actions.log'},
    builtin: {kind: 'log', variant: 'log', features: []},
  }
}

describe('log action', () => {
  it('writes ban and unban lines through the spylog log at the chosen level', async () => {
    const lines: string[] = []
    const runner = new LogRunner(action({level: 'warning'}), {log: new SinkLogger('info', [memorySink(lines)])})
    await runner.run('ban', {ticket, params: {}})
    await runner.run('unban', {ticket, params: {}})
    expect(lines).to.have.length(2)
    expect(lines[0]).to.match(/ WARNING banlog: ban 203\.0\.113\.5 \(jail sshd, filter sshd-auth, 2 failures, bantime 600s\)$/)
    expect(lines[1]).to.match(/ WARNING banlog: unban 203\.0\.113\.5 /)
  })

  it('fills the tags of its argument string', async () => {
    const lines: string[] = []
    const runner = new LogRunner(action({}, '"<JAIL> banned <HOST> (user <user>, port <port>)" after <FAILURES> failures <unknown>'), {log: new SinkLogger('info', [memorySink(lines)])})
    await runner.run('ban', {ticket, params: {port: 22}})
    expect(lines[0]).to.match(/ NOTICE sshd banned 203\.0\.113\.5 \(user root, port 22\) after 2 failures <unknown>$/)
    expect(splitLuaArgs('"a ""quoted"" word" b=c d="e f"', {multiline: true}).args).to.deep.equal(['a "quoted" word', 'b=c', 'd=e f'])
    expect(splitLuaArgs('\n  "subject <HOST>"\n\t"body\nline 2" x\r\n', {multiline: true}).args).to.deep.equal(['subject <HOST>', 'body\nline 2', 'x'])
  })

  it('appends to a file of its own, one line per job even when a capture holds a newline', async () => {
    const dir = tempTree({})
    const runner = new LogRunner(action({file: 'bans/bans.log'}, '"<JAIL> <HOST> <user>"'), {log: new SinkLogger('info', []), dataDir: dir})
    await runner.run('ban', {ticket: {...ticket, data: {user: 'evil\n2024-01-01 00:00:00 forged line'}}, params: {}})
    await runner.run('ban', {ticket: {...ticket, id: '198.51.100.1'}, params: {}})
    const text = fs.readFileSync(path.join(dir, 'bans', 'bans.log'), 'utf8')
    const got = text.trimEnd().split('\n')
    expect(got).to.have.length(2)
    expect(got[0]).to.match(/spylog\[\d+\]: NOTICE sshd 203\.0\.113\.5 evil ⏎ 2024-01-01/)
    expect(got[1]).to.match(/NOTICE sshd 198\.51\.100\.1 root$/)
  })

  it('rejects a bad level with the file and action name, and reports an unwritable file as retryable', async () => {
    expect(() => new LogRunner(action({level: 'loud'}), {log: new SinkLogger('info', [])})).to.throw(ActionError, /\/etc\/spylog\/actions\/log\.lua:3: action "banlog": option level: "loud"/)
    const dir = tempTree({'file': 'x'})
    const runner = new LogRunner(action({file: 'file/sub.log'}), {log: new SinkLogger('info', []), dataDir: dir})
    const err = await runner.run('ban', {ticket, params: {}}).then(() => undefined, (e: unknown) => e)
    expect(err).to.be.instanceOf(ActionError)
    expect((err as ActionError).retry).to.equal(true)
    expect((err as Error).message).to.include('cannot write')
  })
})

describe('Lua configurations naming built-in action modules', () => {
  it('mark ACTION{}s that call @spylog.actions.<kind> as built-ins, and reject unknown modules by name', () => {
    const dir = tempTree({
      'spylog.lua': '',
      'actions/a.lua': `
ACTION{"banlog", ban = {"@spylog.actions.log", [["<JAIL> <HOST>"]]}, unban = "@spylog.actions.log", options = {level = 'info'}}
ACTION{"hook", ban = "@spylog.actions.webhook", options = {url = 'http://127.0.0.1:9/x'}}
ACTION{"fw", ban = "@spylog.actions.firewall", unban = "@spylog.actions.firewall"}
ACTION{"cmd", ban = "echo <HOST>"}
`,
    })
    const cfg = loadLuaConfig(dir)
    const a = new Map(cfg.actions.map((x) => [x.name, x]))
    expect(a.get('banlog')!.builtin).to.deep.equal({kind: 'log', variant: 'spylog', features: []})
    expect(a.get('hook')!.builtin).to.deep.include({kind: 'webhook'})
    expect(a.get('fw')!.builtin).to.deep.include({kind: 'firewall'})
    expect(a.get('cmd')!.builtin).to.equal(undefined)

    const bad = tempTree({
      'spylog.lua': '',
      'actions/b.lua': `
ACTION{"growl", ban = "@spylog.actions.growl"}
ACTION{"typo", ban = "@spylog.actions.webhok"}
ACTION{"mixed", ban = "@spylog.actions.log", unban = "@spylog.actions.mail"}
ACTION{"half", ban = "@spylog.actions.firewall", unban = "echo <HOST>"}
`,
    })
    const errs = configErrors(bad, () => loadLuaConfig(bad))
    expect(errs.join('\n')).to.match(/actions\/b\.lua:2: .*unknown action module '@spylog\.actions\.growl'/)
    expect(errs.join('\n')).to.match(/actions\/b\.lua:3: .*did you mean '@spylog\.actions\.webhook'\?/)
    expect(errs.join('\n')).to.match(/actions\/b\.lua:4: .*ban and unban call different built-in actions/)
    expect(errs.join('\n')).to.match(/actions\/b\.lua:5: .*the other runs a command/)
  })
})
