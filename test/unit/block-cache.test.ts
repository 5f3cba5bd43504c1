import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { constants, deflateRawSync, gunzipSync } from 'node:zlib';
import { Cache } from '../../src/oci/cache.js';
import { FileDigests } from '../../src/oci/file-digests.js';
import { LayerBlob, LayerEntry, writeLayer } from '../../src/oci/layer.js';
import { BLOCK_SIZE, BlockPlacement, crc32, gzipBlocks, MEM_LEVEL, RawBlock } from '../../src/oci/pgzip.js';
import { rng } from '../helpers/rng.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-blocks-');
});
after(() => removeDir(dir));

const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Compressible but not trivially so: runs of text between runs of random bytes. */
function sample(size: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i >> 12) % 3 ? 97 + ((i * 7) % 26) : Math.floor(r() * 256);
  return b;
}

function file(name: string, bytes: Buffer): LayerEntry {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return { path: `/app/${name}`, type: 'file', mode: 0o755, uid: 0, gid: 0, source: p, size: bytes.length };
}

async function gz(blocks: RawBlock[], opts: Parameters<typeof gzipBlocks>[2] = {}): Promise<Buffer> {
  async function* input() {
    yield* blocks;
  }
  const out: Buffer[] = [];
  for await (const c of gzipBlocks(input(), 4, opts)) out.push(c);
  return Buffer.concat(out);
}

/** A layer written with the cache in `cacheDir` (a fresh Cache: its block index is read from disk). */
async function cached(entries: LayerEntry[], cacheDir: string): Promise<{ blob: LayerBlob; cache: Cache }> {
  const cache = new Cache(cacheDir);
  const blob = await writeLayer(entries, { dir: join(dir, 'unused'), mediaType: GZ, mtime: 0, comment: 'app', cache: { cache, files: new FileDigests(null) } });
  return { blob, cache };
}

async function uncached(entries: LayerEntry[], out: string): Promise<LayerBlob> {
  return writeLayer(entries, { dir: join(dir, out), mediaType: GZ, mtime: 0, comment: 'app' });
}

describe('independent gzip blocks', () => {
  it('each block is deflated on its own: its bytes in the stream are deflateRaw of the block alone, and a copy gives the same stream', async () => {
    const blocks: RawBlock[] = [sample(BLOCK_SIZE, 1), sample(300_000, 2), sample(5000, 3)].map((data, i) => ({ data, id: `b${i}` }));
    const placed: BlockPlacement[] = [];
    const z = await gz(blocks, { onBlock: (p) => placed.push(p) });
    assert.ok(gunzipSync(z).equals(Buffer.concat(blocks.map((b) => b.data))));
    const d = spawnSync('gzip', ['-t'], { input: z });
    assert.equal(d.status, 0, String(d.stderr));
    assert.equal(placed.length, 3);
    for (const [i, p] of placed.entries()) {
      const alone = deflateRawSync(blocks[i].data, { level: 4, memLevel: MEM_LEVEL, finishFlush: constants.Z_SYNC_FLUSH });
      assert.ok(z.subarray(p.offset, p.offset + p.length).equals(alone), `block ${i}`);
      assert.equal(p.reused, false);
    }
    // Copying the compressed bytes of blocks 0 and 2 instead of deflating them: byte for byte the same stream.
    const copies = new Map([0, 2].map((i) => [`b${i}`, z.subarray(placed[i].offset, placed[i].offset + placed[i].length)]));
    const again: BlockPlacement[] = [];
    const z2 = await gz(blocks, { reuse: (id) => copies.get(id) ?? null, onBlock: (p) => again.push(p) });
    assert.ok(z2.equals(z));
    assert.deepEqual(
      again.map((p) => p.reused),
      [true, false, true],
    );
  });
});

describe('blocks deflated ahead', () => {
  it('are taken without waiting for their deflate (the hashing of the next ones is not held up), and the stream is the same', async () => {
    const data = [sample(BLOCK_SIZE, 4), sample(BLOCK_SIZE, 5), sample(BLOCK_SIZE, 6), sample(70_000, 7)];
    const plain = await gz(data.map((d) => ({ data: d, id: null })));
    // The deflates of the first three finish only once the input has given its last block: a writer that waited for
    // them before taking the next block would never finish.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let taken = 0;
    async function* input(): AsyncGenerator<RawBlock> {
      for (const [i, d] of data.entries()) {
        taken++;
        if (i === data.length - 1) {
          release();
          yield { data: d, id: null };
        } else yield { data: d, id: null, deflated: gate.then(() => ({ out: [deflateRawSync(d, { level: 4, memLevel: MEM_LEVEL, finishFlush: constants.Z_SYNC_FLUSH })], crc: crc32(d) })) };
      }
    }
    const out: Buffer[] = [];
    let takenAtFirstBlock = -1;
    const timeout = setTimeout(() => release(), 1000); // (a writer that waits: it ends, and the check below fails)
    try {
      for await (const c of gzipBlocks(input(), 4, { parallel: 1 })) {
        out.push(c);
        if (out.length === 2) takenAtFirstBlock = taken; // (the first piece is the gzip header)
      }
    } finally {
      clearTimeout(timeout);
    }
    assert.equal(takenAtFirstBlock, data.length);
    assert.ok(Buffer.concat(out).equals(plain));
  });
});

describe('block cache', () => {
  it('a layer in which one file changed copies the blocks of the others, and is byte for byte the layer an uncached writer makes', async () => {
    const cacheDir = join(dir, 'c1');
    const small = file('a-conf', Buffer.from('port 6379\n'));
    const lib = file('b-lib', sample(2 * BLOCK_SIZE + 4321, 4));
    const gen: LayerEntry = { path: '/app/c-generated', type: 'file', mode: 0o644, uid: 0, gid: 0, content: sample(200_000, 5) };
    let bin = file('d-bin', sample(BLOCK_SIZE + 777, 6));
    const first = await cached([small, lib, gen, bin], cacheDir);
    assert.equal(first.cache.blocks.stats.reused, 0);
    assert.equal(first.blob.digest, (await uncached([small, lib, gen, bin], 'u1')).digest);

    // The binary changes (a different size too): every block but the binary's is copied.
    bin = file('d-bin', Buffer.concat([sample(BLOCK_SIZE + 777, 6), Buffer.from('build 2')]));
    const second = await cached([small, lib, gen, bin], cacheDir);
    assert.ok(second.cache.blocks.stats.reused >= 4, `reused ${second.cache.blocks.stats.reused}`);
    const plain = await uncached([small, lib, gen, bin], 'u2');
    assert.equal(second.blob.digest, plain.digest);
    assert.equal(second.blob.diffId, plain.diffId);
    assert.ok(readFileSync(second.blob.path).equals(readFileSync(plain.path)));
    const t = spawnSync('tar', ['-tvz'], { input: readFileSync(second.blob.path) });
    assert.equal(t.status, 0, String(t.stderr));
    assert.match(String(t.stdout), /app\/d-bin/);
  });

  it('a damaged or truncated cached blob is found out (crc32 of each block) and its blocks deflated again, never copied', async () => {
    const cacheDir = join(dir, 'c2');
    const lib = file('lib2', sample(3 * BLOCK_SIZE, 7));
    const other = file('other2', sample(2 * BLOCK_SIZE + 99, 8));
    let bin = file('bin2', sample(100_000, 9));
    const first = await cached([lib, other, bin], cacheDir);
    const blobPath = first.blob.path;
    const records = readFileSync(join(cacheDir, 'blocks.log'), 'latin1').trim().split('\n').map((l) => l.split(' '));
    assert.ok(records.length >= 6, `${records.length} records`);
    // One byte of the third recorded block flipped in place (same size: only the crc can tell). In tar order: /app,
    // then bin2 (which changes below), then lib2's first block.
    const [, , off, len] = records[2].map(Number);
    assert.ok(len > 10_000, `${len}`);
    const fd = openSync(blobPath, 'r+');
    const b = Buffer.alloc(1);
    const at = off + Math.floor(len / 2);
    const orig = readFileSync(blobPath)[at];
    b[0] = orig ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);

    bin = file('bin2', sample(100_001, 10));
    const second = await cached([lib, other, bin], cacheDir);
    assert.ok(second.cache.blocks.stats.rejected >= 1, `the damaged block was noticed: ${JSON.stringify(second.cache.blocks.stats)} ${records.length}`);
    assert.ok(second.cache.blocks.stats.reused >= 1, 'the intact ones were still copied');
    const plain2 = await uncached([lib, other, bin], 'u3');
    assert.equal(second.blob.digest, plain2.digest);

    // Now every blob the records name is cut short: nothing can be copied, and the layer is still right.
    for (const p of new Set([blobPath, second.blob.path])) truncateSync(p, Math.floor(statSync(p).size / 3));
    bin = file('bin2', sample(100_002, 11));
    const third = await cached([lib, other, bin], cacheDir);
    assert.ok(third.cache.blocks.stats.rejected >= 1);
    const plain3 = await uncached([lib, other, bin], 'u4');
    assert.equal(third.blob.digest, plain3.digest);
    assert.ok(gunzipSync(readFileSync(third.blob.path)).length > 0);
  });

  it('a record cut short or hand-edited is no record; prune drops the records of blobs that are gone', async () => {
    const cacheDir = join(dir, 'c3');
    const lib = file('lib3', sample(BLOCK_SIZE + 5, 12));
    const first = await cached([lib], cacheDir);
    const log = join(cacheDir, 'blocks.log');
    const text = readFileSync(log, 'latin1');
    writeFileSync(log, text + text.split('\n')[0].slice(0, 50) + '\nnot a record\n');
    const again = await cached([lib, file('x3', Buffer.from('x'))], cacheDir);
    assert.ok(again.cache.blocks.stats.reused >= 1);
    assert.equal(again.blob.digest, (await uncached([lib, file('x3', Buffer.from('x'))], 'u5')).digest);
    first.cache.prune(0, 0);
    assert.equal(readFileSync(log, 'latin1'), '', 'every blob is gone, and so is every record');
  });
});

describe('block cache log', () => {
  it('a log that mostly repeats itself is rewritten with one record per id when read', async () => {
    const cacheDir = join(dir, 'c4');
    const lib = file('lib4', sample(BLOCK_SIZE + 5, 13));
    await cached([lib], cacheDir);
    const log = join(cacheDir, 'blocks.log');
    const once = readFileSync(log, 'latin1');
    const ids = once.trim().split('\n').length;
    writeFileSync(log, once.repeat(Math.ceil(5000 / ids)));
    const again = await cached([lib, file('y4', Buffer.from('y'))], cacheDir);
    assert.ok(again.cache.blocks.stats.reused >= 1);
    const lines = readFileSync(log, 'latin1').trim().split('\n');
    // One record per id, then the new layer's own records appended.
    assert.ok(lines.length < 2 * (ids + 4), `${lines.length} lines left`);
  });
});
