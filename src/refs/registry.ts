import type { Image } from '../oci/image.js';
import { Artifact, imagesOf, isImageIndex } from '../oci/index.js';
import { ClientPool } from '../registry/pool.js';
import { RegistryError } from '../registry/errors.js';
import { pullArtifact, pullImage } from '../registry/pull.js';
import { MountSource, pushImage, pushIndex } from '../registry/push.js';
import { PushState } from '../registry/push-state.js';
import { checkTag, formatReference, Reference, ReferenceError } from '../registry/reference.js';
import type { ReadOptions, RegistryAccess, WriteOptions, WriteResult } from './image-ref.js';

/** The caller's pool, or one of our own (closed by `done` when the operation owns it). */
function poolFor(opts: RegistryAccess): { pool: ClientPool; done: () => Promise<void> } {
  if (opts.pool) return { pool: opts.pool, done: async () => {} };
  const pool = new ClientPool({ keychain: opts.keychain, insecure: opts.insecure, caFile: opts.caFile, timeoutMs: opts.timeoutMs, retries: opts.retries, timeoutRetries: opts.timeoutRetries, log: opts.log });
  return { pool, done: () => pool.close() };
}

/** Reads an image (the one for `platform` from an index); its layers stream from the registry when opened. */
export async function readFromRegistry(ref: Reference, opts: ReadOptions): Promise<Image> {
  // Not closed here: the image's layers stream through these clients later (idle connections do not hold the process).
  const { pool } = poolFor(opts);
  return pullImage(pool.get(ref.registry), ref, opts.platform);
}

/** Reads what the reference names: an image, or an index with every image it lists (one image with `platform`). */
export async function readArtifactFromRegistry(ref: Reference, opts: ReadOptions): Promise<Artifact> {
  const { pool } = poolFor(opts);
  return opts.platform ? pullImage(pool.get(ref.registry), ref, opts.platform) : pullArtifact(pool.get(ref.registry), ref);
}

/**
 * Pushes an image (or an index, its images first) under the reference's tag and every one of `opts.tags` (same repository); layers of an image
 * pulled from the same registry are mounted rather than uploaded.
 */
export async function writeToRegistry(ref: Reference, image: Artifact, opts: WriteOptions): Promise<WriteResult> {
  if (ref.digest) throw new ReferenceError(formatReference(ref), 'push to a tag, not a digest');
  for (const t of opts.tags ?? []) checkTag(t);
  const targets: Reference[] = [ref, ...(opts.tags ?? []).map((tag) => ({ ...ref, tag }))];
  const mountFrom = new Map<string, MountSource>();
  for (const img of imagesOf(image)) {
    for (const l of img.layers) if (l.origin) mountFrom.set(l.descriptor.digest, l.origin);
    // The config of a pulled image lives in the repository its layers came from: mounted too.
    const origin = img.layers.find((l) => l.origin)?.origin;
    if (origin) mountFrom.set(img.manifest.config.digest, origin);
  }
  const { pool, done } = poolFor(opts);
  try {
    const state = opts.pushState ? new PushState(opts.pushState) : undefined;
    const push = { log: opts.log, mountFrom, state };
    const client = pool.get(ref.registry);
    const stats = isImageIndex(image) ? await pushIndex(client, image, targets, push) : await pushImage(client, image, targets, push);
    return { ref: `${formatReference({ registry: ref.registry, repository: ref.repository })}@${stats.digest}`, digest: stats.digest, stats };
  } catch (e) {
    // Which of several pushes failed: the reference leads the message.
    // The same error (its type and fields kept), its message led by the reference.
    if (e instanceof RegistryError) e.message = `push ${formatReference(ref)}: ${e.message}`;
    throw e;
  } finally {
    await done();
  }
}
