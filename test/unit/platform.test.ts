import assert from 'node:assert/strict';
import { it } from 'node:test';
import { formatPlatform, parsePlatform, platformMatches } from '../../src/oci/platform.js';
import { assembleIndex, selectPlatform } from '../../src/oci/index.js';
import { append, empty } from '../../src/oci/mutate.js';
import { buildTargets } from '../../src/cli/targets.js';

it('one matcher: os and architecture must agree, variants only when both sides name one', () => {
  const p = parsePlatform;
  assert.ok(platformMatches(p('linux/arm64/v8'), p('linux/arm64')));
  assert.ok(platformMatches(p('linux/arm64'), p('linux/arm64/v8')));
  assert.ok(platformMatches(p('linux/arm64/8'), p('linux/arm64/v8')));
  assert.ok(platformMatches(p('linux/arm/v7'), p('linux/arm')));
  assert.ok(!platformMatches(p('linux/arm/v6'), p('linux/arm/v7')));
  assert.ok(!platformMatches(p('linux/arm64'), p('linux/amd64')));
  assert.ok(!platformMatches(p('windows/amd64'), p('linux/amd64')));
  assert.ok(!platformMatches(undefined, p('linux/amd64')));
});

it('parsePlatform: "arm64" is linux/arm64; "all" is never read as an architecture', () => {
  assert.equal(formatPlatform(parsePlatform('arm64')), 'linux/arm64');
  assert.equal(formatPlatform(parsePlatform('linux/arm/v7')), 'linux/arm/v7');
  assert.throws(() => parsePlatform('all'), /is not a platform \("all" means every platform/);
  assert.throws(() => parsePlatform('linux/all'), /is not a platform \("all" means every platform/);
  assert.throws(() => parsePlatform('linux//v7'), /malformed platform/);
});

it('buildTargets: plain --root is one image; PLATFORM=DIR roots one each; --platform picks among them', () => {
  assert.deepEqual(buildTargets(undefined, undefined), [{ root: '/', platform: undefined }]);
  assert.deepEqual(buildTargets('./a=b', 'linux/arm64'), [{ root: './a=b', platform: { os: 'linux', architecture: 'arm64' } }]);
  const two = buildTargets(['linux/amd64=/', 'linux/arm/v7=/s'], undefined);
  assert.deepEqual(
    two.map((t) => [t.root, formatPlatform(t.platform!)]),
    [
      ['/', 'linux/amd64'],
      ['/s', 'linux/arm/v7'],
    ],
  );
  assert.deepEqual(buildTargets(['linux/amd64=/', 'linux/arm/v7=/s'], 'all'), two);
  assert.deepEqual(buildTargets(['linux/amd64=/', 'linux/arm/v7=/s'], 'linux/arm').map((t) => t.root), ['/s']);
  assert.throws(() => buildTargets(['linux/arm64=/a', 'linux/arm64/v8=/b'], undefined), /two roots for linux\/arm64\/v8 \(\/a and \/b\)/);
  assert.throws(() => buildTargets(['/a', '/b'], undefined), /--root is given 2 times/);
  assert.throws(() => buildTargets(['linux/amd64=/a'], 'linux/amd64,linux/s390x'), /--platform linux\/s390x: no --root for it/);
});

it('assembleIndex: one image per platform, in the given order; a Docker manifest list lists only Docker manifests', () => {
  const img = (architecture: string, format: 'oci' | 'docker' = 'oci') =>
    append(empty, [], { created: '1970-01-01T00:00:00Z', platform: { os: 'linux', architecture }, config: () => ({ Cmd: ['/x'] }) }, { format });
  const idx = assembleIndex([img('amd64'), img('arm64')], 'oci');
  assert.equal(idx.index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(idx.index.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);
  assert.equal(idx.digest, assembleIndex([img('amd64'), img('arm64')], 'oci').digest);
  assert.notEqual(idx.digest, assembleIndex([img('arm64'), img('amd64')], 'oci').digest);
  assert.equal(selectPlatform(idx.index, parsePlatform('linux/arm64/v8'), 'x').digest, idx.images[1].digest);
  assert.throws(() => selectPlatform(idx.index, parsePlatform('linux/s390x'), 'x'), /x: no image for linux\/s390x \(it has linux\/amd64, linux\/arm64\)/);
  assert.throws(() => assembleIndex([img('amd64'), img('amd64')], 'oci'), /two images for linux\/amd64/);
  assert.throws(() => assembleIndex([img('amd64')], 'docker'), /Docker manifest list can only list Docker schema 2/);
  assert.equal(assembleIndex([img('amd64', 'docker')], 'docker').index.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
});
