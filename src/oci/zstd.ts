import { ImageError } from './errors.js';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';

/**
 * zstd through @mongodb-js/zstd (Node 20's zlib has none). Version 1.2 of that package: its prebuilt binaries come
 * from the npm registry as platform packages (later versions download them from GitHub at install time, or build
 * libzstd from a source download). Loaded on first use: an optional dependency, absent on platforms without a prebuilt.
 */
interface ZstdBinding {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

let binding: ZstdBinding | null = null;

export class ZstdUnavailableError extends Error {}

export function zstd(): ZstdBinding {
  if (binding) return binding;
  try {
    // The native functions themselves: the package's JS wrapper (index.js) drops compress's level argument.
    binding = createRequire(import.meta.url)('@mongodb-js/zstd/bindings.js') as ZstdBinding;
  } catch (e) {
    throw new ZstdUnavailableError(`zstd is not available here (@mongodb-js/zstd did not load: ${(e as Error).message.split('\n')[0]})`);
  }
  return binding;
}

/** Bytes per frame. Each block is one independent zstd frame; frames compress in parallel. */
export const ZSTD_BLOCK = 4 << 20;

/**
 * Compresses `input` into a sequence of zstd frames, one per 4 MiB block, compressed on the thread pool `parallel` at
 * a time (as pzstd does); every zstd decoder reads concatenated frames as one stream. The bytes depend only on the
 * input, the block size and the level: the same layer, the same digest, whatever the thread count.
 */
export async function* zstdParallel(input: AsyncIterable<Buffer>, level = 3, parallel = availableParallelism()): AsyncGenerator<Buffer> {
  const z = zstd();
  const inflight: Promise<Buffer>[] = [];
  const start = (block: Buffer) => {
    const job = z.compress(block, level);
    job.catch(() => {});
    inflight.push(job);
  };
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let any = false;
  for await (const chunk of input) {
    pending.push(chunk);
    pendingLen += chunk.length;
    while (pendingLen >= ZSTD_BLOCK) {
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen);
      // A copy: the binding may read the block after this generator moved on and the source reused its buffer.
      start(Buffer.from(all.subarray(0, ZSTD_BLOCK)));
      any = true;
      const rest = all.subarray(ZSTD_BLOCK);
      pending = rest.length ? [rest] : [];
      pendingLen = rest.length;
      if (inflight.length >= parallel) yield await inflight.shift()!;
    }
  }
  if (pendingLen || !any) start(Buffer.concat(pending, pendingLen));
  while (inflight.length) yield await inflight.shift()!;
}

/** Largest zstd layer read back whole (inspect, the run check on a base image): zstd frames are decoded in one go. */
const MAX_READ = 2 ** 31 - 1;

/** The decompressed bytes of a zstd stream (held whole: the binding has no streaming decoder). */
export function zstdDecompressStream(src: Readable, what: string): Readable {
  return Readable.from(
    (async function* () {
      const parts: Buffer[] = [];
      let n = 0;
      for await (const c of src) {
        n += (c as Buffer).length;
        if (n > MAX_READ) throw new ImageError(what, 'zstd layer too large to read back (over 2 GiB)');
        parts.push(c as Buffer);
      }
      yield await zstd().decompress(Buffer.concat(parts, n));
    })(),
  );
}
