import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, ocislim } from './helpers/cli.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

const MiB = 1 << 20;

describe('progress from the real CLI', () => {
  let dir: string;
  let reg: TestRegistry;
  before(async () => {
    dir = tempDir('ocislim-progress-');
    reg = await startRegistry(join(dir, 'registry'));
    // More than the read-ahead takes (preread.ts, 32 MiB): the layer writer reads and compresses it while the bars
    // run. A smaller file, once settled, is read and deflated ahead, and its layer is then written in a moment: no
    // bar but 0% and 100% on a loaded machine.
    writeFileSync(join(dir, 'big.bin'), randomBytes(40 * MiB));
  });
  after(async () => {
    await reg.stop();
    removeDir(dir);
  });
  // --no-cache: the layer cache would serve the second build's layers without compressing anything.
  // Each test puts the file at its own path: its layer is new to the registry, so it is uploaded (not mounted).
  const big = (at = 'big.bin') => ['--copy', `${join(dir, 'big.bin')}:/data/${at}`, '--compression-level', '1', '--no-cache'];

  it('in a log (no terminal): compression and upload lines, no escape codes', () => {
    const r = ocislim(['build', '/bin/busybox', ...big(), '-o', `oci:${join(dir, 'plain')}`, '--push', `${reg.host}/progress-plain:1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^ocislim: layer the application \(\d+ files\): 4\d\.\d MiB$/m);
    assert.ok((r.stderr.match(/^ocislim: layer the application \(\d+ files\): \d+% of 4\d\.\d MiB, [\d.]+ [KM]iB\/s/gm) ?? []).length >= 5, r.stderr);
    assert.match(r.stderr, /^ocislim: layer the application \(\d+ files\): compressed, 4\d\.\d MiB in [\d.]+ s \([\d.]+ [KM]iB\/s\)$/m);
    // build --push uploads the layer while it is compressed: the compression lines stand for it
    assert.match(r.stderr, /^ocislim: [0-9a-f]{12}: uploaded while it was compressed$/m);
    assert.doesNotMatch(r.stderr, /\x1b/);
    // a push of the layout to another repository uploads the finished blobs, with their own lines
    // (a cache of its own: the push memory would mount the blobs from the first repository instead)
    const u = ocislim(['push', `oci:${join(dir, 'plain')}`, `${reg.host}/progress-upload:1`], { env: { OCISLIM_CACHE: join(dir, 'push-cache') } });
    assert.equal(u.status, 0, u.stderr);
    assert.match(u.stderr, /^ocislim: upload [0-9a-f]{12}: done, 4\d\.\d MiB in [\d.]+ s/m);
    assert.doesNotMatch(u.stderr, /\x1b/);
    const p = ocislim(['pull', `${reg.host}/progress-plain:1`, '-o', `oci:${join(dir, 'pulled')}`]);
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stderr, /^ocislim: download [0-9a-f]{12}: 4\d\.\d MiB$/m);
    assert.match(p.stderr, /^ocislim: download [0-9a-f]{12}: done, 4\d\.\d MiB in [\d.]+ s/m);
  });

  it('on a terminal (script): bars with rate and ETA, for compression and for upload', () => {
    const tty = sh(`script -qec "stty cols 200; node ${BIN} build /bin/busybox ${big('tty.bin').join(' ')} --push ${reg.host}/progress-tty:1" /dev/null`);
    assert.match(tty, /\x1b\[2Klayer the application \(\d+ files\) \[[#-]{12}\] +\d+% [\d.]+ (B|KiB|MiB) \/ 4\d\.\d MiB, [\d.]+ (B|KiB|MiB)\/s, ETA [\d.]+ s/);
    assert.match(tty, /\x1b\[2Kupload [0-9a-f]{12} \[[#-]{12}\] +\d+% [\d.]+ (B|KiB|MiB) \/ [\d.]+ (B|KiB|MiB), [\d.]+ (B|KiB|MiB)\/s/);
    assert.match(tty, /ocislim: upload [0-9a-f]{12}: done/);
  });

  it('--quiet silences notes and progress, in a log and on a terminal', () => {
    const r = ocislim(['build', '-q', '/bin/busybox', ...big(), '-o', `oci:${join(dir, 'quiet')}`, '--push', `${reg.host}/progress:quiet`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^127\.0\.0\.1:\d+\/progress@sha256:[0-9a-f]{64}\n$/);
    const p = ocislim(['push', '--quiet', `oci:${join(dir, 'quiet')}`, `${reg.host}/progress:quiet2`]);
    assert.equal(p.stderr, '');
    const tty = sh(`script -qec "node ${BIN} push --quiet oci:${join(dir, 'quiet')} ${reg.host}/progress:quiet3" /dev/null`);
    assert.doesNotMatch(tty, /\x1b|ocislim:/);
  });
});
