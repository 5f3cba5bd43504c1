import assert from 'node:assert/strict';
import fs, { mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DpkgDatabase } from '../../src/packages/dpkg.js';
import { has, removeDir, sh, tempDir } from '../helpers/sh.js';

let dir: string;
let root: string;
const STATUS = ['alpha', 'beta', 'gamma']
  .map((p) => `Package: ${p}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n`)
  .join('\n');
const LISTS: Record<string, string> = {
  alpha: '/.\n/usr\n/usr/bin\n/usr/bin/tool\n',
  beta: '/usr/lib/x86_64-linux-gnu/libbeta.so.1\n/usr/share/doc/beta/café\n',
  gamma: '/etc/gamma.conf\n/usr/share/gamma/data\n',
};

function makeRoot(r: string): string {
  mkdirSync(join(r, 'var/lib/dpkg/info'), { recursive: true });
  writeFileSync(join(r, 'var/lib/dpkg/status'), STATUS);
  for (const [p, l] of Object.entries(LISTS)) writeFileSync(join(r, `var/lib/dpkg/info/${p}.list`), l);
  return r;
}

/**
 * delta holds "app" in many directories (as large packages hold common names), /opt/app among them; epsilon a
 * program under the merged-/usr alias /bin (bin -> usr/bin in the root).
 */
function makeNamesRoot(r: string): void {
  mkdirSync(join(r, 'var/lib/dpkg/info'), { recursive: true });
  mkdirSync(join(r, 'usr/bin'), { recursive: true });
  symlinkSync('usr/bin', join(r, 'bin'));
  writeFileSync(join(r, 'var/lib/dpkg/status'), ['delta', 'epsilon'].map((p) => `Package: ${p}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n`).join('\n'));
  const apps = Array.from({ length: 500 }, (_, i) => `/usr/share/delta/m${i}/app`);
  writeFileSync(join(r, 'var/lib/dpkg/info/delta.list'), ['/.', ...apps, '/opt/app'].join('\n') + '\n');
  writeFileSync(join(r, 'var/lib/dpkg/info/epsilon.list'), '/.\n/bin\n/bin/etool');
}

before(async () => {
  dir = tempDir('ocislim-unit-listnames-');
  root = makeRoot(join(dir, 'root'));
  makeRoot(join(dir, 'r-status'));
  makeRoot(join(dir, 'r-list'));
  makeNamesRoot(join(dir, 'r-names'));
  // The index is made only of files older than two seconds (ctime cannot be set back: wait it out once).
  await new Promise((r) => setTimeout(r, 2100));
});
after(() => removeDir(dir));

/** The owners of `paths` in a database opened afresh with `cache`, and which info/*.list files were read to find them. */
async function owners(cache: string, paths: string[], at = root): Promise<{ owners: string[][]; read: string[]; indexed: number }> {
  // Reads counted through node:fs itself (the named imports follow it after syncBuiltinESMExports).
  const orig = fs.readFileSync;
  const read: string[] = [];
  fs.readFileSync = function (this: unknown, p: unknown, ...rest: unknown[]) {
    if (typeof p === 'string' && p.endsWith('.list')) read.push(p.slice(p.lastIndexOf('/') + 1));
    return (orig as (...a: unknown[]) => unknown).call(this, p, ...rest);
  } as typeof fs.readFileSync;
  syncBuiltinESMExports();
  try {
    const db = DpkgDatabase.open(at, undefined, { cacheDir: cache })!;
    const found = [...db.ownersOf(paths).values()].map((ps) => ps.map((p) => p.name));
    return { owners: found, read: read.sort(), indexed: db.stats.indexed };
  } finally {
    fs.readFileSync = orig;
    syncBuiltinESMExports();
  }
}

describe('the index of the lists names (list-names.ts)', () => {
  it('a path no package names costs every list once, then only the lists that name its last component', async () => {
    const cache = join(dir, 'c1');
    const first = await owners(cache, ['/home/u/app']);
    assert.deepEqual(first.owners, [[]]);
    assert.deepEqual(first.read, ['alpha.list', 'beta.list', 'gamma.list'], 'no index yet: every list is read');
    assert.equal(readdirSync(join(cache, 'dpkg')).filter((n) => /^names[0-9a-f]-/.test(n)).length, 16, 'the index was kept, in 16 shards');

    const again = await owners(cache, ['/home/u/app']);
    assert.deepEqual(again.owners, [[]]);
    assert.deepEqual(again.read, [], 'no list names an "app": none is read');
    // A name some list holds elsewhere: that list is read, and the path is still nobody's.
    const tool = await owners(cache, ['/opt/x/tool', '/home/u/café']);
    assert.deepEqual(tool.owners, [[], []]);
    assert.deepEqual(tool.read, ['alpha.list', 'beta.list']);
    // And owned paths are still found through it (UTF-8 names too).
    const owned = await owners(cache, ['/usr/share/doc/beta/café', '/usr/share/gamma/data']);
    assert.deepEqual(owned.owners, [['beta'], ['gamma']]);
    // A shard missing or damaged: every list is read again (and the index made again).
    for (const n of readdirSync(join(cache, 'dpkg')).filter((n) => /^names[0-9a-f]-/.test(n))) writeFileSync(join(cache, 'dpkg', n), '{"v":3}');
    const damaged = await owners(cache, ['/usr/share/gamma/data', '/opt/x/tool']);
    assert.deepEqual(damaged.owners, [['gamma'], []]);
    assert.deepEqual([...new Set(damaged.read)], ['alpha.list', 'beta.list', 'gamma.list']);
    assert.deepEqual((await owners(cache, ['/opt/x/tool'])).read, ['alpha.list']);
  });

  it('parses only a list with a line for a path sought: the same last component elsewhere is searched for, not parsed', async () => {
    const at = join(dir, 'r-names');
    const cache = join(dir, 'c-names');
    // (the first search reads every list and makes the index of names; the second asks that index)
    for (const round of ['every list', 'the index']) {
      const none = await owners(cache, ['/home/u/app'], at);
      assert.deepEqual(none.owners, [[]], round);
      assert.ok(none.read.includes('delta.list'), `${round}: delta's list is searched`);
      assert.equal(none.indexed, 0, `${round}: and not parsed`);
    }
    const found = await owners(cache, ['/opt/app', '/usr/bin/etool'], at);
    assert.deepEqual(found.owners, [['delta'], ['epsilon']], 'a listed path, and one listed under an alias of its directory');
    assert.equal(found.indexed, 2);
    // Without a cache directory (no index of names): the same answers.
    const bare = await owners('', ['/home/u/app', '/opt/app', '/usr/bin/etool'], at);
    assert.deepEqual(bare.owners, [[], ['delta'], ['epsilon']]);
  });

  it('is not used once the status file changed (dpkg rewrites it on every change), nor once a list was renamed over (as dpkg writes lists)', async () => {
    const statusRoot = join(dir, 'r-status');
    const listRoot = join(dir, 'r-list');
    await owners(join(dir, 'c2'), ['/home/u/app'], statusRoot);
    await owners(join(dir, 'c3'), ['/home/u/app'], listRoot);
    // Each index holds no "app" for gamma: used after these changes, it would make /usr/bin/app nobody's.
    writeFileSync(join(statusRoot, 'var/lib/dpkg/info/gamma.list'), LISTS.gamma + '/usr/bin/app\n');
    writeFileSync(join(statusRoot, 'var/lib/dpkg/status'), STATUS + '\n');
    // dpkg's way (write_filelist_except): NAME.list.new, renamed over NAME.list; the same size, the status untouched.
    const info = join(listRoot, 'var/lib/dpkg/info');
    writeFileSync(join(info, 'gamma.list.new'), LISTS.gamma.replace('/usr/share/gamma/data', '/usr/share/gamma/app_'));
    renameSync(join(info, 'gamma.list.new'), join(info, 'gamma.list'));
    // Older than two seconds (a fresher file is never indexed, nor an index used for it): only the stamps tell.
    await new Promise((r) => setTimeout(r, 2100));
    assert.deepEqual((await owners(join(dir, 'c2'), ['/usr/bin/app'], statusRoot)).owners, [['gamma']]);
    assert.deepEqual((await owners(join(dir, 'c3'), ['/usr/share/gamma/app_'], listRoot)).owners, [['gamma']]);
  });

  it('sees what the real dpkg installs, upgrades and removes after it was made', { skip: !has('dpkg') || !has('dpkg-deb') }, async () => {
    const r = join(dir, 'r-dpkg');
    const cache = join(dir, 'c4');
    // A package built with dpkg-deb, installed into an empty database under a temporary root by dpkg itself.
    const deb = (name: string, version: string, files: string[]) => {
      const d = join(dir, `${name}-${version}`);
      sh(`mkdir -p ${d}/DEBIAN && printf 'Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: t\n' > ${d}/DEBIAN/control
        for f in ${files.join(' ')}; do mkdir -p ${d}$(dirname $f) && echo ${name} > ${d}$f; done
        dpkg-deb --root-owner-group -Zgzip -b ${d} ${d}.deb >/dev/null`);
      return `${d}.deb`;
    };
    const dpkg = (args: string) => sh(`dpkg --root=${r} --force-not-root --force-script-chrootless ${args} >/dev/null`);
    const settle = () => new Promise((res) => setTimeout(res, 2100));
    sh(`mkdir -p ${r}/var/lib/dpkg/info ${r}/var/lib/dpkg/updates && touch ${r}/var/lib/dpkg/status`);
    dpkg(`-i ${deb('alpha', '1.0', ['/usr/bin/tool'])}`);
    await settle();
    assert.deepEqual((await owners(cache, ['/home/u/app'], r)).owners, [[]]);
    assert.deepEqual((await owners(cache, ['/home/u/app'], r)).read, [], 'the index is made and used');
    dpkg(`-i ${deb('delta', '1.0', ['/usr/bin/app'])}`);
    await settle();
    assert.deepEqual((await owners(cache, ['/home/u/app', '/usr/bin/app'], r)).owners, [[], ['delta']], 'installed after the index was made');
    dpkg(`-i ${deb('alpha', '2.0', ['/usr/bin/tool', '/usr/sbin/app'])}`);
    dpkg('-r delta');
    await settle();
    assert.deepEqual((await owners(cache, ['/usr/bin/app', '/usr/sbin/app'], r)).owners, [[], ['alpha']], 'an upgrade and a removal after it');
    const last = await owners(cache, ['/home/u/app', '/home/u/other'], r);
    assert.deepEqual(last.owners, [[], []]);
    assert.deepEqual(last.read, ['alpha.list'], 'and made again for the new database: only the list that names an "app" is read');
  });
});
