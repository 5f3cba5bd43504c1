import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { readElf } from '../../src/elf/reader.js';
import { BufferSource } from '../../src/elf/source.js';

/** The bytes of `file` in a buffer that starts `shift` bytes past a 4-byte boundary. */
function shifted(bytes: Buffer, shift: number): Uint8Array {
  const b = new Uint8Array(bytes.length + shift);
  b.set(bytes, shift);
  return b.subarray(shift);
}

it("the reader's word-array path (aligned bytes) and its DataView path (unaligned) parse every file alike", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocislim-reader-words-'));
  try {
    const files = ['/bin/true', '/usr/bin/ls', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'];
    // A 32-bit little-endian shared object, when gcc can make one.
    writeFileSync(join(dir, 'l.c'), 'int f(void) { return 1; }\n');
    try {
      execFileSync('gcc', ['-m32', '-shared', '-nostdlib', '-fPIC', '-Wl,-soname,libl.so.1', '-o', join(dir, 'l32.so'), join(dir, 'l.c')], { stdio: 'ignore' });
      files.push(join(dir, 'l32.so'));
    } catch {
      /* no 32-bit toolchain */
    }
    for (const f of files) {
      const bytes = readFileSync(f);
      const aligned = new BufferSource(f, shifted(bytes, 0));
      const unaligned = new BufferSource(f, shifted(bytes, 1));
      assert.ok(aligned.words !== null && unaligned.words === null);
      const a = readElf(aligned);
      assert.ok(a.needed.length > 0 || a.soname !== null, `${f} has a dynamic section`);
      assert.deepEqual(a, readElf(unaligned), f);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
