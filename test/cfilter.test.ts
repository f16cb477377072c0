import {expect} from 'chai'
import path from 'node:path'
import type {CaptureFilterConfig} from '../src/engine/config/model.js'
import {buildCaptureFilter, buildCaptureFilters, PrefixTable} from '../src/engine/jails/cfilter.js'
import {ConfigError} from '../src/engine/fail2ban/errors.js'
import {tempTree} from './support/files.js'

const origin = {file: '/etc/spylog/jails/voip.lua', line: 7}

describe('capture filters', () => {
  it('acl: IPv4/IPv6 addresses and networks, deny and allow', () => {
    const cfg: CaptureFilterConfig = {kind: 'acl', origin, mode: 'deny', capture: 'host', networks: ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']}
    const deny = buildCaptureFilter(cfg)
    expect(deny({host: '10.9.8.7'})).to.equal(false)
    expect(deny({host: '192.0.2.7'})).to.equal(false)
    expect(deny({host: '192.0.2.8'})).to.equal(true)
    expect(deny({host: '2001:db8:ffff::1'})).to.equal(false)
    expect(deny({host: '2001:db9::1'})).to.equal(true)
    expect(deny({host: '::ffff:10.0.0.1'})).to.equal(false)
    expect(deny({host: 'garbage\u0000'})).to.equal(true)
    expect(deny({})).to.equal(true)
    const allow = buildCaptureFilter({...cfg, mode: 'allow'})
    expect(allow({host: '10.0.0.1'})).to.equal(true)
    expect(allow({host: '11.0.0.1'})).to.equal(false)
    expect(allow({})).to.equal(false)
  })

  it('list: exact or case-insensitive values of any capture', () => {
    const cs = buildCaptureFilter({kind: 'list', origin, mode: 'deny', capture: 'user', values: ['admin', 'root'], nocase: false})
    expect(cs({user: 'admin'})).to.equal(false)
    expect(cs({user: 'Admin'})).to.equal(true)
    const ci = buildCaptureFilter({kind: 'list', origin, mode: 'allow', capture: 'user', values: ['ADMIN'], nocase: true})
    expect(ci({user: 'aDmIn'})).to.equal(true)
    expect(ci({user: 'bob'})).to.equal(false)
    expect(ci({user: 42})).to.equal(false)
    const num = buildCaptureFilter({kind: 'list', origin, mode: 'allow', capture: 'code', values: ['401'], nocase: false})
    expect(num({code: 401})).to.equal(true)
  })

  it('regex: Lua patterns and PCRE', () => {
    const lua = buildCaptureFilter({kind: 'regex', origin, mode: 'deny', capture: 'number', patterns: ['^%+?7%d%d%d', '^00'], engine: 'lua'})
    expect(lua({number: '+74951234567'})).to.equal(false)
    expect(lua({number: '0044123'})).to.equal(false)
    expect(lua({number: '44123'})).to.equal(true)
    const pcre = buildCaptureFilter({kind: 'regex', origin, mode: 'allow', capture: 'ua', patterns: ['(?i)^(?:curl|python-requests)/\\d'], engine: 'pcre'})
    expect(pcre({ua: 'Python-Requests/2.31'})).to.equal(true)
    expect(pcre({ua: 'Mozilla/5.0'})).to.equal(false)
    expect(() => buildCaptureFilter({kind: 'regex', origin, mode: 'deny', capture: 'x', patterns: ['(unclosed'], engine: 'pcre'})).to.throw(ConfigError, /^\/etc\/spylog\/jails\/voip.lua:7: cfilter: regex/)
  })

  it('prefix: longest match, inline lists and maps, and prefix files', () => {
    const t = new PrefixTable()
    t.add('7', 'Russia')
    t.add('7495', 'Moscow')
    t.add('1', 'NANP')
    expect(t.longest('74951234')).to.deep.equal({prefix: '7495', label: 'Moscow'})
    expect(t.longest('7812')).to.deep.equal({prefix: '7', label: 'Russia'})
    expect(t.longest('44')).to.equal(undefined)
    const inline = buildCaptureFilter({kind: 'prefix', origin, mode: 'allow', capture: 'number', prefixes: {'7495': 'Moscow', '44': ''}})
    expect(inline({number: '74950001'})).to.equal(true)
    expect(inline({number: '4420'})).to.equal(true)
    expect(inline({number: '33'})).to.equal(false)
    const dir = tempTree({'prefixes.txt': '# premium-rate numbers\n900   premium\n1900\n\n  882 intl-network\n'})
    const fromFile = buildCaptureFilter({kind: 'prefix', origin, mode: 'deny', capture: 'number', file: path.join(dir, 'prefixes.txt')})
    expect(fromFile({number: '9001234'})).to.equal(false)
    expect(fromFile({number: '19005'})).to.equal(false)
    expect(fromFile({number: '88212'})).to.equal(false)
    expect(fromFile({number: '8001234'})).to.equal(true)
    expect(PrefixTable.fromFile(path.join(dir, 'prefixes.txt')).longest('8823')).to.deep.equal({prefix: '882', label: 'intl-network'})
    expect(() => buildCaptureFilter({kind: 'prefix', origin, mode: 'deny', capture: 'number', file: path.join(dir, 'missing.txt')})).to.throw(ConfigError, /voip.lua:7: prefix: prefix file .*missing.txt: no such file/)
  })

  it('a list of filters keeps a failure only when every filter keeps it', () => {
    const all = buildCaptureFilters([
      {kind: 'acl', origin, mode: 'deny', capture: 'host', networks: ['10.0.0.0/8']},
      {kind: 'list', origin, mode: 'deny', capture: 'user', values: ['guest'], nocase: true},
    ])!
    expect(all({host: '192.0.2.1', user: 'root'})).to.equal(true)
    expect(all({host: '10.0.0.1', user: 'root'})).to.equal(false)
    expect(all({host: '192.0.2.1', user: 'GUEST'})).to.equal(false)
    expect(buildCaptureFilters([])).to.equal(undefined)
  })
})
