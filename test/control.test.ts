/**
 * The control channel over a real unix socket: the server with an in-memory daemon
 * (support/control-target.ts), the client, the token, protocol versions, stale sockets, and
 * hostile input.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {SinkLogger, memorySink} from '../src/engine/log/logger.js'
import {ControlClientError, request} from '../src/engine/control/client.js'
import {defaultDataDir, defaultSocketPath, resolveControlPaths, WINDOWS_PIPE} from '../src/engine/control/paths.js'
import {banDetail, MAX_REQUEST_BYTES, PROTOCOL_VERSION, sourceStatus, type StatusResult} from '../src/engine/control/protocol.js'
import {newStats} from '../src/engine/sources/source.js'
import type {Ticket} from '../src/engine/types.js'
import {startControlServer, type ControlServer} from '../src/engine/control/server.js'
import {ensureToken, readToken} from '../src/engine/control/token.js'
import {formatSpan, printable} from '../src/engine/control/render.js'
import {JAILS, MemoryTarget} from './support/control-target.js'
import {prng, tempTree} from './support/files.js'

interface Daemon {
  dir: string
  socketPath: string
  tokenFile: string
  token: string
  target: MemoryTarget
  server: ControlServer
  logLines: string[]
}

const running: ControlServer[] = []

async function startDaemon(opts: {maxConnections?: number; idleTimeoutMs?: number} = {}): Promise<Daemon> {
  const dir = tempTree({'jails.json': JSON.stringify({jails: JAILS})}, 'spylog-ctl-')
  const target = new MemoryTarget(path.join(dir, 'jails.json'))
  const logLines: string[] = []
  const server = await startControlServer({
    target,
    socketPath: path.join(dir, 'run', 'spylog.sock'),
    tokenFile: path.join(dir, 'data', 'control.token'),
    log: new SinkLogger('debug', [memorySink(logLines)]),
    maxConnections: opts.maxConnections,
    idleTimeoutMs: opts.idleTimeoutMs,
  })
  running.push(server)
  target.onStop = () => server.close()
  return {dir, socketPath: server.socketPath, tokenFile: server.tokenFile, token: readToken(server.tokenFile), target, server, logLines}
}

afterEach(async () => {
  for (const s of running.splice(0)) await s.close()
})

/** Sends raw bytes; resolves with the reply lines once the server closes the connection, or once `lines` replies arrived. */
function raw(socketPath: string, data: Buffer | string, opts: {lines?: number} = {}): Promise<{replies: any[]; closed: boolean}> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath)
    let buf = ''
    const replies: any[] = []
    const deadline = setTimeout(() => {
      s.destroy()
      reject(new Error(`no reply/close within 60 s; got ${JSON.stringify(replies)}`))
    }, 60_000)
    s.on('data', (d) => {
      buf += d.toString('utf8')
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        replies.push(JSON.parse(buf.slice(0, nl)))
        buf = buf.slice(nl + 1)
      }
      if (opts.lines !== undefined && replies.length >= opts.lines) {
        clearTimeout(deadline)
        s.destroy()
        resolve({replies, closed: false})
      }
    })
    s.on('error', () => {}) // EPIPE after the server closed: the close event follows
    s.on('close', () => {
      clearTimeout(deadline)
      resolve({replies, closed: true})
    })
    s.write(data)
  })
}

function req(d: Daemon, cmd: string, args: unknown = {}, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({v: PROTOCOL_VERSION, id: 1, token: d.token, cmd, args, ...extra}) + '\n'
}

async function expectClientError(p: Promise<unknown>, code: string, exitCode: number, message: RegExp): Promise<ControlClientError> {
  try {
    await p
  } catch (e) {
    expect(e).to.be.instanceOf(ControlClientError)
    const err = e as ControlClientError
    expect(err.code, err.message).to.equal(code)
    expect(err.exitCode).to.equal(exitCode)
    expect(err.message).to.match(message)
    return err
  }
  throw new Error('expected the request to fail')
}

describe('control channel', function () {
  this.timeout(120_000)

  describe('server start', () => {
    it('creates the socket with mode 0600 in a new 0700 directory, and a 0600 token of 32 random bytes', async () => {
      const d = await startDaemon()
      expect(fs.lstatSync(d.socketPath).isSocket()).to.equal(true)
      expect(fs.statSync(d.socketPath).mode & 0o777).to.equal(0o600)
      expect(fs.statSync(path.dirname(d.socketPath)).mode & 0o777).to.equal(0o700)
      expect(fs.statSync(d.tokenFile).mode & 0o777).to.equal(0o600)
      expect(fs.statSync(path.dirname(d.tokenFile)).mode & 0o777).to.equal(0o700)
      expect(d.token).to.match(/^[0-9a-f]{64}$/)
      const other = await startDaemon()
      expect(other.token).to.not.equal(d.token)
    })

    it('keeps an existing token across restarts and tightens a token file others could read', async () => {
      const dir = tempTree({})
      const file = path.join(dir, 'control.token')
      const lines: string[] = []
      const log = new SinkLogger('debug', [memorySink(lines)])
      const first = ensureToken(file, {log})
      fs.chmodSync(file, 0o644)
      expect(ensureToken(file, {log})).to.equal(first)
      expect(fs.statSync(file).mode & 0o777).to.equal(0o600)
      expect(lines.join('\n')).to.match(/readable by other users \(mode 644\)/)
      fs.writeFileSync(file, 'not a token\n')
      const second = ensureToken(file, {log})
      expect(second).to.match(/^[0-9a-f]{64}$/).and.not.equal(first)
    })

    it('removes a stale socket nothing answers on, and refuses a live one or a path that is not a socket', async () => {
      const dir = tempTree({'jails.json': JSON.stringify({jails: JAILS})})
      const socketPath = path.join(dir, 's.sock')
      // A socket file that is bound but not listening: what a killed daemon leaves behind (connect → ECONNREFUSED).
      const py = spawnSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketPath], {encoding: 'utf8'})
      expect(py.status, py.stderr).to.equal(0)
      expect(fs.lstatSync(socketPath).isSocket()).to.equal(true)
      await expectClientError(request({socketPath, token: 'x'}, 'ping', {}), 'no-daemon', 3, /no spylog daemon running at .*s\.sock/)

      const log = new SinkLogger('debug', [])
      const target = new MemoryTarget(path.join(dir, 'jails.json'))
      const tokenFile = path.join(dir, 'control.token')
      const server = await startControlServer({target, socketPath, tokenFile, log})
      running.push(server)
      const pong = await request({socketPath, tokenFile}, 'ping', {})
      expect(pong.pong).to.equal(true)

      const failure = (socket: string): Promise<Error | undefined> =>
        startControlServer({target, socketPath: socket, tokenFile, log}).then((s) => {
          running.push(s)
          return undefined
        }, (e: Error) => e)
      expect((await failure(socketPath))?.message).to.match(/control socket .*s\.sock is in use: is another spylog running\?/)
      expect((await request({socketPath, tokenFile}, 'ping', {})).pong, 'the first server still answers').to.equal(true)

      const file = path.join(dir, 'not-a-socket')
      fs.writeFileSync(file, 'precious')
      expect((await failure(file))?.message).to.match(/not-a-socket exists and is not a socket: refusing to replace it/)
      expect(fs.readFileSync(file, 'utf8')).to.equal('precious')
    })

    it('close() removes the socket; afterwards the client reports no daemon (exit 3)', async () => {
      const d = await startDaemon()
      await d.server.close()
      expect(fs.existsSync(d.socketPath)).to.equal(false)
      await expectClientError(request({socketPath: d.socketPath, tokenFile: d.tokenFile}, 'ping', {}), 'no-daemon', 3, /no spylog daemon running at/)
    })
  })

  describe('requests', () => {
    it('serves every command against the daemon, which really changes', async () => {
      const d = await startDaemon()
      const c = {socketPath: d.socketPath, tokenFile: d.tokenFile}
      expect(await request(c, 'ping', {})).to.deep.equal({pong: true, version: '0.1.0-test', pid: process.pid})

      for (let i = 0; i < 3; i++) d.target.fail('sshd', '192.0.2.7', `Failed password for root from 192.0.2.7 port ${4000 + i}`)
      d.target.fail('sshd', '198.51.100.1', 'Failed password for bob from 198.51.100.1')
      const status = (await request(c, 'status', {})) as StatusResult
      const sshd = status.jails.find((j) => j.name === 'sshd')!
      expect(sshd).to.include({currentlyFailed: 1, totalFailed: 4, currentlyBanned: 1, totalBanned: 1})
      expect(status.sources.find((s) => s.name === 'auth')!.records).to.equal(4)

      const ban = await request(c, 'ban', {jail: 'sshd', ids: ['203.0.113.9', '192.0.2.7', '127.0.0.1', 'bogus']})
      expect(ban.banned).to.deep.equal(['203.0.113.9'])
      expect(ban.already).to.deep.equal(['192.0.2.7'])
      expect(ban.refused.map((r) => r.id)).to.deep.equal(['127.0.0.1', 'bogus'])

      const banned = await request(c, 'banned', {ids: ['192.0.2.7']})
      expect(banned.entries[0]!.bans[0]!.failures).to.have.length(3)
      expect(banned.entries[0]!.bans[0]!.timeLeft).to.equal(600)

      const unban = await request(c, 'unban', {ids: ['203.0.113.9', '198.51.100.77']})
      expect(unban).to.deep.equal({unbanned: [{jail: 'sshd', id: '203.0.113.9'}], notBanned: ['198.51.100.77']})
      const jail = await request(c, 'status', {jail: 'sshd'})
      expect((jail as any).actions.banned.map((b: any) => b.id)).to.deep.equal(['192.0.2.7'])

      const all = await request(c, 'unban', {all: true})
      expect(all.unbanned).to.deep.equal([{jail: 'sshd', id: '192.0.2.7'}])
      expect(d.target.status().jails.every((j) => j.currentlyBanned === 0)).to.equal(true)
    })

    it('reports a ControlError of the daemon with its code (unknown jail → exit 1), and a crash of a command as failed, logged', async () => {
      const d = await startDaemon()
      const c = {socketPath: d.socketPath, tokenFile: d.tokenFile}
      await expectClientError(request(c, 'status', {jail: 'nope'}), 'not-found', 1, /no jail "nope"/)
      d.target.banned = () => {
        throw new Error('store is corrupt')
      }
      await expectClientError(request(c, 'banned', {}), 'failed', 1, /^store is corrupt$/)
      expect(d.logLines.join('\n')).to.match(/ERROR control: banned failed: store is corrupt/)
      expect((await request(c, 'ping', {})).pong).to.equal(true)
    })

    it('refuses a wrong or missing token, logs it (without the token), and closes the connection', async () => {
      const d = await startDaemon()
      const wrong = 'f'.repeat(64)
      await expectClientError(request({socketPath: d.socketPath, token: wrong}, 'unban', {all: true}), 'unauthorized', 2, /wrong or missing control token/)
      const r = await raw(d.socketPath, JSON.stringify({v: PROTOCOL_VERSION, id: 5, cmd: 'stop', args: {}}) + '\n' + req(d, 'ping'))
      expect(r.closed).to.equal(true)
      expect(r.replies).to.have.length(1)
      expect(r.replies[0]).to.deep.include({ok: false, id: 5, error: {code: 'unauthorized', message: 'wrong or missing control token'}})
      const log = d.logLines.join('\n')
      expect(log).to.match(/WARNING control: refused a request on .*spylog\.sock: wrong token \(command "unban"\)/)
      expect(log).to.match(/WARNING control: refused a request on .*spylog\.sock: no token \(command "stop"\)/)
      expect(log).to.not.contain(wrong)
      expect(d.target.stopped).to.equal(false)
      expect(d.target.status().jails.length).to.equal(2)
    })

    it('logs at most 10 refusals a minute (a flood of bad requests cannot flood the log)', async () => {
      const d = await startDaemon()
      for (let i = 0; i < 15; i++) await raw(d.socketPath, JSON.stringify({v: PROTOCOL_VERSION, id: i, token: 'x', cmd: 'ping'}) + '\n')
      const refused = d.logLines.filter((l) => l.includes('refused a request'))
      expect(refused).to.have.length(10)
    })

    it('answers a request of another protocol version with a clear error, both ways', async () => {
      const d = await startDaemon()
      const r = await raw(d.socketPath, JSON.stringify({v: 99, id: 'a', token: d.token, cmd: 'ping', args: {}}) + '\n')
      expect(r.closed).to.equal(true)
      expect(r.replies[0]).to.deep.include({ok: false, v: PROTOCOL_VERSION, id: 'a'})
      expect(r.replies[0].error.code).to.equal('version')
      expect(r.replies[0].error.message).to.match(/^version mismatch: daemon protocol v1, client protocol v99 /)
      expect(d.logLines.join('\n')).to.match(/WARNING control: refused a request on .*: version mismatch: daemon protocol v1, client protocol v99/)

      // A daemon of a newer protocol answering this client.
      const dir = tempTree({})
      const socketPath = path.join(dir, 'new.sock')
      const fake = net.createServer((s) => s.once('data', () => s.end(JSON.stringify({v: 2, id: 1, ok: true, result: {pong: true}}) + '\n')))
      await new Promise<void>((resolve) => fake.listen(socketPath, resolve))
      try {
        await expectClientError(request({socketPath, token: 'x'}, 'ping', {}), 'version', 2, /^version mismatch: daemon protocol v2, client protocol v1 /)
      } finally {
        await new Promise((resolve) => fake.close(resolve))
      }
    })

    it('reports a peer that is not spylog, and a daemon that never answers (timeout, exit 1)', async () => {
      const dir = tempTree({})
      const socketPath = path.join(dir, 'x.sock')
      const conns: net.Socket[] = []
      const fake = net.createServer((s) => {
        conns.push(s)
        s.once('data', (d) => {
          if (d.includes('"ping"')) s.end('HTTP/1.1 400 Bad Request\r\n\r\n\n')
        })
      })
      await new Promise<void>((resolve) => fake.listen(socketPath, resolve))
      try {
        await expectClientError(request({socketPath, token: 'x'}, 'ping', {}), 'connection', 1, /did not answer with the spylog control protocol/)
        await expectClientError(request({socketPath, token: 'x', timeoutMs: 300}, 'status', {}), 'timeout', 1, /no reply from the daemon at .*x\.sock within/)
      } finally {
        for (const s of conns) s.destroy()
        await new Promise((resolve) => fake.close(resolve))
      }
    })

    it('rejects malformed requests with bad-request / unknown-command and keeps the connection of an authenticated client', async () => {
      const d = await startDaemon()
      const bad: [string, unknown, RegExp][] = [
        ['ban', {jail: 'sshd'}, /ban: missing ids/],
        ['ban', {jail: 'sshd', ids: []}, /ban: ids must not be empty/],
        ['ban', {jail: 7, ids: ['192.0.2.1']}, /ban: jail must be a non-empty string/],
        ['banned', {ids: [1, 2]}, /each id must be a non-empty string/],
        ['unban', {}, /unban: give ids, or all/],
        ['unban', {all: true, ids: ['192.0.2.1']}, /give ids or all, not both/],
        ['unban', {all: 'yes'}, /all must be a boolean/],
        ['status', [], /args must be an object/],
        ['ban', {jail: 'sshd', ids: ['x'.repeat(300)]}, /at most 256 characters/],
      ]
      for (const [cmd, args, message] of bad) {
        const r = await raw(d.socketPath, req(d, cmd, args), {lines: 1})
        expect(r.replies[0].ok, cmd).to.equal(false)
        expect(r.replies[0].error.code).to.equal('bad-request')
        expect(r.replies[0].error.message).to.match(message)
      }
      const r = await raw(d.socketPath, req(d, 'rm -rf /') + req(d, 'ping'), {lines: 2})
      expect(r.replies[0].error).to.deep.include({code: 'unknown-command'})
      expect(r.replies[1]).to.deep.include({ok: true, result: {pong: true, version: '0.1.0-test', pid: process.pid}})
      expect(d.target.status().jails.every((j) => j.currentlyBanned === 0)).to.equal(true)
    })
  })

  describe('hostile input', () => {
    it('answers garbage JSON, non-objects and an oversized line with an error and closes the connection', async () => {
      const d = await startDaemon()
      for (const junk of ['{not json', '"a string"', 'null', '[1,2]', '\u0000\u0000\u0000']) {
        const r = await raw(d.socketPath, junk + '\n')
        expect(r.closed, junk).to.equal(true)
        expect(r.replies[0].error.code, junk).to.equal('bad-request')
      }
      // More than the bound without a newline: refused before it is all buffered.
      const big = Buffer.alloc(MAX_REQUEST_BYTES + 4096, 0x61)
      const r = await raw(d.socketPath, big)
      expect(r.closed).to.equal(true)
      expect(r.replies[0].error.code).to.equal('too-large')
      // A long line ending in a newline, split across many chunks.
      const r2 = await raw(d.socketPath, Buffer.concat([Buffer.from('{"v":1,"pad":"'), Buffer.alloc(MAX_REQUEST_BYTES, 0x62), Buffer.from('"}\n')]))
      expect(r2.replies[0].error.code).to.equal('too-large')
      expect((await request({socketPath: d.socketPath, tokenFile: d.tokenFile}, 'ping', {})).pong).to.equal(true)
    })

    it('survives random bytes, invalid UTF-8 and NULs on many connections, then still serves requests', async () => {
      const d = await startDaemon()
      const rnd = prng(0xc0ffee)
      for (let n = 0; n < 40; n++) {
        const len = 1 + Math.floor(rnd() * 2000)
        const bytes = Buffer.alloc(len)
        for (let i = 0; i < len; i++) bytes[i] = Math.floor(rnd() * 256)
        // Half of them end with a newline (a complete "request"), half leave a partial line and hang up.
        const data = n % 2 === 0 ? Buffer.concat([bytes, Buffer.from('\n')]) : bytes
        const s = net.connect(d.socketPath)
        s.on('error', () => {})
        s.resume()
        await new Promise<void>((resolve) => {
          s.on('close', () => resolve())
          s.write(data, () => {
            if (n % 2 === 1) s.destroy()
          })
        })
      }
      const r = await raw(d.socketPath, Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0x76, 0x22, 0x3a, 0x31, 0x7d, 0x0a]))
      expect(r.replies[0].ok).to.equal(false)
      expect(d.target.stopped).to.equal(false)
      const status = await request({socketPath: d.socketPath, tokenFile: d.tokenFile}, 'status', {})
      expect((status as StatusResult).jails).to.have.length(2)
    })

    it('closes a connection that sends no complete request (idle timeout), and caps the connections served at once', async () => {
      const d = await startDaemon({idleTimeoutMs: 200, maxConnections: 2})
      const silent = net.connect(d.socketPath)
      silent.on('error', () => {})
      silent.resume()
      silent.write('{"v":1,')
      const closed = await new Promise<boolean>((resolve) => {
        const deadline = setTimeout(() => resolve(false), 60_000)
        silent.on('close', () => {
          clearTimeout(deadline)
          resolve(true)
        })
      })
      expect(closed).to.equal(true)

      // Two held connections fill the server; a third is dropped at once; once one leaves, requests are served again.
      const d2 = await startDaemon({maxConnections: 2})
      const held = [net.connect(d2.socketPath), net.connect(d2.socketPath)]
      for (const h of held) {
        h.on('error', () => {})
        await new Promise<void>((resolve) => h.once('connect', () => resolve()))
      }
      await expectClientError(request({socketPath: d2.socketPath, tokenFile: d2.tokenFile, timeoutMs: 60_000}, 'ping', {}), 'connection', 1, /closed the connection without a reply/)
      held[0]!.destroy()
      const deadline = Date.now() + 60_000
      for (;;) {
        try {
          expect((await request({socketPath: d2.socketPath, tokenFile: d2.tokenFile}, 'ping', {})).pong).to.equal(true)
          break
        } catch (e) {
          if (Date.now() > deadline) throw e
          await new Promise((r) => setTimeout(r, 50))
        }
      }
      held[1]!.destroy()
    })

    it('reassembles a request that arrives in pieces, and answers pipelined requests in order', async () => {
      const d = await startDaemon()
      const line = Buffer.from(req(d, 'status', {jail: 'sshd'}) + req(d, 'ping') + req(d, 'banned', {ids: ['192.0.2.1']}))
      const s = net.connect(d.socketPath)
      let got = ''
      s.setEncoding('utf8').on('data', (x: string) => (got += x))
      await new Promise<void>((resolve) => s.once('connect', () => resolve()))
      for (let i = 0; i < line.length; i += 7) {
        await new Promise<void>((resolve) => s.write(line.subarray(i, i + 7), () => resolve()))
      }
      const deadline = Date.now() + 60_000
      while (got.split('\n').length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      s.destroy()
      const replies = got.trim().split('\n').map((l) => JSON.parse(l))
      expect(replies.map((r) => r.ok)).to.deep.equal([true, true, true])
      expect(replies[0].result.name).to.equal('sshd')
      expect(replies[1].result.pong).to.equal(true)
      expect(replies[2].result).to.deep.equal({entries: [{id: '192.0.2.1', bans: []}]})
    })

    it('answers stop before stopping, and the daemon can close the server from stop()', async () => {
      const d = await startDaemon()
      const r = await request({socketPath: d.socketPath, tokenFile: d.tokenFile}, 'stop', {})
      expect(r).to.deep.equal({stopping: true})
      const deadline = Date.now() + 60_000
      while (fs.existsSync(d.socketPath) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50))
      expect(d.target.stopped).to.equal(true)
      expect(fs.existsSync(d.socketPath)).to.equal(false)
    })
  })

  describe('conversions for the daemon', () => {
    it('turns a Ticket and a Source into plain JSON that survives the wire unchanged', () => {
      const t: Ticket = {
        uuid: 'u1', jail: 'sshd', filter: 'sshd', id: '192.0.2.7', isAddress: true, time: 1000, bantime: 600, banCount: 2, manual: true,
        data: {user: 'root'},
        failures: [
          {filter: 'sshd', id: '192.0.2.7', time: 990, data: {user: 'root', port: 22, extra: {a: 1}, nothing: undefined}, lines: ['Failed password for root', 'x'.repeat(5000)]},
          {filter: 'sshd', id: '192.0.2.7', time: undefined, data: {}, lines: ['no date']},
        ],
      }
      const d = banDetail(t, 1100)
      expect(JSON.parse(JSON.stringify(d))).to.deep.equal(d)
      expect(d).to.deep.include({jail: 'sshd', id: '192.0.2.7', time: 1000, bantime: 600, timeLeft: 500, banCount: 2, manual: true})
      expect(d.failures[0]!.data).to.deep.equal({user: 'root', port: '22', extra: '{"a":1}'})
      expect(d.failures[0]!.lines[1]).to.have.length(4097)
      expect(d.failures[1]).to.deep.equal({filter: 'sshd', lines: ['no date']})
      expect(banDetail({...t, bantime: -1, manual: undefined}, 5000)).to.deep.include({timeLeft: -1}).and.not.have.property('manual')
      expect(banDetail(t, 9999).timeLeft).to.equal(0)

      const stats = {...newStats(), records: 3, bytes: 40, state: 'running' as const, lastRecord: 77}
      const s = sourceStatus({name: 'auth', kind: 'file', stats}, '/var/log/auth.log')
      expect(s).to.deep.equal({name: 'auth', kind: 'file', spec: '/var/log/auth.log', records: 3, bytes: 40, errors: 0, drops: 0, state: 'running', lastRecord: 77})
    })
  })

  describe('text helpers', () => {
    it('formats spans with at most two units, and escapes control characters of log text', () => {
      const cases: [number, string][] = [[0, '0s'], [59, '59s'], [61, '1m1s'], [3600, '1h'], [3661, '1h1m'], [86399, '23h59m'], [90061, '1d1h'], [691200, '1w1d'], [-1, 'permanent'], [12.7, '12s']]
      for (const [s, text] of cases) expect(formatSpan(s), String(s)).to.equal(text)
      expect(printable('a\u001b[2J\r\n\tb\u0085\u2028é')).to.equal('a\\x1b[2J\\x0d\\x0a\\tb\\x85\\u2028é')
    })
  })

  describe('paths', () => {
    it('picks the platform defaults', () => {
      expect(defaultSocketPath({platform: 'linux', uid: 0, env: {}})).to.equal('/run/spylog/spylog.sock')
      expect(defaultSocketPath({platform: 'linux', uid: 1000, env: {XDG_RUNTIME_DIR: '/run/user/1000'}})).to.equal('/run/user/1000/spylog/spylog.sock')
      expect(defaultSocketPath({platform: 'linux', uid: 1000, env: {}, home: '/home/u'})).to.equal('/home/u/.local/state/spylog/spylog.sock')
      expect(defaultSocketPath({platform: 'win32', env: {}})).to.equal(WINDOWS_PIPE)
      expect(WINDOWS_PIPE).to.equal('\\\\.\\pipe\\spylog')
      expect(defaultDataDir({platform: 'linux', uid: 0, env: {}})).to.equal('/var/lib/spylog')
      expect(defaultDataDir({platform: 'win32', env: {ProgramData: 'D:\\PD'}})).to.equal('D:\\PD\\spylog\\data')
      expect(defaultDataDir({platform: 'linux', uid: 0, env: {SPYLOG_DATA_DIR: '/srv/spy'}})).to.equal('/srv/spy')
      expect(resolveControlPaths({platform: 'linux', uid: 0, env: {}, dataDir: '/d'})).to.deep.equal({socketPath: '/run/spylog/spylog.sock', tokenFile: '/d/control.token'})
      expect(resolveControlPaths({platform: 'win32', env: {}}).tokenFile).to.equal('C:\\ProgramData\\spylog\\data\\control.token')
      expect(resolveControlPaths({platform: 'linux', uid: 0, env: {SPYLOG_SOCKET: '/tmp/s'}, tokenFile: '/t'})).to.deep.equal({socketPath: '/tmp/s', tokenFile: '/t'})
    })
  })
})
