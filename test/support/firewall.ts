/** Shared pieces of the Linux firewall action tests (nftables, ipset, iptables). */
import {randomUUID} from 'node:crypto'
import {expect} from 'chai'
import type {ActionRunner} from '../../src/engine/actions/action.js'
import type {NetnsPair} from './netns.js'
import type {ActionConfig, ParamValue} from '../../src/engine/config/model.js'
import type {Ticket} from '../../src/engine/types.js'

/** A rejected connection: refused, or unreachable when the reject already hit IPv6 neighbour discovery. */
export const refused = (r: string): boolean => r === 'ECONNREFUSED' || r === 'EHOSTUNREACH'

/** A ban ticket of address `id` in `jail`, starting now. */
export function ticket(id: string, bantime: number, jail = 'sshd'): Ticket {
  return {uuid: randomUUID(), jail, filter: 'sshd', id, isAddress: true, time: Date.now() / 1000, bantime, banCount: 0, data: {}, failures: []}
}

/** A maker of the configuration of a built-in firewall action named `name` with backend `variant`. */
export function firewallConfig(name: string, variant: 'nftables' | 'ipset' | 'iptables') {
  return (options: Record<string, ParamValue>, parameters: Record<string, ParamValue> = {}, features: string[] = []): ActionConfig =>
    ({name, origin: {file: 'test', line: 0}, parameters, options, builtin: {kind: 'firewall', variant, features}})
}

/**
 * Bans `t`, checks that the attacker of `pair` is refused at `dst`:`port`, unbans, and checks it
 * connects again.
 */
export async function bansUntilUnban(runner: ActionRunner, pair: NetnsPair, dst: string, port: number, t: Ticket, params: Record<string, ParamValue>): Promise<void> {
  await runner.run('ban', {ticket: t, params})
  expect(await pair.connect(dst, port, 10_000)).to.satisfy(refused)
  await runner.run('unban', {ticket: t, params})
  expect(await pair.connect(dst, port, 10_000)).to.equal('ok')
}
