import type { Image } from '../oci/image.js';
import { ClientPool } from '../registry/pool.js';
import { pullImage } from '../registry/pull.js';
import { MountSource, pushImage } from '../registry/push.js';
import { checkTag, formatReference, Reference, ReferenceError } from '../registry/reference.js';
import type { ReadOptions, RegistryAccess, WriteOptions, WriteResult } from './image-ref.js';

/** The caller's pool, or one of our own (closed by `done` when the operation owns it). */
function poolFor(opts: RegistryAccess): { pool: ClientPool; done: () => Promise<void> } {
  if (opts.pool) return { pool: opts.pool, done: async () => {} };
  const pool = new ClientPool({ keychain: opts.keychain, insecure: opts.insecure, caFile: opts.caFile, timeoutMs: opts.timeoutMs, retries: opts.retries, log: opts.log });
  return { pool, done: () => pool.close() };
}

/** Reads an image (the one for `platform` from an index); its layers stream from the registry when opened. */
export async function readFromRegistry(ref: Reference, opts: ReadOptions): Promise<Image> {
  // Not closed here: the image's layers stream through these clients later (idle connections do not hold the process).
  const { pool } = poolFor(opts);
  return pullImage(pool.get(ref.registry), ref, opts.platform);
}

/**
 * Pushes an image under the reference's tag and every one of `opts.tags` (same repository); layers of an image
 * pulled from the same registry are mounted rather than uploaded.
 */
export async function writeToRegistry(ref: Reference, image: Image, opts: WriteOptions): Promise<WriteResult> {
  if (ref.digest) throw new ReferenceError(formatReference(ref), 'push to a tag, not a digest');
  for (const t of opts.tags ?? []) checkTag(t);
  const targets: Reference[] = [ref, ...(opts.tags ?? []).map((tag) => ({ ...ref, tag }))];
  const mountFrom = new Map<string, MountSource>();
  for (const l of image.layers) if (l.origin) mountFrom.set(l.descriptor.digest, l.origin);
  const { pool, done } = poolFor(opts);
  try {
    const stats = await pushImage(pool.get(ref.registry), image, targets, { log: opts.log, mountFrom });
    return { ref: `${formatReference({ registry: ref.registry, repository: ref.repository })}@${stats.digest}`, digest: stats.digest, stats };
  } finally {
    await done();
  }
}
