import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenges, parseScope } from '../src/registry/challenge.js';
import { formatReference, parseReference } from '../src/registry/reference.js';
import { retryAfterMs } from '../src/registry/transport.js';

describe('references (distribution/reference grammar and normalisation)', () => {
  const ok: [string, string][] = [
    ['redis', 'docker.io/library/redis'],
    ['redis:7', 'docker.io/library/redis:7'],
    ['library/redis', 'docker.io/library/redis'],
    ['user/app:v1.2', 'docker.io/user/app:v1.2'],
    ['index.docker.io/user/app', 'docker.io/user/app'],
    ['localhost/app', 'localhost/app'],
    ['localhost:5000/a/b/c:tag', 'localhost:5000/a/b/c:tag'],
    ['127.0.0.1:5000/redis:slim', '127.0.0.1:5000/redis:slim'],
    ['[::1]:5000/redis', '[::1]:5000/redis'],
    ['registry.example.com/team/app@sha256:' + 'a'.repeat(64), 'registry.example.com/team/app@sha256:' + 'a'.repeat(64)],
    ['ghcr.io/o/r:t@sha256:' + 'b'.repeat(64), 'ghcr.io/o/r:t@sha256:' + 'b'.repeat(64)],
    ['a__b/c--d.e_f', 'docker.io/a__b/c--d.e_f'],
  ];
  for (const [input, want] of ok) it(`parses ${input}`, () => assert.equal(formatReference(parseReference(input)), want));
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['Redis', /lower case/],
    ['redis:', /not a valid tag/],
    ['redis:' + 'x'.repeat(129), /not a valid tag/],
    ['redis@sha256:abc', /not a digest|64 lower-case hex/],
    ['a//b', /not a valid path component/],
    ['-a/b', /not a valid path component/],
    ['example.com:port/x', /not a valid registry host/],
    ['a'.repeat(64), /ambiguous/],
    ['x/' + 'a'.repeat(260), /longer than 255/],
  ];
  for (const [input, msg] of bad) it(`refuses "${input.slice(0, 40)}"`, () => assert.throws(() => parseReference(input), msg));
});

describe('WWW-Authenticate challenges and scopes', () => {
  it('keeps commas inside quoted values', () => {
    const [c] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"');
    assert.equal(c.scheme, 'bearer');
    assert.deepEqual(c.params, { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' });
  });
  it('several challenges on one line, escaped quotes, odd case and spaces', () => {
    const cs = parseChallenges('Basic realm="x \\"quoted\\"" ,  BEARER Realm="https://a/t" , Service=svc');
    assert.deepEqual(cs.map((c) => c.scheme), ['basic', 'bearer']);
    assert.equal(cs[0].params.realm, 'x "quoted"');
    assert.deepEqual(cs[1].params, { realm: 'https://a/t', service: 'svc' });
  });
  it('scopes with a port in the name split at the last colon', () => {
    assert.deepEqual(parseScope('repository:localhost:5000/foo:pull,push'), { type: 'repository', name: 'localhost:5000/foo', actions: ['pull', 'push'] });
  });
  it('Retry-After as seconds and as an HTTP date', () => {
    assert.equal(retryAfterMs('3'), 3000);
    const now = Date.parse('Sat, 28 Nov 2026 10:00:00 GMT');
    assert.equal(retryAfterMs('Sat, 28 Nov 2026 10:00:05 GMT', now), 5000);
    assert.equal(retryAfterMs('garbage'), null);
  });
});
