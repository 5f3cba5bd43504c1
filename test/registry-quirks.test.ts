import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislimAsync } from './helpers/cli.js';
import { Quirks, startBlobStore, startMockRegistry } from './helpers/mockregistry.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

let dir: string;
let small: string;
let large: string;
before(() => {
  dir = tempDir('ocislim-quirks-');
  small = join(dir, 'small.tar');
  large = join(dir, 'large.tar');
  const bin = join(process.cwd(), 'bin/ocislim.js');
  sh(`node ${bin} build /bin/busybox -o oci-archive:${small} 2>/dev/null`);
  // A layer over 4 MiB, for the chunk-size quirk.
  sh(`head -c 6000000 /dev/urandom > ${dir}/random.bin && node ${bin} build ${dir}/random.bin -o oci-archive:${large} 2>/dev/null`);
});
after(() => removeDir(dir));

/** Pushes `image` to a mock with the given quirks; returns the result and the mock for inspection. */
async function pushTo(quirks: Quirks, image = small, extra: string[] = [], input?: string) {
  const mock = await startMockRegistry(quirks);
  try {
    const r = await ocislimAsync(['push', `oci-archive:${image}`, `${mock.host}/q/img:1`, ...extra], { input, env: { DOCKER_CONFIG: join(dir, 'none') } });
    return { r, mock };
  } finally {
    await mock.close();
  }
}

function pushed(res: { r: { status: number | null; stderr: string; stdout: string }; mock: { manifests: Map<string, unknown>; blobs: Map<string, Buffer> } }) {
  assert.equal(res.r.status, 0, res.r.stderr);
  const digest = res.r.stdout.trim().split('@')[1];
  assert.ok(res.mock.manifests.has(`q/img:${digest}`), 'the manifest is stored under its digest');
  assert.ok(res.mock.manifests.has('q/img:1'));
}

describe('registry quirks, against a mock registry', () => {
  it('PATCH answering 201 (ECR)', async () => pushed(await pushTo({ patch201: true })));

  it('a small blob sent whole in its PUT whose connection breaks: sent again in a new session (the broken one is dropped)', async () => {
    const res = await pushTo({ resetFirstPut: true });
    pushed(res);
    const posts = res.mock.requests.filter((q) => q.method === 'POST').length;
    const puts = res.mock.requests.filter((q) => q.method === 'PUT' && q.digest).length;
    assert.ok(puts >= 3 && posts >= 3, `${posts} sessions, ${puts} blob PUTs: the broken one, then again in a session of its own`);
  });

  it('build --push: the config goes up in one PUT, unasked, while the layers sent during compression still commit; the manifest waits for them', async () => {
    // The registry takes 2 s to answer each commit of a layer uploaded while it was compressed.
    const mock = await startMockRegistry({ holdEmptyCommitsMs: 2000 });
    try {
      const r = await ocislimAsync(['build', '/bin/busybox', '--push', `${mock.host}/q/built:1`], { env: { DOCKER_CONFIG: join(dir, 'none'), OCISLIM_CACHE: join(dir, 'cache-held') } });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /uploaded while it was compressed/);
      const digest = r.stdout.trim().split('@')[1];
      const manifest = JSON.parse(mock.manifests.get(`q/built:${digest}`)!.body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
      const config = manifest.config.digest;
      const q = mock.requests;
      assert.ok(!q.some((x) => x.method === 'HEAD' && x.path.endsWith(config)), 'the config was sent without a HEAD first');
      const put = q.find((x) => x.method === 'PUT' && x.digest === config)!;
      assert.ok(put, 'the config was uploaded');
      assert.ok(!q.some((x) => x.method === 'PATCH' && x.path === put.path), 'the config went in the PUT, with no PATCH in its session');
      const layersCommitted = Math.max(...manifest.layers.map((l) => mock.committed.get(l.digest)!));
      assert.ok(put.at < layersCommitted, `the config was sent ${(put.at - layersCommitted).toFixed(0)} ms after the layers' commits were answered, not while they were held`);
      const manifestPut = q.find((x) => x.method === 'PUT' && x.path.includes('/manifests/'))!;
      assert.ok(manifestPut.at >= layersCommitted, 'the manifest was put after every layer was committed');
    } finally {
      await mock.close();
    }
  });

  it('relative and absolute Location headers (with a _state query that changes)', async () => {
    pushed(await pushTo({ location: 'relative' }));
    pushed(await pushTo({ location: 'absolute' }));
  });

  it('an upload Location on another host: followed, without the credentials', async () => {
    const res = await pushTo({ location: 'other', basicAuth: { user: 'u', password: 'p4ss' } }, small, ['-u', 'u', '--password-stdin'], 'p4ss');
    pushed(res);
    const other = res.mock.requests.filter((q) => q.other);
    assert.ok(other.length >= 2, 'PATCH and PUT went to the other host');
    assert.ok(other.every((q) => !q.auth), 'no Authorization header to the other host');
  });

  it('416 above a chunk size (GHCR): falls back to chunked PATCHes with Content-Range', async () => {
    const res = await pushTo({ maxChunk: 4 * 1024 * 1024 }, large);
    pushed(res);
    // The 6 MB layer: its whole-blob PATCH refused, then a 4 MiB chunk, the rest in the PUT (the config, a few
    // hundred bytes, goes in its PUT with no PATCH).
    const patches = res.mock.requests.filter((q) => q.method === 'PATCH').length;
    assert.ok(patches >= 2, `${patches} PATCH requests: one refused, then chunks`);
  });

  it('401 without a challenge except on /v2/ (GCR): the ping challenge is used', async () => {
    pushed(await pushTo({ basicAuth: { user: 'u', password: 'p4ss', challengeOnlyOnPing: true } }, small, ['-u', 'u', '--password-stdin'], 'p4ss'));
  });

  it('429 with Retry-After in seconds and as an HTTP date', async () => {
    const t0 = Date.now();
    pushed(await pushTo({ rateLimit: { count: 2, retryAfter: '1' } }));
    assert.ok(Date.now() - t0 >= 1000, 'waited as Retry-After asked');
    pushed(await pushTo({ rateLimit: { count: 1, retryAfter: new Date(Date.now() + 1500).toUTCString() } }));
  });

  it('a burst of 503s, and a connection reset mid-upload', async () => {
    pushed(await pushTo({ burst5xx: 3 }));
    pushed(await pushTo({ resetFirstPatch: true }, large));
  });

  it('a registry refusing OCI manifests (OpenShift, old Quay, ECR): the same blobs pushed under a Docker schema 2 manifest', async () => {
    for (const how of ['MANIFEST_INVALID', 'TAG_INVALID', 'ecr'] as const) {
      const res = await pushTo({ refuseOci: how });
      pushed(res);
      assert.match(res.r.stderr, /refused the OCI manifest .*; pushing it as Docker schema 2/, how);
      const stored = res.mock.manifests.get('q/img:1') as { body: Buffer; type: string };
      assert.equal(stored.type, 'application/vnd.docker.distribution.manifest.v2+json', how);
      const doc = JSON.parse(stored.body.toString('utf8'));
      assert.equal(doc.config.mediaType, 'application/vnd.docker.container.image.v1+json');
      assert.ok(doc.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
      assert.equal(res.mock.requests.filter((q) => q.method === 'POST').length, doc.layers.length + 1, `${how}: every blob uploaded once`);
    }
  });

  it('Warning headers (299): each text shown once, nothing else changes', async () => {
    const res = await pushTo({ warnings: ['299 - "this registry will be read-only on Monday"', '299 - "use registry2.example"'] });
    pushed(res);
    const lines = res.r.stderr.split('\n');
    assert.equal(lines.filter((l) => l.includes('this registry will be read-only on Monday')).length, 1, res.r.stderr);
    assert.equal(lines.filter((l) => l.includes('use registry2.example')).length, 1);
    assert.match(res.r.stderr, /warning: 127\.0\.0\.1:\d+ says: this registry will be read-only on Monday/);
  });

  it("response headers over Node's limit (16 KiB) fail the push in one line; --max-http-header-size in NODE_OPTIONS raises it", async () => {
    const big = { warnings: [`299 - "${'x'.repeat(20_000)}"`] };
    const refused = await pushTo(big);
    assert.notEqual(refused.r.status, 0);
    assert.equal(refused.r.stderr.trim().split('\n').length, 1, refused.r.stderr);
    assert.match(refused.r.stderr, /: its answer to GET http:\/\/127\.0\.0\.1:\d+\/v2\/: response headers over Node's limit for them \(UND_ERR_HEADERS_OVERFLOW\); Node's --max-http-header-size \(in NODE_OPTIONS\) raises it\n$/);
    const mock = await startMockRegistry(big);
    try {
      const r = await ocislimAsync(['push', `oci-archive:${small}`, `${mock.host}/q/img:1`], { env: { DOCKER_CONFIG: join(dir, 'none'), NODE_OPTIONS: '--max-http-header-size=65536' } });
      pushed({ r, mock });
    } finally {
      await mock.close();
    }
  });

  it('a PATCH cut mid-body: resumed where the session stands (GET status: 204, Range), only the rest sent with Content-Range', async () => {
    const res = await pushTo({ cutFirstPatchKeeping: 3_000_000 }, large);
    pushed(res);
    assert.match(res.r.stderr, /resuming the upload at byte 3000000/);
    const gets = res.mock.requests.filter((q) => q.method === 'GET' && q.path.includes('/blobs/uploads/'));
    assert.equal(gets.length, 1, 'one status request');
    const patches = res.mock.requests.filter((q) => q.method === 'PATCH' && q.path === gets[0].path);
    assert.equal(patches.length, 2, 'the cut PATCH and the one that finished it, in the same session');
    assert.equal(res.mock.requests.filter((q) => q.method === 'POST').length, 3, 'no new session: two layers and the config');
  });

  it('a link that cuts every PATCH but keeps what arrived: each cut that moved the session on starts the retry budget again', async () => {
    const res = await pushTo({ cutEveryPatchKeeping: 700_000 }, large);
    pushed(res);
    const resumed = res.r.stderr.match(/resuming the upload at byte \d+/g) ?? [];
    assert.ok(resumed.length > 5, `${resumed.length} resumptions, more than the 4 retries a request gets without progress`);
    // --retries 2 bounds the failures in a row without progress, not the cuts of a transfer that moves on.
    const few = await pushTo({ cutEveryPatchKeeping: 700_000 }, large, ['--retries', '2']);
    pushed(few);
    assert.ok((few.r.stderr.match(/resuming the upload/g) ?? []).length > 2);
  });

  it('a wrong Docker-Content-Digest on the manifest fails the push', async () => {
    const { r } = await pushTo({ wrongManifestDigest: true });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /stored manifest q\/img:1 as sha256:0{64}, but it is sha256:[a-f0-9]{64}/);
  });

  it('a 307 for blob downloads to another host: followed without the Authorization header', async () => {
    const up = await startMockRegistry({ basicAuth: { user: 'u', password: 'p4ss' } });
    const store = await startBlobStore(up.blobs);
    try {
      const push = await ocislimAsync(['push', `oci-archive:${small}`, `${up.host}/q/img:1`, '-u', 'u', '--password-stdin'], { input: 'p4ss' });
      assert.equal(push.status, 0, push.stderr);
      up.quirks.redirectBlobsTo = store.origin;
      const pull = await ocislimAsync(['pull', `${up.host}/q/img:1`, '-o', `oci:${join(dir, 'redirected')}`, '-u', 'u', '--password-stdin'], { input: 'p4ss' });
      assert.equal(pull.status, 0, pull.stderr);
      assert.ok(store.hits >= 2, 'blobs came from the other host');
      assert.equal(store.sawAuthorization, false);
    } finally {
      await store.close();
      await up.close();
    }
  });
});
