import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {runTestcases} from '../src/engine/testcases/harness.js'
import {luaConfigProvider} from '../src/engine/testcases/spylog.js'
import {repoRoot} from './support/python.js'
import {tempTree as tree} from './support/files.js'


const CONFIG = {
  'config/lib/prefix.lua': `return { daemon = function(name) return [[^\\s*\\S+ ]] .. name .. [[\\[\\d+\\]: ]] end }\n`,
  'config/filters/demo.lua': `local p = require 'lib.prefix'
FILTER{ "demo";
  enabled = true;
  source = "file:/var/log/demo.log";
  engine = "fail2ban";
  prefregex = p.daemon('demod') .. [[<F-CONTENT>.+</F-CONTENT>$]];
  failregex = {
    [[^login failed for <F-USER>\\S+</F-USER> from <HOST>$]],
    [[^too many attempts from <HOST>$]],
  };
}
FILTER{ "lua-demo";
  source = "file:/var/log/demo.log";
  failregex = "^(%d+%-%d+%-%d+ %d+:%d+:%d+) denied ([%d%.]+)$";
}
`,
}

const SAMPLES = {
  'testcases/demo': `# failJSON: { "time": "2005-03-01T10:00:00", "match": true, "host": "192.0.2.5", "user": "bob" }
Mar  1 10:00:00 box demod[12]: login failed for bob from 192.0.2.5
# failJSON: { "time": "2005-03-01T10:00:01", "match": true, "host": "198.51.100.7" }
Mar  1 10:00:01 box demod[12]: too many attempts from 198.51.100.7
# injection: the user name is attacker-controlled
# failJSON: { "match": false }
Mar  1 10:00:02 box demod[12]: login failed for x from 192.0.2.99 from 192.0.2.5 now
# failJSON: { "match": false }
Mar  1 10:00:03 box otherd[12]: login failed for bob from 192.0.2.5
`,
  'testcases/lua-demo': `# failJSON: { "time": "2005-03-01T10:00:00", "match": true, "host": "203.0.113.9" }
2005-03-01 10:00:00 denied 203.0.113.9
`,
}

describe('spylog testcases on a Lua configuration', () => {
  it('runs the filters the configuration defines, built like the daemon builds them', async () => {
    const dir = tree({...CONFIG, ...SAMPLES})
    const report = await runTestcases({filterSources: [], provider: luaConfigProvider(path.join(dir, 'config')), logsDir: path.join(dir, 'testcases')})
    expect(report.filters.map((f) => [f.name, f.passed, f.failed, f.problems.length])).to.deep.equal([['demo', 4, 0, 0], ['lua-demo', 1, 0, 0]])
    expect(report.failed).to.equal(0)
  })

  it('reports a wrong expectation and a configuration error with its file and line', async () => {
    const dir = tree({...CONFIG, ...SAMPLES, 'testcases/demo': SAMPLES['testcases/demo'].replace('"host": "192.0.2.5"', '"host": "192.0.2.6"')})
    const report = await runTestcases({filterSources: [], provider: luaConfigProvider(path.join(dir, 'config')), logsDir: path.join(dir, 'testcases')})
    const demo = report.filters.find((f) => f.name === 'demo')!
    expect(demo.failed).to.equal(1)
    expect(demo.failures[0].line).to.equal(2)

    const bad = tree({'config/filters/x.lua': 'FILTER{ "x"; source = "file:/x"; engine = "fail2ban"; failregex = {[[^no host here$]]} }\n', 'testcases/x': 'x\n'})
    const r2 = await runTestcases({filterSources: [], provider: luaConfigProvider(path.join(bad, 'config')), logsDir: path.join(bad, 'testcases')})
    expect(r2.unusable).to.equal(true)
    expect(r2.problems.map((p) => p.message).join('\n')).to.match(/filters\/x\.lua:1: .*failure-id group/)
  })

  it('is what `spylog testcases --config --samples` runs (last line N passed, N failed)', () => {
    const dir = tree({...CONFIG, ...SAMPLES})
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'testcases', '--config', path.join(dir, 'config'), '--samples', path.join(dir, 'testcases')], {encoding: 'utf8'})
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout.trim().split('\n').pop()).to.equal('5 passed, 0 failed')
  })
})
