import {expect} from 'chai'
import {execFile} from 'node:child_process'
import dgram from 'node:dgram'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import type {EventLogSource, TrapSource} from '../src/engine/config/model.js'
import {createTrapSource, eventSourceOfOid, type TrapReceiver} from '../src/engine/sources/trap.js'
import type {LogRecord} from '../src/engine/types.js'
import {tempTree} from './support/files.js'
import {context} from './support/sources.js'
import {waitFor} from './support/wait.js'

const running: TrapReceiver[] = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop()
})

async function start(kind: 'trap' | 'eventlog', community?: string[], log: string[] = []): Promise<{src: TrapReceiver; records: LogRecord[]; port: number}> {
  const base = {name: kind, origin: {file: 't', line: 1}, spec: `${kind}:udp://127.0.0.1:0`, implicit: false, protocol: 'udp' as const, host: '127.0.0.1', port: 0}
  const cfg: TrapSource | EventLogSource = kind === 'trap' ? {...base, kind, ...(community ? {community} : {})} : {...base, kind}
  const src = createTrapSource(cfg, context(log))
  running.push(src)
  const records: LogRecord[] = []
  await src.start((r) => records.push(r))
  expect(src.stats.state).to.equal('running')
  return {src, records, port: src.boundPort!}
}

/** Runs net-snmp's snmptrap (no MIBs loaded: numeric OIDs only). */
function snmptrap(args: string[], tool = 'snmptrap'): Promise<void> {
  // Asynchronous: snmpinform waits for our answer, which needs the event loop.
  return new Promise((resolve, reject) => {
    execFile(tool, ['-M', '/dev/null', '-m', '', ...args], {encoding: 'utf8', timeout: 60_000}, (err, _out, stderr) => {
      if (err) reject(new Error(`${tool} ${args.join(' ')} failed: ${err.message} ${stderr}`))
      else resolve()
    })
  })
}

/** `1.3.6.1.4.1.311.1.13.1.<len>.<codes>` for an event source name. */
function eventOid(name: string): string {
  return `1.3.6.1.4.1.311.1.13.1.${name.length}.${[...name].map((c) => c.charCodeAt(0)).join('.')}`
}

describe('trap source (snmptrap)', () => {
  it('receives a v1 trap: string bindings become records with enterprise, generic and specific', async () => {
    const {src, records, port} = await start('trap')
    await snmptrap(['-v', '1', '-c', 'public', `127.0.0.1:${port}`, '1.3.6.1.4.1.8072.2.3', '127.0.0.1', '6', '17', '', '1.3.6.1.4.1.8072.2.3.2.1', 's', 'auth failure from 203.0.113.9', '1.3.6.1.4.1.8072.2.3.2.2', 'i', '42'])
    const r = await waitFor('a record', () => records[0])
    expect(r.text).to.equal('auth failure from 203.0.113.9')
    expect(r.fields).to.include({'trap.enterprise': '1.3.6.1.4.1.8072.2.3', 'trap.generic': 6, 'trap.specific': 17, 'trap.oid': '1.3.6.1.4.1.8072.2.3.2.1', peer: '127.0.0.1', 'trap.version': 'v1'})
    // The integer binding is not text a filter could match: one record only.
    expect(records).to.have.length(1)
    expect(src.stats.records).to.equal(1)
  })

  it('receives a v2c trap, mapped to v1 terms (RFC 3584): enterprise-specific and generic', async () => {
    const {records, port} = await start('trap')
    await snmptrap(['-v', '2c', '-c', 'public', `127.0.0.1:${port}`, '', '1.3.6.1.4.1.8072.2.3.0.17', '1.3.6.1.4.1.8072.2.3.2.1', 's', 'login failed for admin'])
    await snmptrap(['-v', '2c', '-c', 'public', `127.0.0.1:${port}`, '', '1.3.6.1.6.3.1.1.5.3', '1.3.6.1.2.1.2.2.1.1.2', 's', 'eth1 down'])
    await waitFor('two records', () => records.length >= 2)
    expect(records[0]!.text).to.equal('login failed for admin')
    expect(records[0]!.fields).to.include({'trap.enterprise': '1.3.6.1.4.1.8072.2.3', 'trap.generic': 6, 'trap.specific': 17, 'trap.version': 'v2c'})
    expect(records[1]!.text).to.equal('eth1 down')
    expect(records[1]!.fields).to.include({'trap.generic': 2, 'trap.specific': 0})
  })

  it('answers v2c informs (snmpinform waits for the response)', async () => {
    const {records, port} = await start('trap')
    await snmptrap(['-v', '2c', '-c', 'public', '-r', '5', '-t', '2', `127.0.0.1:${port}`, '', '1.3.6.1.4.1.8072.2.3.0.1', '1.3.6.1.4.1.8072.2.3.2.1', 's', 'informed'], 'snmpinform')
    await waitFor('the record', () => records.find((r) => r.text === 'informed'))
  })

  it('with `community` configured, rejects traps of other communities: counted, one warning', async () => {
    const log: string[] = []
    const {src, records, port} = await start('trap', ['s3cret'], log)
    for (const c of ['public', 'private']) await snmptrap(['-v', '2c', '-c', c, `127.0.0.1:${port}`, '', '1.3.6.1.4.1.8072.2.3.0.1', '1.3.6.1.4.1.8072.2.3.2.1', 's', `from ${c}`])
    await snmptrap(['-v', '1', '-c', 's3cret', `127.0.0.1:${port}`, '1.3.6.1.4.1.8072.2.3', '127.0.0.1', '6', '1', '', '1.3.6.1.4.1.8072.2.3.2.1', 's', 'from s3cret'])
    await waitFor('the accepted trap', () => records[0])
    await waitFor('both rejections counted', () => src.stats.drops === 2)
    expect(records.map((r) => r.text)).to.deep.equal(['from s3cret'])
    expect(log.filter((l) => /dropping input: trap rejected.*community public/.test(l))).to.have.length(1)
    expect(log.filter((l) => /dropping input/.test(l))).to.have.length(1)
  })

  it('accepts unauthenticated v3 traps only when no community is configured', async () => {
    const v3 = (port: number, text: string): Promise<void> =>
      snmptrap(['-v', '3', '-u', 'spy', '-l', 'noAuthNoPriv', '-e', '0x8000000001020304', `127.0.0.1:${port}`, '', '1.3.6.1.4.1.8072.2.3.0.1', '1.3.6.1.4.1.8072.2.3.2.1', 's', text])
    const open = await start('trap')
    await v3(open.port, 'v3 welcome')
    const r = await waitFor('a record', () => open.records[0])
    expect(r.text).to.equal('v3 welcome')
    expect(r.fields).to.include({'trap.version': 'v3', 'trap.specific': 1})
    const closed = await start('trap', ['s3cret'])
    await v3(closed.port, 'v3 refused')
    await waitFor('the rejection counted', () => closed.src.stats.drops === 1)
    expect(closed.records).to.have.length(0)
  })

  it('counts malformed packets and keeps running', async () => {
    const {src, records, port} = await start('trap')
    const c = dgram.createSocket('udp4')
    for (const p of [Buffer.from('hello'), Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02]), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), Buffer.alloc(0)]) {
      await new Promise((r) => c.send(p, port, '127.0.0.1', r))
    }
    c.close()
    await waitFor('drops counted', () => src.stats.drops >= 3)
    await snmptrap(['-v', '2c', '-c', 'public', `127.0.0.1:${port}`, '', '1.3.6.1.4.1.8072.2.3.0.1', '1.3.6.1.4.1.8072.2.3.2.1', 's', 'still alive'])
    await waitFor('a record', () => records.find((r) => r.text === 'still alive'))
    expect(src.stats.state).to.equal('running')
  })
})

describe('eventlog:udp:// source (evntwin traps)', () => {
  it('decodes the event source from the enterprise OID and the event id from the specific number', async () => {
    const {records, port} = await start('eventlog')
    const ent = eventOid('Security')
    // evntwin sends the specific number signed: 0x80000211 = severity bits 2, event id 529.
    await snmptrap([
      '-v', '1', '-c', 'public', `127.0.0.1:${port}`, ent, '127.0.0.1', '6', String(0x80000211 - 2 ** 32), '',
      '1.3.6.1.4.1.311.1.13.1.9999.1.0', 's', 'Logon failure: unknown user name or bad password. Source Network Address: 203.0.113.7',
      '1.3.6.1.4.1.311.1.13.1.9999.2.0', 's', 'NT AUTHORITY\\SYSTEM',
      '1.3.6.1.4.1.311.1.13.1.9999.3.0', 's', 'DC01',
      '1.3.6.1.4.1.311.1.13.1.9999.4.0', 's', '16',
      '1.3.6.1.4.1.311.1.13.1.9999.6.0', 's', 'administrator',
      '1.3.6.1.4.1.311.1.13.1.9999.7.0', 's', '203.0.113.7',
    ])
    const r = await waitFor('a record', () => records[0])
    expect(r.text).to.equal('Logon failure: unknown user name or bad password. Source Network Address: 203.0.113.7')
    expect(r.fields).to.include({
      'event.source': 'Security',
      'event.id': 529,
      'event.severity': 'Warning',
      'event.type': 'Failure Audit',
      'event.user': 'NT AUTHORITY\\SYSTEM',
      'event.computer': 'DC01',
      'event.var1': 'administrator',
      'event.var2': '203.0.113.7',
      'trap.enterprise': ent,
    })
    expect(records).to.have.length(1)
  })

  it('decodes non-UTF-8 event text (ANSI code page) without loss of the ASCII parts, and ignores non-event traps', async () => {
    const {src, records, port} = await start('eventlog')
    await snmptrap(['-v', '1', '-c', 'public', `127.0.0.1:${port}`, '1.3.6.1.4.1.8072.2.3', '127.0.0.1', '6', '1', '', '1.3.6.1.4.1.8072.2.3.2.1', 's', 'not an event'])
    // "Café 192.0.2.1" in windows-1252 (é = 0xE9), as hex bytes.
    await snmptrap(['-v', '1', '-c', 'public', `127.0.0.1:${port}`, eventOid('FusionPBX'), '127.0.0.1', '6', '3', '', '1.3.6.1.4.1.311.1.13.1.9999.1.0', 'x', '436166E9203139322E302E322E31'])
    const r = await waitFor('a record', () => records[0])
    expect(r.text).to.equal('Café 192.0.2.1')
    expect(r.fields).to.include({'event.source': 'FusionPBX', 'event.id': 3})
    expect(src.ignored).to.equal(1)
    expect(records).to.have.length(1)
  })

  it('reads source names out of enterprise OIDs, refusing malformed ones', () => {
    expect(eventSourceOfOid(eventOid('Security'))).to.equal('Security')
    expect(eventSourceOfOid(eventOid('Security') + '.5.6')).to.equal('Security')
    expect(eventSourceOfOid('1.3.6.1.4.1.311.1.13.1.9.83.101')).to.equal(undefined)
    expect(eventSourceOfOid('1.3.6.1.4.1.311.1.13.1.2.0.300')).to.equal(undefined)
    expect(eventSourceOfOid('1.3.6.1.4.1.8072.2.3')).to.equal(undefined)
  })
})

describe('trap configuration', () => {
  it('reads `community` (string or list) for trap sources; eventlog sources take none', () => {
    const dir = tempTree({
      'spylog.lua': '',
      'sources/s.lua': 'SOURCE{"a", "trap:udp://127.0.0.1:1162", community = "s3cret"}\nSOURCE{"b", "trap:udp://0.0.0.0", community = {"x", "y"}}\nSOURCE{"c", "trap:udp://127.0.0.1"}\n',
    })
    const by = Object.fromEntries(loadLuaConfig(dir).sources.map((s) => [s.name, s]))
    expect(by.a).to.deep.include({kind: 'trap', port: 1162, community: ['s3cret']})
    expect(by.b).to.deep.include({port: 162, community: ['x', 'y']})
    expect(by.c).to.not.have.property('community')
    const bad = tempTree({'spylog.lua': '', 'sources/s.lua': 'SOURCE{"e", "eventlog:udp://127.0.0.1", community = "x"}\n'})
    expect(() => loadLuaConfig(bad)).to.throw(/community/)
  })
})
