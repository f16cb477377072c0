import {expect} from 'chai'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {ConfigError} from '../src/engine/fail2ban/errors.js'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import type {FilterConfig} from '../src/engine/config/model.js'
import {UTC} from '../src/engine/dates/timezone.js'
import {buildFilter} from '../src/engine/filters/build.js'
import {Fail2banFilter} from '../src/engine/filters/fail2ban.js'
import type {Filter} from '../src/engine/filters/filter.js'
import {AddressSet, LuaSpylogFilter} from '../src/engine/filters/luaspylog.js'
import type {LineResult} from '../src/engine/filters/types.js'

const NOW = 1_700_000_000
const opts = {timezone: UTC, now: () => NOW}

function cfg(o: Partial<FilterConfig>): FilterConfig {
  return {
    name: 'test', origin: {file: 'filters/test.lua', line: 1}, enabled: true, sources: ['s'], engine: 'lua',
    failregex: [], ignoreregex: [], exclude: [], stop: false, cfilter: [], ...o,
  }
}

function utc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number {
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000
}

/** The one match of a line, as [regex index, id, time, data]. */
function one(f: Filter, line: string): [number, string | undefined, number | undefined, Record<string, unknown>] {
  const r = f.processLine(line)
  expect(r.matches, line).to.have.length(1)
  const m = r.matches[0]!
  return [m.regex, m.id, m.time, m.data]
}

function none(f: Filter, line: string): LineResult {
  const r = f.processLine(line)
  expect(r.matches, line).to.deep.equal([])
  return r
}

// Lines in the shape of a PBX warning log (as in lua-spylog's FreeSWITCH example).
const AUTH = '^(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+) %[WARNING%] registrar.c:%d+ auth failure %([A-Z]+%) on profile %\'[^\']+%\' for %[.-%] from ip ([0-9.]+)%s*$'
const ACL = '^(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+) %[WARNING%] acl.c:%d+ IP ([0-9.]+) rejected by list "[^"]*"%s*$'
const L1 = "2024-03-01 10:00:00.123456 [WARNING] registrar.c:1234 auth failure (REGISTER) on profile 'internal' for [100@pbx] from ip 203.0.113.5"
const L2 = '2024-03-01 10:00:05.5 [WARNING] acl.c:99 IP 198.51.100.7 rejected by list "domains"'

describe('LuaSpylogFilter: lua engine (lua-spylog semantics)', () => {
  it('two captures: date then host; the captured date is read with the default templates', () => {
    const f = new LuaSpylogFilter(cfg({failregex: [AUTH, ACL]}), opts)
    expect(one(f, L1)).to.deep.equal([0, '203.0.113.5', utc(2024, 3, 1, 10, 0, 0), {date: '2024-03-01 10:00:00.123456', host: '203.0.113.5'}])
    expect(one(f, L2)).to.deep.equal([1, '198.51.100.7', utc(2024, 3, 1, 10, 0, 5), {date: '2024-03-01 10:00:05.5', host: '198.51.100.7'}])
    expect(f.failregex.map((r) => r.hits)).to.deep.equal([1, 1])
    expect(f.dates.templates.reduce((n, t) => n + t.hits, 0)).to.equal(2)
    const r = f.processLine(L1)
    expect(r.time).to.equal(utc(2024, 3, 1, 10, 0, 0))
    expect(r.dateTemplate).to.be.at.least(0)
    expect(r.matches[0]!.isAddress).to.equal(true)
    expect(r.matches[0]!.lines).to.deep.equal([L1])
  })

  it('one capture: the host, stamped with the current time', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['Source Network Address:%s+([0-9.]+)']}), opts)
    expect(one(f, 'Logon failure. Source Network Address:  192.0.2.44 Source Port: 0')).to.deep.equal([0, '192.0.2.44', NOW, {host: '192.0.2.44'}])
  })

  it('no capture: the whole match is the host; values past the second are dropped', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['%d+%.%d+%.%d+%.%d+']}), opts)
    expect(one(f, 'from 192.0.2.1 port 22')).to.deep.equal([0, '192.0.2.1', NOW, {host: '192.0.2.1'}])
    const g = new LuaSpylogFilter(cfg({failregex: ['(%S+) (%S+) user=(%S+)']}), opts)
    const [, id, time, data] = one(g, 'nodate 192.0.2.9 user=bob')
    expect([id, data]).to.deep.equal(['192.0.2.9', {date: 'nodate', host: '192.0.2.9'}])
    expect(time).to.equal(undefined) // "nodate" is not a date
    expect(g.badDates).to.equal(1)
  })

  it('position captures are numbers', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['()ip=(%S+)']}), opts)
    const [, id, , data] = one(f, 'xx ip=192.0.2.3')
    expect(id).to.equal('192.0.2.3')
    expect(data).to.deep.equal({date: 4, host: '192.0.2.3'})
  })

  it('hint: a line without it runs no regex at all', () => {
    const f = new LuaSpylogFilter(cfg({hint: '[WARNING]', failregex: [AUTH, ACL]}), opts)
    none(f, L1.replace('[WARNING]', '[NOTICE]'))
    expect(f.failregex.map((r) => r.hits)).to.deep.equal([0, 0])
    one(f, L1)
  })

  it('the first failregex that matches wins (checkAll reports every one)', () => {
    const both = ['ip ([0-9.]+)', 'from ip (%S+)']
    const f = new LuaSpylogFilter(cfg({failregex: both}), opts)
    expect(one(f, 'from ip 192.0.2.5')[0]).to.equal(0)
    expect(f.failregex.map((r) => r.hits)).to.deep.equal([1, 0])
    const all = new LuaSpylogFilter(cfg({failregex: both}), {...opts, checkAll: true})
    expect(all.processLine('from ip 192.0.2.5').matches.map((m) => m.regex)).to.deep.equal([0, 1])
  })

  it('ignoreregex drops the line: no later failregex is tried', () => {
    const f = new LuaSpylogFilter(cfg({failregex: [AUTH, 'from ip (%S+)'], ignoreregex: ['for %[100@', 'never']}), opts)
    const r = none(f, L1)
    expect(r.ignoredBy).to.deep.equal([0])
    expect(f.failregex.map((r) => r.hits)).to.deep.equal([1, 0])
    expect(f.ignoreregex.map((r) => r.hits)).to.deep.equal([1, 0])
    one(f, L1.replace('[100@', '[200@'))
  })

  it('exclude: addresses and networks (IPv4 and IPv6) drop the match', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['from ([%x.:]+)'], exclude: ['192.0.2.10', '198.51.100.0/24', '2001:db8::/32']}), opts)
    none(f, 'from 192.0.2.10')
    none(f, 'from 198.51.100.200')
    none(f, 'from 2001:DB8:0::7')
    expect(one(f, 'from 192.0.2.11')[1]).to.equal('192.0.2.11')
    expect(one(f, 'from 2001:db9::1')[1]).to.equal('2001:db9::1')
    expect(f.excluded).to.equal(3)
  })

  it('normalises the host; a host that is no address is kept as text', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['from (%S+)']}), opts)
    expect(f.processLine('from ::FFFF:192.0.2.1').matches[0]).to.deep.include({id: '192.0.2.1', isAddress: true})
    expect(f.processLine('from 2001:DB8:0:0:0:0:0:1').matches[0]).to.deep.include({id: '2001:db8::1', isAddress: true})
    expect(f.processLine('from host.example.org').matches[0]).to.deep.include({id: 'host.example.org', isAddress: false})
  })

  it('capture names: one list per failregex; any name is data; date_format reads the date', () => {
    const f = new LuaSpylogFilter(cfg({
      failregex: ['^(%S+ %S+) login failed user=(%S*) ip=(%S+)', '^(%S+ %S+) call from ip=(%S+) to (%d+)'],
      capture: [['date', 'user', 'host'], ['date', 'host', 'number']],
      dateFormat: '%Y-%m-%d %H:%M:%S',
    }), opts)
    expect(one(f, '2024-05-06 07:08:09 login failed user= ip=192.0.2.20')).to.deep.equal([
      0, '192.0.2.20', utc(2024, 5, 6, 7, 8, 9), {date: '2024-05-06 07:08:09', user: '', host: '192.0.2.20'},
    ])
    expect(one(f, '2024-05-06 07:08:10 call from ip=192.0.2.21 to 74951234567')).to.deep.equal([
      1, '192.0.2.21', utc(2024, 5, 6, 7, 8, 10), {date: '2024-05-06 07:08:10', host: '192.0.2.21', number: '74951234567'},
    ])
    expect(f.dates.templates).to.deep.equal([{name: '%Y-%m-%d %H:%M:%S', hits: 2}])
    // A date that does not fit the format: time unknown.
    const r = f.processLine('06/05/2024 login failed user=x ip=192.0.2.22')
    expect(r.matches).to.have.length(0) // "06/05/2024 login" is taken as the date and "failed" breaks the pattern
    const g = new LuaSpylogFilter(cfg({failregex: ['^(%S+) bad ip=(%S+)'], capture: [['date', 'host']], dateFormat: '%Y-%m-%d'}), opts)
    expect(one(g, '06/05/2024 bad ip=192.0.2.22')[2]).to.equal(undefined)
    expect(g.badDates).to.equal(1)
  })

  it('capture names without a host: no offender id, the data is kept', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['call to (%d+) cost (%d+)'], capture: [['number', 'value']]}), opts)
    const r = f.processLine('call to 74951234567 cost 3')
    expect(r.matches[0]).to.deep.include({id: undefined, isAddress: false, time: NOW, data: {number: '74951234567', value: '3'}})
  })

  it('cuts CR and overlong lines; noDate uses the current time', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['^(%S+ %S+) x (%S+)$']}), {...opts, maxLineLength: 40})
    expect(one(f, '2024-01-02 03:04:05 x 192.0.2.1\r')[1]).to.equal('192.0.2.1')
    expect(f.processLine('2024-01-02 03:04:05 x 192.0.2.1', true).matches[0]!.time).to.equal(NOW)
    f.processLine('x'.repeat(100))
    expect(f.truncated).to.equal(1)
  })

  it('Lua pattern semantics: lazy -, %b, anchors, sets, non-ASCII text', () => {
    const f = new LuaSpylogFilter(cfg({failregex: ['^<(.-)> %b() from (%S+)$', 'Адрес сети источника:%s+([0-9.]+)']}), opts)
    expect(one(f, '<a> (nested (x)) from 192.0.2.1')).to.deep.equal([0, '192.0.2.1', undefined, {date: 'a', host: '192.0.2.1'}])
    expect(one(f, 'Ошибка входа. Адрес сети источника:  192.0.2.2')).to.deep.equal([1, '192.0.2.2', NOW, {host: '192.0.2.2'}])
  })
})

describe('LuaSpylogFilter: pcre engine', () => {
  const SETUP = String.raw`^(\d\d\d\d\-\d\d\-\d\d \d\d:\d\d:\d\d) !\d+! (?:SIP|H323) setup request from \[([0-9.]+)\] agent \[.*?\] number \[.*?\]`

  it('two groups: date then host', () => {
    const f = new LuaSpylogFilter(cfg({engine: 'pcre', hint: 'setup request from', failregex: [SETUP]}), opts)
    expect(one(f, '2024-02-03 04:05:06 !12! SIP setup request from [192.0.2.30] agent [x] number [123]')).to.deep.equal([
      0, '192.0.2.30', utc(2024, 2, 3, 4, 5, 6), {date: '2024-02-03 04:05:06', host: '192.0.2.30'},
    ])
    none(f, '2024-02-03 04:05:06 !12! SIP setup request to [192.0.2.30]')
  })

  it('a first group that did not participate makes lua-spylog try the next failregex', () => {
    const f = new LuaSpylogFilter(cfg({engine: 'pcre', failregex: [String.raw`(?:user (\w+) )?from (\S+)`, String.raw`from (\S+)`]}), opts)
    expect(one(f, 'login from 192.0.2.31')).to.deep.equal([1, '192.0.2.31', NOW, {host: '192.0.2.31'}])
    expect(one(f, 'user bob from 192.0.2.32')).to.deep.equal([0, '192.0.2.32', undefined, {date: 'bob', host: '192.0.2.32'}])
    expect(f.failregex.map((r) => r.hits)).to.deep.equal([1, 1])
  })

  it('a missing second group makes the first the host; no group: the whole match', () => {
    const f = new LuaSpylogFilter(cfg({engine: 'pcre', failregex: [String.raw`ip=(\S+)(?: port=(\d+))?`]}), opts)
    expect(one(f, 'ip=192.0.2.33')).to.deep.equal([0, '192.0.2.33', NOW, {host: '192.0.2.33'}])
    const g = new LuaSpylogFilter(cfg({engine: 'pcre', failregex: [String.raw`\d+\.\d+\.\d+\.\d+`]}), opts)
    expect(one(g, 'from 192.0.2.34 x')[1]).to.equal('192.0.2.34')
  })

  it('ignoreregex and capture names with PCRE', () => {
    const f = new LuaSpylogFilter(cfg({
      engine: 'pcre', failregex: [String.raw`auth fail user \[(.*?)\] from \[([0-9.]+)\]`], capture: [['user', 'host']],
      ignoreregex: [String.raw`user \[(?i:monitor)\]`],
    }), opts)
    expect(one(f, 'auth fail user [alice] from [192.0.2.35]')).to.deep.equal([0, '192.0.2.35', NOW, {user: 'alice', host: '192.0.2.35'}])
    expect(none(f, 'auth fail user [MONITOR] from [192.0.2.35]').ignoredBy).to.deep.equal([0])
  })
})

describe('LuaSpylogFilter: fail2ban engine (tags)', () => {
  it('<HOST>, <F-USER>, and a captured <F-DATE>', () => {
    const f = new LuaSpylogFilter(cfg({
      engine: 'fail2ban', dateFormat: '%d/%b/%Y:%H:%M:%S %z',
      failregex: [String.raw`^<HOST> - <F-USER>\S+</F-USER> \[<F-DATE>[^\]]+</F-DATE>\] "POST /login`],
    }), opts)
    const [i, id, time, data] = one(f, '2001:DB8::5 - bob [10/Oct/2023:13:55:36 +0200] "POST /login HTTP/1.1" 401')
    expect([i, id, time]).to.deep.equal([0, '2001:db8::5', utc(2023, 10, 10, 11, 55, 36)])
    expect(data).to.deep.include({user: 'bob', date: '10/Oct/2023:13:55:36 +0200', ip6: '2001:DB8::5'})
    expect(f.failregex[0]!.expanded).to.contain('(?P<ip4>')
  })

  it('datepattern: the date is found in the line and cut out before matching, as fail2ban does', () => {
    const f = new LuaSpylogFilter(cfg({
      engine: 'fail2ban', datepattern: '^%Y-%m-%d %H:%M:%S',
      failregex: [String.raw`^\s*api token rejected for <F-USER>\S+</F-USER> from <HOST>$`],
    }), opts)
    const r = f.processLine('2024-07-08 09:10:11 api token rejected for svc from 192.0.2.40')
    expect(r.matches).to.have.length(1)
    expect(r.matches[0]).to.deep.include({id: '192.0.2.40', time: utc(2024, 7, 8, 9, 10, 11)})
    expect(r.dateTemplate).to.equal(0)
    expect(f.dates.templates[0]!.hits).to.equal(1)
  })

  it('datepattern with the lua engine: the line is matched as is', () => {
    const f = new LuaSpylogFilter(cfg({datepattern: '^%Y-%m-%d %H:%M:%S', failregex: ['^%S+ %S+ denied (%S+)$']}), opts)
    expect(one(f, '2024-07-08 09:10:11 denied 192.0.2.41')).to.deep.equal([0, '192.0.2.41', utc(2024, 7, 8, 9, 10, 11), {host: '192.0.2.41'}])
  })
})

describe('LuaSpylogFilter: configuration errors', () => {
  it('bad regexes, capture lists, missing host groups, bad formats', () => {
    const cases: [Partial<FilterConfig>, RegExp][] = [
      [{failregex: []}, /no failregex given/],
      [{failregex: ['(%d+']}, /failregex 1: unfinished capture/],
      [{engine: 'pcre', failregex: ['ok (x)', '(']}, /failregex 2: /],
      [{failregex: ['(x)'], ignoreregex: ['[x']}, /ignoreregex 1: malformed pattern/],
      [{failregex: ['(x)', '(y)'], capture: [['host']]}, /1 capture list\(s\) for 2 failregex\(es\)/],
      [{engine: 'fail2ban', failregex: ['user <F-USER>\\S+</F-USER>']}, /failregex 1 has no host group/],
      [{engine: 'fail2ban', failregex: ['<HOST>'], capture: [['host']]}, /`capture` cannot be used/],
      [{failregex: ['(x)'], dateFormat: '%Q'}, /bad date format/],
      [{failregex: ['(x)'], datepattern: '(%Y'}, /bad datepattern/],
    ]
    for (const [o, re] of cases) {
      let err: unknown
      try {
        new LuaSpylogFilter(cfg({...o, fieldOrigins: {failregex: {file: 'filters/test.lua', line: 7}}}), opts)
      } catch (e) {
        err = e
      }
      expect(err, re.source).to.be.instanceOf(ConfigError)
      expect((err as ConfigError).message, re.source).to.match(re)
      expect((err as ConfigError).message).to.match(/^filters\/test\.lua:[17]: FILTER "test"\./)
    }
  })

  it('AddressSet', () => {
    const s = new AddressSet(['192.0.2.1', '10.0.0.0/8', '2001:db8::/48', 'bogus'])
    expect(s.size).to.equal(3)
    expect(s.has('192.0.2.1')).to.equal(true)
    expect(s.has('10.255.0.1')).to.equal(true)
    expect(s.has('::ffff:10.1.2.3')).to.equal(true)
    expect(s.has('2001:db8:0:ffff::1')).to.equal(true)
    expect(s.has('2001:db8:1::1')).to.equal(false)
    expect(s.has('11.0.0.1')).to.equal(false)
    expect(s.has('bogus')).to.equal(false)
  })
})

describe('buildFilter', () => {
  it('fail2ban filter.d filters run on Fail2banFilter, every other filter on LuaSpylogFilter; one interface', () => {
    const f2b = buildFilter(cfg({
      engine: 'fail2ban', failregex: [String.raw`Failed password for \S+ from <HOST>`],
      fail2ban: {maxlines: 1, usedns: 'warn', datepattern: '{^LN-BEG}'},
    }), opts)
    expect(f2b).to.be.instanceOf(Fail2banFilter)
    const lua = buildFilter(cfg({engine: 'fail2ban', failregex: [String.raw`Failed password for \S+ from <HOST>`]}), opts)
    expect(lua).to.be.instanceOf(LuaSpylogFilter)
    const line = '2024-01-02 03:04:05 sshd[1]: Failed password for root from 192.0.2.50 port 22'
    for (const f of [f2b, lua]) {
      const r = f.processLine(line)
      expect(r.matches.map((m) => m.id), f.constructor.name).to.deep.equal(['192.0.2.50'])
      expect(f.failregex[0]!.hits).to.equal(1)
      expect(f.maxlines).to.equal(1)
      expect(f.prefregex).to.equal(undefined)
      expect(f.dates.templates).to.be.an('array')
      f.reset()
    }
    expect(f2b.processLine(line).time).to.equal(utc(2024, 1, 2, 3, 4, 5))
  })

  it('builds the filters of a loaded lua-spylog directory (cp1251 file included)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spylog-lsf-'))
    try {
      fs.mkdirSync(path.join(dir, 'filters'))
      fs.writeFileSync(path.join(dir, 'spylog.lua'), 'WHITE_IP{"192.0.2.0/28"}')
      fs.writeFileSync(path.join(dir, 'filters/auth.lua'), `
FILTER{ "pbx-auth";
  enabled = true;
  source  = "file:/var/log/pbx.log";
  exclude = WHITE_IP;
  hint    = "[WARNING]";
  failregex = {
    "${AUTH}";
    '${ACL}';
  };
}`)
      // "Адрес сети источника" in cp1251, declared on the first line.
      const head = Buffer.from('-- encoding: cp1251\nFILTER{"logon", enabled = true, source = "trap:udp://127.0.0.1", trap = 4625, failregex = "')
      const word = Buffer.from([0xc0, 0xe4, 0xf0, 0xe5, 0xf1, 0x20, 0xf1, 0xe5, 0xf2, 0xe8, 0x20, 0xe8, 0xf1, 0xf2, 0xee, 0xf7, 0xed, 0xe8, 0xea, 0xe0])
      fs.writeFileSync(path.join(dir, 'filters/logon.lua'), Buffer.concat([head, word, Buffer.from(':%s+([0-9.]+)"}\n')]))
      const c = loadLuaConfig(dir)
      const [auth, logon] = c.filters.map((x) => buildFilter(x, opts))
      expect(one(auth!, L1)[1]).to.equal('203.0.113.5')
      none(auth!, L1.replace('203.0.113.5', '192.0.2.3')) // WHITE_IP
      expect(one(logon!, 'Адрес сети источника: 198.51.100.9')[1]).to.equal('198.51.100.9')
    } finally {
      fs.rmSync(dir, {recursive: true, force: true})
    }
  })
})
