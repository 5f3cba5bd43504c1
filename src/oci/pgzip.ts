import { availableParallelism } from 'node:os';
import * as zlib from 'node:zlib';
import { ImageError } from './errors.js';

/**
 * Parallel gzip in the manner of pigz --independent: the input comes cut into blocks, each block is deflated on
 * libuv's thread pool on its own (no preset dictionary) and ends on a byte boundary (Z_SYNC_FLUSH), and the raw
 * deflate pieces are joined under one gzip header, an empty final block and one trailer. A block's compressed bytes
 * are a pure function of its bytes and the settings (level, memLevel, zlib's version), never of its neighbours, the
 * thread count or the order jobs finished: the same layer, the same digest, and a block compressed once can be copied
 * into any later stream that holds the same bytes (the block cache, block-cache.ts).
 */

/** One block of input. `id` names its bytes (for the block cache); null when they are not identified. */
export interface RawBlock {
  data: Buffer;
  id: string | null;
  /** Its deflate, already started (deflateBlock at the stream's level): taken as it is, not deflated again. */
  deflated?: Promise<DeflatedBlock>;
}

/** A block's raw deflate (ending on a byte boundary), and the crc32 of the bytes it holds. */
export interface DeflatedBlock {
  out: Buffer[];
  crc: number;
}

/** Where a block went in the gzip stream (offsets count from the stream's first byte). */
export interface BlockPlacement {
  id: string | null;
  /** Offset and length of its compressed bytes. */
  offset: number;
  length: number;
  /** crc32 of its compressed bytes (checked before they are copied into a later stream). */
  crc: number;
  /** Copied from an earlier stream rather than deflated now. */
  reused: boolean;
}

export interface GzipBlockOptions {
  parallel?: number;
  /** The compressed bytes of a block deflated before with the same settings (checked by the caller), or null. */
  reuse?: (id: string, rawLength: number) => Buffer | null;
  /** Each block's place in the output, in output order. */
  onBlock?: (b: BlockPlacement) => void;
}

/**
 * What zlib writes around a deflate as gzip: its 10-byte header, and after the data an empty last block and the 8-byte
 * trailer. The empty last block is FINAL (03 00), or at level 0 (no compression: stored blocks) an empty stored block.
 */
const GZIP_HEAD = 10;
const GZIP_TRAILER = 8;
const FINAL_STORED = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

/**
 * Deflates one block on the thread pool, on its own, ending on a byte boundary (Z_SYNC_FLUSH). zlib writes it as a
 * gzip member (the data flushed, then an empty last block), so that it takes the block's crc32 while it reads the
 * bytes, for free, instead of the main thread reading all of them again (10 ms of a cold redis build); the member's
 * header, last block and trailer are cut off (views of zlib's output, which the output buffer holds in one piece for
 * a whole block's worth), and the trailer's crc32 kept. The deflate data is the same either way (a wrapper never
 * changes it).
 */
export function deflateBlock(block: Buffer, level: number): Promise<DeflatedBlock> {
  return new Promise((resolve, reject) => {
    const d = zlib.createGzip({ level, memLevel: MEM_LEVEL, chunkSize: block.length + (block.length >> 8) + 1024, flush: zlib.constants.Z_SYNC_FLUSH });
    const out: Buffer[] = [];
    d.on('data', (c: Buffer) => out.push(c));
    d.on('end', () => {
      try {
        resolve(unwrapMember(out, block.length, level === 0 ? FINAL_STORED : FINAL));
      } catch (e) {
        reject(e);
      }
    });
    d.on('error', reject);
    d.end(block);
  });
}

/**
 * The raw deflate inside a gzip member zlib wrote for `length` bytes (deflateBlock), ending in the empty last block
 * `final`, and its crc32 (pieces are cut, not copied).
 */
function unwrapMember(pieces: Buffer[], length: number, final: Buffer): DeflatedBlock {
  // zlib writes the header with the data, and the last block and trailer in a piece of their own.
  const tail = final.length + GZIP_TRAILER;
  let last = pieces[pieces.length - 1];
  if (pieces.length < 2 || last.length < tail) {
    const all = Buffer.concat(pieces);
    pieces = [all.subarray(0, all.length - tail), all.subarray(all.length - tail)];
    last = pieces[1];
  }
  const first = pieces[0];
  const at = last.length - tail;
  if (first.length < GZIP_HEAD || first[0] !== 0x1f || first[1] !== 0x8b || !last.subarray(at, at + final.length).equals(final) || last.readUInt32LE(at + final.length + 4) !== length >>> 0)
    throw new ImageError(`zlib ${process.versions.zlib}`, `wrote an unexpected gzip member for a block of ${length} bytes`);
  const out = [first.subarray(GZIP_HEAD), ...pieces.slice(1, -1), last.subarray(0, at)].filter((p) => p.length);
  return { out, crc: last.readUInt32LE(at + final.length) };
}

/** Bytes per block (a large file is cut at multiples of it from its own start). */
export const BLOCK_SIZE = 1 << 20;
/**
 * zlib's memLevel: 9 (the largest hash table) deflates the redis layers 9% faster than the default 8 at level 4, and
 * 0.5% larger, still 1.2% under umoci's output (README, Performance). Part of the layer format (LAYER_FORMAT).
 */
export const MEM_LEVEL = 9;

/**
 * What a block's compressed bytes depend on besides its own bytes: a block cached under one of these is never copied
 * into a stream made under another (another zlib may deflate the same bytes differently).
 */
export function deflateSettings(level: number): string {
  return `deflate-raw sync-flush level=${level} memLevel=${MEM_LEVEL} windowBits=15 zlib=${process.versions.zlib}`;
}

// zlib.crc32 arrived in Node 20.15; a table-driven fallback keeps older Node 20 releases working.
const nativeCrc = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Uint32Array | null = null;
export function crc32(data: Uint8Array, value = 0): number {
  if (nativeCrc) return nativeCrc(data, value);
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** x^(2^n) modulo the crc32 polynomial, for n = 0..31 (crc32Combine). */
let powers: Uint32Array | null = null;

/** a(x) times b(x) modulo the crc32 polynomial (bit-reflected, as crc32 values are). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ 0xedb88320 : b >>> 1;
  }
  return p >>> 0;
}

/**
 * The crc32 of two byte strings joined, from the crc32 of each and the length of the second (zlib's crc32_combine):
 * crc1 times x^(8 * len2), plus crc2.
 */
export function crc32Combine(crc1: number, crc2: number, len2: number): number {
  if (!powers) {
    powers = new Uint32Array(32);
    let p = 0x40000000; // x^1
    for (let n = 0; n < 32; n++) powers[n] = p = n === 0 ? p : multModP(p, p);
  }
  // x^(8 * len2): len2's bits, each standing for x^(2^(k + 3))
  let x = 0x80000000; // x^0
  for (let n = len2, k = 3; n > 0; n = Math.floor(n / 2), k++) if (n % 2) x = multModP(powers[k & 31], x);
  return (multModP(x, crc1) ^ crc2) >>> 0;
}

/** gzip member header: no name, no mtime (reproducible), OS = Unix, as zlib writes it. */
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
/** Blocks (copied or being deflated) held at most beyond `parallel`. */
const MAX_WAITING = 4;
/** The last deflate block: final, fixed Huffman codes, nothing but the end-of-block code. */
const FINAL = Buffer.from([0x03, 0x00]);

/**
 * Compresses a sequence of blocks into one gzip stream, yielding the output in order. At most `parallel` blocks are
 * being deflated at once; memory stays near (parallel + 2) blocks. Blocks must not be changed once yielded (they are
 * deflated in place). A block whose `reuse` answers is copied, not deflated: the output is the same bytes.
 */
export async function* gzipBlocks(input: AsyncIterable<RawBlock>, level = 6, opts: GzipBlockOptions = {}): AsyncGenerator<Buffer> {
  const parallel = opts.parallel ?? availableParallelism();
  const onBlock = opts.onBlock;
  yield HEADER;
  let offset = HEADER.length;
  let crc = 0;
  let total = 0;
  // `ahead`: deflated before it came here (block.deflated); `done`: its deflate has finished. A copied block's `out`
  // is its bytes, with the crc32 of its raw bytes taken here; a deflated one's comes with its deflate.
  const inflight: { id: string | null; reused: boolean; raw: number; out: Promise<DeflatedBlock> | DeflatedBlock; ahead: boolean; done: boolean }[] = [];
  const settled = (out: Promise<DeflatedBlock> | DeflatedBlock): out is DeflatedBlock => !(out instanceof Promise);
  async function* drainOne(): AsyncGenerator<Buffer> {
    const job = inflight.shift()!;
    const { out, crc: rawCrc } = settled(job.out) ? job.out : await job.out;
    crc = crc32Combine(crc, rawCrc, job.raw);
    let length = 0;
    let c = 0;
    for (const b of out) {
      length += b.length;
      if (onBlock) c = crc32(b, c);
    }
    onBlock?.({ id: job.id, offset, length, crc: c, reused: job.reused });
    offset += length;
    yield* out;
  }
  for await (const block of input) {
    const data = block.data;
    if (!data.length) continue;
    total += data.length;
    const copied = !block.deflated && block.id !== null && opts.reuse ? opts.reuse(block.id, data.length) : null;
    if (copied) inflight.push({ id: block.id, reused: true, raw: data.length, out: { out: [copied], crc: crc32(data) }, ahead: false, done: true });
    else {
      const out = block.deflated ?? deflateBlock(data, level);
      const job = { id: block.id, reused: false, raw: data.length, out, ahead: !!block.deflated, done: false };
      // (awaited in order below; the catch only keeps an early failure from counting as unhandled)
      out.then(
        () => (job.done = true),
        () => (job.done = true),
      );
      inflight.push(job);
    }
    // Copied blocks take no thread: only the deflate jobs started here count against `parallel`. Copies waiting behind
    // a deflate job are bounded too (memory stays near a few blocks whatever the layer holds). Blocks deflated ahead
    // (preread.ts) run on the thread pool already and are held by the read-ahead anyway: the next blocks are taken
    // (and hashed, by the caller and here) without waiting for them, so that work is done while the threads deflate
    // rather than after them. A finished block at the head is written out at once.
    let waiting = 0;
    let started = 0;
    for (const j of inflight) {
      if (j.ahead) continue;
      waiting++;
      if (!settled(j.out)) started++;
    }
    while (inflight.length && (inflight[0].done || waiting >= parallel + MAX_WAITING || started >= parallel)) {
      const head = inflight[0];
      if (!head.ahead) {
        waiting--;
        if (!settled(head.out)) started--;
      }
      yield* drainOne();
    }
  }
  while (inflight.length) yield* drainOne();
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(total % 2 ** 32, 4);
  yield FINAL;
  yield trailer;
}

/**
 * Compresses `input` (any chunking) into gzip, cut into BLOCK_SIZE blocks. A chunk that holds a whole block at a
 * block boundary is deflated in place, not copied: chunks must not be changed once yielded.
 */
export async function* gzipParallel(input: AsyncIterable<Buffer>, level = 6, parallel = availableParallelism()): AsyncGenerator<Buffer> {
  async function* blocks(): AsyncGenerator<RawBlock> {
    let cur: Buffer | null = null;
    let filled = 0;
    for await (const chunk of input) {
      let pos = 0;
      while (pos < chunk.length) {
        if (filled === 0 && chunk.length - pos >= BLOCK_SIZE) {
          yield { data: chunk.subarray(pos, pos + BLOCK_SIZE), id: null };
          pos += BLOCK_SIZE;
          continue;
        }
        cur ??= Buffer.allocUnsafe(BLOCK_SIZE);
        const n = chunk.copy(cur, filled, pos, Math.min(chunk.length, pos + BLOCK_SIZE - filled));
        filled += n;
        pos += n;
        if (filled === BLOCK_SIZE) {
          yield { data: cur, id: null };
          cur = null;
          filled = 0;
        }
      }
    }
    if (filled) yield { data: cur!.subarray(0, filled), id: null };
  }
  yield* gzipBlocks(blocks(), level, { parallel });
}
