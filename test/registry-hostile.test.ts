import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislimAsync } from './helpers/cli.js';
import { HostileMode, startHostile } from './helpers/hostile.js';
import { removeDir, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-hostile-');
});
after(() => removeDir(dir));

/** Runs ocislim against a hostile server with the default limits; the lines of stderr that are not retry or progress notes. */
async function against(mode: HostileMode, args: (host: string, out: string) => string[], input?: string) {
  const h = await startHostile(mode);
  const out = join(dir, mode);
  const home = join(dir, `home-${mode}`);
  mkdirSync(home, { recursive: true });
  try {
    const r = await ocislimAsync(args(h.host, out), { env: { DOCKER_CONFIG: home, HOME: home }, input, timeout: 90_000 });
    // Timed from the first connection: on a loaded machine node's own start-up can take seconds.
    const seconds = (Date.now() - h.firstContact) / 1000;
    const lines = r.stderr.split('\n').filter((l) => l && !/^ocislim: (retry \d|[0-9a-f]{12}: |(upload|download) [0-9a-f]{12}: )/.test(l));
    return { r, seconds, lines, h, out, home };
  } finally {
    await h.close();
  }
}

const pull = (host: string, out: string) => ['pull', `${host}/hostile/img:1`, '-o', `oci:${out}`];

/** The shared contract: under 30 s, non-zero, one line of error, nothing written. */
function clean(res: Awaited<ReturnType<typeof against>>, re: RegExp) {
  assert.ok(res.seconds < 30, `took ${res.seconds} s`);
  assert.notEqual(res.r.status, 0);
  assert.equal(res.lines.length, 1, res.r.stderr);
  assert.match(res.lines[0], re);
  assert.ok(!existsSync(res.out), 'nothing written');
}

describe('hostile registries: every case ends within 30 s with the defaults, in one line, non-zero', { concurrency: true }, () => {
  it('a server that accepts and never answers: the timeout, tried twice', async () => {
    const res = await against('silent', pull);
    clean(res, /^ocislim: .*127\.0\.0\.1:\d+.*GET http:\/\/127\.0\.0\.1:\d+\/v2\/: no answer within 10 s .*\(after 2 attempts\)$/);
    assert.ok(res.seconds >= 19, `${res.seconds} s: two 10 s waits`);
    assert.doesNotMatch(res.lines[0], /SSL|TLS/, 'no https guess after a timeout');
  });

  it('--timeout changes the limit', async () => {
    const res = await against('silent', (h, o) => [...pull(h, o), '--timeout', '1.5']);
    clean(res, /no answer within 1\.5 s/);
    assert.ok(res.seconds < 8, `${res.seconds} s`);
  });

  it('--retries also lets a timeout be retried that often', async () => {
    const res = await against('silent', (h, o) => [...pull(h, o), '--timeout', '2', '--retries', '3']);
    clean(res, /no answer within 2 s .*\(after 4 attempts\)$/);
    // On a loaded machine a connection may time out before its request is written: at most one request each.
    assert.ok(res.h.requests.length <= 4 && res.h.requests.length >= 1, res.h.requests.join(', '));
  });

  it('connection resets over http: the http failure is reported, not the TLS error of an https guess; the attempts counted', async () => {
    const res = await against('reset', pull);
    clean(res, /^ocislim: .*GET http:\/\/127\.0\.0\.1:\d+\/v2\/: ECONNRESET \(after 5 attempts\)$/);
    assert.doesNotMatch(res.lines[0], /SSL|TLS|WRONG_VERSION/);
  });

  it('--retries 0: one attempt, and no "after N attempts"', async () => {
    const res = await against('reset', (h, o) => [...pull(h, o), '--retries', '0']);
    clean(res, /ECONNRESET$/);
    assert.equal(res.h.requests.filter((q) => q.startsWith('GET /v2/')).length, 1, 'one http request (the https guess sends no HTTP)');
  });

  it('an endless chunked manifest: aborted at 4 MiB', async () => {
    const res = await against('endless-manifest', pull);
    clean(res, /manifests\/1: the manifest is larger than 4 MiB$/);
    assert.ok(res.h.bytesSent < 64 * 1024 * 1024, `${res.h.bytesSent} bytes sent before the client hung up`);
  });

  it('a manifest declaring 150 MB: refused before it is read', async () => {
    const res = await against('huge-manifest', pull);
    clean(res, /the manifest is larger than 4 MiB$/);
    assert.ok(res.h.bytesSent < 16 * 1024 * 1024, `${res.h.bytesSent} bytes`);
  });

  it('an endless error body: 64 KiB of it read, the 404 reported', async () => {
    const res = await against('endless-error', pull);
    clean(res, /not found \(MANIFEST_UNKNOWN|HTTP 404/);
    assert.ok(res.lines[0].length < 2000, 'the message is short');
    assert.ok(res.h.bytesSent < 16 * 1024 * 1024, `${res.h.bytesSent} bytes`);
  });

  it('a config descriptor claiming 10 GB: refused before the blob is fetched', async () => {
    const res = await against('huge-config', pull);
    clean(res, /hostile\/img:1 config sha256:[0-9a-f]{64}: the image config is larger than 16 MiB$/);
    assert.ok(!res.h.requests.some((q) => q.includes('/blobs/')), res.h.requests.join(', '));
  });

  it('an endless token response: aborted at 1 MiB', async () => {
    const res = await against('endless-token', pull);
    clean(res, /\/token: the token response is larger than 1 MiB$/);
  });

  it('a manifest trickling a byte a second: the deadline ends it', async () => {
    const res = await against('trickle-manifest', pull);
    clean(res, /GET http:\/\/127\.0\.0\.1:\d+\/v2\/hostile\/img\/manifests\/1: not done within the 20 s deadline$/);
  });

  it('a blob that stalls mid-body: resumed once, then given up', async () => {
    const res = await against('stall-blob', pull);
    clean(res, /getting blob sha256:[0-9a-f]{64} from hostile\/img: no data for 10 s/);
  });

  it('login: a 500 to the credentials is not a success, and nothing is stored', async () => {
    const res = await against('login-500', (h) => ['login', h, '-u', 'someone', '--password-stdin'], 'secret\n');
    assert.ok(res.seconds < 30, `took ${res.seconds} s`);
    assert.notEqual(res.r.status, 0);
    assert.equal(res.lines.length, 1, res.r.stderr);
    assert.match(res.lines[0], /^ocislim: login 127\.0\.0\.1:\d+: the registry answered HTTP 500 to GET \/v2\/ with the credentials, not a success; nothing stored$/);
    assert.ok(!existsSync(join(res.home, 'config.json')), 'no credentials stored');
  });
});
