import {expect} from 'chai'
import dgram from 'node:dgram'
import net from 'node:net'
import type {NetSource} from '../src/engine/config/model.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import {Backoff, DropCounter} from '../src/engine/sources/backoff.js'
import {createNetSource, type NetLineSource} from '../src/engine/sources/net.js'
import {newStats} from '../src/engine/sources/source.js'
import type {LogRecord} from '../src/engine/types.js'
import {context} from './support/sources.js'
import {waitFor} from './support/wait.js'

function netCfg(protocol: 'tcp' | 'udp', port: number, extra: Partial<NetSource> = {}): NetSource {
  return {
    kind: 'net', name: 'raw', origin: {file: 't', line: 1}, spec: `net:${protocol}://127.0.0.1:${port}`, implicit: false,
    protocol, host: '127.0.0.1', port, eol: {text: '\r\n', pattern: false}, reconnect: 0.05, maxLine: 4096, ...extra,
  }
}

const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

/** A log server the source connects to; records the connections it accepted. */
async function server(port = 0): Promise<{srv: net.Server; conns: net.Socket[]; port: number}> {
  const conns: net.Socket[] = []
  const srv = net.createServer((s) => conns.push(s))
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen(port, '127.0.0.1', () => resolve())
  })
  cleanup.push(() => new Promise<void>((r) => {
    for (const c of conns) c.destroy()
    srv.close(() => r())
  }))
  return {srv, conns, port: (srv.address() as net.AddressInfo).port}
}

async function startSource(cfg: NetSource, log: string[] = []): Promise<{src: NetLineSource; records: LogRecord[]}> {
  const src = createNetSource(cfg, context(log), {retryMs: 50})
  cleanup.push(() => src.stop())
  const records: LogRecord[] = []
  await src.start((r) => records.push(r))
  return {src, records}
}

describe('net:tcp:// source (client, as lua-spylog)', () => {
  it('connects, cuts lines by eol across chunks, and reconnects after the server closes the connection', async () => {
    const {conns, port} = await server()
    const log: string[] = []
    const {src, records} = await startSource(netCfg('tcp', port), log)
    expect(src.stats.state).to.equal('running')
    const first = await waitFor('a connection', () => conns[0])
    first.write('Failed login from 203.')
    first.write('0.113.5\r\nsecond line\r')
    first.write('\nthird, unterminated')
    await waitFor('two records', () => records.length >= 2)
    first.end()
    const second = await waitFor('a reconnection', () => conns[1])
    await waitFor('running again', () => src.stats.state === 'running' && src.connected)
    second.write('after reconnect\r\n')
    await waitFor('four records', () => records.length >= 4)
    expect(records.map((r) => r.text)).to.deep.equal(['Failed login from 203.0.113.5', 'second line', 'third, unterminated', 'after reconnect'])
    expect(records[0]!.fields).to.deep.equal({peer: '127.0.0.1'})
    expect(log.join('\n')).to.match(/connection closed by tcp:\/\/127\.0\.0\.1/)
  })

  it('is retrying (with the error) while nothing listens, and connects once the server is up', async () => {
    const probe = await server()
    const port = probe.port
    await new Promise<void>((r) => probe.srv.close(() => r()))
    const {src, records} = await startSource(netCfg('tcp', port))
    expect(src.stats.state).to.equal('retrying')
    expect(src.stats.lastError).to.match(/ECONNREFUSED/)
    const {conns} = await server(port)
    const c = await waitFor('a connection', () => conns[0])
    c.write('hello\r\n')
    await waitFor('a record', () => records[0])
    expect(src.stats.state).to.equal('running')
    expect(src.stats.errors).to.be.greaterThan(0)
  })

  it('cuts an endless line at maxLine and counts it as a drop, with one warning', async () => {
    const {conns, port} = await server()
    const log: string[] = []
    const {src, records} = await startSource(netCfg('tcp', port, {maxLine: 50}), log)
    const c = await waitFor('a connection', () => conns[0])
    for (let i = 0; i < 20; i++) c.write('x'.repeat(1000))
    c.write('\r\n' + 'y'.repeat(80) + '\r\nok\r\n')
    await waitFor('three records', () => records.length >= 3)
    expect(records.map((r) => r.text)).to.deep.equal(['x'.repeat(50), 'y'.repeat(50), 'ok'])
    expect(src.stats.drops).to.equal(2)
    expect(log.filter((l) => /dropping input/.test(l))).to.have.length(1)
  })
})

describe('net:udp:// source', () => {
  it('splits each datagram into lines; invalid UTF-8 and NULs do not hurt', async () => {
    const {src, records} = await startSource(netCfg('udp', 0, {eol: {text: '\n', pattern: false}}))
    expect(src.stats.state).to.equal('running')
    const c = dgram.createSocket('udp4')
    cleanup.push(() => void c.close())
    const send = (b: Buffer | string): Promise<unknown> => new Promise((r) => c.send(b, src.boundPort!, '127.0.0.1', r))
    await send('one\ntwo\n')
    await send('three')
    await send(Buffer.from([0x41, 0xff, 0x00, 0x42, 0x0a]))
    await waitFor('four records', () => records.length >= 4)
    expect(records.map((r) => r.text)).to.deep.equal(['one', 'two', 'three', 'A\uFFFD\u0000B'])
    expect(records[0]!.fields).to.deep.equal({peer: '127.0.0.1'})
    expect(src.stats.records).to.equal(4)
  })

  it('keeps a multi-line datagram whole when eol is a separator the sender never writes', async () => {
    const {src, records} = await startSource(netCfg('udp', 0, {eol: {text: '\0', pattern: false}}))
    const c = dgram.createSocket('udp4')
    cleanup.push(() => void c.close())
    const msg = 'EventID: 4625; An account failed to log on.\r\n\tSource Network Address:\t203.0.113.8\r\n'
    await new Promise((r) => c.send(msg, src.boundPort!, '127.0.0.1', r))
    await waitFor('a record', () => records[0])
    expect(records.map((r) => r.text)).to.deep.equal([msg])
  })

  it('reports a port in use as retrying', async () => {
    const blocker = dgram.createSocket('udp4')
    await new Promise<void>((r) => blocker.bind(0, '127.0.0.1', () => r()))
    cleanup.push(() => void blocker.close())
    const {src} = await startSource(netCfg('udp', blocker.address().port))
    expect(src.stats.state).to.equal('retrying')
    expect(src.stats.lastError).to.match(/EADDRINUSE/)
  })
})

describe('source helpers', () => {
  it('Backoff doubles from the base up to the cap and starts over after reset', () => {
    const b = new Backoff(100, 1000)
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).to.deep.equal([100, 200, 400, 800, 1000, 1000])
    b.reset()
    expect(b.next()).to.equal(100)
  })

  it('DropCounter counts every drop, warns once per spell, and reports the spell when dropping starts again', () => {
    const log: string[] = []
    const stats = newStats()
    const d = new DropCounter(stats, new SinkLogger('debug', [memorySink(log)]), '[x]', 1000)
    let t = 10_000
    for (let i = 0; i < 50; i++) d.drop('full', 1, (t += 10))
    expect(stats.drops).to.equal(50)
    expect(log).to.have.length(1)
    d.drop('full', 2, (t += 5000))
    expect(stats.drops).to.equal(52)
    expect(log).to.have.length(2)
    expect(log[1]).to.match(/dropping input: full \(50 dropped in the previous spell\)/)
  })
})
