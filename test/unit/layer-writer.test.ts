import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { LayerEntry, writeLayer } from '../../src/oci/layer.js';
import { BLOCK_SIZE } from '../../src/oci/pgzip.js';
import { sha256 } from '../../src/oci/digest.js';
import { rng } from '../helpers/rng.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-layer-');
});
after(() => removeDir(dir));

const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

function file(name: string, bytes: Buffer): LayerEntry {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return { path: `/${name}`, type: 'file', mode: 0o644, uid: 0, gid: 0, source: p, size: bytes.length };
}

describe('layer writer', () => {
  it('files, headers and generated content cross block boundaries intact; both digests are of the bytes written', async () => {
    const r = rng(7);
    const big = Buffer.alloc(Math.floor(2.5 * BLOCK_SIZE) + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i >> 12) % 3 ? Math.floor(r() * 256) : 65 + (i % 26);
    const entries: LayerEntry[] = [
      file('a-small', Buffer.from('hello\n')),
      file('b-big', big),
      { path: '/c-generated', type: 'file', mode: 0o600, uid: 0, gid: 0, content: Buffer.alloc(BLOCK_SIZE - 300, 7) },
      file('d-empty', Buffer.alloc(0)),
      { path: '/e-link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: 'b-big' },
      file('f-after', Buffer.from('the end')),
    ];
    const out = join(dir, 'out');
    const blob = await writeLayer(entries, { dir: out, mediaType: GZ, mtime: 0, comment: 'test' });
    const gz = readFileSync(blob.path);
    assert.equal(blob.digest, sha256(gz));
    assert.equal(blob.size, gz.length);
    const tar = gunzipSync(gz);
    assert.equal(blob.diffId, sha256(tar));
    assert.equal(tar.length % 512, 0);
    const x = join(dir, 'x');
    assert.equal(spawnSync('mkdir', ['-p', x]).status, 0);
    const t = spawnSync('tar', ['-x', '-C', x], { input: tar });
    assert.equal(t.status, 0, String(t.stderr));
    assert.ok(readFileSync(join(x, 'b-big')).equals(big));
    assert.equal(readFileSync(join(x, 'a-small'), 'utf8'), 'hello\n');
    assert.ok(readFileSync(join(x, 'c-generated')).equals(Buffer.alloc(BLOCK_SIZE - 300, 7)));
    assert.equal(readFileSync(join(x, 'd-empty')).length, 0);
    assert.equal(readFileSync(join(x, 'f-after'), 'utf8'), 'the end');
    // The same entries again: the same bytes.
    const again = await writeLayer(entries, { dir: join(dir, 'out2'), mediaType: GZ, mtime: 0, comment: 'test' });
    assert.equal(again.digest, blob.digest);
  });

  it('a file that grew or shrank since it was planned is an error naming it, and leaves no temporary file', async () => {
    const grown = file('grown', Buffer.alloc(5000, 1));
    grown.size = 4000;
    const out = join(dir, 'bad');
    await assert.rejects(writeLayer([grown], { dir: out, mediaType: GZ, mtime: 0, comment: 'test' }), (e: Error) => e.message.includes(grown.source!) && /grew while being read/.test(e.message));
    const shrunk = file('shrunk', Buffer.alloc(BLOCK_SIZE + 10, 1));
    shrunk.size = BLOCK_SIZE + 5000;
    await assert.rejects(writeLayer([shrunk], { dir: out, mediaType: GZ, mtime: 0, comment: 'test' }), (e: Error) => e.message.includes(shrunk.source!) && /changed size while being read/.test(e.message));
    assert.deepEqual(readdirSync(out), []);
  });
});
