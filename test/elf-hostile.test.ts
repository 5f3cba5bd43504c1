import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ElfError } from '../src/elf/errors.js';
import { readElf, readElfFile } from '../src/elf/reader.js';
import { BufferSource } from '../src/elf/source.js';
import { Resolver } from '../src/elf/resolve.js';
import { readLdSoConf } from '../src/elf/ldconfig.js';
import { readRootText } from '../src/elf/rootfile.js';
import { RootFs } from '../src/elf/rootfs.js';
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

describe('seeded fuzzing of whole resolutions', () => {
  it('mutated libraries inside a library tree: every resolution ends in a closure or an ElfError (bounded: 1500 cases or 20 s)', (t) => {
    const tree = join(dir, 'fuzztree');
    writeFileSync(join(dir, 'fz.c'), 'int f(void){return 1;}\n');
    writeFileSync(join(dir, 'fzapp.c'), 'int main(void){return 0;}\n');
    sh(
      `mkdir -p ${tree}/bin ${tree}/lib ${tree}/lib2
       gcc -shared -fPIC -o ${tree}/lib2/libz1.so -Wl,-soname,libz1.so fz.c
       gcc -shared -fPIC -o ${tree}/lib/libz0.so -Wl,-soname,libz0.so fz.c ${tree}/lib2/libz1.so -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../lib2:$ORIGIN'
       gcc -o ${tree}/bin/app fzapp.c ${tree}/lib/libz0.so -Wl,-rpath-link,${tree}/lib2 -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'`,
      dir,
    );
    const files = [join(tree, 'lib/libz0.so'), join(tree, 'bin/app')];
    const originals = files.map((f) => readFileSync(f));
    let refused = 0;
    const r = rng(777);
    const t0 = Date.now();
    let results = 0;
    let errors = 0;
    let i = 0;
    for (; i < 1500 && Date.now() - t0 < 20000; i++) {
      // Mostly the library the program needs (a bad candidate), sometimes the program itself (a bad input).
      const which = r() < 0.7 ? 0 : 1;
      const buf = Buffer.from(originals[which]);
      // Headers, program headers, the dynamic section and its strings all sit in the first pages of a small library.
      const span = Math.min(buf.length, 16384);
      for (let k = 1 + Math.floor(r() * 8); k > 0; k--) {
        const pos = Math.floor(r() * span);
        const m = r();
        if (m < 0.5) buf[pos] = Math.floor(r() * 256);
        else if (m < 0.8) buf[pos] ^= 1 << Math.floor(r() * 8);
        else buf.writeUInt32LE(r() < 0.5 ? 0xffffffff : Math.floor(r() * 0x10000), Math.min(pos, buf.length - 4));
      }
      if (r() < 0.05) buf.fill(0, Math.floor(r() * buf.length));
      writeFileSync(files[which], buf);
      try {
        const c = new Resolver('/').resolve(join(tree, 'bin/app'));
        assert.ok(Array.isArray(c.libraries));
        if (c.notFound.some((n) => n.reason)) refused++;
        results++;
      } catch (e) {
        if (!(e instanceof ElfError) || /internal error/.test(e.message)) throw new Error(`case ${i} (seed 777): ${(e as Error)?.stack ?? e}`);
        errors++;
      }
      writeFileSync(files[which], originals[which]);
    }
    t.diagnostic(`resolution fuzz: ${i} mutants in ${Date.now() - t0} ms, ${results} closures (${refused} with a candidate refused), ${errors} ElfErrors`);
    assert.ok(i >= 200, `only ${i} cases ran`);
  });
});

describe('files ocislim reads for itself from a root are checked', () => {
  /** A root holding a program of `kind` ('glibc' or 'musl') at /app, and the loader it names. */
  function rootWith(name: string, kind: 'glibc' | 'musl'): string {
    const r = join(dir, name);
    const src = join(dir, `${name}.c`);
    writeFileSync(src, '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n');
    sh(
      kind === 'musl'
        ? `mkdir -p ${r}/lib ${r}/etc && musl-gcc -o ${r}/app ${src} && cp /lib/ld-musl-x86_64.so.1 ${r}/lib/`
        : `mkdir -p ${r}/lib64 ${r}/etc && gcc -o ${r}/app ${src} && cp /lib64/ld-linux-x86-64.so.2 ${r}/lib64/`,
    );
    return r;
  }

  it("musl's path file as a FIFO, or huge and sparse: a one-line error naming it, at once", () => {
    const fifo = rootWith('musl-fifo', 'musl');
    sh(`mkfifo ${fifo}/etc/ld-musl-x86_64.path`);
    const r1 = ocislim(['ldd', '--root', fifo, `${fifo}/app`], { timeout: 20000 });
    assert.equal(r1.status, 1, r1.stderr);
    assert.equal(r1.stderr, 'ocislim ldd: /etc/ld-musl-x86_64.path: is not a regular file\n');
    const huge = rootWith('musl-huge', 'musl');
    sh(`truncate -s 1500M ${huge}/etc/ld-musl-x86_64.path`);
    const r2 = ocislim(['ldd', '--root', huge, `${huge}/app`], { timeout: 20000 });
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(r2.stderr, /^ocislim ldd: \/etc\/ld-musl-x86_64\.path: is 1572864000 bytes, more than the 1 MiB such a file may hold\n$/);
    // A link to a device (here read from the host root): refused, not read forever.
    assert.throws(() => readRootText('/dev/zero', '/etc/ld-musl-x86_64.path', 1 << 20), (e: Error) => e instanceof ElfError && /is not a regular file/.test(e.message));
  });

  it('ld.so.conf: includes multiplied by "." symlinks are cut off; a self-include under another name ends; a FIFO is refused', () => {
    const r = join(dir, 'ldconf');
    sh(`mkdir -p ${r}/etc/d ${r}/usr/lib/x && cd ${r}/etc/d && ln -s . a && ln -s . b && ln -s . c && echo /usr/lib/x > x.conf`);
    writeFileSync(join(r, 'etc/ld.so.conf'), `include /etc/d${'/*'.repeat(16)}.conf\n`);
    const t0 = Date.now();
    const e = expectElfError(() => readLdSoConf(new RootFs(r)), 'explosion');
    assert.match(e.message, /^\/etc\/ld\.so\.conf: include \S+ matches more than 4096 paths$/);
    assert.ok(Date.now() - t0 < 10000, `${Date.now() - t0} ms`);
    // The same file reached under other names (./, a/, a/b/) is read once.
    writeFileSync(join(r, 'etc/ld.so.conf'), 'include /etc/./ld.so.conf /etc/d/a/b/x.conf /etc/d/x.conf\n/usr/lib/x\n');
    assert.deepEqual(readLdSoConf(new RootFs(r)), ['/usr/lib/x']);
    sh(`rm ${r}/etc/d/x.conf && mkfifo ${r}/etc/d/x.conf`);
    writeFileSync(join(r, 'etc/ld.so.conf'), 'include /etc/d/*.conf\n');
    assert.match(expectElfError(() => readLdSoConf(new RootFs(r)), 'fifo').message, /^\/etc\/d\/x\.conf: is not a regular file$/);
  });

  it('a 1.9 GB sparse interpreter is not read whole', () => {
    const r = rootWith('sparse-interp', 'glibc');
    sh(`truncate -s 1900M ${r}/lib64/ld-linux-x86-64.so.2`);
    const before = process.memoryUsage().rss;
    const t0 = Date.now();
    const c = new Resolver(r).resolve('/app');
    const grew = process.memoryUsage().rss - before;
    assert.equal(c.interpreter?.path, '/lib64/ld-linux-x86-64.so.2');
    assert.ok(grew < 200e6, `rss grew by ${(grew / 1e6).toFixed(0)} MB`);
    assert.ok(Date.now() - t0 < 15000, `${Date.now() - t0} ms`);
  });

  it('--root that does not exist or is a file, and a symlink loop: what is wrong, precisely', () => {
    sh(`cd ${dir} && ln -s loop-b loop-a && ln -s loop-a loop-b`);
    const cases: [string[], RegExp][] = [
      [['ldd', '--root', '/nonexistent', '/usr/bin/ls'], /^ocislim: \/nonexistent: root filesystem: no such directory\n$/],
      [['ldd', '--root', '/etc/passwd', '/usr/bin/ls'], /^ocislim: \/etc\/passwd: root filesystem: not a directory\n$/],
      [['ldd', join(dir, 'loop-a')], /^ocislim ldd: \S+\/loop-a: too many levels of symbolic links \(a symlink loop\)\n$/],
      [['build', join(dir, 'loop-a'), '-o', `oci:${join(dir, 'never')}`], /^ocislim: \S+\/loop-a: too many levels of symbolic links \(a symlink loop\)\n$/],
    ];
    for (const [args, re] of cases) {
      const r = ocislim(args);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, re, args.join(' '));
    }
  });

  it('a DT_NEEDED holding a newline cannot add a line to ldd output or to an error', () => {
    writeFileSync(join(dir, 'x.c'), 'int x(void){return 1;}\n');
    writeFileSync(join(dir, 'm.c'), 'int x(void); int main(void){return x();}\n');
    sh(`cd ${dir} && gcc -shared -fPIC -Wl,-soname,"$(printf 'libevil\\nINJECTED.so')" -o libevil.so x.c && gcc -o evilapp m.c ./libevil.so`);
    for (const args of [['ldd'], ['ldd', '--tree']]) {
      const r = ocislim([...args, join(dir, 'evilapp')]);
      assert.equal(r.status, 1);
      assert.ok(!r.stdout.split('\n').some((l) => l.startsWith('INJECTED')), r.stdout);
      assert.match(r.stdout, /libevil\\nINJECTED\.so => not found/);
    }
    const b = ocislim(['build', join(dir, 'evilapp'), '-o', `oci:${join(dir, 'evil-image')}`]);
    assert.notEqual(b.status, 0);
    assert.equal(b.stderr.trim().split('\n').length, 1, b.stderr);
    assert.match(b.stderr, /libevil\\nINJECTED\.so/);
  });
});
