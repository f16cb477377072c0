/**
 * Builds the ActionRunner of one configured action:
 * - `cfg.builtin` (a fail2ban action mapped to a built-in kind: firewall, mail) →
 *   `builtins[cfg.builtin.kind]`;
 * - a Lua module action (`ban = '@spylog.actions.firewall'`) → the builtin whose module name it
 *   is (BUILTIN_ACTION_MODULES), else `builtins[<module name>]`, else `builtins[<last part>]`
 *   (`@spylog.actions.x` → `x`);
 * - anything else → a CommandRunner (command.ts).
 * A missing builtin is a ConfigError naming the action and its file.
 *
 * Actions without an unban command are notify-only (`reversible: false`) unless their runner
 * says otherwise: they get no unban job and are not re-run after a restart. Mail (and growl)
 * runners are never re-run after a restart (`reapply: false`), even when they mail on unban.
 */
import {BUILTIN_ACTION_MODULES, type ActionConfig, type BuiltinActionKind} from '../config/model.js'
import {ConfigError} from '../fail2ban/errors.js'
import type {ActionContext, ActionFactory, ActionOp, ActionRunner, BanRequest} from './action.js'
import {CommandRunner} from './command.js'

/** Built-in kinds that notify: running them again after a restart would send again. */
const NOTIFY_KINDS: ReadonlySet<string> = new Set(['mail', 'growl'])

/** The module a Lua action calls (`spylog.actions.mail`), if its ban/unban are module calls. */
function moduleOf(cfg: ActionConfig): string | undefined {
  const mods = [cfg.ban, cfg.unban].filter((c) => c !== undefined).map((c) => (c.kind === 'module' ? c.module : undefined))
  const named = mods.filter((m): m is string => m !== undefined)
  if (named.length === 0) return undefined
  if (named.length !== mods.length || new Set(named).size > 1) {
    throw new ConfigError(`action "${cfg.name}": ban and unban must both call the same module or both run commands`, cfg.origin.file, cfg.origin.line || undefined)
  }
  return named[0]
}

/** Wraps a runner to give it `reversible`/`reapply` values it does not give itself. */
function withFlags(r: ActionRunner, flags: {reversible?: boolean; reapply?: boolean}): ActionRunner {
  return {
    name: r.name,
    reversible: r.reversible ?? flags.reversible,
    reapply: r.reapply ?? flags.reapply,
    unique: (op: ActionOp, req: BanRequest) => r.unique(op, req),
    run: (op: ActionOp, req: BanRequest) => r.run(op, req),
    start: r.start !== undefined ? () => r.start!() : undefined,
    stop: r.stop !== undefined ? () => r.stop!() : undefined,
  }
}

/** The runner of `cfg`. Throws a ConfigError when it cannot be built. */
export function createActionRunner(cfg: ActionConfig, ctx: ActionContext, builtins: Readonly<Record<string, ActionFactory>>): ActionRunner {
  const where = (msg: string): ConfigError => new ConfigError(`action "${cfg.name}": ${msg}`, cfg.origin.file, cfg.origin.line || undefined)
  let factory: ActionFactory | undefined
  let kind: string | undefined
  if (cfg.builtin !== undefined) {
    kind = cfg.builtin.kind
    factory = Object.hasOwn(builtins, cfg.builtin.kind) ? builtins[cfg.builtin.kind] : undefined
    if (factory === undefined) throw where(`the built-in ${cfg.builtin.kind} action (${cfg.builtin.variant}) is not available in this build`)
  } else {
    const module = moduleOf(cfg)
    if (module !== undefined) {
      kind = (Object.keys(BUILTIN_ACTION_MODULES) as BuiltinActionKind[]).find((k) => BUILTIN_ACTION_MODULES[k] === module)
      const last = module.slice(module.lastIndexOf('.') + 1)
      kind ??= last
      for (const key of [kind, module, last]) {
        if (key !== undefined && Object.hasOwn(builtins, key)) {
          factory = builtins[key]
          break
        }
      }
      if (factory === undefined) {
        const known = Object.values(BUILTIN_ACTION_MODULES).map((m) => '@' + m)
        throw where(`no action module "@${module}" (known: ${known.join(', ')})`)
      }
    }
  }
  if (factory === undefined) return new CommandRunner(cfg, ctx)
  const runner = factory(cfg, ctx)
  const flags = {reversible: cfg.unban === undefined ? false : undefined, reapply: NOTIFY_KINDS.has(kind!) ? false : undefined}
  return (runner.reversible === undefined && flags.reversible !== undefined) || (runner.reapply === undefined && flags.reapply !== undefined) ? withFlags(runner, flags) : runner
}
