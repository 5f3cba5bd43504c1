import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { Agent as AgentType, Dispatcher } from 'undici';
import { RegistryError } from './errors.js';
import type { Log } from '../log.js';

/**
 * undici's Agent with the request API, without the rest of undici: its index also loads fetch, WebSocket, the
 * cache and the mocks, which doubles the start-up cost of every registry command (0.30 s vs 0.18 s to load here).
 * The index does the same prototype assignment; should the internal layout ever move, the whole package is loaded.
 */
function loadAgent(): typeof AgentType {
  const require = createRequire(import.meta.url);
  try {
    const agent = require('undici/lib/dispatcher/agent.js') as typeof AgentType;
    const dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
    if (!('request' in dispatcher.prototype)) Object.assign(dispatcher.prototype, require('undici/lib/api/index.js'));
    if (typeof agent === 'function' && typeof (agent.prototype as { request?: unknown }).request === 'function') return agent;
  } catch {
    // fall through
  }
  return (require('undici') as typeof import('undici')).Agent;
}
const Agent = loadAgent();

export const USER_AGENT = 'ocislim/0.1 (+https://github.com/ocislim/ocislim)';

export interface TransportOptions {
  /** PEM file with extra CA certificates for TLS registries (NODE_EXTRA_CA_CERTS works too). */
  caFile?: string;
  /** Attempts per request for retryable failures (network errors, 408, 429, 5xx). */
  attempts?: number;
  /** First backoff delay in ms (doubles, with jitter). */
  backoffMs?: number;
  /** Cap for one wait, Retry-After included, in ms. */
  maxDelayMs?: number;
  /**
   * Where retries and recoveries are reported (info), and each distinct text of the registry's
   * `Warning: 299 - "text"` headers, once (warn: shown, never acted on).
   */
  log?: Log;
}

export type BodySource = Buffer | (() => Readable);

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** A buffer, or a factory that opens the body again for each attempt (replayable). */
  body?: BodySource;
  /** Whether the request may be retried on failure (the body must be replayable, which both forms are). */
  retry?: boolean;
  /**
   * Before a retry: the request to send instead (an upload resumes where the registry says it stopped), or null to
   * send the same one again.
   */
  beforeRetry?: () => Promise<HttpRequest | null>;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

const RETRY_STATUS = new Set([408, 429, 499, 500, 502, 503, 504, 522]);
const RETRY_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);
const MAX_REDIRECTS = 10;
export const MAX_ERROR_BODY = 64 * 1024;

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads at most `limit` bytes of a body (error bodies, token responses), then drops the rest. */
export async function readLimited(body: Readable, limit = MAX_ERROR_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    if (n < limit) chunks.push(b.subarray(0, limit - n));
    n += b.length;
  }
  return Buffer.concat(chunks);
}

function errCode(e: unknown): string | undefined {
  const x = e as { code?: string; cause?: { code?: string } };
  return x?.code ?? x?.cause?.code;
}

/** Delay from Retry-After (seconds or an HTTP date), or null. */
export function retryAfterMs(v: string | undefined, now = Date.now()): number | null {
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}

/**
 * HTTP for registries on undici: one keep-alive agent, redirects followed by hand (credentials only to the same
 * origin, never https to http), retries with backoff on network errors, 408, 429 (honouring Retry-After) and 5xx.
 */
export class Transport {
  private agent: AgentType;
  readonly attempts: number;
  private backoff: number;
  private maxDelay: number;

  constructor(private readonly opts: TransportOptions = {}) {
    let ca: string[] | undefined;
    if (opts.caFile) {
      let pem: string;
      try {
        pem = readFileSync(opts.caFile, 'utf8');
      } catch (e) {
        throw new RegistryError(`--ca-file ${opts.caFile}: ${(e as Error).message}`);
      }
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new RegistryError(`--ca-file ${opts.caFile}: no PEM certificate in it`);
      ca = [...rootCertificates, pem];
    }
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 8, connect: ca ? { ca } : {} });
    this.attempts = opts.attempts ?? 5;
    this.backoff = opts.backoffMs ?? 250;
    this.maxDelay = opts.maxDelayMs ?? 30_000;
  }

  /**
   * Ends the connection pool once every request has finished. The idle keep-alive sockets are destroyed rather than
   * half-closed: a graceful close leaves each one open until the registry answers the FIN, which kept the process
   * alive 150–200 ms after a push.
   */
  async close(): Promise<void> {
    await this.agent.destroy();
  }

  private delay(attempt: number, retryAfter: number | null): number {
    const base = Math.min(this.backoff * 2 ** attempt, this.maxDelay);
    const jittered = base * (0.9 + Math.random() * 0.2);
    return Math.min(retryAfter ?? jittered, this.maxDelay);
  }

  private warned = new Set<string>();

  /** distribution-spec "Warnings": `299 - "text"`, possibly several per header; each text is reported once. */
  private noteWarnings(res: HttpResponse): void {
    const raw = res.headers['warning'];
    if (!raw || !this.opts.log) return;
    for (const h of Array.isArray(raw) ? raw : [raw]) {
      for (const m of h.matchAll(/299\s+\S+\s+"((?:[^"\\]|\\.)*)"/g)) {
        const text = m[1].replace(/\\(.)/g, '$1').replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 500);
        if (this.warned.has(text)) continue;
        this.warned.add(text);
        this.opts.log.warn(`${res.url.host} says: ${text}`);
      }
    }
  }

  /** One request with redirects and retries. The caller must consume or dump the response body. */
  async request(first: HttpRequest): Promise<HttpResponse> {
    const attempts = first.retry === false ? 1 : this.attempts;
    let lastErr: unknown;
    let req = first;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0 && first.beforeRetry) req = (await first.beforeRetry()) ?? req;
      let res: HttpResponse;
      try {
        res = await this.followRedirects(req);
      } catch (e) {
        if (e instanceof RegistryError) throw e;
        lastErr = e;
        const code = errCode(e);
        if (!code || !RETRY_CODES.has(code) || attempt === attempts - 1) break;
        const d = this.delay(attempt, null);
        this.opts.log?.info(`retry ${attempt + 1} in ${Math.round(d)} ms: ${req.method} ${req.url.host}: ${code}`);
        await sleep(d);
        continue;
      }
      if (!RETRY_STATUS.has(res.status) || attempt === attempts - 1) return res;
      const ra = retryAfterMs(header(res, 'retry-after'));
      await res.body.dump();
      const d = this.delay(attempt, ra);
      this.opts.log?.info(`retry ${attempt + 1} in ${Math.round(d)} ms: ${req.method} ${req.url.host}${req.url.pathname}: HTTP ${res.status}`);
      await sleep(d);
    }
    const code = errCode(lastErr);
    throw new RegistryError(`${req.method} ${req.url.origin}${req.url.pathname}: ${code ?? (lastErr as Error)?.message ?? 'failed'}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`);
  }

  private async followRedirects(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let method = req.method;
    let headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(req.headers ?? {}) };
    let body = req.body;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const b = body === undefined ? undefined : Buffer.isBuffer(body) ? body : body();
      const r = await this.agent.request({ origin: url.origin, path: url.pathname + url.search, method, headers, body: b });
      const res: HttpResponse = { status: r.statusCode, headers: r.headers, body: r.body, url };
      this.noteWarnings(res);
      if (![301, 302, 303, 307, 308].includes(r.statusCode)) return res;
      const loc = header(res, 'location');
      await r.body.dump();
      if (!loc) throw new RegistryError(`${method} ${url.origin}${url.pathname}: redirect without a Location`);
      const next = new URL(loc, url);
      if (url.protocol === 'https:' && next.protocol !== 'https:') throw new RegistryError(`${url.origin}: refusing a redirect from https to ${next.protocol}//${next.host}`);
      if (next.origin !== url.origin) {
        // Credentials belong to the registry: never forward them to another host.
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      if (r.statusCode === 303 || ((r.statusCode === 301 || r.statusCode === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
    throw new RegistryError(`${req.url.origin}: too many redirects`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
