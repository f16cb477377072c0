import {expect} from 'chai'
import {CounterStore, ipv4Number, ipv4Text, ownString} from '../src/engine/jails/counter.js'
import {prng} from './support/files.js'

describe('CounterStore', () => {
  describe('plain window (lua-spylog: opens at the first failure, lasts findtime)', () => {
    it('counts within findtime of the window start and restarts after it', () => {
      const c = new CounterStore({findtime: 60})
      expect(c.add('a', 1, 1000)).to.equal(1)
      expect(c.add('a', 1, 1030)).to.equal(2)
      expect(c.add('a', 1, 1060)).to.equal(3) // exactly findtime after the start: still inside
      expect(c.add('a', 1, 1061)).to.equal(1) // past it: a new window from 1061
      expect(c.add('a', 1, 1100)).to.equal(2)
      expect(c.get('a', 1100)).to.equal(2)
      expect(c.get('a', 1122)).to.equal(0)
      expect(c.add('b', 1, 1100)).to.equal(1)
      expect(c.size).to.equal(2)
    })

    it('takes out-of-order event times by distance from the window start', () => {
      const c = new CounterStore({findtime: 60})
      c.add('a', 1, 1000)
      expect(c.add('a', 1, 970)).to.equal(2) // 30 s earlier: same window
      expect(c.add('a', 1, 900)).to.equal(1) // 100 s earlier: window restarted
    })

    it('accumulates arbitrary deltas', () => {
      const c = new CounterStore({findtime: 10})
      expect(c.add('a', 2.5, 0)).to.equal(2.5)
      expect(c.add('a', 4, 5)).to.equal(6.5)
    })

    it('purges expired windows, deletes keys and reuses their slots while growing', () => {
      const c = new CounterStore({findtime: 60, capacity: 16})
      for (let i = 0; i < 1000; i++) c.add(`k${i}`, 1, i)
      expect(c.size).to.equal(1000)
      expect(c.purge(1000)).to.equal(940) // windows started before 940 have passed
      expect(c.size).to.equal(60)
      expect(c.get('k999', 1000)).to.equal(1)
      expect(c.delete('k999')).to.equal(true)
      expect(c.delete('k999')).to.equal(false)
      expect(c.add('new', 1, 1000)).to.equal(1)
      expect(c.add('k998', 1, 1000)).to.equal(2)
      expect(c.purge(5000)).to.equal(60)
      expect(c.size).to.equal(0)
    })
  })

  describe('sliding window of buckets (resolution)', () => {
    it('sums the buckets within findtime of the latest one', () => {
      const c = new CounterStore({findtime: 60, resolution: 10}) // 6 buckets
      expect(c.add('a', 1, 0)).to.equal(1) // bucket 0
      expect(c.add('a', 1, 15)).to.equal(2) // bucket 1
      expect(c.add('a', 1, 55)).to.equal(3) // bucket 5: window buckets 0..5
      expect(c.add('a', 1, 61)).to.equal(3) // bucket 6: bucket 0 left the window
      expect(c.add('a', 1, 119)).to.equal(2) // bucket 11: buckets 6..11 → 61 and 119
      expect(c.get('a', 119)).to.equal(2)
      expect(c.get('a', 175)).to.equal(0)
    })

    it('slides (unlike the plain window, which would restart)', () => {
      const plain = new CounterStore({findtime: 60})
      const slide = new CounterStore({findtime: 60, resolution: 1})
      const times = [0, 40, 70, 95]
      expect(times.map((t) => plain.add('x', 1, t))).to.deep.equal([1, 2, 1, 2])
      expect(times.map((t) => slide.add('x', 1, t))).to.deep.equal([1, 2, 2, 3])
    })

    it('counts late events still inside the window and ignores older ones', () => {
      const c = new CounterStore({findtime: 30, resolution: 10})
      c.add('a', 1, 100)
      expect(c.add('a', 1, 85)).to.equal(2) // bucket 8, window 8..10
      expect(c.add('a', 1, 20)).to.equal(2) // bucket 2: too old
    })

    it('stays small with a long findtime and a fine resolution, and purges', () => {
      const c = new CounterStore({findtime: 86400, resolution: 1})
      // one failure every 10 minutes for 199 × 10 minutes: the last day holds 144 of them
      for (let i = 0; i < 200; i++) c.add('a', 1, i * 600)
      expect(c.get('a', 199 * 600)).to.equal(144)
      expect(c.purge(199 * 600 + 86399)).to.equal(0)
      expect(c.purge(199 * 600 + 86400)).to.equal(1)
      expect(c.size).to.equal(0)
    })
  })

  it('copies long keys so a key never pins the log line it was cut from', () => {
    const line = 'x'.repeat(10000) + ' 2001:db8::1234:5678 ' + 'y'.repeat(10000)
    const id = line.slice(10001, 10020)
    const own = ownString(id)
    expect(own).to.equal(id)
    expect(ownString('1.2.3.4')).to.equal('1.2.3.4')
  })

  it('reads only canonical dotted quads as IPv4 numbers (the text round-trips)', () => {
    expect(ipv4Number('192.0.2.1')).to.equal(0xc0000201)
    expect(ipv4Number('255.255.255.255')).to.equal(0xffffffff)
    expect(ipv4Number('0.0.0.0')).to.equal(0)
    for (const bad of ['192.0.2.01', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', ' 1.2.3.4', '1.2.3.4 ', 'a.b.c.d', '1.2.3.4/32', '', '1234.1.1.1']) expect(ipv4Number(bad), bad).to.equal(-1)
    const rnd = prng(7)
    for (let i = 0; i < 1000; i++) {
      const n = Math.floor(rnd() * 2 ** 32)
      expect(ipv4Number(ipv4Text(n))).to.equal(n)
    }
  })

  it('keeps IPv4 and other keys apart and consistent through heavy churn', () => {
    const c = new CounterStore({findtime: 100})
    const rnd = prng(11)
    const model = new Map<string, number>()
    for (let i = 0; i < 20000; i++) {
      const r = Math.floor(rnd() * 3000)
      const key = r % 3 === 0 ? `user${r}` : r % 3 === 1 ? `10.0.${r >> 8}.${r & 255}` : `2001:db8::${r.toString(16)}`
      if (rnd() < 0.3) {
        expect(c.delete(key)).to.equal(model.delete(key))
      } else {
        const v = c.add(key, 1, 0)
        model.set(key, (model.get(key) ?? 0) + 1)
        expect(v).to.equal(model.get(key))
      }
    }
    expect(c.size).to.equal(model.size)
    expect([...c.keys()].sort()).to.deep.equal([...model.keys()].sort())
    for (const [k, v] of model) expect(c.get(k, 0)).to.equal(v)
    expect(c.purge(1000)).to.equal(model.size)
    expect(c.size).to.equal(0)
    // the emptied store (shrunk back) works as new
    for (let i = 0; i < 3000; i++) c.add(ipv4Text(0x0a000000 + i), 1, 2000)
    expect(c.add('10.0.0.7', 1, 2001)).to.equal(2)
    expect(c.size).to.equal(3000)
  })
})
