import {expect} from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {configFiles, decodeFile, evaluateLuaConfig, loadLuaConfig, parseDuration, type LuaConfigOptions} from '../src/engine/config/lua.js'
import {canonicalNetwork, closestName, levenshtein, type FileSource, type SpylogConfig} from '../src/engine/config/model.js'
import {tempTree as tree} from './support/files.js'
import {configErrors} from './support/config.js'

/** The errors of loading `dir`, as messages with the directory replaced by `<dir>`. */
function errorsOf(dir: string, opts: LuaConfigOptions = {}): string[] {
  return configErrors(dir, () => loadLuaConfig(dir, opts))
}

/** cp1251 bytes of a string made of ASCII and Russian letters. */
function cp1251(s: string): Uint8Array {
  const out: number[] = []
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (c < 0x80) out.push(c)
    else if (c >= 0x410 && c <= 0x44f) out.push(0xc0 + c - 0x410)
    else if (c === 0x401) out.push(0xa8)
    else if (c === 0x451) out.push(0xb8)
    else throw new Error(`no cp1251 byte for ${ch}`)
  }
  return Uint8Array.from(out)
}

// ---------------------------------------------------------------------------------------------
// A configuration directory written the way lua-spylog's README and sample config/ are
// (main file with WHITE_IP, global JAIL defaults, LOG, CONNECT; sources, filters, jails and actions
// in their directories).

const SAMPLE: Record<string, string> = {
  'spylog.lua': `
-- Hosts that are never banned (filters opt in with exclude = WHITE_IP).
WHITE_IP{
  "192.0.2.10";
  "198.51.100.0/24";
}

FILTER{
}

JAIL{
  purge_interval = 15;

  default = {
    findtime = 120;
    parameters = {
      site = "branch-1";
    };
  };
}

ACTION{
}

LOG{
  level = "trace";
  file = {
    log_dir        = "./logs",
    log_name       = "events.log",
    max_size       = 5 * 1024 * 1024,
    close_file     = false,
    flush_interval = 2,
    reuse          = true,
  },
  zmq = "tcp://127.0.0.1:7060"
};

CONNECT{ FILTER = {
    JAIL = { type = 'bind'; address = 'tcp://127.0.0.1:7555'; };
  }
}

CONNECT{ JAIL = {
    FILTER = { type = 'connect'; address = 'tcp://127.0.0.1:7555'; };
    ACTION = { type = 'bind';    address = 'tcp://127.0.0.1:7556'; };
  }
}

CONNECT{ ACTION = {
    JAIL = { type = 'connect'; address = 'tcp://127.0.0.1:7556'; };
  }
}
`,
  'sources/pbx.lua': `
-- The PBX log through its event socket.
SOURCE{"pbx",
  "esl:hunter2@203.0.113.20:8021",
  level = 'WARNING';
}
`,
  'sources/relay.lua': `
SOURCE{ "relay",
  "net:udp://127.0.0.1:6514",
}

SOURCE{"portal", "file:/srv/portal/events.log", poll = 30, max_line = 16 * 1024}
SOURCE{"winapp", "file:c:/App/LOG/events.log"}
SOURCE{"pbx-local", "esl:127.0.0.1"}
`,
  'sources/sniffer.lua': `
local sniffer = 'process:/usr/bin/sniffer'
local common = '-l -T fields -e time -e ip.src -e sip.Method '

SOURCE{"sniffer-requests", sniffer;
  args    = common .. '-Y "sip.Request-Line"';
  restart = 5;
  monitor = 'stdout';
  eol     = {'\\r\\n', false};
}
`,
  'filters/pbx.lua': `
FILTER{ "pbx-auth-fail";
  enabled = true;
  source  = "pbx";
  exclude = WHITE_IP;
  hint    = "[WARNING]";
  failregex = {
    "^(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+) %[WARNING%] registrar.c:%d+ auth failed for %[.-%] from ip ([0-9.]+)%s*$";
    "^(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+) %[WARNING%] acl.c:%d+ IP ([0-9.]+) rejected by list \\"[^\\"]*\\"%s*$";
  }
};

FILTER{ "pbx-ip-request";
  enabled = true;
  source  = "pbx";
  exclude = WHITE_IP;
  hint    = "[WARNING]";
  engine  = 'pcre';
  failregex = {
    [[^(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d+) \\[WARNING\\] registrar.c:\\d+ auth (?:challenge|failure) for \\[.*?@\\d+\\.\\d+\\.\\d+\\.\\d+\\] from ip ([0-9.]+)\\s*$]]
  }
}
`,
  'filters/portal.lua': `
FILTER{ "portal-login";
  enabled   = true;
  source    = "portal";
  hint      = "login failed";
  failregex = {
    "^(%S+ %S+) login failed user=(%S*) ip=(%S+)";
    "^(%S+ %S+) login failed ip=(%S+) account=(%d+)";
  };
  capture = {
    {'date', 'user', 'host'};
    {'date', 'host', 'number'};
  };
  date_format = '%Y-%m-%d %H:%M:%S';
  ignoreregex = "user=monitor ";
};

FILTER{ "portal-f2b";
  enabled   = true;
  source    = {"file:logs/portal-api.log", poll = 5};
  engine    = 'fail2ban';
  failregex = [[api token rejected for <F-USER>\\S+</F-USER> from <HOST>]];
  datepattern = '^%Y-%m-%d %H:%M:%S';
};
`,
  'filters/windows.lua': `
FILTER{ "logon-fail";
  enabled = false;
  source  = "trap:udp://127.0.0.1";
  exclude = WHITE_IP;
  trap    = {529, 4625};
  failregex = "Source Network Address:%s+([0-9.]+)";
};

FILTER{ "php-auth";
  enabled = false;
  source  = "eventlog:udp://127.0.0.1";
  events  = {'PHP-*', 3};
  failregex = "WebApp %[([0-9.]+)%] authentication failed";
};

FILTER{ "relay-logon";
  enabled = false;
  source  = "relay";
  hint    = "EventID: 140;";
  failregex = "^EventID: 140; A connection from the client computer with an IP address of ([%d%.:]+)";
};

FILTER{ "web-syslog";
  source  = "syslog:udp://127.0.0.1:5514";
  failregex = "denied access to http://([0-9.]-)/admin";
};

FILTER{ "sniffer-scan";
  enabled = true;
  source  = "sniffer-requests";
  stop    = true;
  failregex = '^(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+)\\t([0-9.]+)\\tOPTIONS';
};
`,
  'jails/voip.lua': `
local SECOND = 1
local MINUTE = 60 * SECOND
local HOUR   = 60 * MINUTE
local DAY    = 24 * HOUR

JAIL{"voip-auth-fail";
  enabled  = true;
  filter   = {"pbx-auth-fail"};
  findtime = 10 * MINUTE;
  maxretry = 3;
  bantime  = 24 * HOUR;
  action   = {"netsh",  {"mail", {unban = false}}};
}

JAIL{"voip-ip-request";
  filter   = "pbx-ip-request";
  maxretry = 1;
  bantime  = 7 * DAY;
  rndtime  = HOUR;
  action   = {"netsh", {"report", {category = 'sip'}}};
  counter  = {type = 'fixed', value = 'weight'};
}
`,
  'jails/access.lua': `
JAIL{"fail-access";
  enabled  = true;
  filter   = {"logon-fail", "php-auth", "portal-login", "portal-f2b"};
  findtime = 300;
  maxretry = 4;
  bantime  = 600;
  action   = "netsh";
  parameters = { note = "%{filter} on %{site}" };
  counter  = {type = 'accumulate', capture = 'host', value = 'weight', time = 'filter', resolution = 10};
  cfilter  = {
    {'acl', type = 'deny', filter = {'203.0.113.0/24'}};
    {'list', capture = 'user', filter = {'Admin', 'root'}, nocase = true, type = 'allow'};
    {'prefix', capture = 'number', prefix = {'7495', '7499'}};
    {'regex', capture = 'user', filter = {'^test%d+$'}};
    {'geoip', filter = {'ru', 'by', continent = 'EU'}, cache = 1000};
  };
}
`,
  'actions/netsh.lua': `
-- Block with IPsec filters.
ACTION{"netsh",
  ban   = 'netsh ipsec static add filter filterlist=Spylog srcaddr=<HOST> dstaddr=me description="<DATE> <FILTER> <JAIL> <BANTIME>"';
  unban = 'netsh ipsec static delete filter filterlist=Spylog srcaddr=<HOST> dstaddr=me';
  unique = "netsh <HOST>";
  options = {
    timeout = 10000;
  }
};
`,
  'actions/notify.lua': `
ACTION{"mail",
  ban   = { "@spylog.actions.mail", [["Spylog ban <HOST>" "
    Filter: <FILTER>
    Jail:   <JAIL>
  "]]};
  unban = { "@spylog.actions.mail", [["Spylog unban <HOST>" "<MSG>"]]};
  options = {
    server = { address = "smtp.example.org"; user = "spylog@example.org"; password = "secret" },
    from = { title = "Spylog"; address = "spylog@example.org" },
    to = { title = "Admin"; address = "admin@example.org" },
  }
};

local rule = 'netsh advfirewall firewall add rule dir=in action=block ' ..
             'name="Spylog <UUID>" remoteip="<HOST>/<NET>" localport="<PORT>" protocol="<PROTOCOL>"'

ACTION{"firewall",
  ban        = rule;
  unban      = 'netsh advfirewall firewall delete rule name="Spylog <UUID>"';
  parameters = { net = '32'; port = 'any'; protocol = 'any' };
  options    = { timeout = 10000 };
}

ACTION{"report",
  ban = 'curl --fail https://reports.example.org/add/<category>/<host>';
  parameters = { category = 'ssh' };
};

ACTION{"blocklist",
  ban   = { [[c:\\tools\\block.exe]], "add=<HOST>,255.255.255.255,<JAIL>"};
  unban = { [[c:\\tools\\block.exe]], "remove=<HOST>,255.255.255.255", unique = "block <HOST>" };
}
`,
}

describe('config: lua-spylog directories', () => {
  let dir: string
  let cfg: SpylogConfig

  before(() => {
    dir = tree(SAMPLE)
    cfg = loadLuaConfig(dir)
  })

  it('loads spylog.lua, then sources/, filters/, jails/, actions/ in name order', () => {
    const {main, files} = configFiles(dir)
    expect(main).to.equal('spylog.lua')
    expect(files.map((f) => f.split(path.sep).join('/'))).to.deep.equal([
      'sources/pbx.lua', 'sources/relay.lua', 'sources/sniffer.lua',
      'filters/pbx.lua', 'filters/portal.lua', 'filters/windows.lua',
      'jails/access.lua', 'jails/voip.lua',
      'actions/netsh.lua', 'actions/notify.lua',
    ])
    expect(cfg.configDir).to.equal(path.resolve(dir))
    expect(cfg.dataDir).to.equal(path.resolve(dir, '..', 'data'))
  })

  it('reads WHITE_IP, LOG, CONNECT and the global JAIL settings of spylog.lua', () => {
    expect(cfg.whiteIp).to.deep.equal(['192.0.2.10', '198.51.100.0/24'])
    expect(cfg.log.level).to.equal('trace')
    expect(cfg.log.file).to.deep.include({logDir: './logs', logName: 'events.log', maxSize: 5 * 1024 * 1024, closeFile: false, flushInterval: 2, reuse: true})
    expect(cfg.log.zmq).to.equal('tcp://127.0.0.1:7060')
    expect(cfg.connect.filter?.jail).to.deep.include({type: 'bind', address: 'tcp://127.0.0.1:7555'})
    expect(cfg.connect.jail?.filter).to.deep.include({type: 'connect', address: 'tcp://127.0.0.1:7555'})
    expect(cfg.connect.jail?.action).to.deep.include({type: 'bind', address: 'tcp://127.0.0.1:7556'})
    expect(cfg.connect.action?.jail).to.deep.include({type: 'connect', address: 'tcp://127.0.0.1:7556'})
    expect(cfg.jail.purgeInterval).to.equal(15 * 60)
    expect(cfg.jail.parameters).to.deep.equal({site: 'branch-1'})
  })

  it('parses every kind of source string with its options', () => {
    const by = new Map(cfg.sources.map((s) => [s.name, s]))
    expect(by.get('pbx')).to.deep.include({kind: 'esl', password: 'hunter2', host: '203.0.113.20', port: 8021, level: 'WARNING', reconnect: 30, implicit: false})
    expect(by.get('relay')).to.deep.include({kind: 'net', protocol: 'udp', host: '127.0.0.1', port: 6514})
    expect(by.get('portal')).to.deep.include({kind: 'file', path: '/srv/portal/events.log', poll: 30, maxLine: 16384, skipExisting: true})
    expect((by.get('portal') as FileSource).eol).to.deep.equal({text: '\r*\n', pattern: true})
    expect(by.get('winapp')).to.deep.include({kind: 'file', path: 'c:/App/LOG/events.log'})
    expect(by.get('pbx-local')).to.deep.include({kind: 'esl', password: 'ClueCon', host: '127.0.0.1', port: 8021})
    expect(by.get('sniffer-requests')).to.deep.include({
      kind: 'process', command: '/usr/bin/sniffer', args: '-l -T fields -e time -e ip.src -e sip.Method -Y "sip.Request-Line"',
      restart: 5, monitor: ['stdout'], eol: {text: '\r\n', pattern: false},
    })
    // Inline source strings become implicit sources named by the string (files by their full path).
    expect(by.get('trap:udp://127.0.0.1')).to.deep.include({kind: 'trap', host: '127.0.0.1', port: 162, implicit: true})
    expect(by.get('eventlog:udp://127.0.0.1')).to.deep.include({kind: 'eventlog', port: 162})
    expect(by.get('syslog:udp://127.0.0.1:5514')).to.deep.include({kind: 'syslog', port: 5514})
    const api = `file:${path.resolve(dir, 'logs/portal-api.log')}`
    expect(by.get(api)).to.deep.include({kind: 'file', poll: 5, implicit: true})
    const origin = by.get('pbx')!.origin
    expect(origin).to.deep.equal({file: path.join(dir, 'sources/pbx.lua'), line: 3})
  })

  it('normalises filters', () => {
    const f = new Map(cfg.filters.map((x) => [x.name, x]))
    const auth = f.get('pbx-auth-fail')!
    expect(auth).to.deep.include({enabled: true, engine: 'lua', hint: '[WARNING]', stop: false, sources: ['pbx']})
    expect(auth.failregex).to.have.length(2)
    expect(auth.exclude).to.deep.equal(['192.0.2.10', '198.51.100.0/24'])
    expect(auth.origin).to.deep.equal({file: path.join(dir, 'filters/pbx.lua'), line: 2})
    expect(auth.fieldOrigins?.failregex?.line).to.equal(7)
    expect(f.get('pbx-ip-request')!.engine).to.equal('pcre')
    const portal = f.get('portal-login')!
    expect(portal.capture).to.deep.equal([['date', 'user', 'host'], ['date', 'host', 'number']])
    expect(portal.dateFormat).to.equal('%Y-%m-%d %H:%M:%S')
    expect(portal.ignoreregex).to.deep.equal(['user=monitor '])
    expect(f.get('portal-f2b')).to.deep.include({engine: 'fail2ban', datepattern: '^%Y-%m-%d %H:%M:%S'})
    // lua-spylog filters are off unless enabled = true.
    expect(f.get('web-syslog')!.enabled).to.equal(false)
    expect(f.get('logon-fail')!.trap).to.deep.equal({specific: [529, 4625], enterprise: []})
    expect(f.get('php-auth')!.events).to.deep.equal([{source: 'PHP-', prefix: true, ids: [3]}])
    expect(f.get('sniffer-scan')!.stop).to.equal(true)
  })

  it('normalises jails, with the global defaults and every counter / cfilter form', () => {
    const j = new Map(cfg.jails.map((x) => [x.name, x]))
    const auth = j.get('voip-auth-fail')!
    expect(auth).to.deep.include({enabled: true, findtime: 600, maxretry: 3, bantime: 86400, noreset: false})
    expect(auth.filters).to.deep.equal(['pbx-auth-fail'])
    expect(auth.actions.map((a) => [a.name, a.parameters])).to.deep.equal([['netsh', undefined], ['mail', {unban: false}]])
    expect(auth.counter).to.deep.equal({type: 'increment', capture: 'host', value: 'value', time: 'internal'})
    const ipreq = j.get('voip-ip-request')!
    expect(ipreq.findtime).to.equal(120) // JAIL{ default = { findtime = 120 } }
    expect(ipreq.rndtime).to.equal(3600)
    expect(ipreq.counter.type).to.equal('fixed')
    expect(ipreq.counter.value).to.equal('weight')
    expect(ipreq.actions[1]).to.deep.include({name: 'report', parameters: {category: 'sip'}})
    const acc = j.get('fail-access')!
    expect(acc.actions.map((a) => a.name)).to.deep.equal(['netsh'])
    expect(acc.parameters).to.deep.equal({note: '%{filter} on %{site}'})
    expect(acc.counter).to.deep.equal({type: 'accumulate', capture: 'host', value: 'weight', time: 'filter', resolution: 10})
    expect(acc.cfilter.map((c) => [c.kind, c.mode, c.capture])).to.deep.equal([
      ['acl', 'deny', 'host'], ['list', 'allow', 'user'], ['prefix', 'deny', 'number'], ['regex', 'deny', 'user'], ['geoip', 'deny', 'host'],
    ])
    expect(acc.cfilter[0]).to.deep.include({networks: ['203.0.113.0/24']})
    expect(acc.cfilter[1]).to.deep.include({values: ['ADMIN', 'ROOT'], nocase: true})
    expect(acc.cfilter[2]).to.deep.include({prefixes: {7495: '', 7499: ''}})
    expect(acc.cfilter[3]).to.deep.include({patterns: ['^test%d+$'], engine: 'lua'})
    expect(acc.cfilter[4]).to.deep.include({countries: ['RU', 'BY'], continents: ['EU'], cache: 1000, mmdb: path.resolve(dir, '..', 'data', 'GeoLite2-Country.mmdb')})
  })

  it('normalises actions', () => {
    const a = new Map(cfg.actions.map((x) => [x.name, x]))
    expect(a.get('netsh')).to.deep.include({unique: 'netsh <HOST>', options: {timeout: 10000}})
    expect(a.get('netsh')!.ban).to.deep.equal({kind: 'command', command: 'netsh ipsec static add filter filterlist=Spylog srcaddr=<HOST> dstaddr=me description="<DATE> <FILTER> <JAIL> <BANTIME>"'})
    expect(a.get('mail')!.ban).to.deep.include({kind: 'module', module: 'spylog.actions.mail'})
    expect((a.get('mail')!.ban as {args: string}).args).to.match(/^"Spylog ban <HOST>" "\n {4}Filter: <FILTER>/)
    expect(a.get('mail')!.options).to.deep.include({server: {address: 'smtp.example.org', user: 'spylog@example.org', password: 'secret'}})
    expect(a.get('firewall')!.parameters).to.deep.equal({net: '32', port: 'any', protocol: 'any'})
    expect(a.get('firewall')!.ban).to.deep.include({kind: 'command'})
    expect(a.get('report')!.unban).to.equal(undefined)
    expect(a.get('blocklist')!.ban).to.deep.equal({kind: 'command', command: 'c:\\tools\\block.exe', args: 'add=<HOST>,255.255.255.255,<JAIL>', unique: undefined, options: undefined})
    expect(a.get('blocklist')!.unban).to.deep.include({unique: 'block <HOST>'})
  })

  it('runs spylog.lua in its own environment and shares one between the other files', () => {
    const d = tree({
      'spylog.lua': 'secret = 1',
      'sources/a.lua': 'assert(secret == nil, "spylog.lua globals leaked") shared = "x"',
      'filters/nested/deep.lua': 'assert(shared == "x", "environment not shared") FILTER{"f", source = "file:/tmp/x.log", failregex = "(%S+)"}',
    })
    const c = loadLuaConfig(d)
    expect(c.filters.map((f) => f.name)).to.deep.equal(['f'])
    expect(c.filters[0]!.origin.file).to.equal(path.join(d, 'filters', 'nested', 'deep.lua'))
  })

  it('converts tables when every file has run (WHITE_IP grows after a filter referenced it)', () => {
    const d = tree({
      'filters/a.lua': 'FILTER{"f", source = "file:/tmp/x.log", failregex = "(%S+)", exclude = WHITE_IP}',
      'jails/z.lua': 'WHITE_IP{"2001:DB8::1"}',
    })
    const c = loadLuaConfig(d)
    expect(c.whiteIp).to.deep.equal(['2001:db8::1'])
    expect(c.filters[0]!.exclude).to.deep.equal(['2001:db8::1'])
  })

  it('supports ordinary Lua: locals, string operations, loops, require of files inside the directory', () => {
    const d = tree({
      'lib/common.lua': 'local M = {} function M.ipv4() return "([0-9.]+)" end M.count = 0 return M',
      'filters/gen.lua': `
        local common = require 'lib.common'
        for _, svc in ipairs{'smtp', 'imap', 'pop3'} do
          FILTER{svc .. "-auth", enabled = true, source = ("file:/var/log/%s.log"):format(svc),
            failregex = ("^%s auth failed from "):format(svc:upper()) .. common.ipv4()}
        end
        assert(require('lib.common') == common)
        assert(select('#', pcall(error, 'x')) == 2)
        assert(string.rep('ab', 3, '-') == 'ab-ab-ab')
        assert(table.concat({1, 2, 3}, ',') == '1,2,3')
        assert(load('return 40 + 2')() == 42)
        assert(math.max(1, 5) == 5 and type(os.time()) == 'number')
      `,
    })
    const c = loadLuaConfig(d)
    expect(c.filters.map((f) => f.name)).to.deep.equal(['smtp-auth', 'imap-auth', 'pop3-auth'])
    expect(c.filters[1]!.failregex).to.deep.equal(['^IMAP auth failed from ([0-9.]+)'])
    expect(c.filters[2]!.origin.line).to.equal(4)
  })

  it('hands print output to the print option', () => {
    const out: string[] = []
    loadLuaConfig(tree({'spylog.lua': 'print("hello", 42, nil)'}), {print: (s) => out.push(s)})
    expect(out).to.deep.equal(['hello\t42\tnil'])
  })
})

describe('config: lua sandbox', function () {
  this.timeout(60000)

  it('stops an endless loop with the instruction budget, naming the file and line', () => {
    const d = tree({'spylog.lua': 'local n = 0\nwhile true do\n  n = n + 1\nend'})
    const [e] = errorsOf(d)
    expect(e).to.match(/^spylog\.lua:[23]: instruction budget exhausted \(10000000 Lua instructions\): an endless loop\?$/)
    const [e2] = errorsOf(tree({'filters/loop.lua': 'for i = 1, math.huge do end'}), {maxInstructions: 50_000})
    expect(e2).to.match(/^filters\/loop\.lua:1: instruction budget exhausted \(50000/)
  })

  it('a pcall cannot swallow a limit error', () => {
    const d = tree({'spylog.lua': 'while true do pcall(function() while true do end end) end'})
    expect(errorsOf(d, {maxInstructions: 100_000})[0]).to.match(/instruction budget exhausted/)
    const x = tree({'spylog.lua': 'while true do xpcall(function() while true do end end, function() return 1 end) end'})
    expect(errorsOf(x, {maxInstructions: 100_000})[0]).to.match(/instruction budget exhausted/)
  })

  it('stops at the budget across files, and runs no later file', () => {
    const d = tree({
      'sources/a.lua': 'for i = 1, 60000 do end',
      'sources/b.lua': 'for i = 1, 60000 do end',
      'sources/c.lua': 'error("must not run")',
    })
    const errs = errorsOf(d, {maxInstructions: 100_000})
    expect(errs).to.have.length(1)
    expect(errs[0]).to.match(/^sources\/b\.lua:1: instruction budget exhausted/)
  })

  it('refuses everything outside the configuration', () => {
    const cases: [string, RegExp][] = [
      ['os.execute("touch /tmp/spylog-pwned")', /attempt to call a nil value \(field 'execute'\)/],
      ['os.remove("/tmp/x")', /attempt to call a nil value \(field 'remove'\)/],
      ['os.getenv("HOME")', /attempt to call a nil value \(field 'getenv'\)/],
      ['io.open("/etc/passwd")', /attempt to index a nil value \(global 'io'\)/],
      ['dofile("/etc/passwd")', /attempt to call a nil value \(global 'dofile'\)/],
      ['loadfile("/etc/passwd")', /attempt to call a nil value \(global 'loadfile'\)/],
      ['package.loadlib("libc.so.6", "system")', /attempt to index a nil value \(global 'package'\)/],
      ['debug.getregistry()', /attempt to index a nil value \(global 'debug'\)/],
      ['require("../outside")', /require '\.\.\/outside': only modules inside the configuration directory/],
      ['require("/etc/passwd")', /only modules inside the configuration directory/],
      ['require("nosuch.module")', /module 'nosuch\.module' not found in the configuration directory/],
      ['load(string.dump(print))', /attempt to call a nil value \(field 'dump'\)/],
      ['assert(load("\\27Lua"))', /binary chunks cannot be loaded/],
      ['string.pack("i4", 1)', /attempt to call a nil value \(field 'pack'\)/],
      ['coroutine.create(print)', /attempt to index a nil value \(global 'coroutine'\)/],
      ['local base = getmetatable(_G).__index', /attempt to index a boolean value/],
      ['setmetatable(WHITE_IP, nil)', /cannot change a protected metatable/],
    ]
    for (const [code, re] of cases) {
      const errs = errorsOf(tree({'spylog.lua': code}))
      expect(errs, code).to.have.length(1)
      expect(errs[0], code).to.match(/^spylog\.lua:1: /)
      expect(errs[0], code).to.match(re)
    }
    expect(fs.existsSync('/tmp/spylog-pwned')).to.equal(false)
  })

  it('refuses a require that leads outside through a symbolic link', function () {
    const outside = tree({'evil.lua': 'return 1'})
    const d = tree({'spylog.lua': 'require "lib.evil"'})
    fs.mkdirSync(path.join(d, 'lib'))
    try {
      fs.symlinkSync(path.join(outside, 'evil.lua'), path.join(d, 'lib', 'evil.lua'))
    } catch {
      this.skip()
    }
    expect(errorsOf(d)[0]).to.match(/require 'lib\.evil': lib\/evil\.lua leads outside the configuration directory/)
  })

  it('reports an error inside a required file at its own file and line', () => {
    const d = tree({'spylog.lua': 'local x = 1\nrequire "lib.bad"', 'lib/bad.lua': 'local t = {\n  x = 1\n  y = 2\n}', 'lib/boom.lua': '\nerror("boom")'})
    expect(errorsOf(d)).to.deep.equal(["lib/bad.lua:3: '}' expected (to close '{' at line 1) near 'y'"])
    fs.writeFileSync(path.join(d, 'spylog.lua'), 'require "lib.boom"')
    expect(errorsOf(d)).to.deep.equal(['lib/boom.lua:2: boom'])
  })

  it('detects a require loop', () => {
    const d = tree({'spylog.lua': 'require "a"', 'a.lua': 'require "b"', 'b.lua': 'require "a"'})
    expect(errorsOf(d)[0]).to.match(/loop \(a\.lua is already being loaded\)/)
  })

  it('bounds strings where they are made', () => {
    const cases: [string, RegExp][] = [
      ['local s = "x" while true do s = s .. s end', /string too long \(2097152 bytes; the limit is 1048576\)/],
      ['local s = ("x"):rep(2^30)', /string\.rep: result of 1073741824 bytes is too long/],
      ['local s = ("x"):rep(1e5):gsub(".", "%0%0%0%0%0%0%0%0%0%0%0%0")', /string\.gsub: result too long/],
      ['local b = ("x"):rep(1e6) local s = ("x"):rep(100):gsub(".", function() return b end)', /string\.gsub: result too long/],
      ['local t = {} for i = 1, 20 do t[i] = ("x"):rep(1e5) end local s = table.concat(t)', /table\.concat: result too long/],
      ['local b = ("x"):rep(6e5) local s = string.format("%s%s", b, b)', /string\.format: result of up to \d+ bytes is too long/],
    ]
    for (const [code, re] of cases) {
      const errs = errorsOf(tree({'spylog.lua': code}))
      expect(errs, code).to.have.length(1)
      expect(errs[0], code).to.match(re)
    }
  })

  it('bounds memory: a table that grows without end', () => {
    const d = tree({'spylog.lua': 'local t = {} local i = 0\nwhile true do i = i + 1 t[i] = {i, tostring(i)} end'})
    const errs = errorsOf(d, {maxMemory: 32 * 1024 * 1024, maxInstructions: 1e9})
    expect(errs).to.have.length(1)
    expect(errs[0]).to.match(/^spylog\.lua:2: memory limit exceeded \(the configuration grew the heap by more than 32 MiB\)/)
  })

  it('bounds what is converted out of the collected tables', () => {
    const big = tree({'filters/a.lua': 'local l = {} for i = 1, 5000 do l[i] = "x" .. i end FILTER{"f", source = "file:/x", failregex = l}'})
    expect(errorsOf(big, {maxValues: 1000})[0]).to.equal('filters/a.lua:1: FILTER{}: table too large (more than 1000 values in all)')
    const cyc = tree({'filters/a.lua': 'local t = {"f", source = "file:/x", failregex = "(x)"} t.cfilter = t FILTER(t)'})
    expect(errorsOf(cyc)).to.deep.include('filters/a.lua:1: FILTER "f".cfilter: expected a capture filter {\'acl\'|\'list\'|\'regex\'|\'prefix\'|\'geoip\', …} or a list of them, got a table that contains itself')
    const deep = tree({'actions/a.lua': 'local p = {} local t = p for i = 1, 40 do t.x = {} t = t.x end ACTION{"a", ban = "x", options = p}'})
    expect(errorsOf(deep)[0]).to.match(/ACTION "a"\.options(\.x)+: expected a string, number, boolean or table, got a table nested too deeply/)
  })

  it('reports syntax errors and runtime errors with file and line, and keeps going', () => {
    const d = tree({
      'filters/a.lua': 'FILTER{ "a";\n  failregex = {\n    "one"\n    "two"\n  };\n}',
      'filters/b.lua': 'local x = nil\nx.y = 1',
      'jails/c.lua': 'error("custom failure")',
      'jails/d.lua': 'error({})',
      'actions/e.lua': 'ACTION{"e", ban = "echo"}\nFILTR{"x"}',
    })
    expect(errorsOf(d)).to.deep.equal([
      "filters/a.lua:4: '}' expected (to close '{' at line 2) near '\"two\"'",
      "filters/b.lua:2: attempt to index a nil value (local 'x')",
      'jails/c.lua:1: custom failure',
      'jails/d.lua: error object is a table',
      "actions/e.lua:2: attempt to call a nil value (global 'FILTR'); did you mean FILTER?",
    ])
  })
})

describe('config: lua validation', () => {
  it('reports wrong types with file, line, field, what was expected, and collects them', () => {
    const d = tree({
      'filters/a.lua': [
        'FILTER{ "a";',
        '  enabled = "yes";',
        '  source = "file:/var/log/a.log";',
        '  failregex = {"ok (%S+)", 42};',
        '  hint = {};',
        '  stop = 1;',
        '}',
      ].join('\n'),
      'jails/j.lua': [
        'JAIL{"j";',
        '  filter = "a";',
        '  maxretry = 2.5;',
        '  findtime = "soon";',
        '  bantime = {};',
        '}',
      ].join('\n'),
    })
    expect(errorsOf(d)).to.deep.equal([
      'filters/a.lua:2: FILTER "a".enabled: expected true or false, got string "yes"',
      'filters/a.lua:4: FILTER "a".failregex[2]: expected a non-empty string, got number 42',
      'filters/a.lua:5: FILTER "a".hint: expected a string, got a table',
      'filters/a.lua:6: FILTER "a".stop: expected true or false, got number 1',
      'jails/j.lua:3: JAIL "j".maxretry: expected a whole number, got 2.5',
      'jails/j.lua:4: JAIL "j".findtime: expected a duration in seconds (a number, or a text such as "10m", "1h", "2d"), got string "soon"',
      'jails/j.lua:5: JAIL "j".bantime: expected a duration in seconds (a number, or a text such as "10m", "1h", "2d"), got a table',
    ])
  })

  it('suggests the closest known name for a misspelt field, function, engine, filter, action, source', () => {
    const d = tree({
      'sources/s.lua': 'SOURCE{"applog", "file:/var/log/app.log", pol = 5}',
      'filters/a.lua': 'FILTER{"app-auth", source = "aplog", failregx = "(x)", engine = "pcer"}\nFILTER{"app-login", source = "applog", failregex = "(%S+)"}',
      'jails/j.lua': 'JAIL{"j", filter = {"app-logn"}, maxretry = 3, findtime = 60, bantime = 60, action = {"ipsek"}, countr = {}}',
      'actions/a.lua': 'ACTION{"ipsec", ban = "x", unbann = "y"}',
    })
    expect(errorsOf(d)).to.deep.equal([
      "sources/s.lua:1: SOURCE \"applog\".pol: unknown field; did you mean 'poll'?",
      'actions/a.lua:1: ACTION "ipsec".unbann: unknown field; did you mean \'unban\'?',
      "filters/a.lua:1: FILTER \"app-auth\".engine: expected 'lua' (the default), 'pcre' or 'fail2ban', got string \"pcer\"; did you mean 'pcre'?",
      'filters/a.lua:1: FILTER "app-auth".failregex: missing: expected a string or a list of strings',
      'filters/a.lua:1: FILTER "app-auth".source: unknown source "aplog": no SOURCE{} has that name; did you mean "applog"? (or write a source string such as "file:/var/log/x.log")',
      "filters/a.lua:1: FILTER \"app-auth\".failregx: unknown field; did you mean 'failregex'?",
      'jails/j.lua:1: JAIL "j".filter[1]: unknown filter "app-logn": no FILTER{} has that name; did you mean "app-login"?',
      'jails/j.lua:1: JAIL "j".action[1]: unknown action "ipsek": no ACTION{} has that name; did you mean "ipsec"?',
      "jails/j.lua:1: JAIL \"j\".countr: unknown field; did you mean 'counter'?",
    ])
  })

  it('checks patterns of every engine when the configuration loads', () => {
    const d = tree({
      'filters/a.lua': `
FILTER{"lua-bad", source = "file:/x", failregex = {"ok (%d+)", "bad (%d+"}}
FILTER{"pcre-bad", engine = "pcre", source = "file:/x", failregex = [[from (\\d+]]}
FILTER{"f2b-nohost", engine = "fail2ban", source = "file:/x", failregex = [[user <F-USER>\\S+</F-USER>]]}
FILTER{"ignore-bad", source = "file:/x", failregex = "(x)", ignoreregex = "[a"}
`,
    })
    const errs = errorsOf(d)
    expect(errs).to.have.length(4)
    expect(errs[0]).to.match(/^filters\/a\.lua:2: FILTER "lua-bad"\.failregex\[2\]: invalid Lua pattern \(unfinished capture.*\): bad \(%d\+$/)
    expect(errs[1]).to.match(/^filters\/a\.lua:3: FILTER "pcre-bad"\.failregex: invalid PCRE regex \(.*\): from \(\\d\+$/)
    expect(errs[2]).to.equal('filters/a.lua:4: FILTER "f2b-nohost".failregex: failregex 1 has no failure-id group (<HOST>, <ADDR>, <IP4>, <IP6>, <DNS>, <F-ID> or <F-MLFID>): user <F-USER>\\S+</F-USER>')
    expect(errs[3]).to.match(/^filters\/a\.lua:5: FILTER "ignore-bad"\.ignoreregex: invalid Lua pattern \(malformed pattern \(missing '\]'\)/)
  })

  it('checks captures, addresses, trap/events selectors, names, sources', () => {
    const d = tree({
      'spylog.lua': 'WHITE_IP{"10.0.0.1", "10.0.0.0/33", "not-an-ip"}',
      'filters/a.lua': `
FILTER{"cap", source = "file:/x", failregex = {"(a)(b)", "(c)"}, capture = {'date', 'host'}}
FILTER{"cap2", source = "file:/x", failregex = "(a)", capture = {{'filter'}}}
FILTER{"ex", source = "file:/x", failregex = "(a)", exclude = {"192.0.2.0/24", "300.1.1.1"}}
FILTER{"tr", source = "trap:udp://127.0.0.1", failregex = "(a)"}
FILTER{"ev", source = "eventlog:udp://127.0.0.1", failregex = "(a)", events = {{42}}}
FILTER{source = "file:/x", failregex = "(a)"}
FILTER{"src", source = "ftp:/x", failregex = "(a)"}
FILTER{"net", source = "net:tcp://127.0.0.1", failregex = "(a)"}
FILTER{"fmt", source = "file:/x", failregex = "(a)", date_format = "%Q"}
`,
    })
    expect(errorsOf(d)).to.deep.equal([
      'spylog.lua:1: WHITE_IP[2]: expected an IP address or network (192.0.2.1, 198.51.100.0/24, 2001:db8::/32), got string "10.0.0.0/33"',
      'spylog.lua:1: WHITE_IP[3]: expected an IP address or network (192.0.2.1, 198.51.100.0/24, 2001:db8::/32), got string "not-an-ip"',
      'filters/a.lua:2: FILTER "cap".capture: 1 capture list(s) for 2 failregex(es): give one list per failregex, in the same order',
      "filters/a.lua:3: FILTER \"cap2\".capture[1][1]: 'filter' cannot be captured: it is the filter's name in every message",
      'filters/a.lua:4: FILTER "ex".exclude[2]: expected an IP address or network (192.0.2.1, 198.51.100.0/24, 2001:db8::/32), got string "300.1.1.1"',
      'filters/a.lua:5: FILTER "tr".trap: missing: filters of a trap source select traps with trap = id, OID or a list of them',
      "filters/a.lua:6: FILTER \"ev\".events[1]: expected {'Source name' (a trailing * matches a prefix), id or {ids…}}, got a table",
      'filters/a.lua:7: FILTER: missing name: the first value must be the name, as in FILTER{"name", …}',
      'filters/a.lua:8: FILTER "src".source: invalid source string "ftp:/x": expected TYPE:INFO with TYPE one of file, net, syslog, trap, eventlog, esl, process',
      'filters/a.lua:9: FILTER "net".source: invalid net source "net:tcp://127.0.0.1": expected net:tcp://HOST:PORT or net:udp://HOST:PORT',
      'filters/a.lua:10: FILTER "fmt".date_format: bad date format "%Q": unknown directive at position 0',
    ])
  })

  it('checks jails: defaults, duplicates, counters, cfilters, action forms', () => {
    const d = tree({
      'spylog.lua': 'JAIL{ default = { maxretry = 0, findtme = 1 } }',
      'filters/a.lua': 'FILTER{"a", source = "file:/x", failregex = "(x)"}',
      'actions/a.lua': 'ACTION{"act", ban = "x"}\nACTION{"empty"}',
      'jails/j.lua': `
JAIL{"j1", filter = "a", findtime = 60, maxretry = 2, action = {"act", {"act", "bad"}, 7}}
JAIL{"j1", filter = "a", findtime = 60, maxretry = 2}
JAIL{"j2", filter = "a", maxretry = 2, counter = {type = 'acumulate'}}
JAIL{"j3", filter = "a", findtime = 60, maxretry = 2, cfilter = {{'acl'}, {'lst'}, {'list', filter = 'x'}}}
JAIL{"j4", filter = {}, findtime = 60, maxretry = 2}
`,
    })
    expect(errorsOf(d)).to.deep.equal([
      'actions/a.lua:2: ACTION "empty": an action needs a ban and/or an unban command',
      'spylog.lua:1: JAIL.default.maxretry: expected a number ≥ 1, got 0',
      "spylog.lua:1: JAIL.default.findtme: unknown field; did you mean 'findtime'?",
      'jails/j.lua:2: JAIL "j1".action[2][2]: expected a table of action parameters, got string "bad"',
      'jails/j.lua:2: JAIL "j1".action[3]: expected an action name or {\'action name\', {parameters}}, got number 7',
      'jails/j.lua:3: JAIL "j1": duplicate jail name (first defined at ' + path.join(d, 'jails/j.lua') + ':2)',
      "jails/j.lua:4: JAIL \"j2\".counter.type: expected 'increment' (the default), 'accumulate' or 'fixed', got string \"acumulate\"; did you mean 'accumulate'?",
      'jails/j.lua:4: JAIL "j2".findtime: missing: expected a duration in seconds (a number, or a text such as "10m", "1h", "2d")',
      'jails/j.lua:5: JAIL "j3".cfilter[1].filter: missing: the list of addresses/networks',
      "jails/j.lua:5: JAIL \"j3\".cfilter[2][1]: expected the capture filter type (acl, list, regex, prefix, geoip) as first value, got string \"lst\"; did you mean 'list'?",
      'jails/j.lua:5: JAIL "j3".cfilter[3].capture: missing: expected a string',
      'jails/j.lua:6: JAIL "j4".filter: expected at least one string, got an empty list',
    ].map((s) => s.replaceAll(d + path.sep, '')))
  })

  it('a nameless FILTER{} / ACTION{} in spylog.lua takes no settings', () => {
    expect(errorsOf(tree({'spylog.lua': 'FILTER{ enabled = true }\nACTION{}'}))).to.deep.equal([
      'spylog.lua:1: FILTER.enabled: a nameless FILTER{} in spylog.lua holds global filter settings, and there are none; a filter needs a name: FILTER{"name", …}',
    ])
    expect(errorsOf(tree({'filters/a.lua': 'JAIL{ maxretry = 3 }'}))[0]).to.equal('filters/a.lua:1: JAIL: missing name: the first value must be the name, as in JAIL{"name", …}')
  })

  it('accepts durations as numbers or texts', () => {
    expect(parseDuration(90)).to.equal(90)
    expect(parseDuration('90')).to.equal(90)
    expect(parseDuration('10m')).to.equal(600)
    expect(parseDuration('1h 30m')).to.equal(5400)
    expect(parseDuration('2d')).to.equal(172800)
    expect(parseDuration('1 week')).to.equal(604800)
    expect(parseDuration('-1')).to.equal(-1)
    expect(parseDuration('soon')).to.equal(undefined)
    expect(parseDuration('')).to.equal(undefined)
    const c = loadLuaConfig(tree({
      'filters/a.lua': 'FILTER{"a", source = "file:/x", failregex = "(x)"}',
      'jails/j.lua': 'JAIL{"j", filter = "a", findtime = "10m", maxretry = 3, bantime = -1}\nJAIL{"k", filter = "a", findtime = 60, maxretry = 3}',
    }))
    expect(cfgJail(c, 'j')).to.deep.include({findtime: 600, bantime: -1})
    expect(cfgJail(c, 'k').bantime).to.equal(-1) // no bantime: never lifted, as lua-spylog
  })

  it('helpers: canonical networks, edit distance, closest names', () => {
    expect(canonicalNetwork('192.168.1.77/24')).to.equal('192.168.1.0/24')
    expect(canonicalNetwork('2001:DB8::1/32')).to.equal('2001:db8::/32')
    expect(canonicalNetwork('::ffff:10.0.0.1')).to.equal('10.0.0.1')
    expect(canonicalNetwork('10.0.0.1/33')).to.equal(undefined)
    expect(canonicalNetwork('010.0.0.1')).to.equal(undefined)
    expect(levenshtein('failregx', 'failregex')).to.equal(1)
    expect(levenshtein('', 'abc')).to.equal(3)
    expect(closestName('FAILREGEX', ['failregex', 'ignoreregex'])).to.equal('failregex')
    expect(closestName('zzz', ['failregex'])).to.equal(undefined)
  })
})

describe('config: lua file encodings', () => {
  const filter = (name: string): string => `FILTER{"${name}", enabled = true, source = "trap:udp://127.0.0.1", trap = 4625, failregex = "Адрес сети источника:%s+([0-9.]+)"}`

  it('reads UTF-8 by default and refuses invalid UTF-8 with a hint', () => {
    const c = loadLuaConfig(tree({'filters/a.lua': filter('utf')}))
    expect(c.filters[0]!.failregex).to.deep.equal(['Адрес сети источника:%s+([0-9.]+)'])
    const errs = errorsOf(tree({'filters/a.lua': cp1251(filter('legacy'))}))
    expect(errs).to.deep.equal(['filters/a.lua: not valid utf-8 text; declare the file\'s encoding on its first line (-- encoding: cp1251) or set the encoding option'])
  })

  it('reads cp1251 with the encoding option', () => {
    const c = loadLuaConfig(tree({'filters/a.lua': cp1251(filter('legacy'))}), {encoding: 'cp1251'})
    expect(c.filters[0]!.failregex).to.deep.equal(['Адрес сети источника:%s+([0-9.]+)'])
  })

  it('reads a file that declares its encoding, next to UTF-8 files', () => {
    const c = loadLuaConfig(tree({
      'filters/a.lua': cp1251('-- encoding: cp1251\n' + filter('legacy')),
      'filters/b.lua': '-- -*- coding: utf-8 -*-\n' + filter('modern'),
      'filters/c.lua': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(filter('bom'))]),
    }))
    expect(c.filters.map((f) => [f.name, f.failregex[0], f.origin.line])).to.deep.equal([
      ['legacy', 'Адрес сети источника:%s+([0-9.]+)', 2],
      ['modern', 'Адрес сети источника:%s+([0-9.]+)', 2],
      ['bom', 'Адрес сети источника:%s+([0-9.]+)', 1],
    ])
    expect(errorsOf(tree({'spylog.lua': '-- coding: klingon\n'}))).to.deep.equal([
      "spylog.lua: unknown encoding 'klingon' (from its declaration (-- coding: klingon))",
    ])
    expect(decodeFile(Uint8Array.from([0x41]), 'utf-8')).to.equal('A')
  })

  it('refuses strings that are not UTF-8 in the tables', () => {
    const errs = errorsOf(tree({'filters/a.lua': 'FILTER{"a", source = "file:/x", failregex = "\\255(x)"}'}))
    expect(errs).to.deep.equal(['filters/a.lua:1: FILTER "a".failregex: expected a string or a list of strings, got a string that is not valid UTF-8'])
  })
})

describe('config: lua evaluation result', () => {
  it('records every call with its origin', () => {
    const d = tree({'spylog.lua': 'LOG{level = "info"}\nWHITE_IP{"192.0.2.1"}', 'sources/a.lua': '\n\nSOURCE{"a", "file:/x"}'})
    const ev = evaluateLuaConfig(d)
    expect(ev.errors).to.deep.equal([])
    expect(ev.calls.map((c) => [c.fn, c.origin.line, c.main])).to.deep.equal([['LOG', 1, true], ['SOURCE', 3, false]])
    expect(ev.whiteIp).to.deep.equal([{value: '192.0.2.1', origin: {file: path.join(d, 'spylog.lua'), line: 2}}])
  })

  it('names a directory that is not a configuration', () => {
    expect(errorsOf(tree({'readme.txt': 'x'}))).to.deep.equal(['<dir>: not a lua-spylog configuration directory (no spylog.lua, no sources/, filters/, jails/, actions/ files)'])
    expect(evaluateLuaConfig('/nonexistent/spylog').errors[0]!.message).to.equal('/nonexistent/spylog: configuration directory not found')
  })
})

function cfgJail(c: SpylogConfig, name: string) {
  return c.jails.find((j) => j.name === name)!
}
