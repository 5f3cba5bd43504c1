import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { BuildSpec } from '../../src/builder/spec.js';
import { boundedBuild } from '../../src/cli/build.js';

// boundedBuild decides whether V8's optimizing compiler is held back for a build (cli/jit.ts): only for builds that
// cannot bring thousands of files, since a long build is much slower in baseline code.
describe('boundedBuild: which builds hold the optimizing compiler back', () => {
  const spec = (s: Partial<BuildSpec>): BuildSpec => ({ inputs: [], adds: [], copies: [], root: '/', ...s }) as BuildSpec;
  const dir = mkdtempSync(join(tmpdir(), 'ocislim-jit-'));
  const file = join(dir, 'prog');
  writeFileSync(file, '#!/bin/sh\n');
  it('programs and files named on the command line', () => {
    assert.equal(boundedBuild(spec({ inputs: [file] })), true);
    assert.equal(boundedBuild(spec({ inputs: [`${file}:/usr/bin/prog`, '/no/such/file'] })), true, 'SRC:DEST; a missing file is the build\'s error');
    assert.equal(boundedBuild(spec({ inputs: [file], withLibs: ['libz.so.1'], tz: ['Europe/Paris'] })), true);
  });
  it('anything that can bring any number of files', () => {
    assert.equal(boundedBuild(spec({ inputs: [file, dir] })), false, 'a directory input');
    assert.equal(boundedBuild(spec({ inputs: [`${dir}:/opt/x`] })), false, 'a directory as SRC:DEST');
    assert.equal(boundedBuild(spec({ inputs: [file], packages: ['tzdata'] })), false);
    assert.equal(boundedBuild(spec({ inputs: [file], adds: [{ src: 'a.tar.gz', dest: '/' }] })), false);
    assert.equal(boundedBuild(spec({ inputs: [file], copies: [{ src: 'dir', dest: '/' }] })), false);
    assert.equal(boundedBuild(spec({ inputs: [file], from: 'debian:12' })), false);
    assert.equal(boundedBuild(spec({ inputs: [file], trace: 'prog --version' })), false);
    assert.equal(boundedBuild(spec({ inputs: [file], tz: ['all'] })), false);
    assert.equal(boundedBuild(spec({ inputs: [file], gconv: ['all'] })), false);
    assert.equal(boundedBuild(spec({ context: { dir, ignored: () => false } })), false, 'a Dockerfile');
  });
  it('with --root, a path that is a directory in the root', () => {
    const root = mkdtempSync(join(tmpdir(), 'ocislim-jit-root-'));
    try {
      writeFileSync(join(root, 'x'), '');
      assert.equal(boundedBuild(spec({ root, inputs: ['/x'] })), true);
      assert.equal(boundedBuild(spec({ root, inputs: ['/'] })), false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
});
