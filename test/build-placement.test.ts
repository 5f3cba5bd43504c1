import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { runcRun, umociUnpack } from './helpers/container.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-placement-');
  writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void){puts("placed");return 0;}\n');
  sh('gcc -o hello hello.c && mkdir -p conf/sub && echo a > conf/a.conf && echo b > conf/sub/b.conf && ln -s hello link', dir);
});
after(() => removeDir(dir));

/** Builds in `dir` (relative paths are relative to it) and returns the image's files and entrypoint. */
function build(inputs: string[], name: string) {
  const r = ocislim(['build', ...inputs, '-o', `oci:${name}`, '--json'], { cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  const ins = ocislim(['inspect', '--json', '--files', `oci:${join(dir, name)}`]);
  const j = JSON.parse(ins.stdout);
  const files = new Map<string, { type: string; linkname?: string }>(j.layers.flatMap((l: { files: { path: string }[] }) => l.files.map((f) => [f.path, f])));
  return { files, entrypoint: j.runConfig.Entrypoint as string[] | undefined };
}

describe('where positional files land in the image', () => {
  it('a relative path lands under / at that relative path, whatever the current directory', () => {
    const { files, entrypoint } = build(['./hello', 'conf'], 'rel');
    assert.equal(files.get('/hello')?.type, 'file');
    assert.equal(files.get('/conf/sub/b.conf')?.type, 'file');
    assert.deepEqual(entrypoint, ['/hello']);
    assert.ok(![...files.keys()].some((p) => p.startsWith(dir)), 'nothing at the host path');
    assert.ok(files.has('/lib64/ld-linux-x86-64.so.2'), 'the closure came along');
  });

  it('SRC:DEST puts a program at DEST with its closure; the image runs (umoci + runc)', () => {
    const { files, entrypoint } = build(['hello:/usr/local/bin/greet', 'conf:/etc/app/', 'conf:/srv/cfg', `${join(dir, 'link')}:/opt/`], 'dest');
    assert.equal(files.get('/usr/local/bin/greet')?.type, 'file');
    assert.equal(files.get('/etc/app/conf/a.conf')?.type, 'file', 'DEST ending in "/": into it, as cp does');
    assert.equal(files.get('/srv/cfg/sub/b.conf')?.type, 'file', 'else the directory becomes DEST');
    assert.equal(files.get('/opt/link')?.type, 'file', 'a symlink SRC is followed, as COPY does');
    assert.deepEqual(entrypoint, ['/usr/local/bin/greet']);
    const bundle = join(dir, 'bundle');
    umociUnpack(`${join(dir, 'dest')}:latest`, bundle);
    const run = runcRun(bundle);
    assert.equal(run.stdout, 'placed\n', run.stderr);
  });

  it('an absolute path stays where it is; a relative path climbing out must name its place (exit 2)', () => {
    const { files } = build([join(dir, 'hello')], 'abs');
    assert.equal(files.get(join(dir, 'hello'))?.type, 'file');
    const r = ocislim(['build', '../x', '-o', `oci:${join(dir, 'never')}`], { cwd: join(dir, 'conf') });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ocislim: \.\.\/x: a relative path leaving the current directory has no place in the image; say where it goes with \.\.\/x:\/DEST$/m);
    const dot = ocislim(['build', '.', '-o', `oci:${join(dir, 'never')}`], { cwd: join(dir, 'conf') });
    assert.equal(dot.status, 2);
  });
});

describe('ELF files placed elsewhere than in the root (COPY, ADD) are resolved where they land', () => {
  // An application directory as vendors ship it: bin/prog with RPATH $ORIGIN/../lib, its own lib/libfoo.so, which
  // needs libm from the root. Built from two context directories: the image must not depend on where the context is.
  const app = (ctx: string) => {
    sh('mkdir -p app/bin app/lib', ctx);
    writeFileSync(join(ctx, 'foo.c'), '#include <math.h>\nint foo(double x){return (int)sqrt(x);}\n');
    writeFileSync(join(ctx, 'main.c'), '#include <stdio.h>\n#include <dlfcn.h>\nint foo(double);\nint main(int c,char**v){if(c>5)dlopen(v[1],RTLD_NOW);printf("%d\\n",foo(1764));return 0;}\n');
    sh(`gcc -shared -fPIC -o app/lib/libfoo.so foo.c -lm && gcc -o app/bin/prog main.c -Lapp/lib -lfoo -Wl,-rpath,'$ORIGIN/../lib' && tar -czf app.tar.gz app`, ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY app /opt/app\nCMD ["/opt/app/bin/prog"]\n');
    writeFileSync(join(ctx, 'Dockerfile.add'), 'FROM scratch\nADD app.tar.gz /opt/\nCMD ["/opt/app/bin/prog"]\n');
  };

  it('COPY: $ORIGIN libraries come from the image, nothing lands at a host path, the digest ignores the context path; runc runs it', () => {
    const digests: string[] = [];
    for (const ctx of [join(dir, 'ctx1'), join(dir, 'elsewhere', 'ctx2')]) {
      sh(`mkdir -p ${ctx}`);
      app(ctx);
      const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${join(ctx, 'img')}`, '--no-cache', '--json'], { cwd: ctx });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /cannot be loaded|not found/, 'libfoo.so is found beside the program');
      const ins = JSON.parse(ocislim(['inspect', '--json', '--files', `oci:${join(ctx, 'img')}`]).stdout);
      const files: string[] = ins.layers.flatMap((l: { files: { path: string }[] }) => l.files.map((f) => f.path));
      assert.ok(!files.some((p) => p.startsWith(dir)), `no host path in the image: ${files.filter((p) => p.startsWith(dir))}`);
      assert.ok(files.some((p) => /\/libm\.so\.6$/.test(p)), 'libfoo.so brought its own need (libm)');
      digests.push(JSON.parse(r.stdout).digest);
    }
    assert.equal(digests[0], digests[1], 'the same image from either context directory');
    const bundle = join(dir, 'bundle-origin');
    umociUnpack(`${join(dir, 'ctx1', 'img')}:latest`, bundle);
    const run = runcRun(bundle);
    assert.equal(run.stdout, '42\n', run.stderr);
  });

  it("ADD of an archive: its members are named by their image paths in what the build says", () => {
    const ctx = join(dir, 'ctx1');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile.add'), ctx, '-o', `oci:${join(ctx, 'img-add')}`, '--no-cache'], { cwd: ctx });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: prog calls dlopen/);
    assert.doesNotMatch(r.stderr, /\bm\d+\b|cannot be loaded/, 'no staging names, libfoo.so found in the archive');
  });

  it("COPY of a 'make install' tree: a library in /usr/local/lib (an ld.so.conf directory) is linked where the image's loader looks; runc runs it", () => {
    const ctx = join(dir, 'usrlocal');
    sh(`mkdir -p ${ctx}/local/bin ${ctx}/local/lib`);
    writeFileSync(join(ctx, 'foo.c'), 'int foo(void){return 42;}\n');
    writeFileSync(join(ctx, 'main.c'), '#include <stdio.h>\nint foo(void);\nint main(void){printf("%d\\n",foo());return 0;}\n');
    sh('gcc -shared -fPIC -Wl,-soname,libfoo.so.1 -o local/lib/libfoo.so.1 foo.c && gcc -o local/bin/prog main.c local/lib/libfoo.so.1', ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY local /usr/local\nCMD ["/usr/local/bin/prog"]\n');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${join(ctx, 'img')}`, '--no-cache'], { cwd: ctx });
    assert.equal(r.status, 0, r.stderr);
    const bundle = join(dir, 'bundle-usrlocal');
    umociUnpack(`${join(ctx, 'img')}:latest`, bundle);
    const run = runcRun(bundle);
    assert.equal(run.stdout, '42\n', run.stderr);
  });

  it("an archive's own copy of a library the root also has (libz.so.1 in /usr/lib, other needs) is the one the image loads", () => {
    // The root has libz.so.1 in /lib/x86_64-linux-gnu (/lib -> usr/lib), which the loader searches before
    // /usr/lib/x86_64-linux-gnu: adding the root's copy there would shadow the archive's in the image.
    const ctx = join(dir, 'ownlib');
    sh(`mkdir -p ${ctx}/r/usr/lib/x86_64-linux-gnu ${ctx}/r/app`);
    writeFileSync(join(ctx, 'z.c'), '#include <math.h>\nconst char *zlibVersion(void){static char b[4];volatile double x=1764;int r=(int)sqrt(x);b[0]=48+r/10;b[1]=48+r%10;return b;}\n');
    writeFileSync(join(ctx, 'main.c'), '#include <stdio.h>\nconst char *zlibVersion(void);\nint main(void){puts(zlibVersion());return 0;}\n');
    const lib = 'r/usr/lib/x86_64-linux-gnu/libz.so.1';
    sh(`gcc -shared -fPIC -fno-builtin -Wl,-soname,libz.so.1 -Wl,--no-as-needed -o ${lib} z.c -lm && gcc -o r/app/prog main.c ${lib} && tar -C r -czf root.tar.gz .`, ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD root.tar.gz /\nCMD ["/app/prog"]\n');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${join(ctx, 'img')}`, '--no-cache'], { cwd: ctx });
    assert.equal(r.status, 0, r.stderr);
    const ins = JSON.parse(ocislim(['inspect', '--json', '--files', `oci:${join(ctx, 'img')}`]).stdout);
    const files: string[] = ins.layers.flatMap((l: { files: { path: string }[] }) => l.files.map((f) => f.path));
    assert.deepEqual(files.filter((p) => /\/libz\.so/.test(p)), ['/usr/lib/x86_64-linux-gnu/libz.so.1'], "only the archive's libz");
    assert.ok(files.some((p) => /\/libm\.so\.6$/.test(p)), "the archive's libz brought its own need (libm)");
    const bundle = join(dir, 'bundle-ownlib');
    umociUnpack(`${join(ctx, 'img')}:latest`, bundle);
    const run = runcRun(bundle);
    assert.equal(run.stdout, '42\n', run.stderr);
  });
});
