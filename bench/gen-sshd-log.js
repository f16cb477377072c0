#!/usr/bin/env node
// Generates a deterministic (seeded) sshd auth.log for the regex-throughput benchmark.
//
//   node bench/gen-sshd-log.js [--lines N] [--seed S] [--out FILE]
//
// The log interleaves ~16 concurrent "sessions", each a short script of lines sharing one pid:
// benign ones (cron, sudo, systemd-logind, accepted public-key and password logins) and attacks
// (password brute force, invalid users, PAM failures, preauth disconnects, key-exchange and
// banner scanners, AllowUsers refusals, …) from a few thousand IPv4 and IPv6 addresses with a
// heavy-tailed frequency (a few loud attackers, a long tail). About a third of the sessions use
// the `sshd-session[pid]` daemon name of OpenSSH 9.8+. Dates are traditional syslog dates
// (`Mar  3 00:00:01`), strictly non-decreasing.
import * as fs from 'node:fs'
import * as path from 'node:path'
import {fileURLToPath} from 'node:url'

/** mulberry32: small, fast, good enough for test data. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const INVALID_USERS = [
  'admin', 'test', 'user', 'oracle', 'ubuntu', 'postgres', 'git', 'guest', 'ftpuser', 'pi', 'deploy',
  'support', 'mysql', 'tomcat', 'jenkins', 'hadoop', 'minecraft', 'steam', 'debian', 'centos', 'www',
  'www-data', 'nagios', 'zabbix', 'ansible', 'vagrant', 'docker', 'elastic', 'kafka', 'redis', 'test1',
  'test2', 'user1', 'administrator', 'Admin', 'service', 'operator', 'backup', 'odoo', 'sftp', 'ftp',
  'testuser', 'dev', 'developer', 'student', 'sysadmin', 'nginx', 'apache', 'demo', 'webmaster', 'oracle1',
  'sol', 'solana', 'validator', 'ethereum', 'node', 'es', 'ts3', 'teamspeak', 'uftp', 'manager', '0',
]
const REAL_USERS = ['alice', 'bob', 'carol', 'deploy', 'backup']
const KEYS = ['ED25519', 'RSA', 'ECDSA']
const KEX_OFFERS = [
  'diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1',
  'diffie-hellman-group1-sha1',
  'ssh-rsa,ssh-dss',
]
const CRON_CMDS = [
  '[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi',
  'cd / && run-parts --report /etc/cron.hourly',
  'test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }',
  '/usr/local/bin/backup.sh >/dev/null 2>&1',
  'command -v debian-sa1 > /dev/null && debian-sa1 1 1',
]
const SUDO_CMDS = ['/usr/bin/apt update', '/usr/bin/systemctl restart nginx', '/usr/bin/journalctl -u ssh', '/bin/cat /var/log/auth.log', '/usr/bin/docker ps']

/** Address pools: attackers (IPv4 and IPv6) and the office (legitimate users). */
function makeAddresses(rand) {
  const v4 = new Set()
  while (v4.size < 4500) {
    const a = 1 + Math.floor(rand() * 222)
    if (a === 10 || a === 127 || a === 100 || a === 169 || a === 172 || a === 192) continue
    v4.add(`${a}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${1 + Math.floor(rand() * 254)}`)
  }
  const hex = () => Math.floor(rand() * 0x10000).toString(16)
  const v6 = new Set()
  while (v6.size < 1500) {
    const r = rand()
    const prefix = ['2001:db8', '2a01:4f8', '2600:3c03', '2a03:b0c0', '2604:a880'][Math.floor(rand() * 5)]
    if (r < 0.5) v6.add(`${prefix}:${hex()}:${hex()}::${hex()}`)
    else if (r < 0.8) v6.add(`${prefix}:${hex()}:${hex()}:${hex()}:${hex()}:${hex()}:${(1 + Math.floor(rand() * 0xfffe)).toString(16)}`)
    else v6.add(`${prefix}::${(1 + Math.floor(rand() * 0xfffe)).toString(16)}`)
  }
  const attackers = [...v4, ...v6]
  // Shuffle so that the heavy hitters are a mix of both families.
  for (let i = attackers.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[attackers[i], attackers[j]] = [attackers[j], attackers[i]]
  }
  const office = ['198.51.100.7', '198.51.100.23', '203.0.113.40', '2001:db8:100::17']
  return {attackers, office}
}

/**
 * Writes the log. Returns {lines, bytes}. Deterministic for a given (lines, seed).
 */
export function generate({lines = 1_000_000, seed = 42, out}) {
  const rand = prng(seed)
  const pick = (arr) => arr[Math.floor(rand() * arr.length)]
  const {attackers, office} = makeAddresses(rand)
  // Heavy-tailed choice: index ~ N * u^3 (a few addresses get most of the traffic).
  const attacker = () => {
    const ip = attackers[Math.floor(attackers.length * rand() ** 3)]
    // Now and then sshd logs an IPv4 client as IPv4-mapped IPv6.
    return rand() < 0.002 && !ip.includes(':') ? `::ffff:${ip}` : ip
  }
  const port = () => 1024 + Math.floor(rand() * 64000)
  const hosts = ['web01', 'web01', 'web01', 'web01', 'db02', 'bastion']
  let pid = 1000 + Math.floor(rand() * 5000)
  const nextPid = () => {
    pid += 1 + Math.floor(rand() * 40)
    if (pid > 4194000) pid = 1000
    return pid
  }

  // Each script returns an array of thunks producing message text (after "host prog[pid]: ").
  const scripts = [
    // weight, builder
    [10, () => { // cron job
      const p = nextPid()
      return {prog: `CRON[${p}]`, msgs: [
        'pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)',
        `(root) CMD (${pick(CRON_CMDS)})`,
        'pam_unix(cron:session): session closed for user root',
      ]}
    }],
    [4, () => { // sudo
      const u = pick(REAL_USERS)
      return {prog: 'sudo', msgs: [
        `${u.padStart(8)} : TTY=pts/${Math.floor(rand() * 4)} ; PWD=/home/${u} ; USER=root ; COMMAND=${pick(SUDO_CMDS)}`,
        `pam_unix(sudo:session): session opened for user root(uid=0) by ${u}(uid=${1000 + REAL_USERS.indexOf(u)})`,
        'pam_unix(sudo:session): session closed for user root',
      ]}
    }],
    [5, () => { // accepted login (public key or password), with logind/systemd around it
      const u = pick(REAL_USERS)
      const ip = pick(office)
      const pt = port()
      const d = rand() < 0.35 ? 'sshd-session' : 'sshd'
      const s = 100 + Math.floor(rand() * 90000)
      const method = rand() < 0.8 ? `publickey for ${u} from ${ip} port ${pt} ssh2: ${pick(KEYS)} SHA256:${b64(rand, 43)}` : `password for ${u} from ${ip} port ${pt} ssh2`
      return {prog: `${d}[${nextPid()}]`, msgs: [
        `Accepted ${method}`,
        `pam_unix(sshd:session): session opened for user ${u}(uid=${1000 + REAL_USERS.indexOf(u)}) by (uid=0)`,
        {prog: `systemd-logind[612]`, msg: `New session ${s} of user ${u}.`},
        {prog: 'systemd[1]', msg: `Started session-${s}.scope - Session ${s} of User ${u}.`},
        `Received disconnect from ${ip} port ${pt}:11: disconnected by user`,
        `Disconnected from user ${u} ${ip} port ${pt}`,
        `pam_unix(sshd:session): session closed for user ${u}`,
        {prog: `systemd-logind[612]`, msg: `Removed session ${s}.`},
      ]}
    }],
    [1, () => { // legitimate user mistypes, then logs in
      const u = pick(REAL_USERS)
      const ip = pick(office)
      const pt = port()
      return {prog: `sshd[${nextPid()}]`, msgs: [
        `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=${u}`,
        `Failed password for ${u} from ${ip} port ${pt} ssh2`,
        `Accepted password for ${u} from ${ip} port ${pt} ssh2`,
        `pam_unix(sshd:session): session opened for user ${u}(uid=${1000 + REAL_USERS.indexOf(u)}) by (uid=0)`,
      ]}
    }],
    [9, () => { // invalid user, password attempt
      const u = rand() < 0.01 ? '' : rand() < 0.2 ? `${pick(INVALID_USERS)}${Math.floor(rand() * 1000)}` : pick(INVALID_USERS)
      const ip = attacker()
      const pt = port()
      const msgs = [
        `Invalid user ${u} from ${ip} port ${pt}`,
        'pam_unix(sshd:auth): check pass; user unknown',
        `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}`,
        `Failed password for invalid user ${u} from ${ip} port ${pt} ssh2`,
      ]
      if (rand() < 0.6) msgs.push(`Received disconnect from ${ip} port ${pt}:11: Bye Bye [preauth]`, `Disconnected from invalid user ${u} ${ip} port ${pt} [preauth]`)
      else msgs.push(`Connection closed by invalid user ${u} ${ip} port ${pt} [preauth]`)
      return {prog: `${daemon(rand)}[${nextPid()}]`, msgs}
    }],
    [6, () => { // root (or real-user) password brute force
      const u = rand() < 0.8 ? 'root' : pick(REAL_USERS)
      const ip = attacker()
      const pt = port()
      const n = 1 + Math.floor(rand() * 6)
      const msgs = [`pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=${u}`]
      for (let i = 0; i < n; i++) msgs.push(`Failed password for ${u} from ${ip} port ${pt} ssh2`)
      if (n === 6) {
        msgs.push(
          `error: maximum authentication attempts exceeded for ${u} from ${ip} port ${pt} ssh2 [preauth]`,
          `Disconnecting authenticating user ${u} ${ip} port ${pt}: Too many authentication failures [preauth]`,
          `PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=${u}`,
          'PAM service(sshd) ignoring max retries; 6 > 3',
        )
      } else msgs.push(rand() < 0.5 ? `Connection closed by authenticating user ${u} ${ip} port ${pt} [preauth]` : `Received disconnect from ${ip} port ${pt}:11: Bye Bye [preauth]`)
      return {prog: `${daemon(rand)}[${nextPid()}]`, msgs}
    }],
    [6, () => { // scanners: preauth disconnects without authentication
      const ip = attacker()
      const pt = port()
      const r = rand()
      let msgs
      if (r < 0.3) msgs = [`Connection closed by ${ip} port ${pt} [preauth]`]
      else if (r < 0.45) msgs = [`Connection reset by ${ip} port ${pt} [preauth]`]
      else if (r < 0.6) msgs = ['error: kex_exchange_identification: Connection closed by remote host', `Connection closed by ${ip} port ${pt}`]
      else if (r < 0.7) msgs = [`error: kex_exchange_identification: read: Connection reset by peer`, `Connection reset by ${ip} port ${pt}`]
      else if (r < 0.8) msgs = [`Unable to negotiate with ${ip} port ${pt}: no matching key exchange method found. Their offer: ${pick(KEX_OFFERS)} [preauth]`]
      else if (r < 0.9) msgs = [`banner exchange: Connection from ${ip} port ${pt}: invalid format`]
      else msgs = [`Did not receive identification string from ${ip} port ${pt}`]
      return {prog: `${daemon(rand)}[${nextPid()}]`, msgs}
    }],
    [3, () => { // authenticating-user disconnects (no password tried)
      const u = rand() < 0.5 ? 'root' : pick(INVALID_USERS)
      const ip = attacker()
      const pt = port()
      const inv = u !== 'root'
      const msgs = inv ? [`Invalid user ${u} from ${ip} port ${pt}`] : []
      msgs.push(`Disconnected from ${inv ? 'invalid' : 'authenticating'} user ${u} ${ip} port ${pt} [preauth]`)
      return {prog: `${daemon(rand)}[${nextPid()}]`, msgs}
    }],
    [2, () => { // public-key probing
      const u = pick(INVALID_USERS)
      const ip = attacker()
      const pt = port()
      return {prog: `${daemon(rand)}[${nextPid()}]`, msgs: [
        `Invalid user ${u} from ${ip} port ${pt}`,
        `Failed publickey for invalid user ${u} from ${ip} port ${pt} ssh2: ${pick(KEYS)} SHA256:${b64(rand, 43)}`,
        `Failed none for invalid user ${u} from ${ip} port ${pt} ssh2`,
        `Connection closed by invalid user ${u} ${ip} port ${pt} [preauth]`,
      ]}
    }],
    [2, () => { // AllowUsers / DenyUsers / PAM error forms
      const ip = attacker()
      const pt = port()
      const r = rand()
      let msgs
      if (r < 0.4) msgs = [`User root from ${ip} not allowed because not listed in AllowUsers`, `Connection closed by authenticating user root ${ip} port ${pt} [preauth]`]
      else if (r < 0.6) msgs = [`error: PAM: Authentication failure for root from ${ip}`]
      else if (r < 0.8) {
        const u = pick(INVALID_USERS)
        msgs = [`error: maximum authentication attempts exceeded for invalid user ${u} from ${ip} port ${pt} ssh2 [preauth]`, `Disconnecting invalid user ${u} ${ip} port ${pt}: Too many authentication failures [preauth]`]
      }
      else msgs = [`error: Received disconnect from ${ip} port ${pt}:3: com.jcraft.jsch.JSchException: Auth fail [preauth]`, `Disconnected from ${ip} port ${pt} [preauth]`]
      return {prog: `${daemon(rand)}[${nextPid()}]`, msgs}
    }],
    [1, () => { // OpenSSH 9.8+ listener penalties
      const ip = attacker()
      const pt = port()
      const v6 = ip.includes(':')
      return {prog: `sshd[${700 + Math.floor(rand() * 3)}]`, msgs: [
        `drop connection #${Math.floor(rand() * 10)} from [${ip}]:${pt} on [${v6 ? '2001:db8:1::5' : '192.0.2.5'}]:22 penalty: ${rand() < 0.7 ? 'failed authentication' : 'exceeded LoginGraceTime'}`,
      ]}
    }],
  ]
  const total = scripts.reduce((s, x) => s + x[0], 0)
  const newSession = () => {
    let r = rand() * total
    for (const [w, build] of scripts) {
      r -= w
      if (r < 0) return {...build(), i: 0, host: pick(hosts)}
    }
    return {...scripts[0][1](), i: 0, host: hosts[0]}
  }

  // Dates: start Mar 3 00:00:00, steps ~ exponential with mean 0.85 s.
  let t = Date.UTC(2001, 2, 3, 0, 0, 0) / 1000
  const fd = fs.openSync(out, 'w')
  let buf = ''
  let bytes = 0
  const pool = []
  const target = 16
  for (let n = 0; n < lines; n++) {
    while (pool.length < target) pool.push(newSession())
    const k = Math.floor(rand() * pool.length)
    const s = pool[k]
    const item = s.msgs[s.i++]
    if (s.i >= s.msgs.length) {
      pool[k] = pool[pool.length - 1]
      pool.pop()
    }
    t += -Math.log(1 - rand()) * 0.85
    const d = new Date(Math.floor(t) * 1000)
    const day = d.getUTCDate()
    const date = `${MONTHS[d.getUTCMonth()]} ${day < 10 ? ' ' : ''}${day} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`
    const line = typeof item === 'string' ? `${date} ${s.host} ${s.prog}: ${item}\n` : `${date} ${s.host} ${item.prog}: ${item.msg}\n`
    buf += line
    if (buf.length > 1 << 20) {
      bytes += fs.writeSync(fd, buf)
      buf = ''
    }
  }
  bytes += fs.writeSync(fd, buf)
  fs.closeSync(fd)
  return {lines, bytes}
}

function daemon(rand) {
  return rand() < 0.35 ? 'sshd-session' : 'sshd'
}

function p2(n) {
  return n < 10 ? `0${n}` : String(n)
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(rand, n) {
  let s = ''
  for (let i = 0; i < n; i++) s += B64[Math.floor(rand() * 64)]
  return s
}

/**
 * Generates `out` unless it already holds the log for the same parameters (a `.meta.json`
 * beside it records them). Returns {file, lines, bytes, reused}.
 */
export function ensureLog({lines = 1_000_000, seed = 42, out}) {
  const meta = `${out}.meta.json`
  const want = {generator: 2, lines, seed}
  try {
    const have = JSON.parse(fs.readFileSync(meta, 'utf8'))
    if (have.generator === want.generator && have.lines === lines && have.seed === seed && fs.statSync(out).size === have.bytes) {
      return {file: out, lines, bytes: have.bytes, reused: true}
    }
  } catch {
    // (re)generate
  }
  fs.mkdirSync(path.dirname(out), {recursive: true})
  const r = generate({lines, seed, out})
  fs.writeFileSync(meta, JSON.stringify({...want, bytes: r.bytes}))
  return {file: out, lines, bytes: r.bytes, reused: false}
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2)
  const opt = (name, def) => {
    const i = args.indexOf(name)
    return i >= 0 && i + 1 < args.length ? args[i + 1] : def
  }
  const here = path.dirname(fileURLToPath(import.meta.url))
  const lines = Number(opt('--lines', '1000000'))
  const seed = Number(opt('--seed', '42'))
  const out = path.resolve(opt('--out', path.join(here, 'out', 'sshd-auth.log')))
  const t0 = performance.now()
  fs.mkdirSync(path.dirname(out), {recursive: true})
  const r = generate({lines, seed, out})
  fs.writeFileSync(`${out}.meta.json`, JSON.stringify({generator: 2, lines, seed, bytes: r.bytes}))
  console.log(`${out}: ${r.lines} lines, ${(r.bytes / 1048576).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}
