import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { BlockCache } from './block-cache.js';
import { FileDigests, FileHashes, settled, stampOf } from './file-digests.js';
import { blockNaming, entryHeader, LARGE_FILE, largeBlockNames, LayerEntry } from './layer.js';
import { BLOCK_SIZE, deflateBlock, DeflatedBlock } from './pgzip.js';

/**
 * Large files read ahead of their layer, while the build still decides what else the image holds (run-time rules,
 * package records): each file is read once, its hashes taken from those bytes (the package inventory's md5, the
 * layer key's sha256), and the blocks the layer writer would cut from it (layer.ts: a file of LARGE_FILE or more has
 * blocks of its own, a pure function of its tar header and bytes) are handed to the thread pool's deflate at once,
 * so compression runs on the other core instead of waiting for the main thread. The layer writer later takes those
 * blocks (bytes and deflate) instead of reading the file again, when the file still has the identity it was read
 * under and its header came out the same; anything else it reads as usual. Same bytes, same stream: deflateBlock is
 * what gzipBlocks would call.
 *
 * Only work no cache can save is started: a file whose every block the block cache holds is not read here (the layer
 * writer copies them), and with a non-empty block cache a block is deflated only once the file's digest shows the
 * cache lacks it. Only a plan whose files add up to at most PREREAD_BYTES is read ahead: a larger image is left to
 * the layer writer, which streams it a few blocks at a time (an image holding a 2 GiB file keeps the memory it had).
 */

/** The largest plan read ahead, in bytes of its files (held, with their compressed form, until the layers take them). */
export const PREREAD_BYTES = 32 << 20;

export interface PrereadBlock {
  data: Buffer;
  deflated?: Promise<DeflatedBlock>;
}

interface PrereadFile {
  stamp: string;
  header: Buffer;
  size: number;
  blocks: PrereadBlock[];
}

export class Preread {
  private readonly files = new Map<string, PrereadFile>();
  /** Bytes held, and blocks handed to the deflate (for tests). */
  readonly stats = { bytes: 0, files: 0, deflated: 0 };

  /** Whether `source` was read ahead (and not taken yet). */
  has(source: string): boolean {
    return this.files.has(source);
  }

  /**
   * The bytes of `source` as read ahead (views of the held blocks, in order, without the tar header and padding),
   * while it is held; else null. For the build's own searches of a file's bytes (run-time rules), which would
   * otherwise read the file again.
   */
  content(source: string): Buffer[] | null {
    const f = this.files.get(source);
    if (!f) return null;
    const out: Buffer[] = [];
    let pos = 0;
    f.blocks.forEach((b, k) => {
      const head = k === 0 ? f.header.length : 0;
      const len = Math.min(BLOCK_SIZE, f.size - pos);
      out.push(b.data.subarray(head, head + len));
      pos += len;
    });
    return out;
  }

  /** Stores a file's blocks (internal to prereadFiles). */
  put(source: string, f: PrereadFile): void {
    this.files.set(source, f);
    this.stats.bytes += f.size;
    this.stats.files++;
  }

  /**
   * The blocks of `source` read ahead, once: when they were read with this header and size, under the identity the
   * file still has (and `stamp`, the one its layer-key digest was taken under, when given); else null.
   */
  take(source: string, header: Buffer, size: number, stamp?: string): PrereadBlock[] | null {
    const f = this.files.get(source);
    if (!f) return null;
    this.files.delete(source);
    if (f.size !== size || !f.header.equals(header) || (stamp !== undefined && stamp !== f.stamp)) return null;
    try {
      if (stampOf(statSync(source, { bigint: true })) !== f.stamp) return null;
    } catch {
      return null;
    }
    return f.blocks;
  }
}

export interface PrereadOptions {
  /** Every entry's mtime in the layer (seconds). */
  mtime: number;
  /** gzip level the layers are written at. */
  level: number;
  /** Where the hashes go (and come from, when memoized). */
  files: FileDigests;
  /** Which hashes the build needs of every file besides sha256 (the package inventory's md5, an SBOM's sha1). */
  want: { md5?: boolean; sha1?: boolean };
  /** The block cache, when the build has a cache. */
  blocks: BlockCache | null;
  /** Bytes held at most (default PREREAD_BYTES). */
  budget?: number;
}

/** Reads the large files among `entries` ahead of their layers (see above); a file that cannot be read is left to the layer writer. */
export function prereadFiles(entries: Iterable<LayerEntry>, opts: PrereadOptions): Preread {
  const pre = new Preread();
  const budget = opts.budget ?? PREREAD_BYTES;
  const settings = blockNaming(opts.level);
  // Nothing could be copied from the cache: each block is deflated as soon as it is read.
  const eager = !opts.blocks || opts.blocks.size === 0;
  const list = [...entries];
  let total = 0;
  for (const e of list) if (e.type === 'file') total += e.content ? e.content.length : (e.size ?? 0);
  if (total > budget) return pre;
  for (const e of list) {
    if (e.type !== 'file' || e.content || !e.source) continue;
    const size = e.size ?? 0;
    if (size < LARGE_FILE || pre.has(e.source)) continue;
    try {
      const f = readAhead(e, size, opts, settings, eager, pre);
      if (f) pre.put(e.source, f);
    } catch {
      /* unreadable here: the layer writer reads it, and says what is wrong */
    }
  }
  return pre;
}

function readAhead(e: LayerEntry, size: number, opts: PrereadOptions, settings: string, eager: boolean, pre: Preread): PrereadFile | null {
  const source = e.source!;
  const st = statSync(source, { bigint: true });
  // Changed since it was planned, or written within the last seconds (its stamp may not name its bytes): left alone.
  if (Number(st.size) !== size || !st.isFile() || !settled(st)) return null;
  const header = entryHeader(e, opts.mtime, size);
  const blocks = opts.blocks;
  if (blocks && !eager) {
    const known = opts.files.known(source, st);
    if (known && largeBlockNames(settings, header, known.digest, size).every((id) => blocks.has(id))) return null;
  }
  const sha256 = createHash('sha256');
  const md5 = opts.want.md5 ? createHash('md5') : null;
  const sha1 = opts.want.sha1 ? createHash('sha1') : null;
  const out: PrereadBlock[] = [];
  const pad = (512 - (size % 512)) % 512;
  const deflate = (b: PrereadBlock) => {
    const d = deflateBlock(b.data, opts.level);
    d.catch(() => {}); // awaited by the layer writer; a block never taken must not count as an unhandled failure
    b.deflated = d;
    pre.stats.deflated++;
  };
  const fd = openSync(source, 'r');
  try {
    for (let pos = 0; pos < size; ) {
      const len = Math.min(BLOCK_SIZE, size - pos);
      const head = pos === 0 ? header.length : 0;
      const tail = pos + len === size ? pad : 0;
      const data = Buffer.allocUnsafe(head + len + tail);
      if (head) header.copy(data, 0);
      for (let seen = 0; seen < len; ) {
        const n = readSync(fd, data, head + seen, len - seen, null);
        if (!n) return null; // shorter than planned: the layer writer reports it
        seen += n;
      }
      if (tail) data.fill(0, head + len);
      const content = data.subarray(head, head + len);
      sha256.update(content);
      md5?.update(content);
      sha1?.update(content);
      pos += len;
      const b: PrereadBlock = { data };
      if (eager) deflate(b);
      out.push(b);
    }
    if (readSync(fd, Buffer.allocUnsafe(1), 0, 1, null)) return null; // longer than planned
  } finally {
    closeSync(fd);
  }
  const h: FileHashes = { digest: 'sha256:' + sha256.digest('hex'), stamp: stampOf(st), size };
  if (md5) h.md5 = md5.digest('hex');
  if (sha1) h.sha1 = sha1.digest('hex');
  if (opts.files.keep(source, st, h).stamp === 'changed') return null;
  if (!eager) {
    const ids = largeBlockNames(settings, header, h.digest, size);
    out.forEach((b, k) => {
      if (!blocks!.has(ids[k])) deflate(b);
    });
  }
  return { stamp: h.stamp, header, size, blocks: out };
}
