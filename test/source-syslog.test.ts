import {expect} from 'chai'
import {spawn, spawnSync} from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import type {SyslogSource} from '../src/engine/config/model.js'
import {createSyslogSource, type SyslogReceiver} from '../src/engine/sources/syslog.js'
import {parseSyslog, SyslogFramer, syslogFields} from '../src/engine/sources/syslog-parse.js'
import type {LogRecord} from '../src/engine/types.js'
import {tempTree} from './support/files.js'
import {context} from './support/sources.js'
import {waitFor} from './support/wait.js'

function syslogCfg(protocol: 'udp' | 'tcp', port = 0, host = '127.0.0.1'): SyslogSource {
  return {kind: 'syslog', name: 'sys', origin: {file: 'test', line: 1}, spec: `syslog:${protocol}://${host}:${port}`, implicit: false, protocol, host, port}
}

const running: SyslogReceiver[] = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop()
})

async function started(protocol: 'udp' | 'tcp', log: string[] = []): Promise<{src: SyslogReceiver; records: LogRecord[]; port: number}> {
  const src = createSyslogSource(syslogCfg(protocol), context(log))
  running.push(src)
  const records: LogRecord[] = []
  await src.start((r) => records.push(r))
  expect(src.stats.state).to.equal('running')
  return {src, records, port: src.boundPort!}
}

function logger(args: string[]): void {
  const r = spawnSync('logger', args, {encoding: 'utf8', timeout: 30_000})
  if (r.status !== 0) throw new Error(`logger ${args.join(' ')} failed: ${r.stderr}`)
}

describe('syslog parsing', () => {
  it('reads an RFC 5424 message: header fields, structured data, BOM stripped, time', () => {
    const m = parseSyslog('<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su 77 ID47 [exampleSDID@32473 iut="3" eventSource="Appl\\"ication"][meta seq="1"] \uFEFF\'su root\' failed for lonvick on /dev/pts/8\n')
    expect(m.format).to.equal('rfc5424')
    expect(m.message).to.equal("'su root' failed for lonvick on /dev/pts/8")
    expect(m.time).to.equal(Date.UTC(2003, 9, 11, 22, 14, 15) / 1000 + 0.003)
    expect(syslogFields(m)).to.deep.equal({
      facility: 4,
      severity: 2,
      host: 'mymachine.example.com',
      app: 'su',
      pid: 77,
      msgid: 'ID47',
      'sd.exampleSDID@32473.iut': '3',
      'sd.exampleSDID@32473.eventSource': 'Appl"ication',
      'sd.meta.seq': '1',
    })
  })

  it('reads RFC 5424 nil fields and an offset timestamp; an invalid timestamp leaves time unset', () => {
    const m = parseSyslog('<165>1 2003-08-24T05:14:15.000003-07:00 - - - - - hello')
    expect(m.message).to.equal('hello')
    expect(m.time).to.be.closeTo(Date.UTC(2003, 7, 24, 12, 14, 15) / 1000, 1e-5)
    expect(syslogFields(m)).to.deep.equal({facility: 20, severity: 5})
    expect(parseSyslog('<13>1 2003-02-30T05:14:15Z h a - - - x').time).to.equal(undefined)
  })

  it('reads an RFC 3164 message: date (this year, local time), host, tag, pid; text is the message', () => {
    const now = new Date(2024, 4, 20, 12).getTime()
    const m = parseSyslog('<38>May 14 10:11:12 gw sshd[4242]: Failed password for root from 203.0.113.5 port 22 ssh2', now)
    expect(m.format).to.equal('rfc3164')
    expect(m.message).to.equal('Failed password for root from 203.0.113.5 port 22 ssh2')
    expect(m.time).to.equal(new Date(2024, 4, 14, 10, 11, 12).getTime() / 1000)
    expect(syslogFields(m)).to.deep.equal({facility: 4, severity: 6, host: 'gw', app: 'sshd', pid: 4242})
    // December's message read in January belongs to the previous year.
    const jan = new Date(2025, 0, 1, 0, 5).getTime()
    expect(parseSyslog('<13>Dec 31 23:59:00 h t: x', jan).time).to.equal(new Date(2024, 11, 31, 23, 59).getTime() / 1000)
    // Space-padded day, no host (local sender), and a message that is not syslog at all.
    const local = parseSyslog('<13>Jan  5 01:02:03 cron[7]: run', jan)
    expect([local.host, local.app, local.pid, local.message]).to.deep.equal([undefined, 'cron', '7', 'run'])
    expect(parseSyslog('just text\r\n')).to.deep.equal({format: 'raw', message: 'just text'})
    expect(parseSyslog('<999>x').format).to.equal('raw')
  })

  it('reads rsyslog forward format (RFC 3339 date in an RFC 3164 layout)', () => {
    const m = parseSyslog('<86>2024-05-14T10:11:12.123456+02:00 web01 sshd[1]: Invalid user admin from 198.51.100.7')
    expect(m.time).to.be.closeTo(Date.UTC(2024, 4, 14, 8, 11, 12) / 1000 + 0.123456, 1e-6)
    expect([m.host, m.app, m.message]).to.deep.equal(['web01', 'sshd', 'Invalid user admin from 198.51.100.7'])
  })

  it('frames TCP streams: octet counting and newline framing mixed, in any chunking', () => {
    const msgs = ['<13>1 - h a - - - first', '<13>second\twith tab', '<13>third']
    const stream = Buffer.from(`${Buffer.byteLength(msgs[0]!)} ${msgs[0]}${msgs[1]}\n${Buffer.byteLength(msgs[2]!)} ${msgs[2]}`)
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: string[] = []
      const f = new SyslogFramer(1024, (m) => got.push(m.toString()))
      f.push(stream.subarray(0, cut))
      f.push(stream.subarray(cut))
      f.flush()
      expect(got, `cut at ${cut}`).to.deep.equal(msgs)
    }
  })

  it('never delivers more than maxMessage at the end of a stream (a pending octet-counted frame)', () => {
    // Found by the fuzz test: a length prefix plus a partial frame, then the connection ends.
    const got: Buffer[] = []
    const f = new SyslogFramer(10, (m) => got.push(m))
    f.push(Buffer.from('10 <13>abcde'))
    f.flush()
    expect(got.map((b) => b.length)).to.deep.equal([10])
  })

  it('cuts oversized frames to maxMessage and skips the rest, with bounded buffering', () => {
    const got: [string, boolean][] = []
    const f = new SyslogFramer(10, (m, t) => got.push([m.toString(), t]))
    f.push(Buffer.from('999999 ' + 'a'.repeat(30)))
    expect(f.buffered).to.be.below(20)
    f.push(Buffer.from('b'.repeat(999999 - 30) + '5 <1>ok'))
    f.push(Buffer.from('x'.repeat(100)))
    expect(f.buffered).to.be.below(20)
    f.push(Buffer.from('yyy\n<1>fine\n'))
    expect(got).to.deep.equal([
      ['aaaaaaaaaa', true],
      ['<1>ok', false],
      ['xxxxxxxxxx', true],
      ['<1>fine', false],
    ])
  })
})

describe('syslog configuration', () => {
  it('accepts syslog:udp:// and syslog:tcp:// with the default port 514, and rejects other protocols', () => {
    const dir = tempTree({
      'spylog.lua': '',
      'sources/s.lua': 'SOURCE{"u", "syslog:udp://127.0.0.1"}\nSOURCE{"t", "syslog:tcp://0.0.0.0:5514", max_line = 8192}\n',
    })
    const cfg = loadLuaConfig(dir)
    const by = Object.fromEntries(cfg.sources.map((s) => [s.name, s]))
    expect(by.u).to.include({kind: 'syslog', protocol: 'udp', host: '127.0.0.1', port: 514})
    expect(by.t).to.include({kind: 'syslog', protocol: 'tcp', host: '0.0.0.0', port: 5514, maxMessage: 8192})
    expect(by.u).to.not.have.property('maxMessage')
    const bad = tempTree({'spylog.lua': '', 'sources/s.lua': 'SOURCE{"x", "syslog:sctp://127.0.0.1"}\n'})
    expect(() => loadLuaConfig(bad)).to.throw(/syslog:tcp:\/\/HOST\[:PORT\]/)
  })
})

describe('syslog source with real senders', () => {
  for (const fmt of ['--rfc3164', '--rfc5424'] as const) {
    it(`receives logger ${fmt} over UDP`, async () => {
      const {records, port} = await started('udp')
      logger([fmt, '-d', '-n', '127.0.0.1', '-P', String(port), '-t', 'sshd', '-p', 'auth.warning', 'Failed password for root from 203.0.113.5 port 22 ssh2'])
      const r = await waitFor('a record', () => records[0])
      expect(r.text).to.equal('Failed password for root from 203.0.113.5 port 22 ssh2')
      expect(r.fields).to.include({facility: 4, severity: 4, app: 'sshd', peer: '127.0.0.1'})
      expect(r.time).to.be.a('number')
      expect(Math.abs(r.time! - Date.now() / 1000)).to.be.below(3600)
    })

    for (const octet of [false, true]) {
      it(`receives logger ${fmt} over TCP${octet ? ' with octet counting' : ' (newline framing)'}`, async () => {
        const {src, records, port} = await started('tcp')
        const args = [fmt, '-T', '-n', '127.0.0.1', '-P', String(port), '-t', 'app', '-p', 'local3.err']
        if (octet) args.push('--octet-count')
        logger([...args, 'first message from 198.51.100.1'])
        logger([...args, 'second message ünïcode'])
        await waitFor('two records', () => records.length >= 2)
        expect(records.map((r) => r.text)).to.deep.equal(['first message from 198.51.100.1', 'second message ünïcode'])
        expect(records[1]!.fields).to.include({facility: 19, severity: 3, app: 'app'})
        expect(src.stats.records).to.equal(2)
        expect(src.stats.drops).to.equal(0)
      })
    }
  }

  for (const proto of ['tcp', 'udp'] as const) {
    it(`receives messages relayed by rsyslog (omfwd over ${proto}), and keeps the original tag and time`, async () => {
      const {records, port} = await started(proto)
      // rsyslog's own UDP input on a free loopback port.
      const probe = dgram.createSocket('udp4')
      await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()))
      const inPort = probe.address().port
      await new Promise<void>((r) => probe.close(() => r()))
      const dir = tempTree({})
      const conf = path.join(dir, 'rsyslog.conf')
      fs.writeFileSync(
        conf,
        [
          `global(workDirectory="${dir}")`,
          'module(load="imudp")',
          `input(type="imudp" address="127.0.0.1" port="${inPort}")`,
          proto === 'tcp'
            ? `action(type="omfwd" target="127.0.0.1" port="${port}" protocol="tcp" TCP_Framing="octet-counted")`
            : `action(type="omfwd" target="127.0.0.1" port="${port}" protocol="udp")`,
          '',
        ].join('\n'),
      )
      const child = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslogd.pid')], {stdio: ['ignore', 'pipe', 'pipe']})
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (out += d))
      try {
        // rsyslog needs a moment to open its input: resend (every half second) until something arrives.
        let sent = 0
        await waitFor('a relayed record', () => {
          if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${out}`)
          if (records.length === 0 && Date.now() - sent > 500 && (sent = Date.now())) logger(['--rfc3164', '-d', '-n', '127.0.0.1', '-P', String(inPort), '-t', 'sshd', 'Invalid user admin from 192.0.2.99'])
          return records.find((r) => r.text === 'Invalid user admin from 192.0.2.99')
        })
        const r = records.find((x) => x.text === 'Invalid user admin from 192.0.2.99')!
        expect(r.fields).to.include({app: 'sshd', facility: 1, severity: 5})
        expect(r.time).to.be.a('number')
      } finally {
        child.kill('SIGTERM')
        await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
      }
    })
  }
})

describe('syslog source robustness', () => {
  it('reports a port in use as retrying with the error, and starts once the port is free', async () => {
    const blocker = dgram.createSocket('udp4')
    await new Promise<void>((r) => blocker.bind(0, '127.0.0.1', () => r()))
    const port = blocker.address().port
    const log: string[] = []
    const src = createSyslogSource(syslogCfg('udp', port), context(log), {retryMs: 50})
    running.push(src)
    const records: LogRecord[] = []
    await src.start((r) => records.push(r))
    expect(src.stats.state).to.equal('retrying')
    expect(src.stats.lastError).to.match(/EADDRINUSE/)
    expect(log.join('\n')).to.match(/cannot start: .*EADDRINUSE/)
    await new Promise<void>((r) => blocker.close(() => r()))
    await waitFor('running', () => src.stats.state === 'running')
    expect(src.boundPort).to.equal(port)
    const c = dgram.createSocket('udp4')
    c.send('<13>hello again', port, '127.0.0.1', () => c.close())
    await waitFor('a record', () => records[0])
    expect(records[0]!.text).to.equal('hello again')
  })

  it('survives hostile TCP input: oversized, NUL, invalid UTF-8; warns once while dropping', async () => {
    const log: string[] = []
    const src = createSyslogSource(syslogCfg('tcp'), context(log), {maxMessage: 100})
    running.push(src)
    const records: LogRecord[] = []
    await src.start((r) => records.push(r))
    const sock = net.connect(src.boundPort!, '127.0.0.1')
    await new Promise((r) => sock.once('connect', r))
    sock.write(Buffer.concat([Buffer.from('<13>'), Buffer.alloc(5000, 0x41), Buffer.from('\n')]))
    sock.write(Buffer.concat([Buffer.from('<13>'), Buffer.alloc(5000, 0x42), Buffer.from('\n')]))
    sock.write(Buffer.from([0x3c, 0x31, 0x33, 0x3e, 0xff, 0xfe, 0x00, 0x41, 0x0a]))
    sock.write('99999999999999 <13>not a length\n')
    sock.end('<13>last')
    await waitFor('five records', () => records.length >= 5)
    expect(records[0]!.text).to.equal('A'.repeat(96))
    expect(records[2]!.text).to.equal('\uFFFD\uFFFD\u0000A')
    expect(records[3]!.text).to.equal('99999999999999 <13>not a length')
    expect(records[4]!.text).to.equal('last')
    expect(src.stats.drops).to.equal(2)
    expect(log.filter((l) => /dropping input/.test(l))).to.have.length(1)
    expect(src.stats.state).to.equal('running')
  })

  it('refuses TCP peers beyond maxConnections, counted with one warning', async () => {
    const log: string[] = []
    const src = createSyslogSource(syslogCfg('tcp'), context(log), {maxConnections: 2})
    running.push(src)
    await src.start(() => {})
    // The server takes connections from its backlog in order: the third one is over the limit.
    const socks: net.Socket[] = []
    const closed: boolean[] = []
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect(src.boundPort!, '127.0.0.1')
        s.on('error', () => {})
        s.on('close', () => (closed[i] = true))
        socks.push(s)
        await new Promise((r) => s.once('connect', r))
      }
      await waitFor('the third refused', () => src.stats.drops === 1 && closed[2])
      expect(closed[0] || closed[1]).to.equal(undefined)
      expect(log.filter((l) => /more than 2 TCP connections/.test(l))).to.have.length(1)
    } finally {
      for (const s of socks) s.destroy()
    }
  })

  it('disconnects TCP peers that stay silent for idleMs, delivering what they sent', async () => {
    const src = createSyslogSource(syslogCfg('tcp'), context(), {idleMs: 200})
    running.push(src)
    const records: LogRecord[] = []
    await src.start((r) => records.push(r))
    const s = net.connect(src.boundPort!, '127.0.0.1')
    s.on('error', () => {})
    let closed = false
    s.on('close', () => (closed = true))
    s.write('<13>unterminated')
    await waitFor('the idle peer closed', () => closed)
    expect(records.map((r) => r.text)).to.deep.equal(['unterminated'])
  })

  it('stops cleanly: the port is released', async () => {
    const {src, port} = await started('udp')
    await src.stop()
    expect(src.stats.state).to.equal('stopped')
    const again = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject)
      again.bind(port, '127.0.0.1', () => resolve())
    })
    again.close()
  })
})
