import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type {JournalSource} from '../src/engine/config/model.js'
import {loadFilterFile} from '../src/engine/fail2ban/filterfile.js'
import {Fail2banFilter} from '../src/engine/filters/fail2ban.js'
import {nullLogger} from '../src/engine/log/logger.js'
import {createJournalSource, formatJournalEntry, journalctlArgs, journalPositionKey, type JournalSourceOptions} from '../src/engine/sources/journal.js'
import {MemoryPositionStore, type Source, type SourceContext} from '../src/engine/sources/source.js'
import type {LogRecord} from '../src/engine/types.js'
import {repoRoot, tempTree} from './support/files.js'
import {waitFor} from './support/wait.js'

/**
 * The recorded stream: `journalctl -o json` output (one JSON object per line, all values strings,
 * byte arrays for values that are not valid UTF-8, arrays for fields given several times).
 */
const FIXTURE = fs.readFileSync(path.join(repoRoot, 'test/fixtures/journal/sshd.jsonl'), 'utf8').split('\n').filter((l) => l !== '')
const entries = FIXTURE.map((l) => JSON.parse(l) as Record<string, unknown>)

/**
 * A stand-in for journalctl (no journal runs on this machine, nor in CI): it serves
 * `<dir>/journal.jsonl` as the journal, with journalctl's behaviour for the options the source
 * uses: `--lines=0` (only new entries), `--no-tail` (all), `--after-cursor=C` (entries after C;
 * an unknown cursor is refused as journalctl does), FIELD=value matches (ANDed; `+` ORs groups),
 * `--follow` (new lines appended to the file are printed). Once positioned in the journal it logs
 * its argv to `<dir>/argv.log` (tests wait for that before adding entries).
 * With `<dir>/exit-after` holding N it exits (status 1) after printing N entries, once.
 */
const FAKE = `#!${process.execPath}
const fs = require('fs')
const path = require('path')
const dir = path.dirname(process.argv[1])
const args = process.argv.slice(2)
let cursor, mode = 'tail'
const groups = [[]]
for (const a of args) {
  if (a.startsWith('--after-cursor=')) cursor = a.slice(15)
  else if (a === '--no-tail') mode = 'all'
  else if (a === '--lines=0') mode = 'tail'
  else if (a === '+') groups.push([])
  else if (/^[A-Z0-9_]+=/.test(a)) groups[groups.length - 1].push(a)
  else if (!['--follow', '--output=json', '--all', '--no-pager', '--quiet'].includes(a)) { process.stderr.write('unknown option ' + a + '\\n'); process.exit(2) }
}
const matches = (e) => groups.every((g) => g.length === 0) || groups.some((g) => g.length > 0 && g.every((t) => { const i = t.indexOf('='); return e[t.slice(0, i)] === t.slice(i + 1) }))
const file = path.join(dir, 'journal.jsonl')
let exitAfter = Infinity
try { exitAfter = Number(fs.readFileSync(path.join(dir, 'exit-after'), 'utf8')); fs.unlinkSync(path.join(dir, 'exit-after')) } catch {}
let printed = 0
let offset = 0
const read = () => {
  const text = fs.readFileSync(file, 'utf8')
  const end = text.lastIndexOf('\\n') + 1
  const lines = text.slice(offset, end).split('\\n').filter((l) => l !== '')
  offset = end
  return lines
}
const emit = (line) => {
  let e
  try { e = JSON.parse(line) } catch { process.stdout.write(line + '\\n'); return }
  if (!matches(e)) return
  process.stdout.write(line + '\\n')
  if (++printed >= exitAfter) process.exit(1)
}
const first = read()
if (cursor !== undefined) {
  const i = first.findIndex((l) => { try { return JSON.parse(l).__CURSOR === cursor } catch { return false } })
  if (i < 0) { process.stderr.write('Failed to seek to cursor: Invalid argument\\n'); process.exit(1) }
  first.slice(i + 1).forEach(emit)
} else if (mode === 'all') first.forEach(emit)
// Logged once positioned (like journalctl, it may start after the caller's spawn returned).
fs.appendFileSync(path.join(dir, 'argv.log'), JSON.stringify(args) + '\\n')
setInterval(() => read().forEach(emit), 20)
process.on('SIGTERM', () => process.exit(0))
`

function journalCfg(match: string[][] = [['_SYSTEMD_UNIT=ssh.service'], ['_COMM=sshd']]): JournalSource {
  return {name: 'journal:sshd', origin: {file: 'jail.conf', line: 1}, spec: 'systemd', implicit: true, kind: 'journal', match}
}

/** A directory with the fake journalctl and a journal holding `initial` entries of the fixture. */
function fakeJournal(initial: number): {dir: string; exe: string; add: (lines: string[]) => void; argv: () => string[][]} {
  const dir = tempTree({'journalctl': FAKE, 'journal.jsonl': FIXTURE.slice(0, initial).map((l) => l + '\n').join('')})
  const exe = path.join(dir, 'journalctl')
  fs.chmodSync(exe, 0o755)
  return {
    dir,
    exe,
    add: (lines) => fs.appendFileSync(path.join(dir, 'journal.jsonl'), lines.map((l) => l + '\n').join('')),
    argv: () => !fs.existsSync(path.join(dir, 'argv.log')) ? [] : fs.readFileSync(path.join(dir, 'argv.log'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as string[]),
  }
}

const running: Source[] = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop()
})

async function follow(cfg: JournalSource, ctx: Partial<SourceContext>, opts: JournalSourceOptions): Promise<{src: Source; recs: LogRecord[]}> {
  const src = createJournalSource(cfg, {log: nullLogger, positions: new MemoryPositionStore(), ...ctx}, {restartMinMs: 50, restartMaxMs: 400, saveMs: 100, ...opts})
  running.push(src)
  const recs: LogRecord[] = []
  await src.start((r) => recs.push(r))
  return {src, recs}
}

describe('journal source: entry format (fail2ban journal lines)', () => {
  it('formats HOST IDENT[PID]: MESSAGE with the entry time and fields', () => {
    const e = formatJournalEntry(entries[0])!
    expect(e.text).to.equal('srv sshd[31602]: Failed password for invalid user ROOT from 194.117.26.69 port 50273 ssh2')
    // The sender's own time (_SOURCE_REALTIME_TIMESTAMP) wins over the journal's receive time.
    expect(e.time).to.equal(1699999999.998766)
    expect(e.fields).to.deep.equal({unit: 'ssh.service', app: 'sshd', pid: 31602, host: 'srv'})
    expect(e.cursor).to.equal(entries[0].__CURSOR)
  })

  it('decodes byte-array values (invalid UTF-8, NUL) without failing', () => {
    expect(formatJournalEntry(entries[1])!.text).to.equal('srv sshd[31603]: Invalid user \ufffd\ufffdadmin from 192.0.2.7 port 4242\u0000tail')
  })

  it('puts the monotonic time after kernel:, escapes newlines, joins repeated fields, falls back to _COMM/_PID', () => {
    expect(formatJournalEntry(entries[2])!.text).to.equal('srv kernel: [  970.699396] IN=eth0 OUT= SRC=203.0.113.9 DST=192.0.2.1 PROTO=TCP DPT=22')
    expect(formatJournalEntry(entries[2])!.time).to.equal(1700000003)
    expect(formatJournalEntry(entries[3])!.text).to.equal('srv sshd[31604]: error: PAM: Authentication failure for stefanor from example.com\\nsecond line')
    expect(formatJournalEntry(entries[4])!.text).to.equal('srv sshd[31605]: Connection closed by 198.51.100.3 port 5555 [preauth]')
    expect(formatJournalEntry(entries[5])!.text).to.equal('srv sshd[31606]: Accepted publickey for alice from 192.0.2.44 port 60000 ssh2')
  })

  it('keeps what is present: no host, no identifier, only a message', () => {
    expect(formatJournalEntry({MESSAGE: 'bare'})!.text).to.equal('bare')
    expect(formatJournalEntry({_COMM: 'x', MESSAGE: 'no pid', SYSLOG_PID: '0x1f'})!.text).to.equal('x[31]: no pid')
    expect(formatJournalEntry({SYSLOG_IDENTIFIER: 'y', SYSLOG_PID: 'abc', MESSAGE: 'm'})!.text).to.equal('y[abc]: m')
    expect(formatJournalEntry([1, 2])).to.equal(undefined)
    expect(formatJournalEntry('text')).to.equal(undefined)
    expect(formatJournalEntry({MESSAGE: null, __REALTIME_TIMESTAMP: 'garbage'})).to.deep.equal({text: '', time: undefined, cursor: undefined, fields: {}})
  })

  it('builds journalctl argv: matches ORed with +, start at the tail, after a cursor, or from the start', () => {
    const cfg = journalCfg([['_SYSTEMD_UNIT=ssh.service', 'PRIORITY=6'], ['_COMM=sshd']])
    expect(journalctlArgs(cfg, {})).to.deep.equal(['--follow', '--output=json', '--all', '--no-pager', '--quiet', '--lines=0', '_SYSTEMD_UNIT=ssh.service', 'PRIORITY=6', '+', '_COMM=sshd'])
    expect(journalctlArgs(cfg, {cursor: 's=1;i=2'})).to.include('--after-cursor=s=1;i=2')
    expect(journalctlArgs(journalCfg([]), {fromStart: true}, ['--directory=/x'])).to.deep.equal(['--directory=/x', '--follow', '--output=json', '--all', '--no-pager', '--quiet', '--no-tail'])
  })

  it('the real journalctl accepts that argv, and refuses a bad cursor with a message naming the cursor', function () {
    if (spawnSync('journalctl', ['--version']).status !== 0) this.skip()
    // Without --follow (no journal daemon here): every option and match must be accepted.
    const cfg = journalCfg([['_SYSTEMD_UNIT=spylog-test-none.service', 'PRIORITY=6'], ['_COMM=spylog-test-none']])
    for (const start of [{}, {fromStart: true}]) {
      const args = journalctlArgs(cfg, start).filter((a) => a !== '--follow')
      const r = spawnSync('journalctl', args, {encoding: 'utf8'})
      expect(r.status, `journalctl ${args.join(' ')}: ${r.stderr}`).to.equal(0)
      expect(r.stdout).to.equal('')
    }
    const bad = spawnSync('journalctl', journalctlArgs(cfg, {cursor: 'not-a-cursor'}).filter((a) => a !== '--follow'), {encoding: 'utf8'})
    expect(bad.status).to.not.equal(0)
    expect(bad.stderr).to.match(/cursor/i)
  })
})

describe('journal source: journalctl process', () => {
  it('follows new entries only, with the matches; saves the cursor and resumes after it on restart', async () => {
    const j = fakeJournal(3)
    const positions = new MemoryPositionStore()
    const one = await follow(journalCfg(), {positions}, {journalctl: j.exe})
    expect(one.src.stats.state).to.equal('running')
    await waitFor('journalctl positioned', () => j.argv().length === 1)
    j.add(FIXTURE.slice(3, 5))
    await waitFor('2 records', () => one.recs.length >= 2)
    expect(one.recs.map((r) => r.text)).to.deep.equal([
      'srv sshd[31604]: error: PAM: Authentication failure for stefanor from example.com\\nsecond line',
      'srv sshd[31605]: Connection closed by 198.51.100.3 port 5555 [preauth]',
    ])
    expect(one.recs[0].time).to.equal(1700000004.498766)
    expect(one.recs[0].source).to.equal('journal:sshd')
    expect(one.recs[0].fields).to.deep.equal({unit: 'ssh.service', app: 'sshd', pid: 31604, host: 'srv'})
    await one.src.stop()
    expect(one.src.stats.state).to.equal('stopped')
    expect(positions.values.get(journalPositionKey('journal:sshd'))).to.equal(entries[4].__CURSOR)
    // While stopped: three more entries, one of another unit (not matched).
    j.add(FIXTURE.slice(5, 8))
    const two = await follow(journalCfg(), {positions}, {journalctl: j.exe})
    await waitFor('2 records', () => two.recs.length >= 2)
    await waitFor('journalctl positioned', () => j.argv().length === 2)
    j.add([FIXTURE[0]])
    await waitFor('3 records', () => two.recs.length >= 3)
    expect(two.recs.map((r) => r.fields?.pid)).to.deep.equal([31606, 31607, 31602])
    const argv = j.argv()
    expect(argv[0]).to.include('--lines=0')
    expect(argv[0].slice(-3)).to.deep.equal(['_SYSTEMD_UNIT=ssh.service', '+', '_COMM=sshd'])
    expect(argv[1]).to.include(`--after-cursor=${entries[4].__CURSOR}`)
  })

  it('runs journalctl again with back-off when it exits, continuing after the last entry', async () => {
    const j = fakeJournal(0)
    fs.writeFileSync(path.join(j.dir, 'exit-after'), '2')
    const {src, recs} = await follow(journalCfg([]), {}, {journalctl: j.exe})
    await waitFor('journalctl positioned', () => j.argv().length === 1)
    j.add(FIXTURE.slice(0, 5))
    await waitFor('5 records', () => recs.length >= 5)
    expect(recs.map((r) => r.fields?.pid ?? r.text.slice(0, 11))).to.deep.equal([31602, 31603, 'srv kernel:', 31604, 31605])
    const argv = j.argv()
    expect(argv.length).to.equal(2)
    expect(argv[1]).to.include(`--after-cursor=${entries[1].__CURSOR}`)
    expect(src.stats.lastError).to.match(/exited \(code 1\)/)
    await waitFor('running again', () => src.stats.state === 'running')
  })

  it('reads the whole journal with --from-start; counts lines that are not JSON and goes on', async () => {
    const j = fakeJournal(2)
    const {src, recs} = await follow(journalCfg([]), {fromStart: true}, {journalctl: j.exe})
    await waitFor('2 records', () => recs.length >= 2)
    await waitFor('journalctl positioned', () => j.argv().length === 1)
    j.add(['this is not json', '[1,2,3]', FIXTURE[7]])
    await waitFor('3 records', () => recs.length >= 3)
    expect(recs.map((r) => r.fields?.pid)).to.deep.equal([31602, 31603, 31607])
    expect(src.stats.errors).to.equal(2)
    expect(src.stats.lastError).to.include('[1,2,3]')
  })

  it('forgets a cursor journalctl refuses and follows new entries', async () => {
    const j = fakeJournal(3)
    const positions = new MemoryPositionStore()
    await positions.set(journalPositionKey('journal:sshd'), 's=unknown;i=1')
    const {src, recs} = await follow(journalCfg([]), {positions}, {journalctl: j.exe})
    await waitFor('second run', () => j.argv().length >= 1)
    await waitFor('running', () => src.stats.state === 'running')
    j.add([FIXTURE[3]])
    await waitFor('1 record', () => recs.length >= 1)
    expect(recs[0].fields?.pid).to.equal(31604)
    // The refused run exits before it is positioned (it logs nothing); the second one starts at the tail.
    expect(j.argv()).to.have.length(1)
    expect(j.argv()[0]).to.include('--lines=0')
  })

  it("feeds fail2ban's sshd filter (logtype journal) lines it recognises", async function () {
    const corpus = [path.resolve(repoRoot, '../shared/fail2ban-corpus'), '/work/shared/fail2ban-corpus'].find((d) => fs.existsSync(path.join(d, 'filter.d/sshd.conf')))
    if (corpus === undefined) this.skip()
    const def = loadFilterFile(path.join(corpus!, 'filter.d/sshd.conf'), {logtype: 'journal'})
    const filter = new Fail2banFilter({name: 'sshd', prefregex: def.prefregex, failregex: def.failregex, ignoreregex: def.ignoreregex, maxlines: def.maxlines, datepattern: def.datepattern})
    const j = fakeJournal(0)
    // journalmatch lines hold FIELD=value terms with "+" between alternatives (as the config reader groups them).
    const groups: string[][] = [[]]
    for (const t of def.journalmatch.flat()) if (t === '+') groups.push([]); else groups[groups.length - 1].push(t)
    const {recs} = await follow(journalCfg(groups.filter((g) => g.length > 0)), {fromStart: true}, {journalctl: j.exe})
    await waitFor('journalctl positioned', () => j.argv().length === 1)
    j.add([FIXTURE[0], FIXTURE[6], FIXTURE[7]])
    await waitFor('records', () => recs.length >= 2)
    // The filter's journalmatch selects sshd's unit: nginx's entry is not delivered.
    expect(recs.map((r) => r.fields?.app)).to.deep.equal(['sshd', 'sshd'])
    const ids = recs.map((r) => filter.processLine(r.text, true).matches.map((m) => m.id))
    expect(ids).to.deep.equal([['194.117.26.69'], ['2001:db8::1']])
  })

  it('a missing journalctl is a retried failure with a clear reason, not a crash', async () => {
    const dir = tempTree({})
    const {src} = await follow(journalCfg(), {}, {journalctl: path.join(dir, 'no-such-journalctl')})
    expect(src.stats.state).to.equal('retrying')
    expect(src.stats.lastError).to.match(/cannot run .*no-such-journalctl.*ENOENT/)
    await src.stop()
    expect(src.stats.state).to.equal('stopped')
  })
})
