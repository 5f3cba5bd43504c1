import { PassThrough, Readable, Transform } from 'node:stream';
import { Descriptor, Image, ImageLayer, parseConfig, parseManifest, platformOfConfig } from '../oci/image.js';
import { formatPlatform, Platform, platformMatches } from '../oci/platform.js';
import { Artifact, copyableEntries, ImageIndex, IndexError, parseIndex, platformList, selectPlatform } from '../oci/index.js';
import { isIndexType, isManifestType } from '../oci/mediatypes.js';
import { sha256 } from '../oci/digest.js';
import { verifying } from '../oci/layout.js';
import { RegistryClient } from './client.js';
import { RegistryError, TooLargeError } from './errors.js';
import { formatReference, Reference, refIdentifier } from './reference.js';

type Fetched = { bytes: Buffer; mediaType: string };

/**
 * Reads an image from a registry: the manifest with a full Accept list, a platform chosen from an index (the one
 * asked for; without one, the only image or linux/amd64), the config; layers stream from the registry, verified
 * against their digests while they stream, and remember their repository so a push to the same registry can mount
 * them.
 */
export async function pullImage(client: RegistryClient, ref: Reference, platform?: Platform): Promise<Image> {
  const repo = ref.repository;
  let m: Fetched = await client.getManifest(repo, refIdentifier(ref));
  for (let depth = 0; isIndexType(m.mediaType) && depth < 3; depth++) {
    const idx = parseIndex(m.bytes, formatReference(ref));
    const ms = idx.manifests.filter((d) => isManifestType(d.mediaType) || isIndexType(d.mediaType));
    let pick: Descriptor | undefined;
    try {
      pick = platform ? selectPlatform(idx, platform, formatReference(ref)) : ms.length === 1 ? ms[0] : ms.find((d) => platformMatches(d.platform, { os: 'linux', architecture: 'amd64' }));
    } catch (e) {
      if (e instanceof IndexError) throw new RegistryError(e.message);
      throw e;
    }
    if (!pick) throw new RegistryError(`${formatReference(ref)}: no image for this platform (it has ${platformList(ms)})`);
    m = await client.getManifest(repo, pick.digest);
  }
  return imageFrom(client, ref, m, platform);
}

/**
 * Reads what a reference names: an image, or an index with every image it lists (each fetched by digest; nested
 * indexes and non-image entries are left out of `images` but stay in the exact index bytes).
 */
export async function pullArtifact(client: RegistryClient, ref: Reference): Promise<Artifact> {
  const m = await client.getManifest(ref.repository, refIdentifier(ref));
  if (!isIndexType(m.mediaType)) return imageFrom(client, ref, m);
  let index;
  try {
    index = parseIndex(m.bytes, formatReference(ref));
  } catch (e) {
    throw new RegistryError((e as Error).message);
  }
  let entries;
  try {
    entries = copyableEntries(index, formatReference(ref));
  } catch (e) {
    throw new RegistryError((e as Error).message);
  }
  const images: Image[] = [];
  for (const d of entries) images.push(await imageFrom(client, ref, await client.getManifest(ref.repository, d.digest), d.platform));
  if (!images.length) throw new RegistryError(`${formatReference(ref)}: the index lists no image manifest`);
  const idx: ImageIndex = { indexBytes: m.bytes, index, digest: sha256(m.bytes), mediaType: m.mediaType, images };
  return idx;
}

/** Image configs are JSON of a few KiB; distribution's own limit for what it reads into memory is 4 MiB. */
const MAX_CONFIG = 16 * 1024 * 1024;

async function imageFrom(client: RegistryClient, ref: Reference, m: Fetched, platform?: Platform): Promise<Image> {
  const repo = ref.repository;
  if (!isManifestType(m.mediaType)) throw new RegistryError(`${formatReference(ref)}: ${m.mediaType || 'unknown media type'} is not an image manifest`);
  const manifest = parseManifest(m.bytes, formatReference(ref));
  // The config is read into memory: a descriptor claiming gigabytes is refused before any byte is fetched.
  if (manifest.config.size > MAX_CONFIG) throw new TooLargeError(`${formatReference(ref)} config ${manifest.config.digest}`, 'image config', MAX_CONFIG);
  const chunks: Buffer[] = [];
  const check = verifying(manifest.config, formatReference(ref));
  // pipe() does not forward errors: a failed download must end the loop below, not crash as an unhandled event.
  Readable.from(client.blobBytes(repo, manifest.config.digest))
    .on('error', (e) => check.destroy(e))
    .pipe(check);
  for await (const c of check) chunks.push(c as Buffer);
  const configBytes = Buffer.concat(chunks);
  const config = parseConfig(configBytes, `${formatReference(ref)} config`);
  if (platform && !platformMatches(platformOfConfig(config), platform)) {
    throw new RegistryError(`${formatReference(ref)} is ${formatPlatform(platformOfConfig(config))}, not ${formatPlatform(platform)}`);
  }
  const layers: ImageLayer[] = manifest.layers.map((d, i) => ({
    descriptor: d,
    diffId: config.rootfs.diff_ids[i],
    origin: { registry: ref.registry, repository: ref.repository },
    blob: {
      open: () => {
        const out = new PassThrough();
        // Download progress (a task per blob); it ends with the stream, whichever way.
        const task = client.log.task(`download ${d.digest.slice(7, 19)}`, d.size);
        const counted = new Transform({ transform: (c: Buffer, _e, cb) => (task.add(c.length), cb(null, c)) });
        out.on('close', () => task.done(out.readableEnded ? 'done' : 'stopped'));
        Readable.from(client.blobBytes(repo, d.digest))
          .on('error', (e) => out.destroy(e))
          .pipe(counted)
          .pipe(verifying(d, formatReference(ref)))
          .on('error', (e) => out.destroy(e))
          .pipe(out);
        return out;
      },
    },
  }));
  return { manifestBytes: m.bytes, manifest, digest: sha256(m.bytes), configBytes, config, layers };
}
