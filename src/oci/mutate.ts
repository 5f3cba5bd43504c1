import { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { assembleImage, HistoryEntry, Image, ImageConfig, ImageLayer, RunConfig } from './image.js';
import { LayerBlob } from './layer.js';
import { ImageFormat } from './mediatypes.js';
import { Platform } from './platform.js';

/**
 * The empty image, scratch (go-containerregistry's empty.Image): no layers, an empty run config, no platform yet
 * (append sets it). Build on it with append().
 */
export const empty: Image = assembleImage({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, [], 'oci');

/** A layer to add and the history entry that says where it came from (ggcr's mutate.Addendum). */
export interface Addendum {
  layer: ImageLayer;
  history?: HistoryEntry;
}

/** What append changes in the config besides layers and history (ggcr's mutate.ConfigFile, as a patch). */
export interface ConfigPatch {
  /** The image's creation time (RFC 3339). */
  created?: string;
  /** The image's author (Dockerfile MAINTAINER; the base's is kept when absent). */
  author?: string;
  /** The image's platform (the base's is kept when absent). */
  platform?: Platform;
  /** The new run config: receives the base's, returns the image's. */
  config?: (base: RunConfig) => RunConfig;
}

export interface AppendOptions {
  /** Media types of the new manifest: oci (default) or docker (schema 2). */
  format?: ImageFormat;
  /** Manifest annotations (OCI only; the base's are not inherited, since they describe the base). */
  annotations?: Record<string, string>;
}

/** A layer written to disk (oci/layer.ts writeLayer) as an image layer: its blob streams from the file. */
export function layerFromBlob(b: LayerBlob): ImageLayer {
  return {
    descriptor: { mediaType: b.mediaType, digest: b.digest, size: b.size },
    diffId: b.diffId,
    blob: {
      open: () => createReadStream(b.path, { highWaterMark: 1 << 20 }),
      openRange: (start, end) => (end <= start ? Readable.from([]) : createReadStream(b.path, { start, end: end - 1, highWaterMark: 1 << 20 })),
      file: b.path,
    },
  };
}

/**
 * A new image: the base's layers followed by `layers` (ggcr's mutate.AppendLayers + mutate.ConfigFile). The config
 * keeps the base's diff_ids and history and adds the new ones; `patch` sets the time, platform and run config. The
 * config is rebuilt from the fields ocislim models (created, platform, run config, rootfs, history), in a fixed key
 * order, so the same inputs always give the same digest.
 */
export function append(base: Image, layers: Addendum[], patch: ConfigPatch = {}, opts: AppendOptions = {}): Image {
  const bc = base.config;
  const platform = patch.platform ?? { os: bc.os, architecture: bc.architecture, ...(bc.variant ? { variant: bc.variant } : {}) };
  const config: ImageConfig = {} as ImageConfig;
  const created = patch.created ?? bc.created;
  if (created !== undefined) config.created = created;
  const author = patch.author ?? bc.author;
  if (author !== undefined) config.author = author;
  config.architecture = platform.architecture;
  config.os = platform.os;
  if (platform.variant) config.variant = platform.variant;
  config.config = patch.config ? patch.config(bc.config ?? {}) : (bc.config ?? {});
  config.rootfs = { type: 'layers', diff_ids: [...bc.rootfs.diff_ids, ...layers.map((a) => a.layer.diffId)] };
  config.history = [...(bc.history ?? []), ...layers.map((a) => a.history ?? {})];
  return assembleImage(config, [...base.layers, ...layers.map((a) => a.layer)], opts.format ?? 'oci', opts.annotations);
}
