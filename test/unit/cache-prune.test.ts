import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Cache } from '../../src/oci/cache.js';
import { sha256 } from '../../src/oci/digest.js';
import { stampOf } from '../../src/oci/file-digests.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-prune-');
});
after(() => removeDir(dir));

describe('cache prune', () => {
  it('remembered builds count against the size cap, least recently used first, with the blobs', () => {
    const cache = new Cache(join(dir, 'c'));
    mkdirSync(join(cache.dir, 'blobs', 'sha256'), { recursive: true });
    mkdirSync(join(cache.dir, 'builds'), { recursive: true });
    const blob = Buffer.alloc(1000, 1);
    const d = sha256(blob);
    writeFileSync(join(cache.dir, 'blobs', 'sha256', d.slice(7)), blob);
    const record = (name: string, daysAgo: number) => {
      const p = join(cache.dir, 'builds', name);
      writeFileSync(p, JSON.stringify({ layers: [{ digest: d, size: blob.length }], obs: 'x'.repeat(50_000) }));
      const t = new Date(Date.now() - daysAgo * 86400_000);
      utimesSync(p, t, t);
      return p;
    };
    const old = record('old.json', 30);
    const recent = record('recent.json', 1);
    const r = cache.prune(60_000, 0);
    assert.ok(!existsSync(old), 'the least recently used record goes first');
    assert.ok(existsSync(recent), 'the recent record and the blob fit under the cap');
    assert.ok(existsSync(join(cache.dir, 'blobs', 'sha256', d.slice(7))));
    assert.equal(r.removed, 1);
    cache.prune(0, 0);
    assert.ok(!existsSync(recent), 'a cap of 0 empties the cache');
  });

  it('indexes of status files go when their file changed or is gone, and all of them when the cache is emptied', () => {
    const cache = new Cache(join(dir, 'idx'));
    const status = join(dir, 'status');
    writeFileSync(status, 'Package: a\n');
    const index = (name: string, path: string) => {
      mkdirSync(join(cache.dir, 'dpkg'), { recursive: true });
      const p = join(cache.dir, 'dpkg', name);
      writeFileSync(p, JSON.stringify({ v: 2, path, stamp: stampOf(statSync(path, { bigint: true })), rows: [] }));
      return p;
    };
    const kept = index('kept.json', status);
    const gone = index('gone.json', status);
    writeFileSync(gone, readFileSync(gone, 'utf8').replace(status, join(dir, 'no-such-status')));
    const other = join(dir, 'status-2');
    writeFileSync(other, 'Package: b\n');
    const changed = index('changed.json', other);
    writeFileSync(other, 'Package: c\n');
    cache.prune(1 << 30, 0);
    assert.ok(existsSync(kept), 'its status file is unchanged');
    assert.ok(!existsSync(gone), 'its status file is gone');
    assert.ok(!existsSync(changed), 'its status file changed');
    cache.prune(0, 0);
    assert.ok(!existsSync(kept));
  });
});
