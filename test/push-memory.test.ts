import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN, ocislim, ocislimAsync } from './helpers/cli.js';
import { skopeo } from './helpers/container.js';
import { startProxy } from './helpers/proxy.js';
import { fileRegistry, TestRegistry } from './helpers/registry.js';
import { startMockRegistry } from './helpers/mockregistry.js';
import { rng } from './helpers/rng.js';

let dir: string;
let reg: TestRegistry;
fileRegistry('ocislim-pushmem-', (d, r) => {
  dir = d;
  reg = r;
});

function ok(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = ocislim(args, { env });
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

async function okAsync(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await ocislimAsync(args, { env });
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

describe('push memory (in the cache directory)', () => {
  it('a blob pushed to one repository is mounted into another, with no base image to say where it is', async () => {
    const cache = join(dir, 'c-mount');
    const img = join(dir, 'bb');
    ok(['build', '/bin/busybox', '--no-cache', '-o', `oci:${img}`]);
    const proxy = await startProxy(reg.port);
    try {
      await okAsync(['push', `oci:${img}`, `${proxy.host}/first:1`], { OCISLIM_CACHE: cache });
      assert.ok(proxy.bytesUp > 500_000, `first push sent ${proxy.bytesUp} bytes`);
      proxy.reset();
      // A local layout has no origin: only the memory of the first push can tell where the blobs are.
      const second = await okAsync(['push', `oci:${img}`, `${proxy.host}/second:1`], { OCISLIM_CACHE: cache });
      assert.match(second.stderr, /mounted from first/);
      assert.ok(proxy.bytesUp < 20_000, `the second push sent ${proxy.bytesUp} bytes`);
      // Without that memory (another cache), the blobs are uploaded again.
      proxy.reset();
      await okAsync(['push', `oci:${img}`, `${proxy.host}/third:1`], { OCISLIM_CACHE: join(dir, 'c-other') });
      assert.ok(proxy.bytesUp > 500_000, `a push without memory sent ${proxy.bytesUp} bytes`);
    } finally {
      await proxy.close();
    }
    const a = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/first:1`]));
    const b = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/second:1`]));
    assert.equal(b.Digest, a.Digest);
  });

  /** A layout holding one 48 MiB layer of incompressible bytes (uploaded in 16 MiB chunks). */
  let bigImage = '';
  function bigLayout(): string {
    if (bigImage) return bigImage;
    const big = join(dir, 'big.bin');
    const r = rng(11);
    const buf = Buffer.alloc(48 << 20);
    for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE(Math.floor(r() * 2 ** 32), i);
    writeFileSync(big, buf);
    bigImage = join(dir, 'big');
    ok(['build', '--copy', `${big}:/data/big.bin`, '--layers', '1', '--compression-level', '1', '--no-cache', '-o', `oci:${bigImage}`]);
    return bigImage;
  }

  /** Starts `ocislim push` and kills it (SIGKILL) once `killAfter` bytes went through the proxy. */
  async function pushKilled(src: string, dest: string, cache: string, proxy: { bytesUp: number }, killAfter: number): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'push', src, dest], { env: { ...process.env, OCISLIM_CACHE: cache }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise((res) => child.on('exit', res));
    let killed = false;
    for (let i = 0; i < 6000 && child.exitCode === null; i++) {
      if (proxy.bytesUp > killAfter) {
        child.kill('SIGKILL');
        killed = true;
        break;
      }
      await new Promise((res) => setTimeout(res, 5));
    }
    await exited;
    // What the killed process had already written to its socket still drains through the proxy: wait for it.
    for (let last = -1; last !== proxy.bytesUp; ) {
      last = proxy.bytesUp;
      await new Promise((res) => setTimeout(res, 400));
    }
    assert.ok(killed, `the push was killed mid-upload (it exited by itself: ${stderr})`);
  }

  it('a large upload cut by kill -9 resumes in the next process where the registry stands (only the missing bytes)', async () => {
    // distribution 2.8 cancels a session whose PATCH broke (checked by hand: GET on it answers 404), so the resume
    // needs a registry that keeps what arrived, as write-through registries do: the mock, with the real client.
    const img = bigLayout();
    const cache = join(dir, 'c-resume');
    const mock = await startMockRegistry({ keepBrokenPatch: true, location: 'relative' });
    const proxy = await startProxy(Number(mock.host.split(':')[1]));
    try {
      await pushKilled(`oci:${img}`, `${proxy.host}/big:1`, cache, proxy, 24 << 20);
      proxy.reset();
      const resumed = await okAsync(['push', `oci:${img}`, `${proxy.host}/big:1`], { OCISLIM_CACHE: cache });
      const m = /resuming an earlier upload at byte (\d+) of (\d+)/.exec(resumed.stderr);
      assert.ok(m, resumed.stderr);
      const [at, size] = [Number(m[1]), Number(m[2])];
      assert.ok(at >= 16 << 20, `resumed at ${at}`);
      assert.ok(proxy.bytesUp < size - at + (1 << 20), `the second push sent ${proxy.bytesUp} bytes for the ${size - at} missing`);
      const layer = JSON.parse(skopeo(['inspect', `oci:${img}:latest`])).Layers[0] as string;
      assert.equal(mock.blobs.get(layer)?.length, size, 'the registry verified and stored the whole blob');
    } finally {
      await proxy.close();
      await mock.close();
    }
  });

  it('with the real registry, a push after a killed one finishes correctly (a new session when the old one is gone)', async () => {
    const img = bigLayout();
    const cache = join(dir, 'c-real');
    const proxy = await startProxy(reg.port);
    try {
      await pushKilled(`oci:${img}`, `${proxy.host}/big:1`, cache, proxy, 24 << 20);
      const again = await okAsync(['push', `oci:${img}`, `${proxy.host}/big:1`], { OCISLIM_CACHE: cache });
      assert.match(again.stderr, /resuming an earlier upload|no longer has the earlier upload session/);
    } finally {
      await proxy.close();
    }
    // skopeo verifies every digest while copying the image out.
    skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/big:1`, `oci:${join(dir, 'big-copy')}:latest`]);
    const local = JSON.parse(skopeo(['inspect', `oci:${img}:latest`]));
    const remote = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/big:1`]));
    assert.deepEqual(remote.Layers, local.Layers);
  });
});
