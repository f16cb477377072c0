import {expect} from 'chai'
import net from 'node:net'
import type {EslSource} from '../src/engine/config/model.js'
import {createEslSource, EslParser, type EslFrame, type EslLogSource} from '../src/engine/sources/esl.js'
import type {LogRecord} from '../src/engine/types.js'
import {context} from './support/sources.js'
import {waitFor} from './support/wait.js'

/**
 * An event socket server following FreeSWITCH's documented inbound protocol: auth/request
 * greeting, `auth <password>` → command/reply +OK accepted or -ERR invalid (then a disconnect
 * notice and close), `log <level>` → +OK, then log/data frames pushed by the test.
 */
class FakeFreeswitch {
  readonly commands: string[] = []
  readonly sessions = new Set<net.Socket>()
  /** Sockets that passed `log`. */
  readonly logging: net.Socket[] = []
  private srv: net.Server | undefined
  port = 0

  constructor(private readonly password: string) {}

  async listen(port = 0): Promise<void> {
    this.srv = net.createServer((s) => this.session(s))
    await new Promise<void>((resolve, reject) => {
      this.srv!.once('error', reject)
      this.srv!.listen(port, '127.0.0.1', () => resolve())
    })
    this.port = (this.srv.address() as net.AddressInfo).port
  }

  async stop(): Promise<void> {
    for (const s of this.sessions) s.destroy()
    this.logging.length = 0
    const srv = this.srv
    this.srv = undefined
    if (srv) await new Promise<void>((r) => srv.close(() => r()))
  }

  private session(s: net.Socket): void {
    this.sessions.add(s)
    s.on('close', () => this.sessions.delete(s))
    s.on('error', () => {})
    s.write('Content-Type: auth/request\n\n')
    let buf = ''
    s.on('data', (d) => {
      buf += d.toString()
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const cmd = buf.slice(0, i).trim()
        buf = buf.slice(i + 2)
        this.commands.push(cmd)
        if (cmd.startsWith('auth ')) {
          if (cmd.slice(5) === this.password) s.write('Content-Type: command/reply\nReply-Text: +OK accepted\n\n')
          else {
            const bye = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n'
            s.write(`Content-Type: command/reply\nReply-Text: -ERR invalid\n\nContent-Type: text/disconnect-notice\nContent-Length: ${bye.length}\n\n${bye}`)
            s.end()
          }
        } else if (cmd.startsWith('log ')) {
          s.write('Content-Type: command/reply\nReply-Text: +OK log level 4 [4]\n\n')
          this.logging.push(s)
        } else s.write('Content-Type: command/reply\nReply-Text: -ERR command not found\n\n')
      }
    })
  }
}

/** A log/data frame as mod_event_socket writes it. */
function logFrame(body: string, level = 4, file = 'sofia_reg.c'): string {
  const len = Buffer.byteLength(body)
  return `Content-Type: log/data\nContent-Length: ${len}\nLog-Level: ${level}\nText-Channel: 3\nLog-File: ${file}\nLog-Func: sofia_reg_parse_auth\nLog-Line: 2865\nUser-Data: \n\n${body}`
}

function eslCfg(port: number, password: string): EslSource {
  return {kind: 'esl', name: 'fs', origin: {file: 't', line: 1}, spec: `esl:${password}@127.0.0.1:${port}`, implicit: false, password, host: '127.0.0.1', port, level: 'WARNING', reconnect: 0.05}
}

const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function setup(serverPassword: string, clientPassword: string, log: string[] = []): Promise<{fs: FakeFreeswitch; src: EslLogSource; records: LogRecord[]}> {
  const fs = new FakeFreeswitch(serverPassword)
  await fs.listen()
  cleanup.push(() => fs.stop())
  const src = createEslSource(eslCfg(fs.port, clientPassword), context(log))
  cleanup.push(() => src.stop())
  const records: LogRecord[] = []
  await src.start((r) => records.push(r))
  return {fs, src, records}
}

describe('esl source (FreeSWITCH event socket)', () => {
  it('authenticates, subscribes at the configured level and turns log/data frames into records', async () => {
    const {fs, src, records} = await setup('ClueCon', 'ClueCon')
    expect(src.stats.state).to.equal('running')
    expect(fs.commands).to.deep.equal(['auth ClueCon', 'log WARNING'])
    const s = await waitFor('a subscribed session', () => fs.logging[0])
    const line = "2024-05-14 10:11:12.345678 [WARNING] sofia_reg.c:1757 SIP auth failure (REGISTER) on sofia profile 'internal' for [1000@pbx] from ip 203.0.113.5\n"
    const frame = logFrame(line)
    // Split in the middle of the headers and of the body.
    s.write(frame.slice(0, 30))
    s.write(frame.slice(30, frame.length - 20))
    s.write(frame.slice(frame.length - 20) + logFrame('console noise\n', 0) + logFrame('first ünïcode\nsecond\n', 3, 'switch_core.c'))
    await waitFor('three records', () => records.length >= 3)
    expect(records.map((r) => r.text)).to.deep.equal([line.trimEnd(), 'first ünïcode', 'second'])
    expect(records[0]!.fields).to.deep.equal({severity: 4, 'esl.file': 'sofia_reg.c', 'esl.func': 'sofia_reg_parse_auth', 'esl.line': 2865, 'esl.channel': '3'})
    expect(records[1]!.fields).to.include({severity: 3, 'esl.file': 'switch_core.c'})
  })

  it('with a wrong password is retrying with the reason, and keeps retrying with back-off', async () => {
    const log: string[] = []
    const {fs, src, records} = await setup('secret', 'ClueCon', log)
    expect(src.stats.state).to.equal('retrying')
    expect(src.stats.lastError).to.match(/authentication refused.*-ERR invalid/)
    await waitFor('a second attempt', () => fs.commands.filter((c) => c === 'auth ClueCon').length >= 2)
    expect(fs.commands).to.not.include('log WARNING')
    expect(records).to.have.length(0)
    expect(log.join('\n')).to.match(/cannot start: authentication refused/)
  })

  it('reconnects after the server restarts and resumes the log stream', async () => {
    const log: string[] = []
    const {fs, src, records} = await setup('ClueCon', 'ClueCon', log)
    const s1 = await waitFor('a subscribed session', () => fs.logging[0])
    s1.write(logFrame('before restart\n'))
    await waitFor('a record', () => records[0])
    const port = fs.port
    await fs.stop()
    await waitFor('retrying', () => src.stats.state === 'retrying')
    await fs.listen(port)
    const s2 = await waitFor('a new subscribed session', () => fs.logging[0])
    await waitFor('running', () => src.stats.state === 'running')
    s2.write(logFrame('after restart\n'))
    await waitFor('two records', () => records.length >= 2)
    expect(records.map((r) => r.text)).to.deep.equal(['before restart', 'after restart'])
    expect(fs.commands.filter((c) => c === 'log WARNING')).to.have.length(2)
    expect(log.join('\n')).to.match(/disconnected/)
  })

  it('drops a connection that violates the framing (huge Content-Length) and reconnects', async () => {
    const {fs, src} = await setup('ClueCon', 'ClueCon')
    const s1 = await waitFor('a subscribed session', () => fs.logging[0])
    s1.write('Content-Type: log/data\nContent-Length: 99999999999\n\n')
    await waitFor('protocol error noted', () => /protocol error/.test(src.stats.lastError ?? ''))
    await waitFor('a second subscribed session', () => fs.logging[1])
    await waitFor('running', () => src.stats.state === 'running')
  })
})

describe('EslParser', () => {
  it('reads frames with and without bodies, whatever the chunking', () => {
    const stream = Buffer.from('Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\n' + logFrame('a\nb\n'))
    for (let cut = 0; cut <= stream.length; cut += 3) {
      const frames: EslFrame[] = []
      const p = new EslParser((f) => frames.push(f))
      p.push(stream.subarray(0, cut))
      p.push(stream.subarray(cut))
      expect(frames.map((f) => f.headers['Content-Type'])).to.deep.equal(['auth/request', 'command/reply', 'log/data'])
      expect(frames[2]!.body!.toString()).to.equal('a\nb\n')
      expect(p.buffered).to.equal(0)
    }
  })
})
