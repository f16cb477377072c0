/**
 * What every action offers the queue. An ActionRunner is built once per ACTION{} (or fail2ban
 * action) of the configuration; the queue (queue.ts) calls it for each ban job and unban job.
 * Runners are safe by construction: nothing captured from a log line ever reaches a shell
 * (commands run from argv arrays), and firewall runners refuse tickets that are not addresses.
 */
import type {ActionConfig, ParamValue} from '../config/model.js'
import type {Logger} from '../log/logger.js'
import type {Ticket} from '../types.js'

export type ActionOp = 'ban' | 'unban'

/** Everything a runner needs to execute one job. */
export interface BanRequest {
  readonly ticket: Ticket
  /**
   * Parameters, most specific last wins: the action's `parameters`, the global jail parameters
   * (`JAIL{ default = {parameters} }`), the jail's `parameters`, the jail's `{name, {params}}`.
   */
  readonly params: Readonly<Record<string, ParamValue>>
}

/** Thrown by a runner when a job failed; the queue retries it with back-off and reports `message`. */
export class ActionError extends Error {
  constructor(
    message: string,
    /** False when retrying cannot help (a ticket the action cannot handle): the job is dropped. */
    readonly retry = true,
  ) {
    super(message)
    this.name = 'ActionError'
  }
}

export interface ActionRunner {
  readonly name: string
  /**
   * Key identifying duplicate work: two jobs of this action with the same key and op are the
   * same job (a ban that is already active is extended, not queued twice). Default: jail + id.
   */
  unique(op: ActionOp, req: BanRequest): string
  /**
   * False for actions that only notify (a ban-only ACTION{}, mail): the queue gives them no
   * unban job and does not run them again when a restart re-applies the active bans.
   * Default true (ban leaves state, a firewall rule, that unban removes).
   */
  readonly reversible?: boolean
  /**
   * False when running the ban again after a restart would repeat a side effect rather than
   * restore state (a notification that also mails on unban): the queue then keeps the unban job
   * but does not re-apply the ban. Default true for reversible runners.
   */
  readonly reapply?: boolean
  /** Execute one job. Rejects with ActionError (or any error) on failure. */
  run(op: ActionOp, req: BanRequest): Promise<void>
  /** Prepare (create the firewall set, check the command exists…). Called once before any job. */
  start?(): Promise<void>
  /** Release; firewall runners keep their bans (a restart re-applies from the store). */
  stop?(): Promise<void>
}

export interface ActionContext {
  readonly log: Logger
  /** `spylog run --dry-run`: log what would run, run nothing. */
  readonly dryRun?: boolean
  readonly platform?: NodeJS.Platform
  /** Addresses/networks that must never be banned (WHITE_IP, loopback): firewall runners refuse them too. */
  readonly neverBan?: (id: string) => boolean
  /** Directory for runner state (e.g. Windows firewall rule bookkeeping). */
  readonly dataDir?: string
}

export type ActionFactory = (cfg: ActionConfig, ctx: ActionContext) => ActionRunner
