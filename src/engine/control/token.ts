/**
 * The control token: 32 random bytes (64 hex characters) in a file only the daemon's user (and
 * administrators) can read. Every control request carries it, because on Windows the named pipe
 * admits other local users, and on Linux it is a second lock behind the socket's mode.
 */
import {spawnSync} from 'node:child_process'
import {createHash, randomBytes, timingSafeEqual} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type {Logger} from '../log/logger.js'

const TOKEN_RE = /^[0-9a-f]{64}$/

/** A new token (64 hex characters). */
export function newToken(): string {
  return randomBytes(32).toString('hex')
}

/**
 * The daemon's token: read from `file` when it holds a valid one (its mode is tightened to 0600
 * when group or others could read it), else a new token written there with mode 0600 (the
 * directory is created 0700). On Windows the file's ACL is reset to SYSTEM and Administrators.
 */
export function ensureToken(file: string, opts: {log?: Logger; platform?: NodeJS.Platform} = {}): string {
  const platform = opts.platform ?? process.platform
  let existing: string | undefined
  try {
    existing = fs.readFileSync(file, 'utf8').trim()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  if (existing !== undefined && TOKEN_RE.test(existing)) {
    if (platform !== 'win32') {
      const st = fs.statSync(file)
      if ((st.mode & 0o077) !== 0) {
        fs.chmodSync(file, 0o600)
        opts.log?.warning(`control token ${file} was readable by other users (mode ${(st.mode & 0o777).toString(8)}): mode set to 600`)
      }
    }
    return existing
  }
  if (existing !== undefined) opts.log?.warning(`control token ${file} is not a valid token: writing a new one`)
  fs.mkdirSync(path.dirname(file), {recursive: true, mode: 0o700})
  const token = newToken()
  // Written under a temporary name with its final mode, then renamed: the token is never readable by others.
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, token + '\n', {mode: 0o600, flag: 'w'})
  if (platform !== 'win32') fs.chmodSync(tmp, 0o600)
  fs.renameSync(tmp, file)
  if (platform === 'win32') restrictWindowsAcl(file, opts.log)
  return token
}

/** Windows: only SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544) keep access to the file. */
function restrictWindowsAcl(file: string, log?: Logger): void {
  const r = spawnSync('icacls', [file, '/inheritance:r', '/grant:r', '*S-1-5-18:F', '*S-1-5-32-544:F'], {shell: false, encoding: 'utf8', windowsHide: true})
  if (r.status !== 0) log?.warning(`control token ${file}: icacls failed (${(r.stderr || r.stdout || String(r.error ?? r.status)).trim()}); restrict its ACL to SYSTEM and Administrators by hand`)
}

/** Why a token could not be read. */
export class TokenError extends Error {
  constructor(
    message: string,
    readonly code: 'missing' | 'denied' | 'invalid' | 'io',
  ) {
    super(message)
    this.name = 'TokenError'
  }
}

/** The client side: reads the token from `file`, with errors that say what to do. */
export function readToken(file: string): string {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new TokenError(`no control token at ${file} (pass --token-file, or --data-dir with the daemon's data directory)`, 'missing')
    if (code === 'EACCES' || code === 'EPERM') throw new TokenError(`permission denied reading the control token ${file} (run as the daemon's user or root/Administrator)`, 'denied')
    throw new TokenError(`cannot read the control token ${file}: ${(e as Error).message}`, 'io')
  }
  const token = text.trim()
  if (!TOKEN_RE.test(token)) throw new TokenError(`${file} does not hold a control token (64 hex characters)`, 'invalid')
  return token
}

/** Compares a presented token with the expected one in constant time. */
export function tokenMatches(expected: string, presented: unknown): boolean {
  if (typeof presented !== 'string') return false
  const a = createHash('sha256').update(expected).digest()
  const b = createHash('sha256').update(presented).digest()
  return timingSafeEqual(a, b) && presented.length === expected.length
}
