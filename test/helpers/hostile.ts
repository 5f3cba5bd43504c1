import { createServer, Server, Socket } from 'node:net';

/**
 * Ways a registry can misbehave that the real one never shows: each a raw TCP server on 127.0.0.1 speaking just
 * enough HTTP/1.1 for ocislim to get to the request that goes wrong.
 */
export type HostileMode =
  /** Accepts connections, reads, never answers. */
  | 'silent'
  /** Resets every connection as soon as a request arrives. */
  | 'reset'
  /** The manifest is a chunked body that never ends. */
  | 'endless-manifest'
  /** The manifest declares a 150 MB Content-Length (and would send it). */
  | 'huge-manifest'
  /** The manifest answer is a 404 whose chunked error body never ends. */
  | 'endless-error'
  /** The token server's answer never ends. */
  | 'endless-token'
  /** The manifest trickles one byte a second, so no single wait is long. */
  | 'trickle-manifest'
  /** The config blob stops after a few bytes and the connection stays open. */
  | 'stall-blob'
  /** The manifest's config descriptor claims 10 GB, and the blob never ends. */
  | 'huge-config'
  /** /v2/ asks for Basic credentials and answers 500 to any that are sent. */
  | 'login-500';

export interface Hostile {
  host: string;
  /** Bytes the server has written, all connections together. */
  bytesSent: number;
  requests: string[];
  /** When the first connection came (Date.now()): the client's own start-up is not the server's doing. */
  firstContact: number;
  close: () => Promise<void>;
}

const CONFIG = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
const CONFIG_DIGEST = 'sha256:' + (await import('node:crypto')).createHash('sha256').update(CONFIG).digest('hex');
const MANIFEST = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: CONFIG_DIGEST, size: CONFIG.length }, layers: [] }),
);

export function startHostile(mode: HostileMode): Promise<Hostile> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const h: Hostile = { host: '', bytesSent: 0, requests: [], firstContact: 0, close: async () => {} };
  const write = (s: Socket, data: string | Buffer) => {
    if (s.destroyed) return false;
    h.bytesSent += Buffer.byteLength(data);
    return s.write(data);
  };
  const answer = (s: Socket, status: number, headers: Record<string, string>, body: Buffer | string = '') => {
    const b = Buffer.from(body);
    write(s, `HTTP/1.1 ${status} X\r\n${Object.entries({ ...headers, 'content-length': String(b.length) }).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    write(s, b);
  };
  /** Writes chunks of `chunk` as fast as the peer takes them, forever (until it goes away). */
  const flood = (s: Socket, chunk: Buffer) => {
    const more = () => {
      while (!s.destroyed && write(s, Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])));
    };
    s.on('drain', more);
    more();
  };
  const every = (ms: number, fn: () => void) => {
    const t = setInterval(fn, ms);
    timers.add(t);
  };
  const onRequest = (s: Socket, method: string, path: string, headers: string) => {
    h.requests.push(`${method} ${path}`);
    const port = (server.address() as { port: number }).port;
    if (mode === 'silent') return;
    if (mode === 'reset') return s.resetAndDestroy();
    if (path === '/v2/') {
      if (mode === 'endless-token') return answer(s, 401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="hostile"` });
      if (mode === 'login-500') {
        if (/^authorization:/im.test(headers)) return answer(s, 500, { 'content-type': 'text/plain' }, 'internal error');
        return answer(s, 401, { 'www-authenticate': 'Basic realm="hostile"' });
      }
      return answer(s, 200, { 'content-type': 'application/json' }, '{}');
    }
    if (path.startsWith('/token')) {
      write(s, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
      return flood(s, Buffer.from('{"token":"' + 'a'.repeat(16 * 1024)));
    }
    if (/\/manifests\//.test(path)) {
      const mt = 'application/vnd.oci.image.manifest.v1+json';
      if (mode === 'endless-manifest') {
        write(s, `HTTP/1.1 200 OK\r\ncontent-type: ${mt}\r\ntransfer-encoding: chunked\r\n\r\n`);
        return flood(s, Buffer.alloc(64 * 1024, 0x20));
      }
      if (mode === 'huge-manifest') {
        write(s, `HTTP/1.1 200 OK\r\ncontent-type: ${mt}\r\ncontent-length: 150000000\r\n\r\n`);
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const more = () => {
          while (!s.destroyed && write(s, chunk));
        };
        s.on('drain', more);
        return more();
      }
      if (mode === 'endless-error') {
        write(s, 'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
        return flood(s, Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"' + 'x'.repeat(16 * 1024)));
      }
      if (mode === 'trickle-manifest') {
        write(s, `HTTP/1.1 200 OK\r\ncontent-type: ${mt}\r\ncontent-length: ${MANIFEST.length}\r\n\r\n`);
        let i = 0;
        return every(1000, () => {
          if (i < MANIFEST.length) write(s, MANIFEST.subarray(i, ++i));
        });
      }
      if (mode === 'huge-config') {
        const big = JSON.parse(MANIFEST.toString()) as { config: { size: number } };
        big.config.size = 10_000_000_000;
        return answer(s, 200, { 'content-type': mt }, JSON.stringify(big));
      }
      return answer(s, 200, { 'content-type': mt }, MANIFEST);
    }
    if (/\/blobs\//.test(path) && mode === 'huge-config') {
      write(s, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      return flood(s, Buffer.alloc(64 * 1024, 0x20));
    }
    if (/\/blobs\//.test(path) && mode === 'stall-blob') {
      write(s, `HTTP/1.1 200 OK\r\ncontent-length: ${CONFIG.length}\r\n\r\n`);
      return write(s, CONFIG.subarray(0, 5));
    }
    return answer(s, 404, { 'content-type': 'application/json' }, '{"errors":[{"code":"NOT_FOUND","message":"no"}]}');
  };
  const server: Server = createServer((s) => {
    h.firstContact ||= Date.now();
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const len = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        buf = buf.slice(end + 4 + len);
        const [method, path] = head.split(' ');
        onRequest(s, method, path.split('?')[0], head);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      h.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
      h.close = () =>
        new Promise((r) => {
          for (const t of timers) clearInterval(t);
          for (const s of sockets) s.destroy();
          server.close(() => r());
        });
      resolve(h);
    });
  });
}
