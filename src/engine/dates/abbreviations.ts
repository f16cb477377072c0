/**
 * Time zone abbreviations as **fixed** offsets (seconds east of UTC), the way fail2ban reads a
 * `%Z`/`%ExZ`/`%Exz` capture or a `logtimezone` such as `CEST`: no DST logic, `CET` is always
 * +01:00 and `CEST` always +02:00.
 *
 * Written for spylog from general knowledge of zone abbreviations. Many abbreviations are
 * ambiguous; the choice made here is noted inline. Lookups are case-sensitive (a lower-case
 * capture such as `pdt`, possible because date templates with month names are case-insensitive,
 * is not a known zone — the date then has no time, as in fail2ban).
 */

const TABLE = `
  +14:00  LINT
  +13:45  CHADT
  +13:00  NZDT FJST TOT PHOT TKT
  +12:45  CHAST
  +12:00  NZST FJT GILT MHT TVT WFT NRT PETT PETST ANAT ANAST WAKT MAGST IDLE M
  +11:00  AEDT LHDT MAGT NCT PONT KOST SBT SRET SAKT VUT VLAST NFT NFDT L
  +10:30  ACDT LHST
  +10:00  AEST ChST CHST PGT VLAT YAPT CHUT DDUT YAKST K
  +09:30  ACST
  +09:00  JST KST YAKT IRKST PWT TLT WIT AWDT WDT I
  +08:45  ACWST
  +08:00  AWST WST HKT SGT MYT PHT PHST BNT IRKT KRAST ULAT CHOT WITA CAST H
  +07:00  ICT WIB THA NOVT NOVST KRAT OMSST HOVT CXT DAVT G
  +06:30  MMT CCT
  +06:00  BDT BTT KGT OMST YEKST ALMT QYZT IOT BIOT VOST F
  +05:45  NPT
  +05:30  IST SLT SLST
  +05:00  PKT UZT TJT TMT YEKT AQTT ORAT MVT TFT HMT MAWT AZST AMST E
  +04:30  AFT IRDT
  +04:00  GST GET AZT AMT MUT RET SCT SAMT KUYT MSD D
  +03:30  IRST
  +03:00  MSK EAT EEST EEDT IDT FET TRT SYOT C
  +02:00  EET CEST CEDT MEST MESZ SAST CAT WAST KALT B
  +01:00  CET MET MEZ WAT WEST WEDT BST DFT A
  +00:00  UTC UT UCT GMT Z WET WT AZOST EGST
  -01:00  AZOT CVT EGT N
  -02:00  FNT BRST UYST PMDT WGST O
  -02:30  NDT HAT
  -03:00  ADT ART BRT CLST FKST GFT PMST PYST ROTT SRT UYT WGT HAA P
  -03:30  NST NT HNT
  -04:00  AST EDT CLT BOT COST FKT GYT PYT VET HAE HNA Q
  -04:30  HLV
  -05:00  EST CDT COT ECT PET ACT EASST HAC HNE ET R
  -06:00  CST MDT EAST GALT HAR HNC S
  -07:00  MST PDT HAP HNR T
  -08:00  PST AKDT CIST HAY HNP PT U
  -09:00  AKST HDT HADT GAMT GIT HNY V
  -09:30  MART MIT
  -10:00  HST HAST CKT TAHT W
  -11:00  SST NUT X
  -12:00  BIT IDLW AOE AoE Y
`
// Ambiguous choices: AST = Atlantic (not Arabia), BST = British Summer (not Bangladesh),
// CST = US Central (not China/Cuba), IST = India (not Ireland/Israel), GST = Gulf (not South
// Georgia), AMT/AMST = Armenia (not Amazon), ECT = Ecuador, ACT = Acre, BDT = Bangladesh,
// CAST = Casey, EAST = Easter Island, MST = US Mountain, PST = US Pacific, SST = Samoa,
// WST = Western (Australia) Standard. Military letters A–I, K–M are +1…+12, N–Y are −1…−12.

function build(): Map<string, number> {
  const out = new Map<string, number>()
  for (const raw of TABLE.split('\n')) {
    const parts = raw.trim().split(/\s+/)
    if (parts.length < 2) continue
    const m = /^([+-])(\d\d):(\d\d)$/.exec(parts[0]!)
    if (!m) throw new Error(`bad zone table line: ${raw}`)
    const off = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3]) * 60)
    for (const name of parts.slice(1)) {
      if (out.has(name)) throw new Error(`duplicate zone abbreviation ${name}`)
      out.set(name, off)
    }
  }
  return out
}

/** Abbreviation → fixed offset in seconds east of UTC. */
export const ZONE_ABBREVIATIONS: ReadonlyMap<string, number> = build()
