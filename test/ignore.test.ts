import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {splitCommandLine} from '../src/engine/actions/argv.js'
import {NeverBan} from '../src/engine/jails/ignore.js'
import {tempTree} from './support/files.js'
import {waitFor} from './support/wait.js'

/** A non-loopback address of this host, if it has one. */
function ownAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (!a.internal) return a.address.split('%')[0]
  return undefined
}

describe('NeverBan', () => {
  it('protects WHITE_IP and ignoreip addresses and networks, IPv4 and IPv6', () => {
    const nb = new NeverBan({whiteIp: ['198.51.100.7', '10.0.0.0/8'], ignoreIp: ['2001:db8:1::/48', '192.0.2.128/25'], ignoreSelf: false})
    expect(nb.reason('198.51.100.7')).to.equal('WHITE_IP 198.51.100.7')
    expect(nb.reason('10.200.3.4')).to.equal('WHITE_IP 10.0.0.0/8')
    expect(nb.reason('192.0.2.200')).to.equal('ignoreip 192.0.2.128/25')
    expect(nb.has('192.0.2.127')).to.equal(false)
    expect(nb.reason('2001:db8:1:ff::5')).to.equal('ignoreip 2001:db8:1::/48')
    expect(nb.reason('2001:DB8:0001:0000:0000:0000:0000:0009')).to.equal('ignoreip 2001:db8:1::/48')
    expect(nb.has('2001:db8:2::5')).to.equal(false)
    // IPv4-mapped forms are the IPv4 address
    expect(nb.reason('::ffff:10.1.1.1')).to.equal('WHITE_IP 10.0.0.0/8')
    // ids that are not addresses are never matched (and never throw)
    for (const id of ['alice', '', '10', '0x7f.1', '$(touch /tmp/x)', '10.0.0.1/99', 'a\u0000b']) expect(nb.has(id)).to.equal(false)
  })

  it('always protects loopback and unspecified addresses, in every form', () => {
    const nb = new NeverBan({ignoreSelf: false})
    for (const id of ['127.0.0.1', '127.3.2.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0.0.0.0', '::']) expect(nb.reason(id), id).to.equal('loopback')
    expect(nb.has('128.0.0.1')).to.equal(false)
  })

  it('protects a network holding a protected address (prefix bans never cover a whitelisted host)', () => {
    const nb = new NeverBan({whiteIp: ['2001:db8:5::17'], ignoreSelf: false})
    expect(nb.reason('2001:db8:5::/64')).to.equal('WHITE_IP 2001:db8:5::17')
    expect(nb.has('2001:db8:6::/64')).to.equal(false)
    expect(nb.reason('::/64')).to.equal('loopback')
    expect(new NeverBan({whiteIp: ['2001:db8::/32'], ignoreSelf: false}).has('2001:db8:7::/64')).to.equal(true)
  })

  it('protects the host\'s own addresses unless ignoreself is off', function () {
    const own = ownAddress()
    if (own === undefined) this.skip()
    expect(new NeverBan().reason(own!)).to.match(/^own address/)
    expect(new NeverBan({ignoreSelf: false}).has(own!)).to.equal(false)
  })

  it('resolves ignoreip host names at start', async () => {
    const nb = new NeverBan({ignoreHosts: ['localhost'], ignoreSelf: false})
    await nb.start()
    try {
      expect(nb.reason('127.0.0.1')).to.equal('ignoreip host localhost')
    } finally {
      nb.stop()
    }
  })

  it('reads ignoreip files at start and re-reads them when they change', async () => {
    const dir = tempTree({'ignore.list': '# trusted\n203.0.113.0/24 # office\n\n2001:db8:9::1, 198.51.100.1\nnot/an/address\n'})
    const file = path.join(dir, 'ignore.list')
    const nb = new NeverBan({ignoreFiles: [file], ignoreSelf: false, fileInterval: 50})
    await nb.start()
    try {
      expect(nb.reason('203.0.113.9')).to.equal(`ignoreip file ${file}:2`)
      expect(nb.has('2001:db8:9::1')).to.equal(true)
      expect(nb.has('198.51.100.1')).to.equal(true)
      expect(nb.has('192.0.2.1')).to.equal(false)
      fs.writeFileSync(file, '192.0.2.0/24\n')
      await waitFor('the changed file to be re-read', () => nb.has('192.0.2.1'))
      expect(nb.has('203.0.113.9')).to.equal(false)
    } finally {
      nb.stop()
    }
  })

  describe('ignorecommand', () => {
    const script = (): {dir: string; cmd: string; out: string} => {
      const dir = tempTree({'check.sh': '#!/bin/sh\nprintf "%s\\n" "$@" >> "$(dirname "$0")/argv.txt"\n[ "$1" = "192.0.2.7" ] && exit 0\nexit 1\n'})
      fs.chmodSync(path.join(dir, 'check.sh'), 0o755)
      return {dir, cmd: path.join(dir, 'check.sh'), out: path.join(dir, 'argv.txt')}
    }

    it('ignores an offender when the command exits 0, bans otherwise', async () => {
      const {cmd, out} = script()
      const nb = new NeverBan({ignoreCommand: `${cmd} <ip> "--jail=<F-USER>"`, ignoreSelf: false})
      expect(nb.hasCommand).to.equal(true)
      expect(await nb.commandIgnores('192.0.2.7', {user: 'bob'})).to.equal(true)
      expect(await nb.commandIgnores('192.0.2.8', {user: 'eve'})).to.equal(false)
      expect(fs.readFileSync(out, 'utf8')).to.equal('192.0.2.7\n--jail=bob\n192.0.2.8\n--jail=eve\n')
    })

    it('passes a hostile id as one inert argument: nothing runs', async () => {
      const {dir, cmd, out} = script()
      const victim = path.join(dir, 'pwned')
      const hostile = [`$(touch ${victim})`, `\`touch ${victim}\``, `x; touch ${victim}`, `x && touch ${victim} #`, `'"; touch ${victim}; "'`]
      const nb = new NeverBan({ignoreCommand: `${cmd} <ip>`, ignoreSelf: false})
      for (const id of hostile) expect(await nb.commandIgnores(id)).to.equal(false)
      expect(fs.existsSync(victim)).to.equal(false)
      expect(fs.readFileSync(out, 'utf8')).to.equal(hostile.map((h) => h + '\n').join(''))
    })

    it('counts a command that hangs or cannot start as "not ignored"', async () => {
      const slow = new NeverBan({ignoreCommand: 'sleep 60', commandTimeout: 300, ignoreSelf: false})
      expect(await slow.commandIgnores('192.0.2.1')).to.equal(false)
      const missing = new NeverBan({ignoreCommand: '/nonexistent/spylog-check <ip>', ignoreSelf: false})
      expect(await missing.commandIgnores('192.0.2.1')).to.equal(false)
    })

    it('splits command lines as a shell reads words, expanding nothing', () => {
      expect(splitCommandLine(`/bin/x 'a b' "c \\"d\\" $HOME" e\\ f <ip>`, 'posix')).to.deep.equal(['/bin/x', 'a b', 'c "d" $HOME', 'e f', '<ip>'])
      expect(() => splitCommandLine(`x 'open`, 'posix')).to.throw(/unterminated/)
    })
  })
})
