import {expect} from 'chai'
import type {ActionConfig, ParamValue} from '../src/engine/config/model.js'
import {ActionError, type ActionFactory} from '../src/engine/actions/action.js'
import {execArgv, ExecStartError, findProgram} from '../src/engine/actions/exec.js'
import {BUILTIN_ACTIONS, builtinRunner, chooseFirewallBackend, firewallAction, IpsetRunner, IptablesRunner, WINDOWS_FIREWALL} from '../src/engine/actions/builtin/index.js'
import {banTarget, ruleSpec} from '../src/engine/actions/builtin/firewall.js'
import {NftablesRunner, nftDuration} from '../src/engine/actions/builtin/nftables.js'
import {loadFail2banConfig} from '../src/engine/config/fail2ban.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {tempTree} from './support/files.js'
import {firewallConfig, refused, ticket} from './support/firewall.js'
import {hasProgram, NetnsPair, netnsUnavailable} from './support/netns.js'

const action = firewallConfig('nftables', 'nftables')

describe('nftables action: rule shapes and targets', () => {
  it('accepts addresses and networks only, in canonical form', () => {
    expect(banTarget('203.0.113.5')).to.deep.equal({family: 4, text: '203.0.113.5', network: false})
    expect(banTarget('2001:DB8::1')).to.deep.equal({family: 6, text: '2001:db8::1', network: false})
    expect(banTarget('::ffff:198.51.100.7')).to.deep.equal({family: 4, text: '198.51.100.7', network: false})
    expect(banTarget('198.51.100.77/24')).to.deep.equal({family: 4, text: '198.51.100.0/24', network: true})
    expect(banTarget('2001:db8:1:2:3::/64')).to.deep.equal({family: 6, text: '2001:db8:1:2::/64', network: true})
    expect(banTarget('10.0.0.1/32')).to.deep.equal({family: 4, text: '10.0.0.1', network: false})
    for (const bad of ['root', '10.1', '0x0a000001', '1.2.3.4; rm -rf /', '1.2.3.4/33', '', '1.2.3.4 }', 'fe80::1%eth0 }']) expect(banTarget(bad), bad).to.equal(undefined)
  })

  it('reads port, protocol and blocktype like fail2ban', () => {
    expect(ruleSpec({}, [])).to.deep.equal({protocols: undefined, ports: undefined, block: 'drop', key: ''})
    expect(ruleSpec({port: 'ssh,http', protocol: 'tcp'}, ['multiport'])).to.deep.include({protocols: ['tcp'], ports: [[22, 22], [80, 80]], key: 'tcp-22-80'})
    expect(ruleSpec({port: '1000:2000', protocol: 'udp', blocktype: 'REJECT --reject-with icmp-port-unreachable'}, [])).to.deep.include({ports: [[1000, 2000]], block: 'reject', key: 'udp-1000_2000-rej'})
    expect(ruleSpec({port: 22, protocol: 'tcp', blocktype: 'REJECT --reject-with tcp-reset'}, [])).to.deep.include({block: 'reject-tcp-reset', key: 'tcp-22-rst'})
    expect(ruleSpec({blocktype: 'reject'}, [])).to.deep.include({key: 'rej'})
    expect(ruleSpec({port: '1:2,3,4,5,6,7,8,9,10', protocol: 'tcp'}, []).key).to.match(/^h[0-9a-f]{10}$/)
    expect(ruleSpec({port: '0:65535', protocol: 'all'}, [])).to.deep.include({ports: undefined, protocols: undefined, key: ''})
    expect(ruleSpec({port: 'ssh', protocol: 'tcp'}, ['allports'])).to.deep.include({ports: undefined, protocols: ['tcp'], key: 'tcp'})
    expect(() => ruleSpec({port: '22; reboot'}, [])).to.throw(ActionError, /parameter port/)
    expect(() => ruleSpec({protocol: 'icmp'}, [])).to.throw(ActionError, /parameter protocol/)
    expect(() => ruleSpec({blocktype: 'accept'}, [])).to.throw(ActionError, /parameter blocktype/)
  })

  it('rejects bad options with the file and action name', () => {
    const log = new SinkLogger('info', [])
    const at = (options: Record<string, ParamValue>): ActionConfig => ({...action(options), origin: {file: '/etc/spylog/actions/fw.lua', line: 4}})
    expect(() => new NftablesRunner(at({hook: 'output'}), {log})).to.throw(ActionError, /^\/etc\/spylog\/actions\/fw\.lua:4: action "nftables": option hook: "output"/)
    expect(() => new NftablesRunner(at({table: 'x y'}), {log})).to.throw(ActionError, /option table/)
    expect(() => new NftablesRunner(at({netns: '../../x'}), {log})).to.throw(ActionError, /option netns/)
    expect(() => new NftablesRunner(at({timeout: -5}), {log})).to.throw(ActionError, /option timeout must be a positive number/)
  })

  it('writes durations in nft syntax', () => {
    expect(nftDuration(2)).to.equal('2s')
    expect(nftDuration(90061)).to.equal('1d1h1m1s')
    expect(nftDuration(3600)).to.equal('1h')
  })
})

describe('nftables action in a network namespace (real nft)', function () {
  let pair: NetnsPair | undefined
  let port = 0
  const lines: string[] = []
  const ctx = {log: new SinkLogger('debug', [memorySink(lines)]), neverBan: (id: string) => id === '10.255.255.1'}

  before(async function () {
    const why = netnsUnavailable() ?? (hasProgram(['nft', '--version']) ? undefined : 'nft is not installed')
    if (why !== undefined) {
      console.log(`      (skipped: ${why})`)
      this.skip()
    }
    pair = new NetnsPair().create()
    port = await pair.startServer()
  })

  after(() => pair?.destroy())

  const list = (set: string): string => pair!.exec(pair!.victim, ['nft', 'list', 'set', 'inet', 'spylog', set])

  it('creates its table, sets and chain idempotently in one batch', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}), ctx)
    await runner.start()
    await runner.start()
    const table = pair!.exec(pair!.victim, ['nft', 'list', 'table', 'inet', 'spylog'])
    for (const set of ['addr-v4', 'addr-v6', 'net-v4', 'net-v6']) expect(table).to.include(`set ${set} {`)
    expect(table).to.match(/type filter hook input priority filter - 1; policy accept;/)
    expect(table.match(/saddr @/g)).to.have.length(4)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it('blocks a banned address, and the kernel lifts the ban when its time is up', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    await runner.start()
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.run('ban', {ticket: ticket(pair!.attackerIp, 2), params: {}})
    expect(list('addr-rej-v4')).to.include(pair!.attackerIp)
    const blocked = await pair!.connect(pair!.victimIp, port, 10_000)
    // refused while the element exists (a very slow machine may see it expire first)
    if (list('addr-rej-v4').includes(pair!.attackerIp)) expect(blocked).to.satisfy(refused)
    // no unban from spylog: the element's timeout does it
    expect(await pair!.connectUntil(pair!.victimIp, port, (r) => r === 'ok')).to.equal('ok')
    expect(list('addr-rej-v4')).not.to.include(pair!.attackerIp)
  })

  it('drops a banned address until unban lifts the ban at once; unbanning again is not an error', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}), ctx)
    await runner.start()
    const t = ticket(pair!.attackerIp, 3600)
    await runner.run('ban', {ticket: t, params: {}})
    // dropped: the attempt can only time out; the rule's counter proves the drop happened
    expect(await pair!.connect(pair!.victimIp, port, 1500)).to.equal('TIMEOUT')
    expect(pair!.exec(pair!.victim, ['nft', 'list', 'chain', 'inet', 'spylog', 'input'])).to.match(/ip saddr @addr-v4 counter packets [1-9]\d* bytes \d+ drop/)
    expect(list('addr-v4')).to.match(new RegExp(`${pair!.attackerIp.replaceAll('.', '\\.')} timeout 1h`))
    await runner.run('unban', {ticket: t, params: {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.run('unban', {ticket: t, params: {}})
  })

  it('a new ban of a banned address replaces its timeout; a permanent ban has none', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}), ctx)
    const t = ticket('192.0.2.44', 60)
    await runner.run('ban', {ticket: t, params: {}})
    expect(list('addr-v4')).to.match(/192\.0\.2\.44 timeout 1m/)
    await runner.run('ban', {ticket: {...t, bantime: 7200}, params: {}})
    expect(list('addr-v4')).to.match(/192\.0\.2\.44 timeout 2h/)
    await runner.run('ban', {ticket: {...t, bantime: -1}, params: {}})
    expect(list('addr-v4')).to.match(/192\.0\.2\.44(?! timeout)/)
    await runner.run('unban', {ticket: t, params: {}})
    expect(list('addr-v4')).not.to.include('192.0.2.44')
  })

  it('keeps an address banned while another jail of the same rule shape still holds it', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}), ctx)
    const a = ticket('192.0.2.77', 7200, 'jail-a')
    const b = ticket('192.0.2.77', 60, 'jail-b')
    await runner.run('ban', {ticket: a, params: {}})
    await runner.run('ban', {ticket: b, params: {}})
    expect(list('addr-v4'), 'a shorter ban does not shorten the entry').to.match(/192\.0\.2\.77 timeout 2h/)
    await runner.run('unban', {ticket: b, params: {}})
    expect(list('addr-v4'), 'jail-a still holds it').to.include('192.0.2.77')
    await runner.run('unban', {ticket: a, params: {}})
    expect(list('addr-v4')).not.to.include('192.0.2.77')
  })

  it('bans networks and IPv6 addresses', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    const net = ticket(`${pair!.attackerIp.replace(/\.\d+$/, '.128')}/24`, 3600)
    await runner.run('ban', {ticket: net, params: {}})
    expect(list('net-rej-v4')).to.include(pair!.attackerIp.replace(/\.\d+$/, '.0/24'))
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    await runner.run('unban', {ticket: net, params: {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')

    expect(await pair!.connect(pair!.victimIp6, port, 10_000)).to.equal('ok')
    const v6 = ticket(pair!.attackerIp6, 3600)
    await runner.run('ban', {ticket: v6, params: {}})
    expect(list('addr-rej-v6')).to.include(pair!.attackerIp6)
    expect(await pair!.connect(pair!.victimIp6, port, 10_000)).to.satisfy(refused)
    expect(await pair!.connect(pair!.victimIp, port, 10_000), 'IPv4 is not banned').to.equal('ok')
    await runner.run('unban', {ticket: v6, params: {}})
    // the reject may have hit neighbour discovery too: the neighbour entry recovers within seconds
    expect(await pair!.connectUntil(pair!.victimIp6, port, (r) => r === 'ok', 30_000)).to.equal('ok')
  })

  it('restricts a ban to the jail\'s ports and protocol (multiport)', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}, {blocktype: 'reject'}, ['multiport']), ctx)
    const other = port === 1 ? 2 : 1
    const t = ticket(pair!.attackerIp, 3600, 'other-port')
    await runner.run('ban', {ticket: t, params: {port: `${other},ssh`, protocol: 'tcp'}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000), 'a port the jail does not guard').to.equal('ok')
    const t2 = ticket(pair!.attackerIp, 3600, 'this-port')
    await runner.run('ban', {ticket: t2, params: {port: String(port), protocol: 'tcp'}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    const chain = pair!.exec(pair!.victim, ['nft', 'list', 'chain', 'inet', 'spylog', `input-tcp-${port}-rej`])
    expect(chain).to.match(new RegExp(`tcp dport ${port} counter`))
    await runner.run('unban', {ticket: t2, params: {port: String(port), protocol: 'tcp'}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.run('unban', {ticket: t, params: {port: `${other},ssh`, protocol: 'tcp'}})
  })

  it('runs a fail2ban jail.local action (nftables-multiport[port=…, blocktype=reject]) read by the fail2ban reader', async () => {
    const dir = tempTree({
      'filter.d/app.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n',
      'app.log': '',
      'jail.local': `[app]\nenabled = true\nfilter = app\nlogpath = @DIR@/app.log\naction = nftables-multiport[port="${port}", protocol=tcp, blocktype=reject]\n`,
    })
    const cfg = loadFail2banConfig(dir, {platform: 'linux'})
    const jail = cfg.jails.find((j) => j.name === 'app')!
    const ref = jail.actions[0]!
    const act = cfg.actions.find((a) => a.name === ref.name)!
    expect(act.builtin).to.deep.include({kind: 'firewall', variant: 'nftables'})
    const runner = builtinRunner({...act, options: {netns: pair!.victim, backend: 'nftables'}}, {log: ctx.log, platform: 'linux'})!
    expect(runner).to.be.instanceOf(NftablesRunner)
    await runner.start!()
    const t = ticket(pair!.attackerIp, jail.bantime, 'app')
    await runner.run('ban', {ticket: t, params: ref.parameters ?? {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    await runner.run('unban', {ticket: t, params: ref.parameters ?? {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it('creates its table again when it was removed behind its back (nft flush ruleset)', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    await runner.start()
    pair!.exec(pair!.victim, ['nft', 'flush', 'ruleset'])
    const t = ticket(pair!.attackerIp, 600, 'flushed')
    await runner.run('ban', {ticket: t, params: {}})
    expect(list('addr-rej-v4')).to.include(pair!.attackerIp)
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    await runner.run('unban', {ticket: t, params: {}})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
  })

  it('takes many concurrent first bans of a new rule shape: every one lands, the structure is made once', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}), ctx)
    const ids = Array.from({length: 24}, (_, i) => `198.18.${i >> 4}.${(i & 15) + 1}`)
    await Promise.all(ids.map((id) => runner.run('ban', {ticket: ticket(id, 600, 'many'), params: {protocol: 'udp'}})))
    const held = (await runner.list()).filter((e) => e.where === 'addr-udp-v4').map((e) => e.address)
    expect(held.sort()).to.deep.equal([...ids].sort())
    const chain = pair!.exec(pair!.victim, ['nft', 'list', 'chain', 'inet', 'spylog', 'input-udp'])
    expect(chain.match(/saddr @/g)).to.have.length(4)
    await Promise.all(ids.map((id) => runner.run('unban', {ticket: ticket(id, 600, 'many'), params: {protocol: 'udp'}})))
    expect((await runner.list()).filter((e) => e.where === 'addr-udp-v4')).to.deep.equal([])
  })

  it('refuses what is not an address, and protected addresses, without retry', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}), ctx)
    await runner.start()
    for (const [id, isAddress] of [['admin', false], ['1.2.3.4 } ; flush ruleset', true], ['10.255.255.1', true], ['192.0.2.1', false]] as const) {
      const err = await runner.run('ban', {ticket: {...ticket(id, 60), isAddress}, params: {}}).then(() => undefined, (e: unknown) => e)
      expect(err, id).to.be.instanceOf(ActionError)
      expect((err as ActionError).retry, id).to.equal(false)
    }
    expect(list('addr-v4')).not.to.include('10.255.255.1')
    expect(list('addr-v4')).not.to.include('192.0.2.1')
    expect(pair!.exec(pair!.victim, ['nft', 'list', 'tables'])).to.include('inet spylog')
  })

  it('runs nothing in a dry run', async () => {
    const dry: string[] = []
    const runner = new NftablesRunner(action({netns: pair!.victim, table: 'spylogdry'}), {log: new SinkLogger('info', [memorySink(dry)]), dryRun: true})
    await runner.start()
    await runner.run('ban', {ticket: ticket('192.0.2.9', 60), params: {}})
    expect(pair!.exec(pair!.victim, ['nft', 'list', 'tables'])).not.to.include('spylogdry')
    expect(dry.join('\n')).to.match(/would run: ip netns exec \S+ nft -f -.*192\.0\.2\.9 timeout 1m/)
  })

  it('lists what its sets hold, and clear() removes the table and every ban', async () => {
    const runner = new NftablesRunner(action({netns: pair!.victim}, {blocktype: 'reject'}), ctx)
    await runner.run('ban', {ticket: ticket(pair!.attackerIp, 3600, 'l1'), params: {}})
    await runner.run('ban', {ticket: ticket('2001:db8:77::/48', -1, 'l2'), params: {}})
    const entries = await runner.list()
    const a = entries.find((e) => e.address === pair!.attackerIp)
    expect(a).to.deep.include({where: 'addr-rej-v4'})
    expect(a!.expires).to.be.within(3000, 3600)
    expect(entries.find((e) => e.address === '2001:db8:77::/48')).to.deep.equal({address: '2001:db8:77::/48', where: 'net-rej-v6'})
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.satisfy(refused)
    await runner.clear()
    expect(pair!.exec(pair!.victim, ['nft', 'list', 'tables'])).not.to.include('spylog')
    expect(await runner.list()).to.deep.equal([])
    expect(await pair!.connect(pair!.victimIp, port, 10_000)).to.equal('ok')
    await runner.clear()
  })
})

describe('firewall factory (BUILTIN_ACTIONS.firewall)', () => {
  const log = new SinkLogger('info', [])
  const fw = (variant: string, options: Record<string, ParamValue> = {}): ActionConfig => ({
    name: `${variant}-multiport`, origin: {file: '/etc/fail2ban/jail.local', line: 7}, parameters: {}, options, builtin: {kind: 'firewall', variant, features: ['multiport']},
  })

  it('offers every built-in kind', () => {
    for (const k of ['firewall', 'mail', 'webhook', 'log']) expect(BUILTIN_ACTIONS[k], k).to.be.a('function')
    expect(builtinRunner({...fw('x'), builtin: undefined}, {log})).to.equal(undefined)
  })

  it('prefers nftables, then ipset + iptables, then iptables, whatever fail2ban family the action came from', () => {
    const has = (...p: string[]) => (q: string) => p.includes(q)
    for (const v of ['iptables', 'nftables', 'ipset', 'firewalld', 'ufw']) {
      expect(chooseFirewallBackend(fw(v), has('nft', 'ipset', 'iptables')), v).to.equal('nftables')
      expect(chooseFirewallBackend(fw(v), has('ipset', 'iptables')), v).to.equal('ipset')
      expect(chooseFirewallBackend(fw(v), has('iptables')), v).to.equal('iptables')
    }
    expect(chooseFirewallBackend(fw('nftables', {backend: 'iptables'}), has('nft'))).to.equal('iptables')
    expect(chooseFirewallBackend(fw('nftables', {backend: 'powershell'}), has('nft'))).to.equal('nftables')
    expect(() => chooseFirewallBackend(fw('nftables', {backend: 'pf'}))).to.throw(ActionError, /jail\.local:7: action "nftables-multiport": option backend: "pf"/)
  })

  it('builds the runner of the chosen backend on Linux (here: what is installed)', () => {
    const r = BUILTIN_ACTIONS.firewall(fw('iptables'), {log, platform: 'linux'})
    const want = findProgram('nft') !== undefined ? NftablesRunner : findProgram('ipset') !== undefined ? IpsetRunner : IptablesRunner
    expect(r).to.be.instanceOf(want)
    expect(BUILTIN_ACTIONS.firewall(fw('nftables', {backend: 'ipset'}), {log, platform: 'linux'})).to.be.instanceOf(IpsetRunner)
    expect(BUILTIN_ACTIONS.firewall(fw('nftables', {backend: 'iptables'}), {log, platform: 'linux'})).to.be.instanceOf(IptablesRunner)
  })

  it("defers to the registered 'windows-firewall' factory on win32, and says so when there is none", () => {
    expect(() => BUILTIN_ACTIONS.firewall(fw('iptables'), {log, platform: 'win32'})).to.throw(ActionError, /no Windows firewall backend/)
    const seen: string[] = []
    const fake: ActionFactory = (cfg) => {
      seen.push(cfg.name)
      return {name: cfg.name, unique: () => '', run: async () => {}}
    }
    BUILTIN_ACTIONS[WINDOWS_FIREWALL] = fake
    try {
      expect(BUILTIN_ACTIONS.firewall(fw('iptables'), {log, platform: 'win32'}).name).to.equal('iptables-multiport')
      expect(seen).to.deep.equal(['iptables-multiport'])
    } finally {
      delete BUILTIN_ACTIONS[WINDOWS_FIREWALL]
    }
    expect(firewallAction({linux: fake})(fw('nftables'), {log, platform: 'linux'}).name).to.equal('nftables-multiport')
  })
})

describe('argv runner (exec.ts)', () => {
  it('passes arguments and stdin literally, without a shell', async () => {
    const r = await execArgv([process.execPath, '-e', 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify([process.argv.slice(1),s])))', '$(touch /tmp/x); `id`', '; rm -rf /'], {input: '1.2.3.4 } ; flush ruleset\n'})
    expect(r.code).to.equal(0)
    expect(JSON.parse(r.stdout)).to.deep.equal([['$(touch /tmp/x); `id`', '; rm -rf /'], '1.2.3.4 } ; flush ruleset\n'])
  })

  it('kills a program that runs past its time limit, and reports one that cannot start', async () => {
    const r = await execArgv([process.execPath, '-e', 'setInterval(()=>{},1000)'], {timeoutMs: 300})
    expect(r.timedOut).to.equal(true)
    expect(r.signal).to.equal('SIGKILL')
    const err = await execArgv(['spylog-no-such-program-x']).then(() => undefined, (e: unknown) => e)
    expect(err).to.be.instanceOf(ExecStartError)
    expect((err as Error).message).to.equal('spylog-no-such-program-x: command not found')
  })

  it('keeps at most maxOutput bytes of output', async () => {
    const r = await execArgv([process.execPath, '-e', 'process.stdout.write("x".repeat(100000))'], {maxOutput: 1000})
    expect(r.stdout).to.have.length(1000)
  })
})
