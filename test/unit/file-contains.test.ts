import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileContains } from '../../src/builder/rules/symbols.js';

describe('fileContains: any of several byte strings, in 1 MiB slices', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocislim-contains-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const MiB = 1 << 20;
  /** A 3 MiB file of filler with `text` written at `at`. */
  const file = (name: string, text: string, at: number) => {
    const b = Buffer.alloc(3 * MiB, 'x');
    // Near misses of the common prefix everywhere: the prefix search must check each one and go on.
    for (let i = 0; i < b.length - 16; i += 4099) b.write('/etc/ss', i);
    b.write(text, at);
    const p = join(dir, name);
    writeFileSync(p, b);
    return p;
  };
  const CA = ['/etc/ssl/certs', '/etc/pki/tls/certs', '/etc/ssl/cert.pem'].map((s) => Buffer.from(s));
  it('needles with a common prefix: found anywhere, across a slice boundary too', () => {
    for (const at of [0, 12345, MiB - 5, 2 * MiB - 1, 3 * MiB - 14]) {
      assert.equal(fileContains(file(`a${at}`, '/etc/ssl/certs', at), CA), true, `at ${at}`);
      assert.equal(fileContains(file(`b${at}`, '/etc/pki/tls/certs', at - (at ? 4 : 0)), CA), true, `second needle at ${at}`);
    }
    assert.equal(fileContains(file('none', '/etc/ssl/cert', 777), CA), false, 'a prefix of a needle is not the needle');
    assert.equal(fileContains(file('other', '/etc/pki/nss', MiB - 3), CA), false);
  });
  it("the bytes the build holds are searched instead of the file's, across their seams too", () => {
    const empty = file('held', '', 0);
    const text = Buffer.from('..../etc/ssl/certs....');
    // Every cut of the text into three pieces, some shorter than the needle (a needle spans several of them).
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        const held = [text.subarray(0, i), text.subarray(i, j), text.subarray(j)];
        assert.equal(fileContains(empty, CA, held), true, `cut at ${i}, ${j}`);
      }
    }
    const near = Buffer.from('..../etc/ssl/cert..../etc/pki/tls/cert');
    for (let i = 0; i <= near.length; i++) assert.equal(fileContains(empty, CA, [near.subarray(0, i), near.subarray(i)]), false, `near miss cut at ${i}`);
    assert.equal(fileContains(file('on-disk', '/etc/ssl/certs', 99), CA, [Buffer.from('nothing')]), false, 'the held bytes, not the file, are searched');
    assert.equal(fileContains(empty, CA, null), false, 'nothing held: the file is read');
  });
  it('needles without a common prefix', () => {
    const n = ['alpha-needle', 'beta-needle'].map((s) => Buffer.from(s));
    assert.equal(fileContains(file('c', 'beta-needle', MiB - 6), n), true);
    assert.equal(fileContains(file('d', 'gamma-needle', MiB - 6), n), false);
    assert.equal(fileContains(file('e', 'alpha-needle', 0), []), false, 'no needles');
  });
});
