import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim, ocislimAsync } from './helpers/cli.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { removeDir, run, tempDir } from './helpers/sh.js';

/** An HTTP proxy in front of the real registry that notes every request (method and path). */
function loggingProxy(port: number): Promise<{ server: Server; host: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url!.split('?')[0]}`);
    const up = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen })));
}

let dir: string;
let reg: TestRegistry;
let proxy: Awaited<ReturnType<typeof loggingProxy>>;
let a: string;
let b: string;

before(async () => {
  dir = tempDir('ocislim-shortcut-');
  reg = await startRegistry(join(dir, 'registry'));
  proxy = await loggingProxy(reg.port);
  for (const [name, extra] of [['a', []], ['b', ['--env', 'X=1']]] as [string, string[]][]) {
    const r = ocislim(['build', '/bin/busybox', ...extra, '-o', `oci:${join(dir, name)}`]);
    assert.equal(r.status, 0, r.stderr);
  }
  const digestOf = (layout: string) => JSON.parse(readFileSync(join(dir, layout, 'index.json'), 'utf8')).manifests[0].digest as string;
  a = digestOf('a');
  b = digestOf('b');
});
after(async () => {
  await new Promise((r) => proxy.server.close(r));
  await reg.stop();
  removeDir(dir);
});

async function push(layout: string, ref: string): Promise<{ stderr: string; requests: string[] }> {
  proxy.seen.length = 0;
  const r = await ocislimAsync(['push', `oci:${join(dir, layout)}`, `${proxy.host}/app:${ref}`]);
  assert.equal(r.status, 0, r.stderr);
  return { stderr: r.stderr, requests: [...proxy.seen] };
}

function tagDigest(tag: string): string {
  const r = run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app:${tag}`]);
  assert.equal(r.status, 0, r.stderr);
  return 'sha256:' + createHash('sha256').update(r.stdout).digest('hex');
}

describe('push of an image the registry already has', () => {
  it('checks the tag and sends nothing else when the tag already names the manifest', async () => {
    const first = await push('a', 't1');
    assert.ok(first.requests.some((r) => r.startsWith('PUT /v2/app/blobs/') || r.startsWith('PATCH /v2/app/blobs/')), 'the first push uploads');
    const again = await push('a', 't1');
    const blobHeads = (rs: string[]) => rs.filter((r) => r.startsWith('HEAD /v2/app/blobs/')).length;
    assert.deepEqual(again.requests.filter((r) => !r.endsWith('/v2/') && !r.startsWith('HEAD /v2/app/blobs/')), ['HEAD /v2/app/manifests/t1'], again.requests.join('\n'));
    // each blob asked for once (config + layers), none sent
    assert.equal(blobHeads(again.requests), JSON.parse(readFileSync(join(dir, 'a', 'blobs', 'sha256', a.slice(7)), 'utf8')).layers.length + 1);
    assert.match(again.stderr, /already at/);
    assert.equal(tagDigest('t1'), a);
  });

  it('a new tag, or a tag that named another image, gets one PUT and no blob request', async () => {
    const t2 = await push('a', 't2');
    assert.deepEqual(t2.requests.filter((r) => !r.endsWith('/v2/') && !r.startsWith('HEAD /v2/app/blobs/')), ['HEAD /v2/app/manifests/t2', `HEAD /v2/app/manifests/${a}`, 'PUT /v2/app/manifests/t2'], t2.requests.join('\n'));
    assert.equal(tagDigest('t2'), a);
    await push('b', 't1');
    assert.equal(tagDigest('t1'), b);
    const back = await push('a', 't1');
    assert.ok(!back.requests.some((r) => r.includes('/blobs/') && !r.startsWith('HEAD ')), back.requests.join('\n'));
    assert.equal(tagDigest('t1'), a);
  });

  it('a build --push whose layers were uploaded while compressed asks nothing of the manifest before putting it', async () => {
    for (const cache of ['cold-1', 'cold-2']) {
      // An empty cache each time: the second build finds the registry holding the image already, and puts it again.
      proxy.seen.length = 0;
      const r = await ocislimAsync(['build', '/bin/busybox', '-o', `oci:${join(dir, cache)}`, '--push', `${proxy.host}/app:built`], { env: { OCISLIM_CACHE: join(dir, cache + '-cache') } });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /uploaded while it was compressed/);
      assert.ok(!proxy.seen.some((q) => q.startsWith('HEAD /v2/app/manifests/')), proxy.seen.join('\n'));
      assert.ok(proxy.seen.includes('PUT /v2/app/manifests/built'), proxy.seen.join('\n'));
      assert.equal(tagDigest('built'), JSON.parse(readFileSync(join(dir, cache, 'index.json'), 'utf8')).manifests[0].digest);
    }
    const pulled = run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/app:built`, `oci:${join(dir, 'pulled-built')}:x`]);
    assert.equal(pulled.status, 0, pulled.stderr);
  });

  it('a manifest whose blob the registry lost (deleted through the API) is pushed again, blob included', async () => {
    const first = await push('a', 'lost');
    assert.equal(tagDigest('lost'), a);
    const m = JSON.parse(readFileSync(join(dir, 'a', 'blobs', 'sha256', a.slice(7)), 'utf8'));
    const layer = m.layers[m.layers.length - 1].digest as string;
    const del = await fetch(`http://${reg.host}/v2/app/blobs/${layer}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    assert.equal((await fetch(`http://${reg.host}/v2/app/blobs/${layer}`, { method: 'HEAD' })).status, 404);
    const again = await push('a', 'lost');
    assert.match(again.stderr, /lacks blob .*pushing the image again/);
    assert.ok(again.requests.some((r) => r.startsWith('PUT /v2/app/blobs/') || r.startsWith('PATCH /v2/app/blobs/')), again.requests.join('\n'));
    assert.equal((await fetch(`http://${reg.host}/v2/app/blobs/${layer}`, { method: 'HEAD' })).status, 200);
    const pulled = run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/app:lost`, `oci:${join(dir, 'pulled-lost')}:x`]);
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.ok(first.requests.length > 0);
  });

  it('once the registry no longer has the manifest, the blobs are checked and sent again', async () => {
    const del = await fetch(`http://${reg.host}/v2/app/manifests/${a}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const r = await push('a', 't3');
    assert.ok(r.requests.some((x) => x.startsWith('HEAD /v2/app/blobs/')), r.requests.join('\n'));
    assert.ok(r.requests.includes('PUT /v2/app/manifests/t3'));
    assert.equal(tagDigest('t3'), a);
    const pulled = run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/app:t3`, `oci:${join(dir, 'pulled')}:x`]);
    assert.equal(pulled.status, 0, pulled.stderr);
  });
});
