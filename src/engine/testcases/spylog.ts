/**
 * spylog's own filter tests: the filters of a Lua configuration directory (config/filters of the
 * packaged configuration), built by the same code the daemon uses, against failJSON samples.
 */
import {ConfigError} from '../fail2ban/errors.js'
import {loadLuaConfig} from '../config/lua.js'
import type {FilterConfig} from '../config/model.js'
import {buildFilter} from '../filters/build.js'
import type {FilterProvider} from './harness.js'

/** Every FILTER{} of the configuration in `configDir` (enabled or not) as a test provider. */
export function luaConfigProvider(configDir: string): FilterProvider {
  let filters: Map<string, FilterConfig> | undefined
  const load = (): Map<string, FilterConfig> => {
    filters ??= new Map(loadLuaConfig(configDir).filters.map((f) => [f.name, f]))
    return filters
  }
  return {
    list: () => new Map([...load()].map(([name, f]) => [name, f.origin.file])),
    build(name, params, runtime) {
      const cfg = load().get(name)
      if (cfg === undefined) throw new ConfigError(`unknown filter "${name}"`)
      if (Object.keys(params).length > 0) {
        throw new ConfigError(`filter options (${Object.keys(params).join(', ')}) are only for fail2ban filter.d filters`, cfg.origin.file, cfg.origin.line)
      }
      return buildFilter(cfg, runtime)
    },
  }
}
