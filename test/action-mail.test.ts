import {type ChildProcess, spawn} from 'node:child_process'
import {createInterface} from 'node:readline'
import {expect} from 'chai'
import type {ActionConfig, ParamValue} from '../src/engine/config/model.js'
import {ActionError} from '../src/engine/actions/action.js'
import {MailRunner, smtpSettings} from '../src/engine/actions/builtin/mail.js'
import {memorySink, SinkLogger} from '../src/engine/log/logger.js'
import type {Ticket} from '../src/engine/types.js'

/**
 * A real SMTP server: Debian's python3-aiosmtpd, on a loopback port chosen by the kernel. Each
 * message is parsed by Python's email package and printed as one JSON line (decoded subject,
 * headers and body), so the test checks what a mail client would show.
 */
const SERVER = String.raw`
import asyncio, json, sys, email, email.policy
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = msg.get_body(('plain',))
        print(json.dumps({'mail_from': envelope.mail_from, 'rcpt_tos': envelope.rcpt_tos, 'authenticated': bool(session.authenticated),
            'subject': str(msg['subject']), 'from': str(msg['from']), 'to': str(msg['to']), 'jail': str(msg['x-spylog-jail']),
            'body': body.get_content() if body is not None else None}), flush=True)
        return '250 OK'
def check(server, session, envelope, mechanism, data):
    return AuthResult(success=isinstance(data, LoginPassword) and data.login == b'spylog' and data.password == b'pw', handled=False)
async def main():
    need = sys.argv[1] == 'auth'
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(Handler(), authenticator=check if need else None, auth_required=need, auth_require_tls=False), '127.0.0.1', 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
asyncio.run(main())
`

interface Received {
  mail_from: string
  rcpt_tos: string[]
  authenticated: boolean
  subject: string
  from: string
  to: string
  jail: string
  body: string
}

class SmtpServer {
  port = 0
  readonly messages: Received[] = []
  private child?: ChildProcess
  private waiters: (() => void)[] = []

  async start(mode: 'open' | 'auth'): Promise<this> {
    const child = spawn('/usr/bin/python3', ['-c', SERVER, mode], {stdio: ['ignore', 'pipe', 'pipe']})
    this.child = child
    let err = ''
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()))
    const rl = createInterface({input: child.stdout!})
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (c) => reject(new Error(`SMTP server (python3-aiosmtpd) exited with ${c}: ${err}`)))
      rl.on('line', (l) => {
        if (this.port === 0) {
          this.port = Number(l)
          resolve()
          return
        }
        this.messages.push(JSON.parse(l) as Received)
        for (const w of this.waiters.splice(0)) w()
      })
    })
    return this
  }

  /** Waits until `n` messages arrived (the server prints a message after it accepted it). */
  async waitFor(n: number, deadlineMs = 30_000): Promise<Received[]> {
    const end = Date.now() + deadlineMs
    while (this.messages.length < n && Date.now() < end) await new Promise<void>((r) => {
      this.waiters.push(r)
      setTimeout(r, 500)
    })
    return this.messages
  }

  stop(): void {
    this.child?.kill('SIGKILL')
  }
}

const ticket: Ticket = {
  uuid: '5d0f7c0a-2222-4000-8000-0000000000bb', jail: 'postfix-sasl', filter: 'postfix', id: '198.51.100.23', isAddress: true, time: 1_700_000_000, bantime: 3600, banCount: 1,
  data: {user: 'info'},
  failures: [
    {filter: 'postfix', id: '198.51.100.23', time: 1_699_999_990, data: {}, lines: ['warning: unknown[198.51.100.23]: SASL LOGIN authentication failed: UGFzc3dvcmQ6']},
    {filter: 'postfix', id: '198.51.100.23', time: 1_699_999_995, data: {}, lines: ['warning: unknown[198.51.100.23]: SASL PLAIN authentication failed: ünïcode and a very long tail ' + 'x'.repeat(120)]},
  ],
}

function action(options: Record<string, ParamValue>, extra: Partial<ActionConfig> = {}, features: string[] = []): ActionConfig {
  return {
    name: 'sendmail-whois-lines', origin: {file: '/etc/fail2ban/jail.local', line: 12}, parameters: {}, options,
    ban: {kind: 'module', module: 'spylog.actions.mail'}, builtin: {kind: 'mail', variant: 'sendmail', features}, ...extra,
  }
}

describe('mail action (real SMTP server: python3-aiosmtpd)', () => {
  let open: SmtpServer
  let auth: SmtpServer
  const lines: string[] = []
  const log = new SinkLogger('info', [memorySink(lines)])

  before(async () => {
    open = await new SmtpServer().start('open')
    auth = await new SmtpServer().start('auth')
  })

  after(() => {
    open?.stop()
    auth?.stop()
  })

  it('mails a ban with jail, address, failure count and the failure lines (the -lines feature)', async () => {
    const runner = new MailRunner(action({
      server: {address: `127.0.0.1:${open.port}`},
      from: {title: 'spylog on gw', address: 'spylog@example.org'},
      to: [{title: 'Admin', address: 'admin@example.org'}, 'Sec <sec@example.org>'],
    }, {}, ['whois', 'lines']), {log})
    await runner.run('ban', {ticket, params: {}})
    // fail2ban's sendmail actions have no unban: nothing is sent (the next message is the next ban)
    await runner.run('unban', {ticket, params: {}})
    await runner.run('ban', {ticket: {...ticket, id: '198.51.100.24'}, params: {}})
    await runner.stop()
    const [m, next] = await open.waitFor(2)
    expect(next!.subject).to.equal('[spylog] postfix-sasl: banned 198.51.100.24 after 2 failures')
    expect(m!.mail_from).to.equal('spylog@example.org')
    expect(m!.rcpt_tos).to.deep.equal(['admin@example.org', 'sec@example.org'])
    expect(m!.from).to.equal('spylog on gw <spylog@example.org>')
    expect(m!.to).to.equal('Admin <admin@example.org>, Sec <sec@example.org>')
    expect(m!.subject).to.equal('[spylog] postfix-sasl: banned 198.51.100.23 after 2 failures')
    expect(m!.jail).to.equal('postfix-sasl')
    expect(m!.body).to.include('Jail:      postfix-sasl')
    expect(m!.body).to.include('Failures:  2')
    expect(m!.body).to.include('Ban time:  3600 s')
    expect(m!.body).to.include('Lines containing failures of 198.51.100.23:')
    for (const f of ticket.failures) expect(m!.body).to.include(f.lines[0]!)
    expect(lines.join('\n')).to.include('whois lookups are not supported')
  })

  it("fills lua-spylog's subject/body templates, sends unbans, and takes fail2ban's dest/sender per jail", async () => {
    const before = open.messages.length
    const runner = new MailRunner(action({
      server: {address: '127.0.0.1', port: open.port},
      from: 'spylog@example.org',
      to: 'nobody@example.org',
    }, {
      ban: {kind: 'module', module: 'spylog.actions.mail', args: '"SpyLog ban <HOST>" "\n    Filter: <FILTER>\n    Jail:   <JAIL>\n    User:   <user>\n  "'},
      unban: {kind: 'module', module: 'spylog.actions.mail', args: '"SpyLog unban <HOST>\r\nBcc: victim@example.org" "<HOST> is free again (<BANTIME> s)"'},
    }), {log})
    await runner.run('ban', {ticket, params: {dest: 'ops@example.org', destname: 'Ops', sender: 'f2b@example.org', sendername: 'Fail2Ban, on gw'}})
    await runner.run('unban', {ticket, params: {}})
    await runner.stop()
    const got = (await open.waitFor(before + 2)).slice(before)
    expect(got).to.have.length(2)
    const [ban, unban] = got as [Received, Received]
    expect(ban.subject).to.equal('SpyLog ban 198.51.100.23')
    expect(ban.rcpt_tos).to.deep.equal(['ops@example.org'])
    expect(ban.to).to.equal('Ops <ops@example.org>')
    expect(ban.mail_from).to.equal('f2b@example.org')
    expect(ban.from).to.equal('"Fail2Ban, on gw" <f2b@example.org>')
    expect(ban.body).to.match(/Filter: postfix\r?\n\s+Jail:   postfix-sasl\r?\n\s+User:   info/)
    // a header cannot be smuggled in through a template or a capture
    expect(unban.subject).to.equal('SpyLog unban 198.51.100.23 Bcc: victim@example.org')
    expect(unban.rcpt_tos).to.deep.equal(['nobody@example.org'])
    expect(unban.body.trim()).to.equal('198.51.100.23 is free again (3600 s)')
  })

  it('logs in with SMTP AUTH, and a wrong password is a retryable ActionError', async () => {
    const good = new MailRunner(action({host: '127.0.0.1', port: auth.port, user: 'spylog', password: 'pw', from: 'spylog@example.org', to: 'admin@example.org'}), {log})
    await good.run('ban', {ticket, params: {}})
    await good.stop()
    const [m] = await auth.waitFor(1)
    expect(m!.authenticated).to.equal(true)

    const bad = new MailRunner(action({host: '127.0.0.1', port: auth.port, user: 'spylog', password: 'wrong', from: 'spylog@example.org', to: 'admin@example.org'}), {log})
    const err = await bad.run('ban', {ticket, params: {}}).then(() => undefined, (e: unknown) => e)
    await bad.stop()
    expect(err).to.be.instanceOf(ActionError)
    expect((err as ActionError).retry).to.equal(true)
    expect((err as Error).message, (err as Error).message).to.match(/EAUTH/)
    expect(auth.messages).to.have.length(1)
  })

  it('rejects incomplete or bad options of a Lua ACTION{} with the file and action name', () => {
    const lua = (options: Record<string, ParamValue>): ActionConfig => ({...action(options), name: 'mail', origin: {file: '/etc/spylog/actions/mail.lua', line: 2}, builtin: {kind: 'mail', variant: 'spylog', features: []}})
    expect(() => new MailRunner(lua({from: 'a@x.org', to: 'b@x.org'}), {log})).to.throw(ActionError, /mail\.lua:2: action "mail": option server\.address/)
    expect(() => new MailRunner(lua({host: 'h', to: 'b@x.org'}), {log})).to.throw(ActionError, /option from is required/)
    expect(() => new MailRunner(lua({host: 'h', from: 'a@x.org', to: 'not an address'}), {log})).to.throw(ActionError, /option to: "not an address"/)
    // mapped from fail2ban: the local MTA and fail2ban's sender/recipient defaults
    const f2b = new MailRunner(action({}, {parameters: {dest: 'sec@example.org'}}), {log})
    expect(f2b.smtp).to.deep.include({host: 'localhost', port: 25, secure: false})
    expect(f2b.message('ban', {ticket, params: {dest: 'sec@example.org'}}).to).to.deep.equal([{address: 'sec@example.org'}])
    expect(f2b.message('ban', {ticket, params: {}}).from.address).to.match(/^root@/)
    expect(smtpSettings(action({server: {address: 'mail.example.org:465'}}))).to.deep.include({host: 'mail.example.org', port: 465, secure: true})
    expect(smtpSettings(action({server: {address: 'mail.example.org', ssl: true}}))).to.deep.include({port: 465, secure: true})
    expect(smtpSettings(action({host: 'mail.example.org'}))).to.deep.include({port: 25, secure: false})
  })
})
