import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuildError } from '../../src/builder/errors.js';
import { inputPlacement } from '../../src/builder/plan.js';
import { envTarget, parseShebang } from '../../src/builder/shebang.js';

describe('inputPlacement: where a positional input lands', () => {
  it('SRC:DEST, DEST/ and the forms without DEST', () => {
    assert.deepEqual(inputPlacement('./a:/usr/bin/b'), { src: './a', dest: '/usr/bin/b' });
    assert.deepEqual(inputPlacement('bin/a:/opt/'), { src: 'bin/a', dest: '/opt/a' });
    assert.deepEqual(inputPlacement('/x/a:/opt//y/../z/'), { src: '/x/a', dest: '/opt/z/a' });
    assert.deepEqual(inputPlacement('conf:/etc/app'), { src: 'conf', dest: '/etc/app' });
    // Only ":" followed by "/" splits: other colons are part of the path.
    assert.deepEqual(inputPlacement('a:b'), { src: 'a:b' });
    assert.deepEqual(inputPlacement('/usr/bin/x'), { src: '/usr/bin/x' });
    assert.deepEqual(inputPlacement('./mytrue'), { src: './mytrue' });
  });
  it('relative paths that leave the current directory must name their place', () => {
    for (const p of ['..', '../x', './../x', 'a/../../x', '.', './']) assert.throws(() => inputPlacement(p), BuildError, p);
    assert.deepEqual(inputPlacement('a/../b'), { src: 'a/../b' });
  });
});

describe('parseShebang: the #! line as the kernel reads it', () => {
  const p = (s: string) => parseShebang(Buffer.from(s));
  it('interpreter and at most one argument (the rest of the line, as one)', () => {
    assert.deepEqual(p('#!/bin/sh\necho'), { interpreter: '/bin/sh' });
    assert.deepEqual(p('#! /bin/sh -e\n'), { interpreter: '/bin/sh', arg: '-e' });
    assert.deepEqual(p('#!/usr/bin/env python3 -u  \n'), { interpreter: '/usr/bin/env', arg: 'python3 -u' });
    assert.deepEqual(p('#!/bin/busybox'), { interpreter: '/bin/busybox' }, 'no newline');
    assert.deepEqual(p('#!\t/bin/sh\t-x\n'), { interpreter: '/bin/sh', arg: '-x' });
  });
  it('not a script', () => {
    for (const s of ['', '#', '#!', '#!  \n', '\x7fELF', ' #!/bin/sh', '#/bin/sh']) assert.equal(p(s), null, JSON.stringify(s));
  });
  it('env: the program it runs from PATH', () => {
    assert.equal(envTarget({ interpreter: '/usr/bin/env', arg: 'python3' }), 'python3');
    assert.equal(envTarget({ interpreter: '/usr/bin/env', arg: '-S node --max-old-space-size=100' }), 'node');
    assert.equal(envTarget({ interpreter: '/usr/bin/env', arg: 'LANG=C perl -w' }), 'perl');
    assert.equal(envTarget({ interpreter: '/bin/sh', arg: '-e' }), null);
    assert.equal(envTarget({ interpreter: '/usr/bin/env' }), null);
  });
});
