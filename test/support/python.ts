import {spawnSync} from 'node:child_process'
import path from 'node:path'

export {repoRoot} from './files.js'
import {repoRoot} from './files.js'

/** python3 on PATH, or undefined. */
export function python(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.version_info[:2] >= (3, 11))'], {encoding: 'utf8'})
  return r.status === 0 && r.stdout.trim() === 'True' ? 'python3' : undefined
}

/** Run a script of test/support with a JSON document on stdin; returns its parsed JSON output. */
export function runPython<T>(script: string, input: unknown, exe = 'python3'): T {
  const r = spawnSync(exe, [path.join(repoRoot, 'test', 'support', script)], {
    input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 30,
  })
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}
