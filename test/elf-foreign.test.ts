import assert from 'node:assert/strict';
import { it } from 'node:test';
import { resolveClosure } from '../src/elf/resolve.js';
import { formatPlatform } from '../src/oci/platform.js';
import { parseLddOutput } from './helpers/ldd.js';
import { closureFiles, sorted } from './helpers/closure.js';
import { debianSysroot } from './helpers/sysroot.js';
import { ocislim } from './helpers/cli.js';
import { run } from './helpers/sh.js';

it('an arm64 binary resolves inside an arm64 sysroot like the arm64 loader under qemu', () => {
  const root = debianSysroot('arm64', ['libc6', 'libssl3', 'openssl']);
  const c = resolveClosure('/usr/bin/openssl', root);
  assert.equal(formatPlatform(c.platform!), 'linux/arm64');
  assert.equal(c.interpreter?.path, '/lib/ld-linux-aarch64.so.1');
  const libPath = `${root}/lib/aarch64-linux-gnu:${root}/usr/lib/aarch64-linux-gnu`;
  const q = run('qemu-aarch64-static', [`${root}/lib/ld-linux-aarch64.so.1`, '--library-path', libPath, '--list', `${root}/usr/bin/openssl`]);
  assert.equal(q.status, 0, q.stderr);
  const truth = parseLddOutput(q.stdout);
  assert.ok(truth.files.size >= 4, q.stdout);
  assert.deepEqual(sorted(closureFiles(c, root)), sorted(truth.files));
  assert.deepEqual(c.notFound, []);

  // The CLI takes the path inside the root or as a host path under it.
  for (const arg of ['/usr/bin/openssl', `${root}/usr/bin/openssl`]) {
    const res = ocislim(['ldd', '--root', root, arg]);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /libssl\.so\.3 => \/usr\/lib\/aarch64-linux-gnu\/libssl\.so\.3/);
    assert.match(res.stdout, /\t\/lib\/ld-linux-aarch64\.so\.1$/m);
  }
  const json = JSON.parse(ocislim(['ldd', '--json', '--root', root, '/usr/bin/openssl']).stdout);
  assert.equal(json.platform, 'linux/arm64');
});
