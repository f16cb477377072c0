/**
 * Hostile input for every parser of the network sources: thousands of random inputs and of
 * mutations of valid samples (bytes flipped, inserted, deleted, cut, repeated). None may throw,
 * hang or hold unbounded memory, and what comes out must stay sane.
 */
import {expect} from 'chai'
import fc from 'fast-check'
import {EslParser} from '../src/engine/sources/esl.js'
import {parseSyslog, SyslogFramer, syslogFields} from '../src/engine/sources/syslog-parse.js'
import {eventRecord, TrapDecoder, trapRecords} from '../src/engine/sources/trap.js'

const RUNS = 3000

/** One mutation of a byte string. */
type Mutation = {op: 'flip' | 'insert' | 'delete' | 'cut' | 'repeat'; at: number; len: number; bytes: Uint8Array}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('flip', 'insert', 'delete', 'cut', 'repeat'),
  at: fc.nat(),
  len: fc.nat({max: 64}),
  bytes: fc.uint8Array({minLength: 1, maxLength: 16}),
})

function mutate(sample: Uint8Array, ms: Mutation[]): Buffer {
  let b = Buffer.from(sample)
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1)
    switch (m.op) {
      case 'flip':
        if (b.length > 0) b[at % b.length] = m.bytes[0]!
        break
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)])
        break
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)])
        break
      case 'cut':
        b = b.subarray(0, at)
        break
      case 'repeat':
        b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at)])
        break
    }
  }
  return b
}

/** Random bytes, or a sample mutated a few times. */
function hostile(samples: Uint8Array[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.uint8Array({maxLength: 600}).map((u) => Buffer.from(u)),
    fc.tuple(fc.constantFrom(...samples), fc.array(mutation, {minLength: 1, maxLength: 6})).map(([s, ms]) => mutate(s, ms)),
  )
}

const SYSLOG_SAMPLES = [
  '<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su 77 ID47 [exampleSDID@32473 iut="3" eventSource="App\\"lication" eventID="1011"][meta seq="2"] \uFEFFBOM and text',
  '<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It\'s time to make the do-nuts.',
  '<38>May 14 10:11:12 gw sshd[4242]: Failed password for root from 203.0.113.5 port 22 ssh2',
  '<86>2024-05-14T10:11:12.123456+02:00 web01 sshd[1]: Invalid user admin from 198.51.100.7',
  '<13>Jan  5 01:02:03 cron[7]: run',
].map((s) => Buffer.from(s))

describe('fuzz: syslog', () => {
  it(`parseSyslog never throws and returns sane messages (${RUNS} inputs)`, () => {
    fc.assert(
      fc.property(hostile(SYSLOG_SAMPLES), fc.boolean(), (bytes, asLatin1) => {
        const text = asLatin1 ? bytes.toString('latin1') : new TextDecoder().decode(bytes)
        const m = parseSyslog(text)
        expect(m.message).to.be.a('string')
        expect(m.message.length).to.be.at.most(text.length)
        if (m.facility !== undefined) expect(m.facility).to.be.within(0, 23)
        if (m.severity !== undefined) expect(m.severity).to.be.within(0, 7)
        if (m.time !== undefined) expect(Number.isFinite(m.time)).to.equal(true)
        for (const v of Object.values(syslogFields(m))) expect(['string', 'number']).to.include(typeof v)
      }),
      {numRuns: RUNS},
    )
  })

  it(`the TCP framer never throws, never delivers more than maxMessage, and buffers boundedly (${RUNS} streams)`, () => {
    const streams = SYSLOG_SAMPLES.map((s) => Buffer.concat([Buffer.from(`${s.length} `), s, s, Buffer.from('\n'), Buffer.from(`${s.length} `), s]))
    const max = 200
    fc.assert(
      fc.property(fc.array(hostile(streams), {minLength: 1, maxLength: 5}), (chunks) => {
        let total = 0
        const f = new SyslogFramer(max, (m) => {
          expect(m.length).to.be.at.most(max)
          total += m.length
        })
        let input = 0
        for (const c of chunks) {
          f.push(c)
          input += c.length
          expect(f.buffered).to.be.at.most(max + 16)
        }
        f.flush()
        expect(total).to.be.at.most(input)
      }),
      {numRuns: RUNS},
    )
  })
})

describe('fuzz: ESL framing', () => {
  const frame = (body: string): string => `Content-Type: log/data\nContent-Length: ${Buffer.byteLength(body)}\nLog-Level: 4\nLog-File: x.c\n\n${body}`
  const samples = [
    Buffer.from('Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\n' + frame('line one\n') + frame('ünï\n')),
    Buffer.from('Content-Type: text/disconnect-notice\nContent-Length: 9\n\nGoodbye.\n'),
  ]
  it(`the parser never throws; bodies match Content-Length; memory stays bounded (${RUNS} streams)`, () => {
    fc.assert(
      fc.property(fc.array(hostile(samples), {minLength: 1, maxLength: 5}), (chunks) => {
        const p = new EslParser((f) => {
          const cl = f.headers['Content-Length']
          if (f.body !== undefined) expect(f.body.length).to.equal(Number(cl))
        })
        for (const c of chunks) {
          p.push(c)
          expect(p.buffered).to.be.at.most(4 * 1024 * 1024 + 64 * 1024 + 600 * 5)
        }
      }),
      {numRuns: RUNS},
    )
  })
})

describe('fuzz: SNMP trap decoding (net-snmp) and record building', () => {
  // Recorded from Debian's snmptrap/snmpinform: a v1 evntwin event trap, a v2c trap, a v2c inform.
  const samples = [
    '30819a02010004067075626c6963a4818c06132b060104018237010d0108536563757269747940047f00000102010602048000021143030e98c130613030060e2b060104018237010d01ce0f0100041e4c6f676f6e206661696c7572652066726f6d203230332e302e3131332e373014060e2b060104018237010d01ce0f0400040231363017060e2b060104018237010d01ce0f0600040561646d696e',
    '30818002010104067075626c6963a7730204110a9f090201000201003065300f06082b0601020101030043030e99173019060a2b060106030101040100060b2b06010401bf08020300113025060b2b06010401bf080203020104166c6f67696e206661696c656420666f722061646d696e3010060b2b06010401bf0802030202020107',
    '306002010104067075626c6963a65302046b5e483f0201000201003045300f06082b0601020101030043030e99713019060a2b060106030101040100060b2b06010401bf08020300013017060b2b06010401bf08020302010408696e666f726d6564',
  ].map((h) => Buffer.from(h, 'hex'))

  it('decodes the unmutated samples', () => {
    const d = new TrapDecoder()
    const [v1, v2, inform] = samples.map((s) => d.feed(s))
    expect(v1).to.have.property('trap')
    expect(eventRecord((v1 as {trap: never}).trap, '127.0.0.1')).to.deep.include({text: 'Logon failure from 203.0.113.7'})
    expect(trapRecords((v2 as {trap: never}).trap, '127.0.0.1').map((r) => r.text)).to.deep.equal(['login failed for admin'])
    expect(inform).to.have.property('trap')
  })

  it(`never throws on random and mutated packets, with and without a community list (${RUNS} packets)`, () => {
    const any = new TrapDecoder()
    const strict = new TrapDecoder(['public'])
    let decoded = 0
    fc.assert(
      fc.property(hostile(samples), (packet) => {
        for (const d of [any, strict]) {
          const r = d.feed(packet, {address: '192.0.2.1', port: 162})
          if ('error' in r) {
            expect(r.error).to.be.a('string')
            continue
          }
          decoded++
          for (const rec of trapRecords(r.trap, '192.0.2.1')) {
            expect(rec.text).to.be.a('string')
            expect(rec.fields['trap.enterprise']).to.be.a('string')
          }
          const e = eventRecord(r.trap, '192.0.2.1')
          if (e !== undefined) expect(e.fields['event.id']).to.be.within(0, 65535)
        }
      }),
      {numRuns: RUNS},
    )
    // The mutations keep a fair share of packets decodable, so the record builders are exercised too.
    expect(decoded).to.be.greaterThan(50)
  })
})
