import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {repoRoot} from './support/python.js'

function spylog(...args: string[]): {status: number | null; stdout: string; stderr: string} {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

describe('spylog --help', () => {
  it('lists the commands and shows examples', () => {
    const r = spylog('--help')
    expect(r.status).to.equal(0)
    expect(r.stdout).to.match(/COMMANDS/)
    expect(r.stdout).to.match(/EXAMPLES[\s\S]*\$ spylog regex/)
  })

  it('shows examples for every command', () => {
    const dir = path.join(repoRoot, 'dist', 'src', 'commands')
    const commands = fs.readdirSync(dir, {recursive: true, encoding: 'utf8'})
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.replace(/\.js$/, '').split(path.sep).filter((p) => p !== 'index'))
    expect(commands.length).to.be.greaterThan(1)
    for (const parts of commands) {
      const r = spylog(...parts, '--help')
      expect(r.status, parts.join(' ')).to.equal(0)
      expect(r.stdout, parts.join(' ')).to.match(/EXAMPLES[\s\S]*\$ spylog /)
    }
  })
})
