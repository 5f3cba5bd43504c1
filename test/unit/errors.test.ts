import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SpecError } from '../../src/builder/errors.js';
import { parseDockerfile } from '../../src/builder/dockerfile.js';
import { parsePort, parseSignal, parseSize, parseUser } from '../../src/builder/spec.js';
import { errorText, flagOf } from '../../src/cli/words.js';
import { CaFileError, PlainHttpError } from '../../src/registry/errors.js';
import { Transport } from '../../src/registry/transport.js';
import { ocislim } from '../helpers/cli.js';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobMismatchError, ImageError, LocationError } from '../../src/oci/errors.js';
import { parseLocalRef, readLocalImage } from '../../src/oci/location.js';
import { parseManifest } from '../../src/oci/image.js';
import { append, empty, layerFromBlob } from '../../src/oci/mutate.js';
import { writeLayer } from '../../src/oci/layer.js';
import { MT } from '../../src/oci/mediatypes.js';
import { parseImageRef } from '../../src/refs/image-ref.js';
import { removeDir, tempDir } from '../helpers/sh.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('no error thrown');
}

describe('typed errors below the CLI, worded by the CLI', () => {
  it('spec parsers throw SpecError with the field, value and reason, and no flag name', () => {
    const cases: [() => unknown, string, string][] = [
      [() => parsePort('70000'), 'expose', '70000'],
      [() => parseSignal('term'), 'stopSignal', 'term'],
      [() => parseUser('a b'), 'user', 'a b'],
      [() => parseSize('huge'), 'maxSize', 'huge'],
    ];
    for (const [fn, field, value] of cases) {
      const e = thrown(fn);
      assert.ok(e instanceof SpecError, String(e));
      assert.equal(e.field, field);
      assert.equal(e.value, value);
      assert.doesNotMatch(e.message, /--/);
      assert.equal(errorText(e), `${flagOf(field)} "${value}" ${e.reason}`);
    }
    assert.equal(errorText(thrown(() => parsePort('70000'))), '--expose "70000" must be PORT[/tcp|/udp] with PORT from 1 to 65535');
    assert.equal(flagOf('maxSize'), '--max-size');
  });

  it('a Dockerfile names its own instruction, not the flag', async () => {
    const platform = { os: 'linux', architecture: 'amd64' };
    const opts = { file: 'Dockerfile', buildArgs: {}, platform, buildPlatform: platform, imageConfig: async () => ({}) };
    await assert.rejects(parseDockerfile('FROM scratch\nSTOPSIGNAL nosuch\n', opts), { message: 'Dockerfile:2: STOPSIGNAL nosuch: not a signal name (SIGTERM) or number' });
    // docker takes signal names in any case, with or without SIG
    assert.equal((await parseDockerfile('FROM scratch\nSTOPSIGNAL term\n', opts)).config.StopSignal, 'term');
  });

  it('registry errors carry the CA file and the plain-http origin; the CLI names --ca-file and --insecure', () => {
    const ca = thrown(() => new Transport({ caFile: '/nonexistent/ca.pem' }));
    assert.ok(ca instanceof CaFileError);
    assert.equal(ca.path, '/nonexistent/ca.pem');
    assert.doesNotMatch(ca.message, /--/);
    assert.equal(errorText(ca), '--ca-file /nonexistent/ca.pem: no such file');
    const plain = new PlainHttpError('r.example', 'token realm http://auth.example');
    assert.doesNotMatch(plain.message, /--/);
    assert.equal(errorText(plain), 'r.example: token realm http://auth.example is not https (use --insecure to allow it)');
    const r = ocislim(['pull', 'r.example/x:1', '--ca-file', '/nonexistent/ca.pem', '-o', 'oci:/nonexistent/out']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'ocislim: --ca-file /nonexistent/ca.pem: no such file\n');
  });

  it('no flag names in the builder spec parsers, registry transport and auth', () => {
    for (const f of ['builder/spec.ts', 'registry/transport.ts', 'registry/auth.ts', 'refs/image-ref.ts', 'refs/registry.ts']) {
      const text = readFileSync(new URL(`../../../src/${f}`, import.meta.url), 'utf8');
      const strings = text.split('\n').filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l)).join('\n').match(/(['"`])(?:(?!\1)[^\\]|\\.)*\1/g) ?? [];
      assert.deepEqual(strings.filter((s) => /(^|[\s"'`(])--[a-z]/.test(s)), [], f);
    }
  });

  it('oci throws typed errors: LocationError for a malformed reference, ImageError naming where, BlobMismatchError for bad bytes', async () => {
    const loc = thrown(() => parseLocalRef('tarball:x'));
    assert.ok(loc instanceof LocationError);
    assert.equal(loc.ref, 'tarball:x');
    const missing = thrown(() => readLocalImage(parseLocalRef('oci:/nonexistent/layout')));
    assert.ok(missing instanceof ImageError);
    assert.equal(missing.where, 'oci:/nonexistent/layout');
    const bad = thrown(() => parseManifest(Buffer.from('{'), 'somewhere'));
    assert.ok(bad instanceof ImageError && bad.message === 'somewhere: manifest is not valid JSON');

    const dir = tempDir('ocislim-unit-errors-');
    try {
      const blob = await writeLayer([{ path: '/f', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('x') }], { dir, mediaType: MT.ociLayerGzip, mtime: 0, comment: 'f' });
      const img = append(empty, [{ layer: layerFromBlob(blob) }], { platform: { os: 'linux', architecture: 'amd64' } });
      const layout = join(dir, 'layout');
      await parseImageRef(`oci:${layout}`).write(img);
      writeFileSync(join(layout, 'blobs/sha256', blob.digest.slice(7)), 'tampered');
      const back = await parseImageRef(`oci:${layout}`).read();
      const e = await new Promise((resolve) => back.layers[0].blob.open().on('error', resolve).resume());
      assert.ok(e instanceof BlobMismatchError, String(e));
      assert.equal(e.digest, blob.digest);
    } finally {
      removeDir(dir);
    }
  });

  it('no plain Error for failures in src/oci (oci/cache.ts aside)', () => {
    const ociDir = new URL('../../../src/oci/', import.meta.url);
    for (const f of readdirSync(ociDir).filter((n) => n.endsWith('.ts') && n !== 'cache.ts')) {
      assert.doesNotMatch(readFileSync(new URL(f, ociDir), 'utf8'), /new Error\(/, f);
    }
  });
});
