import { Log, silentLog } from '../log.js';
import { Readable } from 'node:stream';
import { Authenticator } from './auth.js';
import { Credential } from './credentials.js';
import { anonymous, Keychain } from './keychain.js';
import { CredentialsRefusedError, NetworkError, RegistryError } from './errors.js';
import type { UploadSession } from './push-state.js';
import { apiHost, isLoopback } from './reference.js';
import { BodySource, header, HttpRequest, HttpResponse, MAX_MANIFEST_BODY, readBody, readLimited, Transport, TransportOptions } from './transport.js';
import { Descriptor } from '../oci/image.js';
import { skipTo } from '../oci/cache.js';
import { sha256 } from '../oci/digest.js';
import { MT } from '../oci/mediatypes.js';

export interface ClientOptions extends TransportOptions {
  /** Allow plain http (and skip TLS verification of nothing: http only) for a non-loopback registry. */
  insecure?: boolean;
  /** Where credentials come from (asked once, on the first request); anonymous without one. */
  keychain?: Keychain;
}

export const MANIFEST_ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerManifestList].join(', ');

export function scopeFor(repo: string, actions: string): string {
  return `repository:${repo}:${actions}`;
}

/** The registry's error body in one line, and its first error code when it sent the spec's JSON. */
async function explainError(res: HttpResponse): Promise<{ text: string; code?: string }> {
  const raw = await readLimited(res);
  try {
    const j = JSON.parse(raw.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    if (j.errors?.length) return { text: j.errors.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`.trim()).join('; '), code: j.errors[0].code };
  } catch {
    /* not JSON */
  }
  const text = raw.toString('utf8').trim().split('\n')[0]?.slice(0, 200);
  return { text: `HTTP ${res.status}${text ? ` ${text}` : ''}` };
}

async function describe(res: HttpResponse): Promise<string> {
  return (await explainError(res)).text;
}

/** A network failure over http that a TLS server could cause (it drops a plain request): worth trying https. */
function mayBeTls(e: unknown): boolean {
  return e instanceof NetworkError && e.failure === 'network' && ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(e.errno ?? '');
}

/**
 * One registry: ping, authentication and the distribution API calls ocislim needs. Owns its transport (one
 * keep-alive pool); call close() when done.
 */
export class RegistryClient {
  readonly transport: Transport;
  private base: URL | null = null;
  private auth: Authenticator | null = null;
  private pinging: Promise<void> | null = null;
  readonly host: string;
  /** Where this client's retries, recoveries and transfers are reported. */
  readonly log: Log;

  constructor(
    readonly registry: string,
    private readonly opts: ClientOptions = {},
  ) {
    this.transport = new Transport(opts);
    this.host = apiHost(registry);
    this.log = opts.log ?? silentLog;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private get plainHttpAllowed(): boolean {
    return !!this.opts.insecure || isLoopback(this.host);
  }

  /** GET /v2/: learns the scheme (https, or http where allowed) and the auth challenge. */
  ping(): Promise<void> {
    if (!this.pinging) this.pinging = this.doPing();
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    // Where plain http is allowed (loopback, --insecure), try it first: a TLS server answers a plain request with
    // 400 (or drops the connection), and then https is used. Nothing secret is sent on the ping.
    const schemes = this.plainHttpAllowed ? ['http', 'https'] : ['https'];
    let httpErr: unknown = null;
    for (const scheme of schemes) {
      const url = new URL(`${scheme}://${this.host}/v2/`);
      let res: HttpResponse;
      try {
        // https after an http failure is a guess: one attempt.
        res = await this.transport.request({ method: 'GET', url, ...(httpErr ? { retry: false } : {}) });
      } catch (e) {
        if (scheme === 'http' && schemes.length > 1 && mayBeTls(e)) {
          httpErr = e;
          continue;
        }
        // When https was only a guess after http failed, the http failure explains, unless https reached a TLS server
        // (a certificate problem); a server that does not speak TLS (wrong version number) was the http one.
        const tlsServer = e instanceof NetworkError && e.failure === 'tls' && !/WRONG_VERSION|HTTP_REQUEST|PACKET_LENGTH|EPROTO/.test(e.errno ?? '');
        const shown = httpErr && !tlsServer ? httpErr : e;
        // (an answer whose headers are over the limit came from the registry: it was reached)
        const reached = shown instanceof NetworkError && shown.errno === 'UND_ERR_HEADERS_OVERFLOW';
        if (shown instanceof RegistryError) throw new RegistryError(`${this.registry}: ${reached ? 'its answer to' : 'cannot reach the registry:'} ${shown.message}`, shown.status, shown.code);
        throw shown;
      }
      if (scheme === 'http' && schemes.length > 1 && res.status === 400) {
        await res.body.dump();
        continue;
      }
      await res.body.dump();
      if (res.status !== 200 && res.status !== 401) throw new RegistryError(`${this.registry}: ${url.origin}/v2/ answered HTTP ${res.status}; is this a registry?`, res.status);
      this.base = new URL(`${scheme}://${this.host}`);
      const cred = (this.cred = await (this.opts.keychain ?? anonymous).resolve(this.registry));
      this.auth = new Authenticator(this.transport, this.registry, cred, !!this.opts.insecure);
      if (res.status === 401) this.auth.noteChallenge(res);
      return;
    }
  }

  /** The credentials in use (from the keychain, on the ping); null when anonymous. */
  private cred: Credential | null = null;

  /** A path of this registry as a URL: known once the ping learned the scheme (await ping() first). */
  url(path: string): URL {
    if (!this.base) throw new Error(`registry client for ${this.registry}: a URL asked for before the ping`);
    return new URL(path, this.base);
  }

  /** An authenticated request: on 401 the token is refreshed once with the scopes the registry asked for. */
  async request(req: Omit<HttpRequest, 'url'> & { url: URL | string }, scopes: string[]): Promise<HttpResponse> {
    await this.ping();
    const url = typeof req.url === 'string' ? this.url(req.url) : req.url;
    let sc = scopes;
    for (let attempt = 0; attempt < 2; attempt++) {
      const authz = await this.auth!.header(sc);
      const headers = { ...(req.headers ?? {}) };
      // Only the registry's own origin gets the credentials (upload Locations may point elsewhere).
      if (authz && url.origin === this.base!.origin) headers.authorization = authz;
      const res = await this.transport.request({ ...req, url, headers });
      if (res.status !== 401 || attempt === 1 || (!this.auth!.scheme && !res.headers['www-authenticate'])) return res;
      if (!this.auth!.scheme) this.auth!.noteChallenge(res);
      sc = this.auth!.invalidate(sc, res);
      await res.body.dump();
    }
    throw new Error('unreachable');
  }

  async fail(res: HttpResponse, what: string): Promise<never> {
    if (res.status === 401 && this.auth?.scheme) {
      // Refused after a fresh token or Basic header: the credentials (or their absence) are the problem.
      await res.body.dump().catch(() => {});
      const cred = this.cred;
      const has = !!(cred && (cred.password !== undefined || cred.identityToken || cred.registryToken));
      throw new CredentialsRefusedError(this.registry, has, cred?.source, what, 401);
    }
    const { text, code } = await explainError(res);
    const msg = res.status === 401 || res.status === 403 ? `${res.status === 401 ? 'unauthorized' : 'denied'} (${text})` : text;
    throw new RegistryError(`${this.registry}: ${what}: ${msg}`, res.status, code);
  }

  /** HEAD a blob: its size when present, null when absent. */
  async blobSize(repo: string, digest: string, forPush = false): Promise<number | null> {
    // During a push, ask with the push scope: one token serves every request of the push.
    const res = await this.request({ method: 'HEAD', url: `/v2/${repo}/blobs/${digest}` }, [scopeFor(repo, forPush ? 'pull,push' : 'pull')]);
    await res.body.dump();
    if (res.status === 200) return Number(header(res, 'content-length') ?? -1);
    if (res.status === 404) return null;
    return this.fail(res, `checking blob ${digest} in ${repo}`);
  }

  /**
   * HEAD a manifest by tag or digest: the digest the registry serves under `ref`, or null when it has none, does not
   * say which (no Docker-Content-Digest), or answers anything but 200 (the caller then takes the long way, whose
   * requests report errors properly).
   */
  async manifestDigest(repo: string, ref: string, forPush = false): Promise<string | null> {
    const res = await this.request({ method: 'HEAD', url: `/v2/${repo}/manifests/${ref}`, headers: { accept: MANIFEST_ACCEPT } }, [scopeFor(repo, forPush ? 'pull,push' : 'pull')]);
    await res.body.dump();
    if (res.status !== 200) return null;
    const d = header(res, 'docker-content-digest');
    if (d && ref.startsWith('sha256:') && d !== ref) return null;
    return d ?? null;
  }

  /** Tries a cross-repository mount; true when mounted (201). Any failure means "upload it instead". */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    await this.ping();
    const u = this.url(`/v2/${repo}/blobs/uploads/`);
    u.searchParams.set('mount', digest);
    u.searchParams.set('from', from);
    let res: HttpResponse;
    try {
      res = await this.request({ method: 'POST', url: u, headers: { 'content-length': '0' }, body: Buffer.alloc(0) }, [scopeFor(repo, 'pull,push'), scopeFor(from, 'pull')]);
    } catch {
      return false;
    }
    await res.body.dump();
    if (res.status === 201) {
      const got = header(res, 'docker-content-digest');
      return !got || got === digest;
    }
    if (res.status === 202) {
      // Not mounted, but a session was opened: cancel it (failures ignored), the upload opens its own.
      const loc = header(res, 'location');
      if (loc) await this.request({ method: 'DELETE', url: new URL(loc, u), retry: false }, [scopeFor(repo, 'pull,push')]).then((r) => r.body.dump(), () => {});
    }
    return false;
  }

  /**
   * Uploads a blob: POST a session, one streamed PATCH with the whole blob (what docker, ggcr and c/image do), then
   * PUT ?digest=; a blob of at most MONOLITHIC_MAX bytes goes in the PUT itself. Falls back to chunked PATCHes when
   * the registry limits chunk size (416), and to a monolithic PUT when it refuses PATCH.
   */
  async uploadBlob(repo: string, d: Descriptor, open: () => Readable, resumable?: ResumableUpload): Promise<void> {
    const scopes = [scopeFor(repo, 'pull,push')];
    if (resumable && d.size >= RESUMABLE_MIN) return this.uploadResumable(repo, d, open, resumable, scopes);
    let loc = await this.startUpload(repo, scopes);
    // A small blob (a config, an SBOM, a small layer) goes in the PUT that ends the session: the spec's monolithic
    // upload (POST, then PUT with the body), as containerd sends every blob; one round trip fewer than PATCH + PUT.
    if (d.size <= MONOLITHIC_MAX) return this.commit(repo, loc.url, d, scopes, open, undefined, true);
    const octet = { 'content-type': 'application/octet-stream' };
    // A broken PATCH resumes where the registry says the session stands (GET status: 204 and Range), sending only
    // the rest with a Content-Range; without a usable status it is sent again whole.
    let at = loc.url;
    const patchFrom = (offset: number, url: URL, auth: Record<string, string>): HttpRequest => ({
      method: 'PATCH',
      url,
      headers: { ...octet, ...auth, 'content-length': String(d.size - offset), ...(offset && offset < d.size ? { 'content-range': `${offset}-${d.size - 1}` } : {}) },
      body: offset ? () => Readable.from(readRange(open, offset, d.size)) : open,
    });
    let stands = 0;
    const beforeRetry = async (): Promise<HttpRequest | null> => {
      const st = await this.uploadStatus(at, scopes).catch(() => null);
      // "0-0" is also what an empty session reports, so under two bytes the blob starts again.
      if (st && st.next > 1 && st.next <= d.size) {
        at = st.url;
        stands = Math.max(stands, st.next);
        this.opts.log?.info(`${d.digest.slice(7, 19)}: resuming the upload at byte ${st.next}`);
        return patchFrom(st.next, at, await this.authFor(at, scopes));
      }
      // distribution 2.8 cancels a session whose PATCH broke (404 on GET): start a new one and send the whole blob.
      if (!st) at = (await this.startUpload(repo, scopes)).url;
      return patchFrom(0, at, await this.authFor(at, scopes));
    };
    // The furthest the session has stood: an attempt that moved it on restarts the retry budget.
    const progress = () => stands;
    const patch = await this.request({ method: 'PATCH', url: loc.url, headers: { ...octet, 'content-length': String(d.size) }, body: open, beforeRetry, progress, slowAnswer: true }, scopes);
    if (patch.status === 202 || patch.status === 201 || patch.status === 204) {
      await patch.body.dump();
      const next = header(patch, 'location');
      if (next) loc = { url: new URL(next, loc.url) };
      return this.commit(repo, loc.url, d, scopes, Buffer.alloc(0));
    }
    if (patch.status === 416 || patch.status === 413) {
      await patch.body.dump();
      const fresh = await this.startUpload(repo, scopes);
      return this.uploadChunked(repo, d, open, fresh.url, fresh.minChunk, scopes);
    }
    if (patch.status === 405 || patch.status === 501 || patch.status === 404) {
      await patch.body.dump();
      const fresh = await this.startUpload(repo, scopes);
      return this.commit(repo, fresh.url, d, scopes, open, undefined, true);
    }
    return this.fail(patch, `uploading blob ${d.digest} to ${repo}`);
  }

  /**
   * A large blob in acknowledged chunks, the session's URL and offset saved after each: a process killed mid-upload
   * leaves a session the next process continues from the last acknowledged chunk (a PATCH cut in the middle is lost
   * whole on distribution 2.8, which cancels the session; a chunk that got its 202 is kept).
   */
  private async uploadResumable(repo: string, d: Descriptor, open: () => Readable, r: ResumableUpload, scopes: string[]): Promise<void> {
    let url: URL | null = null;
    let offset = 0;
    const saved = r.session.load();
    if (saved) {
      const st = await this.uploadStatus(new URL(saved.url), scopes).catch(() => null);
      // "0-0" is also what an empty session reports: under two bytes, start afresh.
      if (st && st.next > 1 && st.next <= d.size) {
        url = st.url;
        offset = st.next;
        this.opts.log?.info(`${d.digest.slice(7, 19)}: resuming an earlier upload at byte ${offset} of ${d.size}`);
      } else this.opts.log?.info(`${d.digest.slice(7, 19)}: the registry no longer has the earlier upload session; starting again`);
    }
    let restarted = false;
    const fresh = async () => {
      url = (await this.startUpload(repo, scopes)).url;
      offset = 0;
      r.session.save(url.href, 0);
    };
    if (!url) await fresh();
    const range = (from: number, to: number) => () => (r.openRange ? r.openRange(from, to) : Readable.from(readRange(open, from, to)));
    while (offset < d.size) {
      const end = Math.min(offset + RESUMABLE_CHUNK, d.size);
      let res: HttpResponse;
      try {
        res = await this.request(
          { method: 'PATCH', url: url!, headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset), 'content-range': `${offset}-${end - 1}` }, body: range(offset, end), retry: false, stream: true },
          scopes,
        );
      } catch (e) {
        // Where does the session stand now? Continue there, or once from a new session when it is gone.
        const st = await this.uploadStatus(url!, scopes).catch(() => null);
        if (st && st.next > 1 && st.next <= d.size && st.next >= offset) {
          url = st.url;
          offset = st.next;
          continue;
        }
        if (restarted) throw e;
        restarted = true;
        this.opts.log?.info(`${d.digest.slice(7, 19)}: ${(e as Error).message}; starting the upload again`);
        await fresh();
        continue;
      }
      if (res.status !== 202 && res.status !== 204 && res.status !== 201) {
        if (res.status === 404 && !restarted) {
          // The saved session expired on the registry: a new one.
          await res.body.dump();
          restarted = true;
          await fresh();
          continue;
        }
        return this.fail(res, `uploading a chunk of ${d.digest} to ${repo}`);
      }
      await res.body.dump();
      const next = header(res, 'location');
      if (next) url = new URL(next, url!);
      offset = end;
      r.session.save(url!.href, offset);
    }
    await this.commit(repo, url!, d, scopes, Buffer.alloc(0));
    r.session.clear();
  }

  /** Where an upload session stands: the next byte it expects (from Range "0-N") and its current Location. */
  private async uploadStatus(at: URL, scopes: string[]): Promise<{ next: number; url: URL } | null> {
    const res = await this.request({ method: 'GET', url: at, retry: false }, scopes);
    await res.body.dump();
    if (res.status !== 204) return null;
    const range = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
    const loc = header(res, 'location');
    return { next: range ? Number(range[1]) + 1 : 0, url: loc ? new URL(loc, at) : at };
  }

  /** The Authorization header for a request the transport sends by itself (a retry), for the registry's origin only. */
  private async authFor(url: URL, scopes: string[]): Promise<Record<string, string>> {
    const authz = await this.auth!.header(scopes);
    return authz && url.origin === this.base!.origin ? { authorization: authz } : {};
  }

  /** POST a new upload session. */
  async startUpload(repo: string, scopes: string[]): Promise<{ url: URL; minChunk?: number }> {
    await this.ping();
    const u = this.url(`/v2/${repo}/blobs/uploads/`);
    const res = await this.request({ method: 'POST', url: u, headers: { 'content-length': '0' }, body: Buffer.alloc(0) }, scopes);
    await res.body.dump().catch(() => {});
    if (res.status !== 202) return this.fail(res, `starting an upload to ${repo}`);
    const loc = header(res, 'location');
    if (!loc) throw new RegistryError(`${this.registry}: upload to ${repo} started without a Location`);
    const min = Number(header(res, 'oci-chunk-min-length') ?? 0);
    return { url: new URL(loc, res.url), ...(min > 0 ? { minChunk: min } : {}) };
  }

  /**
   * PUT ?digest=: ends a session (with the rest of the blob as its body, or none). `whole`: the body is the whole blob
   * (a monolithic upload), so a PUT that broke is sent again in a new session: a registry may drop a session whose
   * request broke midway (distribution 2.8 does, and then answers 404 for it).
   */
  async commit(repo: string, at: URL, d: Descriptor, scopes: string[], body: BodySource, range?: string, whole = false): Promise<void> {
    const withDigest = (url: URL) => {
      const u = new URL(url);
      u.searchParams.set('digest', d.digest);
      return u;
    };
    const size = Buffer.isBuffer(body) ? body.length : d.size;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(size) };
    if (range) headers['content-range'] = range;
    const again = async (): Promise<HttpRequest> => {
      const fresh = (await this.startUpload(repo, scopes)).url;
      return { method: 'PUT', url: withDigest(fresh), headers: { ...headers, ...(await this.authFor(fresh, scopes)) }, body, slowAnswer: true };
    };
    const res = await this.request({ method: 'PUT', url: withDigest(at), headers, body, slowAnswer: true, ...(whole ? { beforeRetry: again } : {}) }, scopes);
    if (res.status !== 201 && res.status !== 204) return this.fail(res, `committing blob ${d.digest} to ${repo}`);
    await res.body.dump();
    const got = header(res, 'docker-content-digest');
    if (got && got !== d.digest) throw new RegistryError(`${this.registry}: stored blob ${d.digest} in ${repo} under digest ${got}`);
  }

  /** Chunked upload: PATCHes with Content-Range (start-end, inclusive), the last chunk in the PUT. */
  private async uploadChunked(repo: string, d: Descriptor, open: () => Readable, start: URL, minChunk: number | undefined, scopes: string[]): Promise<void> {
    const chunk = Math.max(minChunk ?? 0, 4 * 1024 * 1024);
    let url = start;
    let offset = 0;
    const slice = (from: number, to: number) => () => Readable.from(readRange(open, from, to));
    while (d.size - offset > chunk) {
      const end = offset + chunk;
      const res = await this.request(
        { method: 'PATCH', url, headers: { 'content-type': 'application/octet-stream', 'content-length': String(chunk), 'content-range': `${offset}-${end - 1}` }, body: slice(offset, end) },
        scopes,
      );
      if (res.status !== 202 && res.status !== 201 && res.status !== 204) return this.fail(res, `uploading a chunk of ${d.digest} to ${repo}`);
      await res.body.dump();
      const next = header(res, 'location');
      if (next) url = new URL(next, url);
      // Track the offset ourselves: some registries report a stale Range.
      offset = end;
    }
    const last = d.size - offset;
    const u = new URL(url);
    u.searchParams.set('digest', d.digest);
    const res = await this.request(
      {
        method: 'PUT',
        url: u,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(last), ...(last > 0 ? { 'content-range': `${offset}-${d.size - 1}` } : {}) },
        body: slice(offset, d.size),
      },
      scopes,
    );
    if (res.status !== 201 && res.status !== 204) return this.fail(res, `committing blob ${d.digest} to ${repo}`);
    await res.body.dump();
  }

  /** PUT a manifest under a tag or digest; the registry's Docker-Content-Digest must match ours. */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string> {
    return (await this.putManifestWithSubject(repo, ref, bytes, mediaType)).digest;
  }

  /**
   * putManifest, also returning the OCI-Subject header: a registry with the referrers API sends it when the manifest
   * has a subject (distribution-spec v1.1 "Pushing Manifests with Subject"); without it the client keeps the tag.
   */
  async putManifestWithSubject(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; ociSubject?: string }> {
    const res = await this.request(
      { method: 'PUT', url: `/v2/${repo}/manifests/${ref}`, headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: bytes },
      [scopeFor(repo, 'pull,push')],
    );
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) return this.fail(res, `putting the manifest ${repo}:${ref}`);
    await res.body.dump();
    const want = sha256(bytes);
    const got = header(res, 'docker-content-digest');
    if (got && got !== want) throw new RegistryError(`${this.registry}: the registry stored manifest ${repo}:${ref} as ${got}, but it is ${want}`);
    return { digest: want, ociSubject: header(res, 'oci-subject') };
  }

  /**
   * GET /v2/REPO/referrers/DIGEST: the image index of the manifests whose subject is DIGEST, or null when the
   * registry has no referrers API (it answers 404, as distribution 2.8 does; the spec then says use the tag schema).
   */
  async referrers(repo: string, digest: string, artifactType?: string): Promise<{ manifests: (Descriptor & { artifactType?: string })[] } | null> {
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.request({ method: 'GET', url: `/v2/${repo}/referrers/${digest}${q}`, headers: { accept: MT.ociIndex } }, [scopeFor(repo, 'pull')]);
    if (res.status === 404 || res.status === 405 || res.status === 400) {
      await res.body.dump();
      return null;
    }
    if (res.status !== 200) return this.fail(res, `listing the referrers of ${repo}@${digest}`);
    const bytes = await readBody(res, MAX_MANIFEST_BODY, 'referrers index', 'fail');
    let index: { manifests?: (Descriptor & { artifactType?: string })[] };
    try {
      index = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new RegistryError(`${this.registry}/${repo}: the referrers of ${digest} are not JSON`);
    }
    const all = Array.isArray(index.manifests) ? index.manifests : [];
    // A registry may ignore the filter (no OCI-Filters-Applied): filter here too.
    return { manifests: artifactType ? all.filter((m) => m.artifactType === artifactType) : all };
  }

  /** GET a manifest (any of the four types), verified against the digest when asked by digest. */
  async getManifest(repo: string, ref: string): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    const res = await this.request({ method: 'GET', url: `/v2/${repo}/manifests/${ref}`, headers: { accept: MANIFEST_ACCEPT } }, [scopeFor(repo, 'pull')]);
    if (res.status === 404) {
      const why = await describe(res);
      throw new RegistryError(`${this.registry}/${repo}:${ref}: not found (${why})`, 404);
    }
    if (res.status !== 200) return this.fail(res, `getting the manifest ${repo}:${ref}`);
    const bytes = await readBody(res, MAX_MANIFEST_BODY, 'manifest', 'fail');
    const digest = sha256(bytes);
    if (ref.startsWith('sha256:') && digest !== ref) throw new RegistryError(`${this.registry}/${repo}@${ref}: the registry sent a manifest with digest ${digest}`);
    let mediaType = (header(res, 'content-type') ?? '').split(';')[0].trim();
    try {
      const m = JSON.parse(bytes.toString('utf8')) as { mediaType?: string };
      if (m.mediaType) mediaType = m.mediaType;
    } catch {
      throw new RegistryError(`${this.registry}/${repo}:${ref}: the manifest is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  /**
   * GET a blob as a stream (redirects to other hosts followed without credentials), from `offset` on with a Range
   * request. `skip` is how many leading bytes of the stream to drop: a registry may ignore the Range and send 200.
   */
  async getBlob(repo: string, digest: string, offset = 0): Promise<{ stream: Readable; skip: number }> {
    const headers: Record<string, string> = offset ? { range: `bytes=${offset}-` } : {};
    const res = await this.request({ method: 'GET', url: `/v2/${repo}/blobs/${digest}`, headers, stream: true }, [scopeFor(repo, 'pull')]);
    if (res.status === 200) return { stream: res.body, skip: offset };
    if (res.status === 206 && offset) {
      const start = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')?.[1];
      if (start !== undefined && Number(start) === offset) return { stream: res.body, skip: 0 };
      await res.body.dump();
      throw new RegistryError(`${this.registry}: getting blob ${digest} from ${repo}: asked for bytes from ${offset}, got Content-Range "${header(res, 'content-range') ?? ''}"`);
    }
    return this.fail(res, `getting blob ${digest} from ${repo}`);
  }

  /**
   * A blob's bytes, resumed with Range requests when the connection breaks mid-body (each break counts against the
   * transport's attempts). The caller verifies size and digest.
   */
  async *blobBytes(repo: string, digest: string): AsyncGenerator<Buffer> {
    let offset = 0;
    let lastBreakAt = 0;
    let stalls = 0;
    for (let breaks = 0; ; ) {
      const { stream, skip } = await this.getBlob(repo, digest, offset);
      let drop = skip;
      try {
        for await (const c of stream) {
          let chunk = c as Buffer;
          if (drop) {
            const n = Math.min(drop, chunk.length);
            chunk = chunk.subarray(n);
            drop -= n;
          }
          if (!chunk.length) continue;
          offset += chunk.length;
          yield chunk;
        }
        return;
      } catch (e) {
        if (e instanceof RegistryError && !(e instanceof NetworkError)) throw e;
        // A break after bytes arrived is progress: the budget starts again. A stall (the idle timeout) is retried
        // once without progress, as the transport does for requests.
        if (offset > lastBreakAt) breaks = stalls = 0;
        lastBreakAt = offset;
        if ((e as NodeJS.ErrnoException).code === 'UND_ERR_BODY_TIMEOUT') stalls++;
        if (++breaks > this.transport.retries || stalls > this.transport.timeoutRetries) {
          const code = (e as NodeJS.ErrnoException).code;
          const why = e instanceof NetworkError ? e.message : code === 'UND_ERR_BODY_TIMEOUT' ? `no data for ${this.transport.timeoutMs / 1000} s` : code ?? (e as Error).message;
          throw new RegistryError(`${this.registry}: getting blob ${digest} from ${repo}: ${why}${breaks > 1 ? ` (after ${breaks} broken connections)` : ''}`);
        }
        this.opts.log?.info(`${digest.slice(7, 19)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; resuming the download at byte ${offset}`);
      }
    }
  }
}

/** Blobs at least this large are uploaded in acknowledged chunks that a later process can resume from. */
export const RESUMABLE_MIN = 32 * 1024 * 1024;
/** Blobs up to this size are uploaded in one PUT after the POST (uploadBlob); larger ones PATCH, then PUT. */
export const MONOLITHIC_MAX = 64 * 1024;
const RESUMABLE_CHUNK = 16 * 1024 * 1024;

/** How a large upload survives the process: where its session is kept, and a way to read a range of the blob. */
export interface ResumableUpload {
  session: UploadSession;
  /** Bytes [start, end) of the blob, without reading what comes before (a file); else the stream is skipped through. */
  openRange?: (start: number, end: number) => Readable;
}

/** The bytes [from, to) of a stream that is opened again from the start, when first read. */
async function* readRange(open: () => Readable, from: number, to: number): AsyncGenerator<Buffer> {
  yield* skipTo(open(), from, to);
}
