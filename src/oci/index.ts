import { Digest, sha256 } from './digest.js';
import { Descriptor, Image, platformOfConfig, sortedRecord } from './image.js';
import { ImageFormat, isManifestType, MT, mediaTypesFor } from './mediatypes.js';
import { formatPlatform, Platform, platformMatches } from './platform.js';

/** An image index (OCI image-index, or Docker manifest list) as JSON. */
export interface IndexDoc {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * A multi-platform image (go-containerregistry's v1.ImageIndex): the exact index bytes (so its digest never changes
 * on the way through) and the images it lists, in its order.
 */
export interface ImageIndex {
  indexBytes: Buffer;
  index: IndexDoc;
  digest: Digest;
  mediaType: string;
  images: Image[];
}

/** What sources give and sinks take: one image, or an index of images. */
export type Artifact = Image | ImageIndex;

export class IndexError extends Error {}

export function isImageIndex(a: Artifact): a is ImageIndex {
  return 'images' in a;
}

/** The images of an artifact: itself, or what an index lists. */
export function imagesOf(a: Artifact): Image[] {
  return isImageIndex(a) ? a.images : [a];
}

/** The descriptor an index (or an OCI layout's index.json) lists an image under, with its platform. */
export function manifestDescriptor(img: Image, annotations?: Record<string, string>): Descriptor {
  const d: Descriptor = { mediaType: img.manifest.mediaType, digest: img.digest, size: img.manifestBytes.length, platform: platformOfConfig(img.config) };
  if (annotations && Object.keys(annotations).length) d.annotations = sortedRecord(annotations);
  return d;
}

/**
 * Builds an index over `images` in the order given (so the same images give the same digest): an OCI image index,
 * or a Docker manifest list for `docker` (which can only list Docker schema 2 manifests). Two images of one
 * platform are an error: a client could not choose between them. `where` (the index being made) prefixes errors.
 */
export function assembleIndex(images: Image[], format: ImageFormat, annotations?: Record<string, string>, where?: string): ImageIndex {
  const at = where ? `${where}: ` : '';
  if (!images.length) throw new IndexError(`${at}an index needs at least one image`);
  const mediaType = mediaTypesFor(format).index;
  const seen: Platform[] = [];
  for (const img of images) {
    const p = platformOfConfig(img.config);
    const twin = seen.find((q) => formatPlatform(q) === formatPlatform(p));
    if (twin) throw new IndexError(`${at}two images for ${formatPlatform(p)}: an index holds one image per platform`);
    seen.push(p);
    if (format === 'docker' && img.manifest.mediaType !== MT.dockerManifest) {
      throw new IndexError(`${at}a Docker manifest list can only list Docker schema 2 images, and the ${formatPlatform(p)} image is ${img.manifest.mediaType}`);
    }
  }
  const index: IndexDoc = { schemaVersion: 2, mediaType, manifests: images.map((i) => manifestDescriptor(i)) };
  if (annotations && Object.keys(annotations).length && format === 'oci') index.annotations = sortedRecord(annotations);
  const indexBytes = Buffer.from(JSON.stringify(index));
  return { indexBytes, index, digest: sha256(indexBytes), mediaType, images };
}

/** Parses index bytes read from somewhere, checking the fields we rely on. */
export function parseIndex(bytes: Buffer, where: string): IndexDoc {
  let x: IndexDoc;
  try {
    x = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new IndexError(`${where}: image index is not valid JSON`);
  }
  if (!x || x.schemaVersion !== 2 || !Array.isArray(x.manifests)) throw new IndexError(`${where}: not an image index (schemaVersion 2 with manifests)`);
  for (const d of x.manifests) {
    if (!d || typeof d.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(d.digest) || typeof d.size !== 'number') throw new IndexError(`${where}: an index entry has no valid sha256 digest and size`);
  }
  return x;
}

/** The image entries of an index (nested indexes and other artifacts are not images). */
export function imageEntries(index: IndexDoc): Descriptor[] {
  return index.manifests.filter((d) => isManifestType(d.mediaType) || d.mediaType === undefined);
}

/**
 * The image entries of an index that is to be copied whole: every entry must be an image manifest, since the copy
 * keeps the index's exact bytes and so must carry everything it names (nested indexes are not followed).
 */
export function copyableEntries(index: IndexDoc, where: string): Descriptor[] {
  const other = index.manifests.filter((d) => !imageEntries(index).includes(d));
  if (other.length) throw new IndexError(`${where}: the index lists ${other.map((d) => d.mediaType ?? 'an entry without a media type').join(', ')}; only indexes of images are copied whole (choose one platform)`);
  if (!index.manifests.length) throw new IndexError(`${where}: the index lists no image`);
  return index.manifests;
}

/** Lists an index's platforms for messages: "linux/amd64, linux/arm64". */
export function platformList(entries: Descriptor[]): string {
  return entries.map((d) => (d.platform ? formatPlatform(d.platform) : d.digest)).join(', ');
}

/** The entry for `platform`: exactly one must match (an error names what the index has). */
export function selectPlatform(index: IndexDoc, platform: Platform, where: string): Descriptor {
  const entries = imageEntries(index);
  const found = entries.filter((d) => platformMatches(d.platform, platform));
  if (found.length === 1) return found[0];
  // "linux/arm" with v6 and v7 both present: the exact variant string, if given, decides.
  const exact = found.filter((d) => d.platform!.variant === platform.variant);
  if (exact.length === 1) return exact[0];
  if (!found.length) throw new IndexError(`${where}: no image for ${formatPlatform(platform)} (it has ${platformList(entries)})`);
  throw new IndexError(`${where}: ${found.length} images match ${formatPlatform(platform)} (${platformList(found)}); name the variant`);
}
