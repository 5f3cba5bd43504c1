import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs, { utimesSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileDigests } from '../../src/oci/file-digests.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-digests-');
});
after(() => removeDir(dir));

/** Counts the opens of `path` (through node:fs, named imports included) while `fn` runs. */
async function opensOf(path: string, fn: () => Promise<void> | void): Promise<number> {
  const real = fs.openSync;
  let n = 0;
  fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    if (String(p) === path) n++;
    return (real as (...a: unknown[]) => number)(p, ...rest);
  }) as typeof fs.openSync;
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    fs.openSync = real;
    syncBuiltinESMExports();
  }
  return n;
}

const hex = (alg: string, b: Buffer) => createHash(alg).update(b).digest('hex');

/** A file old enough not to be "racily clean" (written within the last two seconds). */
function oldFile(name: string, bytes: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  const t = new Date(Date.now() - 60_000);
  utimesSync(p, t, t);
  return p;
}

describe('FileDigests: each file read once per build', () => {
  it('the inventory hashes (md5, sha1) and the layer key (sha256) come from one read', async () => {
    const bytes = Buffer.from('x'.repeat(3 << 20) + 'end');
    const p = oldFile('a.bin', bytes);
    // ctime cannot be set back: wait until the file is no longer racy.
    await new Promise((r) => setTimeout(r, 2100));
    const files = new FileDigests(null);
    let h: ReturnType<FileDigests['hashes']> | undefined;
    let d: Awaited<ReturnType<FileDigests['digest']>> | undefined;
    const n = await opensOf(p, async () => {
      h = files.hashes(p, { md5: true, sha1: true });
      d = await files.digest(p);
      files.hashes(p, { md5: true });
    });
    assert.equal(n, 1);
    assert.equal(h!.md5, hex('md5', bytes));
    assert.equal(h!.sha1, hex('sha1', bytes));
    assert.equal(h!.digest, 'sha256:' + hex('sha256', bytes));
    assert.equal(h!.size, bytes.length);
    assert.equal(d!.digest, h!.digest);
  });

  it('md5s are kept in the memo file: a later process reads nothing for an unchanged file', async () => {
    const bytes = Buffer.from('some library bytes');
    const p = oldFile('b.bin', bytes);
    await new Promise((r) => setTimeout(r, 2100));
    const memo = join(dir, 'files.json');
    const first = new FileDigests(memo);
    first.hashes(p, { md5: true });
    first.save();
    const later = new FileDigests(memo);
    let h: ReturnType<FileDigests['hashes']> | undefined;
    const n = await opensOf(p, () => {
      h = later.hashes(p, { md5: true });
    });
    assert.equal(n, 0);
    assert.equal(h!.md5, hex('md5', bytes));
    // Changed content (a new ctime): read again.
    writeFileSync(p, 'other bytes');
    const m = await opensOf(p, () => {
      h = later.hashes(p, { md5: true });
    });
    assert.equal(m, 1);
    assert.equal(h!.md5, hex('md5', Buffer.from('other bytes')));
  });

  it('a racily clean file (written just now) is read again when asked again', async () => {
    const p = join(dir, 'racy.bin');
    writeFileSync(p, 'fresh');
    const files = new FileDigests(null);
    const n = await opensOf(p, async () => {
      files.hashes(p, { md5: true });
      await files.digest(p);
    });
    assert.equal(n, 2);
  });
});
