import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { memoPaths } from '../../src/builder/rules/paths-memo.js';
import { absolutePaths } from '../../src/builder/rules/runtime.js';
import { removeDir, tempDir } from '../helpers/sh.js';

/** What absolutePaths gave when it ran a regular expression over the whole file read as latin1: the reference. */
function scanned(file: string): string[] {
  const text = readFileSync(file).toString('latin1');
  const out = new Set<string>();
  for (const m of text.matchAll(/(?<![\x21-\x7e])\/[A-Za-z0-9_+.@-]+(?:\/[A-Za-z0-9_+.@-]+)*\/?(?=\x00)/g)) {
    const p = posix.normalize(m[0]).replace(/\/+$/, '') || '/';
    if (!/^\/(proc|sys|dev|usr\/local|home|root|tmp|var\/tmp|var\/log|var\/cache)(\/|$)/.test(p) && p.length < 256) out.add(p);
  }
  return [...out].sort();
}

let dir: string;
before(() => {
  dir = tempDir('ocislim-unit-paths-');
});
after(() => removeDir(dir));

describe('absolute paths a program names (the runtime rule)', () => {
  it('finds what a regular expression over the whole file finds: crafted bytes', () => {
    const f = join(dir, 'crafted');
    const parts = [
      '/usr/lib/a\0', 'x/usr/lib/b\0', 'say /usr/share/c/\0', '\x01/etc/d\0', '\x7f/etc/e\0', '//double\0', '/a//b\0', '/not-ended',
      '\0', ' /lead\0', 'a /b /c\0', '/x y\0', '/\0', '/ok+@._-z\0', '\xe9/latin\0', '/usr/./lib/../share\0', '/tmp/x\0', `/${'a'.repeat(300)}\0`, '/end',
    ];
    writeFileSync(f, Buffer.from(parts.join(''), 'latin1'));
    assert.deepEqual(absolutePaths(f), scanned(f));
    assert.deepEqual(absolutePaths(f), ['/c', '/etc/d', '/etc/e', '/latin', '/lead', '/not-ended', '/ok+@._-z', '/usr/lib/a', '/usr/share', '/usr/share/c']);
  });

  it('finds what a regular expression over the whole file finds: real programs and libraries', () => {
    let n = 0;
    for (const d of ['/usr/sbin', '/usr/lib/git-core']) {
      if (!existsSync(d)) continue;
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        if (!statSync(p).isFile()) continue;
        assert.deepEqual(absolutePaths(p), scanned(p), p);
        n++;
      }
    }
    assert.ok(n > 50, `${n} files compared`);
  });

  it('are remembered across runs only for the file with the same stat identity (an edit in place, size and mtime put back, is scanned again)', async () => {
    const f = join(dir, 'memo-prog');
    const cache = join(dir, 'memo-cache');
    writeFileSync(f, Buffer.from('\0/usr/share/one\0', 'latin1'));
    const old = new Date(Date.now() - 10_000);
    utimesSync(f, old, old);
    // The change time must be two seconds old too: a file changed within the same clock tick is not remembered.
    await new Promise((r) => setTimeout(r, 2100));
    let scans = 0;
    const scan = (h: string) => {
      scans++;
      return absolutePaths(h);
    };
    assert.deepEqual(memoPaths(f, cache, scan), ['/usr/share/one']);
    assert.deepEqual(memoPaths(f, cache, scan), ['/usr/share/one']);
    assert.equal(scans, 1, 'the second run is served from the memo');
    assert.equal(readdirSync(join(cache, 'dpkg')).filter((n) => n.startsWith('paths-')).length, 1);
    writeFileSync(f, Buffer.from('\0/usr/share/two\0', 'latin1'));
    utimesSync(f, old, old);
    assert.deepEqual(memoPaths(f, cache, scan), ['/usr/share/two']);
    assert.equal(scans, 2, 'a file changed in place is scanned again');
    // Just changed: scanned, not remembered (the next call scans again).
    assert.deepEqual(memoPaths(f, cache, scan), ['/usr/share/two']);
    assert.equal(scans, 3);
    // Without a cache directory: always scanned.
    assert.deepEqual(memoPaths(f, undefined, scan), ['/usr/share/two']);
    assert.equal(scans, 4);
  });
});
