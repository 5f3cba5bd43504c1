import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { runcRun, umociUnpack } from './helpers/container.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

// A program that dlopens a plugin by path; the plugin links libz, which the program itself does not. Whatever route
// brings the plugin into the image (a directory, --copy, an ADD archive, a Dockerfile COPY), libz must come too.
let dir: string;
before(() => {
  dir = tempDir('ocislim-every-elf-');
  writeFileSync(join(dir, 'plugin.c'), '#include <zlib.h>\nconst char *plugin_zlib(void) { return zlibVersion(); }\n');
  writeFileSync(
    join(dir, 'host.c'),
    `#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("dlopen failed: %s\\n", dlerror()); return 1; }
  const char *(*f)(void) = (const char *(*)(void))dlsym(h, "plugin_zlib");
  printf("zlib %s\\n", f());
  return 0;
}
`,
  );
  sh(
    `gcc -O2 -o host host.c -ldl
     mkdir -p plug && gcc -O2 -shared -fPIC -o plug/plugin.so plugin.c -lz
     ln -s /nonexistent/target plug/dangling
     tar -C plug -cf plug.tar .`,
    dir,
  );
});
after(() => removeDir(dir));

function buildRun(name: string, args: string[], plugin: string, cwd?: string) {
  const layout = join(dir, `img-${name}`);
  const r = ocislim(['build', ...args, '-o', `oci:${layout}`], { cwd });
  assert.equal(r.status, 0, r.stderr);
  const bundle = join(dir, `${name}-bundle`);
  umociUnpack(`${layout}:latest`, bundle);
  return { build: r, run: runcRun(bundle, [join(dir, 'host'), plugin]) };
}

describe('every ELF file that enters the image brings its closure', () => {
  it('a directory, --copy and --add: the plugin loads (libz came with it); the dangling link inside is a precise warning, not an error', () => {
    const zlib = /^zlib \d+\.\d+/;
    const positional = buildRun('dir', [join(dir, 'host'), join(dir, 'plug')], join(dir, 'plug/plugin.so'));
    assert.match(positional.run.stdout, zlib, positional.run.stderr);
    assert.match(positional.build.stderr, new RegExp(`warning: ${join(dir, 'plug/dangling')} is a symbolic link to "/nonexistent/target", which is not in the image \\(it came with the directory ${join(dir, 'plug')}`));
    const copy = buildRun('copy', [join(dir, 'host'), '--copy', `${join(dir, 'plug')}:/opt/plug`], '/opt/plug/plugin.so');
    assert.match(copy.run.stdout, zlib, copy.run.stderr);
    const add = buildRun('add', [join(dir, 'host'), '--add', `${join(dir, 'plug.tar')}:/opt/plug`], '/opt/plug/plugin.so');
    assert.match(add.run.stdout, zlib, add.run.stderr);
  });

  it('a Dockerfile COPY of a plugin directory, and the run check covers the plugin', () => {
    const ctx = join(dir, 'ctx');
    mkdirSync(ctx);
    sh(`cp ${join(dir, 'host')} ${ctx}/host && mkdir ${ctx}/plug && cp ${join(dir, 'plug/plugin.so')} ${ctx}/plug/`);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY host /host\nCOPY plug /opt/plug\nENTRYPOINT ["/host", "/opt/plug/plugin.so"]\n');
    const layout = join(dir, 'img-df');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${layout}`]);
    assert.equal(r.status, 0, r.stderr);
    umociUnpack(`${layout}:latest`, join(dir, 'df-bundle'));
    const out = runcRun(join(dir, 'df-bundle'));
    assert.match(out.stdout, /^zlib \d/, out.stderr);
  });

  it('a plugin whose library is not installed: the build names the plugin and the missing library, and still succeeds', () => {
    const p = join(dir, 'broken');
    mkdirSync(p);
    sh(`echo 'int f(void){return 1;}' > dep.c && gcc -shared -fPIC -Wl,-soname,libocislimgone.so.1 -o libocislimgone.so.1 dep.c && echo 'int f(void); int g(void){return f();}' > use.c && gcc -shared -fPIC -o ${p}/uses.so use.c ./libocislimgone.so.1`, dir);
    const r = ocislim(['build', join(dir, 'host'), p, '-o', `oci:${join(dir, 'img-broken')}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`warning: ${join(p, 'uses.so')} cannot be loaded: not found in /: libocislimgone\\.so\\.1`));
  });
});
