import {expect} from 'chai'
import {Fail2banFilter, type Fail2banFilterSpec} from '../src/engine/filters/fail2ban.js'
import {parseTimeZone} from '../src/engine/dates/timezone.js'
import {ConfigError} from '../src/engine/fail2ban/errors.js'

const NOW = Date.UTC(2024, 4, 14, 12, 0, 0) / 1000
const opts = {timezone: parseTimeZone('UTC'), now: () => NOW}

function filter(spec: Partial<Fail2banFilterSpec> & {failregex: string[]}, checkAll = false): Fail2banFilter {
  return new Fail2banFilter({name: 't', ...spec}, {...opts, checkAll})
}

describe('Fail2banFilter', () => {
  it('cuts the date out, keeps its time, and reports the offender and captures', () => {
    const f = filter({failregex: ['^ host sshd\\[\\d+\\]: Failed password for <F-USER>\\S+</F-USER> from <HOST> port \\d+']})
    const r = f.processLine('May 14 10:11:12 host sshd[7]: Failed password for root from 192.0.2.7 port 22')
    expect(r.time).to.equal(Date.UTC(2024, 4, 14, 10, 11, 12) / 1000)
    expect(r.matches).to.have.length(1)
    const m = r.matches[0]
    expect([m.id, m.isAddress, m.data.user, m.lines]).to.deep.equal(['192.0.2.7', true, 'root', ['May 14 10:11:12 host sshd[7]: Failed password for root from 192.0.2.7 port 22']])
  })

  it('canonicalises addresses and keeps invalid ones as text', () => {
    const f = filter({failregex: ['^ from <HOST>$']})
    const id = (l: string) => f.processLine('May 14 10:11:12 from ' + l).matches[0]
    expect(id('2001:DB8:0:0::1')).to.include({id: '2001:db8::1', isAddress: true})
    expect(id('::ffff:192.0.2.9')).to.include({id: '192.0.2.9', isAddress: true})
    expect(id('192.0.2.09')).to.include({id: '192.0.2.09', isAddress: false})
    expect(id('mail.example.com')).to.include({id: 'mail.example.com', isAddress: false})
    const sub = filter({failregex: ['^ net <SUBNET>$']})
    expect(sub.processLine('May 14 10:11:12 net 2001:db8:1::/48').matches[0].id).to.equal('2001:db8:1::/48')
  })

  it('keys by <F-ID> when it differs from the address, keeping the address as ip', () => {
    const f = filter({failregex: ['^ session <F-ID/> from <HOST>$']})
    const m = f.processLine('May 14 10:11:12 session abc123 from 192.0.2.1').matches[0]
    expect([m.id, m.isAddress, m.data.ip]).to.deep.equal(['abc123', false, '192.0.2.1'])
  })

  it('searches failregexes in the <F-CONTENT> of the prefregex and merges its groups', () => {
    const f = filter({
      prefregex: '^ (?P<srv>\\w+)\\[\\d+\\]: <F-CONTENT>.+</F-CONTENT>$',
      failregex: ['^auth failed from <HOST>$', '^\\w+\\[\\d+\\]: auth failed from <HOST>$'],
    })
    const r = f.processLine('May 14 10:11:12 imapd[3]: auth failed from 198.51.100.4')
    expect(r.matches.map((m) => [m.regex, m.id, m.data.srv])).to.deep.equal([[0, '198.51.100.4', 'imapd']])
    expect(f.processLine('May 14 10:11:12 no prefix here auth failed from 198.51.100.4').prefregex).to.equal(false)
  })

  it('drops a failregex match that an ignoreregex also matches', () => {
    const f = filter({failregex: ['^ denied <HOST>'], ignoreregex: ['trusted']})
    expect(f.processLine('May 14 10:11:12 denied 192.0.2.1 (trusted)').matches).to.deep.equal([])
    expect(f.processLine('May 14 10:11:12 denied 192.0.2.1 (trusted)').ignoredBy).to.deep.equal([0])
    expect(f.processLine('May 14 10:11:12 denied 192.0.2.1').matches).to.have.length(1)
  })

  it('stops at the first failregex with a result unless asked to check all', () => {
    const spec = {failregex: ['^ x from <HOST>', '^ x from <HOST> port']}
    expect(filter(spec).processLine('May 14 10:11:12 x from 192.0.2.1 port 2').matches).to.have.length(1)
    expect(filter(spec, true).processLine('May 14 10:11:12 x from 192.0.2.1 port 2').matches).to.have.length(2)
  })

  it('merges a multi-line session by <F-MLFID>: address from an earlier line, success forgives', () => {
    const f = filter({
      prefregex: '^ <F-MLFID>srv\\[\\d+\\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$',
      failregex: [
        '^<F-NOFAIL>connect from</F-NOFAIL> <HOST>$',
        '^bad password for <F-USER>\\S+</F-USER>$',
        '^<F-MLFFORGET><F-MLFGAINED>accepted</F-MLFGAINED></F-MLFFORGET> <F-USER>\\S+</F-USER>$',
      ],
    })
    expect(f.processLine('May 14 10:11:10 srv[1]: connect from 192.0.2.50').matches[0]).to.include({nofail: true})
    const fail = f.processLine('May 14 10:11:11 srv[1]: bad password for eve').matches[0]
    expect([fail.id, fail.nofail, fail.pending, fail.lines.length]).to.deep.equal(['192.0.2.50', false, false, 2])
    // another session: a success for the same user forgives (no failure), the entry is forgotten
    f.processLine('May 14 10:11:12 srv[2]: connect from 192.0.2.60')
    f.processLine('May 14 10:11:13 srv[2]: bad password for ann')
    const ok = f.processLine('May 14 10:11:14 srv[2]: accepted ann').matches[0]
    expect(ok.nofail).to.equal(true)
  })

  it('reports each failure as a snapshot of its session, readable a datum at a time', () => {
    const f = filter({
      prefregex: '^ <F-MLFID>srv\\[\\d+\\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$',
      failregex: ['^<F-NOFAIL>try</F-NOFAIL> <F-USER>\\S+</F-USER> from <HOST>$', '^fail (?P<port>\\d+)$'],
    })
    const first = f.processLine('May 14 10:11:10 srv[9]: try a from 192.0.2.8').matches[0]
    const second = f.processLine('May 14 10:11:11 srv[9]: try b from 192.0.2.8').matches[0]
    const third = f.processLine('May 14 10:11:12 srv[9]: fail 2222').matches[0]
    // A later line of the session changes neither the data nor the datum of an earlier report.
    expect(first.data).to.deep.equal({mlfid: 'srv[9]:', nofail: 'try', user: 'a', ip4: '192.0.2.8', users: ['a']})
    expect(second.datum!('port')).to.equal(undefined)
    expect(third.datum!('port')).to.equal('2222')
    expect(third.datum!('users')).to.deep.equal(['a', 'b'])
    for (const m of [first, second, third]) {
      const d = m.data
      for (const k of Object.keys(d)) expect(m.datum!(k), k).to.deep.equal(d[k])
      expect(m.datum!('nothing')).to.equal(undefined)
    }
    expect(JSON.parse(JSON.stringify(third))).to.deep.include({id: '192.0.2.8', data: third.data})
  })

  it('counts several users in one session as a failure', () => {
    const f = filter({
      prefregex: '^ <F-MLFID>srv\\[\\d+\\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$',
      failregex: ['^<F-NOFAIL>try</F-NOFAIL> <F-USER>\\S+</F-USER> from <HOST>$'],
    })
    expect(f.processLine('May 14 10:11:10 srv[9]: try a from 192.0.2.8').matches[0].nofail).to.equal(true)
    const m = f.processLine('May 14 10:11:11 srv[9]: try b from 192.0.2.8').matches[0]
    expect([m.nofail, m.data.users]).to.deep.equal([false, ['a', 'b']])
  })

  it('lists a session\'s users sorted and once each, and keeps 100 sessions, dropping the oldest', () => {
    let now = Date.UTC(2024, 4, 14, 10, 0, 0) / 1000
    const f = new Fail2banFilter({
      name: 't',
      prefregex: '^ <F-MLFID>srv\\[\\d+\\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$',
      failregex: ['^<F-NOFAIL>connect from</F-NOFAIL> <HOST>$', '^bad password for <F-USER>\\S+</F-USER>$'],
    }, {timezone: parseTimeZone('UTC'), now: () => now})
    for (let k = 0; k <= 100; k++) f.processLine(`May 14 10:00:00 srv[${k}]: connect from 192.0.2.${k % 250}`)
    const users = ['carol', 'alice', 'carol', 'bob'].map((u) => f.processLine(`May 14 10:00:01 srv[7]: bad password for ${u}`).matches[0])
    expect(users.map((m) => m.data.users)).to.deep.equal([['carol'], ['alice', 'carol'], ['alice', 'carol'], ['alice', 'bob', 'carol']])
    expect(users.map((m) => m.id)).to.deep.equal(['192.0.2.7', '192.0.2.7', '192.0.2.7', '192.0.2.7'])
    // srv[0] was the oldest of 101 sessions: its address is gone; srv[1] still has its own.
    expect(f.processLine('May 14 10:00:02 srv[1]: bad password for eve').matches[0]).to.include({pending: false, id: '192.0.2.1'})
    expect(f.processLine('May 14 10:00:02 srv[0]: bad password for eve').matches[0]).to.include({pending: true, id: undefined})
    // A session older than five minutes is forgotten too.
    now += 301
    expect(f.processLine('May 14 10:05:03 srv[2]: bad password for eve').matches[0]).to.include({pending: true, id: undefined})
  })

  it('matches over several lines with <SKIPLINES> and removes the lines it used', () => {
    const f = filter({maxlines: 4, failregex: ['^ conn (?P<c>\\d+) from <HOST><SKIPLINES>^ conn (?P=c) auth failed$']})
    f.processLine('May 14 10:11:10 conn 1 from 192.0.2.3')
    f.processLine('May 14 10:11:11 noise')
    const m = f.processLine('May 14 10:11:12 conn 1 auth failed').matches[0]
    expect([m.id, m.lines.length]).to.deep.equal(['192.0.2.3', 2])
    expect(f.processLine('May 14 10:11:13 conn 1 auth failed').matches).to.deep.equal([])
  })

  it('uses the previous date for a line without one only within 60 s', () => {
    let now = Date.UTC(2024, 4, 14, 10, 11, 30) / 1000
    const f = new Fail2banFilter({name: 't', failregex: ['denied <HOST>']}, {timezone: parseTimeZone('UTC'), now: () => now})
    f.processLine('May 14 10:11:12 hello')
    expect(f.processLine('denied 192.0.2.1').matches[0].time).to.equal(Date.UTC(2024, 4, 14, 10, 11, 12) / 1000)
    now += 120
    expect(f.processLine('denied 192.0.2.1').matches[0].time).to.equal(undefined)
  })

  it('strips CR, cuts overlong lines and counts them', () => {
    const f = new Fail2banFilter({name: 't', failregex: ['^ x <HOST>$']}, {...opts, maxLineLength: 30})
    expect(f.processLine('May 14 10:11:12 x 192.0.2.1\r').matches).to.have.length(1)
    f.processLine('May 14 10:11:12 x ' + '1'.repeat(100))
    expect(f.truncated).to.equal(1)
  })

  it('refuses a failregex without an offender group, naming it', () => {
    expect(() => filter({failregex: ['^ user <F-USER>\\S+</F-USER>$']})).to.throw(ConfigError, /failregex 1 has no failure-id group/)
    expect(() => filter({failregex: ['^ (unclosed <HOST>']})).to.throw(ConfigError, /failregex 1: missing \)/)
  })
})
