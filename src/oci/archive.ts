import { createWriteStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { blobName, indexEntry, Index } from './layout.js';
import { Artifact, imagesOf, isImageIndex } from './index.js';
import { MT } from './mediatypes.js';
import { encodeHeader, END_OF_ARCHIVE, padding } from './tar.js';
import { withTempPath } from './atomic.js';
import { ImageError } from './errors.js';

export class DockerArchiveError extends Error {}

interface Member {
  name: string;
  size: number;
  bytes?: Buffer;
  open?: () => Readable;
}

/** Streams members into a tar (sorted, fixed metadata), with the two directory entries an OCI layout has. */
async function* archiveChunks(members: Member[], mtime: number): AsyncGenerator<Buffer> {
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const dirs = ['blobs', 'blobs/sha256'];
  for (const d of dirs) yield encodeHeader({ path: d, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime });
  for (const m of sorted) {
    yield encodeHeader({ path: m.name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: m.size, mtime });
    if (m.bytes) yield m.bytes;
    else for await (const c of m.open!()) yield c as Buffer;
    const pad = padding(m.size);
    if (pad.length) yield pad;
  }
  yield END_OF_ARCHIVE;
}

function layoutMembers(a: Artifact, tag: string | undefined, annotations?: Record<string, string>): Member[] {
  const entry = indexEntry(a, tag);
  if (annotations) entry.annotations = { ...annotations, ...entry.annotations };
  const index: Index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [entry] };
  const json = (o: unknown) => Buffer.from(JSON.stringify(o));
  const members: Member[] = [
    { name: 'oci-layout', size: 0, bytes: json({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', size: 0, bytes: json(index) },
  ];
  if (isImageIndex(a)) members.push({ name: blobName(a.digest), size: 0, bytes: a.indexBytes });
  const seen = new Set(members.map((m) => m.name));
  const add = (m: Member) => {
    if (seen.has(m.name)) return;
    seen.add(m.name);
    members.push(m);
  };
  for (const img of imagesOf(a)) {
    add({ name: blobName(img.digest), size: 0, bytes: img.manifestBytes });
    add({ name: blobName(img.manifest.config.digest), size: 0, bytes: img.configBytes });
    // Sources verify what they read (readLayout does); a freshly built layer needs no second hash.
    for (const l of img.layers) add({ name: blobName(l.descriptor.digest), size: l.descriptor.size, open: () => l.blob.open() });
  }
  for (const m of members) if (m.bytes) m.size = m.bytes.length;
  return members;
}

async function writeTar(file: string, members: Member[], mtime: number): Promise<void> {
  // An archive replaces a file of that name, never a directory (which would be removed with all it holds).
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new ImageError(file, 'exists and is a directory (an archive is written as a file)');
  await withTempPath(file, async (tmp) => {
    await pipeline(Readable.from(archiveChunks(members, mtime)), createWriteStream(tmp, { mode: 0o644 }));
  });
}

/** oci-archive: an OCI image layout in a tar, holding an image or an index with its images. */
export async function writeOciArchive(img: Artifact, file: string, tag: string | undefined, mtime = 0): Promise<void> {
  await writeTar(file, layoutMembers(img, tag), mtime);
}

/**
 * docker-archive as Docker 25 writes it: an OCI layout plus manifest.json, so that `docker load`, `podman load` and
 * skopeo read it.
 */
export async function writeDockerArchive(a: Artifact, file: string, repoTag: string | undefined, mtime = 0): Promise<void> {
  // docker load takes manifest.json's one config per image; a multi-platform image has no such form.
  if (isImageIndex(a)) throw new DockerArchiveError(`${file}: a docker-archive holds one image, and this is a multi-platform image (${a.images.length} platforms); write oci: or oci-archive:, or choose one platform`);
  const img = a;
  // As Docker 25: ref.name holds the tag alone, io.containerd.image.name the whole name.
  const tagOnly = repoTag ? repoTag.slice(repoTag.lastIndexOf(':') + 1) : undefined;
  const members = layoutMembers(img, tagOnly, repoTag ? { 'io.containerd.image.name': repoTag } : undefined);
  const manifestJson = Buffer.from(
    JSON.stringify([
      {
        Config: blobName(img.manifest.config.digest),
        RepoTags: repoTag ? [repoTag] : [],
        Layers: img.layers.map((l) => blobName(l.descriptor.digest)),
      },
    ]),
  );
  members.push({ name: 'manifest.json', size: manifestJson.length, bytes: manifestJson });
  await writeTar(file, members, mtime);
}

