import {expect} from 'chai'
import path from 'node:path'
import {loadLuaConfig} from '../src/engine/config/lua.js'
import {buildFilter} from '../src/engine/filters/build.js'
import {repoRoot} from './support/python.js'

const dir = path.join(repoRoot, 'config')

describe('the packaged configuration', () => {
  for (const platform of ['linux', 'windows']) {
    it(`loads on ${platform}, with a source for every filter and every filter buildable`, () => {
      const cfg = loadLuaConfig(dir, {platform})
      expect(cfg.filters.length).to.be.at.least(17)
      const sources = new Map(cfg.sources.map((s) => [s.name, s]))
      for (const f of cfg.filters) {
        for (const s of f.sources) expect(sources.has(s), `${f.name} reads ${s}`).to.equal(true)
        expect(buildFilter(f).failregex.length, f.name).to.be.greaterThan(0)
      }
      const auth = sources.get('auth')!
      expect(auth.kind).to.equal('file')
      const p = (auth as {path: string}).path
      if (platform === 'windows') expect(p).to.equal(String.raw`C:\ProgramData\ssh\logs\sshd.log`)
      else expect(p).to.equal('/var/log/auth.log')
      expect(cfg.whiteIp.length).to.be.at.least(2)
    })
  }

  it('has a jail for every enabled filter, each banning through an action it defines; Windows jails only on Windows', () => {
    for (const platform of ['linux', 'windows']) {
      const cfg = loadLuaConfig(dir, {platform})
      const jails = cfg.jails.filter((j) => j.enabled)
      const actions = new Set(cfg.actions.map((a) => a.name))
      const read = new Set(jails.flatMap((j) => j.filters))
      for (const f of cfg.filters.filter((x) => x.enabled)) expect(read.has(f.name), `${platform}: a jail reads ${f.name}`).to.equal(true)
      for (const j of jails) {
        expect(j.actions.length, j.name).to.be.greaterThan(0)
        for (const a of j.actions) expect(actions.has(a.name), `${j.name} → ${a.name}`).to.equal(true)
      }
      const win = jails.filter((j) => j.name.startsWith('windows-')).map((j) => j.name)
      if (platform === 'windows') expect(win).to.include.members(['windows-logon', 'windows-rdp', 'windows-mssql', 'windows-openssh', 'windows-iis', 'windows-ftp', 'windows-exchange-smtp'])
      else expect(win).to.deep.equal([])
      expect(cfg.actions.find((a) => a.name === 'firewall')!.builtin?.kind).to.equal('firewall')
    }
  })
})
