/**
 * What build, push, pull and inspect report about an image: ONE JSON shape for every command's --json (documented in
 * the README, "JSON output"), and the CI files derived from it (--image-refs, --metadata-file, --iidfile).
 */
import { writeFileAtomic } from '../oci/atomic.js';
import { Image, platformOfConfig, RunConfig } from '../oci/image.js';
import { Artifact, isImageIndex } from '../oci/index.js';
import { formatPlatform } from '../oci/platform.js';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { LocalImageRef } from '../refs/image-ref.js';
import { UsageError, UserError } from './errors.js';

export interface LayerJson {
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
  /** The history entry of the layer ("ocislim build: the application (1 file)"). */
  createdBy?: string;
  /** Known for layers built in this run. */
  uncompressedSize?: number;
  files?: unknown[];
}

export interface ImageJson {
  /** The manifest's digest: the image's identity, what REF@DIGEST pins. */
  digest: string;
  /** The manifest's media type (OCI or Docker schema 2) and size in bytes. */
  mediaType: string;
  size: number;
  /** "os/arch[/variant]". */
  platform: string;
  /** The config blob's descriptor. */
  config: { digest: string; mediaType: string; size: number };
  created?: string;
  /** Entrypoint, Cmd, Env, ExposedPorts, ... (the config's "config" object). */
  runConfig: RunConfig;
  annotations: Record<string, string>;
  layers: LayerJson[];
  /** Every tag the image was given: of local outputs and of registry pushes. */
  tags: string[];
  /** Local locations written (oci:DIR:TAG, oci-archive:FILE:TAG, docker-archive:FILE[:NAME:TAG]). */
  outputs: string[];
  /** Every registry reference pushed, one per tag: REGISTRY/REPO:TAG@DIGEST. */
  pushed: string[];
  explain?: unknown;
  /** inspect: the Debian packages the image declares (/var/lib/dpkg/status or status.d records). */
  packages?: { name: string; version: string; arch: string; source: string }[];
}

/** A push to one repository: its REPO@DIGEST line and the tags it was given. */
export interface Pushed {
  /** REGISTRY/REPO@DIGEST (the digest the registry stored). */
  ref: string;
  tags: string[];
}

/** A local output: its location and tag. */
export interface Written {
  ref: string;
  tag?: string;
}

export function imageJson(
  img: Image,
  o: { outputs?: Written[]; pushed?: Pushed[]; uncompressed?: Map<string, number>; files?: unknown[][]; explain?: unknown; packages?: ImageJson['packages'] } = {},
): ImageJson {
  const history = (img.config.history ?? []).filter((h) => !h.empty_layer);
  const pushed = (o.pushed ?? []).flatMap((p) => {
    const [repo, digest] = p.ref.split('@');
    return p.tags.length ? p.tags.map((t) => `${repo}:${t}@${digest}`) : [p.ref];
  });
  const tags = [...new Set([...(o.outputs ?? []).flatMap((w) => (w.tag ? [w.tag] : [])), ...(o.pushed ?? []).flatMap((p) => p.tags)])];
  return {
    digest: img.digest,
    mediaType: img.manifest.mediaType,
    size: img.manifestBytes.length,
    platform: formatPlatform(platformOfConfig(img.config)),
    config: { digest: img.manifest.config.digest, mediaType: img.manifest.config.mediaType, size: img.manifest.config.size },
    ...(img.config.created ? { created: img.config.created } : {}),
    runConfig: img.config.config,
    annotations: img.manifest.annotations ?? {},
    layers: img.layers.map((l, i) => {
      const u = o.uncompressed?.get(l.descriptor.digest);
      return {
        digest: l.descriptor.digest,
        mediaType: l.descriptor.mediaType,
        size: l.descriptor.size,
        diffId: l.diffId,
        ...(history[i]?.created_by ? { createdBy: history[i].created_by } : {}),
        ...(u !== undefined ? { uncompressedSize: u } : {}),
        ...(o.files ? { files: o.files[i] } : {}),
      };
    }),
    tags,
    outputs: (o.outputs ?? []).map((w) => w.ref),
    pushed,
    ...(o.explain ? { explain: o.explain } : {}),
    ...(o.packages ? { packages: o.packages } : {}),
  };
}

/** A multi-platform image: the index's identity, each platform's image in the shape of ImageJson. */
export interface IndexJson {
  /** The index's digest: what REF@DIGEST pins. */
  digest: string;
  /** OCI image index or Docker manifest list, and its size in bytes. */
  mediaType: string;
  size: number;
  /** "os/arch[/variant]" of each image, in the index's order. */
  platforms: string[];
  manifests: Omit<ImageJson, 'tags' | 'outputs' | 'pushed'>[];
  tags: string[];
  outputs: string[];
  pushed: string[];
}

/** imageJson for an image, or for an index and each of its images (`explain` then holds one entry per image). */
export function artifactJson(
  a: Artifact,
  o: { outputs?: Written[]; pushed?: Pushed[]; uncompressed?: Map<string, number>; files?: unknown[][]; explain?: unknown } = {},
): ImageJson | IndexJson {
  if (!isImageIndex(a)) return imageJson(a, o);
  const top = imageJson(a.images[0], { outputs: o.outputs, pushed: o.pushed });
  const explains = Array.isArray(o.explain) ? o.explain : [];
  const manifests = a.images.map((img, i) => {
    const { tags: _t, outputs: _o, pushed: _p, ...rest } = imageJson(img, { uncompressed: o.uncompressed, explain: explains[i] });
    return rest;
  });
  return { digest: a.digest, mediaType: a.mediaType, size: a.indexBytes.length, platforms: manifests.map((m) => m.platform), manifests, tags: top.tags, outputs: top.outputs, pushed: top.pushed };
}

/** The CI files a command was asked for, written atomically once the image is everywhere it goes. */
export interface CiFiles {
  imageRefs?: string;
  metadataFile?: string;
  iidfile?: string;
}

/** The CI file flags, checked before any work: each must name a file in an existing directory. */
export function ciFilesArg(a: CiFiles): CiFiles {
  const check = (flag: string, path: string | undefined) => {
    if (path === undefined) return;
    if (!path) throw new UsageError(`${flag}: give a file name`);
    let st;
    try {
      st = statSync(dirname(resolve(path)));
    } catch {
      throw new UserError(`${flag} ${path}: no such directory`);
    }
    if (!st.isDirectory()) throw new UserError(`${flag} ${path}: ${dirname(path)} is not a directory`);
    if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`${flag} ${path}: is a directory`);
  };
  check('--image-refs', a.imageRefs);
  check('--metadata-file', a.metadataFile);
  check('--iidfile', a.iidfile);
  return { imageRefs: a.imageRefs, metadataFile: a.metadataFile, iidfile: a.iidfile };
}

/** The tag of a local output as written: oci:DIR:TAG, oci-archive:FILE:TAG, docker-archive:FILE:NAME:TAG. */
export function localTag(written: string, o: LocalImageRef): string | undefined {
  const t = o.location.tag ?? (o.location.kind === 'docker-archive' ? undefined : written.slice(written.lastIndexOf(':') + 1));
  return t === undefined ? undefined : t.slice(t.lastIndexOf(':') + 1);
}

/**
 * --image-refs: one reference per line, each push's REGISTRY/REPO@DIGEST (as ko and crane write them), then each
 * local output. --metadata-file: buildx's keys. --iidfile: the manifest digest.
 */
export function writeCiFiles(files: CiFiles, j: ImageJson | IndexJson, pushed: Pushed[]): void {
  const write = (flag: string, path: string | undefined, text: string) => {
    if (!path) return;
    try {
      writeFileAtomic(path, text);
    } catch (e) {
      throw new UserError(`${flag} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`);
    }
  };
  write('--image-refs', files.imageRefs, [...pushed.map((p) => p.ref), ...j.outputs].map((l) => l + '\n').join(''));
  const names = j.pushed.map((p) => p.slice(0, p.lastIndexOf('@')));
  const metadata = {
    ...('config' in j ? { 'containerimage.config.digest': j.config.digest } : {}),
    'containerimage.descriptor': { mediaType: j.mediaType, digest: j.digest, size: j.size },
    'containerimage.digest': j.digest,
    ...(names.length ? { 'image.name': names.join(',') } : {}),
  };
  write('--metadata-file', files.metadataFile, JSON.stringify(metadata, null, 2) + '\n');
  write('--iidfile', files.iidfile, j.digest);
}
