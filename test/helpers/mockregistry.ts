import { createHash } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';

/** Switches for behaviour of registries other than distribution 2.8 (see the registry reference, section 7). */
export interface Quirks {
  /** ECR: PATCH answers 201 instead of 202. */
  patch201?: boolean;
  /** GHCR: a PATCH body larger than this many bytes gets 416. */
  maxChunk?: number;
  /** Location form in upload responses ("other": absolute, on a second origin that takes no credentials). */
  location?: 'absolute' | 'relative' | 'other';
  /** Basic auth required; the challenge comes only on /v2/ (GCR sends 401 without WWW-Authenticate elsewhere). */
  basicAuth?: { user: string; password: string; challengeOnlyOnPing?: boolean };
  /** The first N requests (after the ping) get 429 with this Retry-After value. */
  rateLimit?: { count: number; retryAfter: string };
  /** The first N PATCH/PUT requests get 503. */
  burst5xx?: number;
  /** The first PATCH has its connection reset after some of the body. */
  resetFirstPatch?: boolean;
  /** The first PATCH is cut after this many bytes, which the session keeps (GET on the session reports them). */
  cutFirstPatchKeeping?: number;
  /** Every PATCH is cut after this many bytes, which the session keeps: a long flaky link that still moves data. */
  cutEveryPatchKeeping?: number;
  /** A PATCH whose connection breaks keeps the bytes that arrived (GET on the session reports them), as registries that write uploads through do; distribution 2.8 cancels the session instead. */
  keepBrokenPatch?: boolean;
  /** Blob GETs answer 307 to this origin (which must not receive Authorization). */
  redirectBlobsTo?: string;
  /** Manifest PUT answers with a wrong Docker-Content-Digest. */
  wrongManifestDigest?: boolean;
  /** OCI manifests refused the way OpenShift (acceptschema2=false), old Quay or ECR do it. */
  refuseOci?: 'MANIFEST_INVALID' | 'TAG_INVALID' | 'ecr';
  /** Responses carry these Warning headers (the spec's 299 form). */
  warnings?: string[];
  /** The first PUT with a body has its connection reset after some of the body, and its session dropped (as distribution 2.8 drops a session whose request broke). */
  resetFirstPut?: boolean;
  /** A PUT that ends an upload session with no body of its own is answered this many ms late (a registry slow to move a large upload into place). */
  holdEmptyCommitsMs?: number;
}

export interface MockRegistry {
  host: string;
  origin: string;
  blobs: Map<string, Buffer>;
  manifests: Map<string, { body: Buffer; type: string }>;
  /** Every request as it arrived: `digest` is the ?digest= of an upload's PUT; `at` is the arrival time (performance.now()). */
  requests: { method: string; path: string; auth: boolean; other?: boolean; digest?: string; at: number }[];
  /** When each upload's PUT was answered (performance.now()), by digest. */
  committed: Map<string, number>;
  /** Origin of the second listener (location: "other"). */
  otherOrigin?: string;
  quirks: Quirks;
  close: () => Promise<void>;
}

function digestOf(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

function read(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c: Buffer[] = [];
    req.on('data', (d) => c.push(d));
    req.on('end', () => resolve(Buffer.concat(c)));
    req.on('error', reject);
  });
}

/** A small in-memory distribution-API server on 127.0.0.1 for behaviour the real registry cannot show. */
export function startMockRegistry(quirks: Quirks = {}): Promise<MockRegistry> {
  const uploads = new Map<string, Buffer>();
  let n = 0;
  let rateLeft = quirks.rateLimit?.count ?? 0;
  let burstLeft = quirks.burst5xx ?? 0;
  let resetDone = false;
  let putResetDone = false;
  let cutDone = false;
  const m: MockRegistry = { host: '', origin: '', blobs: new Map(), manifests: new Map(), requests: [], committed: new Map(), quirks, close: async () => {} };
  const send = (res: ServerResponse, status: number, headers: Record<string, string> = {}, body = '') => {
    if (quirks.warnings) res.setHeader('warning', quirks.warnings);
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const err = (res: ServerResponse, status: number, code: string, extra: Record<string, string> = {}) =>
    send(res, status, { 'content-type': 'application/json', ...extra }, JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] }));
  const loc = (path: string) => (quirks.location === 'relative' ? path : quirks.location === 'other' && path.includes('/uploads/') ? `${m.otherOrigin}${path}` : `${m.origin}${path}`);

  const handler = (other: boolean) => async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', m.origin);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    m.requests.push({ method, path, auth: !!req.headers.authorization, other, at: performance.now(), ...(url.searchParams.get('digest') ? { digest: url.searchParams.get('digest')! } : {}) });
    const ba = quirks.basicAuth;
    // The other origin stands for a storage host with signed URLs: it takes no credentials.
    if (other && req.headers.authorization) {
      await read(req);
      return err(res, 400, 'UNSUPPORTED');
    }
    if (ba && !other) {
      const good = req.headers.authorization === 'Basic ' + Buffer.from(`${ba.user}:${ba.password}`).toString('base64');
      if (!good) {
        const challenge: Record<string, string> = path === '/v2/' || !ba.challengeOnlyOnPing ? { 'www-authenticate': 'Basic realm="mock"' } : {};
        await read(req);
        return err(res, 401, 'UNAUTHORIZED', challenge);
      }
    }
    if (path === '/v2/') return send(res, 200, {}, '{}');
    if (rateLeft > 0) {
      rateLeft--;
      await read(req);
      return err(res, 429, 'TOOMANYREQUESTS', { 'retry-after': quirks.rateLimit!.retryAfter });
    }
    if (burstLeft > 0 && (method === 'PATCH' || method === 'PUT')) {
      burstLeft--;
      await read(req);
      return err(res, 503, 'UNAVAILABLE');
    }
    let mm = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path);
    if (mm && (method === 'HEAD' || method === 'GET')) {
      const b = m.blobs.get(mm[2]);
      if (!b) return err(res, 404, 'BLOB_UNKNOWN');
      if (method === 'GET' && quirks.redirectBlobsTo) return send(res, 307, { location: `${quirks.redirectBlobsTo}/blob/${mm[2]}` });
      if (method === 'HEAD') {
        res.writeHead(200, { 'content-length': String(b.length), 'docker-content-digest': mm[2] });
        return res.end();
      }
      return send(res, 200, { 'docker-content-digest': mm[2] }, b as unknown as string);
    }
    mm = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(path);
    if (mm && method === 'POST') {
      await read(req);
      const id = `u${n++}`;
      uploads.set(id, Buffer.alloc(0));
      return send(res, 202, { location: loc(`/v2/${mm[1]}/blobs/uploads/${id}?_state=${id}`), range: '0-0' });
    }
    mm = /^\/v2\/(.+)\/blobs\/uploads\/([a-z0-9]+)$/.exec(path);
    if (mm) {
      const id = mm[2];
      const have = uploads.get(id);
      if (!have) return err(res, 404, 'BLOB_UPLOAD_UNKNOWN');
      if (method === 'GET') {
        return send(res, 204, { location: loc(`/v2/${mm[1]}/blobs/uploads/${id}?_state=${id}s`), range: `0-${Math.max(0, have.length - 1)}` });
      }
      if (method === 'PATCH') {
        const keep = quirks.cutEveryPatchKeeping ?? quirks.cutFirstPatchKeeping;
        if (keep !== undefined && (!cutDone || quirks.cutEveryPatchKeeping !== undefined) && Number(req.headers['content-length'] ?? 0) > keep) {
          cutDone = true;
          let got = have;
          req.on('data', (d: Buffer) => {
            if (got.length - have.length >= keep) return;
            got = Buffer.concat([got, d.subarray(0, keep - (got.length - have.length))]);
            uploads.set(id, got);
            if (got.length - have.length >= keep) req.socket.destroy();
          });
          return;
        }
        if (quirks.keepBrokenPatch) {
          const range = req.headers['content-range'];
          if (range && Number(String(range).split('-')[0]) !== have.length) {
            await read(req);
            return err(res, 416, 'RANGE_INVALID');
          }
          const parts: Buffer[] = [have];
          let settled = false;
          const keep = () => {
            if (settled) return Buffer.concat(parts);
            settled = true;
            const got = Buffer.concat(parts);
            uploads.set(id, got);
            return got;
          };
          req.on('data', (d: Buffer) => parts.push(d));
          req.on('error', () => {});
          req.on('close', () => keep()); // a broken connection keeps what arrived
          req.on('end', () => {
            const got = keep();
            send(res, quirks.patch201 ? 201 : 202, { location: loc(`/v2/${mm![1]}/blobs/uploads/${id}?_state=${id}x`), range: `0-${Math.max(0, got.length - 1)}` });
          });
          return;
        }
        if (quirks.resetFirstPatch && !resetDone) {
          resetDone = true;
          req.once('data', () => req.socket.destroy());
          return;
        }
        const body = await read(req);
        if (quirks.maxChunk && body.length > quirks.maxChunk) return err(res, 416, 'SIZE_INVALID');
        const range = req.headers['content-range'];
        if (range) {
          const start = Number(String(range).split('-')[0]);
          if (start !== have.length) return err(res, 416, 'RANGE_INVALID');
        }
        const next = Buffer.concat([have, body]);
        uploads.set(id, next);
        return send(res, quirks.patch201 ? 201 : 202, { location: loc(`/v2/${mm[1]}/blobs/uploads/${id}?_state=${id}x`), range: `0-${Math.max(0, next.length - 1)}` });
      }
      if (method === 'PUT') {
        if (quirks.resetFirstPut && !putResetDone && Number(req.headers['content-length'] ?? 0) > 0) {
          putResetDone = true;
          uploads.delete(id);
          req.once('data', () => req.socket.destroy());
          return;
        }
        const body = await read(req);
        const all = Buffer.concat([have, body]);
        const want = url.searchParams.get('digest');
        if (!want || digestOf(all) !== want) return err(res, 400, 'DIGEST_INVALID');
        if (quirks.holdEmptyCommitsMs && !body.length) await new Promise((r) => setTimeout(r, quirks.holdEmptyCommitsMs));
        m.blobs.set(want, all);
        uploads.delete(id);
        m.committed.set(want, performance.now());
        return send(res, 201, { location: `/v2/${mm[1]}/blobs/${want}`, 'docker-content-digest': want });
      }
      if (method === 'DELETE') {
        uploads.delete(id);
        return send(res, 204);
      }
    }
    mm = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (mm) {
      const key = `${mm[1]}:${mm[2]}`;
      if (method === 'PUT') {
        const body = await read(req);
        const doc = JSON.parse(body.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
        for (const d of [doc.config, ...doc.layers]) if (!m.blobs.has(d.digest)) return err(res, 400, 'MANIFEST_BLOB_UNKNOWN');
        const type = String(req.headers['content-type'] ?? '');
        if (quirks.refuseOci && type.startsWith('application/vnd.oci.')) {
          if (quirks.refuseOci === 'ecr') return send(res, 400, { 'content-type': 'application/json' }, JSON.stringify({ message: 'Invalid JSON syntax' }));
          return err(res, 400, quirks.refuseOci);
        }
        m.manifests.set(key, { body, type });
        m.manifests.set(`${mm[1]}:${digestOf(body)}`, { body, type });
        const d = quirks.wrongManifestDigest ? 'sha256:' + '0'.repeat(64) : digestOf(body);
        return send(res, 201, { 'docker-content-digest': d, location: `/v2/${mm[1]}/manifests/${d}` });
      }
      const got = m.manifests.get(key);
      if (!got) return err(res, 404, 'MANIFEST_UNKNOWN');
      return send(res, 200, { 'content-type': got.type, 'docker-content-digest': digestOf(got.body) }, got.body as unknown as string);
    }
    await read(req);
    return err(res, 404, 'NOT_FOUND');
  };
  const server: Server = createServer(handler(false));
  const otherServer: Server = createServer(handler(true));
  return new Promise((resolve) => {
    otherServer.listen(0, '127.0.0.1', () => {
      m.otherOrigin = `http://127.0.0.1:${(otherServer.address() as { port: number }).port}`;
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        m.host = `127.0.0.1:${port}`;
        m.origin = `http://127.0.0.1:${port}`;
        m.close = () =>
          new Promise((r) => {
            server.closeAllConnections();
            otherServer.closeAllConnections();
            otherServer.close();
            server.close(() => r());
          });
        resolve(m);
      });
    });
  });
}

/** A second origin that serves blobs by digest and, like S3, rejects requests carrying an Authorization header. */
export function startBlobStore(blobs: Map<string, Buffer>): Promise<{ origin: string; sawAuthorization: boolean; hits: number; close: () => Promise<void> }> {
  const s = { origin: '', sawAuthorization: false, hits: 0, close: async () => {} };
  const server = createServer((req, res) => {
    s.hits++;
    if (req.headers.authorization) {
      s.sawAuthorization = true;
      res.writeHead(400);
      return res.end('Only one auth mechanism allowed');
    }
    const d = (req.url ?? '').replace('/blob/', '');
    const b = blobs.get(d);
    if (!b) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-length': String(b.length) });
    res.end(b);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      s.origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      s.close = () =>
        new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        });
      resolve(s);
    });
  });
}
