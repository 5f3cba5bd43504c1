import { childProcess } from '../child-process.js';
import { closeSync, createReadStream, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { BuildError } from './errors.js';
import { LayerGroup, PlannedEntry } from './plan.js';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'none';

/** What kind of local archive a file is, from its first bytes: null when it is not a tar (plain or compressed). */
export function archiveKind(path: string): Compression | null {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(512);
  const n = readSync(fd, b, 0, 512, 0);
  closeSync(fd);
  if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (n >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (n >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (n >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'none';
  return null;
}

/**
 * Bytes per read and per decompressed chunk: every chunk is a round trip through libuv's thread pool (gunzip) and
 * through tar-stream, so 1 MiB chunks cost a small fraction of Node's 64/16 KiB defaults.
 */
const CHUNK = 1 << 20;

/** bzip2 and xz have no decoder in Node: the system's tools stream them (Debian's bzip2 and xz-utils). */
function decompressed(path: string, kind: Compression): Readable {
  const src = createReadStream(path, { highWaterMark: CHUNK });
  if (kind === 'none') return src;
  if (kind === 'gzip') return src.pipe(createGunzip({ chunkSize: CHUNK }));
  const tool = kind === 'bzip2' ? 'bzip2' : 'xz';
  const child = childProcess().spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const out = child.stdout;
  child.on('error', (e) => out.destroy(new BuildError(`${path}: cannot decompress ${kind}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `${tool} is not installed` : e.message}`)));
  child.on('close', (code) => {
    if (code) out.destroy(new BuildError(`${path}: ${tool} failed: ${stderr.trim().split('\n')[0]}`));
  });
  src.pipe(child.stdin);
  child.stdin.on('error', () => {});
  return out;
}

/** A member name normalised inside the archive root, or null when it escapes (absolute or climbing out with ".."). */
function inside(name: string): string | null {
  if (name.startsWith('/')) return null;
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (!parts.length) return null;
      parts.pop();
    } else parts.push(p);
  }
  return parts.join('/');
}

/**
 * Unpacks a local tar (plain, gzip, bzip2 or xz) like Dockerfile ADD: members become entries under `dest`, their
 * content staged in `stageDir`. Refuses members that are absolute, climb out with "..", or symlinks and hard links
 * whose targets leave the archive root.
 */
export async function unpackArchive(path: string, kind: Compression, dest: string, stageDir: string, group: LayerGroup, reason: string): Promise<PlannedEntry[]> {
  const entries = new Map<string, PlannedEntry>();
  const symlinks = new Set<string>();
  const extract = tar.extract();
  let count = 0;
  const bad = (name: string, why: string) => new BuildError(`${path}: member "${name}" ${why}`);
  extract.on('entry', (h, stream, next) => {
    // The entry stream is destroyed with the extraction's error; the pipeline reports it.
    stream.on('error', () => {});
    // tar-stream's next(err) ends the extraction with that error.
    const fail = (e: Error) => {
      stream.resume();
      next(e);
    };
    const rel = inside(h.name);
    if (rel === null) return fail(bad(h.name, h.name.startsWith('/') ? 'is an absolute path' : 'escapes the archive root with ".."'));
    // A member below a symlink member would be written through the link.
    const segs = rel.split('/');
    for (let i = 1; i < segs.length; i++) if (symlinks.has(segs.slice(0, i).join('/'))) return fail(bad(h.name, 'lies below a symbolic link in the archive'));
    const image = posix.join(dest, rel);
    const uid = h.uid ?? 0;
    const gid = h.gid ?? 0;
    const mode = (h.mode ?? 0o644) & 0o7777;
    const common = { uid, gid, mode, group, reason };
    switch (h.type) {
      case 'directory':
        if (rel) entries.set(image, { path: image, type: 'dir', ...common });
        stream.resume();
        return stream.on('end', next);
      case 'symlink': {
        const target = h.linkname ?? '';
        if (!target.startsWith('/') && inside(posix.join(posix.dirname(rel), target)) === null) return fail(bad(h.name, `is a symbolic link to "${target}", outside the archive root`));
        symlinks.add(rel);
        entries.set(image, { path: image, type: 'symlink', ...common, mode: 0o777, linkname: target });
        stream.resume();
        return stream.on('end', next);
      }
      case 'link': {
        const t = inside(h.linkname ?? '');
        if (t === null || !entries.has(posix.join(dest, t))) return fail(bad(h.name, `is a hard link to "${h.linkname}", which is not an earlier member inside the archive`));
        entries.set(image, { path: image, type: 'hardlink', ...common, linkname: posix.join(dest, t) });
        stream.resume();
        return stream.on('end', next);
      }
      case 'file':
      case 'contiguous-file': {
        const staged = posix.join(stageDir, `m${count++}`);
        const e: PlannedEntry = { path: image, type: 'file', ...common, source: staged, size: h.size ?? 0 };
        entries.set(image, e);
        // Written synchronously as the chunks come: page-cache writes, no thread-pool round trip per chunk.
        let fd: number;
        try {
          fd = openSync(staged, 'w');
        } catch (err) {
          return fail(err as Error);
        }
        const close = () => {
          if (fd < 0) return;
          closeSync(fd);
          fd = -1;
        };
        stream.on('data', (chunk: unknown) => {
          const c = chunk as Buffer;
          try {
            for (let off = 0; off < c.length; ) off += writeSync(fd, c, off, c.length - off);
          } catch (err) {
            close();
            stream.destroy(err as Error);
          }
        });
        stream.on('end', () => {
          close();
          next();
        });
        stream.on('error', (err) => {
          close();
          next(err);
        });
        return;
      }
      default:
        stream.resume();
        return stream.on('end', next);
    }
  });
  mkdirSync(stageDir, { recursive: true });
  try {
    await pipeline(decompressed(path, kind), extract);
  } catch (e) {
    if (e instanceof BuildError) throw e;
    throw new BuildError(`${path}: not a valid ${kind === 'none' ? '' : kind + ' '}tar archive (${(e as Error).message})`);
  }
  return [...entries.values()];
}
