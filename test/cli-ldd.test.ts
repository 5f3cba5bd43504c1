import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { ocislim } from './helpers/cli.js';
import { readElfFile } from '../src/elf/reader.js';
import { buildElfFixtures } from './helpers/elf-fixtures.js';
import { removeDir, run, sh, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = buildElfFixtures(tempDir('ocislim-cli-ldd-'));
});
after(() => removeDir(dir));

describe('ocislim ldd', () => {
  it('prints ldd\'s format with a header per file and exits 0 when all is found', () => {
    const r = ocislim(['ldd', '/usr/bin/ls', join(dir, 'musl/app')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\/usr\/bin\/ls:\n\tlibselinux\.so\.1 => \/lib\/x86_64-linux-gnu\/libselinux\.so\.1\n/);
    assert.match(r.stdout, /\tlibc\.so\.6 => \/lib\/x86_64-linux-gnu\/libc\.so\.6\n/);
    assert.match(r.stdout, /\t\/lib64\/ld-linux-x86-64\.so\.2\n/);
    assert.match(r.stdout, /musl\/app:\n\tlibc\.so => \/lib\/ld-musl-x86_64\.so\.1\n\t\/lib\/ld-musl-x86_64\.so\.1\n/);
    assert.equal(r.stderr, '');
  });

  it('a UTF-8 library name (decoded by the reader only when a name is not ASCII) reads as ldd prints it', () => {
    const d = join(dir, 'utf8-name');
    sh(
      `mkdir -p ${d} && cd ${d} && echo 'int f(void) { return 1; }' > l.c && gcc -shared -fPIC -o libcafé.so -Wl,-soname,libcafé.so l.c
       echo 'int f(void); int main(void) { return f(); }' > a.c && gcc -o app a.c ./libcafé.so -Wl,-rpath,'$ORIGIN'`,
    );
    const r = ocislim(['ldd', join(d, 'app')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\tlibcafé\.so => .*\/utf8-name\/libcafé\.so$/m);
    assert.match(run('ldd', [join(d, 'app')]).stdout, /^\tlibcafé\.so => .*\/utf8-name\/libcafé\.so \(0x/m, 'the real ldd agrees');
  });

  it('says "not found" and exits non-zero when a library is missing', () => {
    const r = ocislim(['ldd', join(dir, 'runpath_noinherit/bin/app')]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /\tlibbar\.so\.1 => not found/);
  });

  it('--tree shows who needs what', () => {
    const r = ocislim(['ldd', '--tree', join(dir, 'rpath_inherit/bin/app')]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const foo = lines.findIndex((l) => /^    libfoo\.so\.1 => /.test(l));
    assert.ok(foo > 0, r.stdout);
    assert.match(lines[foo + 1], /^        libbar\.so\.1 => .*rpath_inherit\/bin\/\.\.\/lib\/libbar\.so\.1$/);
  });

  it('--json gives the structured result with symlink chains and who needed each object', () => {
    const r = ocislim(['ldd', '--json', '/usr/bin/redis-server']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.file, '/usr/bin/redis-server');
    assert.equal(j.platform, 'linux/amd64');
    assert.equal(j.flavour, 'glibc');
    assert.ok(j.links.some((l: { path: string }) => l.path === '/usr/bin/redis-server'), 'redis-server is a symlink to redis-check-rdb');
    assert.equal(j.interpreter.path, '/lib64/ld-linux-x86-64.so.2');
    assert.ok(j.interpreter.links.length >= 1, 'the loader path goes through symlinks on Debian');
    const crypto = j.libraries.find((l: { name: string }) => l.name === 'libcrypto.so.3');
    assert.equal(crypto.neededBy, '/usr/bin/redis-server');
    const lz4 = j.libraries.find((l: { name: string }) => l.name === 'liblz4.so.1');
    assert.equal(lz4.neededBy, '/lib/x86_64-linux-gnu/libsystemd.so.0');
    assert.ok(lz4.links.some((l: { target: string }) => /liblz4\.so\.1\.\d/.test(l.target)), 'the SONAME link to the real file');
  });

  it('bad input: one clear line, non-zero exit, no stack trace', () => {
    for (const [args, msg] of [
      [['ldd', '/nonexistent/file'], /^ocislim ldd: \/nonexistent\/file: no such file\n$/],
      [['ldd', '/etc/passwd'], /^ocislim ldd: \/etc\/passwd: not an ELF file \(bad magic\)\n$/],
      [['ldd', '/usr'], /^ocislim ldd: \/usr: is a directory, not an ELF file\n$/],
      [['ldd'], /^ocislim: Not enough non-option arguments/],
      [['frobnicate'], /^ocislim: Unknown argument: frobnicate\n$/],
    ] as const) {
      const r = ocislim([...args]);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, msg, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('several files among options: each is a file, a repeatable option takes one value per occurrence', () => {
    const json = ocislim(['ldd', '/bin/true', '--json', '/bin/ls']);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as { file: string }[]).map((c) => c.file), ['/bin/true', '/bin/ls']);
    const text = ocislim(['ldd', '/bin/ls', '/bin/true', '-q', '--tree']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^\/bin\/ls:\n\/bin\/ls \(interpreter [^]*\n\/bin\/true:\n\/bin\/true \(interpreter /);
    // --library-path takes one directory: /bin/true stays a file, wherever the option stands
    for (const args of [['/bin/ls', '--library-path', '/tmp', '/bin/true'], ['--library-path', '/tmp', '/bin/ls', '/bin/true']]) {
      const two = ocislim(['ldd', ...args]);
      assert.equal(two.status, 0, two.stderr);
      assert.match(two.stdout, /^\/bin\/ls:\n[^]*^\/bin\/true:$/m, args.join(' '));
    }
  });

  it('reads version records only where they are shown: --json has them, the text needs no file read for them', () => {
    const full = readElfFile('/usr/bin/ls');
    const lean = readElfFile('/usr/bin/ls', { versions: false });
    assert.ok(full.versionNeeds.some((v) => /^libc\.so\./.test(v.file) && v.versions.some((x) => /^GLIBC_2\./.test(x))));
    assert.deepEqual(lean.versionNeeds, []);
    assert.deepEqual(lean.versionDefs, []);
    assert.deepEqual({ ...lean, versionNeeds: full.versionNeeds, versionDefs: full.versionDefs }, full);
    const json = ocislim(['ldd', '--json', '/usr/bin/ls']);
    assert.equal(json.status, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { elf: { versionNeeds: { file: string }[] }; libraries: { elf: { versionNeeds: unknown[] } }[] };
    assert.ok(doc.elf.versionNeeds.some((v) => /^libc\.so\./.test(v.file)));
  });
});
