import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { skopeo } from './helpers/container.js';
import { fileRegistry, TestRegistry } from './helpers/registry.js';

let dir: string;
let reg: TestRegistry;
fileRegistry('ocislim-ci-', (d, r) => {
  dir = d;
  reg = r;
});

function ok(args: string[]) {
  const r = ocislim(args);
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

const SHAPE = ['digest', 'mediaType', 'size', 'platform', 'config', 'created', 'runConfig', 'annotations', 'layers', 'tags', 'outputs', 'pushed'];

describe('CI outputs and the one JSON shape', () => {
  it('build --push with --tag: --json, --image-refs, --metadata-file, --iidfile agree with the registry (skopeo)', () => {
    // The file's directory must exist; that is checked before the build.
    const r0 = ocislim(['build', '/bin/true', '-o', `oci:${dir}/never`, '--iidfile', join(dir, 'missing', 'iid')]);
    assert.equal(r0.status, 1);
    assert.match(r0.stderr, /^ocislim: --iidfile .*: no such directory$/m);
    assert.doesNotMatch(r0.stderr, /layer|wrote/, 'checked before the build');
    assert.ok(!existsSync(join(dir, 'never')));
    const out = join(dir, 'out');
    mkdirSync(out);
    const r = ok([
      'build', '/usr/bin/redis-server', '--push', `docker://${reg.host}/ci/redis:1`, '--tag', '2', '--tag', '3', '-o', `oci:${out}/layout`, '--json',
      '--image-refs', join(out, 'refs'), '--metadata-file', join(out, 'meta.json'), '--iidfile', join(out, 'iid'),
    ]);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(j), SHAPE);
    const remote = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/ci/redis:2`]));
    const raw = skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/ci/redis:3`]);
    const manifest = JSON.parse(raw);
    assert.equal(j.digest, remote.Digest);
    assert.equal(j.size, Buffer.byteLength(raw));
    assert.equal(j.mediaType, manifest.mediaType);
    assert.deepEqual(j.config, manifest.config);
    assert.equal(j.platform, 'linux/amd64');
    assert.deepEqual(j.tags.sort(), ['1', '2', '3', 'latest']);
    assert.deepEqual(j.pushed, ['1', '2', '3'].map((t) => `${reg.host}/ci/redis:${t}@${j.digest}`));
    assert.deepEqual(j.outputs, [`oci:${out}/layout:latest`]);
    assert.deepEqual(j.layers.map((l: { digest: string }) => l.digest), manifest.layers.map((l: { digest: string }) => l.digest));
    assert.ok(j.layers.every((l: { createdBy: string; uncompressedSize: number }) => l.createdBy.startsWith('ocislim build: ') && l.uncompressedSize > 0));

    const refs = readFileSync(join(out, 'refs'), 'utf8');
    assert.equal(refs, `${reg.host}/ci/redis@${j.digest}\noci:${out}/layout:latest\n`);
    assert.equal(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${refs.split('\n')[0]}`])).Digest, j.digest);
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8'));
    assert.equal(meta['containerimage.digest'], j.digest);
    assert.equal(meta['containerimage.config.digest'], manifest.config.digest);
    assert.deepEqual(meta['containerimage.descriptor'], { mediaType: manifest.mediaType, digest: j.digest, size: Buffer.byteLength(raw) });
    assert.equal(meta['image.name'], ['1', '2', '3'].map((t) => `${reg.host}/ci/redis:${t}`).join(','));
    assert.equal(readFileSync(join(out, 'iid'), 'utf8'), j.digest);
    assert.deepEqual(readdirSync(out).sort(), ['iid', 'layout', 'meta.json', 'refs'], 'no temporary files left');
  });

  it('push, pull and inspect --json give the same shape; push and pull write the CI files too', () => {
    ok(['build', '/bin/busybox', '-o', `oci-archive:${dir}/bb.tar:v1`]);
    const p = ok(['push', `oci-archive:${dir}/bb.tar:v1`, `${reg.host}/ci/bb:a`, '--tag', 'b', '--json', '--iidfile', join(dir, 'push.iid'), '--image-refs', join(dir, 'push.refs')]);
    const pj = JSON.parse(p.stdout);
    assert.deepEqual(Object.keys(pj), SHAPE);
    assert.deepEqual(pj.pushed, [`${reg.host}/ci/bb:a@${pj.digest}`, `${reg.host}/ci/bb:b@${pj.digest}`]);
    assert.deepEqual(pj.tags, ['a', 'b']);
    assert.equal(readFileSync(join(dir, 'push.iid'), 'utf8'), pj.digest);
    assert.equal(readFileSync(join(dir, 'push.refs'), 'utf8'), `${reg.host}/ci/bb@${pj.digest}\n`);

    const l = ok(['pull', `${reg.host}/ci/bb:b`, '-o', `oci:${dir}/pulled:mine`, '--json', '--metadata-file', join(dir, 'pull.json')]);
    const lj = JSON.parse(l.stdout);
    assert.deepEqual(Object.keys(lj), SHAPE);
    assert.deepEqual(lj.outputs, [`oci:${dir}/pulled:mine`]);
    assert.deepEqual(lj.tags, ['mine']);
    assert.equal(JSON.parse(readFileSync(join(dir, 'pull.json'), 'utf8'))['containerimage.digest'], pj.digest);

    const i = ok(['inspect', '--json', `oci:${dir}/pulled:mine`]);
    const ij = JSON.parse(i.stdout);
    assert.deepEqual(Object.keys(ij), SHAPE);
    // The same image through four commands: the same description (only where it went differs).
    const same = (x: Record<string, unknown>) => ({ ...x, tags: [], outputs: [], pushed: [], layers: (x.layers as object[]).map((y) => ({ ...y, uncompressedSize: undefined })) });
    assert.deepEqual(same(ij), same(pj));
    assert.deepEqual(same(lj), same(pj));
    const b = ok(['build', '/bin/busybox', '-o', `oci:${dir}/again`, '--json']);
    assert.deepEqual(same(JSON.parse(b.stdout)), same(pj));
    assert.equal(typeof ij.platform, 'string');
  });
});
