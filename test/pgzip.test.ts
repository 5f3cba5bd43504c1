import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { constants, deflateRawSync } from 'node:zlib';
import { BLOCK_SIZE, crc32, crc32Combine, deflateBlock, gzipParallel, MEM_LEVEL } from '../src/oci/pgzip.js';
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
    // level 0 (stored blocks; the library takes it): what it took before blocks were deflated as gzip members
    const data = sample(BLOCK_SIZE + 5, 3);
    const d = spawnSync('gzip', ['-dc'], { input: await gz(data, 2, 65536, 0), maxBuffer: 64 << 20 });
    assert.equal(d.status, 0, `level 0: ${d.stderr}`);
    assert.ok(d.stdout.equals(data), 'level 0: round trip');
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

  it('a block deflated on its own is the raw deflate of its bytes (what the block cache holds), with their crc32', async () => {
    const r = rng(5);
    const blocks = [Buffer.from('x'), sample(1000, 3), sample(BLOCK_SIZE, 9), Buffer.alloc(BLOCK_SIZE), Buffer.from(Array.from({ length: BLOCK_SIZE }, () => Math.floor(r() * 256)))];
    // (level 0 stores: zlib ends that member with an empty stored block, not 03 00; and it cuts stored blocks to the
    // output room, so the raw deflate is given deflateBlock's)
    for (const level of [0, 1, 4, 9])
      for (const b of blocks) {
        const d = await deflateBlock(b, level);
        const raw = deflateRawSync(b, { level, memLevel: MEM_LEVEL, finishFlush: constants.Z_SYNC_FLUSH, chunkSize: b.length + (b.length >> 8) + 1024 });
        assert.ok(Buffer.concat(d.out).equals(raw), `level ${level}, ${b.length} bytes`);
        assert.equal(d.crc, crc32(b));
      }
  });

  it('combines the crc32 of two pieces into that of the whole, as zlib does', () => {
    const r = rng(11);
    const data = sample(3 * BLOCK_SIZE + 12345, 13);
    for (let i = 0; i < 40; i++) {
      const a = Math.floor(r() * data.length);
      const b = a + Math.floor(r() * (data.length - a));
      const [x, y] = [data.subarray(0, a), data.subarray(a, b)];
      assert.equal(crc32Combine(crc32(x), crc32(y), y.length), crc32(data.subarray(0, b)), `${a} + ${b - a}`);
    }
    assert.equal(crc32Combine(0, crc32(data), data.length), crc32(data), 'an empty first piece');
    assert.equal(crc32Combine(crc32(data), 0, 0), crc32(data), 'an empty second piece');
  });
});
