import { BlobMismatchError, ImageError } from './errors.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { Digest, sha256 } from './digest.js';
import { Descriptor } from './image.js';
import { blobName, Index } from './layout.js';
import { MT } from './mediatypes.js';
import { LayoutStore } from './store.js';

/** The empty JSON blob "{}" (image-spec manifest.md "Guidance for an Empty Descriptor"). */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_DESCRIPTOR: Descriptor = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(EMPTY_JSON), size: 2 };

/** A descriptor with the OCI 1.1 artifactType. */
export interface ArtifactDescriptor extends Descriptor {
  artifactType?: string;
}

/** An OCI 1.1 artifact: an image manifest with artifactType, the empty config, one blob, and a subject. */
export interface Referrer {
  manifestBytes: Buffer;
  digest: Digest;
  artifactType: string;
  annotations: Record<string, string>;
  subject: Descriptor;
  /** Blobs the manifest names (the empty config and the document), with their bytes. */
  blobs: { descriptor: Descriptor; bytes: Buffer }[];
}

export interface ArtifactManifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * An artifact holding one document about the image manifest `subject` (image-spec v1.1 manifest.md: artifactType
 * set, config the empty descriptor, subject the described manifest). Deterministic: same inputs, same digest.
 */
export function makeArtifact(subject: Descriptor, artifactType: string, doc: Buffer, annotations: Record<string, string>, title?: string): Referrer {
  const layer: Descriptor = { mediaType: artifactType, digest: sha256(doc), size: doc.length };
  if (title) layer.annotations = { 'org.opencontainers.image.title': title };
  const manifest: ArtifactManifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return {
    manifestBytes,
    digest: sha256(manifestBytes),
    artifactType,
    annotations,
    subject: manifest.subject!,
    blobs: [
      { descriptor: EMPTY_DESCRIPTOR, bytes: EMPTY_JSON },
      { descriptor: layer, bytes: doc },
    ],
  };
}

/** The descriptor of an artifact as a referrers index lists it: artifactType and the manifest's annotations. */
export function referrerDescriptor(a: Referrer): ArtifactDescriptor {
  const d: ArtifactDescriptor = { mediaType: MT.ociManifest, digest: a.digest, size: a.manifestBytes.length, artifactType: a.artifactType };
  if (Object.keys(a.annotations).length) d.annotations = { ...a.annotations };
  return d;
}

/**
 * Stores an artifact in an OCI layout directory: its blobs, and an untagged index.json entry with artifactType
 * (how oras and the image-layout spec keep referrers). Earlier referrers of the same subject and type stay; the
 * same artifact is listed once.
 */
export function addArtifactToLayout(dir: string, a: Referrer): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of [...a.blobs, { descriptor: { digest: a.digest }, bytes: a.manifestBytes }]) {
    const p = join(dir, blobName(b.descriptor.digest));
    if (!existsSync(p)) writeFileAtomic(p, b.bytes);
  }
  const indexPath = join(dir, 'index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as Index;
  if (!(index.manifests ?? []).some((m) => m.digest === a.digest)) {
    index.manifests = [...(index.manifests ?? []), referrerDescriptor(a)];
    writeFileAtomic(indexPath, JSON.stringify(index));
  }
}

/** Artifacts in a layout whose subject is `subject` (index.json entries with an artifactType), optionally of one type. */
export function layoutReferrers(store: LayoutStore, subject: Digest, artifactType?: string): { descriptor: ArtifactDescriptor; manifest: ArtifactManifest }[] {
  if (!store.has('index.json')) return [];
  const index = JSON.parse(store.read('index.json').toString('utf8')) as Index;
  const out: { descriptor: ArtifactDescriptor; manifest: ArtifactManifest }[] = [];
  for (const d of (index.manifests ?? []) as ArtifactDescriptor[]) {
    if (!d.artifactType || (artifactType && d.artifactType !== artifactType)) continue;
    const name = blobName(d.digest);
    if (!store.has(name)) continue;
    const bytes = store.read(name);
    if (sha256(bytes) !== d.digest) throw new BlobMismatchError(store.where, d.digest, `blob ${d.digest} does not match its digest`);
    const m = JSON.parse(bytes.toString('utf8')) as ArtifactManifest;
    if (m.subject?.digest === subject) out.push({ descriptor: d, manifest: m });
  }
  return out;
}

/** Reads a blob of a layout, checking its digest. */
export function readLayoutBlob(store: LayoutStore, d: Descriptor): Buffer {
  const name = blobName(d.digest);
  if (!store.has(name)) throw new ImageError(store.where, `blob ${d.digest} is missing`);
  const b = store.read(name);
  if (sha256(b) !== d.digest) throw new BlobMismatchError(store.where, d.digest, `blob ${d.digest} does not match its digest`);
  return b;
}

/** The referrers tag schema (distribution-spec v1.1 "Referrers Tag Schema"): sha256:HEX → sha256-HEX. */
export function referrersTag(subject: Digest): string {
  const [alg, hex] = subject.split(':');
  return `${alg.slice(0, 32)}-${hex.slice(0, 64)}`.replace(/[^a-zA-Z0-9._-]/g, '-');
}

/** An artifact stored in a layout (found by layoutReferrers), with its blobs, ready to attach elsewhere. */
export function artifactFromLayout(store: LayoutStore, found: { descriptor: ArtifactDescriptor; manifest: ArtifactManifest }): Referrer {
  const m = found.manifest;
  const manifestBytes = readLayoutBlob(store, found.descriptor);
  const blobs = [m.config, ...(m.layers ?? [])].map((d) => ({ descriptor: d, bytes: readLayoutBlob(store, d) }));
  return {
    manifestBytes,
    digest: found.descriptor.digest,
    artifactType: m.artifactType ?? m.config.mediaType,
    annotations: m.annotations ?? {},
    subject: m.subject!,
    blobs,
  };
}
