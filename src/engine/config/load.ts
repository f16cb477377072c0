/**
 * Where spylog's configuration comes from, and loading it into the one model (model.ts).
 *
 * The configuration directory is the first of:
 * 1. `--config DIR` (`config` option);
 * 2. the `SPYLOG_CONFIG` environment variable;
 * 3. the platform default, when it exists: `%ProgramData%\spylog` on Windows, `/etc/spylog`
 *    elsewhere;
 * 4. the `config/` directory packaged with spylog.
 * A directory given explicitly (1, 2) must exist. Its format is detected: a lua-spylog directory
 * (`spylog.lua`, or `sources/`, `filters/`, `jails/`, `actions/`) is read by lua.ts; a fail2ban
 * tree (`jail.conf`, `jail.local` or `jail.d/`, and none of the former) by fail2ban.ts — so
 * `SPYLOG_CONFIG=/etc/fail2ban` works too.
 *
 * `--fail2ban DIR` (`fail2ban` option) reads a fail2ban tree *instead of* the lookup above: the
 * environment, platform and packaged directories are not consulted. Given together with an
 * explicit `--config DIR`, both are read *in addition* and merged into one model; a filter, jail
 * or action name defined by both is an error (rename one side); a fail2ban logpath source named
 * like a Lua source gets a `#fail2ban` suffix.
 */
import fs from 'node:fs'
import path from 'node:path'
import {ConfigError} from '../fail2ban/errors.js'
import {isFail2banTree, loadFail2banConfig, type Fail2banConfigOptions} from './fail2ban.js'
import {loadLuaConfig, MAIN_FILE, SUBDIRS, type LuaConfigOptions} from './lua.js'
import {ConfigErrors, type Origin, type SpylogConfig} from './model.js'
import {isDir, PACKAGE_ROOT} from '../fsutil.js'

export type ConfigFormat = 'lua' | 'fail2ban'

/** How a configuration directory was chosen. */
export type ConfigSource = '--config' | 'SPYLOG_CONFIG' | 'platform default' | 'packaged' | '--fail2ban'

export interface ConfigLocation {
  readonly dir: string
  readonly format: ConfigFormat
  readonly from: ConfigSource
}

export interface LoadConfigOptions {
  /** `--config DIR`. */
  config?: string
  /** `--fail2ban DIR`. */
  fail2ban?: string
  /** Environment (default process.env): `SPYLOG_CONFIG`, `ProgramData`. */
  env?: Readonly<Record<string, string | undefined>>
  /** Platform (default process.platform): chooses the platform default directory. */
  platform?: NodeJS.Platform
  /** Overrides the platform default directory (tests). */
  platformDir?: string
  /** Overrides the packaged directory (tests). */
  packagedDir?: string
  lua?: LuaConfigOptions
  fail2banOptions?: Fail2banConfigOptions
}


/** `%ProgramData%\spylog` on Windows, `/etc/spylog` elsewhere. */
export function platformConfigDir(platform: NodeJS.Platform = process.platform, env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (platform === 'win32') return path.win32.join(env.ProgramData ?? env.PROGRAMDATA ?? 'C:\\ProgramData', 'spylog')
  return '/etc/spylog'
}

/** The `config/` directory next to spylog's package.json. */
export function packagedConfigDir(): string {
  return path.join(PACKAGE_ROOT, 'config')
}

/** lua when the directory holds spylog.lua or a lua-spylog subdirectory, fail2ban when it is a fail2ban tree, else lua. */
export function detectFormat(dir: string): ConfigFormat {
  if (fs.existsSync(path.join(dir, MAIN_FILE)) || SUBDIRS.some((s) => isDir(path.join(dir, s)))) return 'lua'
  return isFail2banTree(dir) ? 'fail2ban' : 'lua'
}

/** The directories to read, in order (see the file comment). Throws ConfigErrors for a missing explicit directory. */
export function resolveConfigLocations(opts: LoadConfigOptions = {}): ConfigLocation[] {
  const env = opts.env ?? process.env
  const out: ConfigLocation[] = []
  const explicit = (dir: string, from: ConfigSource, format?: ConfigFormat): void => {
    const abs = path.resolve(dir)
    if (!isDir(abs)) throw new ConfigErrors([new ConfigError(`configuration directory not found (from ${from})`, abs)])
    out.push({dir: abs, format: format ?? detectFormat(abs), from})
  }
  if (opts.fail2ban !== undefined) {
    if (opts.config !== undefined) explicit(opts.config, '--config')
    explicit(opts.fail2ban, '--fail2ban', 'fail2ban')
    return out
  }
  if (opts.config !== undefined) explicit(opts.config, '--config')
  else if (env.SPYLOG_CONFIG !== undefined && env.SPYLOG_CONFIG !== '') explicit(env.SPYLOG_CONFIG, 'SPYLOG_CONFIG')
  else {
    const platformDir = opts.platformDir ?? platformConfigDir(opts.platform, env)
    if (isDir(platformDir)) out.push({dir: path.resolve(platformDir), format: detectFormat(platformDir), from: 'platform default'})
    else {
      const packaged = path.resolve(opts.packagedDir ?? packagedConfigDir())
      if (!isDir(packaged)) throw new ConfigErrors([new ConfigError(`no configuration found: give --config DIR, set SPYLOG_CONFIG, or create ${platformDir}`, packaged)])
      out.push({dir: packaged, format: detectFormat(packaged), from: 'packaged'})
    }
  }
  return out
}

/** Load the configuration (see the file comment), with where it came from. Throws ConfigErrors. */
export function loadConfigDetailed(opts: LoadConfigOptions = {}): {config: SpylogConfig; locations: ConfigLocation[]} {
  const locations = resolveConfigLocations(opts)
  const configs: SpylogConfig[] = []
  const errors: ConfigError[] = []
  for (const loc of locations) {
    try {
      configs.push(loc.format === 'fail2ban' ? loadFail2banConfig(loc.dir, opts.fail2banOptions) : loadLuaConfig(loc.dir, opts.lua))
    } catch (e) {
      if (e instanceof ConfigErrors) errors.push(...e.errors)
      else if (e instanceof ConfigError) errors.push(e)
      else throw e
    }
  }
  if (errors.length > 0) throw new ConfigErrors(errors)
  const config = configs.length === 1 ? configs[0]! : mergeConfigs(configs[0]!, configs[1]!)
  return {config, locations}
}

/** Load the configuration (see the file comment). Throws ConfigErrors. */
export function loadConfig(opts: LoadConfigOptions = {}): SpylogConfig {
  return loadConfigDetailed(opts).config
}

/**
 * A Lua configuration `base` with the sources, filters, jails and actions of a fail2ban one
 * added; everything else (WHITE_IP, LOG, CONNECT, global jail settings, data directory) comes
 * from `base`. A filter, jail or action name defined by both is an error; `extra`'s sources are
 * renamed on a clash.
 */
export function mergeConfigs(base: SpylogConfig, extra: SpylogConfig): SpylogConfig {
  const errors: ConfigError[] = []
  const where = (o: Origin): string => `${o.file}${o.line > 0 ? `:${o.line}` : ''}`
  const merge = <T extends {readonly name: string; readonly origin: Origin}>(kind: string, a: readonly T[], b: readonly T[]): T[] => {
    const names = new Map(a.map((x) => [x.name, x]))
    for (const x of b) {
      const prev = names.get(x.name)
      if (prev !== undefined) errors.push(new ConfigError(`${kind} "${x.name}" is also defined at ${where(prev.origin)}: rename one of them`, x.origin.file, x.origin.line || undefined))
    }
    return [...a, ...b]
  }
  // Sources are implicit on the fail2ban side (logpaths): one named like a Lua source is renamed.
  const taken = new Set(base.sources.map((s) => s.name))
  const renamed = new Map<string, string>()
  const sources = extra.sources.map((s) => {
    if (!taken.has(s.name)) return s
    let name = `${s.name}#fail2ban`
    for (let i = 2; taken.has(name); i++) name = `${s.name}#fail2ban${i}`
    taken.add(name)
    renamed.set(s.name, name)
    return {...s, name}
  })
  const filters = extra.filters.map((f) => (f.sources.some((s) => renamed.has(s)) ? {...f, sources: f.sources.map((s) => renamed.get(s) ?? s)} : f))
  const merged: SpylogConfig = {
    ...base,
    sources: [...base.sources, ...sources],
    filters: merge('filter', base.filters, filters),
    jails: merge('jail', base.jails, extra.jails),
    actions: merge('action', base.actions, extra.actions),
    warnings: [...(base.warnings ?? []), ...(extra.warnings ?? [])],
  }
  if (errors.length > 0) throw new ConfigErrors(errors)
  return merged
}
