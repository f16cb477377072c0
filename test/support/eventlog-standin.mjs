#!/usr/bin/env node
// A stand-in for the Windows side of the event-log source, for tests on Linux. Plain JavaScript
// (run with `node`, no build step) so that tests under tsx and compiled tests spawn the same file.
//
//   node eventlog-standin.mjs SCENARIO.json            the PowerShell worker (eventlog.ps1):
//        reads the JSON configuration line on stdin and speaks the worker protocol on stdout
//   node eventlog-standin.mjs --wevtutil SCENARIO.json qe CHANNEL /q:XPATH /f:… /e:Events /uni:true /rd:… /c:N
//        wevtutil: prints the matching events as one <Events> document in UTF-16LE
//
// The "event log" it serves is the scenario file, re-read on every start (tests edit it to make
// the log grow):
//   {
//     "log": {"Security": [{"file": "security-4625-network-ntlm.xml", "rid": 10}, …]},
//     "liveFrom": {"Security": 12},  records with rid >= this arrive as live events, after the catch-up
//     "overlap": 1,                  the live queue repeats the last N catch-up records (as on Windows)
//     "clearedLive": {"Security": [{…}]}  live events after the log was cleared while running (ids start again)
//     "crashAfter": 2,               the first run exits with status 3 after N event lines
//     "stateFile": "/tmp/…",         counts runs (for crashAfter)
//     "fatal": "…",                  print a fatal/fallback line and exit (Constrained Language Mode)
//     "hang": true,                  say hello, then print nothing (the hung-worker check)
//     "junk": true,                  mix junk lines into the output
//     "heartbeatMs": 200             heartbeat period
//   }
// Fixture XML files are taken from eventlog-standin.fixtures/ next to this file. Messages are
// rendered from English templates as FormatDescription() / RenderingInfo would render them.
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const FIXTURES = path.join(here, 'eventlog-standin.fixtures')

const NULL_SID = (sid) => (sid === 'S-1-0-0' ? 'NULL SID' : sid)
const FAILURE = {'0xc000006d': 'Unknown user name or bad password.', '0xc0000234': 'Account locked out.'}

// English message templates (insertion strings by EventData name)
const TEMPLATES = {
  4625: (d) => `An account failed to log on.

Subject:
\tSecurity ID:\t\t${NULL_SID(d.SubjectUserSid)}
\tAccount Name:\t\t${d.SubjectUserName}
\tAccount Domain:\t\t${d.SubjectDomainName}
\tLogon ID:\t\t${d.SubjectLogonId}

Logon Type:\t\t\t${d.LogonType}

Account For Which Logon Failed:
\tSecurity ID:\t\t${NULL_SID(d.TargetUserSid)}
\tAccount Name:\t\t${d.TargetUserName}
\tAccount Domain:\t\t${d.TargetDomainName}

Failure Information:
\tFailure Reason:\t\t${FAILURE[d.Status] ?? d.FailureReason}
\tStatus:\t\t\t${d.Status}
\tSub Status:\t\t${d.SubStatus}

Process Information:
\tCaller Process ID:\t${d.ProcessId}
\tCaller Process Name:\t${d.ProcessName}

Network Information:
\tWorkstation Name:\t${d.WorkstationName}
\tSource Network Address:\t${d.IpAddress}
\tSource Port:\t\t${d.IpPort}

Detailed Authentication Information:
\tLogon Process:\t\t${d.LogonProcessName}
\tAuthentication Package:\t${d.AuthenticationPackageName}
\tTransited Services:\t${d.TransmittedServices}
\tPackage Name (NTLM only):\t${d.LmPackageName}
\tKey Length:\t\t${d.KeyLength}

This event is generated when a logon request fails. It is generated on the computer where access was attempted.`,
  4771: (d) => `Kerberos pre-authentication failed.

Account Information:
\tSecurity ID:\t\t${d.TargetSid}
\tAccount Name:\t\t${d.TargetUserName}

Service Information:
\tService Name:\t\t${d.ServiceName}

Network Information:
\tClient Address:\t\t${d.IpAddress}
\tClient Port:\t\t${d.IpPort}

Additional Information:
\tTicket Options:\t\t${d.TicketOptions}
\tFailure Code:\t\t${d.Status}
\tPre-Authentication Type:\t${d.PreAuthType}`,
  4776: (d) => `The computer attempted to validate the credentials for an account.

Authentication Package:\t${d.PackageName}
Logon Account:\t${d.TargetUserName}
Source Workstation:\t${d.Workstation}
Error Code:\t${d.Status}`,
  140: (d) => `A connection from the client computer with an IP address of ${d.IPString} failed because the user name or password is not correct.`,
  131: (d) => `The server accepted a new ${d.ConnType} connection from client ${d.ClientIP}.`,
  312: (d) => `The user "${d.Username}", on client computer "${d.IpAddress}", failed to authenticate to the RD Gateway server. The authentication method used was: "${d.AuthType}" and connection protocol used: "${d.ConnectionProtocol}". The following error occurred: "${d.ErrorCode}".`,
  18456: (d) => `Login failed for user '${d.Data1}'.${d.Data2}${d.Data3}`,
  4: (d) => `${d.process}: ${d.payload}`,
  551: (d) => `SMB Session Authentication Failure

Client Name: ${d.ClientName}
Client Address: ${sockaddr(d.ClientAddress)}
User Name: ${d.UserName}
Session ID: ${d.SessionId}
Status: The attempted logon is invalid. This is either due to a bad username or authentication information. (${d.Status})

Guidance:

You should expect this error when attempting to connect to shares using incorrect credentials.`,
}

function sockaddr(hex) {
  const b = Buffer.from(hex ?? '', 'hex')
  if (b.length < 8 || b.readUInt16LE(0) !== 2) return hex
  return `${b[4]}.${b[5]}.${b[6]}.${b[7]}:${b.readUInt16BE(2)}`
}

const unxml = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&')
const xmlText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** What the stand-in needs of an event: framing values and the insertion strings (regexes: fixtures are known input). */
function loadEvent(entry) {
  let xml = fs.readFileSync(path.join(FIXTURES, entry.file), 'utf8').trim()
  if (entry.rid !== undefined) xml = xml.replace(/<EventRecordID>\d+<\/EventRecordID>/, `<EventRecordID>${entry.rid}</EventRecordID>`)
  if (entry.user !== undefined) xml = xml.replace(/(<Data Name=["']TargetUserName["']>)[^<]*/, `$1${xmlText(entry.user)}`)
  if (entry.ip !== undefined) xml = xml.replace(/(<Data Name=["']IpAddress["']>)[^<]*/, `$1${xmlText(entry.ip)}`)
  const one = (re) => (re.exec(xml) ?? [])[1]
  const data = {}
  let pos = 0
  for (const m of xml.matchAll(/<Data(?: Name=["']([^"']+)["'])?\s*(?:\/>|>([^<]*)<\/Data>)/g)) {
    pos++
    data[m[1] ?? `Data${pos}`] = unxml(m[2] ?? '')
  }
  const ud = /<UserData>\s*<\w+[^>]*>([\s\S]*?)<\/\w+>\s*<\/UserData>/.exec(xml)
  if (ud) for (const m of ud[1].matchAll(/<(\w+)>([^<]*)<\/\1>/g)) data[m[1]] = unxml(m[2])
  const id = Number(one(/<EventID[^>]*>(\d+)<\/EventID>/))
  const tpl = TEMPLATES[id]
  return {
    xml,
    ch: entry.channel ?? unxml(one(/<Channel>([^<]*)<\/Channel>/) ?? ''),
    rid: Number(one(/<EventRecordID>(\d+)<\/EventRecordID>/)),
    t: one(/SystemTime=["']([^"']+)["']/),
    provider: unxml(one(/<Provider Name=["']([^"']+)["']/) ?? ''),
    id,
    msg: entry.msg ?? (tpl ? tpl(data) : null),
  }
}

/**
 * The subset of event-log XPath spylog generates: *[System[TERMS and EventRecordID > n and
 * TimeCreated[…]]], TERMS being terms joined by "or", each Provider[@Name='x'] and/or EventIDs.
 */
function queryFilter(xpath) {
  if (!xpath || xpath === '*') return () => true
  let body = /^\*\[System\[(.*)\]\]$/.exec(xpath)?.[1] ?? ''
  const after = /EventRecordID > (\d+)/.exec(body)
  body = body.replace(/(?:^| and )TimeCreated\[timediff\(@SystemTime\) <= \d+\]/, '').replace(/(?:^| and )EventRecordID > \d+/, '').trim()
  const unwrap = (t) => {
    t = t.trim()
    for (;;) {
      if (!t.startsWith('(') || !t.endsWith(')')) return t
      let depth = 0
      for (let i = 0; i < t.length; i++) {
        if (t[i] === '(') depth++
        else if (t[i] === ')') depth--
        if (depth === 0 && i < t.length - 1) return t
      }
      t = t.slice(1, -1).trim()
    }
  }
  const splitOr = (t) => {
    t = unwrap(t)
    const parts = []
    let depth = 0
    let start = 0
    for (let i = 0; i < t.length; i++) {
      if (t[i] === '(' || t[i] === '[') depth++
      else if (t[i] === ')' || t[i] === ']') depth--
      else if (depth === 0 && t.startsWith(' or ', i)) {
        parts.push(t.slice(start, i))
        start = i + 4
      }
    }
    parts.push(t.slice(start))
    return parts.length === 1 ? parts : parts.flatMap(splitOr)
  }
  const terms = body === '' ? [] : splitOr(body).map((t) => ({
    ids: [...t.matchAll(/EventID=(\d+)/g)].map((m) => Number(m[1])),
    provider: /Provider\[@Name=['"]([^'"]+)['"]\]/.exec(t)?.[1],
  }))
  // a term that is only "EventID=1 or EventID=2" was split into one term per id: fine either way
  return (ev) => (!after || ev.rid > Number(after[1])) &&
    (terms.length === 0 || terms.some((t) => (t.ids.length === 0 || t.ids.includes(ev.id)) && (t.provider === undefined || t.provider === ev.provider)))
}

function readScenario(file) {
  const sc = JSON.parse(fs.readFileSync(file, 'utf8'))
  const log = {}
  for (const [ch, entries] of Object.entries(sc.log ?? {})) log[ch] = entries.map((e) => loadEvent({...e, channel: e.channel ?? ch}))
  return {sc, log}
}

function wevtutil(scenarioFile, args) {
  const {log} = readScenario(scenarioFile)
  const [verb, ch, ...opts] = args
  if (verb !== 'qe') {
    process.stderr.write(`stand-in wevtutil: unsupported verb ${verb}\n`)
    process.exit(87)
  }
  const opt = (name) => opts.find((o) => o.toLowerCase().startsWith(`/${name}:`))?.slice(name.length + 2)
  if (!(ch in log)) {
    process.stderr.write(`Failed to read events. The specified channel could not be found.\n`)
    process.exit(15007)
  }
  const keep = queryFilter(opt('q'))
  let events = log[ch].filter(keep).sort((a, b) => a.rid - b.rid)
  if (opt('rd') === 'true') events.reverse()
  const count = Number(opt('c') ?? Infinity)
  events = events.slice(0, count)
  const rendered = (opt('f') ?? '').toLowerCase() === 'renderedxml'
  const body = events.map((e) => {
    const x = e.xml.replace(/>\s+</g, '><')
    return rendered && e.msg ? x.replace(/<\/Event>$/, `<RenderingInfo Culture='en-US'><Message>${xmlText(e.msg)}</Message></RenderingInfo></Event>`) : x
  }).join('')
  const text = opt('e') ? `<${opt('e')}>${body}</${opt('e')}>` : body
  const out = opt('uni') === 'true' ? Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]) : Buffer.from(text, 'utf8')
  process.stdout.write(out)
}

function worker(scenarioFile) {
  const {sc, log} = readScenario(scenarioFile)
  let run = 1
  if (sc.stateFile) {
    run = (fs.existsSync(sc.stateFile) ? Number(fs.readFileSync(sc.stateFile, 'utf8')) : 0) + 1
    fs.writeFileSync(sc.stateFile, String(run))
  }
  const lines = []
  let events = 0
  const out = (o) => lines.push(JSON.stringify(o))
  const send = (ev) => {
    events++
    out({type: 'event', ch: ev.ch, rid: ev.rid, t: ev.t, provider: ev.provider, id: ev.id, xml: ev.xml, msg: ev.msg})
    if (sc.junk) {
      lines.push('{"type":"event","ch":"Security"', 'WARNING: something PowerShell printed', '{"type":"event","ch":"Security","rid":-1}')
      // invalid UTF-8 and a NUL inside a line, and a line far over the length limit
      lines.push(Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x22, 0x7d]), '{"type":"hb","pad":"' + 'x'.repeat(3 << 20) + '"}')
    }
    if (sc.crashAfter !== undefined && run === 1 && events >= sc.crashAfter) {
      flush()
      process.exitCode = 3
      throw new Error('crash')
    }
  }
  const flush = () => {
    for (const l of lines.splice(0)) fs.writeSync(1, Buffer.concat([typeof l === 'string' ? Buffer.from(l) : l, Buffer.from('\n')]))
  }

  let input = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (d) => {
    input += d
    const nl = input.indexOf('\n')
    if (nl < 0 || input === null) return
    const cfg = JSON.parse(input.slice(0, nl))
    input = null
    process.stdin.removeAllListeners('data')
    process.stdin.on('data', () => {})
    if (sc.fatal) {
      out({type: 'fatal', fallback: true, message: sc.fatal})
      flush()
      process.exit(3)
    }
    out({type: 'hello', v: 1, mode: 'FullLanguage', ps: 'stand-in'})
    if (sc.hang) {
      flush()
      return
    }
    try {
      const live = []
      for (const ch of cfg.channels) {
        const all = (log[ch.ch] ?? []).slice().sort((a, b) => a.rid - b.rid)
        if (!(ch.ch in log)) {
          out({type: 'error', ch: ch.ch, message: 'cannot subscribe: The specified channel could not be found.'})
          continue
        }
        const liveFrom = sc.liveFrom?.[ch.ch] ?? Infinity
        const newest = all.length ? all[all.length - 1].rid : null
        let xpath = ch.catchup
        if (ch.after !== null && newest !== null && newest < ch.after) {
          out({type: 'reset', ch: ch.ch, last: newest})
          xpath = ch.reset
        }
        const sent = []
        if (xpath) {
          const keep = queryFilter(xpath)
          for (const ev of all) if (ev.rid < liveFrom && keep(ev)) {
            send(ev)
            sent.push(ev)
          }
        }
        out({type: 'caughtup', ch: ch.ch, last: newest})
        const keepLive = queryFilter(ch.live)
        live.push(...sent.slice(Math.max(0, sent.length - (sc.overlap ?? 0))), ...all.filter((ev) => ev.rid >= liveFrom && keepLive(ev)))
        for (const e of sc.clearedLive?.[ch.ch] ?? []) live.push(loadEvent({...e, channel: ch.ch}))
      }
      for (const ev of live) send(ev)
    } catch (e) {
      if (e.message === 'crash') process.exit(3)
      throw e
    }
    flush()
    if (sc.heartbeatMs) setInterval(() => fs.writeSync(1, '{"type":"hb"}\n'), sc.heartbeatMs)
  })
  process.stdin.on('end', () => process.exit(0))
}

const argv = process.argv.slice(2)
if (argv[0] === '--wevtutil') wevtutil(argv[1], argv.slice(2))
else worker(argv[0])
