import { ImageError, LocationError } from './errors.js';
import { existsSync, statSync } from 'node:fs';
import { writeDockerArchive, writeOciArchive } from './archive.js';
import { Image } from './image.js';
import { Platform } from './platform.js';
import { readLayout, readLayoutArtifact, writeOciLayout } from './layout.js';
import { Artifact } from './index.js';
import { DirStore, TarStore } from './store.js';

export type LocalKind = 'oci' | 'oci-archive' | 'docker-archive';

/** A local image location in skopeo's transport syntax: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]. */
export interface LocalRef {
  kind: LocalKind;
  path: string;
  /** Tag (oci, oci-archive) or NAME:TAG (docker-archive). */
  tag?: string;
}

export function isLocalRef(s: string): boolean {
  return /^(oci|oci-archive|docker-archive):/.test(s);
}

/** Parses a transport reference; as in skopeo, the path ends at the first ":" after the transport. */
export function parseLocalRef(s: string): LocalRef {
  const m = /^(oci|oci-archive|docker-archive):(.*)$/.exec(s);
  if (!m) throw new LocationError(s, 'is not a local image reference (oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG])');
  const kind = m[1] as LocalKind;
  const rest = m[2];
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  if (!path) throw new LocationError(s, `the ${kind} reference has no path`);
  if (tag !== undefined) {
    if (kind === 'docker-archive') {
      if (!/^[^:]+(:\d+)?[^:]*:[\w][\w.-]{0,127}$/.test(tag) || /[A-Z]/.test(tag.split(':')[0])) throw new LocationError(s, `"${tag}" is not a NAME:TAG reference`);
    } else if (!/^[A-Za-z0-9._:\-@/+]+$/.test(tag) || tag === '') {
      throw new LocationError(s, `"${tag}" is not a valid tag`);
    }
  }
  return { kind, path, tag };
}

export function formatLocalRef(r: LocalRef): string {
  return `${r.kind}:${r.path}${r.tag ? ':' + r.tag : ''}`;
}

/** Reads an image from a local reference (an index needs `platform` unless it lists one image). */
export function readLocalImage(ref: LocalRef, platform?: Platform): Image {
  return readLayout(openLocal(ref), { ref: selector(ref), platform });
}

/** Reads what a local reference holds: an image, or a multi-platform index with its images (unless `platform`). */
export function readLocalArtifact(ref: LocalRef, platform?: Platform): Artifact {
  return readLayoutArtifact(openLocal(ref), { ref: selector(ref), platform });
}

// A docker-archive's NAME:TAG is not an index tag: Docker 25 writes ref.name as the tag alone, so match loosely.
function selector(ref: LocalRef): string | undefined {
  return ref.kind === 'docker-archive' ? undefined : ref.tag;
}

function openLocal(ref: LocalRef): DirStore | TarStore {
  if (!existsSync(ref.path)) throw new ImageError(formatLocalRef(ref), `${ref.path} does not exist`);
  const isDir = statSync(ref.path).isDirectory();
  if (ref.kind === 'oci' && !isDir) throw new ImageError(formatLocalRef(ref), `${ref.path} is not a directory (use oci-archive: for a tar)`);
  if (ref.kind !== 'oci' && isDir) throw new ImageError(formatLocalRef(ref), `${ref.path} is a directory (use oci: for a layout directory)`);
  return ref.kind === 'oci' ? new DirStore(ref.path) : new TarStore(ref.path);
}

/** Writes an image or an index to a local reference (atomically); a docker-archive cannot hold an index. */
export async function writeLocalImage(img: Artifact, ref: LocalRef, mtime = 0): Promise<void> {
  switch (ref.kind) {
    case 'oci':
      return writeOciLayout(img, ref.path, ref.tag);
    case 'oci-archive':
      return writeOciArchive(img, ref.path, ref.tag, mtime);
    case 'docker-archive':
      return writeDockerArchive(img, ref.path, ref.tag, mtime);
  }
}
