/**
 * Where the control channel lives, shared by the daemon and the CLI so both find the same place
 * without configuration:
 *
 * - data directory: `$SPYLOG_DATA_DIR`, else `%ProgramData%\spylog\data` on Windows (the configuration is `%ProgramData%\spylog`), `/var/lib/spylog`
 *   for root on Linux, `$XDG_STATE_HOME/spylog` (or `~/.local/state/spylog`) for other users;
 * - token file: `<data dir>/control.token`;
 * - socket: `$SPYLOG_SOCKET`, else the named pipe `\\.\pipe\spylog` on Windows, else
 *   `/run/spylog/spylog.sock` for root, `$XDG_RUNTIME_DIR/spylog/spylog.sock` for other users,
 *   or `<data dir>/spylog.sock` when there is no runtime directory.
 */
import os from 'node:os'
import path from 'node:path'

/** The Windows named pipe. */
export const WINDOWS_PIPE = '\\\\.\\pipe\\spylog'

/** File name of the token in the data directory. */
export const TOKEN_FILE_NAME = 'control.token'

export interface PathContext {
  readonly platform?: NodeJS.Platform
  readonly env?: NodeJS.ProcessEnv
  /** Effective user id (default process.geteuid(); undefined on Windows). */
  readonly uid?: number
  readonly home?: string
}

function ctx(c: PathContext): {platform: NodeJS.Platform; env: NodeJS.ProcessEnv; uid: number | undefined; home: string} {
  return {
    platform: c.platform ?? process.platform,
    env: c.env ?? process.env,
    uid: c.uid ?? (typeof process.geteuid === 'function' ? process.geteuid() : undefined),
    home: c.home ?? os.homedir(),
  }
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s)

/** The default data directory (see the module comment). */
export function defaultDataDir(c: PathContext = {}): string {
  const {platform, env, uid, home} = ctx(c)
  const explicit = nonEmpty(env.SPYLOG_DATA_DIR)
  if (explicit !== undefined) return explicit
  if (platform === 'win32') return path.win32.join(env.ProgramData ?? env.PROGRAMDATA ?? 'C:\\ProgramData', 'spylog', 'data')
  if (uid === 0) return '/var/lib/spylog'
  return path.posix.join(nonEmpty(env.XDG_STATE_HOME) ?? path.posix.join(home, '.local', 'state'), 'spylog')
}

/** The default socket (named pipe on Windows). */
export function defaultSocketPath(c: PathContext & {dataDir?: string} = {}): string {
  const {platform, env, uid} = ctx(c)
  const explicit = nonEmpty(env.SPYLOG_SOCKET)
  if (explicit !== undefined) return explicit
  if (platform === 'win32') return WINDOWS_PIPE
  if (uid === 0) return '/run/spylog/spylog.sock'
  const runtime = nonEmpty(env.XDG_RUNTIME_DIR)
  if (runtime !== undefined) return path.posix.join(runtime, 'spylog', 'spylog.sock')
  return path.posix.join(c.dataDir ?? defaultDataDir(c), 'spylog.sock')
}

/** The token file of a data directory. */
export function tokenFilePath(dataDir: string, platform: NodeJS.Platform = process.platform): string {
  return (platform === 'win32' ? path.win32 : path.posix).join(dataDir, TOKEN_FILE_NAME)
}

export interface ControlPaths {
  socketPath: string
  tokenFile: string
}

/**
 * The socket and token file to use: explicit ones first, then the token file of an explicit data
 * directory, then the defaults.
 */
export function resolveControlPaths(opts: {socket?: string; tokenFile?: string; dataDir?: string} & PathContext = {}): ControlPaths {
  const platform = opts.platform ?? process.platform
  const dataDir = nonEmpty(opts.dataDir) ?? defaultDataDir(opts)
  return {
    socketPath: nonEmpty(opts.socket) ?? defaultSocketPath({...opts, dataDir}),
    tokenFile: nonEmpty(opts.tokenFile) ?? tokenFilePath(dataDir, platform),
  }
}

/** Whether a path names a Windows named pipe rather than a file-system socket. */
export function isNamedPipe(p: string): boolean {
  return p.startsWith('\\\\.\\pipe\\') || p.startsWith('\\\\?\\pipe\\')
}
