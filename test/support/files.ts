/** Files for tests: the repository root, and temporary directory trees removed after the run. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/** The repository root (tests run from test/ with tsx, or from dist/test/ compiled). */
export const repoRoot: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('repository root not found')
    dir = up
  }
  return dir
})()

const trees: string[] = []

/**
 * A new temporary directory holding `files` (relative path → text or bytes). In text, `@DIR@`
 * stands for the directory itself. Removed when the test run ends.
 */
export function tempTree(files: Record<string, string | Uint8Array>, prefix = 'spylog-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  trees.push(dir)
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel)
    fs.mkdirSync(path.dirname(p), {recursive: true})
    fs.writeFileSync(p, typeof content === 'string' ? content.replaceAll('@DIR@', dir) : content)
  }
  return dir
}

after(() => {
  for (const d of trees.splice(0)) fs.rmSync(d, {recursive: true, force: true})
})

/** A seeded pseudo-random generator (mulberry32), so a failing generated case can be replayed. */
export function prng(seed: number): () => number {
  return () => {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
