import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveClosure } from '../src/elf/resolve.js';
import { lddView, sorted } from './helpers/closure.js';
import { realLdd } from './helpers/ldd.js';
import { rng } from './helpers/rng.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

/**
 * Differential test against the real loader: random library trees (RPATH, RUNPATH empty or past 4096 bytes,
 * $ORIGIN, $LIB, DF_1_NODEFLIB, names with a slash, symlinked files and programs, dependency cycles, 32-bit decoys
 * under the same name), each resolved by ocislim and by ldd; the files and the names not found must agree. Seeded:
 * OCISLIM_DIFF_SEED and OCISLIM_DIFF_CASES replay or widen a run.
 */
const SEED = Number(process.env.OCISLIM_DIFF_SEED ?? 20261129);
const CASES = Number(process.env.OCISLIM_DIFF_CASES ?? 60);
const LIBS = 5;
/** Where libraries may live, relative to the case directory; x/lib/x86_64-linux-gnu is what $ORIGIN/../x/$LIB reaches. */
const DIRS = ['lib', 'd1', 'd2', 'nested/d3', 'x/lib/x86_64-linux-gnu'];

let dir: string;
before(() => {
  dir = tempDir('ocislim-diff-');
  writeFileSync(join(dir, 'l.c'), 'int f(void){return 1;}\n');
  writeFileSync(join(dir, 'a.c'), 'int main(void){return 0;}\n');
  // One compile of each kind; every case varies copies of them with patchelf (fast) instead of compiling.
  sh(
    `gcc -shared -fPIC -o base.so l.c && gcc -m32 -shared -nostdlib -fPIC -o decoy32.so l.c && gcc -o app a.c`,
    dir,
  );
});
after(() => removeDir(dir));

interface CaseScript {
  script: string;
  app: string;
  story: string[];
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The shell script that builds case `i`, and a description of it for the failure message. */
function makeCase(i: number, r: () => number): CaseScript {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const c = join(dir, `case${i}`);
  const lines: string[] = [`mkdir -p ${c}/bin ${c}/real ${c}/stage ${DIRS.map((d) => `${c}/${d}`).join(' ')}`];
  const story: string[] = [];
  const entry = (from: 'bin' | 'lib'): string => {
    const d = pick(DIRS);
    void from;
    switch (Math.floor(r() * 5)) {
      case 0:
        return `${c}/${d}`;
      case 1:
        return '$ORIGIN/../x/$LIB';
      case 2:
        return `/nonexistent/${d}`;
      default:
        return `$ORIGIN/../${d}`;
    }
  };
  const pathList = (from: 'bin' | 'lib'): string => {
    const n = 1 + Math.floor(r() * 3);
    const els = Array.from({ length: n }, () => entry(from));
    // Past 4096 bytes: Bazel, Nix and conda write such lists.
    if (r() < 0.1) els.unshift(...Array.from({ length: 45 }, (_, k) => `/nonexistent/${'p'.repeat(100)}${k}`));
    return els.join(':');
  };
  /** patchelf steps for one object: search path, needed names, NODEFLIB. */
  const dress = (file: string, self: number | null) => {
    const kind = r();
    if (kind < 0.3) {
      const l = pathList(self === null ? 'bin' : 'lib');
      lines.push(`patchelf --force-rpath --set-rpath ${q(l)} ${file}`);
      story.push(`${file}: RPATH ${l.length > 200 ? l.slice(0, 60) + '...(' + l.length + ' bytes)' : l}`);
    } else if (kind < 0.6) {
      const l = pathList(self === null ? 'bin' : 'lib');
      lines.push(`patchelf --set-rpath ${q(l)} ${file}`);
      story.push(`${file}: RUNPATH ${l.length > 200 ? l.slice(0, 60) + '...(' + l.length + ' bytes)' : l}`);
    } else if (kind < 0.7) {
      lines.push(`patchelf --set-rpath '' ${file}`);
      story.push(`${file}: RUNPATH empty`);
    }
    const needs = new Set<number>();
    const count = self === null ? 1 + Math.floor(r() * 3) : Math.floor(r() * 3);
    for (let k = 0; k < count; k++) needs.add(Math.floor(r() * LIBS));
    for (const n of needs) {
      // Cycles are allowed (a library may need one that needs it); needing itself is not interesting.
      if (n === self) continue;
      let name = `libt${n}.so`;
      if (r() < 0.1) name = r() < 0.5 ? `$ORIGIN/../${pick(DIRS)}/libt${n}.so` : `${c}/${pick(DIRS)}/libt${n}.so`;
      lines.push(`patchelf --add-needed ${q(name)} ${file}`);
      story.push(`${file}: NEEDED ${name}`);
    }
    if (r() < 0.08) {
      lines.push(`patchelf --no-default-lib ${file}`);
      story.push(`${file}: NODEFLIB`);
    }
  };
  for (let n = 0; n < LIBS; n++) {
    const staged = `${c}/stage/libt${n}.so`;
    lines.push(`cp ${dir}/base.so ${staged} && patchelf --set-soname libt${n}.so ${staged}`);
    dress(staged, n);
    const homes = DIRS.filter(() => r() < 0.35);
    for (const d of homes) {
      if (r() < 0.2) {
        // A symlinked file: $ORIGIN of a library is the directory it was found in, not its target's.
        const other = pick(DIRS);
        lines.push(`cp ${staged} ${c}/${other}/libt${n}.so.real && ln -sf ${'../'.repeat(d.split('/').length)}${other}/libt${n}.so.real ${c}/${d}/libt${n}.so`);
        story.push(`${d}/libt${n}.so -> ${other}/libt${n}.so.real`);
      } else {
        lines.push(`cp ${staged} ${c}/${d}/libt${n}.so`);
        story.push(`${d}/libt${n}.so`);
      }
    }
    if (r() < 0.2) {
      const d = pick(DIRS);
      lines.push(`[ -e ${c}/${d}/libt${n}.so ] || cp ${dir}/decoy32.so ${c}/${d}/libt${n}.so`);
      story.push(`${d}/libt${n}.so: 32-bit decoy (unless taken)`);
    }
  }
  lines.push(`cp ${dir}/app ${c}/real/app`);
  dress(`${c}/real/app`, null);
  let app = `${c}/real/app`;
  if (r() < 0.3) {
    // The program's $ORIGIN follows its symlink.
    lines.push(`ln -s ../real/app ${c}/bin/app`);
    app = `${c}/bin/app`;
    story.push('bin/app -> ../real/app');
  }
  return { script: lines.join('\n'), app, story };
}

/** Runs the jobs at most `n` at a time; results in job order. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let i = next++; i < jobs.length; i = next++) out[i] = await jobs[i]();
    }),
  );
  return out;
}

describe('differential: ocislim against ldd over random library trees', () => {
  it(`${CASES} seeded trees (seed ${SEED}) resolve exactly as the real loader resolves them`, async (t) => {
    const r = rng(SEED);
    const cases = Array.from({ length: CASES }, (_, i) => makeCase(i, r));
    // One script for every tree (written to a file: it is far past the argument size limit).
    writeFileSync(join(dir, 'trees.sh'), cases.map((c) => c.script).join('\n') + '\n');
    sh(`bash -e ${join(dir, 'trees.sh')}`);
    let compared = 0;
    const skipped: string[] = [];
    // ldd runs four at a time; the comparison is in case order.
    const truths = await pool(cases.map((c) => () => realLdd(c.app)), 4);
    // A name with a slash is shown expanded by ldd ($ORIGIN/../x -> /abs/bin/../x); compare its last component.
    const nameKey = (n: string) => (n.includes('/') ? `.../${n.slice(n.lastIndexOf('/') + 1)}` : n);
    for (let i = 0; i < cases.length; i++) {
      const { app, story } = cases[i];
      const truth = truths[i];
      if (truth.status !== 'ok') {
        // The loader refused the tree outright (a 32-bit file reached by a name with a slash): nothing to compare.
        skipped.push(`case ${i}: ${truth.raw.trim().split('\n')[0]}`);
        continue;
      }
      const ours = resolveClosure(app, '/', { hwcaps: 'host' });
      const why = `case ${i} of seed ${SEED}:\n  ${story.join('\n  ')}\nldd:\n${truth.raw}`;
      assert.deepEqual(sorted(lddView(ours)), sorted(truth.files), `files differ in ${why}`);
      assert.deepEqual(sorted(new Set(ours.notFound.map((n) => nameKey(n.name)))), sorted(new Set([...truth.notFound].map(nameKey))), `not found differs in ${why}`);
      compared++;
    }
    t.diagnostic(`${compared} trees compared with ldd, ${skipped.length} refused by the loader itself`);
    assert.ok(compared >= CASES * 0.8, `only ${compared} of ${CASES} compared: ${skipped.join('; ')}`);
  });
});
