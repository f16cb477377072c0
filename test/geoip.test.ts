import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import path from 'node:path'
import type {GeoipCaptureFilter} from '../src/engine/config/model.js'
import {buildCaptureFilter} from '../src/engine/jails/cfilter.js'
import {CachedGeoip, Lru, MmdbGeoip, openGeoip, type GeoipProvider} from '../src/engine/jails/geoip.js'
import {ConfigError} from '../src/engine/fail2ban/errors.js'
import {tempTree} from './support/files.js'

/** Perl writer (Debian libmaxmind-db-writer-perl): a GeoLite2-Country-shaped database from "net CC CONT" lines. */
const WRITER = `use strict; use warnings;
use MaxMind::DB::Writer::Tree;
my %types = (country => 'map', continent => 'map', iso_code => 'utf8_string', code => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
  ip_version => 6, record_size => 24, database_type => 'GeoLite2-Country',
  languages => ['en'], description => { en => 'spylog test' },
  map_key_type_callback => sub { $types{ $_[0] } },
  alias_ipv6_to_ipv4 => 1, remove_reserved_networks => 0,
);
while (my $line = <STDIN>) {
  chomp $line; next unless $line;
  my ($net, $cc, $cont) = split /\\s+/, $line;
  $tree->insert_network($net, { country => { iso_code => $cc }, continent => { code => $cont } });
}
open my $fh, '>:raw', $ARGV[0] or die "$ARGV[0]: $!"; $tree->write_tree($fh); close $fh;
`

/** Writes a test database and returns its path. */
function buildMmdb(rows: string[]): string {
  const dir = tempTree({'writer.pl': WRITER})
  const out = path.join(dir, 'GeoLite2-Country.mmdb')
  execFileSync('perl', [path.join(dir, 'writer.pl'), out], {input: rows.join('\n') + '\n'})
  return out
}

const ROWS = ['203.0.113.0/24 FR EU', '198.51.100.0/24 US NA', '2001:db8:100::/48 JP AS', '192.0.2.0/25 DE EU']

const geo = (over: Partial<GeoipCaptureFilter>, mmdb: string): GeoipCaptureFilter => ({
  kind: 'geoip', origin: {file: '/etc/spylog/jails/x.lua', line: 3}, mode: 'deny', capture: 'host', countries: [], continents: [], mmdb, ...over,
})

describe('geoip', () => {
  let mmdb: string
  before(function () {
    this.timeout(120000)
    mmdb = buildMmdb(ROWS)
  })

  it('reads country and continent from a real MaxMind database', () => {
    const db = new MmdbGeoip(mmdb)
    expect(db.lookup('203.0.113.77')).to.deep.equal({country: 'FR', continent: 'EU'})
    expect(db.lookup('198.51.100.1')).to.deep.equal({country: 'US', continent: 'NA'})
    expect(db.lookup('2001:db8:100:5::1')).to.deep.equal({country: 'JP', continent: 'AS'})
    expect(db.lookup('::ffff:203.0.113.9')).to.deep.equal({country: 'FR', continent: 'EU'})
    expect(db.lookup('192.0.2.200')).to.deep.equal({country: '--', continent: '--'})
    expect(db.lookup('not an address')).to.equal(undefined)
    expect(db.lookup('$(id)\u0000')).to.equal(undefined)
  })

  it('opens a database once and shares it', () => {
    const a = openGeoip(mmdb)
    expect(openGeoip(mmdb)).to.equal(a)
    expect(openGeoip(mmdb, 10)).to.be.instanceOf(CachedGeoip)
  })

  it('says which file is missing or broken', () => {
    expect(() => new MmdbGeoip('/nonexistent/GeoLite2-Country.mmdb')).to.throw(/\/nonexistent\/GeoLite2-Country.mmdb: no such file/)
    const bad = path.join(tempTree({'bad.mmdb': 'not a database'}), 'bad.mmdb')
    expect(() => new MmdbGeoip(bad)).to.throw(/not a MaxMind database/)
    expect(() => buildCaptureFilter(geo({countries: ['FR']}, '/nonexistent/x.mmdb'))).to.throw(ConfigError, /^\/etc\/spylog\/jails\/x.lua:3: cfilter: GeoIP database/)
  })

  it('caches the last n answers (LRU)', () => {
    let calls = 0
    const inner: GeoipProvider = {lookup: (ip) => (calls++, {country: ip, continent: 'XX'})}
    const c = new CachedGeoip(inner, 2)
    for (const ip of ['a', 'b', 'a', 'c']) c.lookup(ip) // c evicts b (a was used more recently)
    expect(calls).to.equal(3)
    c.lookup('a')
    expect(calls).to.equal(3)
    c.lookup('b')
    expect(calls).to.equal(4)
    const l = new Lru<string, number>(1)
    l.set('x', 1)
    l.set('y', 2)
    expect([l.get('x'), l.get('y'), l.size]).to.deep.equal([undefined, 2, 1])
  })

  it('deny filter drops failures from the listed countries/continents', () => {
    const keep = buildCaptureFilter(geo({countries: ['US'], continents: ['AS'], cache: 100}, mmdb))
    expect(keep({host: '198.51.100.4'})).to.equal(false) // US
    expect(keep({host: '2001:db8:100::9'})).to.equal(false) // Asia
    expect(keep({host: '203.0.113.4'})).to.equal(true) // FR, Europe
    expect(keep({host: '192.0.2.250'})).to.equal(true) // unknown
    expect(keep({})).to.equal(true) // no capture: not in the set
    expect(keep({host: 'evil'})).to.equal(false) // not an address: dropped in any case
  })

  it('allow filter keeps only failures from the listed countries/continents, on any capture', () => {
    const keep = buildCaptureFilter(geo({mode: 'allow', capture: 'peer', countries: ['DE'], continents: ['NA']}, mmdb))
    expect(keep({peer: '192.0.2.3'})).to.equal(true)
    expect(keep({peer: '198.51.100.200'})).to.equal(true)
    expect(keep({peer: '203.0.113.1'})).to.equal(false)
    expect(keep({peer: '192.0.2.200'})).to.equal(false)
    expect(keep({host: '192.0.2.3'})).to.equal(false)
  })
})
