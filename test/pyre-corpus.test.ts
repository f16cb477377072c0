import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {loadFilterFile} from '../src/engine/fail2ban/filterfile.js'
import {expandTags, rewriteInlineFlags} from '../src/engine/fail2ban/tags.js'
import {compilePython} from '../src/engine/patterns/pyre.js'
import {DateDetector} from '../src/engine/dates/detector.js'
import {python, repoRoot, runPython} from './support/python.js'

const corpus = process.env.F2B_CORPUS ?? path.resolve(repoRoot, '..', 'shared', 'fail2ban-corpus')

interface PyResult { error?: string; r?: (null | {span: [number, number]; g: (string | null)[]})[] }

/** Option sets a corpus log uses (plus none), test.* keys removed. */
function optionSets(log: string): Record<string, string>[] {
  const sets = new Map<string, Record<string, string>>([['{}', {}]])
  if (!fs.existsSync(log)) return [...sets.values()]
  for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
    const m = /^#+ ?filterOptions:(.+)$/.exec(line.replace(/\r$/, ''))
    if (!m) continue
    let v: unknown
    try { v = JSON.parse(m[1]) } catch { continue }
    for (const o of Array.isArray(v) ? v : [v]) {
      const opts: Record<string, string> = {}
      for (const [k, x] of Object.entries(o as Record<string, unknown>)) if (!k.startsWith('test.')) opts[k] = String(x)
      sets.set(JSON.stringify(Object.entries(opts).sort()), opts)
    }
  }
  return [...sets.values()]
}

describe('Python regex translation on the fail2ban corpus', function () {
  before(function () {
    if (!fs.existsSync(corpus) || !python()) this.skip()
  })

  it('agrees with python3 re on every corpus regex and its sample lines', function () {
    this.timeout(300_000)
    const filterDir = path.join(corpus, 'filter.d')
    const cases: {p: string; flags: string; s: string[]; label: string; multiline: boolean}[] = []
    for (const file of fs.readdirSync(filterDir).filter((f) => f.endsWith('.conf') && !f.includes('common')).sort()) {
      const name = file.slice(0, -5)
      const log = path.join(corpus, 'logs', name)
      const raw = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l && !l.startsWith('#')) : []
      for (const params of optionSets(log)) {
        const def = loadFilterFile(path.join(filterDir, file), params)
        const dates = new DateDetector(def.datepattern)
        const cut = raw.map((l) => {
          const h = dates.detect(l)
          return h ? l.slice(0, h.start) + l.slice(h.end) : l
        })
        const subjects = [...new Set([...raw, ...cut])]
        const ml = def.maxlines > 1
        const regexes: [string, boolean][] = [
          ...(def.prefregex ? [[def.prefregex, false] as [string, boolean]] : []),
          ...def.failregex.map((r) => [r, ml] as [string, boolean]),
          ...def.ignoreregex.map((r) => [r, false] as [string, boolean]),
        ]
        // What failregexes see behind a <F-CONTENT> prefregex.
        let contents: string[] = []
        if (def.prefregex?.includes('<F-CONTENT>')) {
          const pre = compilePython(rewriteInlineFlags(expandTags(def.prefregex)), {singleLine: true})
          contents = subjects.map((s) => pre.exec(s)).filter((m) => m !== null).map((m) => pre.group(m!, 'content') ?? '')
        }
        for (const [r, multiline] of regexes) {
          cases.push({p: rewriteInlineFlags(expandTags(r)), flags: multiline ? 'm' : '', s: [...subjects, ...contents], label: `${name}${JSON.stringify(params)}`, multiline})
        }
      }
    }
    const py = runPython<PyResult[]>('py_re.py', cases)
    let compared = 0
    const mismatches: string[] = []
    cases.forEach((c, i) => {
      expect(py[i].error, `${c.label}: python rejects ${c.p}`).to.equal(undefined)
      const re = compilePython(c.p, {multiline: c.multiline, singleLine: !c.multiline})
      c.s.forEach((s, j) => {
        compared++
        const want = py[i].r![j]
        const m = re.exec(s)
        const got = m === null ? null : {span: [m.index, m.index + m[0].length], g: (want?.g ?? []).map((_, k) => m[re.pyIndex[k + 1]] ?? null)}
        const w = want === null ? null : {span: want.span, g: want.g}
        if (JSON.stringify(got) !== JSON.stringify(w) && mismatches.length < 10) {
          mismatches.push(`${c.label} ${JSON.stringify(c.p).slice(0, 120)} on ${JSON.stringify(s).slice(0, 120)}: python ${JSON.stringify(w)} spylog ${JSON.stringify(got)}`)
        }
      })
    })
    expect(mismatches, mismatches.join('\n')).to.deep.equal([])
    expect(compared).to.be.greaterThan(50_000)
    console.log(`      ${cases.length} regexes, ${compared} (regex, line) pairs compared`)
  })
})
