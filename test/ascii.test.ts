import {expect} from 'chai'
import {isAscii} from '../src/engine/patterns/ascii.js'

describe('isAscii', () => {
  it('tells ASCII lines from others', () => {
    expect(isAscii('Failed password for root from 192.0.2.1')).to.equal(true)
    expect(isAscii('user Müller')).to.equal(false)
  })
})
