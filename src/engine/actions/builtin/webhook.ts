/**
 * The `webhook` built-in: POSTs each ban and unban as JSON to a URL —
 * `{event: 'ban'|'unban', jail, id, bantime, time, failures, filter, uuid}` — with optional
 * extra headers and an HMAC-SHA256 signature of the body (`X-Spylog-Signature: sha256=<hex>`)
 * when a `secret` is set, so the receiver can check the sender. Options: `url` (required),
 * `headers` (table), `secret`, `timeout` (milliseconds, default 10 s).
 * A 2xx answer is success; 5xx, 408, 429, network errors and timeouts are retried by the queue;
 * other answers (a 4xx: the receiver refuses this request) are not.
 */
import {createHmac} from 'node:crypto'
import type {ActionConfig} from '../../config/model.js'
import {ActionError, type ActionContext, type ActionOp, type ActionRunner, type BanRequest} from '../action.js'
import {optionNumber, optionText, where} from './firewall.js'
import {handles} from './tags.js'

/** The header carrying the body's signature. */
export const SIGNATURE_HEADER = 'X-Spylog-Signature'

/** What the receiver gets. */
export interface WebhookPayload {
  event: ActionOp
  jail: string
  id: string
  /** Seconds; -1 for a ban that is never lifted. */
  bantime: number
  /** Ban start, Unix seconds. */
  time: number
  /** Number of failures that led to the ban. */
  failures: number
  filter: string
  uuid: string
}

/** `sha256=<hex>` of the body under `secret`. */
export function signBody(body: string, secret: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body, 'utf8').digest('hex')
}

/** The webhook runner; see the module comment. */
export class WebhookRunner implements ActionRunner {
  readonly name: string
  /** A notification: a restart that re-applies active bans does not send it again (ActionRunner.reapply, queue branch). */
  readonly reapply = false
  readonly url: URL
  readonly timeoutMs: number
  private readonly headers: Record<string, string>
  private readonly secret?: string

  constructor(
    private readonly cfg: ActionConfig,
    private readonly ctx: ActionContext,
  ) {
    this.name = cfg.name
    const at = where(cfg)
    const urlText = optionText(cfg, 'url') ?? (typeof cfg.parameters.url === 'string' ? cfg.parameters.url : undefined)
    if (urlText === undefined) throw new ActionError(`${at}: option url is required (the address the webhook POSTs to)`, false)
    let url: URL
    try {
      url = new URL(urlText)
    } catch {
      throw new ActionError(`${at}: option url: ${JSON.stringify(urlText)} is not a URL`, false)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ActionError(`${at}: option url: only http and https URLs are supported, got ${JSON.stringify(urlText)}`, false)
    this.url = url
    this.timeoutMs = optionNumber(cfg, 'timeout') ?? 10_000
    this.secret = optionText(cfg, 'secret')
    this.headers = {}
    const hv = cfg.options.headers
    if (hv !== undefined) {
      if (typeof hv !== 'object' || Array.isArray(hv)) throw new ActionError(`${at}: option headers must be a table of header names and values`, false)
      for (const [k, v] of Object.entries(hv)) {
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw new ActionError(`${at}: option headers: ${JSON.stringify(k)} is not a header name`, false)
        if ((typeof v !== 'string' && typeof v !== 'number') || /[\r\n\0]/.test(String(v))) throw new ActionError(`${at}: option headers.${k}: expected a one-line text`, false)
        this.headers[k] = String(v)
      }
    }
  }

  unique(op: ActionOp, req: BanRequest): string {
    return `${req.ticket.jail}\u0000${req.ticket.id}`
  }

  /** The JSON document of a job. */
  payload(op: ActionOp, req: BanRequest): WebhookPayload {
    const t = req.ticket
    return {event: op, jail: t.jail, id: t.id, bantime: t.bantime, time: t.time, failures: t.failures.length, filter: t.filter, uuid: t.uuid}
  }

  async run(op: ActionOp, req: BanRequest): Promise<void> {
    if (!handles(this.cfg, op)) return
    const body = JSON.stringify(this.payload(op, req))
    if (this.ctx.dryRun === true) {
      this.ctx.log.info(`${this.name}: dry run, would POST to ${this.url.origin}${this.url.pathname}: ${body}`)
      return
    }
    const headers: Record<string, string> = {'content-type': 'application/json', 'user-agent': 'spylog', ...this.headers}
    if (this.secret !== undefined) headers[SIGNATURE_HEADER] = signBody(body, this.secret)
    let res: Response
    try {
      res = await fetch(this.url, {method: 'POST', headers, body, redirect: 'error', signal: AbortSignal.timeout(this.timeoutMs)})
    } catch (e) {
      const err = e as Error & {cause?: {code?: string; message?: string}}
      const why = err.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message)
      throw new ActionError(`${this.name}: POST to ${this.url.origin}${this.url.pathname} failed: ${why}`)
    }
    // read (and bound) the answer so the connection is released; its text helps the message
    const text = (await readSome(res, 4096)).slice(0, 200).replace(/\s+/g, ' ').trim()
    if (res.ok) return
    const retry = res.status >= 500 || res.status === 408 || res.status === 429
    throw new ActionError(`${this.name}: ${this.url.origin}${this.url.pathname} answered ${res.status} ${res.statusText}${text !== '' ? `: ${text}` : ''}`, retry)
  }
}

/** At most `max` bytes of a response body as text (the rest is dropped: a receiver cannot make spylog buffer much). */
async function readSome(res: Response, max: number): Promise<string> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const parts: Uint8Array[] = []
  let n = 0
  try {
    while (n < max) {
      const {done, value} = await reader.read()
      if (done) break
      parts.push(value)
      n += value.length
    }
  } catch {
    // a broken answer body does not change the status we judge by
  } finally {
    reader.cancel().catch(() => {})
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8')
}
