import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { ImageLayer } from './image.js';

export interface LayerFile {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname?: string;
}

/** Decompressed tar bytes of a layer (gzip or uncompressed; zstd is not supported). */
export function layerTar(layer: ImageLayer): Readable {
  const mt = layer.descriptor.mediaType;
  if (/zstd/.test(mt)) throw new Error(`layer ${layer.descriptor.digest}: zstd layers are not supported`);
  const raw = layer.blob.open();
  return /gzip/.test(mt) ? raw.pipe(createGunzip()) : raw;
}

/** Lists every entry of a layer, streaming (the layer is never held whole). */
export async function listLayer(layer: ImageLayer): Promise<LayerFile[]> {
  const out: LayerFile[] = [];
  const extract = tar.extract();
  extract.on('entry', (h, stream, next) => {
    out.push({
      path: '/' + h.name.replace(/^\.?\/*/, '').replace(/\/$/, ''),
      type: h.type ?? 'file',
      mode: (h.mode ?? 0) & 0o7777,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      size: h.size ?? 0,
      ...(h.linkname ? { linkname: h.linkname } : {}),
    });
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(layerTar(layer), extract);
  return out;
}
