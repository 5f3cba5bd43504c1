import { ImageError } from './errors.js';
import { createHash, Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

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
