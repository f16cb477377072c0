import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import type {EventLogLocalSource, EventSelector} from '../src/engine/config/model.js'
import {SinkLogger} from '../src/engine/log/logger.js'
import {
  channelQueries, channelXPath, createEventLogSource, decodeWevtutil, defaultWorkerArgv, eventToRecord, matchesEventSelectors,
  parseEventXml, parseSystemTime, WORKER_SCRIPT,
} from '../src/engine/sources/eventlog.js'
import {parseWorkerLine, RecordMarks} from '../src/engine/sources/eventlog-worker.js'
import {MemoryPositionStore, type SourceContext} from '../src/engine/sources/source.js'
import {RECORD_FIELDS, type LogRecord} from '../src/engine/types.js'
import {repoRoot, tempTree} from './support/files.js'
import {waitFor as until} from './support/wait.js'

const FIXTURES = path.join(repoRoot, 'test', 'support', 'eventlog-standin.fixtures')
const STANDIN = path.join(repoRoot, 'test', 'support', 'eventlog-standin.mjs')
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), 'utf8')

function context(positions = new MemoryPositionStore(), extra: Partial<SourceContext> = {}): SourceContext & {lines: string[]} {
  const lines: string[] = []
  return {log: new SinkLogger('debug', [(l) => lines.push(l)]), positions, lines, ...extra}
}

function localCfg(over: Partial<EventLogLocalSource> = {}): EventLogLocalSource {
  return {
    name: 'windows-events', origin: {file: 'test', line: 1}, spec: 'eventlog:', implicit: false, kind: 'eventlog', protocol: 'local',
    host: '', port: 0, mode: 'auto', poll: 1, maxAge: 0, render: true, ...over,
  }
}

const SECURITY: EventSelector[] = [{source: 'Security', prefix: false, ids: [4625]}]

function scenario(dir: string, sc: unknown): string {
  const file = path.join(dir, 'scenario.json')
  fs.writeFileSync(file, JSON.stringify(sc))
  return file
}

/** Security log of five 4625 events with record ids 100…104 (two fixtures' contents, distinct ids). */
function securityLog(ids = [100, 101, 102, 103, 104]): unknown[] {
  const files = ['security-4625-network-ntlm.xml', 'security-4625-remoteinteractive-ipv6.xml', 'security-4625-ntlm-no-ip.xml']
  return ids.map((rid, i) => ({file: files[i % files.length], rid}))
}

describe('event-log source: event XML', () => {
  it('reads every recorded fixture: channel, record id, time, provider, id and the EventData values', () => {
    const ev = parseEventXml(fixture('security-4625-network-ntlm.xml'))
    expect(ev).to.have.length(1)
    expect(ev[0]).to.deep.include({channel: 'Security', record: 1893421, provider: 'Microsoft-Windows-Security-Auditing', id: 4625, computer: 'SRV-APP01.corp.example'})
    expect(ev[0]!.time).to.equal(Date.UTC(2024, 4, 14, 3, 12, 45) / 1000 + 0.812346)
    expect(ev[0]!.data).to.deep.include({IpAddress: '203.0.113.45', TargetUserName: 'administrator', LogonType: '3', TargetDomainName: '', LogonProcessName: 'NtLmSsp '})

    // raw (single-quoted, one line) form of the same event
    const raw = parseEventXml(fixture('security-4625-network-ntlm.rendered.xml'))[0]!
    expect(raw.data).to.deep.include({IpAddress: '203.0.113.45', TargetUserName: 'admin', LogonProcessName: 'NtLmSsp '})
    expect(raw.record).to.equal(1893422)

    expect(parseEventXml(fixture('security-4625-ntlm-no-ip.xml'))[0]!.data.IpAddress).to.equal('-')
    expect(parseEventXml(fixture('security-4625-remoteinteractive-ipv6.xml'))[0]!.data).to.deep.include({IpAddress: '2001:db8:1f70::9c3', LogonType: '10'})
    expect(parseEventXml(fixture('security-4771-kerberos-preauth.xml'))[0]!.data.IpAddress).to.equal('::ffff:203.0.113.61')
    expect(parseEventXml(fixture('security-4776-ntlm-credential-validation.xml'))[0]!.data).to.deep.include({Workstation: 'WIN-7Q2LKD0PR1'})
    expect(parseEventXml(fixture('rdpcorets-140-failed-auth.xml'))[0]).to.deep.include({id: 140, channel: 'Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational'})
    expect(parseEventXml(fixture('rdpcorets-131-connection-accepted.xml'))[0]!.data.ClientIP).to.equal('203.0.113.45:50412')
    // unnamed <Data> by position, with their leading spaces
    const sql = parseEventXml(fixture('mssql-18456-failed-login.xml'))[0]!
    expect(sql).to.deep.include({provider: 'MSSQLSERVER', id: 18456, channel: 'Application'})
    expect(sql.data).to.deep.equal({Data1: 'sa', Data2: ' Reason: Password did not match that for the login provided.', Data3: ' [CLIENT: 203.0.113.23]'})
    expect(parseEventXml(fixture('mssql-18456-named-instance.rendered.xml'))[0]).to.deep.include({provider: 'MSSQL$SQLEXPRESS'})
    // UserData
    expect(parseEventXml(fixture('tsgateway-312-failed-auth.xml'))[0]!.data).to.deep.include({Username: 'CORP\\test', IpAddress: '203.0.113.90', AuthType: 'NTLM'})
    expect(parseEventXml(fixture('openssh-4-failed-password.xml'))[0]!.data.payload).to.equal('Failed password for invalid user oracle from 203.0.113.150 port 41736 ssh2')
    expect(parseEventXml(fixture('smbserver-551-auth-failure.xml'))[0]!.data).to.deep.include({ClientName: '\\\\203.0.113.12', UserName: 'admin'})
  })

  it('reads a wevtutil /e:Events batch in UTF-16LE (with or without BOM), non-ASCII names intact', () => {
    const text = fixture('wevtutil-qe-batch.xml')
    for (const buf of [Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]), Buffer.from(text, 'utf16le'), Buffer.from(text, 'utf8')]) {
      const evs = parseEventXml(decodeWevtutil(buf))
      expect(evs.map((e) => [e.record, e.data.IpAddress, e.data.TargetUserName])).to.deep.equal([[1895001, '198.51.100.7', 'user1'], [1895002, '198.51.100.7', 'Müller']])
    }
  })

  it('takes RenderingInfo/Message as the record text, and the event time as the record time', () => {
    const xml = fixture('rdpcorets-140-failed-auth.xml').replace('</Event>', "<RenderingInfo Culture='en-US'><Message>A connection from the client computer with an IP address of 203.0.113.45 failed because the user name or password is not correct.&#13;&#10;</Message></RenderingInfo></Event>")
    const [ev] = parseEventXml(xml)
    const rec = eventToRecord(ev!, 'src', 5)
    expect(rec.text).to.equal('A connection from the client computer with an IP address of 203.0.113.45 failed because the user name or password is not correct.')
    expect(rec.time).to.equal(parseSystemTime('2024-05-14T03:12:45.7900211Z'))
    expect(rec.fields).to.deep.include({[RECORD_FIELDS.eventId]: 140, [RECORD_FIELDS.eventRecord]: 208113, [RECORD_FIELDS.eventSource]: 'Microsoft-Windows-RemoteDesktopServices-RdpCoreTS', IPString: '203.0.113.45'})
    // without a message: a one-line synthesized text that still carries the data
    const plain = eventToRecord(parseEventXml(fixture('rdpcorets-140-failed-auth.xml'))[0]!, 'src', 5)
    expect(plain.text).to.equal('EventID: 140; Provider: Microsoft-Windows-RemoteDesktopServices-RdpCoreTS; IPString: 203.0.113.45')
  })

  it('is not fooled by hostile content: entities are not expanded, markup in values stays text, no throw on garbage', () => {
    const bomb = `<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><Event><System><EventID>1</EventID><EventRecordID>2</EventRecordID><Channel>X</Channel></System><EventData><Data Name="u">&b;&lt;/Data&gt;&lt;Data Name=&quot;IpAddress&quot;&gt;1.2.3.4&#0;&#x41;</Data></EventData></Event>`
    const [ev] = parseEventXml(bomb)
    expect(ev!.data).to.deep.equal({u: '&b;</Data><Data Name="IpAddress">1.2.3.4\ufffdA'})
    // NULs, unterminated tags, deep nesting
    expect(() => parseEventXml('<Event><System><EventID>1\u0000</EventID><EventRecordID>3')).not.to.throw()
    expect(parseEventXml('<a>'.repeat(5000) + '<Event>')).to.deep.equal([])
    expect(parseEventXml('<Event><System><EventID>x</EventID><EventRecordID>1</EventRecordID></System></Event>')).to.deep.equal([])
    fc.assert(fc.property(fc.string({unit: 'binary', maxLength: 300}), (s) => {
      const out = parseEventXml(s)
      return Array.isArray(out)
    }), {numRuns: 2000, seed: 8})
    fc.assert(fc.property(fc.string({maxLength: 80}), (noise) => {
      // a value holding anything still comes back as exactly that text
      const esc = noise.replace(/&/g, '&amp;').replace(/</g, '&lt;')
      const [e] = parseEventXml(`<Event><System><EventID>4625</EventID><EventRecordID>7</EventRecordID></System><EventData><Data Name='IpAddress'>${esc}</Data></EventData></Event>`)
      return e !== undefined && e.data.IpAddress === noise
    }), {numRuns: 1000, seed: 9})
  })
})

describe('event-log source: selectors and queries', () => {
  it('turns lua-spylog events selectors into channels and XPath on event ids and providers only', () => {
    const rdp: EventSelector[] = [{source: 'Security', prefix: false, ids: [529, 4625]}, {source: 'Microsoft-Windows-Security-Auditing', prefix: false, ids: [4625]}]
    const q = channelQueries(rdp)
    expect(q.map((x) => x.channel)).to.deep.equal(['Security'])
    expect(channelXPath(q[0]!)).to.equal("*[System[((EventID=529 or EventID=4625)) or (Provider[@Name='Microsoft-Windows-Security-Auditing'] and (EventID=4625))]]")
    expect(channelXPath(q[0]!, {after: 1893421, maxAge: 3600})).to.equal("*[System[(((EventID=529 or EventID=4625)) or (Provider[@Name='Microsoft-Windows-Security-Auditing'] and (EventID=4625))) and EventRecordID > 1893421 and TimeCreated[timediff(@SystemTime) <= 3600000]]]")
    // a provider prefix: the channel is known, the prefix is filtered here
    const sql = channelQueries([{source: 'MSSQL$', prefix: true, ids: [18456]}])
    expect(sql).to.deep.equal([{channel: 'Application', terms: [{provider: undefined, ids: [18456]}]}])
    expect(channelXPath(sql[0]!)).to.equal('*[System[(EventID=18456)]]')
    // a channel without ids: every event; explicit channel for an unknown provider
    expect(channelXPath(channelQueries([{source: 'OpenSSH/Operational', prefix: false}])[0]!)).to.equal('*')
    expect(channelQueries([{source: 'MyApp', prefix: false, ids: [7], channel: 'MyApp/Admin'}])[0]).to.deep.equal({channel: 'MyApp/Admin', terms: [{provider: 'MyApp', ids: [7]}]})
    const warned: string[] = []
    expect(channelQueries([{source: 'Foo', prefix: false, ids: [1]}], (m) => warned.push(m))[0]!.channel).to.equal('Application')
    expect(warned[0]).to.match(/Foo.*channel unknown/)
    // too many terms for one event-log query: ids are left to spylog
    const many = channelQueries([{source: 'System', prefix: false, ids: Array.from({length: 30}, (_, i) => i + 1)}])
    expect(channelXPath(many[0]!)).to.equal('*')
    // quotes in a provider name cannot break out of the literal
    expect(channelXPath(channelQueries([{source: "a'b", prefix: false, channel: 'X'}])[0]!)).to.equal(`*[System[Provider[@Name="a'b"]]]`)
  })

  it('matches records to a filter by channel or provider, prefix and id', () => {
    const rec = (ch: string, pr: string, id: number): Record<string, string | number> => ({[RECORD_FIELDS.eventChannel]: ch, [RECORD_FIELDS.eventSource]: pr, [RECORD_FIELDS.eventId]: id})
    const sel: EventSelector[] = [{source: 'Security', prefix: false, ids: [4625]}, {source: 'MSSQL$', prefix: true, ids: [18456]}]
    expect(matchesEventSelectors(sel, rec('Security', 'Microsoft-Windows-Security-Auditing', 4625))).to.equal(true)
    expect(matchesEventSelectors(sel, rec('Security', 'Microsoft-Windows-Security-Auditing', 4624))).to.equal(false)
    expect(matchesEventSelectors(sel, rec('Application', 'MSSQL$SQLEXPRESS', 18456))).to.equal(true)
    expect(matchesEventSelectors(sel, rec('Application', 'MSSQLSERVER', 18456))).to.equal(false)
    expect(matchesEventSelectors([{source: 'microsoft-windows-security-auditing', prefix: false}], rec('Security', 'Microsoft-Windows-Security-Auditing', 1))).to.equal(true)
    expect(matchesEventSelectors(sel, undefined)).to.equal(false)
  })
})

describe('event-log source: worker protocol', () => {
  it('parses protocol lines and rejects junk without throwing', () => {
    expect(parseWorkerLine('{"type":"event","ch":"Security","rid":5,"id":4625,"msg":"x"}')).to.deep.include({type: 'event', ch: 'Security', rid: 5, id: 4625, msg: 'x'})
    expect(parseWorkerLine('{"type":"caughtup","ch":"Security","last":null}')).to.deep.equal({type: 'caughtup', ch: 'Security', last: null})
    // EventData sent as a map: strings kept, numbers as text, anything else dropped
    const withData = parseWorkerLine('{"type":"event","ch":"Security","rid":6,"id":4625,"data":{"IpAddress":"203.0.113.45","IpPort":0,"x":{"y":1},"__proto__":"z"}}')
    expect(withData).to.have.property('data').that.deep.equals(Object.assign(Object.create(null), {IpAddress: '203.0.113.45', IpPort: '0', ['__proto__']: 'z'}))
    for (const junk of ['', 'WARNING: x', '{"type":"event","ch":"Security"', '[1]', '{"type":"event","ch":"S","rid":-1}', '{"type":"event","ch":"S","rid":1.5}', '{"type":"nope"}', '{"type":"event","rid":3}', 'null']) {
      expect(parseWorkerLine(junk), junk).to.be.a('string')
    }
  })

  it('keeps per-channel marks: only ids above the mark are new; a reset accepts any id again', () => {
    const m = new RecordMarks([['Security', 10]])
    expect(m.accept('Security', 10)).to.equal(false)
    expect(m.accept('Security', 11)).to.equal(true)
    expect(m.accept('Security', 9)).to.equal(false)
    expect(m.accept('Application', 1)).to.equal(true)
    expect(m.takeDirty()).to.deep.equal([['Security', 11], ['Application', 1]])
    m.reset('Security')
    expect(m.accept('Security', 1)).to.equal(true)
  })

  it('the shipped PowerShell worker speaks the protocol the source parses', () => {
    const ps = fs.readFileSync(WORKER_SCRIPT, 'utf8')
    const types = [...ps.matchAll(/type = '(\w+)'|"type":"(\w+)"/g)].map((m) => m[1] ?? m[2])
    expect(new Set(types)).to.deep.equal(new Set(['fatal', 'hello', 'event', 'error', 'reset', 'caughtup', 'hb']))
    for (const t of types) expect(parseWorkerLine(JSON.stringify({type: t, ch: 'c', rid: 1, message: 'm', last: 1}))).to.be.an('object')
    // started without a shell, with the absolute PowerShell path and the packaged script
    expect(defaultWorkerArgv({}, {SystemRoot: 'C:\\Windows'})).to.deep.equal(['C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', '-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', WORKER_SCRIPT])
    expect(fs.existsSync(WORKER_SCRIPT)).to.equal(true)
  })

  it('the PowerShell worker script has balanced strings and brackets (a coarse check that runs without pwsh)', () => {
    const ps = fs.readFileSync(WORKER_SCRIPT, 'utf8')
    const stack: string[] = []
    const pairs: Record<string, string> = {')': '(', ']': '[', '}': '{'}
    let i = 0
    let line = 1
    while (i < ps.length) {
      const c = ps[i]!
      if (c === '\n') line++
      if (c === '#') {
        while (i < ps.length && ps[i] !== '\n') i++
        continue
      }
      if (c === "'" || c === '"') {
        // PowerShell strings: '' doubles a single quote; backtick escapes in double quotes
        const start = line
        i++
        for (;;) {
          expect(i < ps.length, `string opened on line ${start} is not closed`).to.equal(true)
          if (ps[i] === '\n') line++
          if (c === '"' && ps[i] === '`') i += 2
          else if (ps[i] === c && ps[i + 1] === c) i += 2
          else if (ps[i] === c) break
          else i++
        }
        i++
        continue
      }
      if (c === '(' || c === '[' || c === '{') stack.push(c)
      else if (c in pairs) expect(stack.pop(), `unbalanced ${c} on line ${line}`).to.equal(pairs[c])
      i++
    }
    expect(stack, 'unclosed brackets at the end').to.deep.equal([])
  })

  it('the PowerShell worker script parses (pwsh)', function () {
    const probe = spawnSync('pwsh', ['-NoProfile', '-Command', '$PSVersionTable.PSVersion.ToString()'], {encoding: 'utf8'})
    if (probe.error || probe.status !== 0) {
      this.skip() // pwsh is not installed here: the script's syntax cannot be checked on this machine
    }
    const cmd = `$e = $null; $t = $null; [void][System.Management.Automation.Language.Parser]::ParseFile('${WORKER_SCRIPT.replaceAll("'", "''")}', [ref]$t, [ref]$e); $e | ForEach-Object { $_.ToString() }; exit $e.Count`
    const r = spawnSync('pwsh', ['-NoProfile', '-Command', cmd], {encoding: 'utf8'})
    expect(r.status, r.stdout + r.stderr).to.equal(0)
  })
})

describe('event-log source: with the worker stand-in', () => {
  const sources: {stop(): Promise<void>}[] = []
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop()
  })

  function start(sc: unknown, opts: {positions?: MemoryPositionStore; selectors?: EventSelector[]; cfg?: Partial<EventLogLocalSource>; fromStart?: boolean; heartbeat?: number} = {}) {
    const dir = tempTree({})
    const file = scenario(dir, sc)
    const ctx = context(opts.positions, {fromStart: opts.fromStart, platform: 'win32'})
    const src = createEventLogSource(localCfg(opts.cfg), ctx, {
      selectors: opts.selectors ?? SECURITY,
      worker: [process.execPath, STANDIN, file],
      wevtutil: [process.execPath, STANDIN, '--wevtutil', file],
      heartbeat: opts.heartbeat ?? 0,
      backoff: {first: 50, max: 200},
      saveDelay: 10,
    })
    sources.push(src)
    const records: LogRecord[] = []
    return {src, ctx, records, file, dir, begin: () => src.start((r) => records.push(r))}
  }
  const rids = (rs: LogRecord[]): unknown[] => rs.map((r) => r.fields?.[RECORD_FIELDS.eventRecord])

  it('first start (no saved position): only events written after the subscription, as records with the rendered message', async () => {
    const t = start({log: {Security: securityLog()}, liveFrom: {Security: 103}, overlap: 1})
    await t.begin()
    await until('two live records', () => t.records.length >= 2)
    expect(rids(t.records)).to.deep.equal([103, 104])
    const r = t.records[0]!
    expect(r.source).to.equal('windows-events')
    expect(r.text).to.match(/^An account failed to log on\.\n\nSubject:\n/)
    expect(r.text).to.include('Source Network Address:\t203.0.113.45')
    expect(r.time).to.equal(parseSystemTime('2024-05-14T03:12:45.8123456Z'))
    expect(r.fields).to.deep.include({IpAddress: '203.0.113.45', TargetUserName: 'administrator', [RECORD_FIELDS.eventChannel]: 'Security', [RECORD_FIELDS.eventId]: 4625})
    expect(t.src.stats.state).to.equal('running')
    await until('position saved', () => t.ctx.positions instanceof MemoryPositionStore && (t.ctx.positions as MemoryPositionStore).values.get('eventlog:Security') === 104)
  })

  it('resumes after a restart from the saved record id: catch-up, then live, duplicates dropped, no gap', async () => {
    const positions = new MemoryPositionStore()
    await positions.set('eventlog:Security', 101)
    // records 102 and 103 were written while spylog was down; 104 and 105 arrive live; the live
    // queue repeats the last catch-up record (103)
    const t = start({log: {Security: securityLog([100, 101, 102, 103, 104, 105])}, liveFrom: {Security: 104}, overlap: 1}, {positions})
    await t.begin()
    await until('four records', () => t.records.length >= 4)
    await until('duplicate dropped', () => t.src.stats.duplicates >= 1)
    expect(rids(t.records)).to.deep.equal([102, 103, 104, 105])
    await t.src.stop()
    expect(positions.values.get('eventlog:Security')).to.equal(105)

    // and again: nothing new since 105 → nothing delivered twice
    const t2 = start({log: {Security: securityLog([100, 101, 102, 103, 104, 105, 106])}, liveFrom: {Security: 106}, overlap: 0}, {positions})
    await t2.begin()
    await until('the new record', () => t2.records.length >= 1)
    expect(rids(t2.records)).to.deep.equal([106])
  })

  it('restarts a crashed worker and continues exactly once per record', async () => {
    const positions = new MemoryPositionStore()
    await positions.set('eventlog:Security', 99)
    const t = start({log: {Security: securityLog()}, liveFrom: {Security: 103}, overlap: 2, crashAfter: 2, stateFile: ''}, {positions})
    fs.writeFileSync(t.file, JSON.stringify({log: {Security: securityLog()}, liveFrom: {Security: 103}, overlap: 2, crashAfter: 2, stateFile: path.join(t.dir, 'runs')}))
    await t.begin()
    await until('all five records', () => t.records.length >= 5)
    await until('the second run counted', () => t.src.stats.workerStarts >= 2)
    expect(rids(t.records)).to.deep.equal([100, 101, 102, 103, 104])
    expect(t.src.stats.duplicates).to.be.greaterThan(0)
    expect(t.ctx.lines.join('\n')).to.match(/worker exited with status 3; restarting/)
  })

  it('a cleared log (newest record below the saved one) is read from its start', async () => {
    const positions = new MemoryPositionStore()
    await positions.set('eventlog:Security', 5000)
    const t = start({log: {Security: securityLog([1, 2])}, liveFrom: {Security: 3}}, {positions})
    await t.begin()
    await until('both records', () => t.records.length >= 2)
    expect(rids(t.records)).to.deep.equal([1, 2])
    expect(t.ctx.lines.join('\n')).to.match(/channel Security was cleared/)
  })

  it('a log cleared while it is read: newer events with small record ids are delivered, replays still dropped', async () => {
    const positions = new MemoryPositionStore()
    await positions.set('eventlog:Security', 99)
    // catch-up 100 (03:12:45) and 101 (03:20:02); the queue repeats 101; then the log is cleared:
    // record 1 (04:01:19, newer than anything seen) and record 2 arrive
    const t = start({log: {Security: securityLog([100, 101])}, liveFrom: {Security: 1000}, overlap: 1,
      clearedLive: {Security: [{file: 'security-4625-ntlm-no-ip.xml', rid: 1}, {file: 'security-4625-network-ntlm.xml', rid: 2}]}}, {positions})
    await t.begin()
    await until('four records', () => t.records.length >= 4)
    expect(rids(t.records)).to.deep.equal([100, 101, 1, 2])
    expect(t.src.stats.duplicates).to.equal(1) // 101 from the queue
    expect(t.ctx.lines.join('\n')).to.match(/channel Security was cleared \(record 1 is newer than record 101\)/)
    await until('position saved', () => positions.values.get('eventlog:Security') === 2)
  })

  it('junk on the worker output (cut lines, invalid UTF-8, NULs, oversized lines) is counted, not fatal; a channel that does not exist is reported', async () => {
    const t = start({log: {Security: securityLog([7, 8])}, liveFrom: {Security: 7}, junk: true}, {selectors: [...SECURITY, {source: 'Microsoft-Windows-TerminalServices-Gateway', prefix: false, ids: [312]}]})
    await t.begin()
    await until('both records', () => t.records.length >= 2)
    expect(rids(t.records)).to.deep.equal([7, 8])
    // per event: a cut line, junk text, a bad record id, invalid UTF-8 with a NUL, an oversized line
    expect(t.src.stats.errors).to.be.greaterThanOrEqual(10)
    expect(t.ctx.lines.join('\n')).to.match(/channel Microsoft-Windows-TerminalServices-Gateway\/Operational: cannot subscribe/)
  })

  it('kills and restarts a worker that stops talking (heartbeat)', async () => {
    const t = start({log: {Security: securityLog([7])}, hang: true}, {heartbeat: 0.2})
    await t.begin()
    await until('a restart', () => t.src.stats.workerStarts >= 2)
    expect(t.ctx.lines.join('\n')).to.match(/no output for 0\.6 s \(worker hung\): killed/)
  })

  it('falls back to polling wevtutil when PowerShell cannot run (Constrained Language Mode), resuming from the saved record', async () => {
    const positions = new MemoryPositionStore()
    await positions.set('eventlog:Security', 100)
    const t = start({log: {Security: securityLog([100, 101, 102])}, fatal: 'PowerShell runs in ConstrainedLanguage mode'}, {positions})
    await t.begin()
    await until('two records', () => t.records.length >= 2)
    expect(t.src.stats.mode).to.equal('wevtutil')
    expect(rids(t.records)).to.deep.equal([101, 102])
    // rendered message from RenderingInfo
    expect(t.records[0]!.text).to.match(/^An account failed to log on\./)
    expect(t.records[0]!.fields).to.deep.include({IpAddress: '2001:db8:1f70::9c3'})
    // the log grows between polls: only the new record is delivered, once
    fs.writeFileSync(t.file, JSON.stringify({log: {Security: securityLog([100, 101, 102, 103])}, fatal: 'x'}))
    await until('the new record', () => t.records.length >= 3)
    const polls = t.src.stats.polls
    await until('two more polls', () => t.src.stats.polls >= polls + 2)
    expect(rids(t.records)).to.deep.equal([101, 102, 103])
  })

  it('wevtutil mode without a saved position starts at the end of the log', async () => {
    // the gateway channel does not exist on this machine: wevtutil fails for it, the others go on
    const t = start({log: {Security: securityLog([100, 101])}}, {cfg: {mode: 'wevtutil'}, selectors: [...SECURITY, {source: 'Microsoft-Windows-TerminalServices-Gateway', prefix: false, ids: [312]}]})
    await t.begin()
    const positions = t.ctx.positions as MemoryPositionStore
    await until('the mark at the newest record', () => positions.values.get('eventlog:Security') === 101)
    fs.writeFileSync(t.file, JSON.stringify({log: {Security: securityLog([100, 101, 102])}}))
    await until('the new record', () => t.records.length >= 1)
    expect(rids(t.records)).to.deep.equal([102])
    expect(t.ctx.lines.join('\n')).to.match(/wevtutil qe Microsoft-Windows-TerminalServices-Gateway\/Operational failed \(status \d+\): Failed to read events\. The specified channel could not be found\./)
  })

  it('is not started off Windows, with a clear reason', async () => {
    const src = createEventLogSource(localCfg(), context(undefined, {platform: 'linux'}), {selectors: SECURITY})
    await src.start(() => {})
    expect(src.stats.state).to.equal('failed')
    expect(src.stats.lastError).to.match(/only on Windows/)
  })
})

describe('event-log source: configuration', () => {
  it('reads eventlog: / eventlog:local with options, and channel = … in events selectors', () => {
    const dir = tempTree({
      'sources/w.lua': `SOURCE{ "ev", "eventlog:", poll = 5, max_age = 600, mode = 'wevtutil' }\nSOURCE{ "ev2", "eventlog:local" }\nSOURCE{ "trap", "eventlog:udp://127.0.0.1:1162" }\n`,
      'filters/f.lua': `FILTER{ "f", enabled = true, source = "ev", events = {{'MyApp', {7, 8}, channel = 'MyApp/Admin'}}, failregex = "from ([%d.]+)" }\n`,
    })
    const cfg = loadLuaConfig(dir, {platform: 'windows'})
    const ev = cfg.sources.find((s) => s.name === 'ev')
    expect(ev).to.deep.include({kind: 'eventlog', protocol: 'local', mode: 'wevtutil', poll: 5, maxAge: 600, render: true})
    expect(cfg.sources.find((s) => s.name === 'ev2')).to.deep.include({protocol: 'local', mode: 'auto', poll: 2, maxAge: 86400})
    expect(cfg.sources.find((s) => s.name === 'trap')).to.deep.include({protocol: 'udp', host: '127.0.0.1', port: 1162})
    expect(cfg.filters[0]!.events).to.deep.equal([{source: 'MyApp', prefix: false, ids: [7, 8], channel: 'MyApp/Admin'}])
  })

  it('names the file, line and field of a bad option', () => {
    const dir = tempTree({'sources/w.lua': `\nSOURCE{ "ev", "eventlog:", mode = 'fast', pol = 2 }\n`})
    expect(() => loadLuaConfig(dir, {platform: 'windows'})).to.throw(/w\.lua:2: .*mode: expected 'auto', 'powershell' or 'wevtutil'[\s\S]*pol: unknown field; did you mean 'poll'/)
    const bad = tempTree({'sources/w.lua': `SOURCE{ "ev", "eventlog:tcp://x" }\n`})
    expect(() => loadLuaConfig(bad, {platform: 'windows'})).to.throw(/w\.lua:1: .*invalid eventlog source "eventlog:tcp:\/\/x": expected eventlog:udp:\/\/HOST\[:PORT\] \(SNMP traps\), or eventlog: \/ eventlog:local/)
    const sel = tempTree({'filters/f.lua': `FILTER{ "f", source = "eventlog:", events = {{'Security', 4625, chanel = 'x'}}, failregex = "(a)" }\n`})
    expect(() => loadLuaConfig(sel, {platform: 'windows'})).to.throw(/f\.lua:1: .*events\[1\]\.chanel: unknown key/)
  })
})
