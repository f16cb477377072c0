/**
 * `spylog regex` end to end: the built CLI (`node bin/run.js regex …`, run `npm run build`
 * first) on small logs and filters written to a temporary directory.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {isUtf8} from 'node:buffer'
import {LineBatch, LineSplitter} from '../src/engine/regex/lines.js'
import {prng, repoRoot, tempTree} from './support/files.js'


const ROOT = repoRoot
const BIN = path.join(ROOT, 'bin', 'run.js')

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

function spylog(args: string[], opts: {input?: string | Buffer; cwd?: string} = {}): Result {
  const r = spawnSync(process.execPath, [BIN, 'regex', ...args], {
    cwd: opts.cwd ?? ROOT,
    input: opts.input ?? '',
    encoding: 'utf8',
    env: {...process.env, NO_COLOR: '1', FORCE_COLOR: '0'},
    maxBuffer: 64 << 20,
  })
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

function json(args: string[], opts: {input?: string; cwd?: string} = {}): any {
  const r = spylog([...args, '--json'], opts)
  expect(r.stderr, r.stderr).to.equal('')
  expect(r.status).to.equal(0)
  return JSON.parse(r.stdout)
}

/** Lines of -o output. */
function out(args: string[], opts: {input?: string; cwd?: string} = {}): string[] {
  const r = spylog(args, opts)
  expect(r.stderr, r.stderr).to.equal('')
  expect(r.status).to.equal(0)
  return r.stdout.split('\n').filter((l) => l !== '')
}

const FAIL_RE = 'myapp\\[\\d+\\]: login failed for <F-USER>\\S+</F-USER> from <HOST>'

/** A small log: 3 failures (2 addresses), 1 trusted failure, 2 probes, 3 benign lines, a comment and an empty line. */
const LOG = [
  '# a comment line (skipped)',
  'Jan 10 10:00:01 web myapp[12]: login failed for root from 192.0.2.1',
  'Jan 10 10:00:02 web myapp[12]: login ok for alice from 198.51.100.5',
  'Jan 10 10:00:03 web myapp[13]: login failed for admin from 2001:DB8::7',
  '',
  'Jan 10 10:00:04 web myapp[14]: login failed for root from 192.0.2.1',
  'Jan 10 10:00:05 web myapp[15]: probe from 203.0.113.9',
  'Jan 10 10:00:06 web myapp[16]: login failed for bob from 10.0.0.1 trusted',
  'Jan 10 10:00:07 web myapp[17]: probe from 203.0.113.10',
  'Jan 10 10:00:08 web cron[18]: job started',
  '',
].join('\n')

const FILTER = `# test filter
[Init]
mode = normal

[Definition]
_daemon = myapp
mdre-normal = ^\\s*\\S+ %(_daemon)s\\[\\d+\\]: login failed for <F-USER>\\S+</F-USER> from <HOST>(?: trusted)?$
mdre-aggressive = %(mdre-normal)s
                  ^\\s*\\S+ %(_daemon)s\\[\\d+\\]: probe from <HOST>$
failregex = <mdre-<mode>>
ignoreregex = \\btrusted$
`

describe('spylog regex (CLI)', function () {
  this.timeout(120_000)
  let dir: string
  let logFile: string
  let filterDir: string

  before(function () {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'commands', 'regex.js'))) {
      throw new Error('dist/src/commands/regex.js is missing: run `npm run build` first')
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spylog-regex-'))
    logFile = path.join(dir, 'app.log')
    fs.writeFileSync(logFile, LOG)
    filterDir = path.join(dir, 'filter.d')
    fs.mkdirSync(filterDir)
    fs.writeFileSync(path.join(filterDir, 'myapp.conf'), FILTER)
  })

  after(function () {
    fs.rmSync(dir, {recursive: true, force: true})
  })

  describe('inputs', function () {
    it('tests a literal line against a literal regex', function () {
      const r = spylog(['Jan 10 10:00:01 web myapp[12]: login failed for root from 192.0.2.1', FAIL_RE])
      expect(r.status).to.equal(0)
      expect(r.stderr).to.equal('')
      expect(r.stdout).to.include('Running tests')
      expect(r.stdout).to.match(/Use\s+failregex line : myapp/)
      expect(r.stdout).to.match(/Use\s+single line : Jan 10/)
      expect(r.stdout).to.include('Failregex: 1 total')
      expect(r.stdout).to.match(/\|\s+1\) \[1\] myapp/)
      expect(r.stdout).to.include('Lines: 1 lines, 0 ignored, 1 matched, 0 missed')
      expect(r.stdout).to.include('Date template hits:')
    })

    it('reads a log file, skipping comments and empty lines', function () {
      const r = spylog([logFile, FAIL_RE])
      expect(r.status).to.equal(0)
      expect(r.stdout).to.match(new RegExp(`Use\\s+log file : ${logFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
      expect(r.stdout).to.include('Failregex: 4 total')
      expect(r.stdout).to.include('Lines: 8 lines, 0 ignored, 4 matched, 4 missed')
      // fewer than 20 missed lines: listed
      expect(r.stdout).to.include('Missed line(s):')
      expect(r.stdout).to.include('|  Jan 10 10:00:08 web cron[18]: job started')
    })

    it('expands a glob, file after file', function () {
      const g = path.join(dir, 'glob')
      fs.mkdirSync(g)
      fs.writeFileSync(path.join(g, 'a.log'), LOG)
      fs.writeFileSync(path.join(g, 'b.log'), LOG)
      fs.writeFileSync(path.join(g, 'c.txt'), LOG)
      const rep = json(['glob/*.log', FAIL_RE], {cwd: dir})
      expect(rep.log.kind).to.equal('files')
      expect(rep.log.files.map((f: string) => path.basename(f))).to.deep.equal(['a.log', 'b.log'])
      expect(rep.lines.total).to.equal(16)
      expect(rep.lines.matched).to.equal(8)
      const rows = out(['glob/*.log', FAIL_RE, '-o', '<file>:<line> <ip>'], {cwd: dir})
      expect(rows[0]).to.equal(`${path.join(g, 'a.log')}:2 192.0.2.1`)
      expect(rows).to.have.length(8)
      expect(rows[4]).to.equal(`${path.join(g, 'b.log')}:2 192.0.2.1`)
    })

    it('reads standard input for -', function () {
      const ips = out(['-', FAIL_RE, '-o', 'ip'], {input: LOG})
      expect(ips).to.deep.equal(['192.0.2.1', '2001:db8::7', '192.0.2.1', '10.0.0.1'])
      const rep = json(['-', FAIL_RE], {input: LOG})
      expect(rep.log.kind).to.equal('stdin')
      expect(rep.lines.total).to.equal(8)
    })

    it('strips \\r of CRLF lines', function () {
      const rows = out(['-', FAIL_RE, '-o', 'msg'], {input: LOG.replace(/\n/g, '\r\n')})
      expect(rows).to.have.length(4)
      for (const r of rows) expect(r.endsWith('\r')).to.equal(false)
    })
  })

  describe('filters', function () {
    it('loads a filter file, with its ignoreregex', function () {
      const r = spylog([logFile, path.join(filterDir, 'myapp.conf')])
      expect(r.status).to.equal(0)
      expect(r.stdout).to.match(/Use\s+failregex filter file : myapp, basedir: /)
      // the failure that the ignoreregex discarded is no hit (as in fail2ban-regex)
      expect(r.stdout).to.include('Failregex: 3 total')
      expect(r.stdout).to.include('Ignoreregex: 1 total')
      expect(r.stdout).to.include('Lines: 8 lines, 1 ignored, 3 matched, 4 missed')
    })

    it('finds a filter by name with [mode=…] in --filter-dir', function () {
      const normal = json([logFile, 'myapp', '--filter-dir', filterDir])
      expect(normal.filter.kind).to.equal('name')
      expect(normal.filter.file).to.equal(path.join(filterDir, 'myapp.conf'))
      expect(normal.failregex).to.have.length(1)
      expect(normal.lines).to.include({matched: 3, ignored: 1, missed: 4})
      const aggr = json([logFile, 'myapp[mode=aggressive]', '--filter-dir', filterDir])
      expect(aggr.filter.params).to.deep.equal({mode: 'aggressive'})
      expect(aggr.failregex).to.have.length(2)
      expect(aggr.failregex[1].hits).to.equal(2)
      expect(aggr.lines).to.include({matched: 5, ignored: 1, missed: 2})
      const probes = out([logFile, 'myapp[mode=aggressive]', '--filter-dir', filterDir, '-o', 'ip'])
      expect(probes).to.deep.equal(['192.0.2.1', '2001:db8::7', '192.0.2.1', '203.0.113.9', '203.0.113.10'])
    })

    it('takes a literal IGNOREREGEX', function () {
      const rep = json([logFile, FAIL_RE, 'for root'])
      expect(rep.ignoreregex).to.deep.equal([{index: 1, regex: 'for root', hits: 2}])
      expect(rep.lines).to.include({total: 8, ignored: 2, matched: 2, missed: 4})
    })

    it('accepts the pcre dialect for a literal regex', function () {
      const rows = out([logFile, 'login failed for (?<user>\\w+) from (?<host>[\\d.]+)$', '--dialect', 'pcre', '-o', '<ip> <user>'])
      expect(rows).to.deep.equal(['192.0.2.1 root', '192.0.2.1 root'])
    })

    it('accepts the lua dialect for a literal regex (first capture = offender)', function () {
      const rows = out([logFile, 'probe from ([%d%.]+)$', '--dialect', 'lua', '-o', 'ip'])
      expect(rows).to.deep.equal(['203.0.113.9', '203.0.113.10'])
    })
  })

  describe('output', function () {
    it('--json gives the whole report', function () {
      const rep = json([logFile, FAIL_RE, '-v'])
      expect(rep).to.have.keys(['filter', 'log', 'failregex', 'ignoreregex', 'dateTemplates', 'lines', 'failures', 'elapsed', 'bytes', 'linesPerSecond'])
      expect(rep.filter).to.include({kind: 'line', dialect: 'fail2ban', regex: FAIL_RE, maxlines: 1})
      expect(rep.log).to.include({kind: 'file', name: logFile, encoding: 'utf-8'})
      expect(rep.lines).to.deep.equal({total: 8, ignored: 0, matched: 4, missed: 4, skipped: 2, invalid: 0, binary: 0, truncated: 0})
      expect(rep.failures).to.equal(4)
      expect(rep.failregex).to.have.length(1)
      expect(rep.failregex[0]).to.include({index: 1, regex: FAIL_RE, hits: 4})
      const hits = rep.failregex[0].failures
      expect(hits).to.have.length(4)
      expect(hits[0]).to.include({line: 2, id: '192.0.2.1', isAddress: true})
      expect(hits[0].data.user).to.equal('root')
      expect(hits[0].time).to.be.a('number')
      expect(new Date(hits[0].time * 1000).getMinutes()).to.equal(0)
      expect(hits[1]).to.include({line: 4, id: '2001:db8::7'})
      const dates = rep.dateTemplates.filter((t: {hits: number}) => t.hits > 0)
      expect(dates).to.have.length(1)
      expect(dates[0].hits).to.equal(8)
      expect(rep.elapsed).to.be.a('number')
    })

    it('-o prints one value per failure (ip, id, user, row, msg, capture names, templates)', function () {
      expect(out([logFile, FAIL_RE, '-o', 'id'])).to.deep.equal(['192.0.2.1', '2001:db8::7', '192.0.2.1', '10.0.0.1'])
      expect(out([logFile, FAIL_RE, '-o', 'user'])).to.deep.equal(['root', 'admin', 'root', 'bob'])
      expect(out([logFile, FAIL_RE, '-o', 'F-USER'])).to.deep.equal(['root', 'admin', 'root', 'bob'])
      const msg = out([logFile, FAIL_RE, '-o', 'msg'])
      expect(msg[1]).to.equal('Jan 10 10:00:03 web myapp[13]: login failed for admin from 2001:DB8::7')
      const row = out([logFile, FAIL_RE, '-o', 'row'])[0]!
      const parsed = JSON.parse(row.replace(/,$/, ''))
      expect(parsed[0]).to.equal('192.0.2.1')
      expect(parsed[2].user).to.equal('root')
      expect(out([logFile, FAIL_RE, '-o', '<line>: <ip> (<F-USER>)'])).to.deep.equal([
        '2: 192.0.2.1 (root)', '4: 2001:db8::7 (admin)', '6: 192.0.2.1 (root)', '8: 10.0.0.1 (bob)',
      ])
    })

    it('verbose lists each hit with host, time and captures', function () {
      const r = spylog([logFile, FAIL_RE, '-v'])
      expect(r.status).to.equal(0)
      expect(r.stdout).to.match(/\|\s+192\.0\.2\.1\s+\d{4}-01-10 10:00:01\s+.*app\.log:2\s+user=root/)
      expect(r.stdout).to.match(/\|\s+2001:db8::7\s+\d{4}-01-10 10:00:03/)
    })

    it('--print-all-matched / --print-all-ignored list the lines', function () {
      const r = spylog([logFile, FAIL_RE, 'for root', '--print-all-matched', '--print-all-ignored'])
      expect(r.status).to.equal(0)
      const matched = r.stdout.slice(r.stdout.indexOf('Matched line(s):'))
      expect(matched).to.include('|  Jan 10 10:00:03 web myapp[13]: login failed for admin from 2001:DB8::7')
      expect(r.stdout).to.include('Ignored line(s):')
      expect(r.stdout.slice(r.stdout.indexOf('Ignored line(s):'))).to.include('|  Jan 10 10:00:04 web myapp[14]: login failed for root from 192.0.2.1')
      const rep = json([logFile, FAIL_RE, 'for root', '--print-all-matched', '--print-all-ignored', '--print-all-missed'])
      expect(rep.matchedLines).to.have.length(2)
      expect(rep.ignoredLines).to.have.length(2)
      expect(rep.missedLines).to.have.length(4)
    })

    it('--print-all-missed lists every missed line, else "too many to print"', function () {
      const many = path.join(dir, 'many-missed.log')
      fs.writeFileSync(many, Array.from({length: 30}, (_, i) => `Jan 10 10:00:${String(i).padStart(2, '0')} web other[1]: line ${i}`).join('\n') + '\n')
      const short = spylog([many, FAIL_RE])
      expect(short.stdout).to.include('Missed line(s): too many to print.  Use --print-all-missed to print all 30 lines')
      const all = spylog([many, FAIL_RE, '--print-all-missed'])
      const block = all.stdout.slice(all.stdout.indexOf('Missed line(s):'))
      expect(block.split('\n').filter((l) => l.startsWith('|  Jan 10'))).to.have.length(30)
    })
  })

  describe('errors: one line naming the problem, exit 2', function () {
    function expectUsageError(r: Result, ...mentions: string[]): void {
      expect(r.status).to.equal(2)
      expect(r.stdout).to.equal('')
      const lines = r.stderr.trimEnd().split('\n')
      expect(lines, r.stderr).to.have.length(1)
      expect(lines[0]).to.match(/^Error: /)
      for (const m of mentions) expect(lines[0]).to.include(m)
      expect(r.stderr).to.not.match(/\n\s+at /)
    }

    it('invalid regex', function () {
      expectUsageError(spylog([logFile, 'failed for (<HOST>']), 'failregex', 'failed for (<HOST>')
    })

    it('regex without an offender group', function () {
      expectUsageError(spylog([logFile, 'login failed for \\S+']), 'failregex')
    })

    it('unknown filter', function () {
      expectUsageError(spylog([logFile, 'nosuchfilter', '--filter-dir', filterDir]), 'nosuchfilter')
      expectUsageError(spylog([logFile, path.join(dir, 'nope.conf')]), 'nope.conf')
    })

    it('missing or unreadable log file', function () {
      expectUsageError(spylog([path.join(dir, 'missing.log'), FAIL_RE]), 'missing.log')
      expectUsageError(spylog([path.join(dir, 'nothing-*.log'), FAIL_RE]), 'nothing-*.log')
      expectUsageError(spylog([dir, FAIL_RE]), dir)
    })

    it('unknown option, bad option value, missing argument', function () {
      expectUsageError(spylog([logFile, FAIL_RE, '--frobnicate']), '--frobnicate')
      expectUsageError(spylog([logFile, FAIL_RE, '--encoding', 'klingon']), 'klingon')
      expectUsageError(spylog([logFile, FAIL_RE, '--dialect', 'perl']), 'perl')
      expectUsageError(spylog([logFile]), 'REGEX')
    })

    it('broken filter file', function () {
      const bad = path.join(dir, 'bad.conf')
      fs.writeFileSync(bad, '[Definition]\nfailregex = ^(unclosed <HOST>\n')
      expectUsageError(spylog([logFile, bad]), 'bad.conf')
    })
  })

  describe('encodings and odd bytes', function () {
    it('counts a non-UTF-8 line and a NUL-containing line, and still tests them', function () {
      const f = path.join(dir, 'odd.log')
      fs.writeFileSync(
        f,
        Buffer.concat([
          Buffer.from('Jan 10 10:00:01 web myapp[1]: login failed for b'),
          Buffer.from([0xf6]), // latin-1 ö: invalid UTF-8
          Buffer.from('b from 192.0.2.11\nJan 10 10:00:02 web myapp[2]: login failed for x'),
          Buffer.from([0]),
          Buffer.from('y from 192.0.2.12\nJan 10 10:00:03 web myapp[3]: login failed for ok from 192.0.2.13\n'),
        ]),
      )
      const rep = json([f, FAIL_RE])
      expect(rep.lines).to.include({total: 3, matched: 3, invalid: 1, binary: 1})
      const text = spylog([f, FAIL_RE]).stdout
      expect(text).to.include('1 not valid UTF-8')
      expect(text).to.include('1 binary')
      expect(out([f, FAIL_RE, '-o', 'ip'])).to.deep.equal(['192.0.2.11', '192.0.2.12', '192.0.2.13'])
      // Decoded as Latin-1 the same bytes are valid.
      const latin = json([f, FAIL_RE, '--encoding', 'latin1'])
      expect(latin.lines).to.include({invalid: 0, binary: 1})
      expect(out([f, FAIL_RE, '--encoding', 'latin1', '-o', 'user'])[0]).to.equal('böb')
    })

    it('decodes cp1252 and UTF-16LE', function () {
      const f = path.join(dir, 'cp1252.log')
      fs.writeFileSync(f, Buffer.concat([Buffer.from('Jan 10 10:00:01 web myapp[1]: login failed for '), Buffer.from([0x80]), Buffer.from('uro from 192.0.2.21\n')]))
      expect(out([f, FAIL_RE, '--encoding', 'cp1252', '-o', 'user'])).to.deep.equal(['€uro'])
      const u = path.join(dir, 'utf16.log')
      fs.writeFileSync(u, Buffer.from('Jan 10 10:00:01 web myapp[1]: login failed for zoë from 192.0.2.22\n', 'utf16le'))
      expect(out([u, FAIL_RE, '--encoding', 'utf-16le', '-o', '<ip> <user>'])).to.deep.equal(['192.0.2.22 zoë'])
    })
  })

  describe('volume', function () {
    it('processes a 5 MB log', function () {
      const big = path.join(dir, 'big.log')
      const lines: string[] = []
      let expectedFailures = 0
      let bytes = 0
      for (let i = 0; bytes < 5 * 1024 * 1024; i++) {
        const s = i % 60
        const m = Math.floor(i / 60) % 60
        const ts = `Feb  3 1${Math.floor(i / 3600) % 10}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`
        let l: string
        if (i % 5 === 0) {
          l = `${ts} web myapp[${i}]: login failed for user${i % 97} from 192.0.${(i >> 8) & 255}.${i & 255}`
          expectedFailures++
        } else if (i % 5 === 1) l = `${ts} web myapp[${i}]: login failed for trusted from 2001:db8::${(i % 65535).toString(16)}`
        else l = `${ts} web cron[${i}]: (root) CMD (run-parts /etc/cron.hourly) padding padding padding`
        if (i % 5 === 1) expectedFailures++
        lines.push(l)
        bytes += l.length + 1
      }
      fs.writeFileSync(big, lines.join('\n') + '\n')
      expect(fs.statSync(big).size).to.be.at.least(5 * 1024 * 1024)
      const rep = json([big, FAIL_RE, 'for trusted from'])
      expect(rep.lines.total).to.equal(lines.length)
      expect(rep.lines.skipped).to.equal(0)
      const trusted = lines.filter((l) => l.includes('for trusted')).length
      expect(rep.lines.ignored).to.equal(trusted)
      expect(rep.lines.matched).to.equal(expectedFailures - trusted)
      expect(rep.lines.missed).to.equal(lines.length - expectedFailures)
      expect(rep.failures).to.equal(expectedFailures - trusted)
      expect(rep.bytes).to.equal(fs.statSync(big).size)
      const ips = out([big, FAIL_RE, 'for trusted from', '-o', 'ip'])
      expect(ips).to.have.length(expectedFailures - trusted)
      expect(ips[0]).to.equal('192.0.0.0')
      expect(ips[1]).to.equal('192.0.0.5')
    })
  })
})

describe('LineSplitter (the streaming reader behind spylog regex)', function () {

  const PIECES = ['abc', ' ', 'é', '€', '😀', '\n', '\r\n', '\r', '\0', 'x'.repeat(40)]

  /** What the splitter must produce: split on LF bytes, one CR dropped, BOM skipped, last empty piece dropped. */
  function reference(buf: Buffer): {lines: string[]; invalid: number; binary: number} {
    let b = buf
    if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3)
    const lines: string[] = []
    let invalid = 0
    let binary = 0
    let pos = 0
    while (pos < b.length) {
      let nl = b.indexOf(10, pos)
      if (nl < 0) nl = b.length
      const sub = b.subarray(pos, nl)
      let l = sub.toString('utf8')
      if (!isUtf8(sub)) invalid++
      if (l.includes('\0')) binary++
      if (l.endsWith('\r')) l = l.slice(0, -1)
      lines.push(l)
      pos = nl + 1
    }
    return {lines, invalid, binary}
  }

  it('gives the same lines and counts whatever the chunk boundaries', function () {
    const rand = prng(7)
    // batchAscii: a push that says its lines are ASCII never appends a non-ASCII one.
    const asciiSeen = {claimed: 0, nonAscii: 0}
    for (let round = 0; round < 300; round++) {
      const parts: Buffer[] = []
      if (round % 5 === 0) parts.push(Buffer.from([0xef, 0xbb, 0xbf]))
      const n = Math.floor(rand() * 60)
      for (let i = 0; i < n; i++) {
        if (rand() < 0.05) parts.push(Buffer.from([0xff, 0xc3])) // invalid UTF-8
        else parts.push(Buffer.from(PIECES[Math.floor(rand() * PIECES.length)]!))
      }
      const all = Buffer.concat(parts)
      const sp = new LineSplitter('utf8')
      const got: string[] = []
      const batch = new LineBatch()
      let pos = 0
      while (pos < all.length) {
        const len = 1 + Math.floor(rand() * (rand() < 0.3 ? 3 : 40))
        sp.push(all.subarray(pos, pos + len), batch)
        const added = batch.drain()
        got.push(...added)
        if (sp.batchAscii && added.length > 0) {
          asciiSeen.claimed++
          for (const l of added) expect(l, `round ${round}`).to.match(/^[\x00-\x7f]*$/)
        } else if (added.some((l) => /[^\x00-\x7f]/.test(l))) asciiSeen.nonAscii++
        pos += len
      }
      sp.end(batch)
      const last = batch.drain()
      got.push(...last)
      if (sp.batchAscii) for (const l of last) expect(l, `round ${round}`).to.match(/^[\x00-\x7f]*$/)
      const want = reference(all)
      expect(got, `round ${round}: ${JSON.stringify(all.toString('latin1'))}`).to.deep.equal(want.lines)
      expect(sp.stats.invalid, `round ${round}`).to.equal(want.invalid)
      expect(sp.stats.binary, `round ${round}`).to.equal(want.binary)
    }
    expect(asciiSeen.claimed).to.be.greaterThan(100)
    expect(asciiSeen.nonAscii).to.be.greaterThan(100)
    // Only encodings whose ASCII bytes are always ASCII text may claim it.
    const jis = new LineSplitter('iso-2022-jp')
    jis.push(Buffer.from('\x1b$B$3$s\x1b(B\n', 'latin1'), new LineBatch())
    expect(jis.batchAscii).to.equal(false)
  })

  it('gives the same lines from large chunks, which it decodes piece by piece', function () {
    const rand = prng(11)
    const LONG = ['x'.repeat(3000), 'é'.repeat(700), 'a'.repeat(32 * 1024 - 1)]
    for (let round = 0; round < 12; round++) {
      // Rounds 0–3 pure ASCII (Latin-1 pieces), 4–7 valid UTF-8, 8–11 with invalid bytes and NULs.
      const pieces = round < 4 ? ['abc', ' ', '\n', '\r\n', '\r', 'x'.repeat(40)] : round < 8 ? [...PIECES.filter((p) => p !== '\0'), 'é'] : PIECES
      const parts: Buffer[] = []
      let size = 0
      while (size < 300_000) {
        const r = rand()
        const p = r < 0.01 ? LONG[Math.floor(rand() * LONG.length)]! : pieces[Math.floor(rand() * pieces.length)]!
        const b = round >= 8 && r > 0.999 ? Buffer.from([0xff]) : Buffer.from(round < 4 ? p.replace(/[^\x00-\x7f]/g, '?') : p)
        parts.push(b)
        size += b.length
      }
      const all = Buffer.concat(parts)
      const sp = new LineSplitter('utf8')
      const batch = new LineBatch()
      const got: string[] = []
      for (let pos = 0; pos < all.length; ) {
        const len = 40_000 + Math.floor(rand() * 260_000)
        batch.clear()
        sp.push(all.subarray(pos, pos + len), batch)
        for (let l = batch.next(); l !== undefined; l = batch.next()) got.push(l)
        pos += len
      }
      sp.end(batch)
      got.push(...batch.drain())
      const want = reference(all)
      expect(got.length, `round ${round}`).to.equal(want.lines.length)
      for (let i = 0; i < got.length; i++) if (got[i] !== want.lines[i]) expect(got[i], `round ${round}, line ${i + 1}`).to.equal(want.lines[i])
      expect(sp.stats.invalid, `round ${round}`).to.equal(want.invalid)
      expect(sp.stats.binary, `round ${round}`).to.equal(want.binary)
    }
  })

  it('cuts an overlong line and goes on with the next one', function () {
    const sp = new LineSplitter('utf8', undefined, 100)
    const batch = new LineBatch()
    const long = 'é'.repeat(500)
    for (const piece of ['short\n', long.slice(0, 120), long.slice(120), '\nnext\n']) sp.push(Buffer.from(piece), batch)
    sp.end(batch)
    const got = batch.drain()
    expect(got).to.have.length(3)
    expect(got[0]).to.equal('short')
    expect(got[1]).to.equal('é'.repeat(50))
    expect(got[2]).to.equal('next')
    expect(sp.stats.overlong).to.equal(1)
    expect(sp.stats.invalid).to.equal(0)
  })
})

describe('spylog regex with the filters of the spylog configuration', () => {
  it('finds a FILTER{} of the packaged library by name when no filter.d has it', () => {
    const line = 'May 14 10:11:12 web01 sshd[4242]: Failed password for invalid user admin from 203.0.113.77 port 50022 ssh2'
    const r = spylog([line, 'freeswitch', '--json'])
    expect(r.status, r.stderr).to.equal(0)
    // freeswitch does not match an sshd line; sshd does:
    expect(JSON.parse(r.stdout).lines.matched).to.equal(0)
    const s = spylog([line, 'sshd', '-o', 'ip', '--filter-dir', tempTree({'x.txt': ''})])
    expect(s.status, s.stderr).to.equal(0)
    expect(s.stdout.trim()).to.equal('203.0.113.77')
  })

  it('uses --config, and names a configuration that does not load', () => {
    const dir = tempTree({'filters/demo.lua': 'FILTER{"mine"; source = "file:/x"; engine = "fail2ban"; failregex = {[[^denied <HOST>$]]}}\n'})
    const ok = spylog(['denied 192.0.2.44', 'mine', '--config', dir, '-o', 'ip'])
    expect(ok.status, ok.stderr).to.equal(0)
    expect(ok.stdout.trim()).to.equal('192.0.2.44')
    const bad = tempTree({'filters/bad.lua': 'FILTER{"x"; source = "file:/x"; failregex = 42}\n'})
    const r = spylog(['x', 'mine', '--config', bad])
    expect(r.status).to.equal(2)
    expect(r.stderr).to.match(/--config .*bad\.lua:1: FILTER "x"\.failregex/)
    expect(r.stderr).to.not.match(/\n\s+at /)
  })
})
