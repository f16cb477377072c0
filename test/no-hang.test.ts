import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {loadFilterFile} from '../src/engine/fail2ban/filterfile.js'
import {Fail2banFilter} from '../src/engine/filters/fail2ban.js'
import {repoRoot} from './support/python.js'

const corpus = path.resolve(repoRoot, '..', 'shared', 'fail2ban-corpus')
const LINE = 65536

/** Hostile lines for one filter: long runs built from its own literals, separators and addresses. */
function hostileLines(regexes: string[]): string[] {
  const words = [...new Set(regexes.join(' ').match(/[A-Za-z][A-Za-z_-]{2,}/g) ?? ['x'])].slice(0, 40)
  const fill = (unit: string): string => unit.repeat(Math.ceil(LINE / unit.length)).slice(0, LINE)
  return [
    fill('a'),
    fill(' '),
    fill(':'),
    fill('[a:'),
    fill('1.2.3.4 '),
    fill('from 192.0.2.1 port 22 '),
    fill(words.join(' ') + ' '),
    fill(words.join('') + '='),
    'Jan 23 21:59:59 host sshd[1]: ' + fill(words.join(' ') + ' from 192.0.2.1 '),
    fill('"' + words[0] + '" '),
  ]
}

describe('no hang: hostile 64 KiB lines through every corpus filter', function () {
  before(function () {
    if (!fs.existsSync(corpus)) this.skip()
  })

  it('finishes every filter on every hostile line, cutting lines at 64 KiB', function () {
    this.timeout(600_000)
    const dir = path.join(corpus, 'filter.d')
    const names = fs.readdirSync(dir).filter((f) => f.endsWith('.conf') && !f.includes('common')).map((f) => f.slice(0, -5))
    const slowest: [number, string][] = []
    for (const name of names) {
      const def = loadFilterFile(path.join(dir, `${name}.conf`), {})
      const filter = new Fail2banFilter(def, {checkAll: true})
      const lines = hostileLines([...def.failregex, ...def.ignoreregex, def.prefregex ?? ''])
      const t = performance.now()
      // ASCII lines take the variant V8 can run on its linear-time engine. Lines with non-ASCII
      // text take the exact Unicode variant, which Node 20's linear engine refuses: see the notes
      // in src/engine/patterns/safety.ts; that path is bounded by the line length only.
      for (const l of lines) filter.processLine(l + 'x'.repeat(100))
      slowest.push([performance.now() - t, name])
      // Every line was longer than the limit and was cut, not refused.
      expect(filter.truncated, name).to.equal(lines.length)
    }
    slowest.sort((a, b) => b[0] - a[0])
    console.log(`      ${names.length} filters; slowest: ${slowest.slice(0, 3).map(([ms, n]) => `${n} ${Math.round(ms)} ms`).join(', ')}`)
  })
})
