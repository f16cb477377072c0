import {expect} from 'chai'
import fc from 'fast-check'
import {LineSplitter} from '../src/engine/sources/lines.js'

function split(chunks: (string | Uint8Array)[], opts = {}): {lines: string[]; truncated: number} {
  const lines: string[] = []
  const s = new LineSplitter(opts, (l) => lines.push(l))
  for (const c of chunks) s.push(c)
  s.flush()
  return {lines, truncated: s.truncated}
}

describe('LineSplitter', () => {
  it('cuts LF and CRLF lines with the default \\r*\\n ending, whatever the chunking', () => {
    const text = 'one\r\ntwo\nthree\r\r\nfour'
    fc.assert(
      fc.property(fc.array(fc.nat(text.length), {maxLength: 6}), (cuts) => {
        const at = [...new Set(cuts)].sort((a, b) => a - b)
        const bytes = Buffer.from(text)
        const chunks: Uint8Array[] = []
        let prev = 0
        for (const c of at) (chunks.push(bytes.subarray(prev, c)), (prev = c))
        chunks.push(bytes.subarray(prev))
        expect(split(chunks).lines).to.deep.equal(['one', 'two', 'three', 'four'])
      }),
    )
  })

  it('keeps a UTF-8 character split across chunks whole, and turns invalid bytes into U+FFFD', () => {
    const b = Buffer.from('café\n')
    expect(split([b.subarray(0, 4), b.subarray(4)]).lines).to.deep.equal(['café'])
    expect(split([Buffer.from([0x61, 0xff, 0x00, 0x62, 0x0a])]).lines).to.deep.equal(['a\ufffd\u0000b'])
  })

  it('decodes legacy encodings (cp1251)', () => {
    expect(split([Buffer.from([0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2, 0x0a])], {encoding: 'windows-1251'}).lines).to.deep.equal(['Привет'])
  })

  it('uses a plain separator or a Lua pattern as the line ending', () => {
    expect(split(['a\0b\0c'], {eol: {text: '\0', pattern: false}}).lines).to.deep.equal(['a', 'b', 'c'])
    expect(split(['a;;b;c'], {eol: {text: ';+', pattern: true}}).lines).to.deep.equal(['a', 'b', 'c'])
  })

  it('cuts an oversized line once and discards its rest up to the next line ending', () => {
    const r = split(['x'.repeat(50), 'y'.repeat(100), '\nshort\n'], {maxLine: 10})
    expect(r.lines).to.deep.equal(['x'.repeat(10), 'short'])
    expect(r.truncated).to.equal(1)
    const r2 = split(['z'.repeat(25) + '\nok\n'], {maxLine: 10})
    expect(r2.lines).to.deep.equal(['z'.repeat(10), 'ok'])
  })
})
