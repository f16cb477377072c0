import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {
  builtinActionFor, loadFail2banConfig, parseBool, parseFail2banTime, splitActionList, type Fail2banConfigOptions,
} from '../src/engine/config/fail2ban.js'
import {detectFormat, loadConfig, loadConfigDetailed, platformConfigDir, resolveConfigLocations} from '../src/engine/config/load.js'
import {ConfigErrors, type FileSource, type JournalSource, type SpylogConfig} from '../src/engine/config/model.js'
import {buildFilter} from '../src/engine/filters/build.js'
import {repoRoot} from './support/python.js'
import {tempTree as tree} from './support/files.js'
import {configErrors} from './support/config.js'

const CORPUS = path.resolve(repoRoot, '..', 'shared', 'fail2ban-corpus', 'filter.d')

/** The errors of loading `dir`, as messages with the directory replaced by `<dir>`. */
function errorsOf(dir: string, opts: Fail2banConfigOptions = {}): string[] {
  return configErrors(dir, () => loadFail2banConfig(dir, opts))
}

function rel(dir: string, warnings: readonly string[] | undefined): string[] {
  return (warnings ?? []).map((w) => w.replaceAll(dir + path.sep, '').replaceAll(dir, '<dir>'))
}

// ---------------------------------------------------------------------------------------------
// A small filter of our own: a mode switch (normal/aggressive) and a logtype-dependent prefix.

const MYAPP_FILTER = `
# Test filter for spylog: an application that logs failed logins.
[Init]
mode = normal

[Definition]
lt_file = \\s*myapp\\[\\d+\\]:\\s+
lt_journal =
_pfx = <lt_<logtype>>
mdre-normal = ^<_pfx>login failed for \\S+ from <HOST>$
mdre-aggressive = <mdre-normal>
                  ^<_pfx>probe from <HOST>$
failregex = <mdre-<mode>>
ignoreregex = ^<_pfx>login failed for nobody
datepattern = {^LN-BEG}
`

const HOOK_ACTION = `
# An action with shell commands (no spylog built-in equivalent).
[Definition]
actionstart = touch /run/hook-<target>.on
actionstop = rm -f /run/hook-<target>.on
actioncheck =
actionban = echo ban <ip> >> /var/log/hook-<target>.log
actionunban = echo unban <ip> >> /var/log/hook-<target>.log

[Init]
target = default
`

/** A tree using every layer: jail.conf (+ include), jail.d/*.conf, jail.local, jail.d/*.local. */
function sampleTree(): string {
  return tree({
    'paths-test.conf': `
[DEFAULT]
myapp_log = logs/myapp.log
`,
    'jail.conf': `
[INCLUDES]
before = paths-test.conf

[DEFAULT]
maxretry = 5
findtime = 10m
bantime = 10m
backend = auto
usedns = warn
banaction = nftables-multiport
banaction_allports = nftables-allports
mta = sendmail
protocol = tcp
port = 0:65535
destemail = admin@example.org
sender = spylog@example.org
mode = normal
filter = %(__name__)s[mode=%(mode)s]
action_ = %(banaction)s[port="%(port)s", protocol="%(protocol)s"]
action_mw = %(action_)s
            %(mta)s-whois[dest="%(destemail)s", sender="%(sender)s"]
action_mwl = %(action_)s
             %(mta)s-whois-lines[dest="%(destemail)s", sender="%(sender)s", logpath="%(logpath)s"]
action = %(action_)s

[myapp]
port = 8080
filter = myapp
logpath = %(myapp_log)s

[myapp-strict]
filter = myapp[mode=aggressive]
logpath = %(myapp_log)s
          @DIR@/logs/extra-*.log tail
maxretry = 2
datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S
action = %(action_mwl)s
         hook[target=ops]
         frobnicate

[journald]
filter = myapp
backend = systemd
journalmatch = _SYSTEMD_UNIT=myapp.service + _COMM=myapp
action = ufw custom-thing.py
         frobnicate[x=1]

[disabled-one]
filter = does-not-exist
`,
    'jail.d/10-base.conf': `
[myapp]
enabled = true
maxretry = 4
findtime = 2h

[myapp-strict]
enabled = true
bantime = 2d
`,
    'jail.local': `
[DEFAULT]
bantime = 1h30m
ignoreip = 127.0.0.1/8 ::1, 10.1.2.3/255.255.0.0 trusted.example.org file:ignore.list

[myapp]
maxretry = 6
findtime = 1d
failregex = %(known/failregex)s
            ^too many attempts from <HOST>$

[myapp-strict]
bantime.increment = true
bantime.factor = 2
bantime.multipliers = 1 2 4 8
bantime.maxtime = 5w
bantime.rndtime = 10m
bantime.overalljails = yes
ignoreself = false
ignorecommand = /usr/local/bin/is-friend <ip>

[journald]
enabled = true
`,
    'jail.d/20-override.local': `
[myapp]
maxretry = 7
action = %(action_mw)s
`,
    'filter.d/myapp.conf': MYAPP_FILTER,
    'action.d/hook.conf': HOOK_ACTION,
    'ignore.list': '192.0.2.1\n',
    'logs/myapp.log': '',
    'logs/extra-1.log': '',
  })
}

describe('fail2ban configuration: jail.conf, jail.local, jail.d/', () => {
  let dir: string
  let cfg: SpylogConfig
  before(() => {
    dir = sampleTree()
    cfg = loadFail2banConfig(dir, {platform: 'linux'})
  })

  const jail = (name: string) => {
    const j = cfg.jails.find((x) => x.name === name)
    expect(j, name).to.not.equal(undefined)
    return j!
  }
  const filter = (name: string) => {
    const f = cfg.filters.find((x) => x.name === name)
    expect(f, name).to.not.equal(undefined)
    return f!
  }

  it('reads only the enabled jails (a disabled jail with a missing filter is no error)', () => {
    expect(cfg.jails.map((j) => j.name)).to.deep.equal(['myapp', 'myapp-strict', 'journald'])
    expect(cfg.jails.every((j) => j.enabled)).to.equal(true)
  })

  it('merges jail.conf < jail.d/*.conf < jail.local < jail.d/*.local, section over [DEFAULT]', () => {
    const j = jail('myapp')
    expect(j.maxretry).to.equal(7) // jail.d/20-override.local
    expect(j.findtime).to.equal(86400) // jail.local over jail.d/10-base.conf
    expect(j.bantime).to.equal(5400) // jail.local [DEFAULT] over jail.conf [DEFAULT]
    expect(j.origin.file).to.equal(path.join(dir, 'jail.d', '20-override.local'))
    const s = jail('myapp-strict')
    expect(s.maxretry).to.equal(2) // own option beats [DEFAULT]
    expect(s.bantime).to.equal(2 * 86400) // jail.d/10-base.conf section beats jail.local [DEFAULT]
    expect(s.findtime).to.equal(600) // [DEFAULT] 10m
  })

  it('turns logpath lines into file sources (relative to the tree, globs, tail)', () => {
    const sources = new Map(cfg.sources.map((s) => [s.name, s]))
    const main = sources.get(`file:${path.join(dir, 'logs', 'myapp.log')}`) as FileSource
    expect(main.kind).to.equal('file')
    expect(main.skipExisting).to.equal(false)
    expect(main.backend).to.equal('auto')
    expect(main.implicit).to.equal(true)
    const glob = sources.get(`file:${path.join(dir, 'logs', 'extra-*.log')}`) as FileSource
    expect(glob.path).to.equal(path.join(dir, 'logs', 'extra-*.log'))
    expect(glob.skipExisting).to.equal(true)
    expect(filter('myapp').sources).to.deep.equal([main.name])
    expect(filter('myapp-strict').sources).to.deep.equal([main.name, glob.name])
  })

  it('reads the journal for backend = systemd, with journalmatch alternatives', () => {
    const f = filter('journald')
    expect(f.sources).to.have.length(1)
    const src = cfg.sources.find((s) => s.name === f.sources[0]) as JournalSource
    expect(src.kind).to.equal('journal')
    expect(src.match).to.deep.equal([['_SYSTEMD_UNIT=myapp.service'], ['_COMM=myapp']])
    expect(f.fail2ban?.journalmatch).to.deep.equal(['_SYSTEMD_UNIT=myapp.service + _COMM=myapp'])
  })

  it('passes filter options (mode) and the backend\'s logtype to filter.d', () => {
    expect(filter('myapp-strict').failregex).to.have.length(2)
    expect(filter('myapp-strict').failregex[1]).to.contain('probe from <HOST>')
    expect(filter('myapp-strict').failregex[0]).to.contain('myapp\\[\\d+\\]')
    expect(filter('journald').failregex).to.deep.equal(['^login failed for \\S+ from <HOST>$'])
    expect(filter('journald').ignoreregex).to.deep.equal(['^login failed for nobody'])
    for (const f of cfg.filters) expect(f.engine).to.equal('fail2ban')
  })

  it('lets a jail replace or extend filter options (%(known/failregex)s, datepattern)', () => {
    const f = filter('myapp')
    expect(f.failregex).to.have.length(2)
    expect(f.failregex[0]).to.contain('login failed')
    expect(f.failregex[1]).to.equal('^too many attempts from <HOST>$')
    expect(f.fieldOrigins?.failregex?.file).to.equal(path.join(dir, 'jail.local'))
    expect(filter('myapp-strict').fail2ban?.datepattern).to.equal('^%Y-%m-%d %H:%M:%S')
    expect(filter('myapp').fail2ban?.datepattern).to.equal('{^LN-BEG}')
  })

  it('builds working filters', () => {
    const f = buildFilter(filter('myapp'))
    const r = f.processLine('2024-05-01 10:00:00 myapp[42]: login failed for bob from 192.0.2.7')
    expect(r.matches.map((m) => m.id)).to.deep.equal(['192.0.2.7'])
    expect(f.processLine('2024-05-01 10:00:01 myapp[42]: login failed for nobody from 192.0.2.8').matches).to.deep.equal([])
  })

  it('reads ignoreip addresses, networks, dotted masks, host names and file: lists; ignoreself; ignorecommand', () => {
    const j = jail('myapp')
    expect(j.ignoreIp).to.deep.equal(['127.0.0.0/8', '::1', '10.1.0.0/16'])
    expect(j.ignoreHosts).to.deep.equal(['trusted.example.org'])
    expect(j.ignoreFiles).to.deep.equal([path.join(dir, 'ignore.list')])
    expect(j.ignoreSelf).to.equal(true)
    expect(jail('myapp-strict').ignoreSelf).to.equal(false)
    expect(jail('myapp-strict').ignoreCommand).to.equal('/usr/local/bin/is-friend <ip>')
  })

  it('reads bantime.increment and its options', () => {
    expect(jail('myapp-strict').banTimeIncrement).to.deep.equal({
      enabled: true, factor: 2, formula: undefined, multipliers: [1, 2, 4, 8], maxtime: 5 * 7 * 86400, rndtime: 600, overalljails: true,
    })
    expect(jail('myapp').banTimeIncrement).to.equal(undefined)
  })

  it('maps the action_ / action_mw / action_mwl shortcuts to built-in firewall and mail actions', () => {
    expect(jail('myapp').actions.map((a) => a.name)).to.deep.equal(['nftables-multiport', 'sendmail-whois'])
    expect(jail('myapp').actions[0]!.parameters).to.deep.equal({port: '8080', protocol: 'tcp'})
    expect(jail('myapp').actions[1]!.parameters).to.deep.equal({dest: 'admin@example.org', sender: 'spylog@example.org'})
    expect(jail('myapp-strict').actions.map((a) => a.name)).to.deep.equal(['nftables-multiport', 'sendmail-whois-lines', 'hook'])
    expect(jail('myapp-strict').actions[1]!.parameters?.logpath).to.equal(`logs/myapp.log\n${dir}/logs/extra-*.log tail`)
    expect(jail('journald').actions.map((a) => a.name)).to.deep.equal(['ufw'])
    const actions = new Map(cfg.actions.map((a) => [a.name, a]))
    expect(actions.get('nftables-multiport')!.builtin).to.deep.equal({kind: 'firewall', variant: 'nftables', features: ['multiport']})
    expect(actions.get('nftables-multiport')!.ban).to.deep.equal({kind: 'module', module: 'spylog.actions.firewall'})
    expect(actions.get('sendmail-whois-lines')!.builtin).to.deep.equal({kind: 'mail', variant: 'sendmail', features: ['whois', 'lines']})
    expect(actions.get('sendmail-whois')!.unban).to.equal(undefined)
    expect(actions.get('ufw')!.builtin?.variant).to.equal('ufw')
  })

  it('runs an action.d file without a built-in equivalent as commands', () => {
    const hook = cfg.actions.find((a) => a.name === 'hook')!
    expect(hook.builtin).to.equal(undefined)
    expect(hook.ban).to.deep.equal({kind: 'command', command: 'echo ban <ip> >> /var/log/hook-<target>.log'})
    expect(hook.unban).to.deep.equal({kind: 'command', command: 'echo unban <ip> >> /var/log/hook-<target>.log'})
    expect(hook.start).to.equal('touch /run/hook-<target>.on')
    expect(hook.stop).to.equal('rm -f /run/hook-<target>.on')
    expect(hook.check).to.equal(undefined)
    expect(hook.parameters).to.deep.equal({target: 'default'})
    expect(jail('myapp-strict').actions[2]!.parameters).to.deep.equal({target: 'ops'})
  })

  it('gives one warning per unmapped action, naming it and every jail using it', () => {
    const w = rel(dir, cfg.warnings)
    expect(w.filter((x) => x.includes('"frobnicate"'))).to.have.length(1)
    expect(w.find((x) => x.includes('"frobnicate"'))).to.match(/jails "myapp-strict", "journald"\) is unknown/)
    expect(w.filter((x) => x.includes('"hook"'))).to.deep.equal([
      'jail.conf:38: action: action "hook" (jail "myapp-strict") has no spylog built-in equivalent: spylog runs the commands of action.d/hook.conf instead, as fail2ban would',
    ])
    expect(w.filter((x) => x.includes('custom-thing.py'))).to.have.length(1)
    expect(w.find((x) => x.includes('custom-thing.py'))).to.contain('Python action')
    expect(w).to.have.length(3)
  })
})

describe('fail2ban values', () => {
  it('reads fail2ban time expressions', () => {
    const cases: [string, number][] = [
      ['600', 600], ['10m', 600], ['1h', 3600], ['1d', 86400], ['1w', 604800], ['1h30m', 5400], ['1h 30m', 5400],
      ['1d12h', 129600], ['2 days', 172800], ['90s', 90], ['5 minutes', 300], ['1mo', 2629800], ['1y', 31557600],
      ['-1', -1], ['1h-10m', 3000], ['2*1d', 172800], ['(1h+1h)*2', 14400], ['1.5h', 5400], ['1H', 3600], ['10 20', 30],
    ]
    for (const [t, v] of cases) expect(parseFail2banTime(t), t).to.equal(v)
    for (const t of ['', 'abc', '10x', '1h+', '(1h', '5/0', '10 mins']) expect(parseFail2banTime(t), t).to.have.property('error')
    expect(parseFail2banTime('10mins')).to.deep.equal({error: 'unknown time unit "mins"; did you mean min? (units: s, m, h, d, w, mo, y)'})
  })

  it('reads configparser booleans', () => {
    for (const t of ['true', 'Yes', 'on', '1']) expect(parseBool(t)).to.equal(true)
    for (const t of ['false', 'NO', 'off', '0']) expect(parseBool(t)).to.equal(false)
    expect(parseBool('maybe')).to.equal(undefined)
  })

  it('maps action names to built-in kinds', () => {
    expect(builtinActionFor('iptables-allports')).to.deep.equal({kind: 'firewall', variant: 'iptables', features: ['allports']})
    expect(builtinActionFor('iptables-ipset-proto6-allports')?.variant).to.equal('ipset')
    expect(builtinActionFor('ip6tables-multiport')?.kind).to.equal('firewall')
    expect(builtinActionFor('firewallcmd-rich-rules')).to.deep.equal({kind: 'firewall', variant: 'firewalld', features: ['rich', 'rules']})
    expect(builtinActionFor('nftables')).to.deep.equal({kind: 'firewall', variant: 'nftables', features: []})
    expect(builtinActionFor('ipset')?.variant).to.equal('ipset')
    expect(builtinActionFor('ufw')?.variant).to.equal('ufw')
    expect(builtinActionFor('mail-whois-lines')).to.deep.equal({kind: 'mail', variant: 'mail', features: ['whois', 'lines']})
    expect(builtinActionFor('sendmail-buffered')?.kind).to.equal('mail')
    expect(builtinActionFor('smtp.py')?.kind).to.equal('mail')
    for (const n of ['route', 'hostsdeny', 'dummy', 'abuseipdb', 'shorewall', 'xarf-login-attack', 'iptablesx']) expect(builtinActionFor(n), n).to.equal(undefined)
  })

  it('splits action lists', () => {
    expect(splitActionList('a[x=1]\n  b[y="p, q]"] c\n\nd [z=\'1\'][w=2]')).to.deep.equal(['a[x=1]', 'b[y="p, q]"]', 'c', 'd [z=\'1\'][w=2]'])
    expect(splitActionList('m[logpath="/a\n/b"]')).to.deep.equal(['m[logpath="/a\n/b"]'])
  })
})

describe('fail2ban configuration errors', () => {
  it('suggests the closest option, filter, backend, unit', () => {
    const dir = tree({
      'jail.local': `
[DEFAULT]
maxretyr = 3
webroot = /srv/www
my_ports = 22,2222

[app]
enabled = true
filter = sshdd
backend = systemdd
logpath = /var/log/app.log
bantime = 10mins
bantime.multiplers = 1 2 4

[other]
enable = true
`,
      'filter.d/sshd.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n',
    })
    expect(errorsOf(dir)).to.deep.equal([
      'jail.local:3: [DEFAULT] maxretyr: unknown option "maxretyr"; did you mean maxretry?',
      'jail.local:9: [app] filter: no filter "sshdd": filter.d/sshdd.conf (or .local) does not exist; did you mean sshd?',
      'jail.local:10: [app] backend: expected auto, polling, pyinotify, gamin, systemd, got "systemdd"; did you mean systemd?',
      'jail.local:12: [app] bantime: expected a time: seconds or a number with a unit (10m, 1h, 1d, 1w, 1h30m), got "10mins": unknown time unit "mins"; did you mean min? (units: s, m, h, d, w, mo, y)',
      'jail.local:13: [app] bantime.multiplers: unknown option "bantime.multiplers"; did you mean bantime.multipliers?',
      'jail.local:16: [other] enable: unknown option "enable"; did you mean enabled?',
    ])
  })

  it('reports several errors of several jails and files together, in file order', () => {
    const dir = tree({
      'jail.conf': `
[DEFAULT]
findtime = 0
maxretry = 3

[a]
filter = f
logpath = /var/log/a.log
`,
      'jail.local': `
[a]
enabled = true
maxretry = many
ignoreip = 127.0.0.1 10.0.0.300 192.0.2.0/33
usedns = maybe
logencoding = klingon
logtimezone = Mars/Olympus

[b]
enabled = yes please
`,
      'jail.d/c.local': `
[c]
enabled = true
filter = f[mode=x
logpath = /var/log/c.log
maxlines = 0
`,
      'filter.d/f.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n           ^broken ( from <HOST>$\n',
    })
    const errs = errorsOf(dir)
    expect(errs).to.deep.equal([
      'jail.conf:3: [DEFAULT] findtime: expected a time > 0, got "0"',
      'jail.local:4: [a] maxretry: expected a whole number ≥ 1, got "many"',
      'jail.local:5: [a] ignoreip: expected IP addresses, networks (192.0.2.0/24, 10.0.0.0/255.0.0.0, 2001:db8::/32), host names or file:PATH, separated by spaces or commas; got "10.0.0.300"',
      'jail.local:5: [a] ignoreip: expected IP addresses, networks (192.0.2.0/24, 10.0.0.0/255.0.0.0, 2001:db8::/32), host names or file:PATH, separated by spaces or commas; got "192.0.2.0/33"',
      'jail.local:6: [a] usedns: expected yes, warn, no, raw, got "maybe"',
      'jail.local:7: [a] logencoding: unknown encoding "klingon" (expected auto, utf-8, latin1, cp1251, …)',
      errs[6]!,
      'jail.local:11: [b] enabled: expected true or false (also yes/no, on/off, 1/0), got "yes please"',
      errs[8]!,
      'jail.d/c.local:6: [c] maxlines: expected a whole number ≥ 1, got "0"',
      errs[10]!,
    ])
    expect(errs[6]).to.match(/^jail\.local:8: \[a\] logtimezone: .*Mars\/Olympus/)
    expect(errs[8]).to.match(/^jail\.d\/c\.local:4: \[c\] filter: .*f\[mode=x/)
    expect(errs[10]).to.match(/^filter\.d\/f\.conf:2: failregex: .*broken/)
  })

  it('reports a missing logpath, and falls back to the journal for backend = auto', () => {
    const base = {'filter.d/f.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n'}
    const auto = tree({...base, 'jail.local': '[a]\nenabled = true\nfilter = f\n'})
    const cfg = loadFail2banConfig(auto)
    expect(cfg.sources.map((s) => s.kind)).to.deep.equal(['journal'])
    expect(rel(auto, cfg.warnings)).to.deep.include('jail.local:1: [a] logpath: no logpath: backend auto reads the systemd journal instead (as fail2ban does with systemd_if_nologs)')
    const polling = tree({...base, 'jail.local': '[a]\nenabled = true\nfilter = f\nbackend = polling\n'})
    expect(errorsOf(polling)).to.deep.equal(['jail.local:1: [a] logpath: missing: the log file(s) this jail reads (logpath = /var/log/…, globs allowed), or backend = systemd'])
    const skip = tree({...base, 'jail.local': '[a]\nenabled = true\nfilter = f\nbackend = polling\nskip_if_nologs = true\n'})
    expect(loadFail2banConfig(skip).jails).to.deep.equal([])
  })

  it('warns about log files that do not exist, and accepts user variables', () => {
    const dir = tree({
      'jail.local': '[DEFAULT]\nwebroot = /srv/www\n\n[a]\nenabled = true\nfilter = f\nlogpath = %(webroot)s/missing.log\nmy_custom_thing = 1\n',
      'filter.d/f.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n',
    })
    const cfg = loadFail2banConfig(dir)
    expect(rel(dir, cfg.warnings)).to.include('jail.local:7: [a] logpath: no file matches "/srv/www/missing.log" (yet)')
    expect(loadFail2banConfig(dir, {checkLogFiles: false}).warnings?.some((w) => w.includes('no file matches'))).to.equal(false)
  })

  it('refuses a directory that is not a fail2ban tree', () => {
    const dir = tree({'README': 'nothing here'})
    expect(errorsOf(dir)).to.deep.equal(['<dir>: not a fail2ban configuration directory (no jail.conf, jail.local or jail.d/)'])
    expect(errorsOf(path.join(dir, 'nope'))).to.deep.equal(['<dir>: fail2ban configuration directory not found'])
  })

  it('supplies jail.conf\'s [DEFAULT] variables when the tree has only a jail.local', () => {
    const dir = tree({
      'jail.local': '[app]\nenabled = true\nlogpath = /var/log/app.log\naction = %(action_mwl)s\n',
      'filter.d/app.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n',
    })
    const cfg = loadFail2banConfig(dir, {checkLogFiles: false})
    expect(cfg.jails[0]!.filters).to.deep.equal(['app'])
    expect(cfg.jails[0]!.actions.map((a) => a.name)).to.deep.equal(['iptables-multiport', 'sendmail-whois-lines'])
    expect(cfg.jails[0]!.maxretry).to.equal(3)
    expect(cfg.jails[0]!.findtime).to.equal(600)
    expect(cfg.jails[0]!.bantime).to.equal(600)
  })
})

describe('fail2ban configuration with the corpus sshd filter', function () {
  before(function () {
    if (!fs.existsSync(path.join(CORPUS, 'sshd.conf'))) this.skip()
  })

  it('loads sshd.conf with mode options for a file jail and a journal jail', () => {
    // fail2ban's filter files are read at run time from the corpus (never copied into the repository).
    const dir = tree({
      'jail.local': `
[sshd]
enabled = true
filter = sshd[mode=aggressive]
logpath = @DIR@/auth.log
maxretry = 3
bantime = -1

[sshd-journal]
enabled = true
filter = sshd
backend = systemd
`,
      'auth.log': '',
    })
    fs.mkdirSync(path.join(dir, 'filter.d'))
    for (const f of ['sshd.conf', 'common.conf']) fs.copyFileSync(path.join(CORPUS, f), path.join(dir, 'filter.d', f))
    const cfg = loadFail2banConfig(dir)
    const file = cfg.filters.find((f) => f.name === 'sshd')!
    const journal = cfg.filters.find((f) => f.name === 'sshd-journal')!
    expect(file.failregex.length).to.be.greaterThan(journal.failregex.length) // aggressive adds the ddos/extra regexes
    expect(cfg.jails.find((j) => j.name === 'sshd')!.bantime).to.equal(-1)
    const jsrc = cfg.sources.find((s) => s.name === journal.sources[0]) as JournalSource
    expect(jsrc.kind).to.equal('journal')
    expect(jsrc.match.flat()).to.include('_SYSTEMD_UNIT=sshd.service')
    const f = buildFilter(file, {now: () => Date.UTC(2024, 5, 1) / 1000})
    const r = f.processLine('Jan  1 10:00:00 host sshd[123]: Failed password for root from 192.0.2.7 port 22 ssh2')
    expect(r.matches.map((m) => [m.id, m.data.user])).to.deep.equal([['192.0.2.7', 'root']])
  })
})

// ---------------------------------------------------------------------------------------------
// Where the configuration comes from

const LUA_TREE = {
  'spylog.lua': '',
  'filters/app.lua': 'FILTER{"lua-app", enabled = true, source = "file:/var/log/app.log", failregex = "bad login from (%d+%.%d+%.%d+%.%d+)"}\n',
  'jails/app.lua': 'JAIL{"lua-app", filter = "lua-app", findtime = 60, maxretry = 3}\n',
}
const F2B_TREE = {
  'jail.local': '[web]\nenabled = true\nfilter = web\nlogpath = /var/log/app.log\n',
  'filter.d/web.conf': '[Definition]\nfailregex = ^bad login from <HOST>$\n',
}

describe('configuration location (load.ts)', () => {
  it('uses --config, then SPYLOG_CONFIG, then the platform directory, then the packaged one', () => {
    const a = tree(LUA_TREE)
    const b = tree(F2B_TREE)
    const none = path.join(a, 'does-not-exist')
    const where = (o: Parameters<typeof resolveConfigLocations>[0]) => resolveConfigLocations(o).map((l) => [l.dir, l.format, l.from])
    expect(where({config: a, env: {SPYLOG_CONFIG: b}})).to.deep.equal([[a, 'lua', '--config']])
    expect(where({env: {SPYLOG_CONFIG: b}, platformDir: a})).to.deep.equal([[b, 'fail2ban', 'SPYLOG_CONFIG']])
    expect(where({env: {}, platformDir: a, packagedDir: b})).to.deep.equal([[a, 'lua', 'platform default']])
    expect(where({env: {}, platformDir: none, packagedDir: b})).to.deep.equal([[b, 'fail2ban', 'packaged']])
    expect(() => resolveConfigLocations({config: none})).to.throw(ConfigErrors, /configuration directory not found \(from --config\)/)
    expect(() => resolveConfigLocations({env: {SPYLOG_CONFIG: none}})).to.throw(ConfigErrors, /from SPYLOG_CONFIG/)
  })

  it('knows the platform default directories', () => {
    expect(platformConfigDir('linux', {})).to.equal('/etc/spylog')
    expect(platformConfigDir('win32', {ProgramData: 'D:\\Data'})).to.equal('D:\\Data\\spylog')
    expect(platformConfigDir('win32', {})).to.equal('C:\\ProgramData\\spylog')
  })

  it('detects the format of a directory', () => {
    expect(detectFormat(tree(LUA_TREE))).to.equal('lua')
    expect(detectFormat(tree(F2B_TREE))).to.equal('fail2ban')
  })

  it('reads --fail2ban instead of the lookup, or merged with an explicit --config', () => {
    const lua = tree(LUA_TREE)
    const f2b = tree(F2B_TREE)
    const only = loadConfigDetailed({fail2ban: f2b, env: {SPYLOG_CONFIG: lua}, fail2banOptions: {checkLogFiles: false}})
    expect(only.locations.map((l) => l.from)).to.deep.equal(['--fail2ban'])
    expect(only.config.jails.map((j) => j.name)).to.deep.equal(['web'])
    const both = loadConfig({config: lua, fail2ban: f2b, fail2banOptions: {checkLogFiles: false}})
    expect(both.jails.map((j) => j.name)).to.deep.equal(['lua-app', 'web'])
    // both read /var/log/app.log: the fail2ban source is renamed, its filter follows
    expect(both.sources.map((s) => s.name)).to.deep.equal(['file:/var/log/app.log', 'file:/var/log/app.log#fail2ban'])
    expect(both.filters.find((f) => f.name === 'web')!.sources).to.deep.equal(['file:/var/log/app.log#fail2ban'])
    expect(both.configDir).to.equal(lua)
  })

  it('reports a name defined by both configurations', () => {
    const lua = tree(LUA_TREE)
    const f2b = tree({...F2B_TREE, 'jail.local': '[lua-app]\nenabled = true\nfilter = web\nlogpath = /var/log/x.log\n'})
    expect(() => loadConfig({config: lua, fail2ban: f2b, fail2banOptions: {checkLogFiles: false}})).to.throw(ConfigErrors, /filter "lua-app" is also defined at [\s\S]*jail "lua-app" is also defined at/)
  })
})

// ---------------------------------------------------------------------------------------------
// spylog config check

/** Rebuilds dist/ when a source file is newer than the compiled command. */
function ensureBuilt(): void {
  const out = path.join(repoRoot, 'dist', 'src', 'commands', 'config', 'check.js')
  const newest = (d: string): number => Math.max(0, ...fs.readdirSync(d, {recursive: true, encoding: 'utf8'})
    .filter((f) => f.endsWith('.ts')).map((f) => fs.statSync(path.join(d, f)).mtimeMs))
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= newest(path.join(repoRoot, 'src'))) return
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(repoRoot, 'tsconfig.json')], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`)
}

function spylog(...args: string[]): {status: number | null; stdout: string; stderr: string} {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1', SPYLOG_CONFIG: ''}})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

describe('spylog config check', function () {
  this.timeout(180_000)
  before(ensureBuilt)

  it('prints the resolved configuration as tables (no colour when not on a terminal)', () => {
    const dir = sampleTree()
    const r = spylog('config', 'check', '--fail2ban', dir)
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout).to.contain(`configuration: ${dir} (fail2ban, from --fail2ban)`)
    for (const h of ['Sources (3)', 'Filters (3)', 'Jails (3)', 'Actions (5)']) expect(r.stdout, r.stdout).to.contain(h)
    expect(r.stdout).to.match(/│ myapp-strict\s+│ myapp-strict\s+│ 2\s+│ 10m\s+│ 2d, increasing \(×1,2,4,8, max 5w\)/)
    expect(r.stdout).to.match(/│ nftables-multiport\s+│ firewall \(nftables\)/)
    expect(r.stdout).to.match(/│ hook\s+│ commands/)
    expect(r.stdout).to.match(/warning: .*action "frobnicate"/)
    expect(r.stdout).to.match(/valid: 3 sources, 3 filters, 3 jails, 5 actions, 3 warnings\n$/)
    // eslint-disable-next-line no-control-regex
    expect(r.stdout).to.not.match(/\u001b\[/)
  })

  it('prints JSON', () => {
    const dir = sampleTree()
    const r = spylog('config', 'check', '--fail2ban', dir, '--json')
    expect(r.status, r.stderr).to.equal(0)
    const doc = JSON.parse(r.stdout) as {valid: boolean; locations: {dir: string}[]; warnings: string[]; config: SpylogConfig}
    expect(doc.valid).to.equal(true)
    expect(doc.locations[0]!.dir).to.equal(dir)
    expect(doc.warnings).to.have.length(3)
    expect(doc.config.jails.map((j) => j.name)).to.deep.equal(['myapp', 'myapp-strict', 'journald'])
  })

  it('reads --config (a Lua directory) with --fail2ban', () => {
    const r = spylog('config', 'check', '--config', tree(LUA_TREE), '--fail2ban', tree(F2B_TREE))
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout, r.stdout).to.match(/valid: 2 sources, 2 filters, 2 jails, 1 action, 1 warning/)
  })

  it('exits 2 with every error, one per line, no stack trace', () => {
    const dir = tree({
      'jail.local': '[a]\nenabled = true\nfilter = nope\nlogpath = /var/log/a.log\nmaxretry = x\nfindtime = soon\n',
    })
    const r = spylog('config', 'check', '--fail2ban', dir)
    expect(r.status).to.equal(2)
    expect(r.stdout).to.equal('')
    const local = path.join(dir, 'jail.local')
    expect(r.stderr.split('\n')).to.deep.equal([
      `error: ${local}:3: [a] filter: no filter "nope": ${path.join(dir, 'filter.d', 'nope')}.conf (or .local) does not exist`,
      `error: ${local}:5: [a] maxretry: expected a whole number ≥ 1, got "x"`,
      `error: ${local}:6: [a] findtime: expected a time: seconds or a number with a unit (10m, 1h, 1d, 1w, 1h30m), got "soon": unexpected "soon"`,
      '3 configuration errors',
      '',
    ])
    const j = spylog('config', 'check', '--fail2ban', dir, '--json')
    expect(j.status).to.equal(2)
    const doc = JSON.parse(j.stdout) as {valid: boolean; errors: {file: string; line: number; field: string}[]}
    expect(doc.valid).to.equal(false)
    expect(doc.errors.map((e) => [e.line, e.field])).to.deep.equal([[3, '[a] filter'], [5, '[a] maxretry'], [6, '[a] findtime']])
  })

  it('reports a missing --config directory', () => {
    const r = spylog('config', 'check', '--config', path.join(os.tmpdir(), 'spylog-no-such-dir'))
    expect(r.status).to.equal(2)
    expect(r.stderr).to.match(/^error: .*spylog-no-such-dir: configuration directory not found \(from --config\)\n/)
  })
})

describe('fail2ban logtimezone reaches the filter', () => {
  it('reads dates without a zone in the jail\'s logtimezone', async () => {
    const {buildFilter} = await import('../src/engine/filters/build.js')
    const cfg = {
      name: 'tz', origin: {file: 'jail.local', line: 1}, enabled: true, sources: [], engine: 'fail2ban' as const,
      failregex: ['^ denied <HOST>$'], ignoreregex: [], stop: false, cfilter: [],
      fail2ban: {maxlines: 1, usedns: 'warn', timezone: 'UTC+0200'},
    }
    const f = buildFilter(cfg as never, {now: () => Date.UTC(2024, 4, 20) / 1000})
    const m = f.processLine('2024-05-14 10:00:00 denied 192.0.2.1').matches[0]
    expect(m.time).to.equal(Date.UTC(2024, 4, 14, 8, 0, 0) / 1000)
  })
})
