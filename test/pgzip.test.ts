import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { BLOCK_SIZE, gzipParallel, MEM_LEVEL } from '../src/oci/pgzip.js';
import { rng } from './helpers/rng.js';

/** Half random bytes, half repetitive text: both the stored-like and the well-compressing paths of deflate. */
function sample(size: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(size);
  const text = Buffer.from('the quick brown fox jumps over the lazy dog; ');
  for (let i = 0; i < size; i++) b[i] = (i >> 15) % 2 ? Math.floor(r() * 256) : text[i % text.length];
  return b;
}

async function gz(data: Buffer, parallel: number, chunk: number, level = 6): Promise<Buffer> {
  async function* chunks() {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  }
  const out: Buffer[] = [];
  for await (const c of gzipParallel(chunks(), level, parallel)) out.push(c);
  return Buffer.concat(out);
}

describe('parallel gzip', () => {
  const sizes = [0, 1, 32 * 1024, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, Math.floor(3.5 * BLOCK_SIZE)];

  it('GNU gzip decompresses every size back to the input and finds the CRC and length right', async () => {
    for (const [i, size] of sizes.entries()) {
      const data = sample(size, i + 1);
      const z = await gz(data, 4, 65536);
      const d = spawnSync('gzip', ['-dc'], { input: z, maxBuffer: 64 << 20 });
      assert.equal(d.status, 0, `size ${size}: ${d.stderr}`);
      assert.ok(d.stdout.equals(data), `size ${size}: round trip`);
      // gzip -l reads the trailer: the uncompressed length must be the input's.
      const l = spawnSync('gzip', ['-lv'], { input: z });
      assert.match(l.stdout.toString(), new RegExp(`\\s${size}\\s`), `size ${size}: trailer length`);
    }
  });

  it('the bytes depend on the data and the level only: not on the thread count or how the input is chunked', async () => {
    const data = sample(Math.floor(2.7 * BLOCK_SIZE), 42);
    const a = await gz(data, 1, 512);
    assert.ok(a.equals(await gz(data, 4, 1 << 20)));
    assert.ok(a.equals(await gz(data, 2, 777_777)));
    assert.ok(!a.equals(await gz(data, 2, 512, 1)), 'another level gives other bytes');
  });

  it('compresses within 0.1% of single-stream gzip at the same level', async () => {
    const { gzipSync } = await import('node:zlib');
    const data = sample(4 * BLOCK_SIZE, 7);
    const ours = (await gz(data, 2, 1 << 16)).length;
    const serial = gzipSync(data, { level: 6, memLevel: MEM_LEVEL }).length;
    assert.ok(ours <= serial * 1.001, `${ours} vs ${serial}`);
  });
});
