import {createHmac} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {expect} from 'chai'
import type {ActionConfig, ParamValue} from '../src/engine/config/model.js'
import {ActionError} from '../src/engine/actions/action.js'
import {WebhookRunner} from '../src/engine/actions/builtin/webhook.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import type {Ticket} from '../src/engine/types.js'

const ticket: Ticket = {
  uuid: '0b6c3a8e-1111-4000-8000-0000000000aa', jail: 'nginx', filter: 'nginx-auth', id: '2001:db8::7', isAddress: true, time: 1_700_000_123, bantime: 900, banCount: 0,
  data: {}, failures: [{filter: 'nginx-auth', id: '2001:db8::7', time: 1_700_000_100, data: {}, lines: ['x']}, {filter: 'nginx-auth', id: '2001:db8::7', time: 1_700_000_110, data: {}, lines: ['y']}],
}

function action(options: Record<string, ParamValue>): ActionConfig {
  return {name: 'hook', origin: {file: '/etc/spylog/actions/hook.lua', line: 1}, parameters: {}, options, builtin: {kind: 'webhook', variant: 'webhook', features: []}}
}

interface Received {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
}

describe('webhook action (real HTTP server on loopback)', () => {
  let server: http.Server
  let base = ''
  const received: Received[] = []
  /** The status the server answers next (default 204). */
  let answer: number | 'hang' = 204
  const log = new SinkLogger('debug', [memorySink([])])

  before(async () => {
    server = http.createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (c: string) => (body += c))
      req.on('end', () => {
        received.push({method: req.method!, url: req.url!, headers: req.headers, body})
        if (answer === 'hang') return
        res.writeHead(answer, {'content-type': 'text/plain'})
        res.end(answer >= 400 ? 'receiver says no' : '')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })

  beforeEach(() => {
    received.length = 0
    answer = 204
  })

  it('POSTs ban and unban as JSON, with the configured headers and an HMAC-SHA256 signature', async () => {
    const runner = new WebhookRunner(action({url: `${base}/spylog/events?k=1`, headers: {Authorization: 'Bearer t0ken'}, secret: 's3cret'}), {log})
    await runner.run('ban', {ticket, params: {}})
    await runner.run('unban', {ticket, params: {}})
    expect(received).to.have.length(2)
    const [ban, unban] = received as [Received, Received]
    expect(ban.method).to.equal('POST')
    expect(ban.url).to.equal('/spylog/events?k=1')
    expect(ban.headers['content-type']).to.equal('application/json')
    expect(ban.headers.authorization).to.equal('Bearer t0ken')
    expect(JSON.parse(ban.body)).to.deep.equal({event: 'ban', jail: 'nginx', id: '2001:db8::7', bantime: 900, time: 1_700_000_123, failures: 2, filter: 'nginx-auth', uuid: ticket.uuid})
    expect(JSON.parse(unban.body)).to.deep.include({event: 'unban', id: '2001:db8::7'})
    for (const r of [ban, unban]) expect(r.headers['x-spylog-signature']).to.equal('sha256=' + createHmac('sha256', 's3cret').update(r.body).digest('hex'))
  })

  it('sends no signature without a secret', async () => {
    await new WebhookRunner(action({url: base}), {log}).run('ban', {ticket, params: {}})
    expect(received[0]!.headers).not.to.have.property('x-spylog-signature')
  })

  it('turns a 500 into a retryable ActionError and a 400 into a final one', async () => {
    const runner = new WebhookRunner(action({url: base}), {log})
    answer = 500
    const e500 = await runner.run('ban', {ticket, params: {}}).then(() => undefined, (e: unknown) => e)
    expect(e500).to.be.instanceOf(ActionError)
    expect((e500 as ActionError).retry).to.equal(true)
    expect((e500 as Error).message).to.match(/answered 500 .*receiver says no/)
    answer = 400
    const e400 = await runner.run('ban', {ticket, params: {}}).then(() => undefined, (e: unknown) => e)
    expect((e400 as ActionError).retry).to.equal(false)
    expect(received).to.have.length(2)
  })

  it('gives up on a receiver that does not answer within its timeout, and on a closed port (both retryable)', async () => {
    answer = 'hang'
    const slow = await new WebhookRunner(action({url: base, timeout: 300}), {log}).run('ban', {ticket, params: {}}).then(() => undefined, (e: unknown) => e)
    expect(slow).to.be.instanceOf(ActionError)
    expect((slow as ActionError).retry).to.equal(true)
    expect((slow as Error).message).to.include('no answer within 300 ms')

    const closed = http.createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise((r) => closed.close(r))
    const refused = await new WebhookRunner(action({url: `http://127.0.0.1:${port}/`}), {log}).run('ban', {ticket, params: {}}).then(() => undefined, (e: unknown) => e)
    expect((refused as ActionError).retry).to.equal(true)
    expect((refused as Error).message).to.include('ECONNREFUSED')
  })

  it('rejects bad options with the file and action name', () => {
    expect(() => new WebhookRunner(action({}), {log})).to.throw(ActionError, /hook\.lua:1: action "hook": option url is required/)
    expect(() => new WebhookRunner(action({url: 'file:///etc/passwd'}), {log})).to.throw(ActionError, /only http and https/)
    expect(() => new WebhookRunner(action({url: 'not a url'}), {log})).to.throw(ActionError, /is not a URL/)
    expect(() => new WebhookRunner(action({url: base, headers: {'X-A': 'one\r\nX-Injected: 1'}}), {log})).to.throw(ActionError, /headers\.X-A/)
  })

  it('posts nothing in a dry run', async () => {
    const lines: string[] = []
    await new WebhookRunner(action({url: base}), {log: new SinkLogger('info', [memorySink(lines)]), dryRun: true}).run('ban', {ticket, params: {}})
    expect(received).to.have.length(0)
    expect(lines.join('\n')).to.match(/dry run, would POST to http:\/\/127\.0\.0\.1:\d+\/: \{"event":"ban"/)
  })
})
