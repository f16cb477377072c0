#!/usr/bin/env node
// spylog entry point. The regex safety flag must be set before any RegExp is compiled:
// V8 then falls back to its linear-time engine when a backtracking regex goes wild.
import v8 from 'node:v8'
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks')
v8.setFlagsFromString('--regexp-backtracks-before-fallback=5000')
const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
