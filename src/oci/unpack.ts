import { createWriteStream, linkSync, mkdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { Image } from './image.js';
import { layerTar } from './files.js';

/**
 * Unpacks an image's layers into a directory, in order (whiteouts applied), for static analysis of what it holds.
 * Names are confined to the directory; ownership and special files are not reproduced.
 */
export async function unpackImage(img: Image, dir: string): Promise<void> {
  const root = realpathSync(dir);
  // A symlink in an earlier layer must never lead a later write out of the directory.
  const inside = (p: string) => {
    try {
      const r = realpathSync(p);
      return r === root || r.startsWith(root + '/');
    } catch {
      return false;
    }
  };
  const ensureDir = (d: string): boolean => {
    if (inside(d)) return statSync(d).isDirectory();
    if (d === root || !d.startsWith(root + '/') || !ensureDir(dirname(d))) return false;
    try {
      mkdirSync(d);
    } catch {
      return false;
    }
    return inside(d);
  };
  for (const layer of img.layers) {
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      stream.on('error', () => {});
      const name = posix.normalize('/' + h.name).slice(1);
      const target = join(dir, name);
      const base = posix.basename(name);
      const done = () => {
        stream.resume();
        stream.on('end', next);
      };
      if (!name || name.startsWith('..')) return done();
      if (base.startsWith('.wh.')) {
        rmSync(join(dir, posix.dirname(name), base === '.wh..wh..opq' ? '' : base.slice(4)), { recursive: true, force: true });
        if (base === '.wh..wh..opq') mkdirSync(join(dir, posix.dirname(name)), { recursive: true });
        return done();
      }
      if (!ensureDir(dirname(target))) return done();
      if (!inside(dirname(target))) return done();
      if (h.type === 'directory') {
        ensureDir(target);
        return done();
      }
      rmSync(target, { recursive: true, force: true });
      if (h.type === 'symlink') {
        symlinkSync(h.linkname ?? '', target);
        return done();
      }
      if (h.type === 'link') {
        try {
          linkSync(join(dir, posix.normalize('/' + (h.linkname ?? '')).slice(1)), target);
        } catch {
          /* a link to something absent: skip */
        }
        return done();
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') return done();
      pipeline(stream, createWriteStream(target, { mode: (h.mode ?? 0o644) & 0o777 })).then(() => next(), next);
    });
    await pipeline(layerTar(layer), extract);
  }
}
