import { ImageError } from './errors.js';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from './cache.js';
import { Digest, Hasher, hexOf, sha256 } from './digest.js';
import { FileDigests, FileIdentity, stampOf } from './file-digests.js';
import { BLOCK_SIZE, gzipParallel } from './pgzip.js';
import { ZSTD_BLOCK, zstdParallel } from './zstd.js';
import { Entry } from './entry.js';
import { encodeHeader, END_OF_ARCHIVE, padding } from './tar.js';
import { Log, silentLog, Task } from '../log.js';

/** One file of a layer to write: the entry (oci/entry.ts) and where its bytes come from. */
export interface LayerEntry extends Entry {
  /** Host file holding the content (type "file"). */
  source?: string;
  /** Generated content (type "file"), instead of `source`. */
  content?: Uint8Array;
  /** Why this file is in the image (for --explain): "binary", "library of X", "user", ... */
  reason?: string;
}

/** A layer written to a blob file: both digests were computed while its bytes streamed once. */
export interface LayerBlob {
  /** sha256 of the compressed bytes. */
  digest: Digest;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: Digest;
  size: number;
  uncompressedSize: number;
  mediaType: string;
  /** Where the compressed blob is on disk. */
  path: string;
  /** What the layer holds, for the history entry. */
  comment: string;
  entries: number;
  /** Taken from the persistent cache rather than written now. */
  cached?: boolean;
}

export interface WriteLayerOptions {
  /** Directory for the blob file (content-addressed name). */
  dir: string;
  mediaType: string;
  /** mtime of every entry, in seconds (SOURCE_DATE_EPOCH or 0). */
  mtime: number;
  comment: string;
  /** gzip (default) or zstd (the OCI tar+zstd layer type); the level is gzipLevel's 1-9, or zstd's 1-19. */
  compression?: Compression;
  gzipLevel?: number;
  /** Compression progress: a task "layer COMMENT" counting the files' bytes. */
  log?: Log;
  /** Persistent layer cache: a layer built before from the same entries is taken from it, a new one stored in it. */
  cache?: { cache: Cache; files: FileDigests };
  /** A sink for the compressed bytes as they are made (an upload while compressing); not asked for cached layers. */
  stream?: () => LayerStream | null;
}

/** Sees a layer's compressed bytes as they are written, in order: a registry upload that overlaps compression. */
export interface LayerStream {
  write(chunk: Buffer): void;
  /** Every byte was written: the layer is `blob`. */
  end(blob: LayerBlob): void;
  /** Writing the layer failed. */
  abort(): void;
}

/**
 * Bump whenever the bytes written for the same entries change (tar encoding, gzip blocking): the version is part of
 * every layer key, so a cache filled by another version of the writer is never used.
 */
export const LAYER_FORMAT = 2;

/** Default gzip level: the lowest whose redis image is no larger than umoci's (bench/gzip-levels.ts; README, Performance). */
export const DEFAULT_GZIP_LEVEL = 4;
/** Default zstd level (zstd's own default). */
export const DEFAULT_ZSTD_LEVEL = 3;

export type Compression = 'gzip' | 'zstd';

/** What a build says of a layer taken from the cache. */
export function cachedLayerNote(comment: string): string {
  return `layer ${comment}: from the cache`;
}

/** Sorted (bytewise by path), with every missing parent directory added (0755, root). */
export function normaliseEntries(entries: LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) byPath.set(e.path, e);
  for (const e of [...byPath.values()]) {
    const parts = e.path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, reason: 'parent directory' });
    }
  }
  const sorted = [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return hardLinksForward(sorted, byPath);
}

/**
 * A hard link must come after the file it names. For each set of hard-linked paths, the first in tar order holds
 * the content and the others link to it, whatever order the input had.
 */
function hardLinksForward(sorted: LayerEntry[], byPath: Map<string, LayerEntry>): LayerEntry[] {
  const groups = new Map<string, string[]>();
  for (const e of sorted) {
    if (e.type !== 'hardlink') continue;
    const target = e.linkname!;
    const t = byPath.get(target);
    if (!t || t.type !== 'file') throw new ImageError(`hard link ${e.path}`, `points to ${target}, which is not a regular file in the layer`);
    (groups.get(target) ?? groups.set(target, [target]).get(target)!).push(e.path);
  }
  if (!groups.size) return sorted;
  const replace = new Map<string, LayerEntry>();
  for (const [target, paths] of groups) {
    const file = byPath.get(target)!;
    const first = paths.reduce((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? a : b));
    for (const p of paths) {
      const orig = byPath.get(p)!;
      replace.set(p, p === first ? { ...file, path: p, mode: orig.mode, uid: orig.uid, gid: orig.gid } : { ...orig, type: 'hardlink', linkname: first, source: undefined, content: undefined, size: undefined });
    }
  }
  return sorted.map((e) => replace.get(e.path) ?? e);
}

function tarName(path: string): string {
  return path.replace(/^\/+/, '');
}

/**
 * The cache key of a layer: everything its bytes depend on. Entries (sorted and normalised) with their paths, types,
 * modes, owners, link targets, extended attributes and content digests; the writer's format, media type,
 * compression, level and mtime.
 */
export function layerKey(sorted: LayerEntry[], contents: (Digest | null)[], opts: { mediaType: string; mtime: number; compression: Compression; level: number }): Digest {
  const h = createHash('sha256');
  const block = opts.compression === 'zstd' ? ZSTD_BLOCK : BLOCK_SIZE;
  h.update(JSON.stringify({ format: LAYER_FORMAT, mediaType: opts.mediaType, compression: opts.compression, level: opts.level, block, mtime: opts.mtime }) + '\n');
  sorted.forEach((e, i) => {
    const size = e.type === 'file' ? (e.content ? e.content.length : (e.size ?? 0)) : 0;
    const xattrs = Object.keys(e.xattrs ?? {})
      .sort()
      .map((k) => [k, Buffer.from(e.xattrs![k]).toString('base64')]);
    h.update(JSON.stringify([e.path, e.type, e.mode, e.uid, e.gid, e.linkname ?? null, size, contents[i], xattrs]) + '\n');
  });
  return 'sha256:' + h.digest('hex');
}

/** Runs `fn` over `items` with at most `n` at a time, keeping the order of results. */
async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** Content digests of the layer's files (memoized by stat identity), or null when a file changed while being read. */
async function contentIdentities(sorted: LayerEntry[], files: FileDigests): Promise<(FileIdentity | null)[] | null> {
  const ids = await pool(sorted, 8, async (e): Promise<FileIdentity | null> => {
    if (e.type !== 'file') return null;
    if (e.content) return { digest: sha256(e.content), stamp: '' };
    if (!(e.size ?? 0)) return { digest: sha256(''), stamp: '' };
    return files.digest(e.source!);
  });
  return ids.some((x) => x?.stamp === 'changed') ? null : ids;
}

/**
 * The layer's tar, in chunks of exactly `blockSize` bytes (the last one shorter): headers, generated content and file
 * bytes are laid straight into the chunk, each file read into it with no copy in between (the compressors take whole
 * blocks in place). Reads are synchronous: the thread pool is busy compressing, and a read queued behind a deflate
 * job would stall the layer.
 */
async function* tarBlocks(entries: LayerEntry[], mtime: number, task: Task, blockSize: number, stamps?: (string | null)[], onChanged?: () => void): AsyncGenerator<Buffer> {
  let block = Buffer.allocUnsafe(blockSize);
  let off = 0;
  const probe = Buffer.allocUnsafe(1);
  /** Copies bytes in; returns full blocks to yield. */
  const put = (bytes: Uint8Array): Buffer[] => {
    const full: Buffer[] = [];
    let pos = 0;
    while (pos < bytes.length) {
      const n = Math.min(bytes.length - pos, blockSize - off);
      block.set(bytes.subarray(pos, pos + n), off);
      off += n;
      pos += n;
      if (off === blockSize) {
        full.push(block);
        block = Buffer.allocUnsafe(blockSize);
        off = 0;
      }
    }
    return full;
  };
  let i = -1;
  for (const e of entries) {
    i++;
    const size = e.type === 'file' ? (e.content ? e.content.length : (e.size ?? 0)) : 0;
    const header = encodeHeader({
      path: tarName(e.path),
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size,
      mtime,
      linkname: e.type === 'hardlink' ? tarName(e.linkname ?? '') : e.linkname,
      xattrs: e.xattrs,
    });
    yield* put(header);
    if (e.type !== 'file') continue;
    if (e.content) {
      task.add(e.content.length);
      yield* put(e.content);
    } else if (size > 0) {
      const fd = openSync(e.source!, 'r');
      try {
        let seen = 0;
        while (seen < size) {
          const n = readSync(fd, block, off, Math.min(size - seen, blockSize - off), null);
          if (!n) throw new ImageError(e.source!, `file changed size while being read`);
          seen += n;
          off += n;
          task.add(n);
          if (off === blockSize) {
            yield block;
            block = Buffer.allocUnsafe(blockSize);
            off = 0;
          }
        }
        if (readSync(fd, probe, 0, 1, null)) throw new ImageError(e.source!, `file grew while being read`);
      } finally {
        closeSync(fd);
      }
      // The layer key holds the digest taken under this identity: if the file changed since, the bytes just written
      // may not be the ones the key names, and the layer must not be cached under it.
      if (stamps?.[i] && stampOf(statSync(e.source!, { bigint: true })) !== stamps[i]) onChanged?.();
    }
    const pad = padding(size);
    if (pad.length) yield* put(pad);
  }
  yield* put(END_OF_ARCHIVE);
  if (off) yield block.subarray(0, off);
}

function writeAll(fd: number, b: Buffer): void {
  for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
}

/**
 * Streams entries once through tar, sha256 (diff_id), gzip (in parallel blocks) and sha256 (digest) into a blob
 * file. Memory stays near a few gzip blocks, whatever the file sizes.
 */
export async function writeLayer(entries: LayerEntry[], opts: WriteLayerOptions): Promise<LayerBlob> {
  const sorted = normaliseEntries(entries);
  const compression = opts.compression ?? 'gzip';
  const level = opts.gzipLevel ?? (compression === 'zstd' ? DEFAULT_ZSTD_LEVEL : DEFAULT_GZIP_LEVEL);
  const cache = opts.cache;
  let key: Digest | null = null;
  let stamps: (string | null)[] | undefined;
  if (cache) {
    const ids = await contentIdentities(sorted, cache.files);
    if (ids) {
      key = layerKey(sorted, ids.map((x) => x?.digest ?? null), { mediaType: opts.mediaType, mtime: opts.mtime, compression, level });
      stamps = ids.map((x) => x?.stamp || null);
      const hit = cache.cache.getLayer(key);
      if (hit && hit.mediaType === opts.mediaType) {
        (opts.log ?? silentLog).info(cachedLayerNote(opts.comment));
        return { digest: hit.digest, diffId: hit.diffId, size: hit.size, uncompressedSize: hit.uncompressedSize, mediaType: hit.mediaType, path: hit.path, comment: opts.comment, entries: sorted.length, cached: true };
      }
    }
  }
  // With a cache, the blob is written straight into it (no copy afterwards).
  const dir = cache ? cache.cache.blobDir : opts.dir;
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.layer-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const raw = new Hasher();
  const gz = new Hasher();
  async function* hashed(chunks: AsyncIterable<Buffer>, h: Hasher) {
    for await (const c of chunks) {
      h.update(c);
      yield c;
    }
  }
  let total = 0;
  for (const e of sorted) if (e.type === 'file') total += e.content ? e.content.length : (e.size ?? 0);
  const task = (opts.log ?? silentLog).task(`layer ${opts.comment}`, total);
  let changed = false;
  const fd = openSync(tmp, 'w');
  const sink = opts.stream?.() ?? null;
  try {
    const tar = tarBlocks(sorted, opts.mtime, task, compression === 'zstd' ? ZSTD_BLOCK : BLOCK_SIZE, stamps, () => (changed = true));
    const compressed = compression === 'zstd' ? zstdParallel(hashed(tar, raw), level) : gzipParallel(hashed(tar, raw), level);
    // Written synchronously, as the files are read: page-cache writes, never queued behind the compressors.
    for await (const c of hashed(compressed, gz)) {
      writeAll(fd, c);
      sink?.write(c);
    }
    closeSync(fd);
  } catch (e) {
    sink?.abort();
    try {
      closeSync(fd);
    } catch {
      /* closed already */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  const digest = gz.digest();
  const path = join(dir, hexOf(digest));
  renameSync(tmp, path);
  task.done('compressed');
  const blob: LayerBlob = { digest, diffId: raw.digest(), size: gz.size, uncompressedSize: raw.size, mediaType: opts.mediaType, path, comment: opts.comment, entries: sorted.length };
  sink?.end(blob);
  if (cache && key && !changed) {
    try {
      cache.cache.putLayer(key, { digest, diffId: blob.diffId, size: blob.size, uncompressedSize: blob.uncompressedSize, mediaType: blob.mediaType });
    } catch {
      /* an unwritable cache only costs the next build's time */
    }
  }
  return blob;
}
