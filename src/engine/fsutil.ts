import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/** Whether `p` is an existing directory (no throw). */
export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory()
  } catch {
    return false
  }
}

/** Whether `p` is an existing regular file (no throw). */
export function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile()
  } catch {
    return false
  }
}

/** spylog's package root (where package.json, config/, resources/ and bin/ live), found from this module in src/ or dist/src/. */
export const PACKAGE_ROOT: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir
    const up = path.dirname(dir)
    if (up === dir) return process.cwd()
    dir = up
  }
})()

/** spylog's version (package.json). */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {version: string}).version
  } catch {
    return '0.0.0'
  }
})()
