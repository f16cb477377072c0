import {expect} from 'chai'
import fc from 'fast-check'
import {canonicalAddress, canonicalSubnet, isIPv4, IPV4_PATTERN, sameAddress} from '../src/engine/net/address.js'

describe('offender addresses', () => {
  it('isIPv4 accepts exactly what the strict IPv4 pattern matches', () => {
    // Texts near the edge: digits, dots and a few intruders, in address-like lengths.
    const near = fc.string({unit: fc.constantFrom(...Array.from('0123456789.....25 a:\n')), minLength: 0, maxLength: 17})
    const octet = fc.oneof(fc.integer({min: 0, max: 999}).map(String), fc.constantFrom('00', '01', '007', '255', '256', '249', '199', ''))
    const quads = fc.array(octet, {minLength: 2, maxLength: 5}).map((o) => o.join('.'))
    fc.assert(
      fc.property(fc.oneof(near, quads), (s) => {
        expect(isIPv4(s), JSON.stringify(s)).to.equal(IPV4_PATTERN.test(s))
      }),
      {numRuns: 20000},
    )
  })

  it('isIPv4 on the cases a user meets', () => {
    for (const ok of ['0.0.0.0', '192.0.2.1', '255.255.255.255', '10.0.0.10', '1.22.199.249']) expect(isIPv4(ok), ok).to.equal(true)
    for (const bad of ['', '1.2.3', '1.2.3.4.', '.1.2.3.4', '01.2.3.4', '1.2.3.256', '1.2.3.4 ', '1..2.3', '1.2.3.4/24', '1.2.3.1234', '٣.2.3.4']) {
      expect(isIPv4(bad), bad).to.equal(false)
    }
  })

  it('canonical forms: IPv4 as is, IPv6 compressed lower-case, mapped IPv4 as IPv4, invalid undefined', () => {
    expect(canonicalAddress('192.0.2.7')).to.equal('192.0.2.7')
    expect(canonicalAddress('2001:DB8:0:0:0:0:0:1')).to.equal('2001:db8::1')
    expect(canonicalAddress('::ffff:192.0.2.1')).to.equal('192.0.2.1')
    expect(canonicalAddress('fe80::1%eth0')).to.equal('fe80::1')
    expect(canonicalAddress('192.0.2.300')).to.equal(undefined)
    expect(canonicalAddress('host.example.org')).to.equal(undefined)
    expect(canonicalSubnet('192.0.2.0', '24')).to.equal('192.0.2.0/24')
    expect(canonicalSubnet('192.0.2.0', '33')).to.equal(undefined)
    expect(sameAddress('2001:db8::1', '2001:DB8::0:1')).to.equal(true)
  })
})
