import { ImageError } from './errors.js';
import { Readable } from 'node:stream';
import { Digest, sha256 } from './digest.js';
import { ImageFormat, MT, mediaTypesFor } from './mediatypes.js';
import { Platform, platformRecord } from './platform.js';


export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

/** The runtime part of an image config (OCI image-spec config.md "config"). */
export interface RunConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config: RunConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** Where a blob's bytes come from: a local file, an archive member, a registry. */
export interface BlobReader {
  open(): Readable;
  /** Bytes [start, end) without reading what comes before, where the source allows it (files). */
  openRange?(start: number, end: number): Readable;
  /**
   * A local file holding exactly the blob's bytes, already verified (a layer this process wrote): a sink on the same
   * filesystem links it instead of copying it.
   */
  file?: string;
}

export interface ImageLayer {
  descriptor: Descriptor;
  diffId: Digest;
  blob: BlobReader;
  /** Registry repository the blob can be mounted from (layers of a pulled image). */
  origin?: { registry: string; repository: string };
  /**
   * Registry repository that received this blob during the build (uploaded while it was compressed). `done`, when
   * the upload may still be finishing: true once the registry has the blob, false when it was given up (a push then
   * sends the blob the usual way).
   */
  uploaded?: { registry: string; repository: string; done?: Promise<boolean> };
}

/**
 * One image, whatever it came from or goes to (go-containerregistry's v1.Image): the exact manifest and config
 * bytes (so digests never change on the way through) and a way to read each layer.
 */
export interface Image {
  manifestBytes: Buffer;
  manifest: Manifest;
  digest: Digest;
  configBytes: Buffer;
  config: ImageConfig;
  layers: ImageLayer[];
}

export function platformOfConfig(c: ImageConfig): Platform {
  return platformRecord({ os: c.os, architecture: c.architecture, variant: c.variant });
}

/** Serialises config and manifest (fixed key order, no whitespace) and computes the digests. */
export function assembleImage(config: ImageConfig, layers: ImageLayer[], format: ImageFormat, annotations?: Record<string, string>): Image {
  const mt = mediaTypesFor(format);
  const configBytes = Buffer.from(JSON.stringify(config));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: mt.manifest,
    config: { mediaType: mt.config, digest: sha256(configBytes), size: configBytes.length },
    layers: layers.map((l) => l.descriptor),
  };
  if (annotations && Object.keys(annotations).length && format === 'oci') manifest.annotations = sortedRecord(annotations);
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { manifestBytes, manifest, digest: sha256(manifestBytes), configBytes, config, layers };
}

export function sortedRecord<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Parses config bytes read from somewhere, checking the fields we rely on. */
export function parseConfig(bytes: Buffer, where: string): ImageConfig {
  let c: ImageConfig;
  try {
    c = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ImageError(where, `image config is not valid JSON`);
  }
  if (!c || typeof c !== 'object' || !c.rootfs || !Array.isArray(c.rootfs.diff_ids)) throw new ImageError(where, `image config has no rootfs.diff_ids`);
  c.config ??= {};
  return c;
}

export function parseManifest(bytes: Buffer, where: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ImageError(where, `manifest is not valid JSON`);
  }
  if (!m || m.schemaVersion !== 2 || !m.config || !Array.isArray(m.layers)) throw new ImageError(where, `not an image manifest (schemaVersion 2 with config and layers)`);
  return m;
}

/** Layer media types with a Docker schema 2 equivalent (the bytes are the same; only the name differs). */
const TO_DOCKER_LAYER: Record<string, string> = {
  [MT.ociLayerGzip]: MT.dockerLayerGzip,
  [MT.dockerLayerGzip]: MT.dockerLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
};

/**
 * The same image as Docker schema 2, for registries that refuse OCI manifests: same config and layer bytes (so the
 * same blobs), other media type names, no manifest annotations (schema 2 has none). Null when a layer has no
 * schema 2 equivalent (zstd, uncompressed tar).
 */
export function toDockerSchema2(img: Image): Image | null {
  const layers: ImageLayer[] = [];
  for (const l of img.layers) {
    const mediaType = TO_DOCKER_LAYER[l.descriptor.mediaType];
    if (!mediaType) return null;
    layers.push({ ...l, descriptor: { ...l.descriptor, mediaType } });
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MT.dockerManifest,
    config: { mediaType: MT.dockerConfig, digest: img.manifest.config.digest, size: img.manifest.config.size },
    layers: layers.map((l) => l.descriptor),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { manifestBytes, manifest, digest: sha256(manifestBytes), configBytes: img.configBytes, config: img.config, layers };
}
