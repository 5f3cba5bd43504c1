import { childProcess } from '../child-process.js';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../oci/atomic.js';
import { DOCKER_HUB } from './reference.js';
import { RegistryError } from './errors.js';

/** What we may authenticate with. Never printed. */
export interface Credential {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (config.json identitytoken, or a helper's "<token>" user). */
  identityToken?: string;
  /** A ready bearer token (config.json registrytoken). */
  registryToken?: string;
  /** Where it came from, for messages (a file name or helper name, never the secret). */
  source: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

const HUB_KEY = 'https://index.docker.io/v1/';

/** The key a registry has in config.json: Docker Hub's legacy URL, else host[:port]. */
export function configKey(registry: string): string {
  return registry === DOCKER_HUB ? HUB_KEY : registry;
}

/** Normalises legacy keys ("https://host/v1/") to host[:port] (docker/cli ConvertToHostname). */
function keyHost(k: string): string {
  const h = k.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return ['index.docker.io', 'registry-1.docker.io', 'docker.io'].includes(h) ? DOCKER_HUB : h;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/** Parses a config; the error names where it came from and the position, never the text (it holds secrets). */
function parseConfig(text: string, where: string): DockerConfig {
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new RegistryError(`${where}: not valid JSON${pos ? ` (at character ${pos})` : ''}`);
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new RegistryError(`${where}: not a JSON object`);
  return cfg as DockerConfig;
}

function readConfig(path: string): DockerConfig | null {
  if (!existsSync(path)) return null;
  return parseConfig(readFileSync(path, 'utf8'), path);
}

/** Runs the docker-credential-* protocol's "get"; null when the helper has no credentials for the server. */
export function helperGet(helper: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Credential | null {
  const bin = `docker-credential-${helper}`;
  const r = childProcess().spawnSync(bin, ['get'], { input: serverUrl, encoding: 'utf8', env, timeout: 30_000 });
  if (r.error) throw new RegistryError(`credential helper ${bin}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed' : r.error.message}`);
  if (r.status !== 0) {
    if (/credentials not found/i.test(r.stdout + r.stderr)) return null;
    throw new RegistryError(`credential helper ${bin} failed for ${serverUrl} (exit ${r.status})`);
  }
  let j: { Username?: string; Secret?: string };
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new RegistryError(`credential helper ${bin} gave output that is not JSON`);
  }
  if (!j.Secret) return null;
  if (j.Username === '<token>') return { identityToken: j.Secret, source: bin };
  return { username: j.Username ?? '', password: j.Secret, source: bin };
}

function fromEntry(e: AuthEntry, source: string): Credential | null {
  if (e.registrytoken) return { registryToken: e.registrytoken, source };
  if (e.identitytoken) return { identityToken: e.identitytoken, ...(e.username ? { username: e.username } : {}), source };
  if (e.auth) {
    const dec = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0) throw new RegistryError(`${source}: the "auth" entry is not base64 of user:password`);
    return { username: dec.slice(0, i), password: dec.slice(i + 1).replace(/\0+$/, ''), source };
  }
  if (e.username && e.password) return { username: e.username, password: e.password, source };
  return null;
}

function fromConfig(cfg: DockerConfig, path: string, registry: string, env: NodeJS.ProcessEnv): Credential | null {
  const helper = cfg.credHelpers?.[registry] ?? (registry === DOCKER_HUB ? cfg.credHelpers?.[HUB_KEY] : undefined);
  if (helper) return helperGet(helper, configKey(registry), env);
  for (const [k, e] of Object.entries(cfg.auths ?? {})) {
    if (keyHost(k) === registry) {
      const c = fromEntry(e, path);
      if (c) return c;
    }
  }
  if (cfg.credsStore) return helperGet(cfg.credsStore, configKey(registry), env);
  return null;
}

/**
 * Credentials for a registry, looked up as docker and podman do: $DOCKER_AUTH_CONFIG (a whole config.json in the
 * environment, as CI systems set it), $REGISTRY_AUTH_FILE, then $DOCKER_CONFIG/config.json (or
 * ~/.docker/config.json), then podman's auth.json; in each, credHelpers, then auths, then credsStore.
 */
export function findCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Credential | null {
  if (env.DOCKER_AUTH_CONFIG) {
    const c = fromConfig(parseConfig(env.DOCKER_AUTH_CONFIG, 'DOCKER_AUTH_CONFIG'), 'DOCKER_AUTH_CONFIG', registry, env);
    if (c) return c;
  }
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  files.push(dockerConfigPath(env));
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(join(env.HOME ?? homedir(), '.config', 'containers', 'auth.json'));
  for (const f of files) {
    const cfg = readConfig(f);
    if (!cfg) continue;
    const c = fromConfig(cfg, f, registry, env);
    if (c) return c;
  }
  return null;
}

/** Stores credentials as `docker login` does: through the configured helper, else base64 in config.json (0600). */
export function storeCredentials(registry: string, username: string, password: string, env: NodeJS.ProcessEnv = process.env): string {
  const path = dockerConfigPath(env);
  const cfg = readConfig(path) ?? {};
  const helper = cfg.credHelpers?.[registry] ?? cfg.credsStore;
  if (helper) {
    const bin = `docker-credential-${helper}`;
    const r = childProcess().spawnSync(bin, ['store'], { input: JSON.stringify({ ServerURL: configKey(registry), Username: username, Secret: password }), encoding: 'utf8', env });
    if (r.error || r.status !== 0) throw new RegistryError(`credential helper ${bin} could not store credentials for ${registry}`);
    return bin;
  }
  cfg.auths = { ...(cfg.auths ?? {}), [configKey(registry)]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, JSON.stringify(cfg, null, '\t') + '\n', 0o600);
  chmodSync(path, 0o600);
  return path;
}
