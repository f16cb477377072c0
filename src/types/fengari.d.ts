/**
 * Minimal typings for the parts of fengari (a Lua 5.3 VM in JavaScript, CommonJS, no bundled
 * types) that spylog uses: a Lua state with the string library, to run `string.find` for the few
 * Lua patterns (those with `%b`) that cannot be translated to a native RegExp.
 *
 * Lua strings are byte arrays (`Uint8Array`); `to_luastring` encodes a JS string as UTF-8.
 */
declare module 'fengari' {
  /** An opaque Lua state (`lua_State *`). */
  export interface LuaState {
    readonly __fengariLuaState: unique symbol
  }
  /** A Lua string: raw bytes. */
  export type LuaString = Uint8Array
  /** A function callable from Lua: reads its arguments from the stack, returns how many results it pushed. */
  export type LuaCFunction = (L: LuaState) => number

  export interface LuaApi {
    readonly LUA_OK: number
    readonly LUA_MULTRET: number
    readonly LUA_TNIL: number
    readonly LUA_TNUMBER: number
    readonly LUA_TSTRING: number
    readonly LUA_REGISTRYINDEX: number
    lua_gettop(L: LuaState): number
    lua_settop(L: LuaState, idx: number): void
    lua_pushvalue(L: LuaState, idx: number): void
    lua_pushnil(L: LuaState): void
    lua_pushinteger(L: LuaState, n: number): void
    lua_pushboolean(L: LuaState, b: boolean): void
    lua_pushlstring(L: LuaState, s: LuaString | string, len: number): LuaString
    lua_pushstring(L: LuaState, s: LuaString | string): LuaString
    lua_getfield(L: LuaState, idx: number, k: LuaString | string): number
    lua_getglobal(L: LuaState, name: LuaString | string): number
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number
    lua_type(L: LuaState, idx: number): number
    lua_tointeger(L: LuaState, idx: number): number
    lua_tolstring(L: LuaState, idx: number): LuaString | null
    lua_tojsstring(L: LuaState, idx: number): string | null
  }

  export interface LauxlibApi {
    luaL_newstate(): LuaState
    luaL_requiref(L: LuaState, modname: LuaString, openf: LuaCFunction, glb: boolean | number): void
  }

  export interface LualibApi {
    luaopen_string: LuaCFunction
    luaopen_base: LuaCFunction
    luaL_openlibs(L: LuaState): void
  }

  export const lua: LuaApi
  export const lauxlib: LauxlibApi
  export const lualib: LualibApi
  /** Encode a JS string as a Lua string (UTF-8). */
  export function to_luastring(s: string, cache?: boolean): LuaString
  /** Decode a Lua string (UTF-8) to a JS string. */
  export function to_jsstring(s: LuaString, from?: number, to?: number, replacementChar?: boolean): string

  const fengari: {
    readonly lua: LuaApi
    readonly lauxlib: LauxlibApi
    readonly lualib: LualibApi
    to_luastring(s: string, cache?: boolean): LuaString
    to_jsstring(s: LuaString, from?: number, to?: number, replacementChar?: boolean): string
  }
  export default fengari
}
