import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {ConfigError} from '../src/engine/fail2ban/errors.js'
import {hostExpansion} from '../src/engine/fail2ban/tags.js'
import {parseTimeZone} from '../src/engine/dates/timezone.js'
import {
  DEFAULT_TIMEZONE, ExprError, evaluateExpression, formatLocal, greedyCatchAll, greedyCheckWorks,
  locateFail2banTree, parseExpectedTime, runTestcases, type FilterReport, type HarnessReport,
} from '../src/engine/testcases/harness.js'
import {tempTree as tree, repoRoot} from './support/files.js'


const ROOT = repoRoot

async function run(files: Record<string, string>, names?: string[]): Promise<HarnessReport> {
  const dir = tree(files)
  return runTestcases({...locateFail2banTree(dir), names})
}

function only(r: HarnessReport, name?: string): FilterReport {
  const f = name === undefined ? r.filters[0] : r.filters.find((x) => x.name === name)
  expect(f, `report of ${name ?? 'the filter'}`).to.not.equal(undefined)
  return f!
}

const lines = (...l: string[]): string => l.join('\n') + '\n'

// A small filter of our own: a failure line, an optional "probe" line (mode=extra) and a helper
// line that is ignored.
const AUTH = lines(
  '[Definition]',
  'mode = normal',
  'failregex = ^\\s*\\S+ auth: failure for <F-USER>\\S+</F-USER> from <HOST>$',
  '            <mdre-<mode>>',
  'mdre-normal =',
  'mdre-extra = ^\\s*\\S+ auth: probe from <HOST>$',
  'ignoreregex = for trusted from',
)

describe('testcases harness: expressions', () => {
  const opts = {mode: 'aggressive', 'test.x': 'y'}
  const ev = (s: string, name = 'sshd'): boolean => evaluateExpression(s, {name, opts})

  it('evaluates the corpus forms', () => {
    expect(ev("name=='sshd'")).to.equal(true)
    expect(ev("name == 'sshd'", 'zzz')).to.equal(false)
    expect(ev("name != 'sshd'", 'zzz')).to.equal(true)
    expect(ev("opts.get('mode') == 'aggressive'")).to.equal(true)
    expect(ev("opts.get('mode') != 'aggressive'")).to.equal(false)
    expect(ev("opts.get('missing') == None")).to.equal(true)
    expect(ev("opts.get('missing', 'dflt') == \"dflt\"")).to.equal(true)
  })

  it('supports and/or/not, parentheses, in, subscripts and literals', () => {
    expect(ev("name == 'sshd' and opts.get('mode') == 'aggressive'")).to.equal(true)
    expect(ev("name == 'x' or opts['mode'] == 'aggressive'")).to.equal(true)
    expect(ev("not (name == 'x' or name == 'y')")).to.equal(true)
    expect(ev("not name == 'sshd'")).to.equal(false)
    expect(ev("'agg' in opts.get('mode')")).to.equal(true)
    expect(ev("'mode' in opts and 'z' not in opts")).to.equal(true)
    expect(ev('True and not False and 1')).to.equal(true)
    expect(ev("opts.get('test.x')")).to.equal(true)
    expect(ev("opts.get('nope')")).to.equal(false)
  })

  it('refuses anything else instead of evaluating it', () => {
    for (const bad of ["__import__('os')", "os.system('id')", "name.upper() == 'SSHD'", 'name ==', "name = 'x'",
      "opts['nope'] == 1", "name == 'x' ;", "lambda: 1", "name + 'x'", "'unterminated"]) {
      expect(() => ev(bad), bad).to.throw(ExprError)
    }
  })
})

describe('testcases harness: time and greedy helpers', () => {
  const zone = parseTimeZone(DEFAULT_TIMEZONE)

  it('reads failJSON times as harness-zone local time (CET/CEST), fraction kept', () => {
    expect(parseExpectedTime('2005-01-10T10:00:00', zone)).to.equal(Date.UTC(2005, 0, 10, 9) / 1000)
    expect(parseExpectedTime('2005-08-14T12:00:00', zone)).to.equal(1124013600)
    expect(parseExpectedTime('2005-08-14T12:00:00.250', zone)).to.equal(1124013600.25)
    expect(() => parseExpectedTime('2005-02-30T10:00:00', zone)).to.throw(ExprError)
    expect(() => parseExpectedTime('14/08/2005 12:00', zone)).to.throw(ExprError)
    expect(formatLocal(1124013600, zone)).to.equal('2005-08-14T12:00:00')
    expect(formatLocal(1124013600.5, zone)).to.equal('2005-08-14T12:00:00.500000')
  })

  it('flags a greedy catch-all before <HOST> unless hard-anchored with nothing greedy after', () => {
    const h = hostExpansion()
    expect(greedyCheckWorks()).to.equal(true)
    expect(greedyCatchAll(`^.* from ${h} port \\d+`, h)).to.equal(true)
    expect(greedyCatchAll(`^.+ from ${h} .* end$`, h)).to.equal(true)
    expect(greedyCatchAll(`^.* from ${h} port \\d+$`, h)).to.equal(false)
    expect(greedyCatchAll(`^.*? from ${h} port \\d+`, h)).to.equal(false)
    expect(greedyCatchAll(`^.* $x from ${h} port`, h)).to.equal(false) // a $ in between
    expect(greedyCatchAll(`^.* from ${h}`, h)).to.equal(false) // <HOST> last
    expect(greedyCatchAll('^.* from (?P<ip4>\\S+) port', h)).to.equal(false) // no <HOST>
  })
})

describe('testcases harness: samples and directives', () => {
  it('passes correct expectations and counts samples', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# a comment, then a blank line',
        '',
        '# failJSON: { "time": "2005-08-01T10:00:00", "match": true, "host": "192.0.2.1", "user": "bob", "desc": "ignored" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '#failJSON: { "time": "2005-01-10T10:00:00", "match": true, "host": "2001:DB8::1" }',
        '2005-01-10 10:00:00 host1 auth: failure for eve from 2001:db8:0:0::1',
        '##  failJSON: { "match": true }',
        '2005-08-01 10:00:02 host1 auth: something harmless',
        '# failJSON: { "match": true, "host": "mail.example.com", "ip4": null, "ip6": null }',
        '2005-08-01 10:00:03 host1 auth: failure for bob from mail.example.com',
        '# failJSON: { "match": true, "host": "192.0.2.099", "dns": null }',
        '2005-08-01 10:00:04 host1 auth: failure for bob from 192.0.2.099',
        '# failJSON: { "match": false }',
        '2005-08-01 10:00:05 host1 auth: failure for trusted from 192.0.2.3',
        '# failJSON: { "match": false, "desc": "probe only in mode extra" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '2005-08-01 10:00:07 host1 auth: an unannotated line that must not match',
      ),
    })
    const f = only(r)
    // "##  failJSON" (two spaces) is a plain comment: its next line is an unannotated sample
    expect(f.failures, JSON.stringify(f.failures, null, 1)).to.deep.equal([])
    expect(f.problems).to.deep.equal([])
    expect(f).to.include({samples: 8, passed: 8, failed: 0, optionSets: 1})
    expect(r).to.include({passed: 8, failed: 0, unusable: false})
    expect(r.annotated).to.deep.equal({total: 6, passed: 6, failed: 0})
  })

  it('detects every kind of wrong expectation', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# failJSON: { "time": "2005-08-01T10:00:00", "match": true, "host": "192.0.2.2" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# failJSON: { "time": "2005-08-01T09:00:00", "match": true, "host": "192.0.2.1" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# failJSON: { "match": true, "host": "192.0.2.1", "user": "alice" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# failJSON: { "match": true, "host": "192.0.2.1", "user": null }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# failJSON: { "match": true, "host": "192.0.2.1" }',
        '2005-08-01 10:00:00 host1 auth: nothing here',
        '# failJSON: { "match": false }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.5',
        '# failJSON: { "match": true, "host": "192.0.2.3", "attempts": 2 }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.3',
        '# failJSON: { "match": true, "host": "192.0.2.3", "time": "2005-08-01T10:00:00" }',
        '2005-08-01 10:00:00 host1 auth: failure for trusted from 192.0.2.3',
        '# failJSON: { "match": true, "host": "mail.example.com", "dns": "other.example.com" }',
        '2005-08-01 10:00:03 host1 auth: failure for bob from mail.example.com',
      ),
    })
    const f = only(r)
    expect(f).to.include({samples: 10, passed: 0, failed: 10})
    const msgs = f.failures.map((x) => x.message)
    expect(msgs[0]).to.match(/^host: expected "192\.0\.2\.2", found "192\.0\.2\.1"/)
    expect(msgs[1]).to.match(/^time: expected 2005-08-01T09:00:00 .*found 2005-08-01T10:00:00/)
    expect(msgs[2]).to.equal('user: expected "alice", found "bob"')
    expect(msgs[3]).to.equal('user: expected null, found "bob"')
    expect(msgs[4]).to.match(/^expected a match, found none/)
    expect(msgs[5]).to.match(/^expected no match, found one/)
    expect(msgs[6]).to.match(/^expected no match/) // unannotated sample that matches
    expect(msgs[7]).to.equal('attempts: expected 2, found 1')
    expect(msgs[8]).to.match(/ignored by ignoreregex 1/)
    expect(msgs[9]).to.equal('dns: expected "other.example.com", found "mail.example.com"')
    // details: file:line, sample, expectation, what was found, the regexes involved
    const d = f.failures[0]
    expect(d.file.endsWith(path.join('logs', 'auth'))).to.equal(true)
    expect(d.line).to.equal(2)
    expect(d.sample).to.equal('2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1')
    expect(d.expected).to.deep.equal({time: '2005-08-01T10:00:00', match: true, host: '192.0.2.2'})
    expect(d.found.matches).to.have.length(1)
    expect(d.found.matches[0]).to.include({regex: 0, id: '192.0.2.1', localTime: '2005-08-01T10:00:00', attempts: 1})
    expect(d.regexes).to.deep.equal([{kind: 'failregex', index: 0, regex: '^\\s*\\S+ auth: failure for <F-USER>\\S+</F-USER> from <HOST>$'}])
    expect(f.failures[8].regexes[0]).to.include({kind: 'ignoreregex', index: 0})
    expect(r).to.include({passed: 0, failed: 10, unusable: false})
  })

  it('rejects a sample that more than one failregex matches', async () => {
    const r = await run({
      'filter.d/twice.conf': lines('[Definition]', 'failregex = ^\\s*login failed from <HOST>$', '            failed from <ADDR>'),
      'logs/twice': lines('# failJSON: { "time": "2005-08-01T10:00:00", "match": true, "host": "192.0.2.1" }', '2005-08-01 10:00:00 login failed from 192.0.2.1'),
    })
    const f = only(r)
    expect(f.failed).to.equal(1)
    expect(f.failures[0].message).to.equal('expected exactly one match, found 2 (failregexes 1, 2)')
    expect(f.failures[0].regexes.map((x) => x.index)).to.deep.equal([0, 1])
  })

  it('takes the next physical line after failJSON verbatim, CRLF stripped', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': '# failJSON: { "match": true, "host": "192.0.2.1" }\r\n' +
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1\r\n' +
        '# failJSON: { "match": false }\r\n' +
        '# filterOptions: [{"mode": "extra"}]\r\n' +
        '# failJSON: { "match": true, "host": "192.0.2.4" }\r\n' +
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4\r\n',
    })
    const f = only(r)
    // the "# filterOptions" line after a failJSON is a sample (that does not match), not a directive
    expect(f).to.include({samples: 3, passed: 2, failed: 1, optionSets: 1})
    expect(f.failures[0].line).to.equal(6)
    expect(f.failures[0].options).to.equal('auth')
  })

  it('treats "# text # filterOptions: …" as a comment', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# normal mode # filterOptions: [{"mode": "extra"}]',
        '# failJSON: { "match": false }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
      ),
    })
    expect(only(r)).to.include({samples: 1, passed: 1, optionSets: 1})
  })
})

describe('testcases harness: option sets', () => {
  it('runs each sample with every option set of a filterOptions list, and counts it once', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# filterOptions: [{}, {"mode": "extra"}]',
        '# failJSON: { "match": true, "host": "192.0.2.1" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# failJSON: { "match": true, "host": "192.0.2.4" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# failJSON: { "match": true, "host": "192.0.2.4", "constraint": "opts.get(\'mode\') == \'extra\'" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# failJSON: { "match": false, "constraint": "opts.get(\'mode\') != \'extra\'" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# failJSON: { "match": true, "host": "192.0.2.4", "constraint": "name == \'other\'" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
      ),
    })
    const f = only(r)
    expect(f).to.include({samples: 4, passed: 3, failed: 1, skipped: 1, optionSets: 2, checks: 6})
    expect(f.failures).to.have.length(1)
    expect(f.failures[0]).to.include({line: 5, options: 'auth'})
  })

  it('merges fileOptions into later filterOptions entries only', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# fileOptions: {"mode": "extra"}',
        '# failJSON: { "match": false, "desc": "fileOptions alone changes nothing" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# filterOptions: [{}]',
        '# failJSON: { "match": true, "host": "192.0.2.4" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# filterOptions: [{"mode": "normal"}]',
        '# failJSON: { "match": false }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
      ),
    })
    const f = only(r)
    expect(f.failures, JSON.stringify(f.failures, null, 1)).to.deep.equal([])
    expect(f).to.include({samples: 3, passed: 3, optionSets: 3})
  })

  it('skips blocks whose test.condition is false (last evaluated entry wins) and resets per file', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# filterOptions: [{"test.condition": "name==\'other\'", "mode": "extra"}]',
        '# failJSON: { "match": true, "host": "192.0.2.99", "desc": "never checked" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# addFILE: "auth-more"',
        '# filterOptions: [{"test.condition": "name==\'other\'"}, {"mode": "extra"}]',
        '# failJSON: { "match": true, "host": "192.0.2.99", "desc": "skipped too: the flag stays set" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# filterOptions: [{"test.condition": "name==\'other\'"}, {"test.condition": "name==\'auth\'", "mode": "extra"}]',
        '# failJSON: { "match": true, "host": "192.0.2.4" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# filterOptions: [{"test.condition": "name==\'other\'"}]',
      ),
      // added file: processed although queued in a skipped block; the skip state starts afresh,
      // no current filter (last block excluded everything) → the no-option filter
      'logs/auth-more': lines(
        '# failJSON: { "match": false }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
        '# failJSON: { "match": true, "host": "192.0.2.8" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.8',
      ),
    })
    const f = only(r)
    expect(f.failures, JSON.stringify(f.failures, null, 1)).to.deep.equal([])
    expect(f).to.include({samples: 3, passed: 3, skipped: 2, optionSets: 2})
    expect(f.problems).to.deep.equal([])
  })

  it('caches instances by name + options (key order irrelevant) and keeps their state across blocks and files', async () => {
    const r = await run({
      'filter.d/sess.conf': lines(
        '[Definition]',
        'failregex = ^\\s*conn <F-MLFID>\\d+</F-MLFID>: <F-NOFAIL>connect</F-NOFAIL> from <HOST>$',
        '            ^\\s*conn <F-MLFID>\\d+</F-MLFID>: login failed for <F-USER>\\S+</F-USER>$',
      ),
      'logs/sess': lines(
        '# filterOptions: [{"a": "1", "b": "2"}]',
        '# failJSON: { "match": false, "desc": "nofail: only feeds the session" }',
        '2005-08-01 10:00:00 conn 7: connect from 192.0.2.9',
        '# filterOptions: [{"other": "x"}]',
        '# failJSON: { "match": false, "desc": "another instance knows nothing of conn 7" }',
        '2005-08-01 10:00:01 conn 7: login failed for root',
        '# addFILE: "sess-2"',
      ),
      'logs/sess-2': lines(
        '# filterOptions: [{"b": "2", "a": "1"}]',
        '# failJSON: { "time": "2005-08-01T10:00:02", "match": true, "host": "192.0.2.9", "user": "alice", "users": ["alice"], "attempts": 2 }',
        '2005-08-01 10:00:02 conn 7: login failed for alice',
        '# failJSON: { "match": true, "host": "192.0.2.9", "users": ["bob", "alice"] }',
        '2005-08-01 10:00:03 conn 7: login failed for bob',
        '# failJSON: { "match": true, "host": "192.0.2.9", "users": ["bob", "alice", "carol"] }',
        '2005-08-01 10:00:04 conn 7: login failed for bob',
      ),
    })
    const f = only(r)
    expect(f.optionSets).to.equal(2)
    expect(f).to.include({samples: 5, passed: 4, failed: 1})
    expect(f.failures[0].line).to.equal(7)
    expect(f.failures[0].message).to.match(/^users: expected \["bob","alice","carol"\], found \["alice","bob"\]/)
  })

  it('journal mode: no date parsing, time = now, test.prefix-line prepended', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# filterOptions: [{"logtype": "journal", "test.prefix-line": "host1 auth: "}]',
        '# failJSON: { "time": "2005-08-14T12:00:00", "match": true, "host": "192.0.2.1" }',
        'failure for bob from 192.0.2.1',
        '# filterOptions: {"logtype": "journal"}',
        '# failJSON: { "time": "2005-08-14T12:00:00", "match": true, "host": "192.0.2.2" }',
        'host2 auth: failure for bob from 192.0.2.2',
        '# failJSON: { "time": "2005-08-14T12:00:00", "match": true, "host": "192.0.2.3", "desc": "a date in the text is not parsed" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.3',
      ),
    })
    const f = only(r)
    expect(f.failures.map((x) => x.message)).to.have.length(1)
    expect(f.failures[0].line).to.equal(8)
    expect(f.failures[0].found.matches).to.deep.equal([])
    expect(f).to.include({samples: 3, passed: 2, optionSets: 1})
  })

  it('keeps fractions of epoch dates', async () => {
    const r = await run({
      'filter.d/ep.conf': lines('[Definition]', 'datepattern = EPOCH', 'failregex = ^\\s*denied <HOST>$'),
      'logs/ep': lines(
        '# failJSON: { "time": "2005-08-14T08:00:00.250", "match": true, "host": "192.0.2.1" }',
        '1123999200.250 denied 192.0.2.1',
        '# failJSON: { "time": "2005-08-14T08:00:00", "match": true, "host": "192.0.2.1" }',
        '1123999200.250 denied 192.0.2.1',
      ),
    })
    const f = only(r)
    expect(f).to.include({passed: 1, failed: 1})
    expect(f.failures[0].message).to.match(/^time: expected 2005-08-14T08:00:00 .*found 2005-08-14T08:00:00\.250000/)
  })
})

describe('testcases harness: coverage and lint', () => {
  it('requires every failregex of every option set to be used, or its text used by another set', async () => {
    const base = {
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# filterOptions: [{"mode": "extra"}]',
        '# failJSON: { "match": true, "host": "192.0.2.4" }',
        '2005-08-01 10:00:06 host1 auth: probe from 192.0.2.4',
      ),
    }
    let r = await run(base)
    expect(only(r).problems).to.deep.equal([
      {kind: 'coverage', message: 'auth[mode=extra]: failregex 1 has no samples: ^\\s*\\S+ auth: failure for <F-USER>\\S+</F-USER> from <HOST>$'},
    ])
    expect(r).to.include({passed: 1, failed: 1, unusable: false})

    r = await run({
      ...base,
      'logs/auth': base['logs/auth'] + lines(
        '# filterOptions: [{}]',
        '# failJSON: { "match": true, "host": "192.0.2.1" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
      ),
    })
    expect(only(r).problems).to.deep.equal([])
    expect(r).to.include({passed: 2, failed: 0})
  })

  it('counts nofail and pending matches as use, ignored matches not', async () => {
    const r = await run({
      'filter.d/sess.conf': lines(
        '[Definition]',
        'failregex = ^\\s*conn <F-MLFID>\\d+</F-MLFID>: <F-NOFAIL>connect</F-NOFAIL> from <HOST>$',
        '            ^\\s*conn <F-MLFID>\\d+</F-MLFID>: login failed for <F-USER>\\S+</F-USER>$',
        '            ^\\s*conn \\d+: kicked <HOST>$',
        'ignoreregex = kicked 192\\.0\\.2\\.',
      ),
      'logs/sess': lines(
        '# failJSON: { "match": false }',
        '2005-08-01 10:00:00 conn 7: connect from 192.0.2.9',
        '# failJSON: { "match": false, "desc": "pending: no address yet" }',
        '2005-08-01 10:00:01 conn 8: login failed for root',
        '# failJSON: { "match": false }',
        '2005-08-01 10:00:01 conn 9: kicked 192.0.2.10',
      ),
    })
    const f = only(r)
    expect(f).to.include({passed: 3, failed: 0})
    expect(f.problems.map((p) => p.message)).to.deep.equal(['sess: failregex 3 has no samples: ^\\s*conn \\d+: kicked <HOST>$'])
  })

  it('reports a greedy catch-all before <HOST>', async () => {
    const r = await run({
      'filter.d/greedy.conf': lines('[Definition]', 'failregex = ^.* from <HOST> port \\d+'),
      'logs/greedy': lines('# failJSON: { "match": true, "host": "192.0.2.1" }', '2005-08-01 10:00:00 login from 192.0.2.1 port 22'),
    })
    const f = only(r)
    expect(f.passed).to.equal(1)
    expect(f.problems).to.have.length(1)
    expect(f.problems[0].kind).to.equal('greedy')
    expect(f.problems[0].message).to.contain('^.* from <HOST> port \\d+')
    expect(r.failed).to.equal(1)
  })
})

describe('testcases harness: unusable input and layouts', () => {
  it('reports bad JSON, unreadable addFILE, bad expressions per file:line and keeps going', async () => {
    const r = await run({
      'filter.d/auth.conf': AUTH,
      'logs/auth': lines(
        '# failJSON: { "match": true, host: 1 }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# addFILE: "does-not-exist"',
        '# filterOptions: [{"test.condition": "__import__(\'os\')"}]',
        '# failJSON: { "match": true, "host": "192.0.2.1" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# filterOptions: [{}]',
        '# failJSON: { "match": true, "host": "192.0.2.1", "constraint": "opts.keys()" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
        '# failJSON: { "match": true, "host": "192.0.2.1" }',
        '2005-08-01 10:00:00 host1 auth: failure for bob from 192.0.2.1',
      ),
    })
    const f = only(r)
    const probs = f.problems.map((p) => `${p.kind} ${p.line ?? ''} ${p.message}`)
    expect(probs[0]).to.match(/^error 1 bad JSON in failJSON/)
    expect(probs.some((p) => /^error {2}cannot read sample log/.test(p))).to.equal(true)
    expect(probs.some((p) => /^error 4 test\.condition .*unknown name "__import__"/.test(p))).to.equal(true)
    expect(probs.some((p) => /^error 8 constraint .*only the \.get\(\) method/.test(p))).to.equal(true)
    expect(f).to.include({samples: 2, passed: 1, failed: 1})
    expect(r.unusable).to.equal(true)
  })

  it('reports a filter that does not load, a missing log and an unknown name', async () => {
    const r = await run({
      'filter.d/broken.conf': lines('[Definition]', 'failregex = ^(unclosed <HOST>'),
      'filter.d/noid.conf': lines('[Definition]', 'failregex = ^no id here$'),
      'filter.d/nolog.conf': lines('[Definition]', 'failregex = ^x <HOST>$'),
      'filter.d/auth-common.conf': lines('[Definition]', 'failregex = ^common only <HOST>$'),
      'logs/broken': lines('# failJSON: { "match": true, "host": "192.0.2.1" }', 'x 192.0.2.1'),
      'logs/noid': lines('# failJSON: { "match": false }', 'no id here'),
    }, ['broken', 'noid', 'nolog', 'ghost'])
    expect(r.filters.map((f) => f.name)).to.deep.equal(['broken', 'noid', 'nolog'])
    expect(r.problems).to.deep.equal([{kind: 'error', message: 'unknown filter "ghost" (no ghost.conf among the filter tests)'}])
    const broken = only(r, 'broken')
    expect(broken.problems[0].kind).to.equal('error')
    expect(broken.problems[0].message).to.match(/^broken: filter does not load: .*broken\.conf/)
    expect(broken.problems[0].message).to.not.match(/\n\s+at /) // no stack
    expect(broken.failures[0].message).to.match(/^filter not loaded: /)
    expect(only(r, 'noid').problems[0].message).to.match(/no failure-id group/)
    expect(only(r, 'nolog').problems).to.deep.equal([{kind: 'missing-log', message: `no sample log for filter "nolog" (expected ${path.join(path.dirname(broken.file), '..', 'logs', 'nolog')})`}])
    expect(r.unusable).to.equal(true)
  })

  it('finds the corpus layout and fail2ban\'s source layout, and refuses a missing directory', async () => {
    const flat = tree({'filter.d/a.conf': AUTH, 'logs/a': ''})
    expect(locateFail2banTree(flat)).to.deep.equal({filterSources: [{dir: path.join(flat, 'filter.d')}], logsDir: path.join(flat, 'logs')})

    const src = tree({
      'config/filter.d/common.conf': lines('[DEFAULT]', '_pre = \\s*\\S+'),
      'config/filter.d/auth.conf': lines('[INCLUDES]', 'before = common.conf', '[Definition]', 'failregex = ^%(_pre)s auth: failure from <HOST>$'),
      'fail2ban/tests/config/filter.d/zzz-auth.conf': lines('[INCLUDES]', 'before = ../../../../config/filter.d/common.conf', '[Definition]', 'failregex = ^%(_pre)s zzz: failure from <HOST>$'),
      'fail2ban/tests/config/filter.d/other.conf': lines('[Definition]', 'failregex = ^<HOST>$'),
      'fail2ban/tests/files/logs/auth': lines('# failJSON: { "match": true, "host": "192.0.2.1" }', '2005-08-01 10:00:00 host1 auth: failure from 192.0.2.1'),
      'fail2ban/tests/files/logs/zzz-auth': lines('# failJSON: { "match": true, "host": "192.0.2.2" }', '2005-08-01 10:00:00 host1 zzz: failure from 192.0.2.2'),
    })
    const t = locateFail2banTree(src)
    expect(t.logsDir).to.equal(path.join(src, 'fail2ban/tests/files/logs'))
    const r = await runTestcases(t)
    expect(r.filters.map((f) => [f.name, f.passed, f.failed])).to.deep.equal([['auth', 1, 0], ['zzz-auth', 1, 0]])
    expect(r).to.include({passed: 2, failed: 0, unusable: false})

    expect(() => locateFail2banTree(path.join(flat, 'nope'))).to.throw(ConfigError, /not found/)
    const noLogs = tree({'filter.d/a.conf': AUTH})
    expect(() => locateFail2banTree(noLogs)).to.throw(ConfigError, /sample log directory not found/)
    const r2 = await runTestcases({filterSources: [{dir: path.join(flat, 'missing')}], logsDir: path.join(flat, 'logs')})
    expect(r2.unusable).to.equal(true)
    expect(r2.problems[0].message).to.match(/filter directory not found/)
  })

  it('requires a minimum number of filter tests when asked', async () => {
    const dir = tree({'filter.d/a.conf': AUTH, 'logs/a': ''})
    const r = await runTestcases({...locateFail2banTree(dir), minFilterTests: 10})
    expect(r.problems).to.deep.equal([{kind: 'count', message: 'expected at least 10 filter tests, found 1'}])
    expect(r.failed).to.equal(1)
  })
})

describe('spylog testcases (CLI)', function () {
  this.timeout(180000)
  const bin = path.join(ROOT, 'bin', 'run.js')

  before(function () {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'commands', 'testcases.js'))) {
      // type errors elsewhere in the tree must not stop the emit
      spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], {cwd: ROOT, stdio: 'ignore'})
    }
  })

  const cli = (...args: string[]): {status: number | null; stdout: string; stderr: string} => {
    const p = spawnSync(process.execPath, [bin, 'testcases', ...args], {cwd: ROOT, encoding: 'utf8', env: {...process.env, FORCE_COLOR: '0'}})
    return {status: p.status, stdout: p.stdout, stderr: p.stderr}
  }
  const lastLine = (s: string): string => s.trimEnd().split('\n').pop() ?? ''

  // ≥ 10 filters, as fail2ban's harness requires of a tree
  const files: Record<string, string> = {}
  for (let i = 0; i < 10; i++) {
    files[`filter.d/f${i}.conf`] = lines('[Definition]', `failregex = ^\\s*f${i}: failure from <HOST>$`)
    files[`logs/f${i}`] = lines('# failJSON: { "time": "2005-08-01T10:00:00", "match": true, "host": "192.0.2.1" }', `2005-08-01 10:00:00 f${i}: failure from 192.0.2.1`)
  }

  it('exits 0 and ends with "N passed, N failed" when everything passes', () => {
    const dir = tree(files)
    const p = cli('--fail2ban-dir', dir)
    expect(p.status, p.stdout + p.stderr).to.equal(0)
    expect(lastLine(p.stdout)).to.equal('10 passed, 0 failed')
    expect(p.stdout).to.match(/f3\s.*\s1\s.*\s1\s.*\s0\s/)
    expect(p.stdout).to.not.contain('\u001b[') // no colour when not on a TTY
  })

  it('exits 1 on a failing sample and prints its details; selects filters by name', () => {
    const dir = tree({...files, 'logs/f2': lines('# failJSON: { "match": true, "host": "192.0.2.7" }', '2005-08-01 10:00:00 f2: failure from 192.0.2.1')})
    const p = cli('--fail2ban-dir', dir)
    expect(p.status).to.equal(1)
    expect(lastLine(p.stdout)).to.equal('9 passed, 1 failed')
    expect(p.stdout).to.match(/FAIL f2 \S*logs.f2:2\n/)
    expect(p.stdout).to.contain('host: expected "192.0.2.7", found "192.0.2.1"')
    expect(p.stdout).to.contain('failregex 1: ^\\s*f2: failure from <HOST>$')

    const sel = cli('--fail2ban-dir', dir, 'f1', 'f3')
    expect(sel.status).to.equal(0)
    expect(lastLine(sel.stdout)).to.equal('2 passed, 0 failed')

    const json = cli('--fail2ban-dir', dir, '--json')
    expect(json.status).to.equal(1)
    const rep = JSON.parse(json.stdout) as HarnessReport
    expect(rep).to.include({passed: 9, failed: 1})
    expect(rep.filters).to.have.length(10)
  })

  it('exits 2 on unusable input', () => {
    const p = cli('--fail2ban-dir', path.join(os.tmpdir(), 'spylog-no-such-dir'))
    expect(p.status).to.equal(2)
    expect(p.stderr).to.contain('fail2ban directory not found')
    expect(p.stderr).to.not.match(/\n\s+at /)
    expect(lastLine(p.stdout)).to.equal('0 passed, 1 failed')

    const dir = tree({...files, 'logs/f5': lines('# failJSON: {broken', 'x')})
    const q = cli('--fail2ban-dir', dir)
    expect(q.status).to.equal(2)
    expect(q.stdout).to.match(/ERROR f5: .*logs.f5:1: bad JSON in failJSON/)
    expect(lastLine(q.stdout)).to.equal('9 passed, 1 failed')
  })

  it('runs spylog\'s own testcases/ against config/filters: every shipped sample passes', () => {
    const p = cli()
    expect(p.status, p.stdout + p.stderr).to.equal(0)
    const m = /^(\d+) passed, 0 failed$/.exec(lastLine(p.stdout))
    expect(m, lastLine(p.stdout)).to.not.equal(null)
    expect(Number(m![1])).to.be.at.least(300)
  })

  it('shows examples in --help', () => {
    const p = cli('--help')
    expect(p.status).to.equal(0)
    expect(p.stdout).to.contain('EXAMPLES')
    expect(p.stdout).to.contain('--fail2ban-dir')
  })
})
