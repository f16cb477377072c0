import fs from 'node:fs'

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
