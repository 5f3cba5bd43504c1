import { Readable, Transform } from 'node:stream';
import { Image, ImageLayer, toDockerSchema2 } from '../oci/image.js';
import { MT } from '../oci/mediatypes.js';
import { assembleIndex, ImageIndex } from '../oci/index.js';
import { RegistryError } from './errors.js';
import { RegistryClient } from './client.js';
import { formatReference, Reference } from './reference.js';
import { Log, silentLog } from '../log.js';
import type { PushState } from './push-state.js';

/** Where a layer can be had without uploading: a repository of the same registry to mount from. */
export interface MountSource {
  registry: string;
  repository: string;
}

export interface PushOptions {
  /** Parallel blob uploads (small, like ggcr's 4 and regclient's 3). */
  jobs?: number;
  /** Each blob's fate, and upload progress (a task per blob). */
  log?: Log;
  /** Per-layer origin, for cross-repository mounts (base image layers). */
  mountFrom?: Map<string, MountSource>;
  /** Memory of earlier pushes: repositories to mount blobs from, upload sessions to resume. */
  state?: PushState;
  /** Check and send every blob even when the registry already has the manifest. */
  noShortcut?: boolean;
}

/** Repositories tried for a mount before uploading. */
const MAX_MOUNT_TRIES = 3;

export interface PushStats {
  uploaded: number;
  existing: number;
  mounted: number;
  bytes: number;
  /** The digest the registry now serves: the image's own, or its Docker schema 2 form after a format fallback. */
  digest: string;
}

/**
 * How registries that do not take OCI manifests say so (containers/image's isManifestInvalidError): MANIFEST_INVALID
 * (OpenShift with acceptschema2=false, old Quay), TAG_INVALID (old distribution), ECR's "Invalid JSON syntax".
 */
function rejectsFormat(e: unknown): boolean {
  if (!(e instanceof RegistryError)) return false;
  if (e.code === 'MANIFEST_INVALID' || e.code === 'TAG_INVALID') return true;
  return e.status === 400 && /Invalid JSON syntax/i.test(e.message);
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  const queue = items.slice();
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(n, queue.length) }, async () => {
      for (let t = queue.shift(); t !== undefined && !errors.length; t = queue.shift()) {
        try {
          await fn(t);
        } catch (e) {
          errors.push(e);
        }
      }
    }),
  );
  if (errors.length) throw errors[0];
}

/**
 * True when the registry already has the image's manifest, after pointing every tag at it: the tag's HEAD first
 * (one request when nothing changed), else the digest's HEAD, then a PUT of each tag that points elsewhere.
 */
async function shortcut(client: RegistryClient, img: Image, blobs: string[], target: Reference, tags: string[], log: Log): Promise<boolean> {
  const repo = target.repository;
  const name = (tag?: string) => formatReference({ ...target, tag, digest: undefined });
  const pending: string[] = [];
  for (const tag of tags) if ((await client.manifestDigest(repo, tag, true)) !== img.digest) pending.push(tag);
  if (!(tags.length && !pending.length) && (await client.manifestDigest(repo, img.digest, true)) !== img.digest) return false;
  // A manifest can outlive its blobs (a blob deleted through the API, a registry restored in part): every blob is
  // still asked for (HEADs in parallel, no bytes), and one missing sends the whole image again.
  const sizes = await Promise.all(blobs.map((d) => client.blobSize(repo, d, true)));
  const missing = blobs.filter((_d, i) => sizes[i] === null);
  if (missing.length) {
    log.warn(`${name()} serves manifest ${img.digest} but lacks ${missing.length === 1 ? `blob ${missing[0]}` : `${missing.length} of its blobs`}: pushing the image again`);
    return false;
  }
  if (!pending.length) {
    for (const tag of tags) log.info(`manifest ${img.digest}: already at ${name(tag)}`);
    return true;
  }
  for (const tag of pending) {
    await client.putManifest(repo, tag, img.manifestBytes, img.manifest.mediaType);
    log.info(`manifest ${img.digest} (already in ${repo}) -> ${name(tag)}`);
  }
  if (!tags.length) log.info(`manifest ${img.digest}: already in ${name()}`);
  return true;
}

/**
 * Pushes an image to one repository under every tag of `targets` (all in that repository): blobs first (HEAD to
 * skip what is there, mount what another repository of the registry has, upload the rest), config, then the
 * manifest, so no manifest ever names a missing blob.
 */
export async function pushImage(client: RegistryClient, img: Image, targets: Reference[], opts: PushOptions = {}): Promise<PushStats> {
  const repo = targets[0].repository;
  const log = opts.log ?? silentLog;
  const stats: PushStats = { uploaded: 0, existing: 0, mounted: 0, bytes: 0, digest: img.digest };
  const configLayer: ImageLayer = {
    descriptor: img.manifest.config,
    diffId: img.manifest.config.digest,
    blob: { open: () => streamOf(img.configBytes) },
  };
  const blobs = [...img.layers, configLayer];
  const seen = new Set<string>();
  const unique = blobs.filter((b) => !seen.has(b.descriptor.digest) && seen.add(b.descriptor.digest));
  const tags = targets.map((t) => t.tag).filter((t): t is string => !!t);
  // The same image pushed again (the CI case): when the registry already serves this very manifest and every blob
  // it names, nothing is sent; only tags that do not point to it yet are put. Not asked when a layer was just
  // uploaded here while it was compressed (a cold build --push): its bytes are sent already, and what is left (the
  // config, the manifest) costs about what the questions would (two HEADs of the manifest, serial, after the build).
  const here = (l: ImageLayer) => !!l.uploaded && l.uploaded.registry === client.registry && l.uploaded.repository === repo;
  const streamed = img.layers.some(here);
  if (!opts.noShortcut && !streamed && (await shortcut(client, img, unique.map((b) => b.descriptor.digest), targets[0], tags, log))) {
    stats.existing = unique.length;
    return stats;
  }
  const state = opts.state;
  const jobs = opts.jobs ?? 3;
  /** A blob the usual way: HEAD (skip what is there), mount what another repository has, upload the rest. */
  const send = async (l: ImageLayer) => {
    const d = l.descriptor;
    const short = d.digest.slice(7, 19);
    // The config of an image whose layer went up while it was compressed names that layer: almost always a config the
    // registry has never seen. It is sent without asking first (a HEAD's round trip fewer; when the registry had it
    // after all, a few KB sent again).
    const fresh = l === configLayer && streamed;
    const size = fresh ? null : await client.blobSize(repo, d.digest, true);
    if (size !== null) {
      stats.existing++;
      state?.remember(client.registry, d.digest, repo);
      log.info(`${short}: already there`);
      return;
    }
    // Where the blob may already be on this registry: the image's origin (a pulled base), then repositories that
    // earlier pushes sent it to.
    const from = opts.mountFrom?.get(d.digest);
    const candidates = fresh ? [] : [...(from && from.registry === client.registry ? [from.repository] : []), ...(state?.reposWith(client.registry, d.digest) ?? [])];
    for (const source of [...new Set(candidates)].filter((r) => r !== repo).slice(0, MAX_MOUNT_TRIES)) {
      if (await client.mountBlob(repo, d.digest, source)) {
        stats.mounted++;
        state?.remember(client.registry, d.digest, repo);
        log.info(`${short}: mounted from ${source}`);
        return;
      }
    }
    const task = log.task(`upload ${short}`, d.size);
    const count = (s: Readable) => s.pipe(new Transform({ transform: (c: Buffer, _e, cb) => (task.add(c.length), cb(null, c)) }));
    // Counted per attempt: a retried upload starts again from zero.
    let opened = 0;
    const counted = () => {
      if (opened++) task.restart();
      return count(l.blob.open());
    };
    const reader = l === configLayer ? null : l.blob;
    const resumable = state && reader ? { session: state.session(client.registry, repo, d.digest), openRange: reader.openRange ? (a: number, b: number) => count(reader.openRange!(a, b)) : undefined } : undefined;
    await client.uploadBlob(repo, d, counted, resumable);
    state?.remember(client.registry, d.digest, repo);
    stats.uploaded++;
    stats.bytes += d.size;
    task.done('done');
  };
  /**
   * The layers uploaded here while they were compressed, as their uploads end: counted when the registry has them,
   * sent the usual way when an upload was given up. Their wait takes none of the `jobs` slots, so the other blobs
   * are checked and sent meanwhile.
   */
  const settleStreamed = async () => {
    const streamedLayers = unique.filter(here);
    // (every outcome awaited at once: a failed one is an upload given up, never an unhandled rejection)
    const outcomes = await Promise.allSettled(streamedLayers.map((l) => l.uploaded!.done ?? true));
    const again: ImageLayer[] = [];
    outcomes.forEach((o, k) => {
      const l = streamedLayers[k];
      if (o.status !== 'fulfilled' || !o.value) return void again.push(l);
      stats.uploaded++;
      stats.bytes += l.descriptor.size;
      state?.remember(client.registry, l.descriptor.digest, repo);
      log.info(`${l.descriptor.digest.slice(7, 19)}: uploaded while it was compressed`);
    });
    await pool(again, jobs, send);
  };
  try {
    // Both run to their end before a failure is thrown (nothing left sending behind the error).
    const ended = await Promise.allSettled([pool(unique.filter((l) => !here(l)), jobs, send), settleStreamed()]);
    for (const e of ended) if (e.status === 'rejected') throw e.reason;
  } finally {
    state?.save();
  }
  let pushed = img;
  for (const tag of tags.length ? tags : [null]) {
    const ref = tag ?? pushed.digest;
    try {
      await client.putManifest(repo, ref, pushed.manifestBytes, pushed.manifest.mediaType);
    } catch (e) {
      // Same blobs, other media type names: only the manifest changes, so nothing is uploaded again.
      const docker = pushed.manifest.mediaType === MT.ociManifest && rejectsFormat(e) ? toDockerSchema2(pushed) : null;
      if (!docker) throw e;
      log.info(`the registry refused the OCI manifest (${(e as Error).message.replace(/^[^:]*: [^:]*: /, '')}); pushing it as Docker schema 2`);
      pushed = docker;
      try {
        await client.putManifest(repo, tag ?? pushed.digest, pushed.manifestBytes, pushed.manifest.mediaType);
      } catch (e2) {
        throw new RegistryError(`${(e as Error).message}; as Docker schema 2: ${(e2 as Error).message}`, (e2 as RegistryError).status, (e2 as RegistryError).code);
      }
    }
    log.info(`manifest ${pushed.digest} -> ${formatReference({ ...targets[0], tag: tag ?? undefined, digest: undefined })}`);
  }
  stats.digest = pushed.digest;
  return stats;
}

/**
 * Pushes an index: each image by digest (blobs skipped, mounted or uploaded as for one image), then the index under
 * every tag, so the index never names a missing manifest. When the registry took an image only as Docker schema 2,
 * the index becomes a Docker manifest list over those forms (its digest then changes, and is the one reported).
 */
export async function pushIndex(client: RegistryClient, idx: ImageIndex, targets: Reference[], opts: PushOptions = {}): Promise<PushStats> {
  const repo = targets[0].repository;
  const log = opts.log ?? silentLog;
  const stats: PushStats = { uploaded: 0, existing: 0, mounted: 0, bytes: 0, digest: idx.digest };
  const byDigest: Reference = { ...targets[0], tag: undefined, digest: undefined };
  const pushed: Image[] = [];
  for (const img of idx.images) {
    const s = await pushImage(client, img, [byDigest], opts);
    stats.uploaded += s.uploaded;
    stats.existing += s.existing;
    stats.mounted += s.mounted;
    stats.bytes += s.bytes;
    pushed.push(s.digest === img.digest ? img : (toDockerSchema2(img) ?? img));
  }
  let out = idx;
  if (pushed.some((p, i) => p !== idx.images[i])) {
    out = assembleIndex(pushed, 'docker');
    log.info(`the index became a Docker manifest list (${out.digest}), as its images did`);
  }
  const tags = targets.map((t) => t.tag).filter((t): t is string => !!t);
  for (const tag of tags.length ? tags : [out.digest]) {
    await client.putManifest(repo, tag, out.indexBytes, out.mediaType);
    log.info(`index ${out.digest} -> ${formatReference({ ...targets[0], tag: tag.startsWith('sha256:') ? undefined : tag, digest: undefined })}`);
  }
  stats.digest = out.digest;
  return stats;
}

function streamOf(b: Buffer) {
  return Readable.from([b]);
}

