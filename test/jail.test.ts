import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {JailConfig} from '../src/engine/config/model.js'
import {ConfigError} from '../src/engine/fail2ban/errors.js'
import {MemoryBanHistory} from '../src/engine/jails/history.js'
import {NeverBan} from '../src/engine/jails/ignore.js'
import {Jail, type JailDeps} from '../src/engine/jails/jail.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import type {Failure, Ticket} from '../src/engine/types.js'
import {prng, tempTree} from './support/files.js'

const origin = {file: '/etc/spylog/jails/test.lua', line: 1}

function jailCfg(over: Partial<JailConfig> = {}): JailConfig {
  return {
    name: 'sshd', origin, enabled: true, filters: ['sshd'], findtime: 600, maxretry: 3, bantime: 3600, actions: [], parameters: {},
    counter: {type: 'increment', capture: 'host', value: 'value', time: 'filter'}, cfilter: [], noreset: false, ignoreIp: [], ...over,
  }
}

function failure(id: string, time: number | undefined, data: Record<string, unknown> = {}, line?: string): Failure {
  return {filter: 'sshd', id, time, data: {host: id, ...data}, lines: [line ?? `Failed password for root from ${id} port 22 ssh2`]}
}

function make(over: Partial<JailConfig> = {}, deps: Partial<JailDeps> = {}): {jail: Jail; history: MemoryBanHistory; lines: string[]} {
  const lines: string[] = []
  const history = new MemoryBanHistory()
  const jail = new Jail(jailCfg(over), {
    log: new SinkLogger('debug', [memorySink(lines)]), history, neverBan: new NeverBan({ignoreSelf: false}), clock: () => 5_000_000, ...deps,
  })
  return {jail, history, lines}
}

describe('Jail', () => {
  it('bans on the maxretry-th failure with a fully filled ticket, then starts over', () => {
    const {jail, history} = make({parameters: {who: '%{user}@%{host}', mail: {to: 'root', subject: 'ban %{host} for %{bantime:06d}s'}}}, {globals: {site: 'lab'}})
    expect(jail.add(failure('203.0.113.5', 1000, {user: 'root'}), 1000)).to.equal(undefined)
    expect(jail.add(failure('203.0.113.5', 1010, {user: 'admin', port: '22'}), 1010)).to.equal(undefined)
    expect(jail.stats).to.deep.equal({currentlyFailed: 1, totalFailed: 2})
    expect(jail.failuresOf('203.0.113.5').map((f) => f.data['user'])).to.deep.equal(['root', 'admin'])
    const t = jail.add(failure('203.0.113.5', 1020, {user: 'oracle'}), 1020)!
    expect(t.uuid).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(t).to.deep.include({jail: 'sshd', filter: 'sshd', id: '203.0.113.5', isAddress: true, time: 5_000_000, bantime: 3600, banCount: 0})
    expect(t.failures.map((f) => f.time)).to.deep.equal([1000, 1010, 1020])
    expect(t.data).to.deep.equal({host: '203.0.113.5', user: 'oracle', port: '22', who: 'oracle@203.0.113.5', mail: {to: 'root', subject: 'ban 203.0.113.5 for 003600s'}})
    expect(history.count('203.0.113.5', 'sshd')).to.equal(1)
    // the counter was reset
    expect(jail.stats.currentlyFailed).to.equal(0)
    expect(jail.add(failure('203.0.113.5', 1030), 1030)).to.equal(undefined)
    expect(jail.failuresOf('203.0.113.5')).to.have.length(1)
  })

  it('keeps counting after a ban with noreset', () => {
    const {jail} = make({noreset: true, maxretry: 2})
    const got = [1, 2, 3, 4].map((i) => jail.add(failure('198.51.100.1', 1000 + i), 1000 + i) !== undefined)
    expect(got).to.deep.equal([false, true, true, true])
  })

  it('counts in event time: failures further apart than findtime never add up, whatever the receive time', () => {
    const {jail} = make({findtime: 60, maxretry: 2})
    expect(jail.add(failure('192.0.2.9', 1000), 9000)).to.equal(undefined)
    expect(jail.add(failure('192.0.2.9', 1100), 9000)).to.equal(undefined) // 100 s later in the log: new window
    expect(jail.add(failure('192.0.2.9', 1150), 9000)).to.not.equal(undefined)
  })

  it('counts in receive time with counter.time internal, or when a failure has no date', () => {
    const internal = make({findtime: 60, maxretry: 2, counter: {type: 'increment', capture: 'host', value: 'value', time: 'internal'}}).jail
    expect(internal.add(failure('192.0.2.9', 1000), 5000)).to.equal(undefined)
    expect(internal.add(failure('192.0.2.9', 1100), 5001)).to.not.equal(undefined)
    const undated = make({findtime: 60, maxretry: 2}).jail
    expect(undated.add(failure('192.0.2.9', undefined), 5000)).to.equal(undefined)
    expect(undated.add(failure('192.0.2.9', undefined), 5100)).to.equal(undefined)
  })

  it('replaying a log gives the tickets live operation gave', () => {
    const rnd = prng(42)
    const events: Failure[] = []
    let t = 1_700_000_000
    for (let i = 0; i < 400; i++) {
      t += Math.floor(rnd() * 40)
      events.push(failure(`192.0.2.${Math.floor(rnd() * 12)}`, t, {user: `u${i}`}))
    }
    const summary = (ts: Ticket[]): string[] => ts.map((x) => `${x.id} ${x.bantime} ${x.banCount} ${x.failures.map((f) => f.time).join(',')} ${String(x.data['user'])}`)
    const cfg = {findtime: 300, maxretry: 4, banTimeIncrement: {enabled: true}}
    const live = make(cfg).jail
    const liveTickets = events.map((e) => live.add(e, e.time! + rnd() * 3)).filter((x) => x !== undefined)
    const replay = make(cfg).jail
    const replayTickets = events.map((e) => replay.add(e, 1_800_000_000)).filter((x) => x !== undefined)
    expect(liveTickets.length).to.be.greaterThan(5)
    expect(summary(replayTickets)).to.deep.equal(summary(liveTickets))
    expect(liveTickets.some((x) => x.banCount > 0 && x.bantime === 7200)).to.equal(true)
  })

  it('accumulate adds the captured value (non-numbers count 1)', () => {
    const {jail} = make({maxretry: 10, counter: {type: 'accumulate', capture: 'host', value: 'bytes', time: 'filter'}})
    expect(jail.add(failure('192.0.2.1', 1, {bytes: '4'}), 1)).to.equal(undefined)
    expect(jail.add(failure('192.0.2.1', 2, {bytes: 'lots'}), 2)).to.equal(undefined) // +1
    expect(jail.add(failure('192.0.2.1', 3, {bytes: 4.5}), 3)).to.equal(undefined) // 9.5
    expect(jail.add(failure('192.0.2.1', 4, {bytes: '0.5'}), 4)?.failures).to.have.length(4)
  })

  it('fixed compares the captured value with maxretry directly and keeps nothing', () => {
    const {jail} = make({maxretry: 100, counter: {type: 'fixed', capture: 'host', value: 'value', time: 'internal'}})
    expect(jail.add(failure('192.0.2.1', 1, {value: '99'}), 1)).to.equal(undefined)
    const t = jail.add(failure('192.0.2.1', 2, {value: '150'}), 2)!
    expect(t.failures).to.have.length(1)
    expect(jail.add(failure('192.0.2.2', 3, {}), 3)).to.equal(undefined) // default 1
    expect(jail.stats).to.deep.equal({currentlyFailed: 0, totalFailed: 3})
  })

  it('counts and bans another capture (counter.capture)', () => {
    const {jail} = make({maxretry: 2, counter: {type: 'increment', capture: 'user', value: 'value', time: 'filter'}})
    expect(jail.add(failure('192.0.2.1', 1, {user: 'alice'}), 1)).to.equal(undefined)
    expect(jail.add(failure('192.0.2.2', 2, {}), 2)).to.equal(undefined) // no user: not counted
    const t = jail.add(failure('192.0.2.3', 3, {user: 'alice'}), 3)!
    expect(t).to.deep.include({id: 'alice', isAddress: false})
    // a whitelisted address is not counted even when the counter is by user
    const wl = make({maxretry: 1, counter: {type: 'increment', capture: 'user', value: 'value', time: 'filter'}}, {neverBan: new NeverBan({whiteIp: ['10.0.0.0/8'], ignoreSelf: false})}).jail
    expect(wl.add(failure('10.1.1.1', 1, {user: 'bob'}), 1)).to.equal(undefined)
  })

  it('grows the ban time from the history (bantime.increment), per jail or over all jails', () => {
    const history = new MemoryBanHistory()
    history.load([{id: '192.0.2.7', jail: 'sshd', time: 1, bantime: 3600}, {id: '192.0.2.7', jail: 'postfix', time: 2, bantime: 3600}])
    const perJail = make({maxretry: 1, banTimeIncrement: {enabled: true}}, {history}).jail
    const t1 = perJail.add(failure('192.0.2.7', 10), 10)!
    expect([t1.banCount, t1.bantime]).to.deep.equal([1, 7200])
    const t2 = perJail.add(failure('192.0.2.7', 11), 11)!
    expect([t2.banCount, t2.bantime]).to.deep.equal([2, 14400])
    const overall = make({maxretry: 1, banTimeIncrement: {enabled: true, overalljails: true, multipliers: [1, 3, 9, 27]}}, {history}).jail
    const t3 = overall.add(failure('192.0.2.7', 12), 12)!
    expect([t3.banCount, t3.bantime]).to.deep.equal([4, 3600 * 27])
    expect(history.count('192.0.2.7', undefined)).to.equal(5)
    const permanent = make({maxretry: 1, bantime: -1, banTimeIncrement: {enabled: true}}, {history}).jail
    expect(permanent.add(failure('192.0.2.7', 13), 13)!.bantime).to.equal(-1)
    expect(() => make({banTimeIncrement: {enabled: true, formula: 'ban.Time * os.system(1)'}})).to.throw(ConfigError, /test.lua:1: jail sshd: bantime.formula: unknown function/)
  })

  it('never counts whitelisted, ignoreip, loopback or own addresses', () => {
    const neverBan = new NeverBan({whiteIp: ['198.51.100.0/24'], ignoreIp: ['2001:db8:aa::/48']})
    const {jail, lines} = make({maxretry: 1}, {neverBan})
    const own = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).map((a) => a.address.split('%')[0]!)
    for (const id of ['198.51.100.9', '2001:db8:aa::1', '127.0.0.1', '::1', '::ffff:127.0.0.2', ...own]) expect(jail.add(failure(id, 1), 1), id).to.equal(undefined)
    expect(jail.stats).to.deep.equal({currentlyFailed: 0, totalFailed: 0})
    expect(lines.join('\n')).to.include('Ignore 198.51.100.9 (WHITE_IP 198.51.100.0/24)')
    expect(jail.add(failure('198.51.101.9', 1), 1)).to.not.equal(undefined)
  })

  it('asks the ignorecommand before a ban and records only admitted bans', async () => {
    const dir = tempTree({'check.sh': '#!/bin/sh\n[ "$1" = "192.0.2.50" ] && exit 0\nexit 1\n'})
    fs.chmodSync(path.join(dir, 'check.sh'), 0o755)
    const neverBan = new NeverBan({ignoreCommand: `${path.join(dir, 'check.sh')} <ip>`, ignoreSelf: false})
    const {jail, history} = make({maxretry: 1}, {neverBan})
    const ok = jail.add(failure('192.0.2.51', 1), 1)!
    const no = jail.add(failure('192.0.2.50', 1), 1)!
    expect(history.size).to.equal(0)
    expect(await jail.admit(ok)).to.equal(true)
    expect(await jail.admit(no)).to.equal(false)
    expect(history.count('192.0.2.51', 'sshd')).to.equal(1)
    expect(history.count('192.0.2.50', 'sshd')).to.equal(0)
    // a /64 ticket asks the command about the offender's address, not the network
    const v6dir = tempTree({'check.sh': '#!/bin/sh\nprintf "%s\\n" "$1" >> "$(dirname "$0")/asked"\nexit 1\n'})
    fs.chmodSync(path.join(v6dir, 'check.sh'), 0o755)
    const v6 = make({maxretry: 1, ipv6Prefix: 64}, {neverBan: new NeverBan({ignoreCommand: `${path.join(v6dir, 'check.sh')} <ip>`, ignoreSelf: false})}).jail
    const t6 = v6.add(failure('2001:db8:3:4::99', 1), 1)!
    expect(t6.id).to.equal('2001:db8:3:4::/64')
    expect(await v6.admit(t6)).to.equal(true)
    expect(fs.readFileSync(path.join(v6dir, 'asked'), 'utf8')).to.equal('2001:db8:3:4::99\n')
    // jails without a command admit at once (and have recorded the ban already)
    const plain = make({maxretry: 1})
    const t = plain.jail.add(failure('192.0.2.52', 1), 1)!
    expect(await plain.jail.admit(t)).to.equal(true)
    expect(plain.history.size).to.equal(1)
  })

  it('bans IPv6 offenders by /64 with ipv6Prefix, but never a network holding a protected address', () => {
    const {jail} = make({maxretry: 3, ipv6Prefix: 64})
    expect(jail.add(failure('2001:db8:1:2::1', 1), 1)).to.equal(undefined)
    expect(jail.add(failure('2001:db8:1:2:aaaa::77', 2), 2)).to.equal(undefined)
    expect(jail.add(failure('2001:db8:1:3::1', 2), 2)).to.equal(undefined) // another /64
    const t = jail.add(failure('2001:DB8:1:2:ffff:ffff:ffff:ffff', 3), 3)!
    expect(t).to.deep.include({id: '2001:db8:1:2::/64', isAddress: true})
    expect(t.failures.map((f) => f.id)).to.deep.equal(['2001:db8:1:2::1', '2001:db8:1:2:aaaa::77', '2001:DB8:1:2:ffff:ffff:ffff:ffff'])
    // IPv4 is unaffected
    expect(jail.add(failure('192.0.2.1', 1), 1)).to.equal(undefined)
    // a whitelisted neighbour inside the /64: the offender alone is counted and banned
    const guarded = make({maxretry: 2}, {ipv6Prefix: 64, neverBan: new NeverBan({whiteIp: ['2001:db8:9:9::10'], ignoreSelf: false})}).jail
    expect(guarded.add(failure('2001:db8:9:9::1', 1), 1)).to.equal(undefined)
    expect(guarded.add(failure('2001:db8:9:9::2', 1), 1)).to.equal(undefined)
    expect(guarded.add(failure('2001:db8:9:9::1', 2), 2)!.id).to.equal('2001:db8:9:9::1')
  })

  it('drops failures its capture filters reject', () => {
    const {jail} = make({maxretry: 1, cfilter: [{kind: 'list', origin, mode: 'deny', capture: 'user', values: ['GUEST'], nocase: true}]})
    expect(jail.add(failure('192.0.2.1', 1, {user: 'guest'}), 1)).to.equal(undefined)
    expect(jail.add(failure('192.0.2.1', 1, {user: 'root'}), 1)).to.not.equal(undefined)
  })

  it('bounds the failures kept: maxretry per offender, long lines cut, a budget of offenders', () => {
    const {jail} = make({maxretry: 3, noreset: true}, {maxDetailed: 2})
    const long = 'x'.repeat(5000)
    for (let i = 0; i < 5; i++) jail.add(failure('192.0.2.1', i, {}, long), i)
    const kept = jail.failuresOf('192.0.2.1')
    expect(kept.map((f) => f.time)).to.deep.equal([2, 3, 4])
    expect(kept[0]!.lines[0]!.length).to.equal(1025)
    // more repeat offenders than the budget: the oldest lose their failures, not their counts
    for (const id of ['192.0.2.2', '192.0.2.3']) for (const t of [10, 11]) jail.add(failure(id, t), t)
    expect(jail.failuresOf('192.0.2.2')).to.have.length(2)
    expect(jail.failuresOf('192.0.2.1')).to.deep.equal([])
    const t = jail.add(failure('192.0.2.1', 11), 11)!
    expect(t.failures.map((f) => f.time)).to.deep.equal([11])
  })

  it('keeps failure details right through long churn (bans, purges, evictions)', () => {
    const {jail} = make({maxretry: 3, findtime: 50}, {maxDetailed: 3})
    let tickets = 0
    for (let i = 0; i < 5000; i++) {
      const id = `198.18.${i >> 8 & 255}.${i & 255}`
      for (const dt of [0, 1, 2]) if (jail.add(failure(id, i + dt), i + dt) !== undefined) tickets++
      if (i % 500 === 0) jail.purge(10_000_000)
    }
    expect(tickets).to.equal(5000)
    // four offenders in progress with two failures each: the three latest keep theirs
    const ids = ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4']
    for (const id of ids) for (const t of [6000, 6001]) jail.add(failure(id, t), t)
    expect(ids.map((id) => jail.failuresOf(id).length)).to.deep.equal([0, 2, 2, 2])
    expect(jail.add(failure('203.0.113.4', 6002), 6002)!.failures).to.have.length(3)
  })

  it('keeps the failure of one-off offenders in a ring of the most recent ones', () => {
    const {jail} = make({maxretry: 2}, {maxFirst: 2})
    for (const id of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) jail.add(failure(id, 1), 1)
    expect(jail.failuresOf('192.0.2.1')).to.deep.equal([]) // pushed out of the ring
    expect(jail.failuresOf('192.0.2.3')).to.have.length(1)
    expect(jail.stats.currentlyFailed).to.equal(3) // counted all the same
    expect(jail.add(failure('192.0.2.1', 2), 2)!.failures.map((f) => f.time)).to.deep.equal([2])
    expect(jail.add(failure('192.0.2.2', 3), 3)!.failures.map((f) => f.time)).to.deep.equal([1, 3])
  })

  it('purges idle counters; event-time counters by the event clock', () => {
    const {jail} = make({findtime: 60, maxretry: 5})
    jail.add(failure('192.0.2.1', 1000), 2_000_000) // replayed: received long after
    jail.add(failure('192.0.2.2', 1100), 2_000_000)
    expect(jail.purge(2_000_000)).to.equal(1) // 192.0.2.1's window (1000..1060) has passed in event time
    expect(jail.stats.currentlyFailed).to.equal(1)
    expect(jail.failuresOf('192.0.2.1')).to.deep.equal([])
    expect(jail.purge(2_000_100)).to.equal(1)
    jail.add(failure('192.0.2.3', 3000), 3000)
    jail.forget('192.0.2.3')
    expect(jail.stats.currentlyFailed).to.equal(0)
  })

  it('takes hostile failures without throwing and without unbounded keys', () => {
    const {jail} = make({maxretry: 2, counter: {type: 'increment', capture: 'user', value: 'value', time: 'filter'}})
    const huge = 'A'.repeat(70000)
    const odd: Failure[] = [
      failure('\u0000\ud800', 1, {user: huge}), failure('x', Number.NaN, {user: {toString: null}}), failure('y', 1, {user: null}),
      failure('$(reboot)', Number.POSITIVE_INFINITY, {user: '\u0000'}), failure(huge, 1, {user: huge + 'B'}),
    ]
    const tickets = odd.map((f) => jail.add(f, 1))
    expect(tickets.slice(0, 4)).to.deep.equal([undefined, undefined, undefined, undefined])
    const t = tickets[4]! // the two huge users share their first 512 characters
    expect(t.id).to.have.length(512)
    expect(t.isAddress).to.equal(false)
  })

  it('reports unknown parameters and leaves them as written', () => {
    const {jail, lines} = make({maxretry: 1, parameters: {x: 'a %{nope} %% b'}})
    expect(jail.add(failure('192.0.2.1', 1), 1)!.data['x']).to.equal('a %{nope} % b')
    expect(lines.join('\n')).to.match(/ERROR \[sshd\] unknown parameter\(s\).*nope/)
  })
})
