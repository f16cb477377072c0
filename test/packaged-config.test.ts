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
})
