import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Cache } from '../../src/oci/cache.js';
import { hashFileSync } from '../../src/oci/digest.js';
import { FileDigests } from '../../src/oci/file-digests.js';
import { LayerEntry, writeLayer } from '../../src/oci/layer.js';
import { BLOCK_SIZE } from '../../src/oci/pgzip.js';
import { prereadFiles } from '../../src/oci/preread.js';
import { rng } from '../helpers/rng.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-preread-');
});
after(() => removeDir(dir));

const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const LIBC = '/usr/lib/x86_64-linux-gnu/libc.so.6';
const LIBM = '/usr/lib/x86_64-linux-gnu/libm.so.6';

/** A host file that changed long ago (read ahead only when its stamp is settled). */
function sys(path: string, mode = 0o755): LayerEntry {
  return { path, type: 'file', mode, uid: 0, gid: 0, source: path, size: statSync(path).size };
}

function sample(size: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i >> 11) % 3 ? 97 + ((i * 7) % 26) : Math.floor(r() * 256);
  return b;
}

const opts = (files: FileDigests) => ({ mtime: 0, level: 4, files, want: { md5: true }, blocks: null });

describe('read-ahead of large files', () => {
  it('the layer written from the blocks read ahead is the one written without them; the md5 and sha256 kept are the bytes read', async () => {
    const entries: LayerEntry[] = [sys(LIBC), sys(LIBM), { path: '/etc/x', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('x\n') }];
    const files = new FileDigests(null);
    const pre = prereadFiles(entries, opts(files));
    assert.equal(pre.stats.files, 2);
    assert.equal(pre.stats.deflated, Math.ceil(statSync(LIBC).size / BLOCK_SIZE) + Math.ceil(statSync(LIBM).size / BLOCK_SIZE));
    const known = files.known(LIBC, statSync(LIBC, { bigint: true }), { md5: true })!;
    const { hex } = hashFileSync(LIBC, ['sha256', 'md5']);
    assert.deepEqual([known.digest, known.md5], ['sha256:' + hex[0], hex[1]]);
    const ahead = await writeLayer(entries, { dir: join(dir, 'a'), mediaType: GZ, mtime: 0, comment: 't', preread: pre });
    assert.ok(!pre.has(LIBC) && !pre.has(LIBM), 'the layer took both files');
    const plain = await writeLayer(entries, { dir: join(dir, 'b'), mediaType: GZ, mtime: 0, comment: 't' });
    assert.equal(ahead.digest, plain.digest);
    assert.equal(ahead.diffId, plain.diffId);
  });

  it("a held file's content is its bytes, without the tar header and padding; none once the layer took it", async () => {
    const entries = [sys(LIBC)];
    const pre = prereadFiles(entries, opts(new FileDigests(null)));
    const held = pre.content(LIBC)!;
    assert.equal(held.length, Math.ceil(statSync(LIBC).size / BLOCK_SIZE));
    assert.ok(Buffer.concat(held).equals(readFileSync(LIBC)));
    assert.equal(pre.content(LIBM), null, 'not read ahead');
    await writeLayer(entries, { dir: join(dir, 'h'), mediaType: GZ, mtime: 0, comment: 't', preread: pre });
    assert.equal(pre.content(LIBC), null);
  });

  it('blocks read under another header (mode) are not taken: the layer reads the file itself', async () => {
    const pre = prereadFiles([sys(LIBM, 0o755)], opts(new FileDigests(null)));
    const blob = await writeLayer([sys(LIBM, 0o644)], { dir: join(dir, 'c'), mediaType: GZ, mtime: 0, comment: 't', preread: pre });
    const plain = await writeLayer([sys(LIBM, 0o644)], { dir: join(dir, 'd'), mediaType: GZ, mtime: 0, comment: 't' });
    assert.equal(blob.digest, plain.digest);
  });

  it('a plan whose files add up to more than the budget is left to the layer writer (it streams them)', () => {
    const entries = [sys(LIBC), sys(LIBM)];
    const size = statSync(LIBC).size + statSync(LIBM).size;
    assert.equal(prereadFiles(entries, { ...opts(new FileDigests(null)), budget: size - 1 }).stats.files, 0);
    assert.equal(prereadFiles(entries, { ...opts(new FileDigests(null)), budget: size }).stats.files, 2);
  });

  it('nothing is read ahead of a file whose every block the block cache holds; a block it lacks is deflated ahead', async () => {
    const cache = new Cache(join(dir, 'cache'));
    const files = new FileDigests(null);
    await writeLayer([sys(LIBM)], { dir: join(dir, 'e'), mediaType: GZ, mtime: 0, comment: 't', cache: { cache, files } });
    assert.ok(cache.blocks.size > 0);
    const none = prereadFiles([sys(LIBM)], { ...opts(files), blocks: cache.blocks });
    assert.equal(none.stats.files, 0);
    // Another mode: another first block (its header), the same later ones.
    const some = prereadFiles([sys(LIBM, 0o700)], { ...opts(files), blocks: cache.blocks });
    assert.equal(some.stats.files, 1);
    assert.equal(some.stats.deflated, 1);
    const blob = await writeLayer([sys(LIBM, 0o700)], { dir: join(dir, 'f'), mediaType: GZ, mtime: 0, comment: 't', cache: { cache, files }, preread: some });
    const plain = await writeLayer([sys(LIBM, 0o700)], { dir: join(dir, 'g'), mediaType: GZ, mtime: 0, comment: 't' });
    assert.equal(blob.digest, plain.digest);
  });

  it('a file changed after it was read ahead goes into the layer as it is now', async () => {
    const p = join(dir, 'prog');
    writeFileSync(p, sample(3 * BLOCK_SIZE + 77, 1));
    // Settled: a stamp more than two seconds old (a younger one might not name the bytes).
    await new Promise((r) => setTimeout(r, 2100));
    const e: LayerEntry = { path: '/prog', type: 'file', mode: 0o755, uid: 0, gid: 0, source: p, size: statSync(p).size };
    const pre = prereadFiles([e], opts(new FileDigests(null)));
    assert.equal(pre.stats.files, 1);
    const now = sample(3 * BLOCK_SIZE + 77, 2);
    writeFileSync(p, now);
    const blob = await writeLayer([e], { dir: join(dir, 'h'), mediaType: GZ, mtime: 0, comment: 't', preread: pre });
    const tar = gunzipSync(readFileSync(blob.path));
    assert.ok(tar.subarray(512, 512 + now.length).equals(now));
    const plain = await writeLayer([e], { dir: join(dir, 'i'), mediaType: GZ, mtime: 0, comment: 't' });
    assert.equal(blob.digest, plain.digest);
  });

  it('a file written within the last seconds is not read ahead', () => {
    const p = join(dir, 'fresh');
    writeFileSync(p, sample(BLOCK_SIZE, 3));
    const pre = prereadFiles([{ path: '/fresh', type: 'file', mode: 0o644, uid: 0, gid: 0, source: p, size: BLOCK_SIZE }], opts(new FileDigests(null)));
    assert.equal(pre.stats.files, 0);
  });
});
