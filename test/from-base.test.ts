import assert from 'node:assert/strict';
import { copyFileSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { runcRun, umociUnpack } from './helpers/container.js';
import { removeDir, run, tempDir } from './helpers/sh.js';

let dir: string;

/** A merged-/usr base (as Debian 12's images are) made with the real umoci: /bin, /lib, /lib64, /sbin link into /usr. */
function mergedUsrBase(layout: string): void {
  const must = (cmd: string, args: string[]) => {
    const r = run(cmd, args);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  must('umoci', ['init', '--layout', layout]);
  must('umoci', ['new', '--image', `${layout}:base`]);
  const bundle = join(dir, 'base-bundle');
  must('umoci', ['unpack', '--image', `${layout}:base`, bundle]);
  const r = join(bundle, 'rootfs');
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib/x86_64-linux-gnu', 'usr/lib64', 'etc']) mkdirSync(join(r, d), { recursive: true });
  for (const l of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${l}`, join(r, l));
  copyFileSync('/bin/busybox', join(r, 'usr/bin/busybox'));
  writeFileSync(join(r, 'usr/lib/base-marker'), 'from the base\n');
  must('umoci', ['repack', '--image', `${layout}:base`, bundle]);
}

before(() => {
  dir = tempDir('ocislim-from-base-');
  mergedUsrBase(join(dir, 'base'));
});
after(() => removeDir(dir));

describe('--from a merged-/usr base', () => {
  it("keeps the base's /lib -> usr/lib links: the program's libraries go through them, the base's files stay reachable", () => {
    const out = join(dir, 'out');
    const b = ocislim(['build', '/usr/bin/redis-server', '--from', `oci:${join(dir, 'base')}:base`, '-o', `oci:${out}:redis`]);
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stderr, /placed through symbolic links of oci:/);
    const bundle = join(dir, 'bundle');
    rmSync(bundle, { recursive: true, force: true });
    umociUnpack(`${out}:redis`, bundle);
    const root = join(bundle, 'rootfs');
    for (const l of ['lib', 'lib64', 'bin']) {
      assert.ok(lstatSync(join(root, l)).isSymbolicLink(), `/${l} is still the base's link`);
      assert.equal(readlinkSync(join(root, l)), `usr/${l}`);
    }
    assert.ok(lstatSync(join(root, 'usr/lib/x86_64-linux-gnu/libc.so.6')).isFile());
    const r = runcRun(bundle, ['/bin/busybox', 'sh', '-c', 'cat /lib/base-marker && /usr/bin/redis-server --version']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^from the base\nRedis server v=/);
  });
});
