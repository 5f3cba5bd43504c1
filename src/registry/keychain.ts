import { Credential, findCredentials } from './credentials.js';

/**
 * Where a registry client gets its credentials (go-containerregistry's authn.Keychain): asked once per registry,
 * when the client first talks to it. The client never looks credentials up by itself; without a keychain it is
 * anonymous.
 */
export interface Keychain {
  /** The credential for `registry` ("docker.io", "localhost:5000"), or null for anonymous access. */
  resolve(registry: string): Credential | null | Promise<Credential | null>;
}

/** No credentials: anonymous access (public images, loopback registries without auth). */
export const anonymous: Keychain = { resolve: () => null };

/**
 * The credentials docker and podman would use: DOCKER_AUTH_CONFIG, REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json, podman's auth.json, with their credential helpers (see credentials.ts).
 */
export function defaultKeychain(env: NodeJS.ProcessEnv = process.env): Keychain {
  return { resolve: (registry) => findCredentials(registry, env) };
}

/** One credential, for every registry or for the one named. */
export function staticKeychain(credential: Credential, registry?: string): Keychain {
  return { resolve: (r) => (registry === undefined || r === registry ? credential : null) };
}

/** The first keychain that has a credential for the registry (ggcr's authn.NewMultiKeychain). */
export function multiKeychain(...chains: Keychain[]): Keychain {
  return {
    async resolve(registry) {
      for (const k of chains) {
        const c = await k.resolve(registry);
        if (c) return c;
      }
      return null;
    },
  };
}
