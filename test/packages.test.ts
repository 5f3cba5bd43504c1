import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { runcRun, umociUnpack } from './helpers/container.js';
import { removeDir, run, sh, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-packages-');
});
after(() => removeDir(dir));

function build(name: string, args: string[], env?: NodeJS.ProcessEnv) {
  const layout = join(dir, `img-${name}`);
  const r = ocislim(['build', ...args, '-o', `oci:${layout}`], { env });
  return { ...r, layout, bundle: join(dir, `${name}-bundle`) };
}

describe('package-aware builds', () => {
  it('--package ships an installed package without its documentation, its programs run, and --explain names each file\'s package', () => {
    const r = build('pkg', ['--package', 'redis-tools', '--entrypoint', '/usr/bin/redis-cli', '--explain']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /added package redis-tools \S+ \(\d+ files; documentation left out\)/);
    assert.match(r.stderr, /\/usr\/bin\/redis-cli +<- package redis-tools +\[redis-tools\]/);
    assert.match(r.stderr, /\/lib\/x86_64-linux-gnu\/libc\.so\.6 .*\[libc6\]/);
    assert.doesNotMatch(r.stderr, /\/usr\/share\/(man\/|doc\/(?!redis-tools\/copyright ))/, 'documentation left out (the copyright file kept)');
    assert.match(r.stderr, /\/usr\/share\/doc\/redis-tools\/copyright /);
    umociUnpack(`${r.layout}:latest`, r.bundle);
    const out = runcRun(r.bundle, ['/usr/bin/redis-cli', '--version']);
    assert.match(out.stdout, /^redis-cli \d/, out.stderr);
  });

  it('the runtime rule tells a runtime from a sibling tool: redis-server gets no redis-tools siblings and stays no larger than ldd + tar; --no-runtime turns the rule off for python', () => {
    const r = build('redis', ['/usr/bin/redis-server', '--explain', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const x = JSON.parse(r.stdout).explain as { files: { path: string; size: number; package?: string }[]; total: number };
    assert.deepEqual(x.files.filter((f) => /^\/usr\/bin\//.test(f.path)).map((f) => f.path), ['/usr/bin/redis-check-rdb']);
    // The classic recipe: the program's real file and every library ldd lists (the loader included).
    const ldd = run('ldd', ['/usr/bin/redis-server']).stdout;
    const libs = [...ldd.matchAll(/(?:=> )?(\/\S+) \(0x/g)].map((m) => m[1]);
    const classic = [statSync('/usr/bin/redis-check-rdb').size, ...libs.map((l) => statSync(l).size)].reduce((a, b) => a + b, 0);
    assert.ok(x.total <= classic * 1.01, `redis image files ${x.total} bytes vs ldd + tar ${classic}`);
    const py = build('py-noruntime', ['/usr/bin/python3', '--no-runtime']);
    assert.equal(py.status, 0, py.stderr);
    assert.doesNotMatch(py.stderr, /libpython3\.11-stdlib/);
  });

  it('helpers run by name: tar gets xz and bzip2 (tar Suggests their packages) with the reason in --explain; --no-helpers and --no-runtime leave them out', () => {
    const r = build('tar-helpers', ['/usr/bin/tar', '--with-shell', '--explain', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const files = (JSON.parse(r.stdout).explain as { files: { path: string; reason: string; package?: string }[] }).files;
    const xz = files.find((f) => f.path === '/usr/bin/xz');
    assert.deepEqual(xz && { reason: xz.reason, package: xz.package }, { reason: 'rule: helper of tar (it runs programs by name through PATH and names "xz"; tar Suggests xz-utils)', package: 'xz-utils' });
    assert.ok(files.some((f) => f.path === '/usr/bin/bzip2' && /names "bzip2"; tar Suggests bzip2/.test(f.reason)));
    // Only what tar names: xz-utils' other programs (xzdiff, xzgrep...) stay out.
    assert.deepEqual(files.filter((f) => /^\/usr\/bin\/xz./.test(f.path)).map((f) => f.path), []);
    for (const flag of ['--no-helpers', '--no-runtime']) {
      const n = build(`tar${flag}`, ['/usr/bin/tar', '--with-shell', flag, '--explain']);
      assert.equal(n.status, 0, n.stderr);
      assert.doesNotMatch(n.stderr, /\/usr\/bin\/(xz|bzip2)\b/, flag);
    }
  });

  it('--trace runs a program under strace and adds the library it dlopens by a name computed at run time (it fails without)', () => {
    writeFileSync(
      join(dir, 'dl.c'),
      `#include <dlfcn.h>
#include <stdio.h>
int main(void) {
  char name[32];
  snprintf(name, sizeof name, "lib%c.so.%d", 'z', 1);
  void *h = dlopen(name, RTLD_NOW);
  if (!h) { printf("no %s\\n", name); return 1; }
  printf("loaded %s %s\\n", name, ((const char *(*)(void))dlsym(h, "zlibVersion"))());
  return 0;
}
`,
    );
    sh('gcc -O2 -o dl dl.c', dir);
    const prog = join(dir, 'dl');
    const t = build('trace', [prog, '--trace', prog]);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stderr, new RegExp(`--trace: executed "${prog}" on this machine under strace \\(exit status 0\\)`));
    assert.match(t.stderr, /added 1 file the traced command opened or executed/);
    umociUnpack(`${t.layout}:latest`, t.bundle);
    assert.match(runcRun(t.bundle, [prog]).stdout, /^loaded libz\.so\.1 \d/);
    const n = build('notrace', [prog]);
    assert.equal(n.status, 0, n.stderr);
    umociUnpack(`${n.layout}:latest`, n.bundle);
    assert.equal(runcRun(n.bundle, [prog]).stdout, 'no libz.so.1\n');
  });

  it('bad input: an uninstalled --package, a corrupt dpkg database, --trace without strace: one line each', () => {
    const missing = build('missing', ['--package', 'ocislim-no-such-package']);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, 'ocislim: --package ocislim-no-such-package: not installed in /\n');
    const root = join(dir, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
    sh(`chmod 755 ${root}/bin/busybox`);
    writeFileSync(join(root, 'var/lib/dpkg/status'), 'Package: busybox-static\nStatus: install ok installed\nVersion: 1\n\nthis line is no field\n');
    const corrupt = build('corrupt', ['--root', root, '/bin/busybox']);
    assert.equal(corrupt.status, 1);
    assert.match(corrupt.stderr, new RegExp(`^ocislim: corrupt dpkg database: ${root}/var/lib/dpkg/status:5: .+\\n$`));
    const noStrace = build('nostrace', ['/bin/busybox', '--trace', '/bin/busybox true'], { PATH: '/nonexistent' });
    assert.equal(noStrace.status, 1);
    assert.equal(noStrace.stderr, 'ocislim: --trace: strace is not installed: install the Debian package strace (apt-get install strace)\n');
  });
});
