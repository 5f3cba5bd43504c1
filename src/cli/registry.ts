import { readFileSync } from 'node:fs';
import { Credential } from '../registry/credentials.js';
import { defaultKeychain, Keychain, staticKeychain } from '../registry/keychain.js';
import { ClientPool } from '../registry/pool.js';
import type { RegistryAccess, RegistryImageRef } from '../refs/image-ref.js';
import { Referrer } from '../oci/artifact.js';
import { formatReference, Reference } from '../registry/reference.js';
import { UsageError, UserError } from './errors.js';
import type { RegistryArgs } from './options.js';
import type { Log } from '../log.js';
import type { Image, ImageLayer } from '../oci/image.js';
import type { LayerStream } from '../oci/layer.js';
import type { RegistryClient } from '../registry/client.js';
import { StreamedUpload } from '../registry/stream-upload.js';

export type { RegistryArgs } from './options.js';

/** Reads the password from stdin (never from a flag, so it stays out of shell history and process lists). */
function readStdinPassword(): string {
  try {
    return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  } catch {
    throw new UserError('--password-stdin: could not read standard input');
  }
}

export function explicitCredential(a: RegistryArgs): Credential | undefined {
  if (a.passwordStdin && !a.username) throw new UsageError('--password-stdin needs --username');
  if (a.username && !a.passwordStdin) throw new UsageError('--username needs --password-stdin (passwords are never taken from the command line)');
  if (!a.username) return undefined;
  const password = readStdinPassword();
  if (!password) throw new UserError('--password-stdin: standard input was empty');
  return { username: a.username, password, source: '--username/--password-stdin' };
}

/** -u with --password-stdin for every registry of the command, else what docker and podman would use. */
export function keychainFor(a: RegistryArgs): Keychain {
  const credential = explicitCredential(a);
  return credential ? staticKeychain(credential) : defaultKeychain();
}

/** --timeout and --retries, checked, as client options (--retries also lets timeouts be retried that often). */
export function networkLimits(a: RegistryArgs): { timeoutMs?: number; retries?: number; timeoutRetries?: number } {
  if (a.timeout !== undefined && !(Number.isFinite(a.timeout) && a.timeout > 0)) throw new UsageError(`--timeout ${a.timeout}: give a number of seconds above 0`);
  if (a.retries !== undefined && !(Number.isInteger(a.retries) && a.retries >= 0)) throw new UsageError(`--retries ${a.retries}: give a whole number, 0 or more`);
  return { ...(a.timeout !== undefined ? { timeoutMs: Math.round(a.timeout * 1000) } : {}), ...(a.retries !== undefined ? { retries: a.retries, timeoutRetries: a.retries } : {}) };
}

/** Registry access for one command: its keychain, TLS flags and one pool of clients (the caller closes `pool`). */
export function registryAccess(a: RegistryArgs, log: Log): RegistryAccess & { pool: ClientPool; log: Log } {
  const limits = networkLimits(a);
  const keychain = keychainFor(a);
  return { keychain, insecure: a.insecure, caFile: a.caFile, ...limits, log, pool: new ClientPool({ keychain, insecure: a.insecure, caFile: a.caFile, ...limits, log }) };
}

/**
 * Attaches an artifact (an SBOM) to the image pushed to `ref`, given the digest the registry stored it under:
 * skipped, with a warning, when that is not the artifact's subject (a Docker schema 2 fallback changes the manifest).
 */
export async function attachTo(art: Referrer, target: RegistryImageRef, digest: string, access: { pool: ClientPool; log: Log }): Promise<void> {
  const ref = target.reference;
  const where = formatReference({ registry: ref.registry, repository: ref.repository });
  if (digest !== art.subject.digest) {
    access.log.warn(`not attaching the SBOM to ${where}: the registry holds the image as ${digest}, not ${art.subject.digest}`);
    return;
  }
  await target.attach(art, access);
}

/**
 * A build's layers uploaded to the first --push repository while they compress (as docker push does): `stream`
 * opens an upload per layer being compressed; `inFlight` gives, by digest, whether each finished one's upload ends
 * with the registry holding it (true), or was given up (false: the push uploads that blob the usual way).
 */
export function layerUploads(client: RegistryClient, ref: Reference): { stream: () => LayerStream; inFlight: () => Map<string, Promise<boolean>> } {
  const pending = new Map<string, Promise<boolean>>();
  // The registry is pinged now, while the build plans: its answer (scheme, auth challenge, credentials) is there when
  // the first layer or the push needs it, rather than one round trip after. A failure is not lost: the ping is kept,
  // and whatever asks for it next gets the failure (the push reports it).
  client.ping().catch(() => {});
  return {
    stream: () => {
      const up = new StreamedUpload(client, ref.repository);
      return {
        write: (c) => up.write(c),
        end: (blob) => {
          const done = up.finish({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size });
          // (two layers with the same bytes: either upload will do)
          const other = pending.get(blob.digest);
          pending.set(blob.digest, other ? Promise.all([other, done]).then(([a, b]) => a || b) : done);
        },
        abort: () => up.drop(),
      };
    },
    inFlight: () => pending,
  };
}

/**
 * The image with the layers that `uploads` names marked as uploaded to `ref`'s repository, each with its upload's
 * outcome still to come: the push checks the other blobs and sends the config meanwhile, and puts the manifest only
 * once each of these answered true (or was sent again).
 */
export function withUploaded(img: Image, uploads: Map<string, Promise<boolean>>, ref: Reference): Image {
  if (!uploads.size) return img;
  const mark = (l: ImageLayer): ImageLayer => {
    const done = uploads.get(l.descriptor.digest);
    return done ? { ...l, uploaded: { registry: ref.registry, repository: ref.repository, done } } : l;
  };
  return { ...img, layers: img.layers.map(mark) };
}
