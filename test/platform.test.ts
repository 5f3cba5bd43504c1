import assert from 'node:assert/strict';
import { it } from 'node:test';
import { formatPlatform, parsePlatform, platformMatches } from '../src/oci/platform.js';

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
