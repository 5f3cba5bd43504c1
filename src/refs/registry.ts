import type { Image } from '../oci/image.js';
import { Artifact, imagesOf, isImageIndex } from '../oci/index.js';
import { ClientPool } from '../registry/pool.js';
import { RegistryError } from '../registry/errors.js';
import { pullArtifact, pullImage } from '../registry/pull.js';
import { MountSource, pushImage, pushIndex } from '../registry/push.js';
import { PushState } from '../registry/push-state.js';
import { checkTag, formatReference, Reference, ReferenceError } from '../registry/reference.js';
import type { AttachedArtifact, ReadOptions, ReferrersOptions, RegistryAccess, WriteOptions, WriteResult } from './image-ref.js';
import type { Referrer } from '../oci/artifact.js';
import { sha256 } from '../oci/digest.js';
import { BlobMismatchError } from '../oci/errors.js';
import { attachArtifact, listReferrers } from '../registry/referrers.js';

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

/** Attaches an artifact to its subject in the reference's repository (referrers API, else the referrers tag). */
export async function attachInRegistry(ref: Reference, artifact: Referrer, opts: RegistryAccess): Promise<void> {
  const { pool, done } = poolFor(opts);
  try {
    await attachArtifact(pool.get(ref.registry), ref.repository, artifact, (s) => opts.log?.info(s));
  } finally {
    await done();
  }
}

/** The artifacts attached to `subject` in the reference's repository; their documents stream when read. */
export async function referrersInRegistry(ref: Reference, subject: string, opts: ReferrersOptions): Promise<AttachedArtifact[]> {
  // Not closed here: read() uses these clients later (idle connections do not hold the process).
  const { pool } = poolFor(opts);
  const client = pool.get(ref.registry);
  const types = opts.artifactTypes && new Set(opts.artifactTypes);
  const found = (await listReferrers(client, ref.repository, subject)).filter((d) => !types || types.has(d.artifactType ?? ''));
  return found.map((descriptor) => ({
    descriptor,
    read: async () => {
      const m = await client.getManifest(ref.repository, descriptor.digest);
      const layer = (JSON.parse(m.bytes.toString('utf8')) as { layers?: { digest: string; size: number }[] }).layers?.[0];
      if (!layer) return null;
      const chunks: Buffer[] = [];
      for await (const c of client.blobBytes(ref.repository, layer.digest)) chunks.push(c);
      const doc = Buffer.concat(chunks);
      const where = `${formatReference({ registry: ref.registry, repository: ref.repository })}@${descriptor.digest}`;
      if (sha256(doc) !== layer.digest) throw new BlobMismatchError(where, layer.digest, `the attached document ${layer.digest} does not match its digest`);
      return doc;
    },
  }));
}
