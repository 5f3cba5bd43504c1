import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { Resolver, resolveClosure } from '../src/elf/resolve.js';
import { buildElfFixtures, stripSectionHeaders } from './helpers/elf-fixtures.js';
import { realLdd, parseLddOutput } from './helpers/ldd.js';
import { closureFiles, lddView, sorted } from './helpers/closure.js';
import { removeDir, run, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = buildElfFixtures(tempDir('ocislim-elf-'));
});
after(() => removeDir(dir));

/** Our closure (with the host CPU's hwcaps, as ldd sees them) must equal what the real ldd prints. */
async function sameAsLdd(rel: string) {
  const file = join(dir, rel);
  const ours = resolveClosure(file, '/', { hwcaps: 'host' });
  const truth = await realLdd(file);
  assert.equal(truth.status, 'ok', `ldd failed on ${rel}: ${truth.raw}`);
  assert.deepEqual(sorted(lddView(ours)), sorted(truth.files), `files of ${rel}`);
  assert.deepEqual(sorted(ours.notFound.map((n) => n.name)), sorted(truth.notFound), `not found in ${rel}`);
  return ours;
}

describe('loader rules, each checked against ldd and the program run', () => {
  it('RUNPATH is not inherited: libfoo cannot find libbar', async () => {
    const c = await sameAsLdd('runpath_noinherit/bin/app');
    assert.deepEqual(c.notFound.map((n) => n.name), ['libbar.so.1']);
    assert.equal(run(join(dir, 'runpath_noinherit/bin/app'), []).status, 127);
  });

  it('an empty RUNPATH is present: the library gets no RPATH chain (patchelf --set-rpath \'\')', async () => {
    const c = await sameAsLdd('runpath_empty/bin/app');
    assert.equal(c.libraries.find((l) => l.name === 'libfoo.so.1')?.elf.runpath, '');
    assert.deepEqual(c.notFound.map((n) => n.name), ['libbar.so.1']);
    assert.equal(run(join(dir, 'runpath_empty/bin/app'), []).status, 127);
  });

  it('an RPATH longer than 4096 bytes is read whole, as glibc does', async () => {
    const c = await sameAsLdd('long_rpath/bin/app');
    assert.ok(c.elf.rpath!.length > 4096, `${c.elf.rpath!.length} bytes`);
    assert.ok(c.libraries.some((l) => l.name === 'libbar.so.1'));
    assert.equal(run(join(dir, 'long_rpath/bin/app'), []).stdout, '42\n');
  });

  it('RPATH is inherited by the libraries the program loads', async () => {
    const c = await sameAsLdd('rpath_inherit/bin/app');
    assert.ok(c.libraries.some((l) => l.name === 'libbar.so.1' && l.path.endsWith('/rpath_inherit/bin/../lib/libbar.so.1')));
    assert.equal(run(join(dir, 'rpath_inherit/bin/app'), []).stdout, '42\n');
  });

  it('$ORIGIN: the program follows its symlink, a library keeps the path it was found under', async () => {
    const c = await sameAsLdd('origin_symlink/bin/app-link');
    const bar = c.libraries.find((l) => l.name === 'libbar.so.1')!;
    assert.ok(bar.path.endsWith('/origin_symlink/real/../lib/../deps/libbar.so.1'), bar.path);
    assert.equal(bar.imagePath, join(dir, 'origin_symlink/deps/libbar.so.1'));
    assert.equal(run(join(dir, 'origin_symlink/bin/app-link'), []).stdout, '42\n');
    // The same program reached through a symlinked directory.
    await sameAsLdd('origin_symlink/linkdir/app');
    assert.equal(run(join(dir, 'origin_symlink/linkdir/app'), []).stdout, '42\n');
  });

  it('$LIB expands to the loader\'s library directory name', async () => {
    const c = await sameAsLdd('dst_lib/bin/app');
    assert.ok(c.libraries.some((l) => l.path.endsWith('/dst_lib/bin/../lib/x86_64-linux-gnu/libbar.so.1')));
    assert.equal(run(join(dir, 'dst_lib/bin/app'), []).stdout, '41\n');
  });

  it('$PLATFORM expands to AT_PLATFORM', async () => {
    const c = await sameAsLdd('dst_platform/bin/app');
    const bar = c.libraries.find((l) => l.name === 'libbar.so.1')!;
    const platform = /\/dst_platform\/bin\/\.\.\/([^/]+)\/libbar\.so\.1$/.exec(bar.path)?.[1];
    const value = { x86_64: '41', haswell: '51', xeon_phi: '61' }[platform ?? ''];
    assert.ok(value, bar.path);
    assert.equal(run(join(dir, 'dst_platform/bin/app'), []).stdout, `${value}\n`);
  });

  it('glibc-hwcaps: the host CPU level like ldd; for packing the baseline plus every variant', async () => {
    await sameAsLdd('hwcaps/bin/app');
    const base = resolveClosure(join(dir, 'hwcaps/bin/app'));
    const bar = base.libraries.find((l) => l.name === 'libbar.so.1')!;
    assert.ok(bar.path.endsWith('/hwcaps/bin/../lib/libbar.so.1'), bar.path);
    assert.deepEqual(
      bar.variants.map((v) => v.path.replace(/.*\/lib\//, '')),
      ['glibc-hwcaps/x86-64-v2/libbar.so.1', 'glibc-hwcaps/x86-64-v3/libbar.so.1', 'glibc-hwcaps/x86-64-v4/libbar.so.1'],
    );
  });

  it('legacy hwcap subdirectories of glibc <= 2.36: tls/ first, then x86_64/, then the directory', async () => {
    const c = await sameAsLdd('legacy/bin/app');
    assert.ok(c.libraries.some((l) => l.path.endsWith('/legacy/bin/../lib/tls/libbar.so.1')));
    assert.equal(run(join(dir, 'legacy/bin/app'), []).stdout, '43\n');
    const c2 = await sameAsLdd('legacy/bin/app2');
    assert.ok(c2.libraries.some((l) => l.path.endsWith('/legacy/bin/../lib2/x86_64/libbar.so.1')));
    assert.equal(run(join(dir, 'legacy/bin/app2'), []).stdout, '42\n');
  });

  it('DF_1_NODEFLIB: neither the cache nor the default directories are searched', async () => {
    const c = await sameAsLdd('nodeflib/bin/app');
    assert.deepEqual(c.notFound.map((n) => n.name), ['libc.so.6']);
    assert.equal(c.interpreter?.path, '/lib64/ld-linux-x86-64.so.2', 'the kernel still opens the loader');
    assert.notEqual(run(join(dir, 'nodeflib/bin/app'), []).status, 0);
  });

  it('a candidate of the wrong ELF class is skipped', async () => {
    const c = await sameAsLdd('wrongclass/bin/app');
    assert.ok(c.libraries.some((l) => l.path.endsWith('/wrongclass/bin/../lib/libbar.so.1')));
    assert.equal(run(join(dir, 'wrongclass/bin/app'), []).stdout, '41\n');
  });

  it('an absolute DT_NEEDED is opened directly', async () => {
    const c = await sameAsLdd('needed_slash/bin/app');
    assert.ok(c.libraries.some((l) => l.name === join(dir, 'needed_slash/lib/libnosoname.so')));
  });

  it('static, static-pie and static musl programs have no closure', async () => {
    for (const [rel, kind] of [
      ['static/app', 'static'],
      ['static/app-pie', 'static-pie'],
      ['static/app-musl', 'static'],
    ] as const) {
      const c = resolveClosure(join(dir, rel));
      assert.equal(c.kind, kind, rel);
      assert.equal(c.libraries.length + c.notFound.length, 0, rel);
      assert.equal(c.interpreter, null);
      assert.equal((await realLdd(join(dir, rel))).status, 'static', rel);
      assert.equal(run(join(dir, rel), []).stdout, 'hello\n');
    }
  });

  it('musl: libc.so is the interpreter itself, as ld-musl --list shows', () => {
    const file = join(dir, 'musl/app');
    const c = resolveClosure(file);
    assert.equal(c.flavour, 'musl');
    const truth = parseLddOutput(run('/lib/ld-musl-x86_64.so.1', ['--list', file]).stdout);
    assert.deepEqual(sorted(closureFiles(c)), sorted(truth.files));
    assert.equal(c.interpreter?.path, '/lib/ld-musl-x86_64.so.1');
    assert.equal(run(file, []).stdout, 'hello\n');
  });

  it('a PIE with PT_INTERP and no DT_NEEDED still needs its loader', async () => {
    const file = join(dir, 'interp_only/app');
    const c = resolveClosure(file);
    assert.equal(c.kind, 'interpreter-only');
    assert.equal(c.interpreter?.path, '/lib64/ld-linux-x86-64.so.2');
    assert.equal((await realLdd(file)).status, 'static', 'ldd claims it is static');
    assert.equal(run(file, []).status, 0);
  });

  it('a copy with its section headers zeroed resolves exactly like the original', () => {
    const cases = ['rpath_inherit/bin/app', 'origin_symlink/real/app', 'dst_lib/bin/app', 'musl/app', 'needed_slash/bin/app'];
    for (const rel of cases) {
      const orig = join(dir, rel);
      const copy = orig + '.nosections';
      stripSectionHeaders(orig, copy);
      const a = resolveClosure(orig);
      const b = resolveClosure(copy);
      assert.deepEqual(sorted(closureFiles(b)), sorted(closureFiles(a)), rel);
      assert.deepEqual(b.notFound, a.notFound);
    }
    const copy = join(dir, 'redis-server.nosections');
    stripSectionHeaders('/usr/bin/redis-server', copy);
    const r = new Resolver('/');
    assert.deepEqual(sorted(closureFiles(r.resolve(copy))), sorted(closureFiles(r.resolve('/usr/bin/redis-server'))));
    assert.ok(r.resolve(copy).libraries.length > 10);
  });
});
