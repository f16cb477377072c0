/**
 * spylog as a systemd service: the unit file, and install / uninstall / start / stop / status
 * through `systemctl` (run from argv through the Shell seam). When systemd is not running (a
 * container, a chroot) the unit is still written and the systemctl steps are skipped with a
 * message that says what to run later; with a root directory (`--root`, for images and tests)
 * the unit is enabled offline with `systemctl --root`.
 */
import fs from 'node:fs'
import path from 'node:path'
import {firstLine, ProcessShell, type Shell} from '../actions/windows/shell.js'
import {PACKAGE_ROOT} from '../fsutil.js'

export const UNIT_NAME = 'spylog.service'

/** A user-facing failure of a service command (printed without a stack trace). */
export class ServiceError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message)
    this.name = 'ServiceError'
  }
}

/** spylog's own `bin/run.js`. */
export function defaultBin(): string {
  return path.join(PACKAGE_ROOT, 'bin', 'run.js')
}

export interface UnitOptions {
  /** Node executable (default: the one running now). */
  readonly node?: string
  /** spylog's bin/run.js (default: this installation's). */
  readonly bin?: string
  /** Configuration directory passed as `--config` (default: none, spylog looks up /etc/spylog). */
  readonly config?: string
}

export interface SystemdOptions extends UnitOptions {
  /** Root of the file system to install into (images, tests): the unit is enabled offline there. */
  readonly root?: string
  /** Directory of the unit file (default `<root>/etc/systemd/system`). */
  readonly unitDir?: string
  /** Whether systemd is running (default: `/run/systemd/system` exists, as sd_booted() checks). */
  readonly booted?: boolean
  readonly shell?: Shell
  /** The systemctl program (default `systemctl`). */
  readonly systemctl?: string
}

/** Quotes one ExecStart word the way systemd reads it back (spaces, quotes, backslashes, `%`, `$`). */
function execWord(s: string): string {
  const t = s.replaceAll('%', '%%').replaceAll('$', () => '$$')
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(t)) return t
  return `"${t.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

/**
 * The unit file. spylog runs as root, restarted on failure, with the capabilities a firewall
 * daemon needs and little else: CAP_NET_ADMIN (nftables, ipset, iptables), CAP_NET_RAW
 * (iptables' raw socket), CAP_NET_BIND_SERVICE (a syslog listener on port 514),
 * CAP_DAC_READ_SEARCH (service logs owned by other users). State, logs and the control socket
 * live in directories systemd creates (`$STATE_DIRECTORY` = /var/lib/spylog,
 * `$LOGS_DIRECTORY` = /var/log/spylog, `$RUNTIME_DIRECTORY` = /run/spylog).
 * MemoryDenyWriteExecute is deliberately absent: V8's JIT needs writable-executable memory.
 */
export function renderUnit(o: UnitOptions = {}): string {
  const node = o.node ?? process.execPath
  const bin = o.bin ?? defaultBin()
  for (const [what, p] of [['node', node], ['bin', bin]] as const) {
    if (!path.isAbsolute(p)) throw new ServiceError(`the ${what} path in ExecStart must be absolute: ${p}`)
    if (/[\n\r]/.test(p)) throw new ServiceError(`the ${what} path contains a line break: ${JSON.stringify(p)}`)
  }
  const exec = [node, bin, 'run']
  if (o.config !== undefined) {
    if (/[\n\r]/.test(o.config)) throw new ServiceError(`the configuration path contains a line break: ${JSON.stringify(o.config)}`)
    exec.push('--config', path.resolve(o.config))
  }
  return `# spylog: fail2ban-style intrusion prevention. Written by \`spylog service install\`;
# \`spylog service uninstall\` removes it. Local changes: \`systemctl edit spylog\`.
[Unit]
Description=spylog intrusion prevention (watches logs, bans offenders in the firewall)
After=network.target nftables.service firewalld.service
Wants=network.target

[Service]
Type=simple
ExecStart=${exec.map(execWord).join(' ')}
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s
StateDirectory=spylog
LogsDirectory=spylog
RuntimeDirectory=spylog
StateDirectoryMode=0700
LogsDirectoryMode=0750
UMask=0027

# Hardening: root, but only the capabilities a firewall daemon uses.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`
}

interface Resolved {
  root: string | undefined
  unitDir: string
  unitPath: string
  shell: Shell
  systemctl: string
  booted: boolean
}

function resolve(o: SystemdOptions): Resolved {
  const root = o.root === undefined ? undefined : path.resolve(o.root)
  const unitDir = o.unitDir ?? path.join(root ?? '/', 'etc', 'systemd', 'system')
  return {
    root,
    unitDir,
    unitPath: path.join(unitDir, UNIT_NAME),
    shell: o.shell ?? new ProcessShell(),
    systemctl: o.systemctl ?? 'systemctl',
    booted: o.booted ?? fs.existsSync('/run/systemd/system'),
  }
}

async function systemctl(r: Resolved, args: string[], check = true): Promise<{code: number | null; stdout: string}> {
  const full = r.root !== undefined ? [`--root=${r.root}`, ...args] : args
  let res
  try {
    res = await r.shell.run(r.systemctl, full, {timeoutMs: 120_000})
  } catch (e) {
    throw new ServiceError(`cannot run ${r.systemctl}: ${(e as Error).message}`)
  }
  if (check && res.code !== 0) throw new ServiceError(`${r.systemctl} ${full.join(' ')} failed: ${firstLine(res.stderr) || firstLine(res.stdout) || `exit status ${res.code}`}`)
  return res
}

/** What an install / uninstall / start / stop did, step by step, for the user. */
export interface ServiceReport {
  readonly manager: 'systemd' | 'windows'
  readonly unitPath?: string
  /** Commands run, in order. */
  readonly ran: string[]
  /** Steps skipped, and why. */
  readonly notes: string[]
}

const NOT_BOOTED = 'systemd is not running on this machine (no /run/systemd/system)'

/** Writes the unit and enables it: `daemon-reload` + `enable --now`, or offline under a root. */
export async function installUnit(o: SystemdOptions = {}): Promise<ServiceReport> {
  const r = resolve(o)
  const text = renderUnit(o)
  try {
    fs.mkdirSync(r.unitDir, {recursive: true})
    fs.writeFileSync(r.unitPath, text, {mode: 0o644})
  } catch (e) {
    throw new ServiceError(`cannot write ${r.unitPath}: ${(e as Error).message}${(e as NodeJS.ErrnoException).code === 'EACCES' ? ' (run as root)' : ''}`)
  }
  const ran: string[] = []
  const notes: string[] = []
  const run = async (args: string[]): Promise<void> => {
    await systemctl(r, args)
    ran.push([r.systemctl, ...(r.root !== undefined ? [`--root=${r.root}`] : []), ...args].join(' '))
  }
  if (r.root !== undefined) {
    await run(['enable', UNIT_NAME])
    notes.push(`enabled offline under ${r.root}; it starts when that system boots`)
  } else if (r.booted) {
    await run(['daemon-reload'])
    await run(['enable', '--now', UNIT_NAME])
  } else {
    notes.push(`${NOT_BOOTED}: wrote the unit only; once systemd runs: systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}`)
  }
  return {manager: 'systemd', unitPath: r.unitPath, ran, notes}
}

/** Stops and disables the unit, removes the file, reloads systemd. */
export async function uninstallUnit(o: SystemdOptions = {}): Promise<ServiceReport> {
  const r = resolve(o)
  const ran: string[] = []
  const notes: string[] = []
  if (!fs.existsSync(r.unitPath)) {
    notes.push(`${r.unitPath} does not exist: nothing to remove`)
    return {manager: 'systemd', unitPath: r.unitPath, ran, notes}
  }
  const run = async (args: string[]): Promise<void> => {
    await systemctl(r, args)
    ran.push([r.systemctl, ...(r.root !== undefined ? [`--root=${r.root}`] : []), ...args].join(' '))
  }
  if (r.root !== undefined) await run(['disable', UNIT_NAME])
  else if (r.booted) await run(['disable', '--now', UNIT_NAME])
  else {
    // Offline and not under a root: remove the enablement symlink ourselves.
    fs.rmSync(path.join(r.unitDir, 'multi-user.target.wants', UNIT_NAME), {force: true})
    notes.push(`${NOT_BOOTED}: removed the unit without stopping anything`)
  }
  try {
    fs.rmSync(r.unitPath, {force: true})
  } catch (e) {
    throw new ServiceError(`cannot remove ${r.unitPath}: ${(e as Error).message}`)
  }
  if (r.root === undefined && r.booted) await run(['daemon-reload'])
  return {manager: 'systemd', unitPath: r.unitPath, ran, notes}
}

/** `systemctl start|stop spylog.service`; a clear error when systemd is not running. */
export async function controlUnit(o: SystemdOptions, verb: 'start' | 'stop'): Promise<ServiceReport> {
  const r = resolve(o)
  if (!fs.existsSync(r.unitPath)) throw new ServiceError(`${UNIT_NAME} is not installed (no ${r.unitPath}); run: spylog service install`)
  if (r.root !== undefined) throw new ServiceError(`cannot ${verb} a service under --root ${r.root}: it runs when that system boots`, 2)
  if (!r.booted) throw new ServiceError(`cannot ${verb} ${UNIT_NAME}: ${NOT_BOOTED}; run spylog in the foreground instead (spylog run)`)
  await systemctl(r, [verb, UNIT_NAME])
  return {manager: 'systemd', unitPath: r.unitPath, ran: [`${r.systemctl} ${verb} ${UNIT_NAME}`], notes: []}
}

export interface UnitStatus {
  readonly manager: 'systemd'
  readonly unitPath: string
  readonly installed: boolean
  /** Whether systemd runs here (when not, active/pid are unknown). */
  readonly systemd: boolean
  /** `enabled`, `disabled`, … (systemctl's UnitFileState / is-enabled), when known. */
  readonly enabled?: string
  /** `active`, `inactive`, `failed`, … when systemd runs. */
  readonly active?: string
  readonly sub?: string
  readonly pid?: number
}

/** The unit's state: from `systemctl show` when systemd runs, else from the file system. */
export async function unitStatus(o: SystemdOptions = {}): Promise<UnitStatus> {
  const r = resolve(o)
  const installed = fs.existsSync(r.unitPath)
  const base = {manager: 'systemd' as const, unitPath: r.unitPath, installed}
  if (r.root !== undefined || !r.booted) {
    let enabled: string | undefined
    if (installed) {
      if (r.root !== undefined) {
        const res = await systemctl(r, ['is-enabled', UNIT_NAME], false)
        enabled = res.stdout.trim().split('\n')[0] || undefined
      } else {
        enabled = fs.existsSync(path.join(r.unitDir, 'multi-user.target.wants', UNIT_NAME)) ? 'enabled' : 'disabled'
      }
    }
    return {...base, systemd: false, enabled}
  }
  const res = await systemctl(r, ['show', UNIT_NAME, '--property=LoadState,ActiveState,SubState,UnitFileState,MainPID'], false)
  const kv = new Map<string, string>()
  for (const line of res.stdout.split('\n')) {
    const eq = line.indexOf('=')
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1).trim())
  }
  const pid = Number(kv.get('MainPID'))
  return {
    ...base,
    installed: installed || (kv.get('LoadState') !== undefined && kv.get('LoadState') !== 'not-found'),
    systemd: true,
    enabled: kv.get('UnitFileState') || undefined,
    active: kv.get('ActiveState') || undefined,
    sub: kv.get('SubState') || undefined,
    pid: Number.isInteger(pid) && pid > 0 ? pid : undefined,
  }
}
