import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { memoElfReader } from '../../src/builder/elf-memo.js';
import { readElfFile } from '../../src/elf/reader.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
const LIBS = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libz.so.1', '/usr/bin/redis-check-rdb'];

before(async () => {
  dir = tempDir('ocislim-unit-elfmemo-');
  copyFileSync(LIBS[0], join(dir, 'lib.so'));
  // Records are kept only of files older than two seconds (ctime cannot be set back: wait it out once).
  await new Promise((r) => setTimeout(r, 2100));
});
after(() => removeDir(dir));

describe('the memo of parsed ELF files (builder/elf-memo.ts)', () => {
  it('answers what readElfFile gives, under the name asked for, from a record once one was kept', () => {
    const cache = join(dir, 'c1');
    for (const opts of [{ symbols: true }, { symbols: false, versions: false }]) {
      const read = memoElfReader(cache);
      for (const f of LIBS) assert.deepEqual(read(f, opts, '/first', true), readElfFile(f, opts, '/first'), f);
      // A fresh reader (as the next process): from the records, under another name.
      const again = memoElfReader(cache);
      for (const f of LIBS) assert.deepEqual(again(f, opts, '/usr/lib/other', true), readElfFile(f, opts, '/usr/lib/other'), f);
    }
    assert.equal(readdirSync(join(cache, 'dpkg')).filter((n) => n.startsWith('elf')).length, LIBS.length * 2, 'one record per file and options');
  });

  it('parses a file again once it changed (another file renamed over it), and keeps no record of a fresh file', () => {
    const cache = join(dir, 'c2');
    const lib = join(dir, 'lib.so');
    assert.equal(memoElfReader(cache)(lib, { symbols: true }, lib, true).soname, 'libc.so.6');
    assert.equal(memoElfReader(cache)(lib, { symbols: true }, lib, true).soname, 'libc.so.6');
    copyFileSync(LIBS[1], lib + '.new');
    renameSync(lib + '.new', lib);
    const now = memoElfReader(cache)(lib, { symbols: true }, lib, true);
    assert.equal(now.soname, 'libz.so.1');
    assert.deepEqual(now, readElfFile(lib, { symbols: true }, lib));
    const records = readdirSync(join(cache, 'dpkg'));
    assert.equal(records.length, 1);
    assert.equal(JSON.parse(readFileSync(join(cache, 'dpkg', records[0]), 'utf8')).elf.soname, 'libc.so.6', 'the fresh file was not kept');
    assert.throws(() => memoElfReader(cache)(join(dir, 'missing.so'), {}, 'x', true));
    // A file given, not found by the loader's search: parsed, never kept.
    const given = join(dir, 'c3');
    assert.deepEqual(memoElfReader(given)(LIBS[2], { symbols: true }, '/p', false), readElfFile(LIBS[2], { symbols: true }, '/p'));
    assert.equal(existsSync(join(given, 'dpkg')), false);
  });
});
