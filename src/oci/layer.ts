import { ImageError } from './errors.js';
import { createHash, Hash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from './cache.js';
import { Digest, Hasher, hexOf, sha256 } from './digest.js';
import { FileDigests, FileIdentity, stampOf } from './file-digests.js';
import { BLOCK_SIZE, BlockPlacement, deflateSettings, gzipBlocks, RawBlock } from './pgzip.js';
import { BlockCache } from './block-cache.js';
import { ZSTD_BLOCK, zstdParallel } from './zstd.js';
import { Entry } from './entry.js';
import { encodeHeader, END_OF_ARCHIVE } from './tar.js';
import { Log, silentLog, Task } from '../log.js';
import { holdTemp } from '../temp-paths.js';
import type { Preread } from './preread.js';

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
  /** Large files read (and deflated) ahead of the layer, while the build was still planning (preread.ts). */
  preread?: Preread;
  /**
   * The build's own scratch directory: its files are written by this process alone, before the layer, so a recent
   * stamp there still names their bytes (no check of the bytes read against their digest).
   */
  scratch?: string;
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
 * every layer key, so a cache filled by another version of the writer is never used. 3: blocks cut at entry
 * boundaries and deflated on their own (no preset dictionary), so the block cache can copy them.
 */
export const LAYER_FORMAT = 3;

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

/** The tar header of an entry whose content is `size` bytes. */
export function entryHeader(e: LayerEntry, mtime: number, size: number): Buffer {
  return encodeHeader({
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
}

/** The settings part of every block name (BlockNames.settings) for gzip at `level`. */
export function blockNaming(level: number): string {
  return `${BLOCK_NAMING}\n${deflateSettings(level)}\n`;
}

/**
 * The name of one block of a large file (LARGE_FILE or more: its blocks hold nothing else): the file's header in its
 * first block, `len` bytes of its content from `pos`, `tail` bytes of padding in its last.
 */
export function largeBlockName(settings: string, header: Buffer | null, digest: Digest, pos: number, len: number, tail: number): string {
  const h = createHash('sha256').update(settings);
  if (header) h.update(`H${header.length}:`).update(header);
  h.update(`C${digest}:${pos}:${len}`);
  if (tail) h.update(`P${tail}`);
  return h.digest('hex');
}

/** The names of a large file's blocks, in order. */
export function largeBlockNames(settings: string, header: Buffer, digest: Digest, size: number): string[] {
  const out: string[] = [];
  const pad = (512 - (size % 512)) % 512;
  for (let pos = 0; pos < size; pos += BLOCK_SIZE) {
    const len = Math.min(BLOCK_SIZE, size - pos);
    out.push(largeBlockName(settings, pos === 0 ? header : null, digest, pos, len, pos + len === size ? pad : 0));
  }
  return out;
}

/**
 * The cache key of a layer: everything its bytes depend on. Entries (sorted and normalised) with their paths, types,
 * modes, owners, link targets, extended attributes and content digests; the writer's format, media type,
 * compression, level and mtime.
 */
export function layerKey(sorted: LayerEntry[], contents: (Digest | null)[], opts: { mediaType: string; mtime: number; compression: Compression; level: number }): Digest {
  const h = createHash('sha256');
  const block = opts.compression === 'zstd' ? ZSTD_BLOCK : BLOCK_SIZE;
  // gzip: zlib's version too (another zlib may deflate the same bytes differently: a cached layer would then differ
  // from the one this build would write).
  const deflate = opts.compression === 'gzip' ? deflateSettings(opts.level) : null;
  h.update(JSON.stringify({ format: LAYER_FORMAT, mediaType: opts.mediaType, compression: opts.compression, level: opts.level, block, deflate, mtime: opts.mtime }) + '\n');
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

const EMPTY = Buffer.alloc(0);

/** A regular file at least this large starts its own blocks: cut every BLOCK_SIZE bytes from its first byte. */
export const LARGE_FILE = 64 << 10;
/** Smaller entries run together; a run's block may end after an entry whose path is a cut point once it holds this. */
const RUN_MIN = 256 << 10;
/** Room for a run's block: it ends once it holds BLOCK_SIZE, and no entry in it is larger than LARGE_FILE. */
const RUN_CAP = BLOCK_SIZE + LARGE_FILE + (64 << 10);

/**
 * Whether a run's block may end after this path (about one entry in eight): cut points that depend on the path alone
 * keep the blocks after a changed entry the same as before (content-defined chunking, as rsyncable gzip does).
 */
function cutPoint(path: string): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  return ((h >>> 0) & 7) === 0;
}

/** What names a block's bytes: its headers and padding as they are, and each piece of file content by the file's digest. */
export interface BlockNames {
  /** The deflate settings and the naming scheme (a block is named differently under other settings). */
  settings: string;
  /** Content digest of each entry (null: not known; a block holding its content gets no name). */
  digests: (Digest | null)[];
}

/**
 * The layer's tar, cut into blocks at entry boundaries (pgzip.ts deflates each on its own): a file of LARGE_FILE or
 * more gets its own blocks (its header and first BLOCK_SIZE bytes, then each next BLOCK_SIZE bytes, its padding with
 * the last), and the entries between such files run together in blocks of up to about BLOCK_SIZE. An unchanged file
 * is thus always the same blocks, whatever changed around it, and with `names` each block is named by what it holds
 * (for the block cache). File bytes are read straight into the block, with no copy in between. Reads are
 * synchronous: the thread pool is busy compressing, and a read queued behind a deflate job would stall the layer.
 */
async function* layerBlocks(entries: LayerEntry[], mtime: number, task: Task, names: BlockNames | null, stamps?: (string | null)[], onChanged?: () => void, preread?: Preread, verify?: (Digest | null)[]): AsyncGenerator<RawBlock> {
  const probe = Buffer.allocUnsafe(1);
  const newName = () => (names ? createHash('sha256').update(names.settings) : null);
  // The run being filled.
  let buf = Buffer.allocUnsafe(RUN_CAP);
  let off = 0;
  let name = newName();
  let named = true;
  const take = (): RawBlock => {
    const id = named && name ? name.digest('hex') : null;
    let data: Buffer;
    if (off < RUN_CAP >> 2) data = Buffer.from(buf.subarray(0, off)); // a copy: the buffer is filled again
    else {
      data = buf.subarray(0, off);
      buf = Buffer.allocUnsafe(RUN_CAP);
    }
    off = 0;
    name = newName();
    named = true;
    return { data, id };
  };
  /** sha256 of the bytes read of the current entry, when they must be checked against its digest (`verify`). */
  let check: Hash | null = null;
  /** Reads `len` bytes of entry content at `pos` into `into` at `at`. */
  const fill = (e: LayerEntry, fd: number, into: Buffer, at: number, pos: number, len: number) => {
    if (e.content) into.set(e.content.subarray(pos, pos + len), at);
    else {
      for (let seen = 0; seen < len; ) {
        const n = readSync(fd, into, at + seen, len - seen, null);
        if (!n) throw new ImageError(e.source!, `file changed size while being read`);
        seen += n;
      }
      check?.update(into.subarray(at, at + len));
    }
    task.add(len);
  };
  /** After the last byte: the file is as large as planned, and (for the cache) still the file its digest was taken of. */
  const finish = (e: LayerEntry, fd: number, i: number) => {
    if (e.content) return;
    if (readSync(fd, probe, 0, 1, null)) throw new ImageError(e.source!, `file grew while being read`);
    // The layer key and the block names hold the digest taken under this identity: if the file changed since, the
    // bytes just read may not be the ones they name. A file written within the last seconds may have changed within
    // the same clock tick, stamp unchanged: its bytes are checked against the digest instead.
    if (stamps?.[i] && stampOf(statSync(e.source!, { bigint: true })) !== stamps[i]) onChanged?.();
    else if (check && 'sha256:' + check.digest('hex') !== verify![i]) onChanged?.();
  };
  let i = -1;
  for (const e of entries) {
    i++;
    const size = e.type === 'file' ? (e.content ? e.content.length : (e.size ?? 0)) : 0;
    const header = entryHeader(e, mtime, size);
    const pad = (512 - (size % 512)) % 512;
    const digest = names?.digests[i] ?? null;
    check = verify?.[i] && size > 0 && !e.content ? createHash('sha256') : null;
    let fd = -1;
    try {
      if (size >= LARGE_FILE) {
        if (off) yield take();
        // Read ahead (and maybe deflated already) under the identity its digest was taken under: those bytes. (A file
        // whose bytes are to be checked is read here: preread.ts leaves recent files alone anyway.)
        const ahead = e.source && !e.content && !check ? (preread?.take(e.source, header, size, stamps?.[i] ?? undefined) ?? null) : null;
        if (!ahead && !e.content) fd = openSync(e.source!, 'r');
        for (let pos = 0, k = 0; pos < size; k++) {
          const len = Math.min(BLOCK_SIZE, size - pos);
          const head = pos === 0 ? header.length : 0;
          const tail = pos + len === size ? pad : 0;
          const id = names && digest ? largeBlockName(names.settings, head ? header : null, digest, pos, len, tail) : null;
          pos += len;
          if (ahead) {
            task.add(len);
            yield { id, ...ahead[k] };
            ahead[k] = { data: EMPTY }; // yielded: the layer holds it no longer than any other block
            continue;
          }
          const block = Buffer.allocUnsafe(head + len + tail);
          if (head) header.copy(block, 0);
          fill(e, fd, block, head, pos - len, len);
          if (tail) block.fill(0, head + len);
          if (pos === size) finish(e, fd, i);
          yield { data: block, id };
        }
        continue;
      }
      if (size > 0 && !e.content) fd = openSync(e.source!, 'r');
      const need = header.length + size + pad;
      if (off && off + need > RUN_CAP) yield take();
      if (need > buf.length - off) buf = Buffer.allocUnsafe(need); // a header of many extended attributes
      header.copy(buf, off);
      off += header.length;
      name?.update(`H${header.length}:`).update(header);
      if (size) {
        fill(e, fd, buf, off, 0, size);
        off += size;
        finish(e, fd, i);
        if (digest) name?.update(`C${digest}:0:${size}`);
        else named = false;
      }
      if (pad) {
        buf.fill(0, off, off + pad);
        off += pad;
        name?.update(`P${pad}`);
      }
    } finally {
      if (fd >= 0) closeSync(fd);
    }
    if (off >= BLOCK_SIZE || (off >= RUN_MIN && cutPoint(e.path))) yield take();
  }
  if (off + END_OF_ARCHIVE.length > buf.length) yield take();
  END_OF_ARCHIVE.copy(buf, off);
  off += END_OF_ARCHIVE.length;
  name?.update('E');
  yield take();
}

function writeAll(fd: number, b: Buffer): void {
  for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
}

/**
 * Streams entries once through tar, sha256 (diff_id), gzip (in parallel blocks) and sha256 (digest) into a blob
 * file. Memory stays near a few blocks, whatever the file sizes. With the cache, a layer built before from the same
 * entries is taken from it whole, and otherwise every block an earlier layer already holds is copied from that
 * layer's blob instead of deflated (block-cache.ts): the same bytes either way.
 */
export async function writeLayer(entries: LayerEntry[], opts: WriteLayerOptions): Promise<LayerBlob> {
  const sorted = normaliseEntries(entries);
  const compression = opts.compression ?? 'gzip';
  const level = opts.gzipLevel ?? (compression === 'zstd' ? DEFAULT_ZSTD_LEVEL : DEFAULT_GZIP_LEVEL);
  const cache = opts.cache;
  let key: Digest | null = null;
  let stamps: (string | null)[] | undefined;
  let verify: (Digest | null)[] | undefined;
  let names: BlockNames | null = null;
  if (cache) {
    const ids = await contentIdentities(sorted, cache.files);
    if (ids) {
      const digests = ids.map((x) => x?.digest ?? null);
      key = layerKey(sorted, digests, { mediaType: opts.mediaType, mtime: opts.mtime, compression, level });
      stamps = ids.map((x) => x?.stamp || null);
      // Files written within the last seconds (not the build's own): their bytes are checked as they are read.
      const own = opts.scratch ? opts.scratch.replace(/\/+$/, '') + '/' : null;
      verify = ids.map((x, k) => (x?.racy && !(own && sorted[k].source?.startsWith(own)) ? x.digest : null));
      const hit = cache.cache.getLayer(key);
      if (hit && hit.mediaType === opts.mediaType) {
        (opts.log ?? silentLog).info(cachedLayerNote(opts.comment));
        return { digest: hit.digest, diffId: hit.diffId, size: hit.size, uncompressedSize: hit.uncompressedSize, mediaType: hit.mediaType, path: hit.path, comment: opts.comment, entries: sorted.length, cached: true };
      }
      if (compression === 'gzip') names = { settings: blockNaming(level), digests };
    }
  }
  // With a cache, the blob is written straight into it (no copy afterwards).
  const dir = cache ? cache.cache.blobDir : opts.dir;
  mkdirSync(dir, { recursive: true });
  let total = 0;
  for (const e of sorted) if (e.type === 'file') total += e.content ? e.content.length : (e.size ?? 0);
  const blocks = names ? cache!.cache.blocks : null;
  let w = await writeOnce(sorted, opts, dir, level, total, names, stamps, blocks, verify);
  // A file changed after its digest was taken: blocks copied under that digest may not be what was read. Written
  // again from what is read now, copying nothing (and cached nowhere: the key names other bytes).
  if (!w.blob) w = await writeOnce(sorted, opts, dir, level, total, names, stamps, null, verify);
  const blob = w.blob!;
  if (cache && key && !w.changed) {
    try {
      cache.cache.putLayer(key, { digest: blob.digest, diffId: blob.diffId, size: blob.size, uncompressedSize: blob.uncompressedSize, mediaType: blob.mediaType });
    } catch {
      /* an unwritable cache only costs the next build's time */
    }
    blocks?.record(hexOf(blob.digest), w.placements);
  }
  return blob;
}

/** Names blocks by their headers, padding and content digests (layerBlocks); another scheme, another prefix. */
const BLOCK_NAMING = 'ocislim block v1';

/** One pass of writeLayer: tar, compress (copying what `blocks` holds), hash, write and rename. */
async function writeOnce(sorted: LayerEntry[], opts: WriteLayerOptions, dir: string, level: number, total: number, names: BlockNames | null, stamps: (string | null)[] | undefined, blocks: BlockCache | null, verify?: (Digest | null)[]): Promise<{ blob: LayerBlob | null; changed: boolean; placements: BlockPlacement[] }> {
  const compression = opts.compression ?? 'gzip';
  const tmp = join(dir, `.layer-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const raw = new Hasher();
  const gz = new Hasher();
  const task = (opts.log ?? silentLog).task(`layer ${opts.comment}`, total);
  let changed = false;
  const placements: BlockPlacement[] = [];
  const fd = openSync(tmp, 'w');
  const release = holdTemp(tmp);
  const sink = opts.stream?.() ?? null;
  try {
    const tar = layerBlocks(sorted, opts.mtime, task, names, stamps, () => (changed = true), opts.preread, verify);
    async function* hashed(): AsyncGenerator<RawBlock> {
      for await (const b of tar) {
        raw.update(b.data);
        yield b;
      }
    }
    async function* data(): AsyncGenerator<Buffer> {
      for await (const b of hashed()) yield b.data;
    }
    const compressed =
      compression === 'zstd'
        ? zstdParallel(data(), level)
        : gzipBlocks(hashed(), level, { reuse: blocks ? (id) => blocks.lookup(id) : undefined, onBlock: names ? (p) => placements.push(p) : undefined });
    // Written synchronously, as the files are read: page-cache writes, never queued behind the compressors.
    for await (const c of compressed) {
      gz.update(c);
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
    release();
    throw e;
  }
  const reused = placements.filter((p) => p.reused).length;
  if (changed && reused) {
    // Not a layer: its compressed and uncompressed bytes may disagree. The caller writes it again.
    sink?.abort();
    rmSync(tmp, { force: true });
    release();
    return { blob: null, changed, placements };
  }
  const digest = gz.digest();
  const path = join(dir, hexOf(digest));
  renameSync(tmp, path);
  release();
  task.done(reused ? `compressed (${reused} of ${placements.length} blocks copied from the cache)` : 'compressed');
  const blob: LayerBlob = { digest, diffId: raw.digest(), size: gz.size, uncompressedSize: raw.size, mediaType: opts.mediaType, path, comment: opts.comment, entries: sorted.length };
  sink?.end(blob);
  return { blob, changed, placements };
}
