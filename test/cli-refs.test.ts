import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { skopeo } from './helpers/container.js';
import { fileRegistry, TestRegistry } from './helpers/registry.js';

let dir: string;
let reg: TestRegistry;
fileRegistry('ocislim-refs-', (d, r) => {
  dir = d;
  reg = r;
});

function ok(args: string[]) {
  const r = ocislim(args);
  assert.equal(r.status, 0, `ocislim ${args.join(' ')}: ${r.stderr}`);
  return r;
}

describe('registry references', () => {
  it('docker://REF (skopeo syntax) works for --push, --from, push and pull', () => {
    const b = ok(['build', '/bin/busybox', '--push', `docker://${reg.host}/refs/a:1`]);
    const digest = b.stdout.trim().split('@')[1];
    assert.equal(b.stdout.trim(), `${reg.host}/refs/a@${digest}`);
    assert.equal(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/refs/a:1`])).Digest, digest);
    const p = ok(['pull', `docker://${reg.host}/refs/a:1`, '-o', `oci:${join(dir, 'pulled')}`]);
    assert.equal(p.stdout.trim(), digest);
    const q = ok(['push', `docker://${reg.host}/refs/a:1`, `docker://${reg.host}/refs/b:2`]);
    assert.equal(q.stdout.trim(), `${reg.host}/refs/b@${digest}`);
    const f = ok(['build', '/bin/true', '--from', `docker://${reg.host}/refs/b:2`, '--no-verify', '-o', `oci:${join(dir, 'on-base')}`]);
    const index = JSON.parse(readFileSync(join(dir, 'on-base/index.json'), 'utf8'));
    assert.equal(index.manifests[0].digest, f.stdout.trim());
  });

  it('a bad --push reference fails before the build: exit 2, no -o output written', () => {
    for (const bad of ['Upper/Case:1', `${reg.host}/x@sha256:${'a'.repeat(64)}`, `${reg.host}/x:bad tag`]) {
      const out = join(dir, 'never');
      const r = ocislim(['build', '/bin/busybox', '-o', `oci:${out}`, '--push', bad]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^ocislim: --push/m);
      assert.doesNotMatch(r.stderr, /layer:|wrote/, 'nothing built');
      assert.ok(!existsSync(out), 'no output written');
    }
    const t = ocislim(['build', '/bin/busybox', '-o', `oci:${join(dir, 'never')}`, '--push', `${reg.host}/x:1`, '--tag=bad.tag!']);
    assert.equal(t.status, 2);
    assert.match(t.stderr, /--tag bad.tag!/);
    assert.ok(!existsSync(join(dir, 'never')));
  });

  it('pull and push errors name their own argument, not --from', () => {
    const p = ocislim(['pull', 'Not/A/Ref', '-o', `oci:${join(dir, 'p')}`]);
    assert.equal(p.status, 2);
    assert.match(p.stderr, /^ocislim: pull: invalid image reference "Not\/A\/Ref"/);
    assert.doesNotMatch(p.stderr, /--from/);
    const s = ocislim(['push', 'Not/A/Ref', `${reg.host}/x:1`]);
    assert.match(s.stderr, /^ocislim: push: invalid image reference/);
    const t = ocislim(['push', `oci:${join(dir, 'pulled')}`, 'Bad Target']);
    assert.equal(t.status, 2);
    assert.match(t.stderr, /^ocislim: push: invalid image reference "Bad Target"/);
  });
});
