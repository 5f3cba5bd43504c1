import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../src/registry/client.js';
import { anonymous } from '../src/registry/keychain.js';
import { ClientPool } from '../src/registry/pool.js';
import { ocislim, ocislimAsync } from './helpers/cli.js';
import { runcRun, skopeo, umociUnpack } from './helpers/container.js';
import { startProxy } from './helpers/proxy.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

let dir: string;
let reg: TestRegistry;
before(async () => {
  dir = tempDir('ocislim-push-');
  reg = await startRegistry(join(dir, 'registry'));
  writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void){puts("hello from the top layer");return 0;}\n');
  sh('musl-gcc -o hello hello.c', dir);
});
after(async () => {
  await reg.stop();
  removeDir(dir);
});

async function okAsync(args: string[]) {
  const r = await ocislimAsync(args);
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

function ok(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const r = ocislim(args, { env: opts.env, timeout: 300000 });
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

const tagsOf = (ref: string) => JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]));

describe('push to the real docker-registry on loopback', () => {
  it('build --push prints REF@digest; skopeo reads and copies it; pulled back byte for byte', () => {
    const layout = join(dir, 'local');
    const r = ok(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${layout}`, '--push', `${reg.host}/redis:slim`, '--tag', 'v1']);
    const digest = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest;
    assert.equal(r.stdout, `${reg.host}/redis@${digest}\n`);
    for (const t of ['slim', 'v1']) assert.equal(tagsOf(`${reg.host}/redis:${t}`).Digest, digest);
    skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/redis:slim`, `oci:${join(dir, 'skopeo-copy')}:x`]);
    const p = ok(['pull', `${reg.host}/redis:slim`, '-o', `oci:${join(dir, 'pulled')}`]);
    assert.equal(p.stdout.trim(), digest);
    const blobs = (d: string) => readdirSync(join(d, 'blobs/sha256')).sort();
    assert.deepEqual(blobs(join(dir, 'pulled')), blobs(layout));
    for (const b of blobs(layout)) assert.ok(readFileSync(join(dir, 'pulled/blobs/sha256', b)).equals(readFileSync(join(layout, 'blobs/sha256', b))), b);
  });

  it('build --push uploads each layer while it is compressed (every byte crosses once); a stream cut short falls back to the usual upload', async () => {
    const blobs = (d: string) => readdirSync(join(d, 'blobs/sha256')).sort();
    const samePulled = (layout: string, pulled: string) => {
      assert.deepEqual(blobs(pulled), blobs(layout));
      for (const b of blobs(layout)) assert.ok(readFileSync(join(pulled, 'blobs/sha256', b)).equals(readFileSync(join(layout, 'blobs/sha256', b))), b);
    };
    const proxy = await startProxy(reg.port);
    const layout = join(dir, 'stream-local');
    try {
      // An empty cache: every layer is compressed now.
      const r = await ocislimAsync(['build', '/usr/bin/redis-server', '--label', 'stream=1', '-o', `oci:${layout}`, '--push', `${proxy.host}/stream:1`], { env: { OCISLIM_CACHE: join(dir, 'stream-cache-1') } });
      assert.equal(r.status, 0, r.stderr);
      assert.equal((r.stderr.match(/^ocislim: [0-9a-f]{12}: uploaded while it was compressed$/gm) ?? []).length, 3, r.stderr);
      assert.match(r.stderr, /pushed .*stream:1: 4 uploaded, 0 mounted, 0 already there/);
      const total = blobs(layout).reduce((n, b) => n + readFileSync(join(layout, 'blobs/sha256', b)).length, 0);
      assert.ok(proxy.bytesUp < total + 100_000, `${proxy.bytesUp} bytes up for ${total} bytes of blobs`);
    } finally {
      await proxy.close();
    }
    // What the registry holds is the image, byte for byte (pull verifies every digest).
    ok(['pull', `${reg.host}/stream:1`, '-o', `oci:${join(dir, 'stream-pulled')}`]);
    samePulled(layout, join(dir, 'stream-pulled'));
    // The first connections that carry more than 300 kB are cut: the streamed uploads break, and the usual upload
    // of the finished blob (with its retries) takes over.
    const cutting = await startProxy(reg.port, { cutRate: 1, cutAfterBytes: 300_000, maxFaults: 3, seed: 11 });
    const layout2 = join(dir, 'stream-local-2');
    try {
      const r = await ocislimAsync(['build', '/usr/bin/redis-server', '--label', 'stream=2', '-o', `oci:${layout2}`, '--push', `${cutting.host}/streamcut:1`], { env: { OCISLIM_CACHE: join(dir, 'stream-cache-2') } });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(cutting.faults > 0, 'connections were cut');
      assert.ok((r.stderr.match(/uploaded while it was compressed/g) ?? []).length < 3, r.stderr);
      assert.match(r.stderr, /pushed .*streamcut:1: 4 uploaded/);
    } finally {
      await cutting.close();
    }
    ok(['pull', `${reg.host}/streamcut:1`, '-o', `oci:${join(dir, 'stream-pulled-2')}`]);
    samePulled(layout2, join(dir, 'stream-pulled-2'));
  });

  it('a registry client whose first call is an upload or a mount pings the registry first (none needs an earlier call)', async () => {
    const blob = Buffer.from('the first call of its client\n');
    const d = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`, size: blob.length };
    // Each call below is the first of a new client: the build's push may start before anything else asked.
    const firstCall = async <T>(fn: (c: RegistryClient) => Promise<T>): Promise<T> => {
      const pool = new ClientPool({ keychain: anonymous });
      try {
        return await fn(pool.get(reg.host));
      } finally {
        await pool.close();
      }
    };
    await firstCall((c) => c.uploadBlob('first/a', d, () => Readable.from([blob])));
    assert.equal(await firstCall((c) => c.mountBlob('first/b', d.digest, 'first/a')), true, 'mounted');
    assert.equal(await firstCall((c) => c.blobSize('first/b', d.digest, true)), blob.length);
  });

  it('progress bars on a terminal, plain lines otherwise', () => {
    const img = join(dir, 'tty.tar');
    ok(['build', '/bin/busybox', '--label', 'tty=1', '-o', `oci-archive:${img}`]);
    const bin = join(process.cwd(), 'bin/ocislim.js');
    const tty = sh(`script -qec "stty cols 200; node ${bin} push oci-archive:${img} ${reg.host}/tty:1" /dev/null`);
    assert.match(tty, /upload [0-9a-f]{12} \[[#-]{12}\] +\d+% [\d.]+ (B|KiB|MiB) \/ [\d.]+ (B|KiB|MiB), [\d.]+ (B|KiB|MiB)\/s/);
    assert.match(tty, /ocislim: upload [0-9a-f]{12}: done, /);
    const plain = ok(['push', `oci-archive:${img}`, `${reg.host}/tty:2`]);
    assert.doesNotMatch(plain.stderr, /\x1b\[/);
    // The registry has the manifest already (pushed as tty:1): only the new tag is put.
    assert.match(plain.stderr, /^ocislim: manifest sha256:[0-9a-f]{64} \(already in tty\) -> [^ ]+\/tty:2$/m);
  });

  it('a second push uploads no blob; a push to another repository mounts instead of uploading', async () => {
    const proxy = await startProxy(reg.port);
    try {
      const img = join(dir, 'img.tar');
      ok(['build', '/usr/bin/redis-server', '-o', `oci-archive:${img}`]);
      await okAsync(['push', `oci-archive:${img}`, `${proxy.host}/again:1`]);
      const first = proxy.bytesUp;
      assert.ok(first > 5_000_000, `first push sent ${first} bytes`);
      proxy.reset();
      await okAsync(['push', `oci-archive:${img}`, `${proxy.host}/again:1`]);
      assert.ok(proxy.bytesUp < 20_000, `second push sent ${proxy.bytesUp} bytes`);
      proxy.reset();
      const m = await okAsync(['push', `${proxy.host}/again:1`, `${proxy.host}/other:1`]);
      assert.match(m.stderr, /mounted from again/);
      assert.ok(proxy.bytesUp < 20_000, `mounting push sent ${proxy.bytesUp} bytes`);
      assert.equal(tagsOf(`${reg.host}/other:1`).Digest, tagsOf(`${reg.host}/again:1`).Digest);
    } finally {
      await proxy.close();
    }
  });

  it('--from a busybox image in the registry: our binary on top, base layer mounted, runs under runc', () => {
    ok(['build', '/bin/busybox', '--push', `${reg.host}/busybox:1`]);
    const r = ok(['build', join(dir, 'hello'), '--from', `${reg.host}/busybox:1`, '--push', `${reg.host}/hello:1`]);
    assert.match(r.stderr, /mounted from busybox/);
    const cfg = JSON.parse(skopeo(['inspect', '--tls-verify=false', '--config', `docker://${reg.host}/hello:1`]));
    const baseLayers = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/busybox:1`])).Layers.length;
    assert.equal(cfg.rootfs.diff_ids.length, baseLayers + 2, 'busybox layers + loader/libc + application');
    assert.deepEqual(cfg.config.Entrypoint, [join(dir, 'hello')]);
    const raw = JSON.parse(skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/hello:1`]));
    assert.equal(raw.annotations['org.opencontainers.image.base.name'], `${reg.host}/busybox:1`);
    skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/hello:1`, `oci:${join(dir, 'hello-oci')}:latest`]);
    umociUnpack(`${join(dir, 'hello-oci')}:latest`, join(dir, 'hello-bundle'));
    assert.equal(runcRun(join(dir, 'hello-bundle')).stdout, 'hello from the top layer\n');
    const bb = runcRun(join(dir, 'hello-bundle'), ['/bin/busybox', 'echo', 'base layer here']);
    assert.equal(bb.stdout, 'base layer here\n', bb.stderr);
    // The run check sees the base's files: an entrypoint that is in neither fails the build.
    const missing = ocislim(['build', join(dir, 'hello'), '--from', `${reg.host}/busybox:1`, '--entrypoint', '/usr/bin/redis-server', '-o', `oci:${join(dir, 'never')}`]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /entrypoint \/usr\/bin\/redis-server is not in the image/);
    // The same with an air-gapped base: a local layout.
    ok(['pull', `${reg.host}/busybox:1`, '-o', `oci:${join(dir, 'bb-local')}`]);
    ok(['build', join(dir, 'hello'), '--from', `oci:${join(dir, 'bb-local')}`, '-o', `oci:${join(dir, 'hello-airgap')}`]);
    umociUnpack(`${join(dir, 'hello-airgap')}:latest`, join(dir, 'airgap-bundle'));
    assert.equal(runcRun(join(dir, 'airgap-bundle'), ['/bin/busybox', 'true']).status, 0);
  });

  it('pull resumes a broken download with a Range request instead of starting the blob again', async () => {
    const layout = join(dir, 'resume-src');
    ok(['build', '/usr/bin/redis-server', '--label', 'resume=1', '-o', `oci:${layout}`, '--push', `${reg.host}/resume:1`]);
    const total = readdirSync(join(layout, 'blobs/sha256')).reduce((n, b) => n + readFileSync(join(layout, 'blobs/sha256', b)).length, 0);
    // The first three connections break after 1.5 MB each: the 5 MB layer needs all of them.
    const cutting = await startProxy(reg.port, { cutDownRate: 1, cutDownAfterBytes: 1_500_000, maxFaults: 3, seed: 5 });
    try {
      const r = await okAsync(['pull', `${cutting.host}/resume:1`, '-o', `oci:${join(dir, 'resumed')}`]);
      assert.equal(cutting.faults, 3);
      assert.match(r.stderr, /resuming the download at byte \d+/);
      // Restarting each broken blob would have cost up to 1.5 MB per break; resuming costs (almost) nothing.
      assert.ok(cutting.bytesDown < total + 200_000, `${cutting.bytesDown} bytes down for ${total} bytes of blobs`);
    } finally {
      await cutting.close();
    }
    const blobs = (d: string) => readdirSync(join(d, 'blobs/sha256')).sort();
    assert.deepEqual(blobs(join(dir, 'resumed')), blobs(layout));
    for (const b of blobs(layout)) assert.ok(readFileSync(join(dir, 'resumed/blobs/sha256', b)).equals(readFileSync(join(layout, 'blobs/sha256', b))), b);
  });

  it('survives a proxy that drops and cuts connections; fails clearly beyond the retry budget, never leaving a dangling manifest', async () => {
    const img = join(dir, 'fault.tar');
    ok(['build', '/usr/bin/redis-server', '--label', 'fault=1', '-o', `oci-archive:${img}`]);
    const flaky = await startProxy(reg.port, { dropRate: 0.25, cutRate: 0.25, cutAfterBytes: 200_000, maxFaults: 6, seed: 7 });
    try {
      await okAsync(['push', `oci-archive:${img}`, `${flaky.host}/flaky:1`]);
      assert.ok(flaky.faults > 0, 'faults were injected');
    } finally {
      await flaky.close();
    }
    skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/flaky:1`, `oci:${join(dir, 'flaky-copy')}:x`]);

    const broken = await startProxy(reg.port, { cutRate: 1, cutAfterBytes: 100_000, seed: 3 });
    try {
      const r = await ocislimAsync(['push', `oci-archive:${img}`, `${broken.host}/broken:1`]);
      assert.notEqual(r.status, 0);
      const lines = r.stderr.split('\n').filter((l) => l && !/^ocislim: (retry|[0-9a-f]{12}:|upload [0-9a-f]{12}:)/.test(l));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^ocislim: push .*broken:1: .*(ECONNRESET|UND_ERR_SOCKET|other side closed|socket).*after \d+ attempts/i);
    } finally {
      await broken.close();
    }
    const tag = ocislim(['pull', `${reg.host}/broken:1`, '-o', `oci:${join(dir, 'nothing')}`]);
    assert.notEqual(tag.status, 0, 'no manifest was pushed');
    assert.match(tag.stderr, /not found/);
  });
});
