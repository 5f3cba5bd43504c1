import { BlobMismatchError, ImageError } from './errors.js';
import { constants, copyFileSync, createWriteStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digest, Hasher, hexOf, sha256 } from './digest.js';
import { Descriptor, Image, ImageLayer, parseConfig, parseManifest } from './image.js';
import { Platform, platformMatches } from './platform.js';
import { isIndexType, isManifestType, MT } from './mediatypes.js';
import { Artifact, copyableEntries, imageEntries, imagesOf, ImageIndex, IndexDoc, isImageIndex, manifestDescriptor, parseIndex, platformList, selectPlatform } from './index.js';
import { LayoutStore } from './store.js';
import { tempSibling, withTempPath, writeFileAtomic } from './atomic.js';
import { holdTemp } from '../temp-paths.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

/** index.json of an OCI layout: an image index whose entries carry ref.name tags. */
export type Index = IndexDoc;

export function blobName(d: Digest): string {
  return `blobs/sha256/${hexOf(d)}`;
}

/** Checks size and sha256 while the bytes pass through; fails the stream on a mismatch. */
export function verifying(d: Descriptor, where: string): Transform {
  const h = new Hasher();
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      if (h.size > d.size) return cb(new BlobMismatchError(where, d.digest, `blob ${d.digest} is larger than its descriptor says (${d.size} bytes)`));
      cb(null, chunk);
    },
    flush(cb) {
      if (h.size !== d.size) return cb(new BlobMismatchError(where, d.digest, `blob ${d.digest} has ${h.size} bytes, its descriptor says ${d.size}`));
      const got = h.digest();
      if (got !== d.digest) return cb(new BlobMismatchError(where, d.digest, `blob ${d.digest} has digest ${got}`));
      cb();
    },
  });
}

export interface SelectOptions {
  /** Tag (ref.name annotation) or manifest digest. */
  ref?: string;
  platform?: Platform;
}

/** Picks the manifest descriptor a user meant from an index. */
function select(index: Index, where: string, opts: SelectOptions): Descriptor {
  const ms = index.manifests ?? [];
  let found: Descriptor[];
  if (opts.ref) {
    found = opts.ref.startsWith('sha256:') ? ms.filter((m) => m.digest === opts.ref) : ms.filter((m) => m.annotations?.[REF_NAME] === opts.ref);
    if (!found.length) {
      const tags = ms.map((m) => m.annotations?.[REF_NAME]).filter(Boolean);
      throw new ImageError(where, `no image tagged "${opts.ref}"${tags.length ? ` (it has: ${tags.join(', ')})` : ''}`);
    }
  } else {
    // Artifacts about an image (an attached SBOM: untagged, with artifactType) are not images to pick.
    found = ms.filter((m) => !(m as { artifactType?: string }).artifactType);
    if (!found.length) throw new ImageError(where, `the layout holds no image`);
  }
  if (found.length > 1 && opts.platform) found = found.filter((m) => platformMatches(m.platform, opts.platform!));
  if (found.length !== 1) {
    const images = ms.filter((m) => !(m as { artifactType?: string }).artifactType);
    const tags = images.map((m) => m.annotations?.[REF_NAME] ?? m.digest);
    throw new ImageError(where, `holds ${images.length} images; name one with :TAG (${tags.join(', ')})`);
  }
  return found[0];
}

function readJson<T>(store: LayoutStore, name: string): T {
  try {
    return JSON.parse(store.read(name).toString('utf8')) as T;
  } catch (e) {
    throw new ImageError(store.where, `${name} is not valid JSON (${(e as Error).message})`);
  }
}

function readBlob(store: LayoutStore, d: Descriptor): Buffer {
  const name = blobName(d.digest);
  if (!store.has(name)) throw new ImageError(store.where, `blob ${d.digest} is missing`);
  const b = store.read(name);
  if (b.length !== d.size || sha256(b) !== d.digest) throw new BlobMismatchError(store.where, d.digest, `blob ${d.digest} does not match its digest or size`);
  return b;
}

/** Reads an image manifest and its config from a layout; layers stream (verified) when opened. */
function readImageAt(store: LayoutStore, desc: Descriptor): Image {
  if (!isManifestType(desc.mediaType) && desc.mediaType) throw new ImageError(store.where, `${desc.digest} is a ${desc.mediaType}, not an image manifest`);
  const manifestBytes = readBlob(store, desc);
  const manifest = parseManifest(manifestBytes, `${store.where} ${desc.digest}`);
  const configBytes = readBlob(store, manifest.config);
  const config = parseConfig(configBytes, `${store.where} ${manifest.config.digest}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) throw new ImageError(store.where, `config lists ${config.rootfs.diff_ids.length} layers, manifest ${manifest.layers.length}`);
  const layers: ImageLayer[] = manifest.layers.map((d, i) => ({
    descriptor: d,
    diffId: config.rootfs.diff_ids[i],
    blob: {
      open: () => {
        const name = blobName(d.digest);
        if (!store.has(name)) throw new ImageError(store.where, `layer blob ${d.digest} is missing`);
        return store.open(name).pipe(verifying(d, store.where));
      },
      // Unverified (a part cannot be): for resumed uploads, which the registry verifies whole when they commit.
      openRange: (start, end) => store.openRange(blobName(d.digest), start, end),
    },
  }));
  return { manifestBytes, manifest, digest: sha256(manifestBytes), configBytes, config, layers };
}

/** An index blob of a layout with every image it lists (nested indexes are not followed). */
function readIndexAt(store: LayoutStore, desc: Descriptor): ImageIndex {
  const indexBytes = readBlob(store, desc);
  const where = `${store.where} (${desc.digest})`;
  const index = parseIndex(indexBytes, where);
  const entries = copyableEntries(index, where);
  return { indexBytes, index, digest: desc.digest, mediaType: index.mediaType ?? desc.mediaType, images: entries.map((d) => readImageAt(store, d)) };
}

/**
 * Reads what a layout entry holds (a directory, an oci-archive, or a Docker 25 docker-archive): one image, or a
 * multi-platform index with its images. With `platform`, an index yields its image for that platform.
 */
export function readLayoutArtifact(store: LayoutStore, opts: SelectOptions = {}): Artifact {
  if (!store.has('index.json')) {
    if (store.has('manifest.json')) return readLegacyDockerArchive(store);
    throw new ImageError(store.where, `not an OCI image layout (no index.json)`);
  }
  const index = readJson<Index>(store, 'index.json');
  let desc = select(index, store.where, opts);
  if (!isIndexType(desc.mediaType)) return readImageAt(store, desc);
  if (!opts.platform) return readIndexAt(store, desc);
  // A nested index (multi-platform image): choose the platform.
  for (let depth = 0; isIndexType(desc.mediaType) && depth < 4; depth++) {
    const idx = parseIndex(readBlob(store, desc), `${store.where} (${desc.digest})`);
    // An index whose one entry is another index (no platform of its own): look inside that one.
    const sub = idx.manifests.filter((d) => isIndexType(d.mediaType));
    desc = !imageEntries(idx).length && sub.length === 1 ? sub[0] : selectPlatform(idx, opts.platform, store.where);
  }
  return readImageAt(store, desc);
}

/** Reads one image from a layout: an index needs `platform` unless it lists a single image. */
export function readLayout(store: LayoutStore, opts: SelectOptions = {}): Image {
  const a = readLayoutArtifact(store, opts);
  if (!isImageIndex(a)) return a;
  if (a.images.length === 1) return a.images[0];
  throw new ImageError(store.where, `a multi-platform image (${platformList(imageEntries(a.index))}); choose one platform`);
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** docker save before Docker 25: manifest.json, config and uncompressed layer tars; digests are computed here. */
function readLegacyDockerArchive(store: LayoutStore): Image {
  const entries = readJson<DockerManifestEntry[]>(store, 'manifest.json');
  if (!Array.isArray(entries) || entries.length !== 1) throw new ImageError(store.where, `docker archive must hold exactly one image (it has ${entries?.length})`);
  const e = entries[0];
  const configBytes = store.read(e.Config);
  const config = parseConfig(configBytes, `${store.where} ${e.Config}`);
  const layers: ImageLayer[] = e.Layers.map((name, i) => {
    const size = store.size(name);
    const diffId = config.rootfs.diff_ids[i];
    // Uncompressed layers: the blob digest is the diff_id (checked while it streams).
    const d: Descriptor = { mediaType: MT.dockerLayerGzip.replace('.gzip', ''), digest: diffId, size };
    return { descriptor: d, diffId, blob: { open: () => store.open(name).pipe(verifying(d, store.where)) } };
  });
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: MT.dockerManifest,
    config: { mediaType: MT.dockerConfig, digest: sha256(configBytes), size: configBytes.length },
    layers: layers.map((l) => l.descriptor),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { manifestBytes, manifest, digest: sha256(manifestBytes), configBytes, config, layers };
}

/**
 * Puts a local blob file (verified already) at `tmp`: a hard link when both are on one filesystem (a layer of the
 * cache or of the build's scratch directory is not copied), else a copy (a reflink where the filesystem has them).
 * Blobs are never written in place, so sharing the inode is safe. False when the file is not there (any more).
 */
function linkOrCopy(file: string, tmp: string): boolean {
  try {
    linkSync(file, tmp);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
  }
  try {
    copyFileSync(file, tmp, constants.COPYFILE_FICLONE);
    return true;
  } catch (e) {
    rmSync(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Puts a blob into a layout directory unless it is there; atomic. Sources verify what they read. */
async function putBlob(dir: string, d: Descriptor, source: () => Readable, file?: string): Promise<void> {
  const path = join(dir, blobName(d.digest));
  if (existsSync(path) && statSync(path).size === d.size) return;
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const tmp = tempSibling(path);
  const release = holdTemp(tmp);
  try {
    if (!file || !linkOrCopy(file, tmp)) await pipeline(source(), createWriteStream(tmp));
    if (statSync(tmp).size !== d.size) throw new BlobMismatchError(dir, d.digest, `blob ${d.digest}: wrote ${statSync(tmp).size} bytes, expected ${d.size}`);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    release();
  }
}

function putBytes(dir: string, bytes: Buffer): void {
  const path = join(dir, blobName(sha256(bytes)));
  if (existsSync(path)) return;
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileAtomic(path, bytes);
}

/** The index.json entry for an image or an index, tagged with ref.name. */
export function indexEntry(a: Artifact, tag?: string): Descriptor {
  const ann = tag ? { [REF_NAME]: tag } : undefined;
  if (!isImageIndex(a)) return manifestDescriptor(a, ann);
  const d: Descriptor = { mediaType: a.mediaType, digest: a.digest, size: a.indexBytes.length };
  if (ann) d.annotations = ann;
  return d;
}

async function writeInto(dir: string, a: Artifact, tag: string | undefined): Promise<void> {
  for (const img of imagesOf(a)) {
    for (const l of img.layers) await putBlob(dir, l.descriptor, () => l.blob.open(), l.blob.file);
    putBytes(dir, img.configBytes);
    putBytes(dir, img.manifestBytes);
  }
  if (isImageIndex(a)) putBytes(dir, a.indexBytes);
  const indexPath = join(dir, 'index.json');
  const index: Index = existsSync(indexPath) ? JSON.parse(readFileSync(indexPath, 'utf8')) : { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
  // A tag names one image: drop the old holder of this tag (and an untagged copy of the same image).
  index.manifests = (index.manifests ?? []).filter((m) => {
    const t = m.annotations?.[REF_NAME];
    return tag ? t !== tag : !(m.digest === a.digest && !t);
  });
  index.manifests.push(indexEntry(a, tag));
  writeFileAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileAtomic(indexPath, JSON.stringify(index));
}

/**
 * Writes an image or an index (with its images) to an OCI image layout directory. A new layout is made under a
 * temporary name and renamed into place; an existing one gets the new blobs first and index.json (renamed
 * atomically) last, keeping its other tags.
 */
export async function writeOciLayout(img: Artifact, dir: string, tag?: string): Promise<void> {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new ImageError(dir, `exists and is not a directory`);
    const names = readdirSync(dir);
    if (names.length && !names.includes('oci-layout')) throw new ImageError(dir, `exists and is not an OCI image layout (no oci-layout file)`);
    if (names.length) return writeInto(dir, img, tag);
    rmSync(dir, { recursive: true });
  }
  await withTempPath(dir, async (tmp) => {
    mkdirSync(tmp); // not recursive: the real reason (read-only, permission) rather than ENOENT
    await writeInto(tmp, img, tag);
  });
}
