import path from 'node:path'
import {expect} from 'chai'
import {ConfigError} from '../../src/engine/fail2ban/errors.js'
import {ConfigErrors} from '../../src/engine/config/model.js'

/** The errors `load` raises for configuration `dir`, as messages with the directory shown as `<dir>`. */
export function configErrors(dir: string, load: () => unknown): string[] {
  try {
    load()
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigErrors)
    const errs = (e as ConfigErrors).errors
    for (const x of errs) expect(x).to.be.instanceOf(ConfigError)
    return errs.map((x) => x.message.replaceAll(dir + path.sep, '').replaceAll(dir, '<dir>'))
  }
  expect.fail('expected configuration errors')
}
