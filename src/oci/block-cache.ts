import { appendFileSync, closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { BlockPlacement, crc32 } from './pgzip.js';

/**
 * The block cache: where the compressed bytes of every identified block of the layers written here are, so a later
 * layer that holds the same block copies them instead of deflating it again (pgzip.ts deflates each block on its
 * own, so its compressed bytes are the same in any stream). A block's id names its bytes and the deflate settings
 * (layer.ts); the record says which cached blob holds its compressed bytes, where, and their crc32.
 *
 *   blocks.log   one line per block: ID BLOB-HEX OFFSET LENGTH CRC32, appended once per layer written
 *
 * Appends are one write each (O_APPEND): concurrent builds add whole lines. A line cut short by a kill is not a
 * record. The last record of an id wins (the newest blob). Nothing is trusted: bytes are copied only when the blob
 * still holds `length` bytes at `offset` whose crc32 is the recorded one, so a damaged, truncated or pruned blob
 * costs a deflate, never a wrong layer. `compact` (at prune time, and when a read finds the log repeating itself)
 * keeps one record per id and drops records of blobs that are gone.
 */

const LINE = /^([0-9a-f]{64}) ([0-9a-f]{64}) (\d{1,15}) (\d{1,10}) (\d{1,10})$/;
/** A log of more lines than this, most of them records an id already had again, is compacted when read. */
const COMPACT_LINES = 4096;
/** Compressed blocks larger than this are not believed (a block is at most ~1.1 MiB of input). */
const MAX_BLOCK = 8 << 20;

interface BlockRecord {
  blob: string;
  offset: number;
  length: number;
  crc: number;
}

export class BlockCache {
  private index: Map<string, BlockRecord> | null = null;
  /** Blocks copied and deflated by this process (for tests and notes). */
  readonly stats = { reused: 0, rejected: 0 };

  constructor(
    /** The cache directory (blobs/sha256 holds the blobs the records point into). */
    readonly dir: string,
  ) {}

  get logPath(): string {
    return join(this.dir, 'blocks.log');
  }

  private blobPath(hex: string): string {
    return join(this.dir, 'blobs', 'sha256', hex);
  }

  private load(): Map<string, BlockRecord> {
    if (this.index) return this.index;
    const index = new Map<string, BlockRecord>();
    let text = '';
    try {
      text = readFileSync(this.logPath, 'latin1');
    } catch {
      /* none yet */
    }
    const lines = text.split('\n');
    for (const line of lines) {
      const m = LINE.exec(line);
      if (!m) continue;
      index.set(m[1], { blob: m[2], offset: Number(m[3]), length: Number(m[4]), crc: Number(m[5]) });
    }
    this.index = index;
    // Each layer written appends its blocks again (pointing at the newest blob): a log that repeats itself is
    // rewritten with one record per id, so reading it stays cheap however many builds ran.
    if (lines.length > COMPACT_LINES && lines.length > 2 * index.size) this.compact();
    return index;
  }

  /** Whether a record names block `id` (its bytes are checked only when copied: see lookup). */
  has(id: string): boolean {
    return this.load().has(id);
  }

  /** How many blocks have records. */
  get size(): number {
    return this.load().size;
  }

  /** The compressed bytes of block `id`, when a cached blob still holds them intact; else null. */
  lookup(id: string): Buffer | null {
    const r = this.load().get(id);
    if (!r || r.length > MAX_BLOCK) return null;
    let fd: number;
    try {
      fd = openSync(this.blobPath(r.blob), 'r');
    } catch {
      return null;
    }
    try {
      const b = Buffer.allocUnsafe(r.length);
      let got = 0;
      while (got < r.length) {
        const n = readSync(fd, b, got, r.length - got, r.offset + got);
        if (!n) break;
        got += n;
      }
      if (got === r.length && crc32(b) === r.crc) {
        this.stats.reused++;
        return b;
      }
      this.stats.rejected++;
      return null;
    } catch {
      return null;
    } finally {
      closeSync(fd);
    }
  }

  /** Records the identified blocks of a blob just put into the cache (one append; a failure only costs time). */
  record(blobHex: string, blocks: BlockPlacement[]): void {
    let lines = '';
    for (const b of blocks) {
      if (b.id === null) continue;
      lines += `${b.id} ${blobHex} ${b.offset} ${b.length} ${b.crc >>> 0}\n`;
      this.index?.set(b.id, { blob: blobHex, offset: b.offset, length: b.length, crc: b.crc >>> 0 });
    }
    if (!lines) return;
    try {
      appendFileSync(this.logPath, lines);
    } catch {
      /* an unwritable cache only costs the next build its time */
    }
  }

  /** Rewrites the log with one record per id, only those whose blob is still here. */
  compact(): { kept: number; dropped: number } {
    const index = this.index ?? this.load();
    const present = new Map<string, boolean>();
    const has = (hex: string) => {
      let v = present.get(hex);
      if (v === undefined) {
        try {
          v = statSync(this.blobPath(hex)).isFile();
        } catch {
          v = false;
        }
        present.set(hex, v);
      }
      return v;
    };
    let out = '';
    let kept = 0;
    let dropped = 0;
    for (const [id, r] of index) {
      if (!has(r.blob)) {
        index.delete(id);
        dropped++;
        continue;
      }
      out += `${id} ${r.blob} ${r.offset} ${r.length} ${r.crc}\n`;
      kept++;
    }
    try {
      writeFileAtomic(this.logPath, out);
    } catch {
      /* read-only cache */
    }
    return { kept, dropped };
  }
}
