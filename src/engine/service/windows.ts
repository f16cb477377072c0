/**
 * spylog as a Windows service. node.exe does not speak the Service Control Manager protocol, so a
 * wrapper is needed: node-windows (an optional dependency, installed on Windows only) bundles
 * WinSW and registers it as service `spylog.exe` running as LocalSystem (Security log and
 * firewall access), restarting spylog when it exits. Everything lives under
 * `%ProgramData%\spylog`: the configuration, `service\launch.mjs` (the script the wrapper runs:
 * `spylog run --config %ProgramData%\spylog`) and `service\daemon\` (WinSW's files and logs).
 * State queries and start/stop go through `sc.exe`, from argv, through the Shell seam.
 */
import fs from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {clearFirewallRules} from '../actions/windows/firewall.js'
import {ProcessShell, type Shell} from '../actions/windows/shell.js'
import {defaultBin, ServiceError, type ServiceReport} from './systemd.js'

/** Display name of the service; node-windows derives the service id from it. */
export const SERVICE_NAME = 'spylog'
/** The id node-windows gives the service (its name, word characters only, lower case, + `.exe`). */
export const SERVICE_ID = 'spylog.exe'

/** The part of node-windows' Service that spylog uses. */
export interface NodeWindowsService {
  on(event: string, listener: (...args: unknown[]) => void): unknown
  once(event: string, listener: (...args: unknown[]) => void): unknown
  removeAllListeners(event?: string): unknown
  install(dir?: string): void
  uninstall(waitTime?: number): void
  readonly exists: boolean
}

export interface NodeWindowsModule {
  Service: new (config: Record<string, unknown>) => NodeWindowsService
}

/** Loads node-windows; a clear error when it is not installed. */
export async function loadNodeWindows(specifier = 'node-windows'): Promise<NodeWindowsModule> {
  let mod: unknown
  try {
    mod = await import(specifier)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new ServiceError(
        'the Windows service needs the node-windows package, which is not installed. It is an optional dependency of spylog, ' +
        'installed only on Windows: reinstall spylog on this machine (npm install -g spylog), or run npm install node-windows ' +
        'in spylog\'s directory.',
      )
    }
    throw new ServiceError(`cannot load node-windows: ${(e as Error).message}`)
  }
  const m = mod as {Service?: unknown; default?: {Service?: unknown}}
  const Service = m.Service ?? m.default?.Service
  if (typeof Service !== 'function') throw new ServiceError('node-windows has no Service class (an incompatible version?)')
  return {Service: Service as NodeWindowsModule['Service']}
}

export interface WindowsServiceOptions {
  /** `%ProgramData%` (default: from the environment, else C:\ProgramData). */
  readonly programData?: string
  /** Node executable (default: the one running now). */
  readonly node?: string
  /** spylog's bin/run.js. */
  readonly bin?: string
  /** Configuration directory (default `%ProgramData%\spylog`). */
  readonly config?: string
  /** How node-windows is loaded (tests: a stand-in, or a missing module). */
  readonly load?: () => Promise<NodeWindowsModule>
  readonly shell?: Shell
  /** The sc.exe program. */
  readonly sc?: string
  /** Uninstall only: leave spylog's firewall rules in place. */
  readonly keepRules?: boolean
  /** Seconds to wait for node-windows' install/uninstall events. */
  readonly timeoutSeconds?: number
}

interface Paths {
  home: string
  config: string
  serviceDir: string
  launcher: string
  dataDir: string
}

function paths(o: WindowsServiceOptions): Paths {
  const pd = o.programData ?? process.env.ProgramData ?? process.env.PROGRAMDATA ?? 'C:\\ProgramData'
  const home = path.join(pd, 'spylog')
  const serviceDir = path.join(home, 'service')
  return {home, config: o.config ?? home, serviceDir, launcher: path.join(serviceDir, 'launch.mjs'), dataDir: path.join(home, 'data')}
}

/**
 * The launcher WinSW's wrapper runs: it sets spylog's arguments and loads bin/run.js (node-windows
 * passes no arguments to its script, so they are written here).
 */
export function launcherSource(bin: string, config: string): string {
  return `// Written by \`spylog service install\`: the Windows service runs this file.
process.argv.splice(2, process.argv.length - 2, 'run', '--config', ${JSON.stringify(config)})
await import(${JSON.stringify(pathToFileURL(bin).href)})
`
}

/** The node-windows Service configuration spylog installs. */
export function serviceConfig(o: WindowsServiceOptions): Record<string, unknown> {
  const p = paths(o)
  return {
    name: SERVICE_NAME,
    description: 'spylog intrusion prevention: watches event logs and log files, bans offenders in the Windows Firewall.',
    script: p.launcher,
    execPath: o.node ?? process.execPath,
    env: [{name: 'SPYLOG_CONFIG', value: p.config}],
    // Restart after a crash: 2 s, growing by half each time, at most 5 restarts a minute.
    wait: 2,
    grow: 0.5,
    maxRestarts: 5,
    logpath: path.join(p.serviceDir, 'logs'),
  }
}

function awaitEvent(svc: NodeWindowsService, ok: string[], bad: string[], what: string, seconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ServiceError(`${what}: no answer from node-windows after ${seconds} s`)), seconds * 1000)
    for (const ev of ok) svc.once(ev, () => {
      clearTimeout(timer)
      resolve(ev)
    })
    for (const ev of bad) svc.once(ev, (err?: unknown) => {
      clearTimeout(timer)
      reject(new ServiceError(`${what} failed (${ev})${err instanceof Error ? `: ${err.message}` : typeof err === 'string' ? `: ${err}` : ''}`))
    })
  })
}

async function sc(o: WindowsServiceOptions, args: string[]): Promise<{code: number | null; stdout: string}> {
  const shell = o.shell ?? new ProcessShell()
  const program = o.sc ?? 'sc.exe'
  try {
    return await shell.run(program, args, {timeoutMs: 60_000})
  } catch (e) {
    throw new ServiceError(`cannot run ${program}: ${(e as Error).message}`)
  }
}

/** Installs and starts the service (LocalSystem, configured from %ProgramData%\spylog). */
export async function installWindowsService(o: WindowsServiceOptions = {}): Promise<ServiceReport> {
  const nw = await (o.load ?? loadNodeWindows)()
  const p = paths(o)
  const notes: string[] = []
  try {
    fs.mkdirSync(p.serviceDir, {recursive: true})
    fs.writeFileSync(p.launcher, launcherSource(o.bin ?? defaultBin(), p.config))
  } catch (e) {
    throw new ServiceError(`cannot write ${p.launcher}: ${(e as Error).message} (run from an elevated prompt)`)
  }
  if (!fs.existsSync(path.join(p.config, 'spylog.lua'))) notes.push(`no configuration in ${p.config} yet: copy spylog's config directory there before starting`)
  const svc = new nw.Service(serviceConfig(o))
  const done = awaitEvent(svc, ['install', 'alreadyinstalled'], ['invalidinstallation', 'error'], 'installing the service', o.timeoutSeconds ?? 120)
  svc.install(p.serviceDir)
  const ev = await done
  if (ev === 'alreadyinstalled') notes.push('the service was already installed')
  const r = await sc(o, ['start', SERVICE_ID])
  const ran = [`node-windows install (${p.serviceDir})`, `sc.exe start ${SERVICE_ID}`]
  if (r.code !== 0 && r.code !== 1056) notes.push(`sc.exe start ${SERVICE_ID} failed (exit ${r.code}): start it with spylog service start`)
  return {manager: 'windows', unitPath: p.launcher, ran, notes}
}

/** Stops and removes the service, then spylog's firewall rules (unless keepRules). */
export async function uninstallWindowsService(o: WindowsServiceOptions = {}): Promise<ServiceReport> {
  const nw = await (o.load ?? loadNodeWindows)()
  const p = paths(o)
  const svc = new nw.Service(serviceConfig(o))
  const ran: string[] = []
  const notes: string[] = []
  const done = awaitEvent(svc, ['uninstall', 'alreadyuninstalled'], ['error'], 'removing the service', o.timeoutSeconds ?? 120)
  svc.uninstall()
  const ev = await done
  ran.push('node-windows uninstall')
  if (ev === 'alreadyuninstalled') notes.push('the service was not installed')
  fs.rmSync(p.launcher, {force: true})
  if (o.keepRules === true) notes.push('kept spylog\'s firewall rules (--keep-rules); remove them with spylog firewall clear')
  else {
    const removed = await clearFirewallRules({shell: o.shell, dataDir: p.dataDir}).catch((e: Error) => {
      throw new ServiceError(`the service is removed, but clearing spylog's firewall rules failed: ${e.message}; run spylog firewall clear`)
    })
    ran.push(`firewall clear (${removed.length} rule${removed.length === 1 ? '' : 's'} removed)`)
  }
  return {manager: 'windows', unitPath: p.launcher, ran, notes}
}

/** `sc.exe start|stop spylog.exe`. */
export async function controlWindowsService(o: WindowsServiceOptions, verb: 'start' | 'stop'): Promise<ServiceReport> {
  const r = await sc(o, [verb, SERVICE_ID])
  // 1056: already running; 1062: not started.
  if (r.code === 1060) throw new ServiceError(`the ${SERVICE_ID} service is not installed; run: spylog service install`)
  if (r.code !== 0 && !(verb === 'start' && r.code === 1056) && !(verb === 'stop' && r.code === 1062)) {
    throw new ServiceError(`sc.exe ${verb} ${SERVICE_ID} failed (exit ${r.code})${r.code === 5 ? ': access denied, use an elevated prompt' : ''}`)
  }
  return {manager: 'windows', ran: [`sc.exe ${verb} ${SERVICE_ID}`], notes: []}
}

export interface WindowsServiceStatus {
  readonly manager: 'windows'
  readonly installed: boolean
  /** `running`, `stopped`, `start_pending`, … from sc.exe's numeric state. */
  readonly state?: string
  readonly pid?: number
}

const STATES: Record<number, string> = {1: 'stopped', 2: 'start_pending', 3: 'stop_pending', 4: 'running', 5: 'continue_pending', 6: 'pause_pending', 7: 'paused'}

/** The service state from `sc.exe queryex` (its numeric fields, which are not localised). */
export async function windowsServiceStatus(o: WindowsServiceOptions = {}): Promise<WindowsServiceStatus> {
  const r = await sc(o, ['queryex', SERVICE_ID])
  if (r.code === 1060) return {manager: 'windows', installed: false}
  if (r.code !== 0) throw new ServiceError(`sc.exe queryex ${SERVICE_ID} failed (exit ${r.code})`)
  const state = /^\s*STATE\s*:\s*(\d+)/m.exec(r.stdout)
  const pid = /^\s*PID\s*:\s*(\d+)/m.exec(r.stdout)
  const n = state === null ? undefined : Number(state[1])
  const p = pid === null ? 0 : Number(pid[1])
  return {manager: 'windows', installed: true, state: n === undefined ? undefined : STATES[n] ?? String(n), pid: p > 0 ? p : undefined}
}
