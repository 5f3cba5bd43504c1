import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../../src/oci/tar.js';
import { TarStore } from '../../src/oci/store.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-store-');
});
after(() => removeDir(dir));

async function text(s: NodeJS.ReadableStream): Promise<string> {
  let t = '';
  for await (const c of s) t += c;
  return t;
}

describe('oci/store.ts TarStore: an archive read in place', () => {
  it('finds members written by GNU tar (long names as ././@LongLink, ./ prefixes) and reads them by offset', async () => {
    const src = join(dir, 'src');
    const long = 'd'.repeat(120);
    mkdirSync(join(src, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(src, 'index.json'), '{"schemaVersion":2}');
    writeFileSync(join(src, 'blobs', 'sha256', long), 'x'.repeat(1000));
    const tar = join(dir, 'gnu.tar');
    execFileSync('tar', ['--format=gnu', '-C', src, '-cf', tar, '.']);
    const s = new TarStore(tar);
    assert.ok(s.has('index.json'));
    assert.ok(!s.has('blobs/sha256'), 'directories are not members');
    assert.equal(s.read('index.json').toString(), '{"schemaVersion":2}');
    assert.equal(s.size(`blobs/sha256/${long}`), 1000);
    assert.equal(await text(s.open(`blobs/sha256/${long}`)), 'x'.repeat(1000));
  });

  it('finds members behind PAX path headers (our own writer)', () => {
    const name = 'blobs/sha256/' + 'e'.repeat(130);
    const data = Buffer.from('pax member');
    const tar = join(dir, 'pax.tar');
    writeFileSync(tar, Buffer.concat([encodeHeader({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0 }), data, padding(data.length), END_OF_ARCHIVE]));
    assert.equal(new TarStore(tar).read(name).toString(), 'pax member');
  });

  it('refuses what is not a tar, and a truncated one, naming the file', () => {
    const junk = join(dir, 'junk.tar');
    writeFileSync(junk, Buffer.alloc(1024, 0x41));
    assert.throws(() => new TarStore(junk), new RegExp(`${junk}: not a tar archive \\(bad header checksum`));
    const cut = join(dir, 'cut.tar');
    const data = Buffer.alloc(4000, 1);
    writeFileSync(cut, Buffer.concat([encodeHeader({ path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0 }), data, padding(data.length), END_OF_ARCHIVE]));
    truncateSync(cut, 2048);
    assert.equal(statSync(cut).size, 2048);
    assert.throws(() => new TarStore(cut), /truncated tar archive/);
  });
});
