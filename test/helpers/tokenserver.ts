import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { readFileSync } from 'node:fs';

export interface TokenServer {
  realm: string;
  /** Every scope asked for, in order; every token issued (to check they never leak). */
  scopes: string[][];
  issued: string[];
  /** OAuth2 POST requests seen. */
  posts: number;
  close: () => Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A docker token-auth server (distribution's token spec) for tests: checks Basic credentials, grants the requested
 * repository actions to that user (nothing to anonymous callers), and signs RS256 JWTs whose x5c header carries
 * the certificate the registry trusts.
 */
export function startTokenServer(opts: { keyFile: string; certFile: string; issuer: string; service: string; user: string; password: string; refreshToken?: string }): Promise<TokenServer> {
  const key = createPrivateKey(readFileSync(opts.keyFile));
  const der = new X509Certificate(readFileSync(opts.certFile)).raw;
  const ts: TokenServer = { realm: '', scopes: [], issued: [], posts: 0, close: async () => {} };
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let scopes = url.searchParams.getAll('scope');
    let ok: boolean;
    const auth = req.headers.authorization ?? '';
    if (req.method === 'POST') {
      // OAuth2 refresh-token grant (distribution's oauth.md): form fields, one space-joined scope.
      ts.posts++;
      let body = '';
      for await (const c of req) body += c;
      const form = new URLSearchParams(body);
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      ok = form.get('grant_type') === 'refresh_token' && !!opts.refreshToken && form.get('refresh_token') === opts.refreshToken && !!form.get('client_id');
      if (!ok) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"error":"invalid_grant"}');
        return;
      }
    } else ok = auth === 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
    ts.scopes.push(scopes);
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
    res.end(JSON.stringify(req.method === 'POST' ? { access_token: token, expires_in: 300 } : { token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      ts.realm = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
      ts.close = () => new Promise((r) => server.close(() => r()));
      resolve(ts);
    });
  });
}
