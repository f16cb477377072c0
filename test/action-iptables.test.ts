import {expect} from 'chai'
import {ActionError} from '../src/engine/actions/action.js'
import {ruleSpec} from '../src/engine/actions/builtin/firewall.js'
import {IptablesRunner, iptablesMatches} from '../src/engine/actions/builtin/iptables.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {bansUntilUnban, firewallConfig, refused, ticket} from './support/firewall.js'
import {hasProgram, NetnsPair, netnsUnavailable} from './support/netns.js'

const action = firewallConfig('iptables-multiport', 'iptables')

describe('iptables action: matches', () => {
  it('splits port lists into multiport rules of at most 15 ports per protocol', () => {
    expect(iptablesMatches(ruleSpec({}, []))).to.deep.equal([[]])
    expect(iptablesMatches(ruleSpec({protocol: 'udp'}, []))).to.deep.equal([['-p', 'udp']])
    expect(iptablesMatches(ruleSpec({port: 'ssh,1000:2000'}, []))).to.deep.equal([
      ['-p', 'tcp', '-m', 'multiport', '--dports', '22,1000:2000'],
      ['-p', 'udp', '-m', 'multiport', '--dports', '22,1000:2000'],
    ])
    const many = Array.from({length: 20}, (_, i) => 100 + i).join(',')
    const m = iptablesMatches(ruleSpec({port: many, protocol: 'tcp'}, []))
    expect(m).to.have.length(2)
    expect(m[0]![5]!.split(',')).to.have.length(15)
    expect(m[1]![5]!.split(',')).to.have.length(5)
  })
})

describe('iptables action in a network namespace (real iptables, one rule per address)', function () {
  let pair: NetnsPair | undefined
  let port = 0
  const lines: string[] = []
  const ctx = {log: new SinkLogger('debug', [memorySink(lines)]), neverBan: (id: string) => id.startsWith('127.')}

  before(async function () {
    const why = netnsUnavailable() ?? (hasProgram(['iptables', '--version']) ? undefined : 'iptables is not installed')
    if (why !== undefined) {
      console.log(`      (skipped: ${why})`)
      this.skip()
    }
    pair = new NetnsPair().create()
    port = await pair.startServer()
  })

  after(() => pair?.destroy())

  const rules = (bin: string, chain: string): string => pair!.exec(pair!.victim, [bin, '-w', '-S', chain])

  it('creates its chain and the jump from INPUT once', async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}), ctx)
    await runner.start()
    await runner.start()
    expect(rules('iptables', 'INPUT').match(/-A INPUT -j spylog$/gm)).to.have.length(1)
    expect(rules('ip6tables', 'INPUT').match(/-A INPUT -j spylog$/gm)).to.have.length(1)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it('bans with one rule per address (no duplicates) and unbans at once', async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}, {blocktype: 'REJECT --reject-with icmp-port-unreachable'}), ctx)
    const t = ticket(pair!.attackerIp, 600)
    await runner.run('ban', {ticket: t, params: {}})
    await runner.run('ban', {ticket: t, params: {}})
    const chain = rules('iptables', 'spylog-rej')
    expect(chain.match(new RegExp(`-A spylog-rej -s ${pair!.attackerIp.replaceAll('.', '\\.')}/32 -j REJECT`, 'g'))).to.have.length(1)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    await runner.run('unban', {ticket: t, params: {}})
    expect(rules('iptables', 'spylog-rej')).not.to.include(pair!.attackerIp)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.run('unban', {ticket: t, params: {}})
  })

  it('drops banned IPv6 addresses and networks', async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}), ctx)
    const v6 = ticket(pair!.attackerIp6.replace(/::2$/, '::/64'), 600)
    await runner.run('ban', {ticket: v6, params: {}})
    expect(rules('ip6tables', 'spylog')).to.include(`-s ${pair!.attackerIp6.replace(/::2$/, '::/64')} -j DROP`)
    expect(await pair!.connect(pair!.victimIp6, port, 1500)).to.equal('TIMEOUT')
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.run('unban', {ticket: v6, params: {}})
    expect(await pair!.connectUntil(pair!.victimIp6, port, (r) => r === 'ok', 30_000)).to.equal('ok')
  })

  it("guards only the jail's ports", async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}, {blocktype: 'reject'}, ['multiport']), ctx)
    const other = ticket(pair!.attackerIp, 600, 'other')
    await runner.run('ban', {ticket: other, params: {port: 'ssh', protocol: 'tcp'}})
    expect(rules('iptables', 'INPUT')).to.match(/-A INPUT -p tcp -m multiport --dports 22 -j spylog-tcp-22-rej/)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    const mine = ticket(pair!.attackerIp, 600, 'mine')
    await bansUntilUnban(runner, pair!, pair!.victimIp, port, mine, {port, protocol: 'tcp'})
    await runner.run('unban', {ticket: other, params: {port: 'ssh', protocol: 'tcp'}})
  })

  it('creates its chain again when it was removed behind its back', async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}), ctx)
    await runner.start()
    pair!.exec(pair!.victim, ['iptables', '-w', '-F'])
    pair!.exec(pair!.victim, ['iptables', '-w', '-X', 'spylog'])
    const t = ticket(pair!.attackerIp, 600, 'flushed')
    await runner.run('ban', {ticket: t, params: {}})
    expect(rules('iptables', 'INPUT')).to.match(/-A INPUT -j spylog$/m)
    expect(rules('iptables', 'spylog')).to.include(`-s ${pair!.attackerIp}/32 -j DROP`)
    expect(await pair!.connect(pair!.victimIp, port, 1500)).to.equal('TIMEOUT')
    await runner.run('unban', {ticket: t, params: {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it('takes many concurrent first bans of a new rule shape: every one lands, the structure is made once', async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}), ctx)
    const ids = Array.from({length: 24}, (_, i) => `198.18.${i >> 4}.${(i & 15) + 1}`)
    await Promise.all(ids.map((id) => runner.run('ban', {ticket: ticket(id, 600, 'many'), params: {protocol: 'udp'}})))
    const held = (await runner.list()).filter((e) => e.where === 'spylog-udp').map((e) => e.address)
    expect(held.sort()).to.deep.equal([...ids].sort())
    expect(pair!.exec(pair!.victim, ['iptables', '-w', '-S', 'INPUT']).match(/-j spylog-udp$/gm)).to.have.length(1)
    await Promise.all(ids.map((id) => runner.run('unban', {ticket: ticket(id, 600, 'many'), params: {protocol: 'udp'}})))
    expect((await runner.list()).filter((e) => e.where === 'spylog-udp')).to.deep.equal([])
  })

  it('refuses non-addresses and protected addresses without retry', async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}), ctx)
    for (const id of ['-j ACCEPT', '127.0.0.1', 'alice']) {
      const err = await runner.run('ban', {ticket: ticket(id, 60), params: {}}).then(() => undefined, (e: unknown) => e)
      expect(err, id).to.be.instanceOf(ActionError)
      expect((err as ActionError).retry, id).to.equal(false)
    }
    expect(rules('iptables', 'spylog')).not.to.include('127.0.0.1')
  })

  it('lists its rules, and clear() removes its chains and jumps', async () => {
    const runner = new IptablesRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    await runner.run('ban', {ticket: ticket(pair!.attackerIp, 600, 'l1'), params: {}})
    await runner.run('ban', {ticket: ticket('2001:db8:77::/48', 600, 'l2'), params: {port: 22, protocol: 'tcp'}})
    const entries = await runner.list()
    expect(entries).to.deep.include({address: pair!.attackerIp, where: 'spylog-rej'})
    expect(entries).to.deep.include({address: '2001:db8:77::/48', where: 'spylog-tcp-22-rej'})
    await runner.clear()
    expect(pair!.exec(pair!.victim, ['iptables', '-w', '-S'])).not.to.include('spylog')
    expect(pair!.exec(pair!.victim, ['ip6tables', '-w', '-S'])).not.to.include('spylog')
    expect(await runner.list()).to.deep.equal([])
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })
})
