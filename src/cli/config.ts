/** What the commands that read the configuration share: its flags, and how its errors are shown. */
import {Flags} from '@oclif/core'
import type {ChalkInstance} from 'chalk'
import {ConfigErrors} from '../engine/config/model.js'
import {ConfigError} from '../engine/fail2ban/errors.js'

export const CONFIG_FLAGS = {
  config: Flags.string({description: 'configuration directory (lua-spylog or fail2ban)', helpValue: 'DIR'}),
  fail2ban: Flags.string({description: 'fail2ban configuration tree (jail.conf, jail.local, jail.d/, filter.d/, action.d/)', helpValue: 'DIR'}),
}

/** The configuration errors `e` carries, or undefined when it is another error (a bug: let it surface). */
export function configErrorsOf(e: unknown): readonly ConfigError[] | undefined {
  return e instanceof ConfigErrors ? e.errors : e instanceof ConfigError ? [e] : undefined
}

/** Writes each error on stderr (file:line: field: message), then the count and `tail`. */
export function printConfigErrors(errors: readonly ConfigError[], ce: ChalkInstance, tail = ''): void {
  for (const x of errors) process.stderr.write(`${ce.red('error')}: ${x.message.replaceAll('\n', '\n  ')}\n`)
  process.stderr.write(`${ce.red(`${errors.length} configuration error${errors.length === 1 ? '' : 's'}`)}${tail}\n`)
}
