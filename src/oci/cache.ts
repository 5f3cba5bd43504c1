import { closeSync, createReadStream, createWriteStream, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { dirname, join, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tempSibling, writeFileAtomic } from './atomic.js';
import { holdTemp } from '../temp-paths.js';
import { Digest, hexOf, isDigest } from './digest.js';
import { BlobReader, Descriptor } from './image.js';
import { BlockCache } from './block-cache.js';
import { settled, stampOf } from './file-digests.js';

/**
 * The persistent cache: compressed layers by the content of their entries, and blobs by digest (layers built here,
 * base-image blobs pulled from registries). Everything is written under a temporary name and renamed into place, so
 * concurrent builds and a kill -9 never leave a half-written entry visible: at worst a stray temporary file, which
 * `prune` removes. Entries are content-addressed, so a cache can only ever return the bytes an uncached build would
 * write.
 *
 *   blobs/sha256/HEX   compressed blobs
 *   layers/HEX         a layer key → the blob's digest, diff_id and sizes (JSON)
 *   files.json         file content digests memoized by (device, inode, size, mtime, ctime)
 *   builds/HEX.json    whole builds with the journal of what they read (builder/build-memo.ts)
 *   blocks.log         where the compressed bytes of each block of those layers are (block-cache.ts)
 *   dpkg/HEX.json      indexes of dpkg status files, by their stat identity (packages/status-index.ts): records
 *                      derived from one file, { path, stamp, ... }, of no use once that file's stamp changed
 */

/** The directory of indexes derived from files of a root (packages/status-index.ts), each valid while its file is unchanged. */
export const STATUS_INDEX_DIR = 'dpkg';

/** Where the index of kind `prefix` derived from the host file (or directory) `host` is kept. */
export function indexRecordPath(cacheDir: string, prefix: string, host: string): string {
  return join(cacheDir, STATUS_INDEX_DIR, `${prefix}${createHash('sha256').update(host).digest('hex').slice(0, 32)}.json`);
}

/**
 * `compute()` of the file `host`, or what it gave in an earlier run for the file with this very stat identity: kept at
 * `at` as a record of `key`'s fields (a format number, the code's stamp: whatever else the answer depends on), the
 * path, the stamp and the answer under `field`. Kept only for bytes read under the stamp taken before (a file changed
 * meanwhile is computed again next time) and once the file is settled (two seconds old: a file written again within
 * the same clock tick could have other bytes under the same stamp). A file that cannot be stat'ed is computed each time.
 */
export function memoByStat<T>(at: string, host: string, key: Record<string, string | number>, field: string, valid: (v: unknown) => v is T, compute: () => T): T {
  let st;
  try {
    st = statSync(host, { bigint: true });
  } catch {
    return compute();
  }
  const stamp = stampOf(st);
  try {
    const rec = JSON.parse(readFileSync(at, 'utf8')) as Record<string, unknown>;
    if (rec && rec.path === host && rec.stamp === stamp && Object.entries(key).every(([k, v]) => rec[k] === v) && valid(rec[field])) return rec[field];
  } catch {
    /* none yet, or unreadable: computed below */
  }
  const value = compute();
  let after: string | null = null;
  try {
    after = stampOf(statSync(host, { bigint: true }));
  } catch {
    /* gone */
  }
  if (after === stamp && settled(st)) writeIndexRecord(at, { ...key, path: host, stamp, [field]: value });
  return value;
}

/** Keeps an index record (atomically); an unwritable cache only costs the next run its time. */
export function writeIndexRecord(path: string, rec: unknown): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileAtomic(path, JSON.stringify(rec));
  } catch {
    /* read-only cache */
  }
}

/**
 * Path prefixes of what the cache (and the push state kept beside it: blobs.json, uploads/) writes in `dir`: the
 * cache's own bookkeeping, which a build's file-system journal leaves out. Anything else under `dir` (a project whose
 * cache lives inside it) is an input like any other.
 */
export function cacheOwnPaths(dir: string): string[] {
  const dirs = ['blobs', 'layers', 'builds', 'uploads', STATUS_INDEX_DIR].map((d) => join(dir, d) + sep);
  const files = ['files.json', 'blobs.json', 'blocks.log'].flatMap((f) => [join(dir, f), join(dir, `.${f}.tmp-`)]);
  return [...dirs, ...files];
}

/** Where the cache lives: OCISLIM_CACHE, else $XDG_CACHE_HOME/ocislim, else ~/.cache/ocislim. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OCISLIM_CACHE) return env.OCISLIM_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'ocislim');
  return join(env.HOME || homedir(), '.cache', 'ocislim');
}

/** Default size cap (OCISLIM_CACHE_MAX overrides it, in bytes or with a K/M/G suffix). */
export const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;

/** Entries used this recently are never pruned: another build may be reading them right now. */
const IN_USE_MS = 10 * 60 * 1000;
/** Temporary files older than this are leftovers of a killed process. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/** What the cache remembers about a built layer. */
export interface CachedLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
  uncompressedSize: number;
  mediaType: string;
}

export interface PruneResult {
  removed: number;
  freed: number;
  kept: number;
  keptBytes: number;
}

function parseCap(s: string | undefined): number {
  if (!s) return DEFAULT_MAX_BYTES;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(s.trim());
  if (!m) throw new Error(`OCISLIM_CACHE_MAX "${s}" must be a size such as 500M or 2G`);
  return Math.round(Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T']);
}

export class Cache {
  readonly maxBytes: number;
  private blockCache: BlockCache | null = null;
  constructor(
    readonly dir: string,
    maxBytes?: number,
  ) {
    this.maxBytes = maxBytes ?? parseCap(process.env.OCISLIM_CACHE_MAX);
  }

  /** The compressed blocks of the layers written here (one per Cache, shared by the layers a build writes at once). */
  get blocks(): BlockCache {
    return (this.blockCache ??= new BlockCache(this.dir));
  }

  /** Directory for a layer's temporary file: the blob store itself, so the final rename stays on one filesystem. */
  get blobDir(): string {
    return join(this.dir, 'blobs', 'sha256');
  }

  blobPath(d: Digest): string {
    return join(this.blobDir, hexOf(d));
  }

  /** The blob's path when the cache holds it whole (checked by size), else null. */
  hasBlob(d: Digest, size: number): string | null {
    if (!isDigest(d)) return null;
    const p = this.blobPath(d);
    try {
      if (statSync(p).size !== size) return null;
    } catch {
      return null;
    }
    touch(p);
    return p;
  }

  /** A layer built before from the same entries, when its blob is still here. */
  getLayer(key: Digest): (CachedLayer & { path: string }) | null {
    const rec = join(this.dir, 'layers', hexOf(key));
    let c: CachedLayer;
    try {
      c = JSON.parse(readFileSync(rec, 'utf8')) as CachedLayer;
    } catch {
      return null;
    }
    if (!c || !isDigest(c.digest) || !isDigest(c.diffId) || typeof c.size !== 'number') return null;
    const path = this.hasBlob(c.digest, c.size);
    if (!path) return null;
    touch(rec);
    return { ...c, path };
  }

  /** Records a layer whose blob is already in blobs/ (renamed there by the writer). */
  putLayer(key: Digest, c: CachedLayer): void {
    mkdirSync(join(this.dir, 'layers'), { recursive: true });
    writeFileAtomic(join(this.dir, 'layers', hexOf(key)), JSON.stringify(c));
  }

  /**
   * A blob reader that serves the blob from the cache when it is here, and otherwise reads it from `source` (which
   * verifies what it reads) while keeping a copy: renamed into the cache only once the whole blob went through.
   */
  blobReader(d: Descriptor, source: BlobReader): BlobReader {
    return {
      open: () => {
        const hit = this.hasBlob(d.digest, d.size);
        if (hit) return createReadStream(hit, { highWaterMark: 1 << 20 });
        return this.teeIntoCache(d, source.open());
      },
      openRange: (start, end) => {
        const hit = this.hasBlob(d.digest, d.size);
        if (hit) return end <= start ? Readable.from([]) : createReadStream(hit, { start, end: end - 1, highWaterMark: 1 << 20 });
        if (source.openRange) return source.openRange(start, end);
        return Readable.from(skipTo(source.open(), start, end));
      },
    };
  }

  private teeIntoCache(d: Descriptor, src: Readable): Readable {
    const final = this.blobPath(d.digest);
    let tmp: string;
    let fd: number;
    try {
      mkdirSync(this.blobDir, { recursive: true });
      tmp = tempSibling(final);
      fd = openSync(tmp, 'w');
    } catch {
      return src; // an unwritable cache only costs the copy
    }
    const release = holdTemp(tmp);
    let ok = true;
    const cleanup = () => {
      if (fd < 0) return;
      closeSync(fd);
      fd = -1;
      rmSync(tmp, { force: true });
      release();
    };
    const tee = new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _enc, cb) {
        if (ok) {
          try {
            writeSync(fd, chunk);
          } catch {
            ok = false;
          }
        }
        cb(null, chunk);
      },
      flush: (cb) => {
        closeSync(fd);
        fd = -1;
        try {
          // The source verified size and digest before ending; the size check guards against a short write.
          if (ok && statSync(tmp).size === d.size) {
            renameSync(tmp, final);
            this.afterWrite();
          } else rmSync(tmp, { force: true });
        } catch {
          rmSync(tmp, { force: true });
        }
        release();
        cb();
      },
    });
    src.on('error', (e) => {
      cleanup();
      tee.destroy(e);
    });
    tee.on('close', cleanup);
    return src.pipe(tee);
  }

  /** Copies a local blob in (e.g. a layer just written elsewhere); atomic. */
  async putBlobFile(d: Digest, from: string): Promise<void> {
    mkdirSync(this.blobDir, { recursive: true });
    const tmp = tempSibling(this.blobPath(d));
    const release = holdTemp(tmp);
    try {
      await pipeline(createReadStream(from), createWriteStream(tmp));
      renameSync(tmp, this.blobPath(d));
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    } finally {
      release();
    }
  }

  /** Called after something was added: trims the cache to its cap when it grew past it. */
  afterWrite(): void {
    try {
      const total = this.usage().bytes;
      if (total > this.maxBytes) this.prune(this.maxBytes);
    } catch {
      /* pruning is housekeeping: never fail a build over it */
    }
  }

  usage(): { bytes: number; blobs: number; layers: number; builds: number } {
    let bytes = 0;
    let blobs = 0;
    for (const name of safeReaddir(this.blobDir)) {
      try {
        bytes += statSync(join(this.blobDir, name)).size;
        blobs++;
      } catch {
        /* removed meanwhile */
      }
    }
    const records = (d: string) => safeReaddir(join(this.dir, d)).filter((n) => !n.startsWith('.')).length;
    return { bytes, blobs, layers: records('layers'), builds: records('builds') };
  }

  /**
   * Removes least recently used blobs until the cache holds at most `maxBytes` (0: everything), never touching what
   * was used in the last `inUseMs` (automatic trims leave ten minutes: a concurrent build may be reading it), then
   * layer records whose blob is gone and temporary files left by killed processes.
   */
  prune(maxBytes = 0, inUseMs = IN_USE_MS, now = Date.now()): PruneResult {
    const res: PruneResult = { removed: 0, freed: 0, kept: 0, keptBytes: 0 };
    const blobs: { path: string; size: number; used: number; temp: boolean }[] = [];
    for (const dir of [this.blobDir, join(this.dir, 'layers'), join(this.dir, 'builds')]) {
      for (const name of safeReaddir(dir)) {
        const path = join(dir, name);
        try {
          const st = statSync(path);
          const temp = name.startsWith('.');
          if (temp) {
            if (now - st.mtimeMs > STALE_TEMP_MS) rmSync(path, { force: true });
            continue;
          }
          // Blobs, and remembered builds (a record can be a few hundred KiB of journal), share the size cap.
          if (dir !== join(this.dir, 'layers')) blobs.push({ path, size: st.size, used: Math.max(st.mtimeMs, st.atimeMs), temp });
        } catch {
          /* gone */
        }
      }
    }
    blobs.sort((a, b) => b.used - a.used);
    let total = 0;
    for (const b of blobs) {
      if (now - b.used < inUseMs || total + b.size <= maxBytes) {
        total += b.size;
        res.kept++;
        continue;
      }
      rmSync(b.path, { force: true });
      res.removed++;
      res.freed += b.size;
    }
    res.keptBytes = total;
    const layersDir = join(this.dir, 'layers');
    for (const name of safeReaddir(layersDir)) {
      if (name.startsWith('.')) continue;
      try {
        const c = JSON.parse(readFileSync(join(layersDir, name), 'utf8')) as CachedLayer;
        statSync(this.blobPath(c.digest));
      } catch {
        rmSync(join(layersDir, name), { force: true });
      }
    }
    // Block records (block-cache.ts) whose blob is gone.
    this.blocks.compact();
    // Indexes of files that changed or are gone (all of them, when emptying the cache).
    const indexDir = join(this.dir, STATUS_INDEX_DIR);
    for (const name of safeReaddir(indexDir)) {
      const path = join(indexDir, name);
      try {
        if (name.startsWith('.')) {
          if (now - statSync(path).mtimeMs > STALE_TEMP_MS) rmSync(path, { force: true });
          continue;
        }
        if (maxBytes === 0) throw new Error('remove');
        const r = JSON.parse(readFileSync(path, 'utf8')) as { path: string; stamp: string };
        if (stampOf(statSync(r.path, { bigint: true })) !== r.stamp) throw new Error('changed');
      } catch {
        rmSync(path, { force: true });
      }
    }
    // Remembered builds (builder/build-memo.ts) whose layers are gone.
    const buildsDir = join(this.dir, 'builds');
    for (const name of safeReaddir(buildsDir)) {
      if (name.startsWith('.')) continue;
      try {
        const r = JSON.parse(readFileSync(join(buildsDir, name), 'utf8')) as { layers: CachedLayer[] };
        for (const l of r.layers) statSync(this.blobPath(l.digest));
      } catch {
        rmSync(join(buildsDir, name), { force: true });
      }
    }
    return res;
  }
}

/** Bytes [from, to) of a stream read from its start (the stream is destroyed afterwards). */
export async function* skipTo(s: Readable, from: number, to: number): AsyncGenerator<Buffer> {
  let pos = 0;
  try {
    for await (const c of s) {
      const b = c as Buffer;
      const end = pos + b.length;
      if (end > from && pos < to) yield b.subarray(Math.max(0, from - pos), Math.min(b.length, to - pos));
      pos = end;
      if (pos >= to) break;
    }
  } finally {
    s.destroy();
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Marks an entry as used now (least-recently-used pruning reads the mtime). */
function touch(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    /* read-only cache: still usable */
  }
}
