import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Cache } from '../../src/oci/cache.js';
import { sha256 } from '../../src/oci/digest.js';
import { FileDigests, FileIdentity, stampOf } from '../../src/oci/file-digests.js';
import { LARGE_FILE, LayerEntry, writeLayer } from '../../src/oci/layer.js';
import { rng } from '../helpers/rng.js';
import { removeDir, tempDir } from '../helpers/sh.js';

// A file written twice within one tick of the file system's clock keeps its stamp (mtime and ctime are taken from a
// coarse clock): the layer cache cannot tell the two contents apart by the stamp. The layer writer reads such a recent
// file after its digest was taken, so it checks the bytes it read against that digest before it caches anything.

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-racy-');
});
after(() => removeDir(dir));

const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

function bytes(size: number, seed: number): Buffer {
  const r = rng(seed);
  return Buffer.from(Array.from({ length: size }, () => Math.floor(r() * 256)));
}

/**
 * What a rewrite in the same clock tick hands the layer writer: the digest of the bytes the file held when it was
 * hashed, under the stamp the file still has, now that it holds other bytes of the same size.
 */
class HashedBeforeRewrite extends FileDigests {
  constructor(private readonly before: Map<string, Buffer>) {
    super(null);
  }
  override async digest(path: string): Promise<FileIdentity> {
    const earlier = this.before.get(path);
    if (!earlier) return super.digest(path);
    return { digest: sha256(earlier), stamp: stampOf(statSync(path, { bigint: true })), racy: true };
  }
}

const entry = (p: string, size: number): LayerEntry => ({ path: `/app/${p.split('/').pop()}`, type: 'file', mode: 0o644, uid: 0, gid: 0, source: p, size });

for (const [what, size] of [
  ['a small file', 5000],
  ['a large file (blocks of its own)', LARGE_FILE + 3 * 1024 * 1024 + 17],
] as const) {
  describe(`layer cache and ${what} changed within a clock tick of its hashing`, () => {
    it('is never cached under the digest of its earlier bytes; a file that kept its bytes still is', async () => {
      const cacheDir = join(dir, `cache-${size}`);
      const path = join(dir, `f-${size}`);
      const earlier = bytes(size, 1);
      const now = bytes(size, 2);
      writeFileSync(path, now);
      const opts = { dir: join(dir, 'out'), mediaType: GZ, mtime: 0, comment: 'app' };
      // The layer written from what the file holds now, while its identity names the earlier bytes.
      const first = await writeLayer([entry(path, size)], { ...opts, cache: { cache: new Cache(cacheDir), files: new HashedBeforeRewrite(new Map([[path, earlier]])) } });
      const plain = await writeLayer([entry(path, size)], { dir: join(dir, 'plain'), mediaType: GZ, mtime: 0, comment: 'app' });
      assert.equal(first.diffId, plain.diffId, 'the layer holds the bytes read');
      // The file back to its earlier bytes: its honest digest is the one the first layer was keyed under.
      writeFileSync(path, earlier);
      const again = await writeLayer([entry(path, size)], { ...opts, cache: { cache: new Cache(cacheDir), files: new FileDigests(null) } });
      const truth = await writeLayer([entry(path, size)], { dir: join(dir, 'truth'), mediaType: GZ, mtime: 0, comment: 'app' });
      assert.equal(again.diffId, truth.diffId, 'the layer holds the earlier bytes, not the cached ones');
      assert.ok(!again.cached, 'nothing was cached under the earlier bytes');
      // A recent file whose bytes are the ones hashed (racy too, honestly so) is cached as ever.
      const later = await writeLayer([entry(path, size)], { ...opts, cache: { cache: new Cache(cacheDir), files: new FileDigests(null) } });
      assert.ok(later.cached, 'a recent file read as hashed is cached');
      assert.equal(later.digest, again.digest);
    });
  });
}
