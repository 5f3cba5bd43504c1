import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { Entry, entryTypeOf } from './entry.js';
import { ImageLayer } from './image.js';
import { zstdDecompressStream } from './zstd.js';

/** Decompressed tar bytes of a layer (gzip, zstd or uncompressed). */
export function layerTar(layer: ImageLayer): Readable {
  const mt = layer.descriptor.mediaType;
  if (/zstd/.test(mt)) return zstdDecompressStream(layer.blob.open(), `layer ${layer.descriptor.digest}`);
  const raw = layer.blob.open();
  return /gzip/.test(mt) ? raw.pipe(createGunzip()) : raw;
}

/** Lists every entry of a layer, streaming (the layer is never held whole). */
export async function listLayer(layer: ImageLayer): Promise<Entry[]> {
  const out: Entry[] = [];
  const extract = tar.extract();
  extract.on('entry', (h, stream, next) => {
    const type = entryTypeOf(h.type);
    if (type) {
      out.push({
        path: '/' + h.name.replace(/^\.?\/*/, '').replace(/\/$/, ''),
        type,
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        size: h.size ?? 0,
        // A hard link names an archive member: as an image path, like the entry's own.
        ...(h.linkname ? { linkname: type === 'hardlink' ? '/' + h.linkname.replace(/^\.?\/*/, '') : h.linkname } : {}),
      });
    }
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(layerTar(layer), extract);
  return out;
}
