import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

/**
 * Parallel gzip in the manner of pigz: the input is cut into fixed-size blocks, each block is deflated on libuv's
 * thread pool with the previous 32 KiB as its dictionary and ends on a byte boundary (Z_SYNC_FLUSH), and the raw
 * deflate pieces are joined under one gzip header and trailer. The output depends only on the bytes, the block size
 * and the level, never on how many threads ran or in what order they finished: the same layer, the same digest.
 */

const deflateRaw = promisify(zlib.deflateRaw) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;
const WINDOW = 32 * 1024;
/** Bytes per block. Large enough that the per-block cost (a flush marker, fresh Huffman tables) is noise. */
export const BLOCK_SIZE = 1 << 20;

// zlib.crc32 arrived in Node 20.15; a table-driven fallback keeps older Node 20 releases working.
const nativeCrc = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Uint32Array | null = null;
function crc32(data: Uint8Array, value: number): number {
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

/** gzip member header: no name, no mtime (reproducible), OS = Unix, as zlib writes it. */
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);

/**
 * Compresses `input` (any chunking) into gzip, yielding the output in order. At most `parallel` blocks are being
 * deflated at once; memory stays near (parallel + 1) blocks.
 */
export async function* gzipParallel(input: AsyncIterable<Buffer>, level = 6, parallel = availableParallelism()): AsyncGenerator<Buffer> {
  yield HEADER;
  let crc = 0;
  let total = 0;
  let prevTail: Buffer | null = null;
  const inflight: Promise<Buffer>[] = [];
  const start = (block: Buffer, last: boolean) => {
    // One output chunk for the whole block: with the default 16 KiB, each chunk is a round trip to the main thread.
    const opts: zlib.ZlibOptions = { level, finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH, chunkSize: block.length + (block.length >> 8) + 1024 };
    if (prevTail) opts.dictionary = prevTail;
    const job = deflateRaw(block, opts);
    job.catch(() => {}); // awaited in order below; this only keeps an early failure from counting as unhandled
    inflight.push(job);
    prevTail = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([prevTail ?? Buffer.alloc(0), block]).subarray(-WINDOW);
  };
  let pending: Buffer[] = [];
  let pendingLen = 0;
  for await (const chunk of input) {
    crc = crc32(chunk, crc);
    total += chunk.length;
    pending.push(chunk);
    pendingLen += chunk.length;
    while (pendingLen >= BLOCK_SIZE + 1) {
      // Keep at least one byte back, so the final block (Z_FINISH) is never empty unless the input is.
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen);
      start(all.subarray(0, BLOCK_SIZE), false);
      const rest = all.subarray(BLOCK_SIZE);
      pending = [rest];
      pendingLen = rest.length;
      if (inflight.length >= parallel) yield await inflight.shift()!;
    }
  }
  start(pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen), true);
  while (inflight.length) yield await inflight.shift()!;
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(total % 2 ** 32, 4);
  yield trailer;
}
