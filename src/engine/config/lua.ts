/**
 * lua-spylog configuration directories (moteus/lua-spylog `config/`), evaluated in fengari and
 * validated into the configuration model (model.ts).
 *
 * Layout (lua-spylog src/lib/spylog/config.lua): `spylog.lua`, then every `*.lua` under
 * `sources/`, `filters/`, `jails/` and `actions/` (recursively, in name order). As in lua-spylog,
 * spylog.lua runs in an environment of its own and the other files share one; in both,
 * `SOURCE{}`, `FILTER{}`, `JAIL{}`, `ACTION{}`, `WHITE_IP{}`, `LOG{}` and `CONNECT{}` collect their
 * tables. In spylog.lua a nameless `JAIL{}` holds the global jail settings (`purge_interval`,
 * `default = {…}`, whose `parameters` are the global action parameters); `WHITE_IP` is also a
 * table (filters write `exclude = WHITE_IP`). Tables are converted once every file has run, so a
 * table changed after its call is seen as it ends up, as lua-spylog sees it.
 *
 * The sandbox: the base library without dofile/loadfile/print/collectgarbage, a text-only `load`,
 * string (no dump/pack), table, math, utf8 and os.time/clock/date/difftime; no io, no debug, no
 * package. `require 'a.b'` loads `a/b.lua` (or `a/b/init.lua`) inside the configuration directory
 * only. A count hook enforces an instruction budget and a memory budget; strings are bounded in
 * length where they are made (concatenation, string.rep/format/gsub, table.concat…). The one thing
 * the hook cannot interrupt is a single library call that runs long by itself (a pathological
 * pattern given to string.find on a long string).
 *
 * Encoding: files are UTF-8 unless the `encoding` option says otherwise or the file declares its
 * own on one of its first two lines (`-- encoding: cp1251`, `-- -*- coding: cp1251 -*-`).
 *
 * Validation collects every error (ConfigErrors): each names the file and line (the line of the
 * call, or of the field when it is written literally inside it), the object and field, what was
 * expected, and the closest known field name for a misspelt one.
 *
 * Deliberate differences from lua-spylog (which checks almost nothing and fails at run time):
 * unknown fields, bad values and dangling references (a jail's filter or action, a filter's
 * source) are load errors; WHITE_IP{} calls add to the list (lua-spylog keeps the last one);
 * relative `file:` paths are resolved against the configuration directory (lua-spylog: the
 * service's working directory); durations may also be written "10m", "1h 30m"; duplicate JAIL
 * names are errors (lua-spylog would share one counter between them). As in lua-spylog, a later
 * SOURCE{} or ACTION{} of the same name replaces the earlier one, and FILTER{}s may share a name
 * (the jails that name it get the results of all of them).
 */
import fs from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import v8 from 'node:v8'
import fengari from 'fengari'
import type {LuaState} from 'fengari'
import {ConfigError} from '../fail2ban/errors.js'
import {expandTags, rewriteInlineFlags} from '../fail2ban/tags.js'
import {DateDetector} from '../dates/detector.js'
import {Fail2banFilter} from '../filters/fail2ban.js'
import {parseDate} from '../dates/strptime.js'
import {compileLua} from '../patterns/lua.js'
import {compilePython} from '../patterns/pyre.js'
import {PatternError, type CompiledRegex} from '../patterns/types.js'
import {
  BUILTIN_ACTION_MODULES, canonicalNetwork, closestName, ConfigErrors, ESL_LEVELS, LOG_LEVELS,
  type ActionCommand, type ActionConfig, type BuiltinAction, type BuiltinActionKind, type CaptureFilterConfig, type ConnectConfig, type CounterConfig,
  type Endpoint, type EslLevel, type EventLogLocalSource, type EventSelector, type FilterConfig, type FilterEngine, type JailActionRef,
  type JailConfig, type JailGlobals, type LineEnding, type LogConfig, type LogLevel, type Origin, type ParamValue,
  type SourceConfig, type SpylogConfig,
} from './model.js'

// ---------------------------------------------------------------------------------------------
// Options

export interface LuaConfigOptions {
  /** Encoding of files that do not declare one (default utf-8). */
  encoding?: string
  /** Lua VM instructions allowed for the whole directory (default 10,000,000). */
  maxInstructions?: number
  /** Memory the evaluation may grow the heap by, bytes (default 256 MiB). */
  maxMemory?: number
  /** Longest string a configuration may build, bytes (default 1 MiB). */
  maxStringLength?: number
  /** Largest configuration file, bytes (default 4 MiB). */
  maxFileSize?: number
  /** Most values converted out of the collected tables, in all (default 200,000). */
  maxValues?: number
  /** Deepest table nesting converted (default 32). */
  maxDepth?: number
  /** Data directory (default `<configDir>/../data`, lua-spylog's layout). */
  dataDir?: string
  /** Receives what the configuration prints (default: discarded). */
  print?: (text: string) => void
  /** The PLATFORM global the configuration sees (default: this machine's; tests set it). */
  platform?: string
}

const DEFAULTS = {
  encoding: 'utf-8',
  maxInstructions: 10_000_000,
  maxMemory: 256 * 1024 * 1024,
  maxStringLength: 1024 * 1024,
  maxFileSize: 4 * 1024 * 1024,
  maxValues: 200_000,
  maxDepth: 32,
}

/** Instructions between two hook calls. */
const HOOK_COUNT = 1000
/** Bytes of strings made between two memory checks outside the hook. */
const STRING_BYTES_CHECK = 8 * 1024 * 1024

export const SUBDIRS = ['sources', 'filters', 'jails', 'actions'] as const
export const MAIN_FILE = 'spylog.lua'
export const CONFIG_FUNCTIONS = ['SOURCE', 'FILTER', 'JAIL', 'ACTION', 'WHITE_IP', 'LOG', 'CONNECT'] as const
export type ConfigFunction = (typeof CONFIG_FUNCTIONS)[number]

// ---------------------------------------------------------------------------------------------
// Lua values, as converted out of the VM

/** A Lua table: its sequence (keys 1…n), its string keys, and any other keys. */
export interface LuaTable {
  readonly kind: 'table'
  readonly array: LuaValue[]
  readonly fields: Map<string, LuaValue>
  readonly other: [LuaValue, LuaValue][]
  /** True for the WHITE_IP table itself. */
  readonly whiteIp: boolean
}
/** A value that cannot be configuration data (function, coroutine, userdata), a self-referencing or too deep table, or a string that is not UTF-8. */
export interface LuaOpaque {
  readonly kind: 'function' | 'thread' | 'userdata' | 'cycle' | 'deep' | 'bytes'
  /** For `bytes`: the text with invalid sequences replaced. */
  readonly text?: string
}
export type LuaValue = undefined | boolean | number | string | LuaTable | LuaOpaque

function isTable(v: LuaValue): v is LuaTable {
  return typeof v === 'object' && v.kind === 'table'
}

/** One call of a configuration function. */
export interface ConfigCall {
  readonly fn: ConfigFunction
  readonly value: LuaValue
  readonly origin: Origin
  /** Whether the call was made from spylog.lua. */
  readonly main: boolean
}

/** What evaluating a directory produced, before validation. */
export interface LuaEvaluation {
  readonly dir: string
  readonly calls: readonly ConfigCall[]
  /** WHITE_IP entries with the call that added each (origin of the last call for entries set directly). */
  readonly whiteIp: readonly {readonly value: LuaValue; readonly origin: Origin}[]
  /** Evaluation errors (syntax, runtime, limits). */
  readonly errors: readonly ConfigError[]
  /** Source lines of every file run (for locating fields). */
  readonly lines: ReadonlyMap<string, readonly string[]>
}

// ---------------------------------------------------------------------------------------------
// The parts of fengari used here (the bundled typings cover only what the pattern module needs).

type LuaString = Uint8Array
interface LuaDebug {
  currentline: number
  source: LuaString | null
  short_src: LuaString | null
}
type JsFunction = (L: LuaState) => number
type Hook = (L: LuaState, ar: LuaDebug) => void
interface Api {
  readonly LUA_OK: number
  readonly LUA_MULTRET: number
  readonly LUA_REGISTRYINDEX: number
  readonly LUA_RIDX_GLOBALS: number
  readonly LUA_MASKCOUNT: number
  readonly LUA_TNONE: number
  readonly LUA_TNIL: number
  readonly LUA_TBOOLEAN: number
  readonly LUA_TNUMBER: number
  readonly LUA_TSTRING: number
  readonly LUA_TTABLE: number
  readonly LUA_TFUNCTION: number
  readonly LUA_TTHREAD: number
  readonly lua_Debug: new () => LuaDebug
  lua_absindex(L: LuaState, idx: number): number
  lua_atnativeerror(L: LuaState, f: JsFunction): void
  lua_call(L: LuaState, nargs: number, nresults: number): void
  lua_checkstack(L: LuaState, n: number): boolean
  lua_createtable(L: LuaState, narr: number, nrec: number): void
  lua_error(L: LuaState): never
  lua_getfield(L: LuaState, idx: number, k: string | LuaString): number
  lua_geti(L: LuaState, idx: number, n: number): number
  lua_getinfo(L: LuaState, what: string | LuaString, ar: LuaDebug): number
  lua_getstack(L: LuaState, level: number, ar: LuaDebug): number
  lua_gettable(L: LuaState, idx: number): number
  lua_gettop(L: LuaState): number
  lua_insert(L: LuaState, idx: number): void
  lua_isinteger(L: LuaState, idx: number): boolean
  lua_next(L: LuaState, idx: number): number
  lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number
  lua_pop(L: LuaState, n: number): void
  lua_pushboolean(L: LuaState, b: boolean): void
  lua_pushinteger(L: LuaState, n: number): void
  lua_pushjsclosure(L: LuaState, f: JsFunction, n: number): void
  lua_pushjsfunction(L: LuaState, f: JsFunction): void
  lua_pushlstring(L: LuaState, s: LuaString, len: number): LuaString
  lua_pushnil(L: LuaState): void
  lua_pushstring(L: LuaState, s: string | LuaString): LuaString
  lua_pushvalue(L: LuaState, idx: number): void
  lua_rawget(L: LuaState, idx: number): number
  lua_rawgeti(L: LuaState, idx: number, n: number): number
  lua_rawlen(L: LuaState, idx: number): number
  lua_rawset(L: LuaState, idx: number): void
  lua_rawseti(L: LuaState, idx: number, n: number): void
  lua_remove(L: LuaState, idx: number): void
  lua_replace(L: LuaState, idx: number): void
  lua_setfield(L: LuaState, idx: number, k: string | LuaString): void
  lua_sethook(L: LuaState, f: Hook | null, mask: number, count: number): void
  lua_setmetatable(L: LuaState, idx: number): void
  lua_settop(L: LuaState, idx: number): void
  lua_setupvalue(L: LuaState, funcindex: number, n: number): LuaString | null
  lua_toboolean(L: LuaState, idx: number): boolean
  lua_tocfunction(L: LuaState, idx: number): JsFunction | null
  lua_tointeger(L: LuaState, idx: number): number
  lua_tolstring(L: LuaState, idx: number): LuaString | null
  lua_tonumber(L: LuaState, idx: number): number
  lua_topointer(L: LuaState, idx: number): object | null
  lua_touserdata(L: LuaState, idx: number): unknown
  lua_type(L: LuaState, idx: number): number
  lua_upvalueindex(i: number): number
}
interface AuxApi {
  luaL_checkinteger(L: LuaState, arg: number): number
  luaL_checklstring(L: LuaState, arg: number): LuaString
  luaL_checktype(L: LuaState, arg: number, t: number): void
  luaL_error(L: LuaState, fmt: string): never
  luaL_loadbufferx(L: LuaState, buff: LuaString, size: number | null, name: LuaString, mode: LuaString | null): number
  luaL_newstate(): LuaState
  luaL_optinteger(L: LuaState, arg: number, def: number): number
  luaL_ref(L: LuaState, t: number): number
  luaL_requiref(L: LuaState, modname: LuaString, openf: JsFunction, glb: boolean | number): void
  luaL_tolstring(L: LuaState, idx: number): LuaString
  luaL_typename(L: LuaState, idx: number): LuaString
}
interface LibApi {
  luaopen_base: JsFunction
  luaopen_string: JsFunction
  luaopen_table: JsFunction
  luaopen_math: JsFunction
  luaopen_utf8: JsFunction
  luaopen_os: JsFunction
}
interface TString {
  realstring: LuaString
}

const lua = fengari.lua as unknown as Api
const aux = fengari.lauxlib as unknown as AuxApi
const lib = fengari.lualib as unknown as LibApi
const toLua = (s: string): LuaString => fengari.to_luastring(s)

// fengari internals for the string-length bound on concatenation: the VM stores every `..`
// result through lobject.setsvalue2s, and luaG_runerror raises an error from inside the VM.
const requireCjs = createRequire(import.meta.url)
const lobject = requireCjs('fengari/src/lobject.js') as {setsvalue2s: (L: LuaState, idx: number, ts: TString) => void}
const ldebug = requireCjs('fengari/src/ldebug.js') as {luaG_runerror: (L: LuaState, fmt: LuaString) => never}

interface LuaStateInternals {
  readonly l_G: object
}

/** The sandbox whose VM is running (evaluation is synchronous: at most one at a time). */
let activeSandbox: Sandbox | undefined
let concatPatched = false

function patchConcat(): void {
  if (concatPatched) return
  concatPatched = true
  const original = lobject.setsvalue2s
  lobject.setsvalue2s = function (L: LuaState, idx: number, ts: TString): void {
    original(L, idx, ts)
    const sb = activeSandbox
    if (sb !== undefined && (L as unknown as LuaStateInternals).l_G === sb.global) sb.madeString(L, ts.realstring.length, true)
  }
}

const utf8 = new TextDecoder('utf-8', {fatal: true})
const utf8Lossy = new TextDecoder('utf-8')

/** A JS string from a Lua string (UTF-8), or undefined when the bytes are not UTF-8. */
function decodeLua(s: LuaString): string | undefined {
  try {
    return utf8.decode(s)
  } catch {
    return undefined
  }
}

function escapePercent(s: string): string {
  return s.replaceAll('%', '%%')
}

class FatalError {
  constructor(readonly message: string, readonly origin: Origin) {}
}

/** Thrown (in JS) when converted tables exceed the value budget. */
class TooLarge extends Error {}

// ---------------------------------------------------------------------------------------------
// The sandbox

interface LoadedFile {
  /** Registry reference of the chunk's return value. */
  ref: number
}

class Sandbox {
  readonly L: LuaState
  readonly global: object
  readonly calls: {fn: ConfigFunction; ref: number; origin: Origin; main: boolean}[] = []
  readonly errors: ConfigError[] = []
  readonly lines = new Map<string, readonly string[]>()
  fatal: FatalError | undefined

  private readonly o: typeof DEFAULTS & LuaConfigOptions
  private readonly realDir: string
  /** Chunk name (without '@') → display path. */
  private readonly chunks = new Map<string, string>()
  private readonly loaded = new Map<string, LoadedFile | 'loading'>()
  private readonly ar: LuaDebug
  private used = 0
  private heapBase = 0
  private stringBytes = 0
  private collectedRef = 0
  private whiteRef = 0
  private mainEnvRef = 0
  private subEnvRef = 0
  /** Registry ref of the environment of the file being run. */
  private currentEnv = 0
  private currentMain = false
  private currentFile = ''
  private readonly whiteOrigins: {from: number; to: number; origin: Origin}[] = []
  private readonly hook: Hook

  constructor(readonly dir: string, opts: LuaConfigOptions) {
    this.o = {...DEFAULTS, ...opts}
    this.realDir = fs.realpathSync(dir)
    patchConcat()
    this.L = aux.luaL_newstate()
    this.global = (this.L as unknown as LuaStateInternals).l_G
    this.ar = new lua.lua_Debug()
    this.hook = (L) => this.onHook(L)
    this.setup()
  }

  // --- state setup ---------------------------------------------------------------------------

  private setup(): void {
    const L = this.L
    lua.lua_atnativeerror(L, (L2) => {
      // A JS exception inside the VM (e.g. an allocation failure): make it a Lua error.
      const e = lua.lua_touserdata(L2, 1)
      const why = e instanceof Error ? `: ${e.message}` : ''
      lua.lua_pushstring(L2, toLua(`internal error while running the configuration${why}`))
      return 1
    })
    aux.luaL_requiref(L, toLua('_G'), lib.luaopen_base, 1)
    lua.lua_pop(L, 1)
    for (const [name, open] of [['string', lib.luaopen_string], ['table', lib.luaopen_table], ['math', lib.luaopen_math], ['utf8', lib.luaopen_utf8], ['os', lib.luaopen_os]] as const) {
      aux.luaL_requiref(L, toLua(name), open, 1)
      lua.lua_pop(L, 1)
    }
    // The base table every environment reads through (__index).
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, lua.LUA_RIDX_GLOBALS)
    const G = lua.lua_gettop(L)
    for (const name of ['dofile', 'loadfile', 'print', 'collectgarbage', 'load', 'pcall', 'xpcall', 'tostring', 'require', 'module']) {
      lua.lua_pushnil(L)
      lua.lua_setfield(L, G, name)
    }
    lua.lua_pushjsfunction(L, (L2) => this.luaPrint(L2))
    lua.lua_setfield(L, G, 'print')
    lua.lua_pushjsfunction(L, (L2) => {
      lua.lua_pushinteger(L2, 0)
      return 1
    })
    lua.lua_setfield(L, G, 'collectgarbage')
    lua.lua_pushjsfunction(L, (L2) => this.luaLoad(L2))
    lua.lua_setfield(L, G, 'load')
    lua.lua_pushjsfunction(L, (L2) => this.luaPcall(L2, false))
    lua.lua_setfield(L, G, 'pcall')
    lua.lua_pushjsfunction(L, (L2) => this.luaPcall(L2, true))
    lua.lua_setfield(L, G, 'xpcall')
    lua.lua_pushjsfunction(L, (L2) => this.luaRequire(L2))
    lua.lua_setfield(L, G, 'require')
    lua.lua_pushjsfunction(L, (L2) => {
      aux.luaL_tolstring(L2, 1)
      this.checkResults(L2, 1)
      return 1
    })
    lua.lua_setfield(L, G, 'tostring')

    // string: no dump/pack; results bounded.
    lua.lua_getfield(L, G, 'string')
    const S = lua.lua_gettop(L)
    for (const name of ['dump', 'pack', 'unpack', 'packsize']) {
      lua.lua_pushnil(L)
      lua.lua_setfield(L, S, name)
    }
    this.wrapAll(S, ['rep', 'format', 'gsub'])
    this.wrap(S, 'rep', () => (L2) => this.stringRep(L2))
    this.wrap(S, 'format', (orig) => (L2) => this.stringFormat(L2, orig))
    this.wrap(S, 'gsub', (orig) => (L2) => this.stringGsub(L2, orig))
    lua.lua_pop(L, 1)
    lua.lua_getfield(L, G, 'table')
    const T = lua.lua_gettop(L)
    this.wrapAll(T, ['concat', 'move'])
    this.wrap(T, 'concat', (orig) => (L2) => this.tableConcat(L2, orig))
    this.wrap(T, 'move', (orig) => (L2) => this.tableMove(L2, orig))
    lua.lua_pop(L, 1)
    lua.lua_getfield(L, G, 'utf8')
    this.wrapAll(lua.lua_gettop(L), [])
    lua.lua_pop(L, 1)
    // os: only the clock functions.
    lua.lua_getfield(L, G, 'os')
    const OS = lua.lua_gettop(L)
    lua.lua_createtable(L, 0, 4)
    for (const name of ['time', 'clock', 'date', 'difftime']) {
      lua.lua_getfield(L, OS, name)
      lua.lua_setfield(L, -2, name)
    }
    lua.lua_setfield(L, G, 'os')
    lua.lua_pop(L, 1)
    lua.lua_pushnil(L)
    lua.lua_setfield(L, G, '_G')
    // spylog extension: PLATFORM ('windows', 'linux', 'darwin', 'freebsd'…), so that one
    // configuration can give each platform its own paths.
    lua.lua_pushstring(L, fengari.to_luastring(this.o.platform ?? (process.platform === 'win32' ? 'windows' : process.platform)))
    lua.lua_setfield(L, G, 'PLATFORM')

    // Collected tables.
    lua.lua_createtable(L, 0, 0)
    this.collectedRef = this.ref()
    // WHITE_IP: a table (exclude = WHITE_IP) that can be called (WHITE_IP{…} appends).
    lua.lua_createtable(L, 0, 0)
    lua.lua_createtable(L, 0, 2)
    lua.lua_pushjsfunction(L, (L2) => this.whiteIpCall(L2))
    lua.lua_setfield(L, -2, '__call')
    lua.lua_pushboolean(L, false)
    lua.lua_setfield(L, -2, '__metatable')
    lua.lua_setmetatable(L, -2)
    this.whiteRef = this.ref()

    this.mainEnvRef = this.newEnv(G)
    this.subEnvRef = this.newEnv(G)
    lua.lua_settop(L, 0)
  }

  /** Registry reference of the value on top (popped). */
  private ref(): number {
    return aux.luaL_ref(this.L, lua.LUA_REGISTRYINDEX)
  }

  private pushRef(ref: number): void {
    lua.lua_rawgeti(this.L, lua.LUA_REGISTRYINDEX, ref)
  }

  private newEnv(G: number): number {
    const L = this.L
    lua.lua_createtable(L, 0, 16)
    const E = lua.lua_gettop(L)
    for (const fn of CONFIG_FUNCTIONS) {
      if (fn === 'WHITE_IP') this.pushRef(this.whiteRef)
      else lua.lua_pushjsfunction(L, (L2) => this.collect(L2, fn))
      lua.lua_setfield(L, E, fn)
    }
    lua.lua_pushvalue(L, E)
    lua.lua_setfield(L, E, '_G')
    lua.lua_createtable(L, 0, 2)
    lua.lua_pushvalue(L, G)
    lua.lua_setfield(L, -2, '__index')
    lua.lua_pushboolean(L, false)
    lua.lua_setfield(L, -2, '__metatable')
    lua.lua_setmetatable(L, E)
    return this.ref()
  }

  /** Replace every function of the library table at `idx` (except `skip`) by one whose string results are bounded. */
  private wrapAll(idx: number, skip: readonly string[]): void {
    const L = this.L
    const names: string[] = []
    lua.lua_pushnil(L)
    while (lua.lua_next(L, idx) !== 0) {
      if (lua.lua_type(L, -2) === lua.LUA_TSTRING && lua.lua_type(L, -1) === lua.LUA_TFUNCTION) {
        const name = decodeLua(lua.lua_tolstring(L, -2)!)!
        if (!skip.includes(name)) names.push(name)
      }
      lua.lua_pop(L, 1)
    }
    for (const name of names) {
      this.wrap(idx, name, (orig) => (L2) => {
        const n = orig(L2)
        this.checkResults(L2, n)
        return n
      })
    }
  }

  private wrap(idx: number, name: string, make: (orig: JsFunction) => JsFunction): void {
    const L = this.L
    lua.lua_getfield(L, idx, name)
    const orig = lua.lua_tocfunction(L, -1)
    lua.lua_pop(L, 1)
    if (orig === null) return
    lua.lua_pushjsfunction(L, make(orig))
    lua.lua_setfield(L, idx, name)
  }

  // --- limits ----------------------------------------------------------------------------------

  private heapNow(): number {
    const h = v8.getHeapStatistics()
    return h.used_heap_size + h.external_memory
  }

  private onHook(L: LuaState): void {
    this.used += HOOK_COUNT
    if (this.fatal !== undefined) this.raiseFatal(L)
    if (this.used > this.o.maxInstructions) {
      this.setFatal(L, `instruction budget exhausted (${this.o.maxInstructions} Lua instructions): an endless loop?`, 0)
    }
    this.checkMemory(L, 0)
  }

  private checkMemory(L: LuaState, level: number): void {
    this.stringBytes = 0
    const grown = this.heapNow() - this.heapBase
    if (grown > this.o.maxMemory) {
      this.setFatal(L, `memory limit exceeded (the configuration grew the heap by more than ${Math.round(this.o.maxMemory / 1048576)} MiB): a huge table or string?`, level)
    }
  }

  /** Account a string just made; raise when it is too long (`vm`: made by the VM, e.g. `..`). */
  madeString(L: LuaState, length: number, vm: boolean): void {
    if (length > this.o.maxStringLength) {
      this.setFatal(L, `string too long (${length} bytes; the limit is ${this.o.maxStringLength})`, vm ? 0 : 1, vm)
    }
    this.stringBytes += length
    if (this.stringBytes > STRING_BYTES_CHECK) this.checkMemory(L, vm ? 0 : 1)
  }

  /** Check the string results on top of the stack (n of them). */
  private checkResults(L: LuaState, n: number): void {
    const top = lua.lua_gettop(L)
    for (let i = top - n + 1; i <= top; i++) {
      if (lua.lua_type(L, i) === lua.LUA_TSTRING) this.madeString(L, lua.lua_rawlen(L, i), false)
    }
  }

  /** Where the running Lua code is: level 0 = the running Lua function (hooks), 1 = the caller of a JS function. */
  private where(L: LuaState, level: number): Origin {
    for (let lv = level; lv < level + 50; lv++) {
      if (!lua.lua_getstack(L, lv, this.ar)) break
      lua.lua_getinfo(L, 'Sl', this.ar)
      const src = this.ar.source === null ? undefined : decodeLua(this.ar.source)
      if (src !== undefined && src.startsWith('@')) {
        const file = this.chunks.get(src.slice(1))
        if (file !== undefined) return {file, line: Math.max(0, this.ar.currentline)}
      }
    }
    return {file: this.currentFile, line: 0}
  }

  /** A resource limit was hit: remember it (no pcall may swallow it) and raise it. */
  private setFatal(L: LuaState, message: string, level: number, vm = false): never {
    this.fatal ??= new FatalError(message, this.where(L, level))
    // From now on every instruction raises it again, until the top level is reached.
    lua.lua_sethook(L, this.hook, lua.LUA_MASKCOUNT, 1)
    if (vm) ldebug.luaG_runerror(L, toLua(escapePercent(message)))
    return aux.luaL_error(L, escapePercent(message))
  }

  private raiseFatal(L: LuaState): never {
    lua.lua_pushstring(L, toLua(this.fatal!.message))
    return lua.lua_error(L)
  }

  // --- replaced library functions -------------------------------------------------------------

  private luaPrint(L: LuaState): number {
    const n = lua.lua_gettop(L)
    const parts: string[] = []
    for (let i = 1; i <= n; i++) {
      parts.push(utf8Lossy.decode(aux.luaL_tolstring(L, i)))
      lua.lua_pop(L, 1)
    }
    this.o.print?.(parts.join('\t'))
    return 0
  }

  /** load(chunk [, chunkname [, mode [, env]]]): text chunks only, given as a string. */
  private luaLoad(L: LuaState): number {
    const n = lua.lua_gettop(L)
    if (lua.lua_type(L, 1) !== lua.LUA_TSTRING) return aux.luaL_error(L, 'load: only a string chunk can be loaded here')
    const chunk = lua.lua_tolstring(L, 1)!
    const name = lua.lua_type(L, 2) === lua.LUA_TSTRING ? lua.lua_tolstring(L, 2)! : chunk
    if (lua.lua_type(L, 3) === lua.LUA_TSTRING && !decodeLua(lua.lua_tolstring(L, 3)!)?.includes('t')) {
      lua.lua_pushnil(L)
      lua.lua_pushstring(L, toLua('attempt to load a text chunk (mode is not text)'))
      return 2
    }
    if (chunk.length > 0 && chunk[0] === 0x1b) {
      lua.lua_pushnil(L)
      lua.lua_pushstring(L, toLua('binary chunks cannot be loaded'))
      return 2
    }
    const status = aux.luaL_loadbufferx(L, chunk, chunk.length, name, toLua('t'))
    if (status !== lua.LUA_OK) {
      lua.lua_pushnil(L)
      lua.lua_insert(L, -2)
      return 2
    }
    if (n >= 4) lua.lua_pushvalue(L, 4)
    else this.pushRef(this.currentEnv)
    lua.lua_setupvalue(L, -2, 1)
    return 1
  }

  /** pcall/xpcall that cannot swallow a resource-limit error. */
  private luaPcall(L: LuaState, x: boolean): number {
    if (x) {
      // xpcall(f, msgh, ...) → stack: msgh, f, ...
      aux.luaL_checktype(L, 2, lua.LUA_TFUNCTION)
      lua.lua_pushvalue(L, 1)
      lua.lua_pushvalue(L, 2)
      lua.lua_replace(L, 1)
      lua.lua_replace(L, 2)
    } else if (lua.lua_gettop(L) < 1) {
      return aux.luaL_error(L, "bad argument #1 to 'pcall' (value expected)")
    }
    const base = x ? 2 : 1
    const nargs = lua.lua_gettop(L) - base
    const status = lua.lua_pcall(L, nargs, lua.LUA_MULTRET, x ? 1 : 0)
    if (this.fatal !== undefined) this.raiseFatal(L)
    lua.lua_pushboolean(L, status === lua.LUA_OK)
    lua.lua_insert(L, base)
    return lua.lua_gettop(L) - base + 1
  }

  private luaRequire(L: LuaState): number {
    const nameBytes = aux.luaL_checklstring(L, 1)
    const name = decodeLua(nameBytes) ?? ''
    if (!/^[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*$/.test(name)) {
      return aux.luaL_error(L, escapePercent(`require '${name}': only modules inside the configuration directory can be loaded, named like 'lib.util' (lib/util.lua)`))
    }
    const rel = name.split('.').join('/')
    let file: string | undefined
    for (const cand of [rel + '.lua', rel + '/init.lua']) {
      const p = path.join(this.dir, cand)
      if (fs.existsSync(p) && fs.statSync(p).isFile()) {
        file = cand
        break
      }
    }
    if (file === undefined) return aux.luaL_error(L, escapePercent(`module '${name}' not found in the configuration directory (looked for ${rel}.lua and ${rel}/init.lua)`))
    const real = fs.realpathSync(path.join(this.dir, file))
    if (!isInside(this.realDir, real)) return aux.luaL_error(L, escapePercent(`require '${name}': ${file} leads outside the configuration directory`))
    const prev = this.loaded.get(real)
    if (prev === 'loading') return aux.luaL_error(L, escapePercent(`require '${name}': loop (${file} is already being loaded)`))
    if (prev !== undefined) {
      this.pushRef(prev.ref)
      return 1
    }
    const savedFile = this.currentFile
    const err = this.loadChunk(L, file, real)
    if (err !== undefined) {
      // Already "file:line: message" (syntax error) or "file: message" (unreadable).
      this.currentFile = savedFile
      lua.lua_pushstring(L, toLua(err))
      return lua.lua_error(L)
    }
    this.loaded.set(real, 'loading')
    try {
      lua.lua_pushstring(L, nameBytes)
      lua.lua_call(L, 1, 1)
    } finally {
      this.currentFile = savedFile
      this.loaded.delete(real)
    }
    if (lua.lua_type(L, -1) === lua.LUA_TNIL) {
      lua.lua_pop(L, 1)
      lua.lua_pushboolean(L, true)
    }
    lua.lua_pushvalue(L, -1)
    this.loaded.set(real, {ref: this.ref()})
    return 1
  }

  /** string.rep, bounded (and built by block copies: fengari's copies one unit at a time). */
  private stringRep(L: LuaState): number {
    const s = aux.luaL_checklstring(L, 1)
    const n = aux.luaL_checkinteger(L, 2)
    const sep = lua.lua_type(L, 3) > lua.LUA_TNIL ? aux.luaL_checklstring(L, 3) : new Uint8Array(0)
    if (n <= 0 || s.length + sep.length === 0) {
      lua.lua_pushlstring(L, new Uint8Array(0), 0)
      return 1
    }
    const total = n * s.length + (n - 1) * sep.length
    if (total > this.o.maxStringLength) this.setFatal(L, `string.rep: result of ${total} bytes is too long (the limit is ${this.o.maxStringLength})`, 1)
    const out = new Uint8Array(total)
    const unit = s.length + sep.length
    const body = (n - 1) * unit
    if (body > 0) {
      out.set(s, 0)
      out.set(sep, s.length)
      for (let filled = unit; filled < body; ) {
        const c = Math.min(filled, body - filled)
        out.copyWithin(filled, 0, c)
        filled += c
      }
    }
    out.set(s, body)
    lua.lua_pushlstring(L, out, total)
    this.madeString(L, total, false)
    return 1
  }

  private stringFormat(L: LuaState, orig: JsFunction): number {
    const n = lua.lua_gettop(L)
    let total = lua.lua_type(L, 1) === lua.LUA_TSTRING ? lua.lua_rawlen(L, 1) : 0
    for (let i = 2; i <= n; i++) total += lua.lua_type(L, i) === lua.LUA_TSTRING ? lua.lua_rawlen(L, i) : 512
    if (total > this.o.maxStringLength) this.setFatal(L, `string.format: result of up to ${total} bytes is too long (the limit is ${this.o.maxStringLength})`, 1)
    const r = orig(L)
    this.checkResults(L, r)
    return r
  }

  /**
   * gsub whose result stays bounded: a function or table replacement is wrapped to count the
   * bytes it adds; a string replacement caps the number of substitutions to what fits.
   */
  private stringGsub(L: LuaState, orig: JsFunction): number {
    const s = aux.luaL_checklstring(L, 1)
    const rt = lua.lua_type(L, 3)
    const limit = this.o.maxStringLength
    if (rt === lua.LUA_TFUNCTION || rt === lua.LUA_TTABLE) {
      let added = s.length
      lua.lua_pushvalue(L, 3)
      lua.lua_pushjsclosure(L, (L2) => {
        const nargs = lua.lua_gettop(L2)
        lua.lua_pushvalue(L2, lua.lua_upvalueindex(1))
        if (rt === lua.LUA_TTABLE) {
          lua.lua_pushvalue(L2, 1)
          lua.lua_gettable(L2, -2)
          lua.lua_remove(L2, -2)
        } else {
          lua.lua_insert(L2, 1)
          lua.lua_call(L2, nargs, 1)
        }
        const t = lua.lua_type(L2, -1)
        if (t === lua.LUA_TSTRING || t === lua.LUA_TNUMBER) {
          added += t === lua.LUA_TSTRING ? lua.lua_rawlen(L2, -1) : 24
          if (added > limit) this.setFatal(L2, `string.gsub: result too long (the limit is ${limit} bytes)`, 1)
        }
        return 1
      }, 1)
      lua.lua_replace(L, 3)
    } else if (rt === lua.LUA_TSTRING || rt === lua.LUA_TNUMBER) {
      const repl = lua.lua_tolstring(L, 3)!
      let refs = 0
      for (let i = 0; i + 1 < repl.length; i++) {
        if (repl[i] === 0x25) {
          if (repl[i + 1]! >= 0x30 && repl[i + 1]! <= 0x39) refs++
          i++
        }
      }
      const perSub = repl.length + refs * s.length
      const worst = s.length + (s.length + 1) * perSub
      if (worst > limit && perSub > 0) {
        const cap = Math.max(1, Math.floor((limit - s.length) / perSub) + 1)
        const asked = lua.lua_type(L, 4) > lua.LUA_TNIL ? aux.luaL_optinteger(L, 4, cap) : Infinity
        if (asked > cap) {
          lua.lua_settop(L, 3)
          lua.lua_pushinteger(L, cap)
          const r = orig(L)
          this.checkResults(L, r)
          if (lua.lua_tointeger(L, -1) >= cap) this.setFatal(L, `string.gsub: result too long (the limit is ${limit} bytes)`, 1)
          return r
        }
      }
    }
    const r = orig(L)
    this.checkResults(L, r)
    return r
  }

  private tableConcat(L: LuaState, orig: JsFunction): number {
    aux.luaL_checktype(L, 1, lua.LUA_TTABLE)
    const sepLen = lua.lua_type(L, 2) === lua.LUA_TSTRING ? lua.lua_rawlen(L, 2) : 0
    const i = aux.luaL_optinteger(L, 3, 1)
    const j = lua.lua_type(L, 4) > lua.LUA_TNIL ? aux.luaL_checkinteger(L, 4) : lua.lua_rawlen(L, 1)
    let total = 0
    for (let k = i; k <= j; k++) {
      const t = lua.lua_geti(L, 1, k)
      const ok = t === lua.LUA_TSTRING || t === lua.LUA_TNUMBER
      if (ok) total += (t === lua.LUA_TSTRING ? lua.lua_rawlen(L, -1) : 24) + sepLen
      lua.lua_pop(L, 1)
      if (!ok) break
      if (total > this.o.maxStringLength) this.setFatal(L, `table.concat: result too long (the limit is ${this.o.maxStringLength} bytes)`, 1)
    }
    const r = orig(L)
    this.checkResults(L, r)
    return r
  }

  /** table.move runs its loop without instructions: bound the count. */
  private tableMove(L: LuaState, orig: JsFunction): number {
    const f = aux.luaL_checkinteger(L, 2)
    const e = aux.luaL_checkinteger(L, 3)
    if (e - f > 1_000_000) this.setFatal(L, 'table.move: more than 1,000,000 elements', 1)
    return orig(L)
  }

  // --- configuration functions ----------------------------------------------------------------

  private collect(L: LuaState, fn: ConfigFunction): number {
    const t = lua.lua_type(L, 1)
    if (t !== lua.LUA_TTABLE) {
      const what = decodeLua(aux.luaL_typename(L, 1)) ?? '?'
      return aux.luaL_error(L, escapePercent(`${fn} expects a table, as in ${fn}{ … }, got ${t === lua.LUA_TNONE ? 'no value' : what}`))
    }
    const origin = this.where(L, 1)
    this.pushRef(this.collectedRef)
    const n = this.calls.length + 1
    lua.lua_pushvalue(L, 1)
    lua.lua_rawseti(L, -2, n)
    lua.lua_pop(L, 1)
    this.calls.push({fn, ref: n, origin, main: this.currentMain && origin.file === this.currentFile})
    return 0
  }

  /** WHITE_IP{…}: append the entries to the WHITE_IP table. */
  private whiteIpCall(L: LuaState): number {
    if (lua.lua_type(L, 2) !== lua.LUA_TTABLE) return aux.luaL_error(L, 'WHITE_IP expects a table, as in WHITE_IP{ "192.0.2.1", "198.51.100.0/24" }')
    const origin = this.where(L, 1)
    const from = lua.lua_rawlen(L, 1) + 1
    const n = lua.lua_rawlen(L, 2)
    for (let i = 1; i <= n; i++) {
      lua.lua_rawgeti(L, 2, i)
      lua.lua_rawseti(L, 1, from + i - 1)
    }
    this.whiteOrigins.push({from, to: from + n - 1, origin})
    return 0
  }

  // --- running files --------------------------------------------------------------------------

  /** Read, decode and compile one file; pushes the chunk (with the current environment) or returns an error message. */
  private loadChunk(L: LuaState, rel: string, real: string): string | undefined {
    const display = path.join(this.dir, rel)
    let bytes: Buffer
    try {
      const st = fs.statSync(real)
      if (st.size > this.o.maxFileSize) return `${display}: file too large (${st.size} bytes; the limit is ${this.o.maxFileSize})`
      bytes = fs.readFileSync(real)
    } catch (e) {
      return `${display}: ${(e as Error).message}`
    }
    const text = decodeFile(bytes, this.o.encoding)
    if (typeof text !== 'string') return `${display}: ${text.error}`
    this.lines.set(display, text.split(/\r\n|\r|\n/))
    const chunkname = rel.split(path.sep).join('/')
    this.chunks.set(chunkname, display)
    this.currentFile = display
    const status = aux.luaL_loadbufferx(L, toLua(text), null, toLua('@' + chunkname), toLua('t'))
    if (status !== lua.LUA_OK) {
      const msg = lua.lua_type(L, -1) === lua.LUA_TSTRING ? utf8Lossy.decode(lua.lua_tolstring(L, -1)!) : 'syntax error'
      lua.lua_pop(L, 1)
      return msg
    }
    this.pushRef(this.currentEnv)
    lua.lua_setupvalue(L, -2, 1)
    return undefined
  }

  /** Run one file of the directory (relative path). */
  runFile(rel: string, main: boolean): void {
    if (this.fatal !== undefined) return
    const L = this.L
    const real = fs.realpathSync(path.join(this.dir, rel))
    if (this.loaded.has(real)) return // already loaded through require
    this.currentEnv = main ? this.mainEnvRef : this.subEnvRef
    this.currentMain = main
    lua.lua_settop(L, 0)
    const err = this.loadChunk(L, rel, real)
    if (err !== undefined) {
      this.errors.push(this.luaError(err, path.join(this.dir, rel)))
      return
    }
    this.loaded.set(real, 'loading')
    this.heapBase = this.heapBase || this.heapNow()
    lua.lua_sethook(L, this.hook, lua.LUA_MASKCOUNT, HOOK_COUNT)
    activeSandbox = this
    let status: number
    try {
      status = lua.lua_pcall(L, 0, 1, 0)
    } finally {
      activeSandbox = undefined
      lua.lua_sethook(L, null, 0, 0)
    }
    const fatal = this.fatal as FatalError | undefined
    if (fatal !== undefined) {
      this.errors.push(new ConfigError(fatal.message, fatal.origin.file, fatal.origin.line || undefined))
      return
    }
    if (status !== lua.LUA_OK) {
      const v = lua.lua_type(L, -1)
      const msg = v === lua.LUA_TSTRING || v === lua.LUA_TNUMBER ? utf8Lossy.decode(lua.lua_tolstring(L, -1)!) : `error object is a ${decodeLua(aux.luaL_typename(L, -1))}`
      this.errors.push(this.luaError(msg, path.join(this.dir, rel)))
      this.loaded.delete(real)
      return
    }
    this.loaded.set(real, {ref: this.ref()})
  }

  /** A Lua error message ("chunk:line: text") as a ConfigError, with a hint for a misspelt function. */
  private luaError(msg: string, file: string): ConfigError {
    let text = msg
    let at: Origin = {file, line: 0}
    const m = /^(.+?):(\d+): ([^]*)$/.exec(msg)
    if (m) {
      const known = this.chunks.get(m[1]!)
      if (known !== undefined) {
        at = {file: known, line: Number(m[2])}
        text = m[3]!
      } else if (m[1] === file) {
        at = {file, line: Number(m[2])}
        text = m[3]!
      }
    } else if (msg.startsWith(file + ': ')) text = msg.slice(file.length + 2)
    const g = /\(global '([^']+)'\)$/.exec(text)
    if (g && /attempt to call a nil value/.test(text)) {
      const s = closestName(g[1]!, CONFIG_FUNCTIONS)
      if (s !== undefined) text += `; did you mean ${s}?`
    }
    return new ConfigError(text, at.file, at.line || undefined)
  }

  // --- conversion -----------------------------------------------------------------------------

  evaluation(): LuaEvaluation {
    const L = this.L
    lua.lua_settop(L, 0)
    let budget = this.o.maxValues
    const calls: ConfigCall[] = []
    this.pushRef(this.collectedRef)
    const C = lua.lua_gettop(L)
    this.pushRef(this.whiteRef)
    const W = lua.lua_gettop(L)
    const whitePtr = lua.lua_topointer(L, W)
    const convert = (idx: number, depth: number, stack: Set<object>): LuaValue => {
      if (--budget < 0) throw new TooLarge()
      switch (lua.lua_type(L, idx)) {
        case lua.LUA_TNIL: return undefined
        case lua.LUA_TBOOLEAN: return lua.lua_toboolean(L, idx)
        case lua.LUA_TNUMBER: return lua.lua_tonumber(L, idx)
        case lua.LUA_TSTRING: {
          const b = lua.lua_tolstring(L, idx)!
          const s = decodeLua(b)
          return s ?? {kind: 'bytes', text: utf8Lossy.decode(b)}
        }
        case lua.LUA_TTABLE: break
        case lua.LUA_TFUNCTION: return {kind: 'function'}
        case lua.LUA_TTHREAD: return {kind: 'thread'}
        default: return {kind: 'userdata'}
      }
      const ptr = lua.lua_topointer(L, idx)!
      if (stack.has(ptr)) return {kind: 'cycle'}
      if (depth > this.o.maxDepth || !lua.lua_checkstack(L, 4)) return {kind: 'deep'}
      stack.add(ptr)
      const t = lua.lua_absindex(L, idx)
      const table: LuaTable = {kind: 'table', array: [], fields: new Map(), other: [], whiteIp: ptr === whitePtr}
      const ints = new Map<number, LuaValue>()
      lua.lua_pushnil(L)
      while (lua.lua_next(L, t) !== 0) {
        const kt = lua.lua_type(L, -2)
        const value = convert(-1, depth + 1, stack)
        if (kt === lua.LUA_TSTRING) {
          const k = decodeLua(lua.lua_tolstring(L, -2)!)
          if (k !== undefined) table.fields.set(k, value)
          else table.other.push([{kind: 'bytes', text: utf8Lossy.decode(lua.lua_tolstring(L, -2)!)}, value])
        } else if (kt === lua.LUA_TNUMBER && lua.lua_isinteger(L, -2) && lua.lua_tointeger(L, -2) >= 1) {
          ints.set(lua.lua_tointeger(L, -2), value)
        } else {
          table.other.push([convert(-2, depth + 1, stack), value])
        }
        lua.lua_pop(L, 1)
      }
      for (let i = 1; ints.has(i); i++) {
        table.array.push(ints.get(i))
        ints.delete(i)
      }
      for (const [k, v] of ints) table.other.push([k, v])
      stack.delete(ptr)
      return table
    }
    for (const c of this.calls) {
      lua.lua_rawgeti(L, C, c.ref)
      let value: LuaValue
      try {
        value = convert(-1, 0, new Set())
      } catch (e) {
        if (!(e instanceof TooLarge)) throw e
        this.errors.push(new ConfigError(`${c.fn}{}: table too large (more than ${this.o.maxValues} values in all)`, c.origin.file, c.origin.line || undefined))
        break
      }
      lua.lua_pop(L, 1)
      calls.push({fn: c.fn, value, origin: c.origin, main: c.main})
    }
    const whiteIp: {value: LuaValue; origin: Origin}[] = []
    const n = lua.lua_rawlen(L, W)
    const lastOrigin = this.whiteOrigins.at(-1)?.origin ?? {file: path.join(this.dir, MAIN_FILE), line: 0}
    for (let i = 1; i <= n && budget > 0; i++) {
      lua.lua_rawgeti(L, W, i)
      let value: LuaValue
      try {
        value = convert(-1, 0, new Set())
      } catch {
        break
      }
      lua.lua_pop(L, 1)
      const o = this.whiteOrigins.find((w) => i >= w.from && i <= w.to)?.origin ?? lastOrigin
      whiteIp.push({value, origin: o})
    }
    lua.lua_settop(L, 0)
    return {dir: this.dir, calls, whiteIp, errors: this.errors, lines: this.lines}
  }
}

function isInside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p)
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)
}

const CODING = /^[ \t\f]*--.*?(?:en)?coding[:=][ \t]*([-\w.]+)/

/** Decode a configuration file: BOM, `-- encoding:` declaration, default encoding. */
export function decodeFile(bytes: Uint8Array, defaultEncoding: string): string | {error: string} {
  let b = bytes
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return decodeWith(b.subarray(3), 'utf-8', 'a UTF-8 byte order mark')
  // The declaration is ASCII: look at the first two lines as Latin-1.
  let end = 0
  for (let lines = 0; end < b.length && end < 4096; end++) {
    if (b[end] === 0x0a && ++lines === 2) break
  }
  const head = Buffer.from(b.subarray(0, end)).toString('latin1').split('\n')
  for (const line of head) {
    const m = CODING.exec(line)
    if (m) return decodeWith(b, m[1]!, `its declaration (${m[0].trim()})`)
  }
  return decodeWith(b, defaultEncoding, defaultEncoding.toLowerCase().replace('_', '-') === 'utf-8' ? undefined : 'the encoding option')
}

function decodeWith(b: Uint8Array, encoding: string, why: string | undefined): string | {error: string} {
  let dec: InstanceType<typeof TextDecoder>
  try {
    dec = new TextDecoder(encoding, {fatal: true})
  } catch {
    return {error: `unknown encoding '${encoding}'${why ? ` (from ${why})` : ''}`}
  }
  try {
    return dec.decode(b)
  } catch {
    return {
      error: `not valid ${encoding} text${why ? ` (encoding from ${why})` : ''}; declare the file's encoding on its first line (-- encoding: cp1251) or set the encoding option`,
    }
  }
}

/** The files of a configuration directory, in load order (relative paths). */
export function configFiles(dir: string): {main: string | undefined; files: string[]} {
  const main = fs.existsSync(path.join(dir, MAIN_FILE)) ? MAIN_FILE : undefined
  const files: string[] = []
  for (const sub of SUBDIRS) {
    const found: string[] = []
    const walk = (rel: string): void => {
      const abs = path.join(dir, rel)
      let entries: fs.Dirent[]
      try {
        entries = fs.readdirSync(abs, {withFileTypes: true})
      } catch {
        return
      }
      for (const e of entries) {
        const r = path.join(rel, e.name)
        if (e.isDirectory()) walk(r)
        else if (e.name.endsWith('.lua') && (e.isFile() || e.isSymbolicLink())) found.push(r)
      }
    }
    walk(sub)
    found.sort((a, b) => {
      const x = a.split(path.sep).join('/')
      const y = b.split(path.sep).join('/')
      return x < y ? -1 : x > y ? 1 : 0
    })
    files.push(...found)
  }
  return {main, files}
}

/** Run a configuration directory in the sandbox and collect what its calls gave. */
export function evaluateLuaConfig(dir: string, opts: LuaConfigOptions = {}): LuaEvaluation {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    return {dir, calls: [], whiteIp: [], errors: [new ConfigError('configuration directory not found', dir)], lines: new Map()}
  }
  const {main, files} = configFiles(dir)
  if (main === undefined && files.length === 0) {
    return {dir, calls: [], whiteIp: [], errors: [new ConfigError(`not a lua-spylog configuration directory (no ${MAIN_FILE}, no ${SUBDIRS.join('/, ')}/ files)`, dir)], lines: new Map()}
  }
  const sb = new Sandbox(dir, opts)
  if (main !== undefined) sb.runFile(main, true)
  for (const f of files) sb.runFile(f, false)
  return sb.evaluation()
}

/** Read, run and validate a lua-spylog configuration directory. Throws ConfigErrors. */
export function loadLuaConfig(dir: string, opts: LuaConfigOptions = {}): SpylogConfig {
  const ev = evaluateLuaConfig(dir, opts)
  const v = new Validator(ev, opts)
  const config = v.run()
  const seen = new Set<string>()
  const errors = [...ev.errors, ...v.errors].filter((e) => !seen.has(e.message) && seen.add(e.message))
  if (errors.length > 0) throw new ConfigErrors(errors)
  return config
}

// ---------------------------------------------------------------------------------------------
// Validation

function describe(v: LuaValue): string {
  if (v === undefined) return 'nil'
  if (typeof v === 'boolean') return String(v)
  if (typeof v === 'number') return `number ${v}`
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`
  switch (v.kind) {
    case 'table': return 'a table'
    case 'function': return 'a function'
    case 'thread': return 'a coroutine'
    case 'userdata': return 'a userdata'
    case 'cycle': return 'a table that contains itself'
    case 'deep': return 'a table nested too deeply'
    case 'bytes': return 'a string that is not valid UTF-8'
  }
}

function keyText(k: LuaValue): string {
  return typeof k === 'string' ? k : typeof k === 'number' ? `[${k}]` : `[${describe(k)}]`
}

const IDENT = /^[A-Za-z_]\w*$/

/** Durations: seconds as a number, or a text such as "90", "10m", "1h 30m", "2d" (s, m, h, d, w). */
export function parseDuration(v: LuaValue): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
  if (typeof v !== 'string') return undefined
  const t = v.trim().toLowerCase()
  if (t === '') return undefined
  const unit: Record<string, number> = {
    '': 1, s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60,
    h: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400, w: 604800, week: 604800, weeks: 604800,
  }
  let sign = 1
  let rest = t
  if (rest.startsWith('-')) {
    sign = -1
    rest = rest.slice(1)
  }
  let total = 0
  const re = /\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*/y
  let pos = 0
  while (pos < rest.length) {
    re.lastIndex = pos
    const m = re.exec(rest)
    if (!m) return undefined
    const u = unit[m[2]!]
    if (u === undefined) return undefined
    total += Number(m[1]) * u
    pos = re.lastIndex
  }
  return sign * total
}

const DEFAULT_COUNTER: CounterConfig = {type: 'increment', capture: 'host', value: 'value', time: 'internal'}
const JAIL_FIELDS = ['name', 'enabled', 'filter', 'findtime', 'maxretry', 'bantime', 'rndtime', 'action', 'parameters', 'counter', 'cfilter', 'noreset', 'ipv6_prefix']

interface JailContext {
  readonly filterNames: ReadonlySet<string>
  readonly actions: ReadonlyMap<string, ActionConfig>
  /** Check references (off when a file failed to run: its definitions are missing). */
  readonly check: boolean
}

/** Jail fields as set by one table (a JAIL{} or the global defaults). */
interface JailFields {
  enabled?: boolean
  filters?: string[]
  findtime?: number
  maxretry?: number
  bantime?: number
  rndtime?: number
  actions?: JailActionRef[]
  cfilter?: CaptureFilterConfig[]
  counter?: {config: CounterConfig; cfilter: CaptureFilterConfig[]}
  noreset?: boolean
  ipv6Prefix?: number
}

/** A call being validated: where it is and its source span (for field lines). */
interface CallSpan {
  readonly origin: Origin
  readonly end: number
}

class Validator {
  readonly errors: ConfigError[] = []
  private readonly spans = new Map<ConfigCall, CallSpan>()
  private readonly dataDir: string
  private readonly configDir: string

  constructor(private readonly ev: LuaEvaluation, private readonly opts: LuaConfigOptions) {
    this.configDir = path.resolve(ev.dir)
    this.dataDir = opts.dataDir ?? path.resolve(ev.dir, '..', 'data')
    const byFile = new Map<string, number[]>()
    for (const c of ev.calls) {
      const l = byFile.get(c.origin.file) ?? []
      l.push(c.origin.line)
      byFile.set(c.origin.file, l)
    }
    for (const l of byFile.values()) l.sort((a, b) => a - b)
    for (const c of ev.calls) {
      const lines = byFile.get(c.origin.file)!
      const next = lines.find((x) => x > c.origin.line)
      this.spans.set(c, {origin: c.origin, end: next === undefined ? Infinity : next - 1})
    }
  }

  error(at: Origin, field: string | undefined, message: string): void {
    this.errors.push(new ConfigError(message, at.file, at.line || undefined, field))
  }

  /** Line of a (nested) field written literally inside a call, else the call's line. */
  locate(span: CallSpan, keys: readonly string[]): Origin {
    const lines = this.ev.lines.get(span.origin.file)
    let line = span.origin.line
    if (lines === undefined || line <= 0) return span.origin
    for (const key of keys) {
      if (!IDENT.test(key)) break
      const re = new RegExp(`(?:^|[\\s{;,(])(?:${key}|\\[\\s*(["'])${key}\\1\\s*\\])\\s*=(?!=)`)
      let found = 0
      const end = Math.min(lines.length, span.end)
      for (let i = line; i <= end; i++) {
        if (re.test(lines[i - 1]!.replace(/--.*$/, ''))) {
          found = i
          break
        }
      }
      if (found === 0) break
      line = found
    }
    return {file: span.origin.file, line}
  }

  run(): SpylogConfig {
    const ev = this.ev
    const sources = new Map<string, SourceConfig>()
    const filterCalls: ConfigCall[] = []
    const jailCalls: ConfigCall[] = []
    const actions = new Map<string, ActionConfig>()
    let log: LogConfig = {level: 'info'}
    let connect: ConnectConfig = {}
    let jailGlobals: JailGlobals = {parameters: {}}
    let jailDefaults: Obj | undefined

    for (const c of ev.calls) {
      const span = this.spans.get(c)!
      if (!isTable(c.value)) continue
      const t = c.value
      const named = typeof t.array[0] === 'string' || t.fields.has('name')
      switch (c.fn) {
        case 'SOURCE': {
          const s = this.source(new Obj(this, t, 'SOURCE', span, []), false)
          if (s !== undefined) sources.set(s.name, s)
          break
        }
        case 'FILTER':
          if (!named && c.main) this.emptyGlobals(new Obj(this, t, 'FILTER', span, []), 'FILTER')
          else filterCalls.push(c)
          break
        case 'JAIL':
          if (!named && c.main) {
            const r = this.jailGlobals(new Obj(this, t, 'JAIL', span, []))
            jailGlobals = r.globals
            jailDefaults = r.defaults
          } else jailCalls.push(c)
          break
        case 'ACTION':
          if (!named && c.main) this.emptyGlobals(new Obj(this, t, 'ACTION', span, []), 'ACTION')
          else {
            const a = this.action(new Obj(this, t, 'ACTION', span, []))
            if (a !== undefined) actions.set(a.name, a)
          }
          break
        case 'LOG':
          log = this.log(new Obj(this, t, 'LOG', span, []))
          break
        case 'CONNECT':
          connect = this.connect(new Obj(this, t, 'CONNECT', span, []), connect)
          break
        case 'WHITE_IP':
          break
      }
    }

    const whiteIp: string[] = []
    for (const [i, w] of ev.whiteIp.entries()) {
      const c = typeof w.value === 'string' ? canonicalNetwork(w.value) : undefined
      if (c === undefined) this.error(w.origin, `WHITE_IP[${i + 1}]`, `expected an IP address or network (192.0.2.1, 198.51.100.0/24, 2001:db8::/32), got ${describe(w.value)}`)
      else whiteIp.push(c)
    }

    // Filters (they may create implicit sources).
    const filters: FilterConfig[] = []
    for (const c of filterCalls) {
      const f = this.filter(new Obj(this, c.value as LuaTable, 'FILTER', this.spans.get(c)!, []), sources)
      if (f !== undefined) filters.push(f)
    }
    const filterNames = new Set(filters.map((f) => f.name))
    const evalFailed = ev.errors.length > 0

    const jctx: JailContext = {filterNames, actions, check: !evalFailed}
    let defaults: JailFields = {}
    if (jailDefaults !== undefined) {
      defaults = this.jailFields(jailDefaults, jctx)
      jailDefaults.finish(JAIL_FIELDS.filter((k) => k !== 'name'), 0)
    }
    const jails: JailConfig[] = []
    const jailNames = new Map<string, Origin>()
    for (const c of jailCalls) {
      const j = this.jail(new Obj(this, c.value as LuaTable, 'JAIL', this.spans.get(c)!, []), defaults, jctx)
      if (j === undefined) continue
      const prev = jailNames.get(j.name)
      if (prev !== undefined) {
        this.error(j.origin, `JAIL "${j.name}"`, `duplicate jail name (first defined at ${prev.file}:${prev.line})`)
        continue
      }
      jailNames.set(j.name, j.origin)
      jails.push(j)
    }

    return {
      configDir: this.configDir,
      sources: [...sources.values()],
      filters,
      jails,
      actions: [...actions.values()],
      whiteIp,
      log,
      connect,
      jail: jailGlobals,
      dataDir: this.dataDir,
    }
  }

  // --- sources ---------------------------------------------------------------------------------

  /** SOURCE{name, spec, options…} (or, inline, {spec, options…} with `inline`). */
  private source(o: Obj, inline: boolean, inlineName?: string): SourceConfig | undefined {
    let name: string | undefined
    let specValue: LuaValue
    if (inline) {
      specValue = o.pos(0)
      name = inlineName
    } else {
      name = o.name(false)
      specValue = o.pos(1)
    }
    const specField = inline ? '[1]' : '[2]'
    if (typeof specValue !== 'string' || specValue.trim() === '') {
      o.err(specField, `expected the source string (file:…, net:tcp://…, syslog:udp://…, trap:udp://…, eventlog:udp://…, esl:…, process:…), got ${describe(specValue)}`)
      o.finish([], inline ? 1 : 2)
      return undefined
    }
    if (name === undefined) {
      o.finish([], inline ? 1 : 2)
      return undefined
    }
    const s = this.sourceFromSpec(o, specValue, name, inline, specField)
    return s
  }

  private sourceFromSpec(o: Obj, spec: string, name: string, implicit: boolean, specField: string): SourceConfig | undefined {
    const colon = spec.indexOf(':')
    const kind = colon < 0 ? '' : spec.slice(0, colon)
    const info = colon < 0 ? '' : spec.slice(colon + 1)
    const positional = implicit ? 1 : 2
    const base = {name, origin: o.origin, spec, implicit}
    const kinds = ['file', 'net', 'syslog', 'trap', 'eventlog', 'esl', 'process']
    if (!kinds.includes(kind) || (info === '' && kind !== 'eventlog')) {
      const s = closestName(kind, kinds)
      o.err(specField, `invalid source string ${JSON.stringify(spec)}: expected TYPE:INFO with TYPE one of ${kinds.join(', ')}${s !== undefined && s !== kind ? `; did you mean ${s}:?` : ''}`)
      o.finish([], positional)
      return undefined
    }
    const maxLine = (): number => o.int('max_line', {min: 1, def: 4096})!
    if (kind === 'eventlog' && (info === '' || info === 'local')) return this.localEventLog(o, base, positional)
    switch (kind) {
      case 'file': {
        const p = path.isAbsolute(info) || path.win32.isAbsolute(info) ? info : path.resolve(this.configDir, info)
        const eol = o.eol('eol', {text: '\r*\n', pattern: true})
        const skip = o.bool('skeep', true)
        const poll = o.num('poll', {min: 1})
        const bufferSize = o.int('buffer_size', {min: 1})
        const ml = maxLine()
        const encoding = o.str('encoding') ?? 'utf-8'
        if (o.has('encoding')) {
          try {
            new TextDecoder(encoding)
          } catch {
            o.err('encoding', `unknown encoding '${encoding}'`)
          }
        }
        o.finish(['eol', 'skeep', 'poll', 'buffer_size', 'max_line', 'encoding'], positional)
        return {...base, kind: 'file', path: p, eol, skipExisting: skip !== false, poll, bufferSize, maxLine: ml, encoding}
      }
      case 'net': {
        const m = /^(tcp|udp):\/\/(.+)$/.exec(info)
        const hp = m ? parseHostPort(m[2]!, undefined) : undefined
        if (!m || hp === undefined || hp.port === undefined) {
          o.err(specField, `invalid net source ${JSON.stringify(spec)}: expected net:tcp://HOST:PORT or net:udp://HOST:PORT`)
          o.finish(['eol', 'reconnect', 'max_line'], positional)
          return undefined
        }
        const eol = o.eol('eol', {text: '\r\n', pattern: false})
        const reconnect = o.duration('reconnect', {min: 0}) ?? 30
        const ml = maxLine()
        o.finish(['eol', 'reconnect', 'max_line'], positional)
        return {...base, kind: 'net', protocol: m[1] as 'tcp' | 'udp', host: hp.host, port: hp.port, eol, reconnect, maxLine: ml}
      }
      case 'syslog': {
        const m = /^(udp|tcp):\/\/(.+)$/.exec(info)
        const hp = m ? parseHostPort(m[2]!, 514) : undefined
        if (!m || hp === undefined) {
          o.err(specField, `invalid syslog source ${JSON.stringify(spec)}: expected syslog:udp://HOST[:PORT] or syslog:tcp://HOST[:PORT]`)
          o.finish(['max_line'], positional)
          return undefined
        }
        const maxMessage = o.int('max_line', {min: 480})
        o.finish(['max_line'], positional)
        return {...base, kind, protocol: m[1] as 'udp' | 'tcp', host: hp.host, port: hp.port!, ...(maxMessage !== undefined ? {maxMessage} : {})}
      }
      case 'trap':
      case 'eventlog': {
        const m = /^udp:\/\/(.+)$/.exec(info)
        const hp = m ? parseHostPort(m[1]!, 162) : undefined
        const extra = kind === 'trap' ? ['community'] : []
        if (!m || hp === undefined) {
          o.err(specField, `invalid ${kind} source ${JSON.stringify(spec)}: expected ${kind}:udp://HOST[:PORT]${kind === 'eventlog' ? ' (SNMP traps), or eventlog: / eventlog:local (this machine\'s event log)' : ''}`)
          o.finish(extra, positional)
          return undefined
        }
        if (kind === 'trap') {
          const community = o.has('community') ? o.strList('community', {nonEmpty: true}) : undefined
          o.finish(extra, positional)
          return {...base, kind, protocol: 'udp', host: hp.host, port: hp.port!, ...(community !== undefined ? {community} : {})}
        }
        o.finish([], positional)
        return {...base, kind, protocol: 'udp', host: hp.host, port: hp.port!}
      }
      case 'esl': {
        const at = info.lastIndexOf('@')
        const password = at < 0 ? 'ClueCon' : info.slice(0, at)
        const hp = parseHostPort(at < 0 ? info : info.slice(at + 1), 8021)
        if (hp === undefined) {
          o.err(specField, `invalid esl source ${JSON.stringify(spec)}: expected esl:[PASSWORD@]HOST[:PORT]`)
          o.finish(['level', 'reconnect'], positional)
          return undefined
        }
        let level: EslLevel = 'WARNING'
        const lv = o.get('level')
        if (lv !== undefined) {
          const t = typeof lv === 'number' ? String(lv) : typeof lv === 'string' ? lv.toUpperCase() : undefined
          const byNum = t !== undefined && /^[0-7]$/.test(t) ? ESL_LEVELS[Number(t)] : undefined
          const found = byNum ?? (ESL_LEVELS as readonly string[]).find((x) => x === t)
          if (found === undefined) o.err('level', `expected a FreeSWITCH log level (${ESL_LEVELS.join(', ')} or 0-7), got ${describe(lv)}`)
          else level = found as EslLevel
        }
        const reconnect = o.duration('reconnect', {min: 0}) ?? 30
        o.finish(['level', 'reconnect'], positional)
        return {...base, kind: 'esl', password, host: hp.host, port: hp.port!, level, reconnect}
      }
      case 'process': {
        const av = o.get('args')
        let args: string | string[] | undefined
        if (typeof av === 'string') args = av
        else if (av !== undefined) args = o.strList('args', {})
        let env: {inherit: string[]; set: Record<string, string>} | undefined
        const ev = o.get('env')
        if (ev !== undefined) {
          if (!isTable(ev)) o.err('env', `expected a table of variable names and NAME = value pairs, got ${describe(ev)}`)
          else {
            env = {inherit: [], set: {}}
            for (const [i, x] of ev.array.entries()) {
              if (typeof x === 'string' && x !== '') env.inherit.push(x)
              else o.err(`env[${i + 1}]`, `expected a variable name, got ${describe(x)}`)
            }
            for (const [k, x] of ev.fields) {
              if (typeof x === 'string' || typeof x === 'number') env.set[k] = String(x)
              else o.err(`env.${k}`, `expected a string, got ${describe(x)}`)
            }
            for (const [k] of ev.other) o.err('env', `unexpected key ${keyText(k)}`)
          }
        }
        const eol = o.has('eol') ? o.eol('eol', {text: '\n', pattern: false}) : undefined
        const restart = o.duration('restart', {min: 1}) ?? 10
        const ml = Math.max(4096, maxLine())
        let monitor: ('stdout' | 'stderr')[] = ['stdout']
        const mv = o.get('monitor')
        if (mv !== undefined) {
          const list = o.strList('monitor', {}) ?? []
          const bad = list.filter((x) => x !== 'stdout' && x !== 'stderr')
          if (bad.length > 0) o.err('monitor', `expected 'stdout' and/or 'stderr', got ${bad.map((b) => JSON.stringify(b)).join(', ')}`)
          else if (list.length > 0) monitor = list as ('stdout' | 'stderr')[]
        }
        o.finish(['args', 'env', 'eol', 'restart', 'max_line', 'monitor'], positional)
        return {...base, kind: 'process', command: info, args, env, eol, restart, maxLine: ml, monitor}
      }
    }
    return undefined
  }

  // --- filters ---------------------------------------------------------------------------------

  private filter(o: Obj, sources: Map<string, SourceConfig>): FilterConfig | undefined {
    const name = o.name()
    const enabled = o.bool('enabled', false)!
    let engine: FilterEngine = 'lua'
    const ev = o.get('engine')
    if (ev !== undefined) {
      if (typeof ev === 'string' && (ev === 'lua' || ev === 'default' || ev === 'pcre' || ev === 'fail2ban')) engine = ev === 'default' ? 'lua' : ev
      else if (typeof ev === 'object' && ev.kind === 'function') o.err('engine', "custom engine functions are not supported: use 'lua' (the default), 'pcre' or 'fail2ban'")
      else {
        const s = typeof ev === 'string' ? closestName(ev, ['lua', 'pcre', 'fail2ban']) : undefined
        o.err('engine', `expected 'lua' (the default), 'pcre' or 'fail2ban', got ${describe(ev)}${s !== undefined ? `; did you mean '${s}'?` : ''}`)
      }
    }
    const failregex = o.strList('failregex', {required: true, nonEmpty: true}) ?? []
    const ignoreregex = o.strList('ignoreregex', {}) ?? []
    const compiled: (CompiledRegex | undefined)[] = []
    for (const [field, list] of [['failregex', failregex], ['ignoreregex', ignoreregex]] as const) {
      list.forEach((r, i) => {
        const c = compileFor(engine, r)
        if (typeof c === 'string') o.err(list.length > 1 || o.isList(field) ? `${field}[${i + 1}]` : field, `${c}: ${r}`, field)
        if (field === 'failregex') compiled.push(typeof c === 'string' ? undefined : c)
      })
    }
    // fail2ban's own filter options, for the fail2ban engine: such a filter runs on Fail2banFilter
    // with fail2ban's full semantics (prefregex/<F-CONTENT>, multi-line, <F-MLFID> sessions).
    const prefregex = o.str('prefregex')
    const maxlinesValue = o.get('maxlines')
    let maxlines: number | undefined
    if (maxlinesValue !== undefined) {
      if (typeof maxlinesValue === 'number' && Number.isInteger(maxlinesValue) && maxlinesValue >= 1 && maxlinesValue <= 1000) maxlines = maxlinesValue
      else o.err('maxlines', `expected a whole number of lines from 1 to 1000, got ${describe(maxlinesValue)}`)
    }
    const usedns = o.str('usedns')
    if (usedns !== undefined && !['yes', 'warn', 'no', 'raw'].includes(usedns)) o.err('usedns', `expected 'yes', 'warn', 'no' or 'raw', got ${JSON.stringify(usedns)}`)
    if (engine !== 'fail2ban') {
      for (const f of ['prefregex', 'maxlines', 'usedns']) if (o.has(f)) o.err(f, `only filters with engine = 'fail2ban' take ${f}`)
    } else if (compiled.every((c) => c !== undefined)) {
      try {
        new Fail2banFilter({name: 'check', prefregex, failregex, ignoreregex, maxlines, usedns, datepattern: o.str('datepattern')})
      } catch (e) {
        const msg = e instanceof ConfigError ? e.reason : (e as Error).message
        o.err(prefregex !== undefined && /prefregex/.test(msg) ? 'prefregex' : 'failregex', msg)
      }
    }
    const hint = o.str('hint')
    let capture: string[][] | undefined
    const cv = o.get('capture')
    if (cv !== undefined) {
      if (engine === 'fail2ban') o.err('capture', 'the fail2ban engine names its captures with tags (<HOST>, <F-USER>…): `capture` cannot be used with it')
      else if (!isTable(cv) || cv.array.length === 0) o.err('capture', `expected a list of capture names ({'date', 'host'}) or one such list per failregex, got ${describe(cv)}`)
      else {
        const lists = isTable(cv.array[0]) ? cv.array : [cv]
        capture = []
        lists.forEach((l, i) => {
          const f = lists === cv.array ? `capture[${i + 1}]` : 'capture'
          if (!isTable(l)) {
            o.err(f, `expected a list of capture names, got ${describe(l)}`, 'capture')
            return
          }
          const names: string[] = []
          l.array.forEach((n, k) => {
            if (typeof n !== 'string' || n === '') o.err(`${f}[${k + 1}]`, `expected a capture name, got ${describe(n)}`, 'capture')
            else if (n === 'filter') o.err(`${f}[${k + 1}]`, "'filter' cannot be captured: it is the filter's name in every message", 'capture')
            else names.push(n)
          })
          capture!.push(names)
        })
        if (capture.length !== failregex.length && failregex.length > 0) {
          o.err('capture', `${capture.length} capture list(s) for ${failregex.length} failregex(es): give one list per failregex, in the same order`)
        }
      }
    }
    const exclude = this.networks(o, 'exclude')
    const dateFormat = o.str('date_format')
    if (dateFormat !== undefined) {
      try {
        parseDate('', dateFormat)
      } catch (e) {
        o.err('date_format', (e as Error).message)
      }
    }
    const datepattern = o.str('datepattern')
    if (datepattern !== undefined) {
      try {
        new DateDetector(datepattern)
      } catch (e) {
        o.err('datepattern', `bad datepattern: ${(e as Error).message}`)
      }
    }
    const stop = o.bool('stop', false)!
    const trap = this.trap(o)
    const events = this.events(o)
    const cfilter = this.cfilters(o, 'cfilter')

    // The source: a SOURCE{} name, a source string, or {source string, options…}.
    let sourceName: string | undefined
    const sv = o.get('source')
    if (sv === undefined) o.err('source', 'missing: the source this filter reads (a SOURCE{} name or a source string such as "file:/var/log/x.log")')
    else if (typeof sv === 'string') {
      if (sources.has(sv)) sourceName = sv
      else if (sv.includes(':')) {
        const s = this.sourceFromSpec(o.sub('source', {kind: 'table', array: [sv], fields: new Map(), other: [], whiteIp: false}), sv, sv, true, '')
        if (s !== undefined) {
          const key = s.kind === 'file' ? `file:${s.path}` : sv
          if (!sources.has(key)) sources.set(key, {...s, name: key})
          sourceName = key
        }
      } else {
        const s = closestName(sv, sources.keys())
        o.err('source', `unknown source ${JSON.stringify(sv)}: no SOURCE{} has that name${s !== undefined ? `; did you mean ${JSON.stringify(s)}?` : ''} (or write a source string such as "file:/var/log/x.log")`)
      }
    } else if (isTable(sv)) {
      const spec = sv.array[0]
      if (typeof spec === 'string') {
        const s = this.source(o.sub('source', sv), true, spec)
        if (s !== undefined) {
          const key = s.kind === 'file' ? `file:${s.path}` : spec
          if (!sources.has(key)) sources.set(key, {...s, name: key})
          sourceName = key
        }
      } else o.err('source[1]', `expected the source string, got ${describe(spec)}`, 'source')
    } else o.err('source', `expected a SOURCE{} name, a source string or {source string, options…}, got ${describe(sv)}`)

    const src = sourceName !== undefined ? sources.get(sourceName) : undefined
    if (src?.kind === 'trap' && trap === undefined) o.err('trap', 'missing: filters of a trap source select traps with trap = id, OID or a list of them')
    if (src?.kind === 'eventlog' && events === undefined) o.err('events', "missing: filters of an eventlog source select records with events = {'Source', id} (or a list of them)")

    o.finish(['name', 'enabled', 'source', 'failregex', 'ignoreregex', 'capture', 'exclude', 'hint', 'engine', 'events', 'trap', 'stop', 'cfilter', 'date_format', 'datepattern', 'prefregex', 'maxlines', 'usedns'], 1)
    if (name === undefined || sourceName === undefined || failregex.length === 0) return undefined
    const fieldOrigins: Record<string, Origin> = {}
    for (const f of ['failregex', 'ignoreregex', 'capture', 'date_format', 'datepattern', 'exclude', 'source', 'prefregex']) if (o.has(f)) fieldOrigins[f] = o.at(f)
    return {
      name, origin: o.origin, enabled, sources: [sourceName], engine, failregex, ignoreregex, hint, capture, exclude,
      dateFormat, datepattern, stop, trap, events, cfilter, fieldOrigins,
      ...(engine === 'fail2ban' ? {fail2ban: {prefregex, maxlines: maxlines ?? 1, datepattern, usedns: usedns ?? 'warn'}} : {}),
    }
  }

  /** `eventlog:` / `eventlog:local`: the native event-log reader and its options. */
  private localEventLog(o: Obj, base: {name: string; origin: Origin; spec: string; implicit: boolean}, positional: number): EventLogLocalSource {
    const known = ['mode', 'poll', 'max_age', 'render', 'powershell', 'worker']
    let mode: EventLogLocalSource['mode'] = 'auto'
    const mv = o.get('mode')
    if (mv !== undefined) {
      if (mv === 'auto' || mv === 'powershell' || mv === 'wevtutil') mode = mv
      else o.err('mode', `expected 'auto', 'powershell' or 'wevtutil', got ${describe(mv)}`)
    }
    const poll = o.duration('poll', {min: 1}) ?? 2
    const maxAge = o.duration('max_age', {min: 0}) ?? 86400
    const render = o.bool('render', true)!
    const powershell = o.str('powershell')
    const wv = o.str('worker')
    const worker = wv === undefined ? undefined : path.isAbsolute(wv) || path.win32.isAbsolute(wv) ? wv : path.resolve(this.configDir, wv)
    o.finish(known, positional)
    return {...base, kind: 'eventlog', protocol: 'local', host: '', port: 0, mode, poll, maxAge, render, powershell, worker}
  }

  private trap(o: Obj): FilterConfig['trap'] {
    const v = o.get('trap')
    if (v === undefined) return undefined
    const items = isTable(v) ? v.array : [v]
    const specific: number[] = []
    const enterprise: string[] = []
    items.forEach((x, i) => {
      if (typeof x === 'number' && Number.isInteger(x)) specific.push(x)
      else if (typeof x === 'string' && /^\d+$/.test(x)) specific.push(Number(x))
      else if (typeof x === 'string' && /^\d+(?:\.\d+)+$/.test(x)) enterprise.push(x)
      else o.err(isTable(v) ? `trap[${i + 1}]` : 'trap', `expected a trap id (number) or an enterprise OID (1.3.6.1…), got ${describe(x)}`, 'trap')
    })
    if (isTable(v)) o.noExtraKeys('trap', v)
    return {specific, enterprise}
  }

  private events(o: Obj): EventSelector[] | undefined {
    const v = o.get('events')
    if (v === undefined) return undefined
    if (!isTable(v)) {
      o.err('events', `expected {'Source', id} or a list of them, got ${describe(v)}`)
      return undefined
    }
    const list = typeof v.array[0] === 'string' ? [v] : v.array
    const out: EventSelector[] = []
    list.forEach((e, i) => {
      const f = list === v.array ? `events[${i + 1}]` : 'events'
      if (!isTable(e) || typeof e.array[0] !== 'string' || e.array[0] === '') {
        o.err(f, `expected {'Source name' (a trailing * matches a prefix), id or {ids…}}, got ${describe(e)}`, 'events')
        return
      }
      const src = e.array[0]
      const prefix = src.endsWith('*')
      let ids: number[] | undefined
      const idv = e.array[1]
      if (idv !== undefined) {
        const raw = isTable(idv) ? idv.array : [idv]
        ids = []
        for (const x of raw) {
          if (typeof x === 'number' && Number.isInteger(x) && x >= 0) ids.push(x)
          else o.err(`${f}[2]`, `expected an event id (a number) or a list of them, got ${describe(x)}`, 'events')
        }
      }
      let channel: string | undefined
      for (const [k, cv] of e.fields) {
        if (k === 'channel' && typeof cv === 'string' && cv !== '') channel = cv
        else o.err(`${f}.${k}`, k === 'channel' ? `expected the channel name (a string), got ${describe(cv)}` : "unknown key (a selector is {'Source', ids, channel = 'Channel'})", 'events')
      }
      out.push({source: prefix ? src.slice(0, -1) : src, prefix, ids, ...(channel !== undefined ? {channel} : {})})
    })
    return out
  }

  /** A list of addresses/networks (exclude, acl…); the WHITE_IP table is accepted as is. */
  private networks(o: Obj, field: string, value?: LuaValue): string[] {
    const v = value ?? o.get(field)
    if (v === undefined) return []
    const items = isTable(v) ? v.array : [v]
    const out: string[] = []
    items.forEach((x, i) => {
      const c = typeof x === 'string' ? canonicalNetwork(x) : undefined
      if (c === undefined) {
        if (isTable(v) && v.whiteIp) return // reported once, as WHITE_IP[i]
        o.err(isTable(v) ? `${field}[${i + 1}]` : field, `expected an IP address or network (192.0.2.1, 198.51.100.0/24, 2001:db8::/32), got ${describe(x)}`, field)
      } else out.push(c)
    })
    if (isTable(v) && !v.whiteIp) o.noExtraKeys(field, v)
    return out
  }

  // --- capture filters -------------------------------------------------------------------------

  private cfilters(o: Obj, field: string, value?: LuaValue): CaptureFilterConfig[] {
    const v = value ?? o.get(field)
    if (v === undefined) return []
    if (!isTable(v)) {
      o.err(field, `expected a capture filter {'acl'|'list'|'regex'|'prefix'|'geoip', …} or a list of them, got ${describe(v)}`)
      return []
    }
    const list = isTable(v.array[0]) ? v.array : [v]
    const out: CaptureFilterConfig[] = []
    list.forEach((x, i) => {
      const f = list === v.array ? `${field}[${i + 1}]` : field
      if (!isTable(x)) {
        o.err(f, `expected a capture filter table, got ${describe(x)}`, field)
        return
      }
      const c = this.cfilter(o.sub(field, x, f), f)
      if (c !== undefined) out.push(c)
    })
    return out
  }

  private cfilter(o: Obj, f: string): CaptureFilterConfig | undefined {
    const kinds = ['acl', 'list', 'regex', 'prefix', 'geoip']
    const kind = o.pos(0)
    if (typeof kind !== 'string' || !kinds.includes(kind)) {
      if (typeof kind === 'string' && kind.startsWith('@')) o.err('[1]', `custom capture filter modules (${kind}) are not supported; use ${kinds.join(', ')}`)
      else {
        const s = typeof kind === 'string' ? closestName(kind, kinds) : undefined
        o.err('[1]', `expected the capture filter type (${kinds.join(', ')}) as first value, got ${describe(kind)}${s !== undefined ? `; did you mean '${s}'?` : ''}`)
      }
      o.finish([], 1)
      return undefined
    }
    let mode: 'allow' | 'deny' = 'deny'
    const tv = o.get('type')
    if (tv !== undefined) {
      if (tv === 'allow' || tv === 'deny') mode = tv
      else o.err('type', `expected 'allow' or 'deny' (the default), got ${describe(tv)}`)
    }
    const base = {origin: o.origin, mode}
    switch (kind) {
      case 'acl': {
        const capture = o.str('capture') ?? 'host'
        const networks = this.networks(o, 'filter')
        if (!o.has('filter')) o.err('filter', 'missing: the list of addresses/networks')
        o.finish(['type', 'capture', 'filter'], 1)
        return {...base, kind, capture, networks}
      }
      case 'list': {
        const values = o.strList(o.has('filter') || !o.has('list') ? 'filter' : 'list', {required: true}) ?? []
        const capture = o.str('capture', {required: true}) ?? ''
        const nocase = o.bool('nocase', false)!
        o.finish(['type', 'capture', 'filter', 'list', 'nocase'], 1)
        return {...base, kind, capture, values: nocase ? values.map((x) => x.toUpperCase()) : values, nocase}
      }
      case 'regex': {
        const patterns = o.strList('filter', {required: true}) ?? []
        const capture = o.str('capture', {required: true}) ?? ''
        let engine: 'lua' | 'pcre' = 'lua'
        const e = o.get('engine')
        if (e === 'pcre') engine = 'pcre'
        else if (e !== undefined && e !== 'default' && e !== 'lua') o.err('engine', `expected 'lua' (the default) or 'pcre', got ${describe(e)}`)
        patterns.forEach((p, i) => {
          const c = compileFor(engine, p)
          if (typeof c === 'string') o.err(`filter[${i + 1}]`, `${c}: ${p}`, 'filter')
        })
        o.finish(['type', 'capture', 'filter', 'engine'], 1)
        return {...base, kind, capture, patterns, engine}
      }
      case 'prefix': {
        const capture = o.str('capture') ?? o.str('value') ?? 'number'
        const pv = o.get('prefix')
        let prefixes: Record<string, string> | undefined
        let file: string | undefined
        if (typeof pv === 'string' && pv !== '') file = path.isAbsolute(pv) || path.win32.isAbsolute(pv) ? pv : path.resolve(this.configDir, 'jails', pv)
        else if (isTable(pv)) {
          prefixes = {}
          if (pv.array.length > 0) {
            pv.array.forEach((x, i) => {
              if (typeof x === 'string' || typeof x === 'number') prefixes![String(x)] = ''
              else o.err(`prefix[${i + 1}]`, `expected a prefix, got ${describe(x)}`, 'prefix')
            })
          }
          for (const [k, x] of pv.fields) {
            if (typeof x === 'string' || typeof x === 'number') prefixes[k] = String(x)
            else o.err(`prefix.${k}`, `expected a label (string), got ${describe(x)}`, 'prefix')
          }
          for (const [k, x] of pv.other) {
            if (typeof k === 'number' && (typeof x === 'string' || typeof x === 'number')) prefixes[String(k)] = String(x)
            else o.err('prefix', `unexpected key ${keyText(k)}`)
          }
        } else o.err('prefix', `expected a list of prefixes, a prefix → label map, or a prefix file name, got ${describe(pv)}`)
        o.finish(['type', 'capture', 'value', 'prefix'], 1)
        return {...base, kind, capture, prefixes, file}
      }
      case 'geoip': {
        const capture = o.str('capture') ?? 'host'
        const fv = o.get('filter')
        const countries: string[] = []
        const continents: string[] = []
        if (fv === undefined) o.err('filter', 'missing: the list of country codes')
        else if (typeof fv === 'string') countries.push(fv.toUpperCase())
        else if (isTable(fv)) {
          fv.array.forEach((x, i) => {
            if (typeof x === 'string' && x !== '') countries.push(x.toUpperCase())
            else o.err(`filter[${i + 1}]`, `expected a country code, got ${describe(x)}`, 'filter')
          })
          const cont = fv.fields.get('continent')
          if (cont !== undefined) {
            const l = isTable(cont) ? cont.array : [cont]
            for (const x of l) {
              if (typeof x === 'string' && x !== '') continents.push(x.toUpperCase())
              else o.err('filter.continent', `expected a continent code, got ${describe(x)}`, 'filter')
            }
          }
          for (const k of fv.fields.keys()) if (k !== 'continent') o.err(`filter.${k}`, `unknown key${closestName(k, ['continent']) ? "; did you mean 'continent'?" : ''}`, 'filter')
        } else o.err('filter', `expected a list of country codes, got ${describe(fv)}`)
        const db = o.str('mmdb') ?? 'GeoLite2-Country.mmdb'
        const mmdb = path.isAbsolute(db) || path.win32.isAbsolute(db) ? db : path.resolve(this.dataDir, db)
        const cache = o.int('cache', {min: 1})
        o.finish(['type', 'capture', 'filter', 'mmdb', 'cache'], 1)
        return {...base, kind, capture, countries, continents, mmdb, cache}
      }
    }
    return undefined
  }

  // --- jails -----------------------------------------------------------------------------------

  private jailGlobals(o: Obj): {globals: JailGlobals; defaults: Obj | undefined} {
    const pi = o.num('purge_interval', {min: 0})
    let parameters: Record<string, ParamValue> = {}
    let defaults: Obj | undefined
    const dv = o.get('default')
    if (dv !== undefined) {
      if (!isTable(dv)) o.err('default', `expected a table of jail defaults, got ${describe(dv)}`)
      else {
        defaults = o.sub('default', dv)
        parameters = defaults.params('parameters') ?? {}
      }
    }
    o.finish(['purge_interval', 'default'], 0)
    return {globals: {origin: o.origin, purgeInterval: pi === undefined ? undefined : pi * 60, parameters}, defaults}
  }

  /** The jail fields `o` sets (each validated where it is written). */
  private jailFields(o: Obj, ctx: JailContext): JailFields {
    const f: JailFields = {}
    if (o.has('enabled')) f.enabled = o.bool('enabled')
    if (o.has('filter')) {
      const filters = o.strList('filter', {nonEmpty: true}) ?? []
      f.filters = filters
      if (ctx.check) {
        filters.forEach((name, i) => {
          if (ctx.filterNames.has(name)) return
          const s = closestName(name, ctx.filterNames)
          o.err(o.isList('filter') ? `filter[${i + 1}]` : 'filter', `unknown filter ${JSON.stringify(name)}: no FILTER{} has that name${s !== undefined ? `; did you mean ${JSON.stringify(s)}?` : ''}`, 'filter')
        })
      }
    }
    if (o.has('counter')) f.counter = this.counter(o)
    if (o.has('maxretry')) f.maxretry = o.int('maxretry', {min: 1})
    if (o.has('findtime')) f.findtime = o.duration('findtime', {min: 1})
    if (o.has('bantime')) {
      const bt = o.duration('bantime', {})
      if (bt !== undefined) f.bantime = bt < 0 ? -1 : bt
    }
    if (o.has('rndtime')) f.rndtime = o.duration('rndtime', {min: 0})
    if (o.has('action')) f.actions = this.jailActions(o, ctx)
    if (o.has('cfilter')) f.cfilter = this.cfilters(o, 'cfilter')
    if (o.has('noreset')) f.noreset = o.bool('noreset')
    // spylog extension: IPv6 offenders are counted and banned by network (e.g. 64: the /64).
    if (o.has('ipv6_prefix')) f.ipv6Prefix = o.int('ipv6_prefix', {min: 1, max: 127})
    return f
  }

  private jail(o: Obj, defaults: JailFields, ctx: JailContext): JailConfig | undefined {
    const name = o.name()
    // The global defaults fill the fields the jail does not set (`parameters` excepted).
    const own = this.jailFields(o, ctx)
    const given = (k: keyof JailFields): boolean => own[k] !== undefined || defaults[k] !== undefined || o.has(k === 'filters' ? 'filter' : k === 'actions' ? 'action' : k)
    const counter = own.counter ?? defaults.counter ?? {config: DEFAULT_COUNTER, cfilter: []}
    if (!given('filters')) o.err('filter', 'missing: the filter name(s) feeding this jail')
    if (!given('maxretry')) o.err('maxretry', 'missing: expected a whole number ≥ 1')
    if (!given('findtime') && counter.config.type !== 'fixed') o.err('findtime', 'missing: expected a duration in seconds (a number, or a text such as "10m", "1h", "2d")')
    const parameters = o.params('parameters') ?? {}
    o.finish(JAIL_FIELDS, 1)
    const filters = own.filters ?? defaults.filters ?? []
    if (name === undefined || filters.length === 0) return undefined
    return {
      name,
      origin: o.origin,
      enabled: own.enabled ?? defaults.enabled ?? true,
      filters,
      findtime: own.findtime ?? defaults.findtime ?? 0,
      maxretry: own.maxretry ?? defaults.maxretry ?? 1,
      bantime: own.bantime ?? defaults.bantime ?? -1,
      rndtime: own.rndtime ?? defaults.rndtime,
      actions: own.actions ?? defaults.actions ?? [],
      parameters,
      counter: counter.config,
      cfilter: [...(own.cfilter ?? defaults.cfilter ?? []), ...counter.cfilter],
      noreset: own.noreset ?? defaults.noreset ?? false,
      ignoreIp: [],
      ...((own.ipv6Prefix ?? defaults.ipv6Prefix) !== undefined ? {ipv6Prefix: own.ipv6Prefix ?? defaults.ipv6Prefix} : {}),
    }
  }

  private counter(o: Obj): {config: CounterConfig; cfilter: CaptureFilterConfig[]} {
    const v = o.get('counter')
    if (v === undefined) return {config: DEFAULT_COUNTER, cfilter: []}
    if (!isTable(v)) {
      o.err('counter', `expected a table ({type = 'increment'|'accumulate'|'fixed', capture = …, value = …, time = 'filter', resolution = …}), got ${describe(v)}`)
      return {config: DEFAULT_COUNTER, cfilter: []}
    }
    const c = o.sub('counter', v)
    let type: CounterConfig['type'] = 'increment'
    const tv = c.get('type')
    if (tv !== undefined) {
      if (tv === 'increment' || tv === 'accumulate' || tv === 'fixed') type = tv
      else {
        const s = typeof tv === 'string' ? closestName(tv, ['increment', 'accumulate', 'fixed']) : undefined
        c.err('type', `expected 'increment' (the default), 'accumulate' or 'fixed', got ${describe(tv)}${s !== undefined ? `; did you mean '${s}'?` : ''}`)
      }
    }
    const capture = c.str('capture') ?? c.str('banwhat') ?? 'host'
    const value = c.str('value') ?? 'value'
    let time: CounterConfig['time'] = 'internal'
    const timev = c.get('time')
    if (timev !== undefined) {
      if (timev === 'filter' || timev === 'internal') time = timev
      else c.err('time', `expected 'filter' (count in the captured dates' time) or 'internal' (the default), got ${describe(timev)}`)
    }
    const resolution = c.duration('resolution', {min: 1})
    const cfilter: CaptureFilterConfig[] = []
    const pv = c.get('prefix')
    if (pv !== undefined) {
      const pf = this.cfilter(c.sub('prefix', {kind: 'table', array: ['prefix'], fields: new Map<string, LuaValue>([['prefix', pv], ['type', 'allow']]), other: [], whiteIp: false}), 'prefix')
      if (pf !== undefined) cfilter.push(pf)
    }
    c.finish(['type', 'capture', 'banwhat', 'value', 'time', 'resolution', 'prefix'], 0)
    return {config: {type, capture, value, time, resolution}, cfilter}
  }

  private jailActions(o: Obj, ctx: JailContext): JailActionRef[] {
    const v = o.get('action')
    if (v === undefined) return []
    const items = isTable(v) ? v.array : [v]
    const out: JailActionRef[] = []
    const known = (name: string, field: string): void => {
      if (!ctx.check || name.includes('%{') || ctx.actions.has(name)) return
      const s = closestName(name, ctx.actions.keys())
      o.err(field, `unknown action ${JSON.stringify(name)}: no ACTION{} has that name${s !== undefined ? `; did you mean ${JSON.stringify(s)}?` : ''}`, 'action')
    }
    items.forEach((x, i) => {
      const f = isTable(v) ? `action[${i + 1}]` : 'action'
      if (typeof x === 'string' && x !== '') {
        known(x, f)
        out.push({name: x, origin: o.at('action')})
      } else if (isTable(x) && typeof x.array[0] === 'string') {
        const name = x.array[0]
        known(name, `${f}[1]`)
        let parameters: Record<string, ParamValue> | undefined
        const pv = x.array[1]
        if (pv !== undefined) {
          if (!isTable(pv)) o.err(`${f}[2]`, `expected a table of action parameters, got ${describe(pv)}`, 'action')
          else parameters = this.paramTable(o, `${f}[2]`, pv, 'action')
        }
        if (x.array.length > 2 || x.fields.size > 0 || x.other.length > 0) o.err(f, "expected {'action name', {parameters}}: unexpected extra values", 'action')
        out.push({name, parameters, origin: o.at('action')})
      } else o.err(f, `expected an action name or {'action name', {parameters}}, got ${describe(x)}`, 'action')
    })
    if (isTable(v)) o.noExtraKeys('action', v)
    return out
  }

  // --- actions ---------------------------------------------------------------------------------

  private action(o: Obj): ActionConfig | undefined {
    const name = o.name(false)
    const ban = this.command(o, 'ban')
    const unban = this.command(o, 'unban')
    const unique = o.str('unique')
    const parameters = o.params('parameters') ?? {}
    const options = o.params('options') ?? {}
    if (!o.has('ban') && !o.has('unban')) o.err(undefined, 'an action needs a ban and/or an unban command')
    const builtin = this.builtinModule(o, ban, unban)
    o.finish(['ban', 'unban', 'unique', 'parameters', 'options'], 1)
    if (name === undefined) return undefined
    return {name, origin: o.origin, ban, unban, unique, parameters, options, ...(builtin !== undefined ? {builtin} : {})}
  }

  /** The built-in kind a `'@spylog.actions.<kind>'` module names (checked: a known kind, the same for ban and unban). */
  private builtinModule(o: Obj, ban: ActionCommand | undefined, unban: ActionCommand | undefined): BuiltinAction | undefined {
    const known = Object.values(BUILTIN_ACTION_MODULES)
    let kind: BuiltinActionKind | undefined
    for (const [field, cmd] of [['ban', ban], ['unban', unban]] as const) {
      if (cmd?.kind !== 'module') continue
      const k = (Object.keys(BUILTIN_ACTION_MODULES) as BuiltinActionKind[]).find((x) => BUILTIN_ACTION_MODULES[x] === cmd.module)
      if (k === undefined) {
        const s = closestName(cmd.module, known)
        o.err(field, `unknown action module '@${cmd.module}': spylog's built-in actions are ${known.map((m) => `'@${m}'`).join(', ')}${s !== undefined ? `; did you mean '@${s}'?` : ''}`)
        continue
      }
      if (kind !== undefined && kind !== k) o.err(field, `ban and unban call different built-in actions ('@${BUILTIN_ACTION_MODULES[kind]}', '@${cmd.module}'); use one per ACTION{}`)
      kind ??= k
    }
    if (kind !== undefined && ban !== undefined && unban !== undefined && ban.kind !== unban.kind) {
      o.err(ban.kind === 'command' ? 'ban' : 'unban', `one of ban and unban calls '@${BUILTIN_ACTION_MODULES[kind]}' and the other runs a command; an ACTION{} does one or the other (make two actions)`)
    }
    return kind === undefined ? undefined : {kind, variant: 'spylog', features: []}
  }

  private command(o: Obj, field: string): ActionCommand | undefined {
    const v = o.get(field)
    if (v === undefined) return undefined
    if (typeof v === 'string') {
      if (v.trim() === '') o.err(field, 'empty command')
      return v.startsWith('@') ? {kind: 'module', module: v.slice(1)} : {kind: 'command', command: v}
    }
    if (!isTable(v) || typeof v.array[0] !== 'string' || v.array[0] === '') {
      o.err(field, `expected a command line, or {program or '@module', 'arguments'}, got ${describe(v)}`)
      return undefined
    }
    const c = o.sub(field, v)
    const cmd = v.array[0]
    const av = v.array[1]
    let args: string | undefined
    if (av !== undefined) {
      if (typeof av === 'string') args = av
      else if (isTable(av) && av.array.every((x) => typeof x === 'string')) args = (av.array as string[]).map(quoteArg).join(' ')
      else c.err('[2]', `expected the argument string, got ${describe(av)}`)
    }
    const unique = c.str('unique')
    const options = c.params('options')
    c.finish(['unique', 'options'], 2)
    const extra = {unique, options}
    return cmd.startsWith('@') ? {kind: 'module', module: cmd.slice(1), args, ...extra} : {kind: 'command', command: cmd, args, ...extra}
  }

  // --- LOG, CONNECT, globals ------------------------------------------------------------------

  private log(o: Obj): LogConfig {
    let level: LogLevel = 'info'
    const lv = o.get('level')
    if (lv !== undefined) {
      const t = typeof lv === 'string' ? lv.toLowerCase() : undefined
      const alias: Record<string, LogLevel> = {warn: 'warning', err: 'error', crit: 'fatal', critical: 'fatal', emergency: 'emerg'}
      const found = t === undefined ? undefined : (LOG_LEVELS as readonly string[]).includes(t) ? (t as LogLevel) : alias[t]
      if (found === undefined) {
        const s = t !== undefined ? closestName(t, LOG_LEVELS) : undefined
        o.err('level', `expected a log level (${LOG_LEVELS.join(', ')}), got ${describe(lv)}${s !== undefined ? `; did you mean '${s}'?` : ''}`)
      } else level = found
    }
    let file: LogConfig['file']
    const fv = o.get('file')
    if (fv !== undefined) {
      if (!isTable(fv)) o.err('file', `expected a table of file writer options, got ${describe(fv)}`)
      else {
        const f = o.sub('file', fv)
        file = {
          logDir: f.str('log_dir') ?? './logs',
          logName: f.str('log_name') ?? 'spylog.log',
          maxSize: f.int('max_size', {min: 1}),
          maxRows: f.int('max_rows', {min: 1}),
          rollCount: f.int('roll_count', {min: 1}),
          closeFile: f.bool('close_file'),
          flushInterval: f.num('flush_interval', {min: 0}),
          reuse: f.bool('reuse'),
          byDay: f.bool('by_day'),
        }
        f.finish(['log_dir', 'log_name', 'max_size', 'max_rows', 'roll_count', 'close_file', 'flush_interval', 'reuse', 'by_day'], 0)
      }
    }
    const zmq = o.str('zmq')
    const multithread = o.bool('multithread')
    const prefix = o.str('prefix')
    o.finish(['level', 'file', 'zmq', 'multithread', 'prefix'], 0)
    return {origin: o.origin, level, file, zmq, multithread, prefix}
  }

  private connect(o: Obj, prev: ConnectConfig): ConnectConfig {
    const out: {filter?: {jail?: Endpoint}; jail?: {filter?: Endpoint; action?: Endpoint}; action?: {jail?: Endpoint}} = {...prev}
    const links: Record<string, readonly string[]> = {FILTER: ['JAIL'], JAIL: ['FILTER', 'ACTION'], ACTION: ['JAIL']}
    for (const service of Object.keys(links)) {
      const sv = o.get(service)
      if (sv === undefined) continue
      if (!isTable(sv)) {
        o.err(service, `expected a table of peers (${links[service]!.join(', ')}), got ${describe(sv)}`)
        continue
      }
      const so = o.sub(service, sv)
      const svc: Record<string, Endpoint> = {}
      for (const peer of links[service]!) {
        const pv = so.get(peer)
        if (pv === undefined) continue
        if (!isTable(pv)) {
          so.err(peer, `expected {type = 'bind'|'connect', address = '…'}, got ${describe(pv)}`)
          continue
        }
        const po = so.sub(peer, pv)
        const type = po.get('type')
        const address = po.str('address', {required: true})
        if (type !== 'bind' && type !== 'connect') po.err('type', `expected 'bind' or 'connect', got ${describe(type)}`)
        else if (address !== undefined) {
          if (!/^(?:tcp|ipc|inproc|udp|pgm|epgm|ws|wss):\/\/\S+$/.test(address)) po.err('address', `expected an endpoint such as tcp://127.0.0.1:5555, got ${JSON.stringify(address)}`)
          else svc[peer.toLowerCase()] = {type, address, origin: po.at('address')}
        }
        po.finish(['type', 'address'], 0)
      }
      so.finish(links[service]!, 0)
      const key = service.toLowerCase() as 'filter' | 'jail' | 'action'
      out[key] = svc
    }
    o.finish(Object.keys(links), 0)
    return out
  }

  /** spylog.lua's nameless FILTER{} / ACTION{} (global settings lua-spylog reserves but does not use). */
  private emptyGlobals(o: Obj, fn: string): void {
    for (const k of o.t.fields.keys()) {
      o.get(k)
      o.err(k, `a nameless ${fn}{} in ${MAIN_FILE} holds global ${fn.toLowerCase()} settings, and there are none; a ${fn.toLowerCase()} needs a name: ${fn}{"name", …}`)
    }
    o.finish([], 0)
  }

  paramTable(o: Obj, field: string, t: LuaTable, group: string): Record<string, ParamValue> {
    const out: Record<string, ParamValue> = {}
    const conv = (v: LuaValue, f: string): ParamValue | undefined => {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v
      if (isTable(v)) {
        if (v.fields.size === 0 && v.other.length === 0) return v.array.map((x, i) => conv(x, `${f}[${i + 1}]`)).filter((x): x is ParamValue => x !== undefined)
        const obj: {[k: string]: ParamValue} = {}
        v.array.forEach((x, i) => {
          const c = conv(x, `${f}[${i + 1}]`)
          if (c !== undefined) obj[String(i + 1)] = c
        })
        for (const [k, x] of v.fields) {
          const c = conv(x, `${f}.${k}`)
          if (c !== undefined) obj[k] = c
        }
        for (const [k] of v.other) o.err(f, `unexpected key ${keyText(k)}`, group)
        return obj
      }
      o.err(f, `expected a string, number, boolean or table, got ${describe(v)}`, group)
      return undefined
    }
    for (const [k, v] of t.fields) {
      const c = conv(v, `${field}.${k}`)
      if (c !== undefined) out[k] = c
    }
    t.array.forEach((v, i) => {
      const c = conv(v, `${field}[${i + 1}]`)
      if (c !== undefined) out[String(i + 1)] = c
    })
    for (const [k] of t.other) o.err(field, `unexpected key ${keyText(k)}`, group)
    return out
  }
}

// ---------------------------------------------------------------------------------------------
// Field access with error reporting

interface StrOpts {
  required?: boolean
}

/** The fields of one configuration table, read with type checks; unknown fields are reported by finish(). */
class Obj {
  private readonly used = new Set<string>()
  finished = false
  readonly origin: Origin
  /** "FILTER \"name\"" once the name is known. */
  private label: string

  constructor(
    private readonly v: Validator,
    readonly t: LuaTable,
    private readonly fn: string,
    readonly span: CallSpan,
    private readonly path: readonly string[],
    private readonly parent?: Obj,
    private readonly fieldPrefix = '',
  ) {
    this.origin = path.length === 0 ? span.origin : v.locate(span, path)
    this.label = parent?.label ?? fn
  }

  sub(field: string, t: LuaTable, prefix?: string): Obj {
    const keys = field.startsWith('[') ? this.path : [...this.path, field]
    return new Obj(this.v, t, this.fn, this.span, keys, this, this.fieldPrefix + (prefix ?? field))
  }

  has(k: string): boolean {
    return this.t.fields.has(k)
  }

  isList(k: string): boolean {
    return isTable(this.t.fields.get(k))
  }

  get(k: string): LuaValue {
    this.used.add(k)
    return this.t.fields.get(k)
  }

  pos(i: number): LuaValue {
    return this.t.array[i]
  }

  /** Origin of a field (its line when written literally in the call). */
  at(k: string): Origin {
    const key = k.replace(/\[.*$/, '').split('.')[0]!
    if (key === '' || !IDENT.test(key)) return this.origin
    return this.v.locate(this.span, [...this.path, key])
  }

  private fieldName(k: string | undefined): string {
    const p = this.fieldPrefix
    if (k === undefined || k === '') return p
    if (p === '') return k
    return k.startsWith('[') ? p + k : `${p}.${k}`
  }

  /** Report an error on field `k` (`lineKey`: the field whose line to use). */
  err(k: string | undefined, message: string, lineKey?: string): void {
    const at = lineKey !== undefined ? this.at(lineKey) : k !== undefined ? this.at(k) : this.origin
    const f = this.fieldName(k)
    this.v.error(at, f === '' ? this.label : `${this.label}.${f}`, message)
  }

  /** The object's name: [1] (or `name`); sets the label used in messages. */
  name(nameField = true): string | undefined {
    const p = this.t.array[0]
    const n = nameField ? this.get('name') : undefined
    const v = n !== undefined ? n : p
    if (typeof v === 'string' && v.trim() !== '') {
      if (n !== undefined && p !== undefined && p !== n) this.err('name', `two different names: ${JSON.stringify(p)} and ${JSON.stringify(n)}`)
      this.label = `${this.fn} ${JSON.stringify(v)}`
      return v
    }
    this.err(undefined, `missing name: the first value must be the name, as in ${this.fn}{"name", …}${v !== undefined ? ` (got ${describe(v)})` : ''}`)
    return undefined
  }

  str(k: string, opts: StrOpts = {}): string | undefined {
    const v = this.get(k)
    if (v === undefined) {
      if (opts.required) this.err(k, 'missing: expected a string')
      return undefined
    }
    if (typeof v === 'string') return v
    if (typeof v === 'number') return String(v)
    this.err(k, `expected a string, got ${describe(v)}`)
    return undefined
  }

  bool(k: string, def?: boolean): boolean | undefined {
    const v = this.get(k)
    if (v === undefined) return def
    if (typeof v === 'boolean') return v
    this.err(k, `expected true or false, got ${describe(v)}`)
    return def
  }

  num(k: string, opts: {min?: number; max?: number; required?: boolean} = {}): number | undefined {
    const v = this.get(k)
    if (v === undefined) {
      if (opts.required) this.err(k, 'missing: expected a number')
      return undefined
    }
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined
    if (n === undefined || !Number.isFinite(n)) {
      this.err(k, `expected a number, got ${describe(v)}`)
      return undefined
    }
    if (opts.min !== undefined && n < opts.min) {
      this.err(k, `expected a number ≥ ${opts.min}, got ${n}`)
      return undefined
    }
    if (opts.max !== undefined && n > opts.max) {
      this.err(k, `expected a number ≤ ${opts.max}, got ${n}`)
      return undefined
    }
    return n
  }

  int(k: string, opts: {min?: number; max?: number; required?: boolean; def?: number} = {}): number | undefined {
    const v = this.get(k)
    if (v === undefined && opts.def !== undefined) return opts.def
    const n = this.num(k, opts)
    if (n === undefined) return opts.def
    if (!Number.isInteger(n)) {
      this.err(k, `expected a whole number, got ${n}`)
      return opts.def
    }
    return n
  }

  duration(k: string, opts: {min?: number; required?: boolean}): number | undefined {
    const v = this.get(k)
    if (v === undefined) {
      if (opts.required) this.err(k, 'missing: expected a duration in seconds (a number, or a text such as "10m", "1h", "2d")')
      return undefined
    }
    const d = parseDuration(v)
    if (d === undefined) {
      this.err(k, `expected a duration in seconds (a number, or a text such as "10m", "1h", "2d"), got ${describe(v)}`)
      return undefined
    }
    if (opts.min !== undefined && d < opts.min) {
      this.err(k, `expected a duration ≥ ${opts.min} s, got ${d}`)
      return undefined
    }
    return d
  }

  /** A string or a list of strings. */
  strList(k: string, opts: {required?: boolean; nonEmpty?: boolean}): string[] | undefined {
    const v = this.get(k)
    if (v === undefined) {
      if (opts.required) this.err(k, 'missing: expected a string or a list of strings')
      return undefined
    }
    if (typeof v === 'string') {
      if (opts.nonEmpty && v === '') this.err(k, 'expected a non-empty string')
      return [v]
    }
    if (!isTable(v)) {
      this.err(k, `expected a string or a list of strings, got ${describe(v)}`)
      return undefined
    }
    const out: string[] = []
    v.array.forEach((x, i) => {
      if (typeof x === 'string' && !(opts.nonEmpty && x === '')) out.push(x)
      else this.err(`${k}[${i + 1}]`, `expected a${opts.nonEmpty ? ' non-empty' : ''} string, got ${describe(x)}`, k)
    })
    this.noExtraKeys(k, v)
    if (opts.nonEmpty && out.length === 0 && v.array.length === 0) this.err(k, 'expected at least one string, got an empty list')
    return out
  }

  /** A table of parameters (string keys → strings, numbers, booleans, tables). */
  params(k: string): Record<string, ParamValue> | undefined {
    const v = this.get(k)
    if (v === undefined) return undefined
    if (!isTable(v)) {
      this.err(k, `expected a table, got ${describe(v)}`)
      return undefined
    }
    return this.v.paramTable(this, k, v, k)
  }

  eol(k: string, def: LineEnding): LineEnding {
    const v = this.get(k)
    if (v === undefined) return def
    if (typeof v === 'string' && v !== '') return {text: v, pattern: false}
    if (isTable(v) && typeof v.array[0] === 'string' && v.array[0] !== '' && (v.array[1] === undefined || typeof v.array[1] === 'boolean')) {
      const pattern = v.array[1] === true
      if (pattern) {
        const c = compileFor('lua', v.array[0])
        if (typeof c === 'string') this.err(k, `${c}: ${v.array[0]}`)
      }
      return {text: v.array[0], pattern}
    }
    this.err(k, `expected a line separator string, or {separator, is_pattern}, got ${describe(v)}`)
    return def
  }

  /** A list table must have only its sequence. */
  noExtraKeys(k: string, t: LuaTable): void {
    for (const key of t.fields.keys()) this.err(`${k}.${key}`, 'unexpected key in a list', k)
    for (const [key] of t.other) this.err(k, `unexpected key ${keyText(key)} in a list (a list with holes?)`)
  }

  /** Report fields nobody read (with the closest known name) and extra positional values. */
  finish(known: readonly string[], positional: number): void {
    this.finished = true
    for (const k of this.t.fields.keys()) {
      if (this.used.has(k) || known.includes(k)) continue
      const s = closestName(k, known)
      this.err(k, `unknown field${s !== undefined ? `; did you mean '${s}'?` : known.length > 0 ? ` (known fields: ${known.join(', ')})` : ''}`)
    }
    for (let i = positional; i < this.t.array.length; i++) {
      this.err(`[${i + 1}]`, `unexpected value ${describe(this.t.array[i])}${positional === 0 ? ' (this table takes named fields only)' : ''}`)
    }
    for (const [k] of this.t.other) this.err(undefined, `unexpected key ${keyText(k)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Compile a pattern of a filter engine; the error text on failure. */
function compileFor(engine: FilterEngine | 'lua' | 'pcre', source: string): CompiledRegex | undefined | string {
  try {
    switch (engine) {
      case 'lua':
        compileLua(source)
        return undefined
      case 'pcre':
        return compilePython(source, {flavor: 'pcre', singleLine: true})
      case 'fail2ban':
        return compilePython(rewriteInlineFlags(expandTags(source)), {singleLine: true})
    }
  } catch (e) {
    if (e instanceof PatternError) return `invalid ${engine === 'lua' ? 'Lua pattern' : engine === 'pcre' ? 'PCRE regex' : 'fail2ban regex'} (${e.message})`
    throw e
  }
}

/** HOST[:PORT] or [IPv6][:PORT]. */
function parseHostPort(s: string, defPort: number | undefined): {host: string; port: number | undefined} | undefined {
  let host: string
  let portText: string | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  if (v6) {
    host = v6[1]!
    portText = v6[2]
  } else {
    const colon = s.lastIndexOf(':')
    if (colon >= 0 && s.indexOf(':') === colon) {
      host = s.slice(0, colon)
      portText = s.slice(colon + 1)
    } else host = s
  }
  if (host === '' || /\s|\//.test(host)) return undefined
  if (portText === undefined) return {host, port: defPort}
  if (!/^\d{1,5}$/.test(portText)) return undefined
  const port = Number(portText)
  if (port < 1 || port > 65535) return undefined
  return {host, port}
}

function quoteArg(a: string): string {
  return /[\s"]/.test(a) ? `"${a.replaceAll('"', '""')}"` : a
}
