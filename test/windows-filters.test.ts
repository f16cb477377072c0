import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import type {EventLogLocalSource, EventSelector, FilterConfig} from '../src/engine/config/model.js'
import {buildFilter} from '../src/engine/filters/build.js'
import type {Filter} from '../src/engine/filters/filter.js'
import {SinkLogger} from '../src/engine/log/logger.js'
import {channelQueries, createEventLogSource, matchesEventSelectors, parseSystemTime} from '../src/engine/sources/eventlog.js'
import {MemoryPositionStore} from '../src/engine/sources/source.js'
import {RECORD_FIELDS, type LogRecord} from '../src/engine/types.js'
import {repoRoot, tempTree} from './support/files.js'
import {waitFor as until} from './support/wait.js'

const STANDIN = path.join(repoRoot, 'test', 'support', 'eventlog-standin.mjs')
const FIXTURES = path.join(repoRoot, 'test', 'support', 'eventlog-standin.fixtures')

/** A forged "Network Information" tail inside a user name (the client chooses the name). */
const FORGED = 'x\n\tAccount Domain:\t\t\n\tSource Network Address:\t198.51.100.9\n\tSource Port:\t\t0\n\nDetailed Authentication Information:'

interface Entry {
  file: string
  rid?: number
  user?: string
  ip?: string
  /** What the packaged filters must report: filter, host, user; null: no failure. */
  expect: [string, string, string | undefined] | null
}

const ENTRIES: Entry[] = [
  {file: 'security-4625-network-ntlm.xml', expect: ['windows-logon', '203.0.113.45', 'administrator']},
  {file: 'security-4625-network-ntlm.rendered.xml', expect: ['windows-logon', '203.0.113.45', 'admin']},
  {file: 'security-4625-remoteinteractive-ipv6.xml', expect: ['windows-logon', '2001:db8:1f70::9c3', 'backup']},
  {file: 'security-4625-ntlm-no-ip.xml', expect: null},
  {file: 'security-4625-network-ntlm.xml', rid: 1893430, ip: '-', expect: null},
  {file: 'security-4625-network-ntlm.xml', rid: 1893431, ip: '-', user: FORGED, expect: null},
  {file: 'security-4625-network-ntlm.xml', rid: 1893432, ip: '203.0.113.50', user: FORGED, expect: ['windows-logon', '203.0.113.50', undefined]},
  {file: 'security-4771-kerberos-preauth.xml', expect: ['windows-kerberos', '203.0.113.61', 'jdoe']},
  {file: 'security-4776-ntlm-credential-validation.xml', expect: null},
  {file: 'rdpcorets-140-failed-auth.xml', expect: ['windows-rdp', '203.0.113.45', undefined]},
  {file: 'rdpcorets-131-connection-accepted.xml', expect: null},
  {file: 'tsgateway-312-failed-auth.xml', expect: ['windows-rdgateway', '203.0.113.90', 'CORP\\test']},
  {file: 'mssql-18456-failed-login.xml', expect: ['windows-mssql', '203.0.113.23', 'sa']},
  {file: 'mssql-18456-named-instance.rendered.xml', expect: ['windows-mssql', '2001:db8:40::17', 'NT AUTHORITY\\ANONYMOUS LOGON']},
  {file: 'openssh-4-failed-password.xml', expect: ['windows-openssh', '203.0.113.150', 'oracle']},
  {file: 'smbserver-551-auth-failure.xml', expect: ['windows-smb', '203.0.113.12', 'admin']},
]

const UNSELECTED = /4776|131/

function channelOf(file: string): string {
  return /<Channel>([^<]*)<\/Channel>/.exec(fs.readFileSync(path.join(FIXTURES, file), 'utf8'))![1]!
}
function ridOf(e: Entry): number {
  return e.rid ?? Number(/<EventRecordID>(\d+)<\/EventRecordID>/.exec(fs.readFileSync(path.join(FIXTURES, e.file), 'utf8'))![1])
}

describe('Windows filters on the recorded events, through the event-log source', () => {
  const config = loadLuaConfig(path.join(repoRoot, 'config'), {platform: 'windows'})
  const eventFilters: FilterConfig[] = config.filters.filter((f) => f.enabled && f.sources.includes('windows-events'))
  const selectors: EventSelector[] = eventFilters.flatMap((f) => f.events ?? [])
  const built = new Map<string, Filter>(eventFilters.map((f) => [f.name, buildFilter(f)]))

  it('the packaged Windows filters select the channels the design names (docs: windows.md §1)', () => {
    expect(eventFilters.map((f) => f.name).sort()).to.deep.equal(['windows-kerberos', 'windows-logon', 'windows-mssql', 'windows-openssh', 'windows-rdgateway', 'windows-rdp', 'windows-smb'])
    expect(channelQueries(selectors).map((q) => q.channel).sort()).to.deep.equal([
      'Application', 'Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational', 'Microsoft-Windows-SMBServer/Security',
      'Microsoft-Windows-TerminalServices-Gateway/Operational', 'OpenSSH/Operational', 'Security',
    ])
    // off Windows they stay disabled
    const linux = loadLuaConfig(path.join(repoRoot, 'config'), {platform: 'linux'})
    expect(linux.filters.filter((f) => f.name.startsWith('windows-') && f.enabled)).to.deep.equal([])
  })

  /** Runs the scenario through the source (worker or wevtutil mode) and the filters the daemon would route each record to. */
  async function run(mode: 'auto' | 'wevtutil'): Promise<{records: LogRecord[]; found: Map<number, [string, string, string | undefined][]>}> {
    const log: Record<string, unknown[]> = {}
    for (const e of ENTRIES) (log[channelOf(e.file)] ??= []).push({file: e.file, rid: e.rid, user: e.user, ip: e.ip})
    const liveFrom = Object.fromEntries(Object.keys(log).map((ch) => [ch, 0]))
    const dir = tempTree({'scenario.json': JSON.stringify({log, liveFrom})})
    const file = path.join(dir, 'scenario.json')
    const cfg: EventLogLocalSource = {
      name: 'windows-events', origin: {file: 'x', line: 1}, spec: 'eventlog:', implicit: false, kind: 'eventlog', protocol: 'local', host: '', port: 0,
      mode, poll: 1, maxAge: 0, render: true,
    }
    const src = createEventLogSource(cfg, {log: new SinkLogger('warning', []), positions: new MemoryPositionStore(), platform: 'win32', fromStart: true}, {
      selectors, worker: [process.execPath, STANDIN, file], wevtutil: [process.execPath, STANDIN, '--wevtutil', file], heartbeat: 0, saveDelay: 10,
    })
    const records: LogRecord[] = []
    try {
      await src.start((r) => records.push(r))
      // 4776 and RDP 131 are not selected by any filter: the queries leave them out
      await until('every selected record', () => records.length >= ENTRIES.filter((e) => !UNSELECTED.test(e.file)).length).catch((e: Error) => {
        throw new Error(`${e.message}: got ${records.map((r) => `${r.fields?.[RECORD_FIELDS.eventChannel]}#${r.fields?.[RECORD_FIELDS.eventRecord]}`).join(', ')}`)
      })
    } finally {
      await src.stop()
    }
    const found = new Map<number, [string, string, string | undefined][]>()
    for (const r of records) {
      const hits: [string, string, string | undefined][] = []
      for (const f of eventFilters) {
        if (!matchesEventSelectors(f.events ?? [], r.fields)) continue
        for (const m of built.get(f.name)!.processLine(r.text, true).matches) {
          if (m.id !== undefined && !m.nofail && !m.pending) hits.push([f.name, m.id, m.data.user as string | undefined])
        }
      }
      found.set(Number(r.fields![RECORD_FIELDS.eventRecord]), hits)
    }
    return {records, found}
  }

  for (const mode of ['auto', 'wevtutil'] as const) {
    it(`${mode === 'auto' ? 'worker' : 'wevtutil fallback'}: every recorded event gives exactly the expected failure, on its real multi-line message`, async () => {
      const {records, found} = await run(mode)
      expect(records.some((r) => r.text.includes('\n\tSource Network Address:\t'))).to.equal(true)
      for (const e of ENTRIES) {
        const hits = found.get(ridOf(e))
        if (UNSELECTED.test(e.file)) {
          expect(hits, e.file).to.equal(undefined)
          continue
        }
        expect(hits, `${e.file} (record ${ridOf(e)}) was not delivered`).to.not.equal(undefined)
        if (e.expect === null) expect(hits, e.file).to.deep.equal([])
        else {
          expect(hits!.length, `${e.file}: ${JSON.stringify(hits)}`).to.equal(1)
          const [fname, host, user] = hits![0]!
          expect(fname).to.equal(e.expect[0])
          expect(host, e.file).to.equal(e.expect[1])
          if (e.expect[2] !== undefined) expect(user, e.file).to.equal(e.expect[2])
        }
      }
      // the record time is the event's own time
      const first = records.find((r) => r.fields![RECORD_FIELDS.eventRecord] === 1893421)!
      expect(first.time).to.equal(parseSystemTime('2024-05-14T03:12:45.8123456Z'))
    })
  }
})

describe('Windows filters on the recorded text logs (IIS, IIS FTP, Exchange, OpenSSH LOCAL0)', () => {
  const config = loadLuaConfig(path.join(repoRoot, 'config'), {platform: 'windows'})

  /** Every failure the enabled filters of `source` find in a fixture log, fed line by line as the file source would. */
  function failures(source: string, fixture: string): string[] {
    const out: string[] = []
    const filters = config.filters.filter((f) => f.enabled && f.sources.includes(source)).map((f) => [f.name, buildFilter(f)] as const)
    expect(filters.length, `filters reading ${source}`).to.be.greaterThan(0)
    for (const line of fs.readFileSync(path.join(FIXTURES, fixture), 'utf8').split(/\r?\n/)) {
      if (line === '' || line.startsWith('#')) continue
      for (const [name, f] of filters) {
        for (const m of f.processLine(line).matches) if (m.id !== undefined && !m.nofail && !m.pending) out.push(`${name} ${m.id}`)
      }
    }
    return out
  }

  it('IIS W3C: OWA reason=2, RD Web POST 200, 401.1 — not the 401.2 challenge', () => {
    expect(failures('iis-w3svc1', 'iis-w3svc1-u_ex240514.log')).to.deep.equal(['windows-owa 203.0.113.88', 'windows-rdweb 203.0.113.89', 'windows-iis-auth 203.0.113.90'])
  })

  it('IIS FTP: the PASS answered 530, not the USER line or the successful login', () => {
    expect(failures('iis-ftpsvc', 'iis-ftpsvc2-u_ex240514.log')).to.deep.equal(['windows-iis-ftp 203.0.113.71'])
  })

  it('Exchange SMTP receive log: the LogonDenied line only', () => {
    expect(failures('exchange-smtp-receive', 'exchange-smtpreceive-RECV2024051400-1.LOG')).to.deep.equal(['windows-exchange-smtp 203.0.113.99'])
  })

  it('OpenSSH for Windows sshd.log (SyslogFacility LOCAL0)', () => {
    expect(failures('auth', 'openssh-sshd-local0.log')).to.deep.equal([
      'windows-openssh-file 203.0.113.150', 'windows-openssh-file 203.0.113.150', 'windows-openssh-file 203.0.113.150', 'windows-openssh-file 2001:db8:9::4',
    ])
  })
})
