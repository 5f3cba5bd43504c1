import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { BIN, ocislim } from './helpers/cli.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-build-errors-');
  // Tar archives that try to escape their root, made with Python's tarfile (it writes what it is told).
  sh(
    `python3 - <<'PY'
import tarfile, io
def tar(name, members):
    with tarfile.open(name, 'w:gz') as t:
        for m in members:
            ti = tarfile.TarInfo(m[0])
            if m[1] == 'file':
                data = b'x'
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            elif m[1] == 'sym':
                ti.type = tarfile.SYMTYPE; ti.linkname = m[2]; t.addfile(ti)
            elif m[1] == 'hard':
                ti.type = tarfile.LNKTYPE; ti.linkname = m[2]; t.addfile(ti)
            elif m[1] == 'dir':
                ti.type = tarfile.DIRTYPE; t.addfile(ti)
tar('dotdot.tar.gz', [('ok', 'file'), ('../evil', 'file')])
tar('absolute.tar.gz', [('/etc/evil', 'file')])
tar('symlink.tar.gz', [('d', 'dir'), ('d/esc', 'sym', '../../etc/passwd')])
tar('hardlink.tar.gz', [('h', 'hard', '../../etc/passwd')])
tar('through.tar.gz', [('l', 'sym', '/etc'), ('l/passwd', 'file')])
PY
echo 'int bar(void){return 1;}' > lib32.c && gcc -m32 -shared -nostdlib -fPIC -o lib32.so lib32.c
tar -czf whole.tar.gz lib32.c lib32.so && head -c 300 whole.tar.gz > truncated.tar.gz`,
    dir,
  );
});
after(() => removeDir(dir));

/** The command fails with one line naming the problem, and leaves nothing at the output path. */
function fails(args: string[], out: string, message: RegExp) {
  const parent = join(out, '..');
  const list = (d: string) => (existsSync(d) && statSync(d).isDirectory() ? readdirSync(d) : []);
  const before = list(parent);
  const r = ocislim(['build', ...args]);
  assert.notEqual(r.status, 0, `should fail: ${args.join(' ')}`);
  assert.equal(r.stdout, '', 'nothing on stdout');
  const errLines = r.stderr.split('\n').filter((l) => l && !/^ocislim: (layer|wrote|added|note|needs Linux|warning:|inputs unchanged)/.test(l));
  assert.equal(errLines.length, 1, `one error line: ${r.stderr}`);
  assert.match(errLines[0], message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(!existsSync(out), `${out} must not exist`);
  const after = list(parent);
  assert.deepEqual(after.filter((x) => !before.includes(x)), [], 'no temporary files left');
}

describe('ocislim build refuses bad input clearly and writes nothing', () => {
  it('a missing file', () => {
    fails(['/nonexistent/program', '-o', `oci:${join(dir, 'o1')}`], join(dir, 'o1'), /^ocislim: \/nonexistent\/program: no such file or directory$/);
  });

  it('a directory as entrypoint', () => {
    fails(['/usr/bin/ls', '--entrypoint', '/usr/bin', '-o', `oci:${join(dir, 'o2')}`], join(dir, 'o2'), /^ocislim: entrypoint \/usr\/bin is a directory in the image/);
    fails(['/etc/ssl', '--entrypoint', '/etc/ssl', '-o', `oci-archive:${join(dir, 'o2.tar')}`], join(dir, 'o2.tar'), /entrypoint \/etc\/ssl is a directory/);
  });

  it('tars with ../, absolute paths, links that escape, or members below a symlink', () => {
    const cases: [string, RegExp][] = [
      ['dotdot.tar.gz', /dotdot\.tar\.gz: member "\.\.\/evil" escapes the archive root/],
      ['absolute.tar.gz', /absolute\.tar\.gz: member "\/etc\/evil" is an absolute path/],
      ['symlink.tar.gz', /symlink\.tar\.gz: member "d\/esc" is a symbolic link to "\.\.\/\.\.\/etc\/passwd", outside the archive root/],
      ['hardlink.tar.gz', /hardlink\.tar\.gz: member "h" is a hard link to "\.\.\/\.\.\/etc\/passwd"/],
      ['through.tar.gz', /through\.tar\.gz: member "l\/passwd" lies below a symbolic link/],
      ['truncated.tar.gz', /truncated\.tar\.gz: not a valid gzip tar archive/],
    ];
    for (const [name, msg] of cases) {
      const out = join(dir, `o-${name}`);
      fails(['--add', `${join(dir, name)}:/`, '-o', `oci:${out}`], out, msg);
    }
  });

  it('a file name that is not UTF-8 in a copied directory (--copy, a Dockerfile COPY): named, bytes escaped', () => {
    const d = join(dir, 'latin1');
    mkdirSync(join(d, 'conf'), { recursive: true });
    writeFileSync(join(d, 'conf', 'ok'), 'a\n');
    writeFileSync(Buffer.concat([Buffer.from(join(d, 'conf') + '/caf'), Buffer.from([0xe9])]), 'b\n');
    writeFileSync(join(d, 'Dockerfile'), 'FROM scratch\nCOPY conf /etc/app/\n');
    fails(['/usr/bin/true', '--copy', `${join(d, 'conf')}:/etc/app`, '-o', `oci:${join(dir, 'o-l1')}`], join(dir, 'o-l1'), /conf\/caf\\xe9: the file name is not UTF-8/);
    fails(['-f', join(d, 'Dockerfile'), d, '-o', `oci:${join(dir, 'o-l2')}`], join(dir, 'o-l2'), /conf\/caf\\xe9: the file name is not UTF-8/);
  });

  it('two ELF files of different architectures', () => {
    const out = join(dir, 'o4');
    fails(['/usr/bin/ls', join(dir, 'lib32.so'), '-o', `oci:${out}`], out, /lib32\.so is linux\/386 but \/usr\/bin\/ls is linux\/amd64: one image holds one platform/);
  });

  it('an unwritable output', () => {
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    sh(`mount -t tmpfs -o ro,size=1m tmpfs '${ro}'`);
    try {
      for (const o of [`oci:${join(ro, 'layout')}`, `oci-archive:${join(ro, 'a.tar')}`, `docker-archive:${join(ro, 'd.tar')}`]) {
        const path = o.slice(o.indexOf(':') + 1);
        fails(['/usr/bin/ls', '-o', o], path, new RegExp(`^ocislim: cannot write ${o.replace(/[.]/g, '\\.')}(:latest)?: read-only file system$`));
      }
    } finally {
      sh(`umount '${ro}'`);
    }
    // A path under a regular file.
    writeFileSync(join(dir, 'afile'), 'x');
    fails(['/usr/bin/ls', '-o', `oci-archive:${join(dir, 'afile', 'x.tar')}`], join(dir, 'afile', 'x.tar'), /cannot write oci-archive:.*afile\/x\.tar(:latest)?: a path component is not a directory/);
  });

  it('an archive output that is an existing directory: refused, the directory and what it holds left as they were', () => {
    const d = join(dir, 'keep');
    mkdirSync(d);
    writeFileSync(join(d, 'k'), 'keep\n');
    for (const kind of ['oci-archive', 'docker-archive']) {
      const r = ocislim(['build', '/usr/bin/true', '-o', `${kind}:${d}`]);
      assert.notEqual(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`^ocislim: ${d.replace(/[.]/g, '\\.')}: exists and is a directory \\(an archive is written as a file\\)$`, 'm'));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(statSync(d).isDirectory());
      assert.deepEqual(readdirSync(d), ['k']);
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.keep.tmp-')), [], 'no temporary file left');
    }
    // A file of that name is replaced.
    const f = join(dir, 'replace.tar');
    writeFileSync(f, 'old');
    const r = ocislim(['build', '/usr/bin/true', '-o', `oci-archive:${f}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(statSync(f).size > 1024);
  });

  it('a build stopped by SIGINT or SIGTERM leaves no scratch directory, temporary blob or output behind', async () => {
    const big = join(dir, 'big.bin');
    sh(`head -c ${256 << 20} /dev/urandom > '${big}'`);
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const tmp = join(dir, `tmp-${sig}`);
      const cache = join(dir, `cache-${sig}`);
      const out = join(dir, `stopped-${sig}.tar`);
      mkdirSync(tmp);
      const child = spawn(BIN, ['build', big, '-o', `oci-archive:${out}`], { env: { ...process.env, TMPDIR: tmp, OCISLIM_CACHE: cache }, stdio: 'ignore' });
      const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
      // Stopped while the layer is being written: the scratch directory and the blob's temporary name exist then.
      const blobs = join(cache, 'blobs', 'sha256');
      for (let i = 0; i < 1500 && !(existsSync(blobs) && readdirSync(blobs).some((n) => n.startsWith('.layer-'))); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(readdirSync(tmp).length > 0 && readdirSync(blobs).some((n) => n.startsWith('.layer-')), 'the build did not get to its layer');
      child.kill(sig);
      const { code, signal } = await ended;
      assert.equal(signal, sig, `ended by ${sig} (code ${code})`);
      assert.deepEqual(readdirSync(tmp), [], 'no scratch directory left');
      assert.deepEqual(readdirSync(blobs).filter((n) => n.startsWith('.')), [], 'no temporary blob left');
      assert.deepEqual(readdirSync(dir).filter((n) => n.includes(`stopped-${sig}`)), [], 'no output, not even a temporary one');
    }
  });

  it('a build whose stderr reader goes away (EPIPE) ends with status 141 and leaves nothing behind either', async () => {
    const big = join(dir, 'big-epipe.bin');
    sh(`head -c ${256 << 20} /dev/urandom > '${big}'`);
    const tmp = join(dir, 'tmp-epipe');
    const cache = join(dir, 'cache-epipe');
    const out = join(dir, 'epipe.tar');
    mkdirSync(tmp);
    const child = spawn(BIN, ['build', big, '-o', `oci-archive:${out}`], { env: { ...process.env, TMPDIR: tmp, OCISLIM_CACHE: cache }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.resume();
    const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const blobs = join(cache, 'blobs', 'sha256');
    for (let i = 0; i < 1500 && !(existsSync(blobs) && readdirSync(blobs).some((n) => n.startsWith('.layer-'))); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(readdirSync(tmp).length > 0 && readdirSync(blobs).some((n) => n.startsWith('.layer-')), 'the build did not get to its layer');
    // The reader goes away while the layer is written: the next progress line fails with EPIPE.
    child.stderr!.destroy();
    assert.equal(await ended, 141, 'ended as a program killed by SIGPIPE would');
    assert.deepEqual(readdirSync(tmp), [], 'no scratch directory left');
    assert.deepEqual(readdirSync(blobs).filter((n) => n.startsWith('.')), [], 'no temporary blob left');
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('epipe.tar')), [], 'no output, not even a temporary one');
    rmSync(big);
  });

  it('malformed flags and references, before any work', () => {
    for (const [args, msg] of [
      [['/usr/bin/ls', '--expose', '70000', '-o', 'oci:x'], /--expose "70000" must be PORT/],
      [['/usr/bin/ls', '--env', 'NOEQUALS', '-o', 'oci:x'], /--env "NOEQUALS" must be KEY=VALUE/],
      [['/usr/bin/ls', '-o', 'tarball:x'], /-o "tarball:x" is not a local image reference/],
      [['/usr/bin/ls'], /say where the image goes/],
      [['-o', 'oci:x'], /nothing to build/],
      [['/usr/bin/ls', '--layers', '2', '-o', 'oci:x'], /--layers 2: use 1/],
      [['/usr/bin/ls', '--scaffold', 'tmp', '-o', 'oci:x'], /--scaffold tmp: use passwd, certs or tz/],
      [['/usr/bin/ls', '--no-scaffold', 'bogus', '-o', 'oci:x'], /--no-scaffold bogus: use passwd, tmp, certs, tz, locale/],
      [['/bin/busybox', '--with-idn', '-o', 'oci:x'], /--with-idn: only glibc programs load an IDN library/],
      [['/usr/bin/ls', '--platform', 'linux/arm64', '-o', 'oci:x'], /--platform linux\/arm64 does not match \/usr\/bin\/ls, which is linux\/amd64/],
    ] as [string[], RegExp][]) {
      const r = ocislim(['build', ...args], { cwd: dir });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, msg);
      assert.ok(!existsSync(join(dir, 'x')));
    }
  });
});
