import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import type { Agent as AgentType, buildConnector as buildConnectorType, Dispatcher } from 'undici';
import { NetworkError, NetworkFailure, RegistryError, TooLargeError } from './errors.js';
import type { Log } from '../log.js';
import { connector, extraFromEnv, readCaFile, Trusted } from './trust.js';

type Undici = { Agent: typeof AgentType; buildConnector: typeof buildConnectorType };

/**
 * undici's Agent with the request API, and its connector, without the rest of undici: its index also loads fetch,
 * WebSocket, the cache and the mocks, which doubles the start-up cost of every registry command (0.30 s vs 0.18 s to
 * load here). The index does the same prototype assignment; should the internal layout ever move, the whole package
 * is loaded.
 */
function loadUndici(): Undici {
  const require = createRequire(import.meta.url);
  baselineWasm(require);
  const bundled = bundledUndici(require);
  if (bundled) return bundled;
  try {
    const agent = require('undici/lib/dispatcher/agent.js') as typeof AgentType;
    const dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
    if (!('request' in dispatcher.prototype)) Object.assign(dispatcher.prototype, require('undici/lib/api/index.js'));
    const buildConnector = require('undici/lib/core/connect.js') as typeof buildConnectorType;
    if (typeof agent === 'function' && typeof (agent.prototype as { request?: unknown }).request === 'function' && typeof buildConnector === 'function') return { Agent: agent, buildConnector };
  } catch {
    // fall through
  }
  const { Agent, buildConnector } = require('undici') as typeof import('undici');
  return { Agent, buildConnector };
}

/**
 * The same parts of undici as one file with a V8 code cache beside it (dist/src/undici.cjs, made by
 * scripts/bundle.mjs from the installed undici): 16 ms of CPU to load instead of 33 ms, and 30-60 ms of wall time
 * instead of 100-200 ms spent resolving its ~100 files, in every process that talks to a registry. Used only while
 * it was made from the undici installed beside it (its version); else null and the modules load one by one.
 */
function bundledUndici(require: NodeJS.Require): Undici | null {
  try {
    const file = fileURLToPath(new URL('../undici.cjs', import.meta.url));
    const made = JSON.parse(readFileSync(file + '.json', 'utf8')) as { version?: string };
    if (made.version !== (require('undici/package.json') as { version: string }).version) return null;
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(file + '.cache');
    } catch {
      /* compiles without */
    }
    const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
    const mod = { exports: {} as Partial<Undici> };
    script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
    const { Agent, buildConnector } = mod.exports;
    return typeof Agent === 'function' && typeof buildConnector === 'function' ? { Agent, buildConnector } : null;
  } catch {
    return null;
  }
}

/**
 * undici parses HTTP with llhttp compiled to WebAssembly. V8 compiles it first with its baseline compiler (Liftoff)
 * and then, as the parser gets hot, again with its optimising one (TurboFan): about 0.1 s of CPU for the one big
 * state-machine function, in every process that makes a request, for a parser that only ever reads headers and
 * chunk framing here. Liftoff alone parses those just as well. The flag is read when a module is compiled, and no
 * other WebAssembly runs in this process.
 */
function baselineWasm(require: NodeJS.Require): void {
  try {
    (require('node:v8') as typeof import('node:v8')).setFlagsFromString('--liftoff-only');
  } catch {
    /* a runtime without the flag: V8's default */
  }
}
const { Agent, buildConnector } = loadUndici();

export const USER_AGENT = 'ocislim/0.1 (+https://github.com/ocislim/ocislim)';

export interface TransportOptions {
  /** PEM file with extra CA certificates for TLS registries (NODE_EXTRA_CA_CERTS works too). */
  caFile?: string;
  /**
   * Retries per request for retryable failures (network errors, 408, 429, 5xx); the count starts again when a
   * request made progress (an upload or download moved the bytes it stands at). Default 4.
   */
  retries?: number;
  /**
   * Of those, how many may follow a timeout (no answer at all). Default 1: a registry that has not answered twice in
   * a row is down, not flaky, and each wait costs the whole timeout. A caller asking for more retries for a flaky
   * link sets it too.
   */
  timeoutRetries?: number;
  /** Each wait on the network, in ms: to connect, for the answer's headers, between two chunks of a body. Default 10 s. */
  timeoutMs?: number;
  /**
   * Wall-clock limit in ms for one exchange whose answer is read whole (ping, HEAD, POST, manifests, tokens, error
   * bodies): a server trickling bytes never trips the timeout. Default 2 × the timeout. Blob transfers have none.
   */
  deadlineMs?: number;
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
  /**
   * How far the request has got (e.g. the byte the registry's upload session stands at), read after beforeRetry: when
   * it grows, the retry budget starts again.
   */
  progress?: () => number;
  /** A blob transfer (streamed body either way): no deadline, only the idle timeout. Bodies given as streams are. */
  stream?: boolean;
  /** The server may take long to answer once the body is sent (a blob commit moves and hashes the blob): 6 × the timeout. */
  slowAnswer?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: URL;
  method?: string;
  /** The request's deadline, if it has one: an error while reading the body past it is a deadline failure. */
  deadline?: Deadline;
}

/** A wall-clock limit on one exchange, aborting it (headers and body) when it runs out. */
class Deadline {
  readonly controller = new AbortController();
  private timer: NodeJS.Timeout;
  expired = false;
  constructor(readonly ms: number) {
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(new Error('deadline'));
    }, ms);
    this.timer.unref();
  }
  clear(): void {
    clearTimeout(this.timer);
  }
}

const RETRY_STATUS = new Set([408, 429, 499, 500, 502, 503, 504, 522]);
const RETRY_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const MAX_REDIRECTS = 10;
/** Size caps: error bodies and tokens as ggcr reads them at most, manifests as distribution accepts them (4 MiB). */
export const MAX_ERROR_BODY = 64 * 1024;
export const MAX_TOKEN_BODY = 1024 * 1024;
export const MAX_MANIFEST_BODY = 4 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRIES = 4;
/**
 * The most bytes of response headers taken: Node's own HTTP client's limit, 16 KiB unless --max-http-header-size
 * (on the command line or in NODE_OPTIONS) sets another, which node:http then holds (loaded only then: the bundled
 * undici does not load it, scripts/bundle.mjs).
 */
function maxHeaderBytes(): number {
  const set = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('--max-http-header-size'));
  return set ? (createRequire(import.meta.url)('node:http') as { maxHeaderSize: number }).maxHeaderSize : 16 * 1024;
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads a response body up to `limit` bytes. Past the limit the stream is destroyed at once (the connection is
 * dropped, nothing more is read): `overflow: 'truncate'` keeps the first `limit` bytes (error bodies, shown in part),
 * `'fail'` throws a TooLargeError naming `what` (manifests, tokens). A declared Content-Length over a failing limit
 * fails before any byte is read. Network failures while reading become NetworkErrors naming the request.
 */
export async function readBody(res: HttpResponse, limit: number, what: string, overflow: 'truncate' | 'fail'): Promise<Buffer> {
  const where = `${res.url.origin}${res.url.pathname}`;
  const declared = Number(header(res, 'content-length') ?? NaN);
  if (overflow === 'fail' && declared > limit) {
    res.body.destroy();
    throw new TooLargeError(where, what, limit);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body) {
      const b = c as Buffer;
      if (n + b.length > limit) {
        res.body.destroy();
        if (overflow === 'fail') throw new TooLargeError(where, what, limit);
        chunks.push(b.subarray(0, limit - n));
        n = limit;
        break;
      }
      chunks.push(b);
      n += b.length;
    }
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    throw networkError(res.method ?? 'GET', where, e, 1, res.deadline);
  } finally {
    res.deadline?.clear();
  }
  return Buffer.concat(chunks);
}

/** Reads at most `limit` bytes of an error body, then drops the connection. */
export function readLimited(res: HttpResponse, limit = MAX_ERROR_BODY): Promise<Buffer> {
  return readBody(res, limit, 'error body', 'truncate');
}

function errCode(e: unknown): string | undefined {
  const x = e as { code?: string; cause?: { code?: string } };
  return x?.code ?? x?.cause?.code;
}

function failureOf(e: unknown, deadline?: Deadline): NetworkFailure {
  if (deadline?.expired) return 'deadline';
  const code = errCode(e);
  if (code && TIMEOUT_CODES.has(code)) return 'timeout';
  if (code && (/^ERR_SSL|^ERR_TLS|CERT|^DEPTH_ZERO|^SELF_SIGNED|^UNABLE_TO/.test(code))) return 'tls';
  return 'network';
}

function networkError(method: string, where: string, e: unknown, attempts: number, deadline?: Deadline, timeoutMs?: number): NetworkError {
  const failure = failureOf(e, deadline);
  const code = errCode(e) ?? (failure === 'network' ? (e as Error)?.message : undefined);
  return new NetworkError(method, where, failure, code, attempts, failure === 'deadline' ? deadline!.ms : failure === 'timeout' ? timeoutMs : undefined);
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
  /** Retries per request without progress. */
  readonly retries: number;
  readonly timeoutRetries: number;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  private backoff: number;
  private maxDelay: number;

  constructor(private readonly opts: TransportOptions = {}) {
    const caFile = opts.caFile ? { file: opts.caFile, pem: readCaFile(opts.caFile) } : null;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.deadlineMs = opts.deadlineMs ?? 2 * this.timeoutMs;
    this.retries = opts.retries ?? DEFAULT_RETRIES;
    this.timeoutRetries = Math.min(this.retries, opts.timeoutRetries ?? 1);
    const t = this.timeoutMs;
    const extra = (): Trusted[] => [...(caFile ? [caFile] : []), ...extraFromEnv(!!caFile, opts.log)];
    // (maxHeaderSize given: the bundled undici does not read its default from node:http)
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 8, headersTimeout: t, bodyTimeout: t, maxHeaderSize: maxHeaderBytes(), connect: connector(buildConnector, t, extra) });
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

  /**
   * One request with redirects and retries. The caller must consume or dump the response body. Network failures,
   * 408, 429 and 5xx are retried with backoff, up to `retries` times without progress (a timeout only once); after
   * the last retry a retryable status is returned as it is, a network failure thrown as a NetworkError.
   */
  async request(first: HttpRequest): Promise<HttpResponse> {
    const retries = first.retry === false ? 0 : this.retries;
    let req = first;
    let attempts = 0;
    let failures = 0;
    let timeouts = 0;
    let progress = first.progress?.() ?? 0;
    for (;;) {
      attempts++;
      let res: HttpResponse | null = null;
      let failed: unknown = null;
      const deadline = req.stream || (req.body !== undefined && !Buffer.isBuffer(req.body)) ? undefined : new Deadline(this.deadlineMs);
      try {
        res = await this.followRedirects(req, deadline);
        if (!RETRY_STATUS.has(res.status)) return res;
      } catch (e) {
        deadline?.clear();
        if (e instanceof RegistryError) throw e;
        const failure = failureOf(e, deadline);
        const code = errCode(e);
        const retryable = failure === 'timeout' || (failure === 'network' && !!code && RETRY_CODES.has(code));
        if (!retryable) throw networkError(req.method, `${req.url.origin}${req.url.pathname}`, e, attempts, deadline, this.timeoutMs);
        if (failure === 'timeout') timeouts++;
        failed = e;
      }
      failures++;
      // Where the request stands now (an upload asks the registry): progress restarts the budget.
      let next: HttpRequest | null = null;
      const timeoutBudget = first.retry === false ? 0 : this.timeoutRetries;
      if (first.beforeRetry && (first.progress || (failures <= retries && timeouts <= timeoutBudget))) {
        next = await first.beforeRetry();
        const now = first.progress?.() ?? 0;
        if (now > progress) {
          progress = now;
          failures = 1;
          timeouts = 0;
        }
      }
      if (failures > retries || timeouts > timeoutBudget) {
        if (res) return res;
        throw networkError(req.method, `${req.url.origin}${req.url.pathname}`, failed, attempts, undefined, this.timeoutMs);
      }
      const ra = res ? retryAfterMs(header(res, 'retry-after')) : null;
      if (res) await res.body.dump().catch(() => {});
      deadline?.clear();
      const what = res ? `HTTP ${res.status}` : errCode(failed) ?? failureOf(failed);
      const d = this.delay(failures - 1, ra);
      this.opts.log?.info(`retry ${attempts} in ${Math.round(d)} ms: ${req.method} ${req.url.host}${req.url.pathname}: ${what}`);
      if (next) req = next;
      await sleep(d);
    }
  }

  private async followRedirects(req: HttpRequest, deadline?: Deadline): Promise<HttpResponse> {
    let url = req.url;
    let method = req.method;
    let headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(req.headers ?? {}) };
    let body = req.body;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const b = body === undefined ? undefined : Buffer.isBuffer(body) ? body : body();
      const r = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body: b,
        ...(deadline ? { signal: deadline.controller.signal } : {}),
        ...(req.slowAnswer ? { headersTimeout: 6 * this.timeoutMs } : {}),
      });
      const res: HttpResponse = { status: r.statusCode, headers: r.headers, body: r.body, url, method, ...(deadline ? { deadline } : {}) };
      if (deadline) r.body.once('close', () => deadline.clear());
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
