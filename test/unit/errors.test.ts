import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BasePlatformError, MaxSizeError, NoSuchStageError, NothingToBuildError, OptionError, PlatformMismatchError, RunCheckError, SpecError, UnknownPlatformError } from '../../src/builder/errors.js';
import { TargetError, UsageError } from '../../src/cli/errors.js';
import { exitCodeOf, optionText } from '../../src/cli/words.js';
import { fieldNames } from '../../src/builder/spec.js';
import { RuleContext } from '../../src/builder/rules/context.js';
import { ControlFileError } from '../../src/packages/deb822.js';
import { DpkgDatabase } from '../../src/packages/dpkg.js';
import { mkdirSync } from 'node:fs';
import { assembleIndex, IndexError } from '../../src/oci/index.js';
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

  it('the builder\'s errors name no flag; the CLI words them with its flags', () => {
    const cases: [Error, string][] = [
      [new RunCheckError('entrypoint /x cannot start in the image: libz.so.1, needed by /x, is not found by the image\'s loader'), 'entrypoint /x cannot start in the image: libz.so.1, needed by /x, is not found by the image\'s loader (--no-verify to skip)'],
      [new RunCheckError('/s: its interpreter /bin/sh (#!/bin/sh) is not in the image', 'add it as an input'), '/s: its interpreter /bin/sh (#!/bin/sh) is not in the image (add it as an input, or --no-verify to skip)'],
      [new RunCheckError('/l is a symbolic link to "/x", which is not in the image', undefined, true), '/l is a symbolic link to "/x", which is not in the image (--no-verify to keep it)'],
      [new NothingToBuildError(), 'nothing to build: give at least one file, --add or --copy'],
      [new UnknownPlatformError(), 'no ELF file tells the platform: give --platform'],
      [new MaxSizeError(6000000, 5242880), 'the image\'s files add up to 6000000 bytes, over --max-size 5242880 (see --explain)'],
      [new BasePlatformError('oci:/b', 'linux/arm64', 'linux/amd64'), '--from oci:/b is linux/arm64, but the image is linux/amd64'],
      [new NoSuchStageError('Dockerfile', 'nope', ['a', '1']), 'Dockerfile: --target nope: no stage of that name (stages: a, 1)'],
      [new PlatformMismatchError('linux/arm64', 'linux/amd64', '/usr/bin/ls'), '--platform linux/arm64 does not match /usr/bin/ls, which is linux/amd64'],
      [new OptionError('withLibs', 'libfoo.so.1', 'not found in the library search path of /'), '--with-lib libfoo.so.1: not found in the library search path of /'],
      [new OptionError('gconv', 'EUC-JP', 'no /usr/lib/x86_64-linux-gnu/gconv/EUC-JP.so in /'), '--with-gconv EUC-JP: no /usr/lib/x86_64-linux-gnu/gconv/EUC-JP.so in /'],
      [new OptionError('idn', undefined, 'libidn2.so.0 is not in /srv'), '--with-idn: libidn2.so.0 is not in /srv'],
      [new OptionError('packages', 'nope', 'not installed in /'), '--package nope: not installed in /'],
      [new OptionError('trace', undefined, 'strace is not installed'), '--trace: strace is not installed'],
      [new OptionError('withShell', undefined, '/srv has no /bin/sh'), '--with-shell: /srv has no /bin/sh'],
    ];
    for (const [e, text] of cases) {
      assert.doesNotMatch(e.message, /--/, e.name);
      assert.equal(errorText(e), text);
    }
    // Notes, warnings and reasons name options through the front end's namer: the CLI's flags, else the field names.
    assert.deepEqual(['withLibs', 'gconv', 'idn', 'tz', 'scaffold', 'noScaffold', 'user', 'withShell', 'trace'].map((o) => optionText(o, 'V')), ['--with-lib V', '--with-gconv V', '--with-idn V', '--tz V', '--scaffold V', '--no-scaffold V', '--user V', '--with-shell V', '--trace V']);
    const opts = { scaffold: { passwd: true, tmp: true, certs: true, tz: true, locale: true }, tz: [], withLibs: [], hasBase: false };
    assert.equal(new RuleContext(null as never, { ...opts, names: optionText }).opt('gconv', 'NAME'), '--with-gconv NAME');
    assert.equal(new RuleContext(null as never, opts).opt('gconv', 'NAME'), fieldNames('gconv', 'NAME'));
    // The warning a skipped run check leaves keeps the advice and names no flag.
    assert.equal(new RunCheckError('/s: x is not in the image', 'add it as an input').message, '/s: x is not in the image (add it as an input)');
  });

  it('context travels in fields, not in CLI rewraps: a target of a multi-platform build, the image holding bad package records, the index being made', () => {
    const label = '--root linux/arm64=/srv/arm64';
    assert.equal(errorText(new TargetError(label, new PlatformMismatchError('linux/arm64', 'linux/amd64', '/srv/arm64/x'))), `${label}: /srv/arm64/x is linux/amd64, not linux/arm64`);
    assert.equal(errorText(new TargetError(label, new MaxSizeError(2, 1))), `${label}: the image's files add up to 2 bytes, over --max-size 1 (see --explain)`);
    assert.equal(exitCodeOf(new TargetError(label, new UsageError('x'))), 2);
    assert.equal(exitCodeOf(new TargetError(label, new Error('x'))), 1);
    assert.equal(errorText(new ControlFileError('/var/lib/dpkg/status', 3, 'duplicate field Package', 'oci:/img')), 'oci:/img: /var/lib/dpkg/status:3: duplicate field Package');
    const root = tempDir('ocislim-unit-dpkg-');
    try {
      mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
      writeFileSync(join(root, 'var/lib/dpkg/status'), 'Package: a\nPackage: b\n');
      const bad = thrown(() => DpkgDatabase.open(root, 'the image'));
      assert.ok(bad instanceof ControlFileError, String(bad));
      assert.equal(bad.message, 'the image: /var/lib/dpkg/status:2: duplicate field Package');
      assert.match((thrown(() => DpkgDatabase.open(root)) as Error).message, new RegExp(`^${root}/var/lib/dpkg/status:2: `));
    } finally {
      removeDir(root);
    }
    const e = thrown(() => assembleIndex([], 'oci', undefined, 'index create oci:/i'));
    assert.ok(e instanceof IndexError && e.message === 'index create oci:/i: an index needs at least one image', String(e));
  });

  it('a Dockerfile names its own instruction, not the flag', async () => {
    const platform = { os: 'linux', architecture: 'amd64' };
    const opts = { file: 'Dockerfile', buildArgs: {}, platform, buildPlatform: platform, imageConfig: async () => ({}) };
    await assert.rejects(parseDockerfile('FROM scratch\nSTOPSIGNAL nosuch\n', opts), { message: 'Dockerfile:2: STOPSIGNAL nosuch: not a signal name (SIGTERM) or number' });
    // docker takes signal names in any case, with or without SIG
    assert.equal((await parseDockerfile('FROM scratch\nSTOPSIGNAL term\n', opts)).config.StopSignal, 'term');
  });

  it("a file system error Node raised as it is is worded with the file first (a file removed during a build)", () => {
    const dir = tempDir('ocislim-unit-fserr-');
    try {
      const gone = join(dir, 'prog');
      assert.equal(errorText(thrown(() => readFileSync(gone))), `${gone}: no such file or directory (open)`);
      assert.equal(errorText(thrown(() => readdirSync(join(dir, 'x')))), `${join(dir, 'x')}: no such file or directory (scandir)`);
      writeFileSync(gone, 'x');
      assert.equal(errorText(thrown(() => readdirSync(gone))), `${gone}: not a directory (scandir)`);
      // Not a file system error: the message as it is.
      assert.equal(errorText(new Error('ENOENT: made up')), 'ENOENT: made up');
    } finally {
      removeDir(dir);
    }
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

  it('no flag names below src/cli: lower layers throw typed errors, src/cli names the flags', () => {
    // Flags of the Dockerfile's own instructions (COPY --from, FROM --platform...) are Dockerfile syntax, not ours.
    const allowed: Record<string, string[]> = {
      'builder/dockerfile.ts': ['--from', '--chown', '--chmod', '--link', '--retries', '--platform'],
      'builder/build-image.ts': ['--chown'], // a Dockerfile COPY's --chown=NAME (CLI copies take no names)
      // a V8 flag (how undici's WebAssembly parser is compiled) and Node's own option for response headers, not ours
      'registry/transport.ts': ['--liftoff-only', '--max-http-header-size'],
    };
    const src = new URL('../../../src/', import.meta.url);
    const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith('cli/')).sort();
    assert.ok(files.includes('builder/build-image.ts') && files.includes('builder/verify.ts') && files.includes('registry/transport.ts'), files.join(' '));
    const found: string[] = [];
    for (const f of files) {
      const text = readFileSync(new URL(f, src), 'utf8');
      const strings = text.split('\n').filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l)).join('\n').match(/(['"`])(?:(?!\1)[^\\]|\\.)*\1/g) ?? [];
      for (const s of strings) {
        for (const m of s.matchAll(/(?:^|[\s"'`(])(--[a-z][a-z-]*)/g)) if (!allowed[f]?.includes(m[1])) found.push(`${f}: ${m[1]} in ${s.slice(0, 80)}`);
      }
    }
    assert.deepEqual(found, []);
  });

  it('no instanceof-to-UserError rewraps in src/cli: typed errors reach the one reporter, worded in cli/words.ts', () => {
    const cliDir = new URL('../../../src/cli/', import.meta.url);
    const rewrap = [
      /instanceof\s+\w+\s*\)\s*(throw|return)\s+new\s+UserError\b/,
      /new\s+UserError\(\s*\(?\s*e\s*(as\s+Error\s*\))?\s*\.message\s*\)/,
    ];
    const files = readdirSync(cliDir).filter((n) => n.endsWith('.ts'));
    assert.ok(files.includes('login.ts') && files.includes('words.ts'), files.join(' '));
    for (const f of files) {
      const text = readFileSync(new URL(f, cliDir), 'utf8');
      for (const re of rewrap) assert.doesNotMatch(text, re, f);
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
