import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {loadFilterFile} from '../src/engine/fail2ban/filterfile.js'
import {Fail2banFilter} from '../src/engine/filters/fail2ban.js'
import {repoRoot} from './support/python.js'

const corpus = process.env.F2B_CORPUS ?? path.resolve(repoRoot, '..', 'shared', 'fail2ban-corpus')
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

/**
 * Each hostile line is fed in three forms, which the regexes run in different variants (pyre.ts):
 * pure ASCII; with a BMP non-ASCII character inside the first 64 KiB (the BMP variant); and with
 * an astral character, i.e. a surrogate pair (the exact Unicode variant).
 */
const FORMS: readonly [string, (l: string) => string][] = [
  ['ascii', (l) => l + 'x'.repeat(100)],
  ['bmp', (l) => 'é' + l],
  ['astral', (l) => '\u{1F600}' + l],
]

describe('no hang: hostile 64 KiB lines through every corpus filter', function () {
  before(function () {
    if (!fs.existsSync(corpus)) this.skip()
  })

  it('finishes every filter on every hostile line in every form, cutting lines at 64 KiB', function () {
    this.timeout(1_800_000)
    const dir = path.join(corpus, 'filter.d')
    const names = fs.readdirSync(dir).filter((f) => f.endsWith('.conf') && !f.includes('common')).map((f) => f.slice(0, -5))
    const slowest = new Map<string, [number, string][]>(FORMS.map(([form]) => [form, []]))
    for (const name of names) {
      const def = loadFilterFile(path.join(dir, `${name}.conf`), {})
      const filter = new Fail2banFilter(def, {checkAll: true})
      const lines = hostileLines([...def.failregex, ...def.ignoreregex, def.prefregex ?? ''])
      for (const [form, make] of FORMS) {
        const t = performance.now()
        for (const l of lines) filter.processLine(make(l))
        const ms = performance.now() - t
        slowest.get(form)!.push([ms, name])
        if (process.env.SPYLOG_NO_HANG_VERBOSE) console.log(`      ${name} ${form}: ${Math.round(ms)} ms`)
      }
      // Every line was longer than the limit and was cut, not refused.
      expect(filter.truncated, name).to.equal(FORMS.length * lines.length)
    }
    for (const [form, list] of slowest) {
      list.sort((a, b) => b[0] - a[0])
      const total = list.reduce((s, [ms]) => s + ms, 0)
      console.log(`      ${form}: ${names.length} filters in ${Math.round(total)} ms; slowest: ${list.slice(0, 5).map(([ms, n]) => `${n} ${Math.round(ms)} ms`).join(', ')}`)
    }
  })
})
