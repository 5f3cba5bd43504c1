import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { it } from 'node:test';
import { Resolver } from '../src/elf/resolve.js';
import { ElfError } from '../src/elf/errors.js';
import { realLdd } from './helpers/ldd.js';
import { lddView, sorted } from './helpers/closure.js';

function* walk(d: string): Generator<string> {
  let entries;
  try {
    entries = readdirSync(d, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = `${d}/${e.name}`;
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

function isElf(f: string): boolean {
  const fd = openSync(f, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === '\x7fELF';
  } finally {
    closeSync(fd);
  }
}

it('ocislim resolves the same files as ldd for every dynamic ELF under /usr/bin, /usr/sbin and /usr/lib/x86_64-linux-gnu', async (t) => {
  const files = ['/usr/bin', '/usr/sbin', '/usr/lib/x86_64-linux-gnu'].flatMap((d) => [...walk(d)]).filter(isElf);
  const resolver = new Resolver('/', { hwcaps: 'host' });
  const mismatches: string[] = [];
  let compared = 0;
  let notDynamic = 0;
  let lddFailed = 0;
  const queue = files.slice();
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      let c;
      try {
        c = resolver.resolve(f);
      } catch (e) {
        if (!(e instanceof ElfError)) throw e;
        notDynamic++;
        continue;
      }
      if (!c.elf.interp && c.kind !== 'shared-object') {
        notDynamic++;
        continue;
      }
      const truth = await realLdd(f);
      if (truth.status === 'error') {
        lddFailed++;
        continue;
      }
      compared++;
      if (truth.status === 'static') {
        if (c.libraries.length || c.notFound.length) mismatches.push(`${f}: ldd says static, ocislim found ${c.libraries.length} libraries`);
        continue;
      }
      const ours = lddView(c);
      const onlyOurs = sorted([...ours].filter((x) => !truth.files.has(x)));
      const onlyLdd = sorted([...truth.files].filter((x) => !ours.has(x)));
      const nfOurs = sorted(c.notFound.map((n) => n.name)).join(',');
      const nfLdd = sorted(truth.notFound).join(',');
      if (onlyOurs.length || onlyLdd.length || nfOurs !== nfLdd) {
        mismatches.push(`${f}: only ocislim [${onlyOurs}] only ldd [${onlyLdd}] not found ocislim [${nfOurs}] ldd [${nfLdd}]`);
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  t.diagnostic(`corpus: ${files.length} ELF files, ${compared} compared with ldd, ${notDynamic} not dynamic, ${lddFailed} ldd could not load, ${mismatches.length} mismatches`);
  for (const m of mismatches) t.diagnostic(`mismatch: ${m}`);
  assert.ok(compared > 500, `only ${compared} files compared: the corpus is too small to mean anything`);
  assert.deepEqual(mismatches, []);
});
