import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { runcRun, umociUnpack } from './helpers/container.js';
import { removeDir, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-scripts-');
  writeFileSync(join(dir, 'script.sh'), '#!/bin/sh\necho "script ran as $0"\n', { mode: 0o755 });
  writeFileSync(join(dir, 'tool.py'), '#!/usr/bin/env python3\nprint("hi")\n', { mode: 0o755 });
});
after(() => removeDir(dir));

const build = (args: string[]) => ocislim(['build', ...args], { cwd: dir });

function runs(layout: string, name: string) {
  const bundle = join(dir, `bundle-${name}`);
  umociUnpack(`${layout}:latest`, bundle);
  return runcRun(bundle);
}

describe('scripts are programs: the run check follows #! to the interpreter', () => {
  it('build ./script.sh: the script is the entrypoint, and without /bin/sh the build fails before writing', () => {
    const r = build(['./script.sh', '-o', 'oci:nosh']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ocislim: entrypoint \/script\.sh: its interpreter \/bin\/sh \(#!\/bin\/sh\) is not in the image \(add it as an input, or --no-verify to skip\)$/m);
    assert.ok(!existsSync(join(dir, 'nosh')));
    // With the interpreter as an input (dash, with its closure), it runs.
    const ok = build(['./script.sh', '/bin/sh', '-o', 'oci:withsh', '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).runConfig.Entrypoint, ['/script.sh']);
    const run = runs(join(dir, 'withsh'), 'withsh');
    assert.equal(run.stdout, 'script ran as /script.sh\n', run.stderr);
  });

  it('--entrypoint a #!/bin/sh script without /bin/sh: a run-check error, which runc confirms with --no-verify', () => {
    const args = ['/bin/busybox', '--copy', 'script.sh:/app/run.sh', '--entrypoint', '/app/run.sh'];
    const r = build([...args, '-o', 'oci:entry']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /entrypoint \/app\/run\.sh: its interpreter \/bin\/sh \(#!\/bin\/sh\) is not in the image/);
    const skipped = build([...args, '--no-verify', '-o', 'oci:entry-unchecked']);
    assert.equal(skipped.status, 0, skipped.stderr);
    const fails = runs(join(dir, 'entry-unchecked'), 'unchecked');
    assert.notEqual(fails.status, 0, 'the container cannot start: the check was right');
    // busybox as /bin/sh (SRC:DEST): the interpreter is there, the check passes and the script runs.
    const good = build([...args, '/bin/busybox:/bin/sh', '-o', 'oci:entry-sh']);
    assert.equal(good.status, 0, good.stderr);
    assert.equal(runs(join(dir, 'entry-sh'), 'sh').stdout, 'script ran as /app/run.sh\n');
  });

  it('#!/usr/bin/env NAME: env and NAME (in PATH) must both be there; a script that is not the entrypoint gets a warning', () => {
    const r = build(['./tool.py', '/usr/bin/env', '-o', 'oci:py']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /entrypoint \/tool\.py: #!\/usr\/bin\/env python3 runs python3, which is not in the image's PATH/);
    const w = build(['/bin/busybox', './tool.py', '-o', 'oci:py-warn']);
    assert.equal(w.status, 0, w.stderr);
    assert.match(w.stderr, /^ocislim: warning: \/tool\.py: its interpreter \/usr\/bin\/env \(#!\/usr\/bin\/env python3\) is not in the image \(add it as an input\)$/m);
  });

  it('on a base image, the script is followed inside the final image', () => {
    assert.equal(build(['/bin/busybox:/bin/sh', '-o', 'oci:base-sh']).status, 0);
    assert.equal(build(['/bin/busybox', '-o', 'oci:base-nosh']).status, 0);
    const ok = build(['script.sh:/run.sh', '--from', 'oci:base-sh', '-o', 'oci:on-sh']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(runs(join(dir, 'on-sh'), 'on-sh').stdout, 'script ran as /run.sh\n');
    const bad = build(['script.sh:/run.sh', '--from', 'oci:base-nosh', '-o', 'oci:on-nosh']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /entrypoint \/run\.sh: its interpreter \/bin\/sh \(#!\/bin\/sh\) is not in the image/);
  });
});
