import {expect} from 'chai'
import {ActionError} from '../src/engine/actions/action.js'
import {IpsetRunner} from '../src/engine/actions/builtin/ipset.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {bansUntilUnban, firewallConfig, refused, ticket} from './support/firewall.js'
import {hasProgram, NetnsPair, netnsUnavailable} from './support/netns.js'

const action = firewallConfig('iptables-ipset', 'ipset')

describe('ipset + iptables action in a network namespace (real ipset, iptables)', function () {
  let pair: NetnsPair | undefined
  let port = 0
  const lines: string[] = []
  const ctx = {log: new SinkLogger('debug', [memorySink(lines)]), neverBan: (id: string) => id.startsWith('127.')}

  before(async function () {
    const why = netnsUnavailable() ?? (hasProgram(['ipset', '--version']) && hasProgram(['iptables', '--version']) ? undefined : 'ipset or iptables is not installed')
    if (why !== undefined) {
      console.log(`      (skipped: ${why})`)
      this.skip()
    }
    pair = new NetnsPair().create()
    port = await pair.startServer()
  })

  after(() => pair?.destroy())

  const members = (set: string): string => pair!.exec(pair!.victim, ['ipset', 'list', set])
  const rules = (bin: string): string => pair!.exec(pair!.victim, [bin, '-w', '-S', 'INPUT'])

  it('creates its sets and one rule per set and family, idempotently', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}), ctx)
    await runner.start()
    await runner.start()
    expect(members('spylog-v4')).to.match(/Type: hash:net[\s\S]*family inet .*timeout 0/)
    expect(members('spylog-v6')).to.match(/family inet6/)
    expect(rules('iptables').match(/--match-set spylog-v4 src -j DROP/g)).to.have.length(1)
    expect(rules('ip6tables').match(/--match-set spylog-v6 src -j DROP/g)).to.have.length(1)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it('blocks a banned address, and the kernel lifts the ban when its time is up', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    await runner.start()
    await runner.run('ban', {ticket: ticket(pair!.attackerIp, 2), params: {}})
    expect(members('spylog-rej-v4')).to.include(pair!.attackerIp)
    const blocked = await pair!.connect(pair!.victimIp, port, 10_000)
    if (members('spylog-rej-v4').includes(pair!.attackerIp)) expect(blocked).to.satisfy(refused)
    expect(await pair!.connectUntil(pair!.victimIp, port, (r) => r === 'ok')).to.equal('ok')
    expect(members('spylog-rej-v4')).not.to.include(pair!.attackerIp)
  })

  it('drops a banned address until unban; the timeout is the remaining ban time', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}), ctx)
    const t = ticket(pair!.attackerIp, 3600)
    await runner.run('ban', {ticket: t, params: {}})
    const m = new RegExp(`${pair!.attackerIp.replaceAll('.', '\\.')} timeout (\\d+)`).exec(members('spylog-v4'))
    expect(m, 'element with a timeout').not.to.equal(null)
    expect(Number(m![1])).to.be.within(3000, 3600)
    expect(await pair!.connect(pair!.victimIp, port, 1500)).to.equal('TIMEOUT')
    await runner.run('unban', {ticket: t, params: {}})
    expect(members('spylog-v4')).not.to.include(pair!.attackerIp)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.run('unban', {ticket: t, params: {}})
  })

  it('bans IPv6 addresses and networks; a permanent ban has no timeout', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    const v6 = ticket(pair!.attackerIp6, -1)
    await runner.run('ban', {ticket: v6, params: {}})
    expect(members('spylog-rej-v6')).to.match(new RegExp(`${pair!.attackerIp6} timeout 0`))
    expect(await pair!.connect(pair!.victimIp6, port, 10_000)).to.satisfy(refused)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.run('unban', {ticket: v6, params: {}})
    // the reject may have hit neighbour discovery too: the neighbour entry recovers within seconds
    expect(await pair!.connectUntil(pair!.victimIp6, port, (r) => r === 'ok', 30_000)).to.equal('ok')

    const net = ticket(pair!.attackerIp.replace(/\.\d+$/, '.0/24'), 600)
    await runner.run('ban', {ticket: net, params: {}})
    expect(members('spylog-rej-v4')).to.include(pair!.attackerIp.replace(/\.\d+$/, '.0/24'))
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    await runner.run('unban', {ticket: net, params: {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it("restricts a ban to the jail's ports (multiport) with a set of its own", async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}, {blocktype: 'reject'}, ['multiport']), ctx)
    const other = ticket(pair!.attackerIp, 600, 'other')
    await runner.run('ban', {ticket: other, params: {port: 'ssh,http', protocol: 'tcp'}})
    expect(members('spylog-tcp-22-80-rej-v4')).to.include(pair!.attackerIp)
    expect(rules('iptables')).to.match(/-p tcp -m multiport --dports 22,80 -m set --match-set spylog-tcp-22-80-rej-v4 src -j REJECT/)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    const mine = ticket(pair!.attackerIp, 600, 'mine')
    await bansUntilUnban(runner, pair!, pair!.victimIp, port, mine, {port, protocol: 'tcp'})
    await runner.run('unban', {ticket: other, params: {port: 'ssh,http', protocol: 'tcp'}})
  })

  it('creates its set and rule again when they were removed behind its back', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    await runner.start()
    pair!.exec(pair!.victim, ['iptables', '-w', '-F', 'INPUT'])
    pair!.exec(pair!.victim, ['ipset', 'destroy', 'spylog-rej-v4'])
    const t = ticket(pair!.attackerIp, 600, 'destroyed')
    await runner.run('ban', {ticket: t, params: {}})
    expect(members('spylog-rej-v4')).to.include(pair!.attackerIp)
    expect(rules('iptables')).to.include('--match-set spylog-rej-v4 src -j REJECT')
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    await runner.run('unban', {ticket: t, params: {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it('takes many concurrent first bans of a new rule shape: every one lands, the structure is made once', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}), ctx)
    const ids = Array.from({length: 24}, (_, i) => `198.18.${i >> 4}.${(i & 15) + 1}`)
    await Promise.all(ids.map((id) => runner.run('ban', {ticket: ticket(id, 600, 'many'), params: {protocol: 'udp'}})))
    const held = (await runner.list()).filter((e) => e.where === 'spylog-udp-v4').map((e) => e.address)
    expect(held.sort()).to.deep.equal([...ids].sort())
    expect(rules('iptables').match(/--match-set spylog-udp-v4 src/g)).to.have.length(1)
    await Promise.all(ids.map((id) => runner.run('unban', {ticket: ticket(id, 600, 'many'), params: {protocol: 'udp'}})))
    expect((await runner.list()).filter((e) => e.where === 'spylog-udp-v4')).to.deep.equal([])
  })

  it('refuses non-addresses and protected addresses without retry', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}), ctx)
    for (const id of ['bob', '127.0.0.1', '10.0.0.1 -exist']) {
      const err = await runner.run('ban', {ticket: ticket(id, 60), params: {}}).then(() => undefined, (e: unknown) => e)
      expect(err, id).to.be.instanceOf(ActionError)
      expect((err as ActionError).retry, id).to.equal(false)
    }
    expect(members('spylog-v4')).not.to.include('127.0.0.1')
  })

  it('lists what its sets hold, and clear() removes its rules and sets', async () => {
    const runner = new IpsetRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    await runner.run('ban', {ticket: ticket(pair!.attackerIp, 600, 'l1'), params: {}})
    await runner.run('ban', {ticket: ticket('2001:db8:77::/48', -1, 'l2'), params: {}})
    const entries = await runner.list()
    expect(entries.find((e) => e.address === pair!.attackerIp)).to.deep.include({where: 'spylog-rej-v4'})
    expect(entries.find((e) => e.address === pair!.attackerIp)!.expires).to.be.within(1, 600)
    expect(entries.find((e) => e.address === '2001:db8:77::/48')).to.deep.equal({address: '2001:db8:77::/48', where: 'spylog-rej-v6'})
    await runner.clear()
    expect(pair!.exec(pair!.victim, ['ipset', 'list', '-n'])).not.to.include('spylog')
    expect(rules('iptables')).not.to.include('spylog')
    expect(rules('ip6tables')).not.to.include('spylog')
    expect(await runner.list()).to.deep.equal([])
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })
})
