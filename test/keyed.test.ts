import {expect} from 'chai'
import fc from 'fast-check'
import {KeyedTable, keyHash, type Keyed} from '../src/engine/filters/keyed.js'

interface Entry extends Keyed<Entry> {
  value: number
}

const entry = (key: string, hash: number, value: number): Entry => ({key, hash, value, chain: undefined, older: undefined, newer: undefined})

/** One step against the table and a Map (whose iteration order is insertion order). */
type Op = {op: 'put'; key: string; value: number} | {op: 'get'; key: string} | {op: 'del'; key: string} | {op: 'evict'}

describe('KeyedTable (multi-line session table)', () => {
  // Few distinct keys, so gets hit and deletes find; `collide` gives many keys one hash.
  const keys = fc.constantFrom('srv[1]:', 'srv[2]:', 'web01 sshd[6220]: ', 'a', 'b', '', 'é', 'srv[10]:', 'srv[01]:')
  const ops = fc.array(
    fc.oneof(
      fc.record({op: fc.constant('put' as const), key: keys, value: fc.integer()}),
      fc.record({op: fc.constant('get' as const), key: keys}),
      fc.record({op: fc.constant('del' as const), key: keys}),
      fc.record({op: fc.constant('evict' as const)}),
    ),
    {maxLength: 200},
  )

  for (const collide of [false, true]) {
    it(`agrees with a Map on get, add, delete and oldest-first eviction${collide ? ' when every key has the same hash' : ''}`, () => {
      const hash = collide ? () => 42 : keyHash
      fc.assert(
        fc.property(ops, (steps: Op[]) => {
          const t = new KeyedTable<Entry>(2)
          const m = new Map<string, number>()
          for (const s of steps) {
            if (s.op === 'put') {
              // The filter adds only keys it does not have (it merges into the others).
              if (t.get(s.key, hash(s.key)) === undefined) {
                t.add(entry(s.key, hash(s.key), s.value))
                m.set(s.key, s.value)
              }
            } else if (s.op === 'get') {
              expect(t.get(s.key, hash(s.key))?.value).to.equal(m.get(s.key))
            } else if (s.op === 'del') {
              const e = t.get(s.key, hash(s.key))
              if (e !== undefined) t.delete(e)
              m.delete(s.key)
            } else {
              const e = t.oldest()
              const k = m.keys().next()
              expect(e?.key).to.equal(k.done ? undefined : k.value)
              if (e !== undefined) {
                t.delete(e)
                m.delete(e.key)
              }
            }
            expect(t.size).to.equal(m.size)
          }
          expect([...t.entries()].map((e) => [e.key, e.value])).to.deep.equal([...m])
          t.clear()
          expect([t.size, t.oldest(), t.get('a', hash('a'))]).to.deep.equal([0, undefined, undefined])
        }),
        {numRuns: 500, seed: 20261121},
      )
    })
  }

  it('hashes strings apart that differ in one character or in length', () => {
    const seen = new Set<number>()
    for (let i = 0; i < 2000; i++) seen.add(keyHash(`web01 sshd[${i}]: `))
    expect(seen.size).to.equal(2000)
    expect(keyHash('ab')).to.not.equal(keyHash('ba'))
    expect(keyHash('')).to.not.equal(keyHash('\0'))
  })
})
