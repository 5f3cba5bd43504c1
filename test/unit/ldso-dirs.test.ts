import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { systemDirsFromLdso } from '../../src/elf/loader.js';

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

it("system_dirs is read out of the loader's bytes: the first NUL-separated list that names a standard directory", () => {
  // Binary noise around it, a list of paths that names no standard directory first, paths that are no list.
  const noise = [0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0xff, 0x90, 0x0a, 0x00];
  const b = bytes(noise, '/etc/ld.so.cache\0', noise, '/opt/a/\0/opt/b/\0\0', noise, '/lib/\0/usr/lib/\0\0', noise);
  assert.deepEqual(systemDirsFromLdso(b), ['/lib', '/usr/lib']);
  // The list at the very start and at the very end of the bytes; printable text glued to its first directory.
  assert.deepEqual(systemDirsFromLdso(bytes('/lib64/\0/usr/lib64/\0\0', noise)), ['/lib64', '/usr/lib64']);
  assert.deepEqual(systemDirsFromLdso(bytes(noise, 'GLIBC/lib/aarch64-linux-gnu/\0/lib/\0\0')), ['/lib/aarch64-linux-gnu', '/lib']);
  // One directory is no list, nor is a list without its closing NUL.
  assert.equal(systemDirsFromLdso(bytes(noise, '/lib/\0\0', noise)), null);
  assert.equal(systemDirsFromLdso(bytes(noise, '/lib/\0/usr/lib/\0', noise)), null);
});

it("this machine's loader gives Debian's multiarch directories", () => {
  const dirs = systemDirsFromLdso(readFileSync('/lib64/ld-linux-x86-64.so.2'));
  assert.deepEqual(dirs, ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib', '/usr/lib']);
});
