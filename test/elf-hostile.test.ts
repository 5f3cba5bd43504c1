import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ElfError } from '../src/elf/errors.js';
import { readElf, readElfFile } from '../src/elf/reader.js';
import { BufferSource } from '../src/elf/source.js';
import { Resolver } from '../src/elf/resolve.js';
import { ocislim } from './helpers/cli.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';
import { rng } from './helpers/rng.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-hostile-');
});
after(() => removeDir(dir));

function expectElfError(fn: () => unknown, what: string): ElfError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ElfError, `${what}: threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.doesNotMatch(e.message, /internal error/, `${what}: ${e.message}`);
    return e;
  }
  assert.fail(`${what}: no error`);
}

describe('hostile input only ever gives the typed ELF error', () => {
  it('empty file, random bytes, a directory, truncated files', () => {
    writeFileSync(join(dir, 'empty'), '');
    assert.match(expectElfError(() => readElfFile(join(dir, 'empty')), 'empty').message, /empty file/);
    const r = rng(7);
    const random = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(r() * 256)));
    writeFileSync(join(dir, 'random'), random);
    assert.match(expectElfError(() => readElfFile(join(dir, 'random')), 'random').message, /not an ELF file/);
    mkdirSync(join(dir, 'adir'));
    assert.match(expectElfError(() => readElfFile(join(dir, 'adir')), 'dir').message, /adir: is a directory/);
    const ls = readFileSync('/usr/bin/ls');
    for (const n of [5, 16, 20, 63, 64, 100, 1000, 4096]) {
      writeFileSync(join(dir, `trunc${n}`), ls.subarray(0, n));
      const e = expectElfError(() => new Resolver('/').resolve(join(dir, `trunc${n}`)), `truncated to ${n}`);
      assert.match(e.message, new RegExp(`trunc${n}: `));
    }
  });

  it('a FIFO and a device are refused without blocking', () => {
    sh(`mkfifo ${join(dir, 'fifo')}`);
    expectElfError(() => readElfFile(join(dir, 'fifo')), 'fifo');
    for (const f of [join(dir, 'fifo'), '/dev/zero']) {
      const res = ocislim(['ldd', f], { timeout: 20000 });
      assert.equal(res.status, 1, res.stderr);
      assert.equal(res.stderr, `ocislim ldd: ${f}: is not a regular file\n`);
    }
  });

  it('thousands of mutated real ELF files: no other exception, no hang, bounded memory', (t) => {
    const seeds = ['/usr/bin/ls', '/usr/bin/redis-server', '/lib/x86_64-linux-gnu/libc.so.6', '/usr/bin/busybox'].map((f) => readFileSync(f));
    const n = Number(process.env.OCISLIM_FUZZ_ITERATIONS ?? 4000);
    const r = rng(12345);
    const heapBefore = process.memoryUsage().rss;
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < n; i++) {
      const seed = seeds[i % seeds.length];
      // Mutate the parts the parser reads: the headers, program headers and the dynamic segment region.
      const len = Math.min(seed.length, 1 << 16);
      const buf = Buffer.from(seed.subarray(0, r() < 0.1 ? Math.floor(r() * len) : seed.length));
      const flips = 1 + Math.floor(r() * 16);
      for (let k = 0; k < flips && buf.length; k++) {
        const pos = r() < 0.5 ? Math.floor(r() * Math.min(buf.length, 1024)) : Math.floor(r() * Math.min(buf.length, len));
        const mode = r();
        if (mode < 0.4) buf[pos] = Math.floor(r() * 256);
        else if (mode < 0.7) buf[pos] ^= 1 << Math.floor(r() * 8);
        else buf.writeUInt32LE(r() < 0.5 ? 0xffffffff : Math.floor(r() * 0x10000), Math.max(0, Math.min(pos, buf.length - 4)));
      }
      try {
        readElf(new BufferSource(`mutant-${i}`, buf), { symbols: true });
        parsed++;
      } catch (e) {
        if (!(e instanceof ElfError) || /internal error/.test(e.message)) {
          throw new Error(`mutation ${i} (seed 12345): ${(e as Error)?.stack ?? e}`);
        }
        rejected++;
      }
    }
    const grew = process.memoryUsage().rss - heapBefore;
    t.diagnostic(`fuzz: ${n} mutants, ${parsed} parsed, ${rejected} rejected with ElfError, rss grew ${(grew / 1e6).toFixed(1)} MB`);
    assert.equal(parsed + rejected, n);
    assert.ok(grew < 512e6, `memory grew by ${grew} bytes`);
  });
});
