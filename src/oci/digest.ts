import { ImageError } from './errors.js';
import { createHash, Hash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';

/** "sha256:<64 hex>" */
export type Digest = string;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

export function sha256(data: Uint8Array | string): Digest {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function hexOf(d: Digest): string {
  if (!isDigest(d)) throw new ImageError(`digest "${d}"`, 'unsupported (only sha256 is supported)');
  return d.slice(7);
}

/**
 * The read buffer of hashFileSync, one for the process (the function is synchronous, so no two calls share it at
 * once): a fresh 1 MiB buffer per file cost a build page faults on fresh memory for every file, and garbage
 * collections driven by the external memory they added up to.
 */
let hashBuffer: Buffer | null = null;

/**
 * Several hashes of one file's bytes (or of generated content) in one read, 1 MiB at a time: hex digests in the order
 * of `algorithms` (node:crypto names: sha256, sha1, md5), and the byte count.
 */
export function hashFileSync(source: string | Uint8Array, algorithms: readonly string[]): { hex: string[]; size: number } {
  const hashes = algorithms.map((a) => createHash(a));
  let size = 0;
  if (typeof source !== 'string') {
    for (const h of hashes) h.update(source);
    size = source.length;
  } else {
    const fd = openSync(source, 'r');
    try {
      const buf = (hashBuffer ??= Buffer.allocUnsafeSlow(1 << 20));
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (!n) break;
        const chunk = buf.subarray(0, n);
        for (const h of hashes) h.update(chunk);
        size += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return { hex: hashes.map((h) => h.digest('hex')), size };
}

/** A running sha256 and byte count: fed while bytes stream, read at the end. */
export class Hasher {
  private h: Hash = createHash('sha256');
  size = 0;
  update(chunk: Uint8Array): void {
    this.h.update(chunk);
    this.size += chunk.length;
  }
  digest(): Digest {
    return 'sha256:' + this.h.digest('hex');
  }
}

export async function sha256File(path: string): Promise<{ digest: Digest; size: number }> {
  const h = new Hasher();
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return { digest: h.digest(), size: h.size };
}
