import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { readFileSync } from 'node:fs';

export interface TokenServer {
  realm: string;
  /** Every scope asked for, in order; every token issued (to check they never leak). */
  scopes: string[][];
  issued: string[];
  close: () => Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A docker token-auth server (distribution's token spec) for tests: checks Basic credentials, grants the requested
 * repository actions to that user (nothing to anonymous callers), and signs RS256 JWTs whose x5c header carries
 * the certificate the registry trusts.
 */
export function startTokenServer(opts: { keyFile: string; certFile: string; issuer: string; service: string; user: string; password: string }): Promise<TokenServer> {
  const key = createPrivateKey(readFileSync(opts.keyFile));
  const der = new X509Certificate(readFileSync(opts.certFile)).raw;
  const ts: TokenServer = { realm: '', scopes: [], issued: [], close: async () => {} };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    ts.scopes.push(scopes);
    const auth = req.headers.authorization ?? '';
    const ok = auth === 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
    if (auth && !ok) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const access = ok
      ? scopes.map((s) => {
          const first = s.indexOf(':');
          const last = s.lastIndexOf(':');
          return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',') };
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: opts.issuer, sub: ok ? opts.user : '', aud: opts.service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
    ts.issued.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      ts.realm = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
      ts.close = () => new Promise((r) => server.close(() => r()));
      resolve(ts);
    });
  });
}
