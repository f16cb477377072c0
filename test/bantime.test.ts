import {expect} from 'chai'
import {banTimeCalculator, compileFormula, DEFAULT_FORMULA, FormulaError} from '../src/engine/jails/bantime.js'

const ev = (f: string, time = 600, count = 0, factor = 1): number => compileFormula(f)({time, count, factor})

describe('bantime: formula language', () => {
  it('evaluates fail2ban\'s default formula as Python would', () => {
    expect(ev(DEFAULT_FORMULA, 600, 0)).to.equal(600)
    expect(ev(DEFAULT_FORMULA, 600, 1)).to.equal(1200)
    expect(ev(DEFAULT_FORMULA, 600, 3)).to.equal(4800)
    // 1<<20 caps the growth; no 32-bit wrap-around
    expect(ev(DEFAULT_FORMULA, 600, 25)).to.equal(600 * 1048576)
    expect(ev(DEFAULT_FORMULA, 600, 2, 3)).to.equal(600 * 4 * 3)
  })

  it('evaluates the exponential example formula', () => {
    const f = 'ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)'
    const factor = 2.0 / 2.885385
    expect(ev(f, 600, 1, factor)).to.be.closeTo(600 * Math.exp(factor), 1e-9)
    expect(ev(f, 600, 1, factor)).to.be.closeTo(1200, 0.01)
  })

  it('follows Python precedence and arithmetic', () => {
    expect(ev('-2**2')).to.equal(-4)
    expect(ev('2**3**2')).to.equal(512)
    expect(ev('7 % -3')).to.equal(-2)
    expect(ev('-7 // 2')).to.equal(-4)
    expect(ev('1 + 2 * 3 << 1')).to.equal(14)
    expect(ev('1 < 2 < 3')).to.equal(1)
    expect(ev('3 > 2 > 2')).to.equal(0)
    expect(ev('round(2.5) + round(3.5)')).to.equal(6)
    expect(ev('min(ban.Count, 3) if ban.Count and not 0 else 99', 1, 5)).to.equal(3)
    expect(ev('min(ban.Count, 3) if ban.Count and not 0 else 99', 1, 0)).to.equal(99)
    expect(ev('int(7.9) + abs(-1) + math.floor(1.5) + math.ceil(1.2) + math.sqrt(16) + math.log(math.e) + math.pow(2, 3)')).to.equal(7 + 1 + 1 + 2 + 4 + 1 + 8)
    expect(ev('math.log(8, 2) + math.log2(4) + math.log10(100)')).to.be.closeTo(7, 1e-12)
  })

  it('refuses anything outside the formula language, naming the position', () => {
    expect(() => compileFormula("__import__('os').system('id')")).to.throw(FormulaError, /position/)
    expect(() => compileFormula('ban.Time * os.getpid()')).to.throw(FormulaError, /unknown function 'os.getpid'/)
    expect(() => compileFormula('ban.Time * bantime')).to.throw(FormulaError, /unknown name 'bantime'/)
    expect(() => compileFormula('ban.Time * (2')).to.throw(FormulaError, /expected '\)'/)
    expect(() => compileFormula('ban.Time; 1')).to.throw(FormulaError, /unexpected character/)
    expect(() => compileFormula('max()')).to.throw(FormulaError, /argument/)
    expect(() => ev('ban.Time / ban.Count')).to.throw(FormulaError, /division by zero/)
    expect(() => ev('1.5 << 1')).to.throw(FormulaError, /whole numbers/)
  })
})

describe('bantime: increment', () => {
  const half = (): number => 0.5

  it('leaves the first ban and permanent bans alone', () => {
    const calc = banTimeCalculator(600, {enabled: true})
    expect(calc(0)).to.equal(600)
    expect(banTimeCalculator(-1, {enabled: true})(5)).to.equal(-1)
    expect(banTimeCalculator(600, {enabled: false})(5)).to.equal(600)
    expect(banTimeCalculator(600)(5)).to.equal(600)
  })

  it('grows with the default formula and the factor', () => {
    const calc = banTimeCalculator(600, {enabled: true})
    expect([1, 2, 3, 4].map((n) => calc(n))).to.deep.equal([1200, 2400, 4800, 9600])
    expect(banTimeCalculator(600, {enabled: true, factor: 1.5})(2)).to.equal(600 * 4 * 1.5)
  })

  it('uses multipliers instead of the formula, the last one past the end', () => {
    const calc = banTimeCalculator(60, {enabled: true, multipliers: [1, 5, 30, 60], formula: 'ban.Time * 1000'})
    expect([1, 2, 3, 4, 10].map((n) => calc(n))).to.deep.equal([300, 1800, 3600, 3600, 3600])
    expect(banTimeCalculator(60, {enabled: true, multipliers: [1, 5], factor: 2})(1)).to.equal(600)
  })

  it('never goes below the ban time with a formula, caps at maxtime, then adds rndtime', () => {
    expect(banTimeCalculator(600, {enabled: true, formula: 'ban.Time / 10'})(3)).to.equal(600)
    expect(banTimeCalculator(600, {enabled: true, maxtime: 2000})(5)).to.equal(2000)
    expect(banTimeCalculator(600, {enabled: true, maxtime: 2000, rndtime: 100})(5, half)).to.equal(2050)
    // the jail's own rndtime applies to every ban
    expect(banTimeCalculator(600, undefined, 60)(0, half)).to.equal(630)
  })

  it('refuses an invalid formula when the jail is built', () => {
    expect(() => banTimeCalculator(600, {enabled: true, formula: 'ban.Time * evil'})).to.throw(FormulaError)
  })
})
