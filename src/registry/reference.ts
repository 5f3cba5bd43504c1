/**
 * Image references: the distribution/reference grammar and Docker's normalisation.
 *   reference := name [":" tag] ["@" digest];  name := [domain "/"] path
 * The first component is a registry host when it contains "." or ":", or is "localhost" (or has upper case).
 */
export interface Reference {
  /** Registry as written in references and credentials ("docker.io", "localhost:5000"). */
  registry: string;
  /** Repository path ("library/redis"). */
  repository: string;
  tag?: string;
  digest?: string;
}

export class ReferenceError extends Error {
  constructor(ref: string, why: string) {
    super(`invalid image reference "${ref}": ${why}`);
    this.name = 'ReferenceError';
  }
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::\d+)?$/;

export const DOCKER_HUB = 'docker.io';

export function parseReference(input: string): Reference {
  // skopeo's transport prefix names the same thing.
  const ref = input.trim().replace(/^docker:\/\//, '');
  if (!ref) throw new ReferenceError(input, 'empty');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(input, `"${digest}" is not a digest (algorithm:hex)`);
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new ReferenceError(input, 'a sha256 digest has 64 lower-case hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceError(input, `"${tag}" is not a valid tag`);
  }
  if (!rest) throw new ReferenceError(input, 'no repository name');
  if (/^[a-f0-9]{64}$/.test(rest)) throw new ReferenceError(input, 'a 64-hex-digit name is ambiguous with an image ID');
  let registry = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = first;
      path = rest.slice(slash + 1);
      if (!HOST.test(registry)) throw new ReferenceError(input, `"${registry}" is not a valid registry host`);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT.test(c)) {
      throw new ReferenceError(input, c !== c.toLowerCase() ? 'repository names must be lower case' : `"${c}" is not a valid path component`);
    }
  }
  if (`${registry}/${path}`.length > 255) throw new ReferenceError(input, 'repository name longer than 255 characters');
  return { registry, repository: path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Throws ReferenceError unless `tag` is a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}). */
export function checkTag(tag: string): void {
  if (!TAG.test(tag)) throw new ReferenceError(tag, 'not a valid tag');
}

/** What to ask the registry for: the digest when there is one, else the tag (default latest). */
export function refIdentifier(r: Reference): string {
  return r.digest ?? r.tag ?? 'latest';
}

export function formatReference(r: Reference, withTag = true): string {
  let s = `${r.registry}/${r.repository}`;
  if (withTag && r.tag) s += `:${r.tag}`;
  if (r.digest) s += `@${r.digest}`;
  return s;
}

/** The host the API lives on: Docker Hub's API is registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/** Plain http is allowed only for loopback registries (or with --insecure). */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
}
