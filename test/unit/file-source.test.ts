import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { ElfError } from '../../src/elf/errors.js';
import { FileSource } from '../../src/elf/source.js';

it('FileSource gives the bytes of any range of a file, whatever the order of reads (pages read ahead or one by one)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocislim-file-source-'));
  try {
    // A deterministic sequence of ranges (a small LCG), so that a failure can be replayed.
    let seed = 12345;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (const size of [1, 100, 4095, 4096, 5000, 12288, 16383, 16384, 16385, 20000, 70000]) {
      const data = randomBytes(size);
      const file = join(dir, `f${size}`);
      writeFileSync(file, data);
      // Each file opened a few times, so that sources reuse one another's buffers.
      for (let round = 0; round < 3; round++) {
        const src = FileSource.open(file);
        assert.equal(src.size, size);
        for (let k = 0; k < 60; k++) {
          const offset = next(size);
          const length = Math.min(size - offset, 1 + next(k % 3 === 0 ? 9000 : 300));
          const p = src.at(offset, length);
          assert.ok(src.bytes.subarray(p, p + length).equals(data.subarray(offset, offset + length)), `${size}: ${offset}+${length}`);
        }
        assert.throws(() => src.at(size - 1, 2), (e: unknown) => e instanceof ElfError && /truncated: needs bytes/.test(e.reason));
        src.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
