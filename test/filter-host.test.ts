import {expect} from 'chai'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import {FilterHost} from '../src/engine/filters/host.js'
import {FilterService} from '../src/engine/filters/service.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {RECORD_FIELDS, type Failure, type LogRecord} from '../src/engine/types.js'
import {tempTree} from './support/files.js'

const CONFIG = {
  'spylog.lua': '',
  'sources/s.lua': `
SOURCE{ "auth", "file:/var/log/auth.log" }
SOURCE{ "traps", "trap:udp://127.0.0.1:1162" }
SOURCE{ "events", "eventlog:udp://127.0.0.1:1163" }
`,
  'filters/f.lua': `
FILTER{ "ssh"; enabled = true; source = "auth"; engine = "fail2ban";
  failregex = [[Failed password for (?:invalid user )?<F-USER>\\S+</F-USER> from <HOST>]] }
FILTER{ "ssh-stop"; enabled = true; source = "auth"; stop = true;
  failregex = "Invalid user %S+ from (%d+%.%d+%.%d+%.%d+)" }
FILTER{ "after-stop"; enabled = true; source = "auth";
  failregex = "user %S+ from (%d+%.%d+%.%d+%.%d+)" }
FILTER{ "trap-auth"; enabled = true; source = "traps"; trap = 42;
  failregex = "from (%d+%.%d+%.%d+%.%d+)" }
FILTER{ "rdp"; enabled = true; source = "events"; events = {{"Microsoft-Windows-Security-*", {4625}}};
  failregex = "Source Network Address:%s*(%d+%.%d+%.%d+%.%d+)" }
FILTER{ "slow"; enabled = true; source = "auth"; failregex = "%b().-.-.-.-x" }
`,
}

function rec(source: string, text: string, fields?: LogRecord['fields'], time?: number): LogRecord {
  return {source, text, received: 1700000000, fields, time}
}

describe('filter service and filter worker', () => {
  const config = loadLuaConfig(tempTree(CONFIG))
  const lines: string[] = []
  const log = new SinkLogger('debug', [memorySink(lines)])

  it('routes records to the filters of their source, with own event time, stop, trap and events selectors', () => {
    const svc = new FilterService(config, {log})
    const out: Failure[] = []
    const emit = (f: Failure): void => void out.push(f)
    svc.process(rec('auth', 'Jan  2 03:04:05 h sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2'), emit)
    expect(out.map((f) => [f.filter, f.id, f.data.user])).to.deep.equal([['ssh', '203.0.113.7', 'root']])
    // The record's own time wins over the date in the text.
    out.length = 0
    svc.process(rec('auth', 'Jan  2 03:04:05 h sshd[1]: Failed password for x from 198.51.100.1 port 22 ssh2', undefined, 1234567890), emit)
    expect(out[0]!.time).to.equal(1234567890)
    // stop = true: after ssh-stop matched, after-stop is not tried (it would match too).
    out.length = 0
    svc.process(rec('auth', 'Invalid user bob from 198.51.100.2'), emit)
    expect(out.map((f) => f.filter)).to.deep.equal(['ssh-stop'])
    out.length = 0
    svc.process(rec('auth', 'Unknown user bob from 198.51.100.3'), emit)
    expect(out.map((f) => f.filter)).to.deep.equal(['after-stop'])
    // trap = 42 selects by specific trap number.
    out.length = 0
    svc.process(rec('traps', 'login failed from 192.0.2.1', {[RECORD_FIELDS.trapSpecific]: 41}), emit)
    svc.process(rec('traps', 'login failed from 192.0.2.2', {[RECORD_FIELDS.trapSpecific]: 42}), emit)
    expect(out.map((f) => f.id)).to.deep.equal(['192.0.2.2'])
    // events: source prefix (case-insensitive) and id.
    out.length = 0
    const ev = (src: string, id: number, ip: string): LogRecord => rec('events', `An account failed to log on. Source Network Address:\t${ip}`, {[RECORD_FIELDS.eventSource]: src, [RECORD_FIELDS.eventId]: id})
    svc.process(ev('Microsoft-Windows-Security-Auditing', 4625, '192.0.2.10'), emit)
    svc.process(ev('microsoft-windows-security-auditing', 4624, '192.0.2.11'), emit)
    svc.process(ev('Other', 4625, '192.0.2.12'), emit)
    expect(out.map((f) => f.id)).to.deep.equal(['192.0.2.10'])
    expect(out[0]!.data[RECORD_FIELDS.eventId]).to.equal(4625)
    const stats = Object.fromEntries(svc.filters.map((f) => [f.name, f.stats]))
    expect(stats['trap-auth']!.lines).to.equal(1)
    expect(stats['ssh']!.failures).to.equal(2)
  })

  it('runs the filters in a worker, and stops a line that takes too long without losing the others', async () => {
    const failures: Failure[] = []
    const host = await FilterHost.start(config.filters, (f) => failures.push(f), {log, watchdogMs: 300})
    try {
      host.push(rec('auth', 'Failed password for a from 203.0.113.1 port 1 ssh2'))
      // O(n^4) on fengari's matcher: minutes for this line if nothing stopped it.
      host.push(rec('auth', '()' + 'a'.repeat(600)))
      host.push(rec('auth', 'Failed password for b from 203.0.113.2 port 1 ssh2'))
      await host.idle()
      expect(failures.map((f) => f.id)).to.deep.equal(['203.0.113.1', '203.0.113.2'])
      expect(host.stats.stopped).to.equal(1)
      expect(host.stats.restarts).to.equal(1)
      expect(lines.some((l) => l.includes('took longer than 300 ms') && l.includes('source auth'))).to.equal(true)
      // The restarted worker keeps working and reports its counters.
      host.push(rec('auth', 'Failed password for c from 203.0.113.3 port 1 ssh2'))
      await host.idle()
      expect(failures.at(-1)!.id).to.equal('203.0.113.3')
      // Counters survive the restart (the stopped line is counted by host.stats.stopped, not by the filters).
      const st = Object.fromEntries(host.filterStats().map((f) => [f.name, f.stats]))
      expect(st['ssh']!.failures).to.equal(3)
      expect(st['ssh']!.lines).to.equal(3)
      expect(st['slow']!.lines).to.equal(3)
      expect(st['trap-auth']!.lines).to.equal(0)
    } finally {
      await host.stop()
    }
  })

  it('drops records beyond its queue bound and says so once', async () => {
    const before = lines.length
    const host = await FilterHost.start(config.filters, () => {}, {log, maxQueue: 10, batch: 1})
    try {
      for (let i = 0; i < 100; i++) host.push(rec('auth', `noise ${i}`))
      expect(host.stats.dropped).to.be.greaterThan(0)
      expect(lines.slice(before).filter((l) => l.includes('dropping new records')).length).to.equal(1)
      await host.idle()
    } finally {
      await host.stop()
    }
  })

  it('reports a filter that cannot be built as an error at start', async () => {
    const bad = [{...config.filters[0]!, engine: 'pcre' as const, failregex: ['(unclosed'], fail2ban: undefined}]
    let err: Error | undefined
    await FilterHost.start(bad, () => {}, {log}).catch((e: Error) => (err = e))
    expect(err?.message).to.match(/unclosed|missing \)|unterminated/i)
  })
})
