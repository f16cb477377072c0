import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import type {ProcessSource} from '../src/engine/config/model.js'
import {splitLuaArgs} from '../src/engine/actions/argv.js'
import {createProcessSource, expandVars, processCommand, type ProcessLineSource} from '../src/engine/sources/process.js'
import type {LogRecord} from '../src/engine/types.js'
import {tempTree} from './support/files.js'
import {context} from './support/sources.js'
import {alive, waitFor} from './support/wait.js'

function procCfg(command: string, extra: Partial<ProcessSource> = {}): ProcessSource {
  return {kind: 'process', name: 'proc', origin: {file: 't', line: 1}, spec: `process:${command}`, implicit: false, command, restart: 0.05, maxLine: 4096, monitor: ['stdout'], ...extra}
}

const running: ProcessLineSource[] = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop()
})

async function start(cfg: ProcessSource, log: string[] = []): Promise<{src: ProcessLineSource; records: LogRecord[]}> {
  const src = createProcessSource(cfg, context(log))
  running.push(src)
  const records: LogRecord[] = []
  await src.start((r) => records.push(r))
  return {src, records}
}

describe('process source: command lines', () => {
  it('splits command strings as lua-spylog does (quotes, "" escapes, name="value", tail after newline)', () => {
    expect(splitLuaArgs('tshark -i eth0  -l')).to.deep.equal({args: ['tshark', '-i', 'eth0', '-l']})
    expect(splitLuaArgs('"C:\\Program Files\\Wireshark\\tshark.exe" -Y "sip.Method == ""REGISTER"""')).to.deep.equal({
      args: ['C:\\Program Files\\Wireshark\\tshark.exe', '-Y', 'sip.Method == "REGISTER"'],
    })
    expect(splitLuaArgs('prog filter="a b" x=1')).to.deep.equal({args: ['prog', 'filter=a b', 'x=1']})
    expect(splitLuaArgs('prog a\nignored rest')).to.deep.equal({args: ['prog', 'a'], tail: 'ignored rest'})
    expect(splitLuaArgs('')).to.deep.equal({args: []})
    expect(splitLuaArgs('prog "a"b x"y"z\tw')).to.deep.equal({args: ['prog', 'ab', 'xyz\tw']})
  })

  it('builds argv and environment: args string or list, env inherit + set with %VAR%/$VAR/${VAR}', () => {
    expect(processCommand({command: 'prog', args: '-a "b c"'})).to.deep.include({file: 'prog', args: ['-a', 'b c']})
    expect(processCommand({command: 'prog', args: ['-a', 'b c']})).to.deep.include({file: 'prog', args: ['-a', 'b c'], env: undefined})
    const parent = {HOME: '/root', PATH: '/bin', SECRET: 'x'}
    const c = processCommand({command: 'prog', env: {inherit: ['PATH', 'MISSING'], set: {A: '%HOME%/a', B: '$HOME:${PATH}', C: '%NOPE%-'}}}, parent)
    expect(c.env).to.deep.equal({PATH: '/bin', A: '/root/a', B: '/root:/bin', C: '-'})
    expect(expandVars('100%', parent)).to.equal('100%')
  })
})

describe('process source (real programs)', () => {
  it('runs the command without a shell and reads stdout lines', async () => {
    // Shell syntax in arguments reaches the program literally.
    const {src, records} = await start(procCfg('/bin/echo "a; touch /tmp/spylog-pwned" $(id) `id`'))
    await waitFor('a record', () => records[0])
    expect(records[0]!.text).to.equal('a; touch /tmp/spylog-pwned $(id) `id`')
    expect(records[0]!.fields).to.include({stream: 'stdout'})
    expect(records[0]!.fields!.pid).to.be.a('number')
    expect(src.starts).to.be.greaterThan(0)
  })

  it('reads stderr, or both streams, as configured; eol is honoured', async () => {
    const script = "printf 'out1|out2|'; printf 'err1|' >&2"
    const a = await start(procCfg('/bin/sh', {args: ['-c', script], monitor: ['stderr'], eol: {text: '|', pattern: false}, restart: 60}))
    await waitFor('a stderr record', () => a.records[0])
    expect(a.records.map((r) => [r.text, r.fields!.stream])).to.deep.equal([['err1', 'stderr']])
    const b = await start(procCfg('/bin/sh', {args: ['-c', script], monitor: ['stdout', 'stderr'], eol: {text: '|', pattern: false}, restart: 60}))
    await waitFor('three records', () => b.records.length >= 3)
    expect(b.records.map((r) => r.text).sort()).to.deep.equal(['err1', 'out1', 'out2'])
  })

  it('restarts the program after it exits, and reports the exit', async () => {
    const dir = tempTree({})
    const counter = path.join(dir, 'n')
    const log: string[] = []
    // Each run appends to the counter file and prints how many runs there were.
    const {src, records} = await start(procCfg('/bin/sh', {args: ['-c', `echo x >> '${counter}'; echo run $(wc -l < '${counter}'); exit 3`]}), log)
    await waitFor('three runs', () => records.length >= 3)
    expect(records.slice(0, 3).map((r) => r.text.replace(/\s+/g, ' '))).to.deep.equal(['run 1', 'run 2', 'run 3'])
    expect(src.starts).to.be.at.least(3)
    expect(log.join('\n')).to.match(/program exited with status 3; restarting/)
    expect(fs.readFileSync(counter, 'utf8').split('\n').length).to.be.at.least(4)
  })

  it('passes only the configured environment', async () => {
    process.env.SPYLOG_TEST_VISIBLE = 'seen'
    process.env.SPYLOG_TEST_HIDDEN = 'hidden'
    try {
      const {records} = await start(
        procCfg('/bin/sh', {args: ['-c', 'echo "[$SPYLOG_TEST_VISIBLE][$SPYLOG_TEST_HIDDEN][$GREETING]"'], env: {inherit: ['SPYLOG_TEST_VISIBLE'], set: {GREETING: 'hi %SPYLOG_TEST_HIDDEN% $SPYLOG_TEST_VISIBLE'}}, restart: 60}),
      )
      await waitFor('a record', () => records[0])
      expect(records[0]!.text).to.equal('[seen][][hi hidden seen]')
    } finally {
      delete process.env.SPYLOG_TEST_VISIBLE
      delete process.env.SPYLOG_TEST_HIDDEN
    }
  })

  it('reports a program that cannot start as retrying with the error', async () => {
    const {src} = await start(procCfg('/nonexistent/spylog-no-such-program --flag'))
    expect(src.stats.state).to.equal('retrying')
    expect(src.stats.lastError).to.match(/ENOENT/)
  })

  it('reports a command without a program as failed, without retrying', async () => {
    const {src} = await start(procCfg('   '))
    expect(src.stats.state).to.equal('failed')
    expect(src.stats.lastError).to.match(/no program in the command/)
  })

  it('stop() ends the program', async () => {
    const {src, records} = await start(procCfg('/bin/sh', {args: ['-c', 'echo started; exec sleep 600']}))
    await waitFor('output', () => records[0])
    const pid = src.pid!
    expect(alive(pid)).to.equal(true)
    await src.stop()
    expect(src.stats.state).to.equal('stopped')
    await waitFor('the program gone', () => !alive(pid))
  })

  it('cuts endless output lines and counts them, without unbounded memory', async () => {
    const log: string[] = []
    const {src, records} = await start(procCfg('/bin/sh', {args: ['-c', "head -c 3000000 /dev/zero | tr '\\0' 'z'; echo; echo fine"], maxLine: 4096, restart: 60}), log)
    await waitFor('two records', () => records.length >= 2)
    expect(records[0]!.text).to.have.length(4096)
    expect(records[1]!.text).to.equal('fine')
    expect(src.stats.drops).to.equal(1)
    expect(log.filter((l) => /dropping input/.test(l))).to.have.length(1)
  })
})
