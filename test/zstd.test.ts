import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { runcRun, skopeo, umociUnpack } from './helpers/container.js';
import { startRegistry } from './helpers/registry.js';
import { removeDir, run, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-zstd-');
});
after(() => removeDir(dir));

function ok(args: string[]) {
  const r = ocislim(args);
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

describe('--compression zstd', () => {
  it('writes tar+zstd layers that podman reads (diff_ids checked), whose saved image runs under runc; same digest every time', () => {
    const archive = join(dir, 'redis-zstd.tar');
    const built = JSON.parse(ok(['build', '/usr/bin/redis-server', '--compression', 'zstd', '--cmd', '["--version"]', '-o', `oci-archive:${archive}:ocislim/zstd:1`, '--json']).stdout) as {
      digest: string;
      layers: { digest: string; diffId: string }[];
    };
    const again = JSON.parse(ok(['build', '/usr/bin/redis-server', '--compression', 'zstd', '--cmd', '["--version"]', '-o', `oci:${join(dir, 'again')}`, '--json', '--no-cache']).stdout);
    assert.equal(again.digest, built.digest, 'zstd output is reproducible (and the same with and without the cache)');
    const raw = JSON.parse(skopeo(['inspect', '--raw', `oci-archive:${archive}`]));
    assert.deepEqual(
      raw.layers.map((l: { mediaType: string }) => l.mediaType),
      built.layers.map(() => ZSTD),
    );
    // A gzip build of the same files has the same diff_ids (same tar), other blobs.
    const gz = JSON.parse(ok(['build', '/usr/bin/redis-server', '--cmd', '["--version"]', '-o', `oci:${join(dir, 'gz')}`, '--json']).stdout);
    assert.deepEqual(gz.layers.map((l: { diffId: string }) => l.diffId), built.layers.map((l) => l.diffId));
    assert.notDeepEqual(gz.layers.map((l: { digest: string }) => l.digest), built.layers.map((l) => l.digest));

    // podman decompresses each layer and checks it against the config's diff_ids while loading.
    const store = join(dir, 'podman');
    const podman = (args: string[]) => {
      const r = run('podman', ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', ...args]);
      assert.equal(r.status, 0, `podman ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    assert.match(podman(['load', '-i', archive]), /Loaded image: (localhost\/)?ocislim\/zstd:1/);
    const [img] = JSON.parse(podman(['image', 'inspect', 'ocislim/zstd:1'])) as { RootFS: { Layers: string[] } }[];
    assert.deepEqual(img.RootFS.Layers, built.layers.map((l) => l.diffId));
    const saved = join(dir, 'saved');
    podman(['save', '--format', 'oci-dir', '-o', saved, 'ocislim/zstd:1']);
    const name = JSON.parse(readFileSync(join(saved, 'index.json'), 'utf8')).manifests[0].annotations['org.opencontainers.image.ref.name'];
    umociUnpack(`${saved}:${name}`, join(dir, 'bundle'));
    const r = runcRun(join(dir, 'bundle'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Redis server v=/);

    // Our own readers decompress it too: inspect lists the files.
    assert.match(ok(['inspect', '--files', `oci-archive:${archive}`]).stdout, /\/lib\/x86_64-linux-gnu\/libc\.so\.6/);
  });

  it('pushes to the real registry and back (skopeo verifies the blobs); umoci 0.4.7 refuses the media type', async () => {
    const reg = await startRegistry(join(dir, 'registry'));
    try {
      const layout = join(dir, 'bb');
      ok(['build', '/bin/busybox', '--compression', 'zstd', '--compression-level', '19', '-o', `oci:${layout}`]);
      ok(['push', `oci:${layout}`, `${reg.host}/zstd:1`]);
      skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/zstd:1`, `oci:${join(dir, 'back')}:latest`]);
      const raw = JSON.parse(skopeo(['inspect', '--raw', `oci:${join(dir, 'back')}:latest`]));
      assert.ok(raw.layers.every((l: { mediaType: string }) => l.mediaType === ZSTD));
      // Debian 12's umoci predates zstd: a reader without it says so instead of misreading.
      const u = run('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, join(dir, 'umoci-bundle')]);
      assert.notEqual(u.status, 0);
      assert.match(u.stderr, /tar\+zstd/);
    } finally {
      await reg.stop();
    }
  });

  it('the level is applied: level 19 is smaller than level 1', () => {
    const size = (level: string) =>
      (JSON.parse(ok(['build', '/bin/busybox', '--compression', 'zstd', '--compression-level', level, '--no-cache', '-o', `oci:${join(dir, `lvl${level}`)}`, '--json']).stdout) as { layers: { size: number }[] }).layers.reduce(
        (n, l) => n + l.size,
        0,
      );
    const [fast, small] = [size('1'), size('19')];
    assert.ok(small < fast * 0.95, `level 19: ${small} bytes, level 1: ${fast}`);
  });

  it('bad combinations are one-line errors', () => {
    const docker = ocislim(['build', '/bin/busybox', '--compression', 'zstd', '--format', 'docker', '-o', `oci:${join(dir, 'x')}`]);
    assert.notEqual(docker.status, 0);
    assert.match(docker.stderr, /^ocislim: --compression zstd needs --format oci/);
    assert.equal(docker.stderr.trim().split('\n').length, 1);
    const level = ocislim(['build', '/bin/busybox', '--compression', 'zstd', '--compression-level', '22', '-o', `oci:${join(dir, 'x')}`]);
    assert.notEqual(level.status, 0);
    assert.match(level.stderr, /zstd level from 1/);
  });
});
