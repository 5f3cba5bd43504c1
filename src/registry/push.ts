import { Readable, Transform } from 'node:stream';
import { Image, ImageLayer } from '../oci/image.js';
import { RegistryClient } from './client.js';
import { formatReference, Reference } from './reference.js';

/** Where a layer can be had without uploading: a repository of the same registry to mount from. */
export interface MountSource {
  registry: string;
  repository: string;
}

/** Per-blob progress: plain lines or bars are the caller's choice. */
export interface PushProgress {
  start(digest: string, size: number): void;
  bytes(digest: string, n: number): void;
  done(digest: string, how: 'uploaded' | 'exists' | 'mounted'): void;
}

export interface PushOptions {
  progress?: PushProgress;
  /** Parallel blob uploads (small, like ggcr's 4 and regclient's 3). */
  jobs?: number;
  log?: (s: string) => void;
  /** Per-layer origin, for cross-repository mounts (base image layers). */
  mountFrom?: Map<string, MountSource>;
}

export interface PushStats {
  uploaded: number;
  existing: number;
  mounted: number;
  bytes: number;
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
 * Pushes an image to one repository under every tag of `targets` (all in that repository): blobs first (HEAD to
 * skip what is there, mount what another repository of the registry has, upload the rest), config, then the
 * manifest, so no manifest ever names a missing blob.
 */
export async function pushImage(client: RegistryClient, img: Image, targets: Reference[], opts: PushOptions = {}): Promise<PushStats> {
  const repo = targets[0].repository;
  const log = opts.log ?? (() => {});
  const stats: PushStats = { uploaded: 0, existing: 0, mounted: 0, bytes: 0 };
  const configLayer: ImageLayer = {
    descriptor: img.manifest.config,
    diffId: img.manifest.config.digest,
    blob: { open: () => streamOf(img.configBytes) },
  };
  const blobs = [...img.layers, configLayer];
  const seen = new Set<string>();
  const unique = blobs.filter((b) => !seen.has(b.descriptor.digest) && seen.add(b.descriptor.digest));
  await pool(unique, opts.jobs ?? 3, async (l) => {
    const d = l.descriptor;
    const short = d.digest.slice(7, 19);
    const size = await client.blobSize(repo, d.digest, true);
    if (size !== null) {
      stats.existing++;
      if (opts.progress) opts.progress.done(d.digest, 'exists');
      else log(`${short}: already there`);
      return;
    }
    const from = opts.mountFrom?.get(d.digest);
    if (from && from.registry === client.registry && from.repository !== repo && (await client.mountBlob(repo, d.digest, from.repository))) {
      stats.mounted++;
      log(`${short}: mounted from ${from.repository}`);
      opts.progress?.done(d.digest, 'mounted');
      return;
    }
    const p = opts.progress;
    if (p) p.start(d.digest, d.size);
    else log(`${short}: uploading ${d.size} bytes`);
    const open = l === configLayer ? () => streamOf(img.configBytes) : () => l.blob.open();
    // Counted per attempt: a retried upload starts its bar again.
    const counted = p
      ? () => {
          p.start(d.digest, d.size);
          return open().pipe(new Transform({ transform: (c: Buffer, _e, cb) => (p.bytes(d.digest, c.length), cb(null, c)) }));
        }
      : open;
    await client.uploadBlob(repo, d, counted);
    stats.uploaded++;
    stats.bytes += d.size;
    if (p) p.done(d.digest, 'uploaded');
    else log(`${short}: done`);
  });
  const tags = targets.map((t) => t.tag).filter((t): t is string => !!t);
  for (const ref of tags.length ? tags : [img.digest]) {
    await client.putManifest(repo, ref, img.manifestBytes, img.manifest.mediaType);
    log(`manifest ${img.digest} -> ${formatReference({ ...targets[0], tag: ref.startsWith('sha256:') ? undefined : ref, digest: undefined })}`);
  }
  return stats;
}

function streamOf(b: Buffer) {
  return Readable.from([b]);
}

