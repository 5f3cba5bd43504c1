import { Challenge, parseChallenges } from './challenge.js';
import { Credential } from './credentials.js';
import { PlainHttpError, RegistryError } from './errors.js';
import { isLoopback } from './reference.js';
import { HttpResponse, MAX_TOKEN_BODY, readBody, Transport } from './transport.js';

interface Token {
  value: string;
  expires: number;
}

const EARLY_REFRESH_MS = 5_000;

/**
 * Authentication for one registry: the /v2/ ping's challenge, Basic, or Bearer tokens from the realm (GET, or the
 * OAuth2 POST with a refresh token), cached per scope set until they expire. Credentials go only to the registry's
 * own origin or its token realm.
 */
export class Authenticator {
  private challenge: Challenge | null = null;
  private tokens = new Map<string, Token>();
  /** Token requests under way, so parallel uploads share one instead of each asking. */
  private pending = new Map<string, Promise<Token>>();
  private refreshToken: string | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly registry: string,
    private readonly cred: Credential | null,
    private readonly insecure: boolean,
  ) {
    this.refreshToken = cred?.identityToken;
  }

  /** Remembers the challenge of a /v2/ ping (GCR-style registries send 401s without one later). */
  noteChallenge(res: HttpResponse): void {
    const cs = parseChallenges(res.headers['www-authenticate'] as string | string[] | undefined);
    const pick = cs.find((c) => c.scheme === 'bearer') ?? cs.find((c) => c.scheme === 'basic');
    if (pick) this.challenge = pick;
  }

  get scheme(): string | null {
    return this.challenge?.scheme ?? null;
  }

  /** Drops cached tokens for these scopes (after a 401), merging in scopes the registry asked for. */
  invalidate(scopes: string[], res?: HttpResponse): string[] {
    this.tokens.delete(scopes.join(' '));
    if (!res) return scopes;
    const cs = parseChallenges(res.headers['www-authenticate'] as string | string[] | undefined);
    const bearer = cs.find((c) => c.scheme === 'bearer');
    if (bearer) {
      this.challenge = bearer;
      const asked = (bearer.params.scope ?? '').split(' ').filter(Boolean);
      // Some registries look only at the first scope: put what they asked for first.
      return [...asked, ...scopes.filter((s) => !asked.includes(s))];
    }
    return scopes;
  }

  /** The Authorization header value for requests needing these scopes, or undefined (anonymous). */
  async header(scopes: string[]): Promise<string | undefined> {
    const c = this.challenge;
    if (this.cred?.registryToken) return `Bearer ${this.cred.registryToken}`;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      if (!this.cred?.username && !this.cred?.password) return undefined;
      return 'Basic ' + Buffer.from(`${this.cred.username ?? ''}:${this.cred.password ?? ''}`).toString('base64');
    }
    if (c.scheme !== 'bearer') throw new RegistryError(`${this.registry}: unsupported authentication scheme "${c.scheme}"`);
    const key = scopes.join(' ');
    const t = this.tokens.get(key);
    if (t && t.expires - EARLY_REFRESH_MS > Date.now()) return `Bearer ${t.value}`;
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(c, scopes).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const fresh = await p;
    this.tokens.set(key, fresh);
    return `Bearer ${fresh.value}`;
  }

  private realmUrl(c: Challenge): URL {
    const realm = c.params.realm;
    if (!realm) throw new RegistryError(`${this.registry}: Bearer challenge without a realm`);
    let u: URL;
    try {
      u = new URL(realm);
    } catch {
      throw new RegistryError(`${this.registry}: token realm "${realm}" is not a URL`);
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && (this.insecure || isLoopback(u.host)))) {
      throw new PlainHttpError(this.registry, `token realm ${u.origin}`);
    }
    return u;
  }

  private async fetchToken(c: Challenge, scopes: string[]): Promise<Token> {
    const realm = this.realmUrl(c);
    const service = c.params.service;
    if (this.refreshToken) {
      const t = await this.oauthPost(realm, service, scopes);
      if (t) return t;
    }
    const u = new URL(realm);
    if (service) u.searchParams.set('service', service);
    for (const s of scopes) u.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (this.cred?.username !== undefined && this.cred.password !== undefined) {
      u.searchParams.set('account', this.cred.username);
      headers.authorization = 'Basic ' + Buffer.from(`${this.cred.username}:${this.cred.password}`).toString('base64');
    }
    const res = await this.transport.request({ method: 'GET', url: u, headers });
    return this.tokenFrom(res, realm);
  }

  /** OAuth2 refresh-token grant; null when the token server has no POST endpoint (404), to fall back to GET. */
  private async oauthPost(realm: URL, service: string | undefined, scopes: string[]): Promise<Token | null> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.refreshToken!, client_id: 'ocislim' });
    if (service) form.set('service', service);
    if (scopes.length) form.set('scope', scopes.join(' '));
    const res = await this.transport.request({ method: 'POST', url: realm, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) });
    if (res.status === 404 || res.status === 405) {
      await res.body.dump();
      return null;
    }
    const t = await this.tokenFrom(res, realm);
    return t;
  }

  private async tokenFrom(res: HttpResponse, realm: URL): Promise<Token> {
    if (res.status === 401 || res.status === 403) {
      await res.body.dump().catch(() => {});
      throw new RegistryError(`${this.registry}: the token server ${realm.origin} refused ${this.cred ? `the credentials from ${this.cred.source}` : 'anonymous access'} (HTTP ${res.status})`, res.status);
    }
    if (res.status !== 200) {
      await res.body.dump().catch(() => {});
      throw new RegistryError(`${this.registry}: token server ${realm.origin} answered HTTP ${res.status}`, res.status);
    }
    const body = await readBody(res, MAX_TOKEN_BODY, 'token response', 'fail');
    let j: { token?: string; access_token?: string; expires_in?: number; issued_at?: string; refresh_token?: string };
    try {
      j = JSON.parse(body.toString('utf8'));
    } catch {
      throw new RegistryError(`${this.registry}: token server ${realm.origin} sent a response that is not JSON`);
    }
    const value = j.token ?? j.access_token;
    if (!value) throw new RegistryError(`${this.registry}: token server ${realm.origin} sent no token`);
    if (j.refresh_token) this.refreshToken = j.refresh_token;
    const life = Math.max(60, Number(j.expires_in) || 60) * 1000;
    let issued = j.issued_at ? Date.parse(j.issued_at) : Date.now();
    // Guard against clock skew: never believe an issue time in the future or long ago.
    if (Number.isNaN(issued) || Math.abs(issued - Date.now()) > 60_000) issued = Date.now();
    return { value, expires: issued + life };
  }
}

