/**
 * The Windows Firewall action on Linux: the runner drives a fake Windows Firewall behind the
 * Shell seam (test/fixtures/windows-firewall/fake-firewall.ts), which records every call and
 * keeps the rule table — the tests' model of the firewall. Asserted: rules of at most 1,000
 * addresses, never an empty rule, grouping and splitting, batching, loopback and allow-listed
 * addresses kept out, unban from the middle of a rule, restart rebuild, command-line bounds,
 * refusal of ids that are not addresses, and the netsh backend. `spylog firewall list|clear` run
 * as the built CLI against the fake as a program.
 */
import {expect} from 'chai'
import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {ActionError} from '../src/engine/actions/action.js'
import {FIREWALL_SCRIPT, readFirewall, WindowsFirewallRunner, type WindowsFirewallOptions, createWindowsFirewallAction, netshArgs} from '../src/engine/actions/windows/firewall.js'
import {checkEntry, normaliseReadBack, RuleBook} from '../src/engine/actions/windows/rules.js'
import {commandLineLength, ProcessShell, type Shell, type ShellResult} from '../src/engine/actions/windows/shell.js'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import type {ActionConfig} from '../src/engine/config/model.js'
import {SinkLogger} from '../src/engine/log/logger.js'
import type {Ticket} from '../src/engine/types.js'
import {FakeWindowsFirewall, type FakeState} from './fixtures/windows-firewall/fake-firewall.js'
import {repoRoot, tempTree} from './support/files.js'
import {waitFor as until} from './support/wait.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const FIXTURES = path.join(repoRoot, 'test', 'fixtures', 'windows-firewall')

const CFG: ActionConfig = {name: 'windows-firewall', origin: {file: 'test', line: 0}, parameters: {}, options: {}}

/** WHITE_IP as the daemon gives it: loopback plus a test allow-list. */
function neverBan(list: string[]): (id: string) => boolean {
  const nets = list.map((c) => ipaddr.parseCIDR(c.includes('/') ? c : `${c}/${c.includes(':') ? 128 : 32}`))
  return (id) => {
    let a: ipaddr.IPv4 | ipaddr.IPv6
    try {
      a = ipaddr.process(id.split('/')[0])
    } catch {
      return false
    }
    if (a.range() === 'loopback') return true
    return nets.some(([n, l]) => n.kind() === a.kind() && a.match(n, l))
  }
}

interface Harness {
  fw: FakeWindowsFirewall
  runner: WindowsFirewallRunner
  lines: string[]
  dataDir: string
}

function harness(opts: Partial<WindowsFirewallOptions> & {fw?: FakeWindowsFirewall; dataDir?: string; allow?: string[]; dryRun?: boolean} = {}): Harness {
  const fw = opts.fw ?? new FakeWindowsFirewall()
  const lines: string[] = []
  const dataDir = opts.dataDir ?? tempTree({})
  const log = new SinkLogger('debug', [(l) => lines.push(l)])
  const runner = new WindowsFirewallRunner(CFG, {log, platform: 'win32', neverBan: neverBan(opts.allow ?? ['10.0.0.0/8', '2001:db8:ffff::/48']), dataDir, dryRun: opts.dryRun}, {shell: fw, flushInterval: 20, ...opts})
  return {fw, runner, lines, dataDir}
}

let uuid = 0
function ticket(id: string, jail = 'sshd', isAddress = true): Ticket {
  return {uuid: `u${++uuid}`, jail, filter: jail, id, isAddress, time: 0, bantime: 600, banCount: 0, data: {}, failures: []}
}
const ban = (r: WindowsFirewallRunner, id: string, jail = 'sshd'): Promise<void> => r.run('ban', {ticket: ticket(id, jail), params: {}})
const unban = (r: WindowsFirewallRunner, id: string, jail = 'sshd'): Promise<void> => r.run('unban', {ticket: ticket(id, jail), params: {}})

/** n distinct public IPv4 addresses (198.18.0.0/15 and up: never in the allow-list). */
function v4s(n: number, base = 0): string[] {
  return Array.from({length: n}, (_, i) => {
    const k = base + i
    return `198.${18 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`
  })
}
function v6s(n: number, base = 0): string[] {
  return Array.from({length: n}, (_, i) => `2001:db8:${(base + i + 1).toString(16)}::1`)
}

/** Asserts the invariants every state of the firewall must keep. */
function assertHealthy(fw: FakeWindowsFirewall): void {
  expect(fw.violations, fw.violations.join('\n')).to.deep.equal([])
  for (const [name, addrs] of fw.table()) {
    expect(addrs.length, name).to.be.within(1, 1000)
    expect(new Set(addrs).size, `${name} duplicates`).to.equal(addrs.length)
  }
  const all = fw.blocked()
  expect(new Set(all).size, 'an address in two rules').to.equal(all.length)
  for (const a of ['127.0.0.1', '::1', '10.1.2.3', '0.0.0.0']) expect(fw.blocks(a), a).to.equal(false)
}

async function expectActionError(p: Promise<unknown>, match: RegExp, retry: boolean): Promise<void> {
  try {
    await p
  } catch (e) {
    expect(e).to.be.instanceOf(ActionError)
    expect((e as ActionError).message).to.match(match)
    expect((e as ActionError).retry).to.equal(retry)
    return
  }
  expect.fail(`expected an ActionError matching ${match}`)
}

/** A fake that holds every call until released: to see what accumulates during a write. */
class GatedShell implements Shell {
  private gates: Array<() => void> = []
  constructor(readonly inner: FakeWindowsFirewall) {}
  held = 0
  async run(file: string, args: readonly string[], opts?: {input?: string}): Promise<ShellResult> {
    this.held++
    await new Promise<void>((r) => this.gates.push(r))
    return this.inner.run(file, args, opts)
  }
  release(): void {
    for (const g of this.gates.splice(0)) g()
  }
}

describe('Windows Firewall: address checks', () => {
  it('accepts literal addresses and networks in canonical form', () => {
    expect(checkEntry('203.0.113.5')).to.deep.equal({text: '203.0.113.5', family: 'v4'})
    expect(checkEntry('2001:DB8:0:0::7')).to.deep.equal({text: '2001:db8::7', family: 'v6'})
    expect(checkEntry('::ffff:203.0.113.5')).to.deep.equal({text: '203.0.113.5', family: 'v4'})
    expect(checkEntry('198.51.100.77/24')).to.deep.equal({text: '198.51.100.0/24', family: 'v4'})
    expect(checkEntry('2001:db8:1:2:3::/64')).to.deep.equal({text: '2001:db8:1:2::/64', family: 'v6'})
    expect(checkEntry('203.0.113.5/32')).to.deep.equal({text: '203.0.113.5', family: 'v4'})
  })

  it('refuses loopback, unspecified, multicast, link-local and too-wide networks', () => {
    for (const [id, why] of [
      ['127.0.0.1', 'loopback'], ['127.9.9.9', 'loopback'], ['::1', 'loopback'], ['::ffff:127.0.0.1', 'loopback'],
      ['0.0.0.0', 'unspecified'], ['::', 'unspecified'], ['224.0.0.1', 'multicast'], ['ff02::1', 'multicast'],
      ['fe80::1', 'link-local'], ['169.254.1.1', 'link-local'], ['0.0.0.0/0', 'network too wide'], ['::/0', 'network too wide'],
      ['126.0.0.0/7', 'network too wide'], ['127.0.0.0/8', 'loopback'], ['::/127', 'loopback'],
    ]) expect(checkEntry(id), id).to.equal(why)
  })

  it('refuses anything that is not a literal address', () => {
    for (const id of ['', 'any', 'Any', 'LocalSubnet', 'example.com', '1.2.3.4,5.6.7.8', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4\n', '1.2.3',
      '01.2.3.4', '1.2.3.4/33', '1.2.3.4/-1', '1.2.3.4/24/8', '1.2.3.4-1.2.3.9', "1.2.3.4'; Remove-NetFirewallRule -All; '",
      '$(Stop-Computer)', '`$x', '1.2.3.4"', '::1%eth0', '2001:db8::1\u0000', 'x'.repeat(100)]) {
      expect(checkEntry(id), JSON.stringify(id)).to.equal('not an address')
    }
  })

  it('reads back the forms Windows reports', () => {
    expect(normaliseReadBack('203.0.113.5/255.255.255.255')).to.equal('203.0.113.5')
    expect(normaliseReadBack('192.0.2.0/255.255.255.0')).to.equal('192.0.2.0/24')
    expect(normaliseReadBack('2001:db8::5-2001:db8::5')).to.equal('2001:db8::5')
    expect(normaliseReadBack('2001:db8:1::/64')).to.equal('2001:db8:1::/64')
    expect(normaliseReadBack('203.0.113.5')).to.equal('203.0.113.5')
    for (const x of ['Any', 'LocalSubnet', '192.0.2.1-192.0.2.9', '192.0.2.0/255.0.255.0', '']) expect(normaliseReadBack(x), x).to.equal(undefined)
  })
})

describe('Windows Firewall: rule book', () => {
  it('fills the lowest rule with a free slot, deletes emptied rules, reuses freed slots', () => {
    const b = new RuleBook({capacity: {v4: 3, v6: 2}})
    const add = (a: string): string => b.add(checkEntry(a) as {text: string; family: 'v4' | 'v6'})
    expect(['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].map(add)).to.deep.equal(['spylog-v4-0001', 'spylog-v4-0001', 'spylog-v4-0001', 'spylog-v4-0002'])
    expect(add('2001:db8::1')).to.equal('spylog-v6-0001')
    let ops = b.plan()
    expect(ops.map((o) => [o.op, o.name, o.op === 'set' && o.create])).to.deep.equal([['set', 'spylog-v4-0001', true], ['set', 'spylog-v4-0002', true], ['set', 'spylog-v6-0001', true]])
    b.commit(ops)
    expect(b.pending).to.equal(false)
    b.remove('198.51.100.2')
    b.remove('198.51.100.4')
    ops = b.plan()
    expect(ops).to.deep.equal([
      {op: 'set', name: 'spylog-v4-0001', family: 'v4', create: false, addresses: ['198.51.100.1', '198.51.100.3']},
      {op: 'delete', name: 'spylog-v4-0002'},
    ])
    b.commit(ops)
    expect(add('198.51.100.9')).to.equal('spylog-v4-0001')
    // A rule that was added and emptied again before any write needs no write at all.
    expect(add('198.51.100.10')).to.equal('spylog-v4-0002')
    b.remove('198.51.100.10')
    expect(b.plan().map((o) => o.name)).to.deep.equal(['spylog-v4-0001'])
  })
})

describe('Windows Firewall action (PowerShell backend, fake firewall)', () => {
  it('splits 2,500 IPv4 and 1,200 IPv6 bans into rules of at most 1,000, in few writes', async () => {
    const {fw, runner} = harness()
    await runner.start()
    const v4 = v4s(2500)
    const v6 = v6s(1200)
    await Promise.all([...v4, ...v6].map((a) => ban(runner, a)))
    assertHealthy(fw)
    const t = fw.table()
    expect([...t.keys()].sort()).to.deep.equal(['spylog-v4-0001', 'spylog-v4-0002', 'spylog-v4-0003', 'spylog-v6-0001', 'spylog-v6-0002'])
    expect([...t.entries()].sort().map(([, a]) => a.length)).to.deep.equal([1000, 1000, 500, 1000, 200])
    for (const a of [...v4, ...v6]) expect(fw.blocks(a), a).to.equal(true)
    // One burst of 3,700 bans: one write (the start-up read is the other call).
    expect(fw.calls.length).to.equal(2)
    // Data went on stdin; the command line is the same small one whatever the list size.
    for (const c of fw.calls) expect(c.commandLine).to.be.below(8000)
    expect(fw.calls[1].input.length).to.be.above(50_000)
    expect(fw.calls[1].args.join(' ')).to.not.include('198.18')
  })

  it('coalesces bans arriving during a write into the next write, at most one write per interval', async () => {
    const fw = new FakeWindowsFirewall()
    const gated = new GatedShell(fw)
    const interval = 300
    const {runner} = harness({fw, flushInterval: interval})
    ;(runner as unknown as {access: {shell: Shell}}).access.shell = gated
    const starting = runner.start()
    await until('the start-up read', () => gated.held === 1)
    gated.release()
    await starting
    const first = ban(runner, '203.0.113.1') // first ban after idle: written at once
    await until('the first write', () => gated.held === 2)
    const burst = v4s(299).map((a) => ban(runner, a))
    const written = Date.now()
    gated.release()
    await first
    await until('the second write', () => gated.held === 3)
    const second = Date.now()
    gated.release()
    await Promise.all(burst)
    expect(fw.calls.length).to.equal(3)
    expect(fw.calls[2].plan!.ops).to.have.length(1)
    expect(fw.calls[2].plan!.ops[0]).to.include({op: 'set', name: 'spylog-v4-0001'})
    expect(fw.calls[2].plan!.ops[0].addresses).to.have.length(300)
    // The rate limit is a lower bound: load can only make the gap longer.
    expect(second - written).to.be.at.least(interval - 5)
    assertHealthy(fw)
  })

  it('deletes a rule instead of emptying it, and unbans from the middle of a rule', async () => {
    const {fw, runner} = harness()
    await runner.start()
    const addrs = v4s(2500)
    await Promise.all(addrs.map((a) => ban(runner, a)))
    // Unban 700 from the middle of the first rule and all of the third.
    const middle = addrs.slice(150, 850)
    const third = addrs.slice(2000)
    await Promise.all([...middle, ...third].map((a) => unban(runner, a)))
    assertHealthy(fw)
    const t = fw.table()
    expect([...t.keys()].sort()).to.deep.equal(['spylog-v4-0001', 'spylog-v4-0002'])
    expect(t.get('spylog-v4-0001')).to.have.length(300)
    for (const a of middle) expect(fw.blocks(a), a).to.equal(false)
    for (const a of [...addrs.slice(0, 150), ...addrs.slice(850, 2000)]) expect(fw.blocks(a), a).to.equal(true)
    // Freed slots are reused before a new rule is made.
    const more = v4s(700, 5000)
    await Promise.all(more.map((a) => ban(runner, a)))
    expect([...fw.table().keys()].sort()).to.deep.equal(['spylog-v4-0001', 'spylog-v4-0002'])
    expect(fw.table().get('spylog-v4-0001')).to.have.length(1000)
    // Unban everything: no spylog rule is left, and none was ever written empty.
    await Promise.all([...addrs.slice(0, 150), ...addrs.slice(850, 2000), ...more].map((a) => unban(runner, a)))
    expect(fw.table().size).to.equal(0)
    assertHealthy(fw)
    const deletes = fw.calls.flatMap((c) => c.plan?.ops ?? []).filter((o) => o.op === 'delete').map((o) => o.name).sort()
    expect(deletes).to.deep.equal(['spylog-v4-0001', 'spylog-v4-0002', 'spylog-v4-0003'])
  })

  it('never puts loopback or allow-listed addresses in a rule', async () => {
    const {fw, runner} = harness()
    await runner.start()
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.0.0.0/8', '0.0.0.0/0', '0.0.0.0', '224.0.0.1']) {
      await expectActionError(ban(runner, a), /refusing to block/, false)
    }
    for (const a of ['10.1.2.3', '::ffff:10.9.9.9', '10.20.0.0/16', '2001:db8:ffff:1::9']) {
      await expectActionError(ban(runner, a), /allow-listed/, false)
    }
    await ban(runner, '203.0.113.50')
    assertHealthy(fw)
    expect(fw.blocked()).to.deep.equal(['203.0.113.50'])
  })

  it('refuses ids that are not addresses before anything reaches PowerShell', async () => {
    const {fw, runner} = harness()
    await runner.start()
    const before = fw.calls.length
    const evil = ["1.2.3.4'; Remove-NetFirewallRule -All; '", '$(Stop-Computer -Force)', '1.2.3.4,any', 'any', 'LocalSubnet', '1.2.3.4\r\n', '"1.2.3.4"', 'root']
    for (const id of evil) await expectActionError(ban(runner, id), /refusing to block|not an address/, false)
    await expectActionError(runner.run('ban', {ticket: ticket('alice', 'sshd', false), params: {}}), /not an address/, false)
    await expectActionError(runner.run('ban', {ticket: ticket('203.0.113.7', 'sshd', false), params: {}}), /not an address/, false)
    expect(fw.calls.length).to.equal(before)
  })

  it('starts once when jobs arrive before start(), and survives a corrupt state file', async () => {
    const dataDir = tempTree({'windows-firewall.json': '{"version": 1, "rules": '})
    const {fw, runner, lines} = harness({dataDir})
    await Promise.all(v4s(5).map((a) => ban(runner, a)))
    expect(fw.calls.filter((c) => c.plan?.list === true)).to.have.length(1)
    expect(lines.join('\n')).to.match(/ignoring the state file: .*windows-firewall\.json/)
    expect(fw.blocked()).to.have.length(5)
    expect(JSON.parse(fs.readFileSync(path.join(dataDir, 'windows-firewall.json'), 'utf8')).rules[0].addresses).to.have.length(5)
  })

  it('keeps an address blocked while another jail still bans it', async () => {
    const {fw, runner} = harness()
    await runner.start()
    await ban(runner, '203.0.113.8', 'sshd')
    await ban(runner, '203.0.113.8', 'rdp')
    const writes = fw.calls.length
    await unban(runner, '203.0.113.8', 'sshd')
    expect(fw.blocks('203.0.113.8')).to.equal(true)
    expect(fw.calls.length).to.equal(writes)
    await unban(runner, '203.0.113.8', 'rdp')
    expect(fw.blocks('203.0.113.8')).to.equal(false)
    // An unban of something not banned is a no-op.
    await unban(runner, '203.0.113.99', 'rdp')
    assertHealthy(fw)
  })

  it('rebuilds its rule book after a restart from the firewall and the state file', async () => {
    const fw = new FakeWindowsFirewall()
    const first = harness({fw})
    await first.runner.start()
    const addrs = [...v4s(1500), ...v6s(10)]
    await Promise.all(addrs.map((a, i) => ban(first.runner, a, i % 2 === 0 ? 'sshd' : 'rdp')))
    await ban(first.runner, addrs[0], 'rdp')
    await first.runner.stop()
    const state = JSON.parse(fs.readFileSync(path.join(first.dataDir, 'windows-firewall.json'), 'utf8'))
    expect(state.holders[addrs[0]].sort()).to.deep.equal(['rdp', 'sshd'])

    const second = harness({fw, dataDir: first.dataDir})
    await second.runner.start()
    expect(second.runner.rules()).to.deep.equal(first.runner.rules())
    const calls = fw.calls.length
    await ban(second.runner, addrs[5], 'rdp') // already there: the queue re-applying a ban writes nothing
    expect(fw.calls.length).to.equal(calls)
    await unban(second.runner, addrs[0], 'sshd') // still held by rdp
    expect(fw.blocks(addrs[0])).to.equal(true)
    await unban(second.runner, addrs[0], 'rdp')
    await unban(second.runner, addrs[1], 'rdp')
    expect(fw.blocks(addrs[0])).to.equal(false)
    expect(fw.blocks(addrs[1])).to.equal(false)
    assertHealthy(fw)

    // Without the state file (lost data directory) the firewall alone is the record: any jail's unban lifts it.
    const third = harness({fw})
    await third.runner.start()
    expect(third.runner.rules()).to.deep.equal(second.runner.rules())
    await unban(third.runner, addrs[2], 'some-other-jail')
    expect(fw.blocks(addrs[2])).to.equal(false)
  })

  it('retainOnly drops addresses no active ban holds (a lost store), and sets the holders', async () => {
    const fw = new FakeWindowsFirewall()
    const first = harness({fw})
    await first.runner.start()
    await Promise.all(['203.0.113.1', '203.0.113.2', '203.0.113.3', '2001:db8::7'].map((a) => ban(first.runner, a)))
    await first.runner.stop()
    const second = harness({fw}) // no state file: the firewall is the record
    const removed = await second.runner.retainOnly([{jail: 'sshd', id: '203.0.113.2'}, {jail: 'rdp', id: '2001:db8:0::7'}, {jail: 'x', id: 'not-an-address'}])
    expect(removed.sort()).to.deep.equal(['203.0.113.1', '203.0.113.3'])
    expect(fw.blocked().sort()).to.deep.equal(['2001:db8::7', '203.0.113.2'])
    await unban(second.runner, '2001:db8::7', 'sshd') // not rdp: stays
    expect(fw.blocks('2001:db8::7')).to.equal(true)
    await unban(second.runner, '2001:db8::7', 'rdp')
    expect(fw.blocks('2001:db8::7')).to.equal(false)
    assertHealthy(fw)
  })

  it('repairs rules read back at start: Any, allow-listed and foreign entries (recorded listing)', async () => {
    const reply = fs.readFileSync(path.join(FIXTURES, 'list-reply.json'), 'utf8')
    const fw = new FakeWindowsFirewall()
    // Build the fake's table from the recorded reply, so later writes act on the same rules.
    const rec = JSON.parse(reply) as {rules: Array<{name: string; addresses: string[]}>}
    fw.rules = rec.rules.map((r) => ({id: r.name, displayName: r.name, group: 'spylog', enabled: true, action: 'Block', remote: r.addresses.filter((a) => a !== 'Any')}))
    fw.profiles = [{name: 'Domain', enabled: true}, {name: 'Private', enabled: true}, {name: 'Public', enabled: false}]
    expect(fw.blocks('198.18.5.5'), 'the recorded Any rule blocks everyone').to.equal(true)

    const read = await readFirewall({shell: {run: async () => ({code: 0, stdout: reply, stderr: ''})}})
    expect(read.rules.map((r) => [r.name, r.addresses, r.foreign])).to.deep.equal([
      ['spylog-v4-0001', ['198.51.100.7', '203.0.113.9', '192.0.2.0/24', '10.1.2.3'], []],
      ['spylog-v4-0002', [], ['Any']],
      ['spylog-v6-0001', ['2001:db8::5', '2001:db8:1::/64'], ['LocalSubnet']],
    ])

    const {runner, lines} = harness({fw})
    await runner.start()
    expect(lines.join('\n')).to.match(/WARNING Windows Firewall is off for the Public profile/)
    expect(lines.join('\n')).to.match(/removing 10\.1\.2\.3/)
    expect(fw.blocks('198.18.5.5'), 'the Any rule is gone').to.equal(false)
    expect(Object.fromEntries(fw.table())).to.deep.equal({
      'spylog-v4-0001': ['198.51.100.7', '203.0.113.9', '192.0.2.0/24'],
      'spylog-v6-0001': ['2001:db8::5', '2001:db8:1::/64'],
    })
    assertHealthy(fw)
  })

  it('reports a failed write to the waiting jobs and writes the changes on the next flush', async () => {
    const {fw, runner} = harness()
    await runner.start()
    fw.failNext = 1
    await expectActionError(ban(runner, '203.0.113.20'), /Access is denied/, true)
    expect(fw.blocks('203.0.113.20')).to.equal(false)
    // The queue retries the job: it resolves once a write carried the address.
    await ban(runner, '203.0.113.20')
    expect(fw.blocks('203.0.113.20')).to.equal(true)
    // Partial failure: the first rule was written, the second was not; the next flush finishes.
    await Promise.all([...v4s(1000), ...v6s(1)].map((a) => ban(runner, a)))
    fw.failNext = 1
    fw.failAfterOps = 1
    const a = ban(runner, '203.0.113.21') // into spylog-v4-0002
    const b = ban(runner, '2001:db8:aa::1') // into spylog-v6-0001
    await expectActionError(Promise.all([a, b]), /Access is denied/, true)
    expect(fw.blocks('203.0.113.21')).to.equal(true)
    expect(fw.blocks('2001:db8:aa::1')).to.equal(false)
    await ban(runner, '2001:db8:aa::1')
    expect(fw.blocks('2001:db8:aa::1')).to.equal(true)
    const lastOps = fw.calls.at(-1)!.plan!.ops
    expect(lastOps.map((o) => o.name)).to.deep.equal(['spylog-v6-0001'])
    assertHealthy(fw)
  })

  it('keeps every invariant under random ban/unban sequences (small rules)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(fc.boolean(), fc.integer({min: 0, max: 40}), fc.boolean()), {minLength: 1, maxLength: 120}),
      async (steps) => {
        const {fw, runner} = harness({capacity: {v4: 4, v6: 3}, flushInterval: 0})
        await runner.start()
        const model = new Set<string>()
        const jobs: Array<Promise<void>> = []
        for (const [isBan, k, v6] of steps) {
          const a = v6 ? `2001:db8::1:${k.toString(16)}` : `198.51.100.${k}`
          if (isBan) model.add(a)
          else model.delete(a)
          jobs.push(isBan ? ban(runner, a) : unban(runner, a))
          if (k % 7 === 0) await Promise.all(jobs.splice(0))
        }
        await Promise.all(jobs)
        await runner.flushNow()
        expect(fw.violations).to.deep.equal([])
        expect(new Set(fw.blocked())).to.deep.equal(model)
        for (const [name, addrs] of fw.table()) expect(addrs.length, name).to.be.within(1, name.includes('v6') ? 3 : 4)
      },
    ), {numRuns: 60, seed: 20240514})
  })

  it('writes nothing in a dry run', async () => {
    const {fw, runner, lines} = harness({dryRun: true})
    await runner.start()
    await ban(runner, '203.0.113.30')
    await unban(runner, '203.0.113.30')
    expect(fw.calls).to.deep.equal([])
    expect(lines.join('\n')).to.match(/create spylog-v4-0001 \(1\)/)
  })

  it('says clearly that it needs Windows when there is no seam', async () => {
    const log = new SinkLogger('info', [])
    const r = createWindowsFirewallAction(CFG, {log, platform: 'linux'})
    await expectActionError(r.start!(), /runs only on Windows .*linux.*nftables/, false)
  })
})

describe('Windows Firewall action (netsh backend)', () => {
  it('keeps command lines under 32,767 with the longest addresses; IPv6 rules of 500', async () => {
    const {fw, runner, dataDir} = harness({backend: 'netsh'})
    await runner.start()
    expect(fw.calls).to.have.length(0) // netsh cannot list: the state file is the record
    const long4 = Array.from({length: 2100}, (_, i) => `203.${100 + (i >> 8)}.${i & 255}.${200 + (i % 55)}`)
    const long6 = Array.from({length: 1100}, (_, i) => `2a01:dbf8:ffe${(i >> 12) & 15}:fff${(i >> 8) & 15}:ffff:ffff:ffff:f${i.toString(16).padStart(3, '0')}`)
    for (const a of long6.slice(0, 3)) expect(a.length).to.equal(39)
    await Promise.all([...long4, ...long6].map((a) => ban(runner, a)))
    assertHealthy(fw)
    const t = fw.table()
    expect([...t.entries()].sort().map(([n, a]) => `${n}:${a.length}`)).to.deep.equal([
      'spylog-v4-0001:1000', 'spylog-v4-0002:1000', 'spylog-v4-0003:100', 'spylog-v6-0001:500', 'spylog-v6-0002:500', 'spylog-v6-0003:100',
    ])
    const max = Math.max(...fw.calls.map((c) => c.commandLine))
    expect(max).to.be.above(16_000).and.at.most(32_767)
    for (const c of fw.calls) expect(c.file).to.equal('netsh.exe')

    // Unban all of one rule and part of another; restart from the state file; clear up.
    await Promise.all(long6.slice(0, 500).map((a) => unban(runner, a)))
    await Promise.all(long4.slice(10, 20).map((a) => unban(runner, a)))
    await runner.stop()
    assertHealthy(fw)
    expect(t.has('spylog-v6-0001') && !fw.table().has('spylog-v6-0001')).to.equal(true)
    const again = harness({fw, backend: 'netsh', dataDir})
    await again.runner.start()
    expect(again.runner.rules()).to.deep.equal(runner.rules())
    await Promise.all([...long4, ...long6].map((a) => unban(again.runner, a)))
    expect(fw.table().size).to.equal(0)
    assertHealthy(fw)
  })

  it('replaces a leftover rule of the same name instead of duplicating it, and recreates a vanished one', async () => {
    const fw = new FakeWindowsFirewall()
    fw.rules.push({id: '{old}', displayName: 'spylog-v4-0001', group: '', enabled: true, action: 'Block', remote: ['192.0.2.1/255.255.255.255']})
    const {runner} = harness({fw, backend: 'netsh'})
    await runner.start()
    await ban(runner, '203.0.113.40')
    expect(fw.rules.filter((r) => r.displayName === 'spylog-v4-0001')).to.have.length(1)
    expect(fw.table().get('spylog-v4-0001')).to.deep.equal(['203.0.113.40'])
    fw.rules = [] // removed by hand
    await ban(runner, '203.0.113.41')
    expect(fw.table().get('spylog-v4-0001')).to.deep.equal(['203.0.113.40', '203.0.113.41'])
    expect(netshArgs({op: 'delete', name: 'spylog-v4-0001'})).to.deep.equal([['advfirewall', 'firewall', 'delete', 'rule', 'name=spylog-v4-0001']])
    assertHealthy(fw)
  })
})

describe('Windows Firewall: command-line length', () => {
  it('computes the length Windows sees, with quoting', () => {
    expect(commandLineLength('netsh.exe', ['a', 'b c'])).to.equal('netsh.exe a "b c"'.length + 1)
    expect(commandLineLength('x', ['say "hi"'])).to.equal('x "say \\"hi\\""'.length + 1)
    expect(commandLineLength('x', ['C:\\dir with space\\'])).to.equal('x "C:\\dir with space\\\\"'.length + 1)
    expect(commandLineLength('x', [''])).to.equal('x ""'.length + 1)
  })
})

describe('Windows Firewall: the process seam', () => {
  it('runs a real program from argv, feeds stdin, collects output and the exit status', async () => {
    const sh = new ProcessShell()
    const r = await sh.run(process.execPath, ['-e', 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{process.stdout.write(JSON.stringify([process.argv.slice(1),d]));process.stderr.write("e");process.exitCode=3})', 'a b', '$(x)', '"q"'], {input: '{"ops":[]}'})
    expect(r.code).to.equal(3)
    expect(JSON.parse(r.stdout)).to.deep.equal([['a b', '$(x)', '"q"'], '{"ops":[]}'])
    expect(r.stderr).to.equal('e')
  })

  it('rejects for a missing program and kills a hung one', async () => {
    const sh = new ProcessShell()
    try {
      await sh.run('/nonexistent/powershell.exe', [])
      expect.fail('no error')
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).to.equal('ENOENT')
    }
    const r = await sh.run(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {timeoutMs: 200})
    expect(r.code).to.equal(null)
  })

  it('turns junk from PowerShell into a clear error, and tolerates odd JSON', async () => {
    const reply = (stdout: string, code = 0): Shell => ({run: async () => ({code, stdout, stderr: ''})})
    for (const junk of ['', 'not json', '\u0000\u0001', '[1,2]', 'null', '{"done":1}']) {
      try {
        await readFirewall({shell: reply(junk)})
        expect.fail(`accepted ${JSON.stringify(junk)}`)
      } catch (e) {
        expect((e as Error).message, JSON.stringify(junk)).to.match(/powershell\.exe failed/)
      }
    }
    const odd = await readFirewall({shell: reply(JSON.stringify({ok: true, done: 0, rules: [{name: 5, addresses: 'x'}, {name: 'spylog-v4-0001', addresses: [1, null, '198.51.100.1/255.255.255.255', 'evil;$(x)']}], profiles: [{name: null}, {name: 'Public', enabled: 'True'}]}))})
    expect(odd.rules).to.deep.equal([{name: 'spylog-v4-0001', id: undefined, enabled: undefined, action: undefined, direction: undefined, addresses: ['198.51.100.1'], foreign: ['evil;$(x)']}])
    expect(odd.profiles).to.deep.equal([{name: 'Public', enabled: true}])
  })
})

describe('Windows Firewall: the PowerShell script', () => {
  const pwsh = spawnSync('pwsh', ['-NoProfile', '-Command', '$PSVersionTable.PSVersion.Major'], {encoding: 'utf8'})
  const it2 = pwsh.status === 0 ? it : it.skip
  it2('parses without errors (pwsh available)', () => {
    const r = spawnSync('pwsh', ['-NoProfile', '-NonInteractive', '-Command',
      '$e = $null; [void][System.Management.Automation.Language.Parser]::ParseInput([Console]::In.ReadToEnd(), [ref]$null, [ref]$e); $e.Count; $e | ForEach-Object { $_.Message }'], {input: FIREWALL_SCRIPT, encoding: 'utf8'})
    expect(r.stdout.trim().split('\n')[0], r.stdout + r.stderr).to.equal('0')
  })

  it('carries no data: the script is constant and names only its own rules', () => {
    expect(FIREWALL_SCRIPT).to.not.match(/\d+\.\d+\.\d+\.\d+/)
    expect(FIREWALL_SCRIPT).to.include("-cnotmatch '^spylog-v[46]-[0-9]{4}$'")
    expect(FIREWALL_SCRIPT).to.include('refusing to write an empty address list')
  })
})

describe('packaged per-ban Windows actions (config/actions/windows-advfirewall.lua)', () => {
  it('defines lua-spylog\'s advfirewall and ipsec command templates on Windows only', () => {
    const win = loadLuaConfig(path.join(repoRoot, 'config'), {platform: 'windows'})
    const names = win.actions.map((a) => a.name)
    expect(names).to.include.members(['advfirewall', 'advfirewall-program', 'advfirewall-service', 'advfirewall-program-service', 'ipsec'])
    const adv = win.actions.find((a) => a.name === 'advfirewall')!
    expect(adv.ban).to.deep.include({kind: 'command'})
    const banCmd = (adv.ban as {command: string}).command
    const unbanCmd = (adv.unban as {command: string}).command
    expect(banCmd).to.match(/^netsh advfirewall firewall add rule name="spylog <BAN_UUID>" .*remoteip=<HOST> localport=<PORT> protocol=<PROTOCOL>$/)
    expect(unbanCmd).to.equal('netsh advfirewall firewall delete rule name="spylog <BAN_UUID>"')
    expect(adv.parameters).to.deep.include({port: 'any', protocol: 'any'})
    const prog = win.actions.find((a) => a.name === 'advfirewall-program')!
    expect((prog.ban as {command: string}).command).to.match(/ program="<PROGRAM>"$/)
    const ipsec = win.actions.find((a) => a.name === 'ipsec')!
    expect((ipsec.ban as {command: string}).command).to.match(/^netsh ipsec static add filter filterlist=<FILTERLIST> srcaddr=<HOST> dstaddr=me/)
    expect(ipsec.unique).to.equal('ipsec <HOST>')
    const linux = loadLuaConfig(path.join(repoRoot, 'config'), {platform: 'linux'})
    expect(linux.actions.map((a) => a.name)).to.not.include.members(['advfirewall', 'ipsec'])
  })
})

// ---------------------------------------------------------------------------------------------
// The CLI: `spylog firewall list|clear` (built CLI, fake firewall as a program)

const BIN = path.join(repoRoot, 'bin', 'run.js')

function fakeProgram(dir: string): string {
  const ts = path.extname(fileURLToPath(import.meta.url)) === '.ts'
  const script = path.join(HERE, 'fixtures', 'windows-firewall', `fake-powershell.${ts ? 'ts' : 'js'}`)
  const prog = path.join(dir, 'fake-powershell')
  fs.writeFileSync(prog, `#!/bin/sh\nexec "${process.execPath}" ${ts ? '--import tsx ' : ''}"${script}" "$@"\n`)
  fs.chmodSync(prog, 0o755)
  return prog
}

function cli(args: string[], env: Record<string, string> = {}): {status: number | null; stdout: string; stderr: string} {
  const r = spawnSync(process.execPath, [BIN, ...args], {cwd: repoRoot, encoding: 'utf8', env: {...process.env, NO_COLOR: '1', ...env}})
  // oclif wraps error messages and prefixes the continuation lines with ›: join them back.
  return {status: r.status, stdout: r.stdout, stderr: r.stderr.replace(/\s*\n\s*›\s*/g, ' ')}
}

describe('spylog firewall list|clear', () => {
  it('on Linux says it manages the Windows Firewall and exits 2', function () {
    if (process.platform === 'win32') this.skip()
    for (const sub of ['list', 'clear']) {
      const r = cli(['firewall', sub])
      expect(r.status, r.stderr).to.equal(2)
      expect(r.stderr).to.match(/Windows Firewall/)
      expect(r.stderr).to.not.match(/\n\s+at /)
    }
  })

  it('lists spylog rules with their counts and clears them (through --shell)', async () => {
    const dir = tempTree({})
    const prog = fakeProgram(dir)
    const stateFile = path.join(dir, 'firewall.json')
    const fw = new FakeWindowsFirewall()
    const {runner} = harness({fw})
    await runner.start()
    await Promise.all([...v4s(1200), ...v6s(3)].map((a) => ban(runner, a)))
    fw.rules.push({id: 'RDP-In', displayName: 'Remote Desktop', group: '@FirewallAPI.dll,-28752', enabled: true, action: 'Allow', remote: []})
    const state: FakeState = fw.state()
    fs.writeFileSync(stateFile, JSON.stringify(state))
    const env = {FAKE_FIREWALL_STATE: stateFile}

    const j = cli(['firewall', 'list', '--json', '--shell', prog], env)
    expect(j.status, j.stderr).to.equal(0)
    const out = JSON.parse(j.stdout)
    expect(out.rules.map((r: {name: string; count: number}) => [r.name, r.count])).to.deep.equal([['spylog-v4-0001', 1000], ['spylog-v4-0002', 200], ['spylog-v6-0001', 3]])
    expect(out.total).to.equal(1203)

    const h = cli(['firewall', 'list', '--shell', prog], env)
    expect(h.status, h.stderr).to.equal(0)
    expect(h.stdout).to.match(/spylog-v4-0001\s.*1000/)
    expect(h.stdout).to.match(/1203 addresses in 3 rules/)

    const c = cli(['firewall', 'clear', '--json', '--shell', prog], env)
    expect(c.status, c.stderr).to.equal(0)
    expect(JSON.parse(c.stdout).removed).to.deep.equal(['spylog-v4-0001', 'spylog-v4-0002', 'spylog-v6-0001'])
    const after = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as FakeState
    expect(after.rules.map((r) => r.displayName)).to.deep.equal(['Remote Desktop'])

    const e = cli(['firewall', 'list', '--shell', prog], env)
    expect(e.stdout).to.match(/no spylog rules/i)
  })

  it('reports a failing PowerShell as an error, not a stack trace', () => {
    const dir = tempTree({'fail': '#!/bin/sh\necho "powershell.exe : Access is denied." >&2\nexit 1\n'})
    fs.chmodSync(path.join(dir, 'fail'), 0o755)
    const r = cli(['firewall', 'list', '--shell', path.join(dir, 'fail')])
    expect(r.status).to.equal(1)
    expect(r.stderr).to.match(/Access is denied/)
    expect(r.stderr).to.not.match(/\n\s+at /)
  })
})


