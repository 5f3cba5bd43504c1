import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlFileError, DpkgDatabase, readOsRelease } from '../src/packages/dpkg.js';
import { parseStanzas, quickScan, scanStanzas } from '../src/packages/deb822.js';
import { BIN, ocislim } from './helpers/cli.js';
import { takeInventory } from '../src/packages/inventory.js';
import { RootFs } from '../src/elf/rootfs.js';
import { has, removeDir, run, sh, tempDir } from './helpers/sh.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-dpkg-');
});
after(() => removeDir(dir));

/** Writes files (path → content; a value starting with "->" makes a symlink) under a fresh root. */
function fixture(name: string, files: Record<string, string>): string {
  const root = join(dir, name);
  for (const [p, c] of Object.entries(files)) {
    const host = join(root, p);
    mkdirSync(dirname(host), { recursive: true });
    if (c.startsWith('->')) symlinkSync(c.slice(2), host);
    else writeFileSync(host, c);
  }
  return root;
}

describe('dpkg database of this system, against dpkg-query and dpkg -S', () => {
  const db = DpkgDatabase.open('/')!;

  it('lists the packages dpkg-query -W lists, with the same versions and source packages', () => {
    const want = sh(`dpkg-query -W -f '\${Package}:\${Architecture} \${Version} \${source:Package} \${source:Version} \${db:Status-Status}\\n'`)
      .split('\n')
      .filter((l) => l && !/ (not-installed|config-files)$/.test(l))
      .map((l) => l.split(' ').slice(0, 4).join(' '))
      .sort();
    const got = db
      .packages()
      .map((p) => `${p.name}:${p.arch} ${p.version} ${p.source} ${p.sourceVersion}`)
      .sort();
    assert.ok(got.length > 100);
    assert.deepEqual(got, want);
  });

  it('finds the owner dpkg -S names, through merged-/usr aliases and in-package directory links', () => {
    // Regular files from 40 packages spread over the database, asked for by their physical (/usr) spelling.
    const pkgs = db.packages().filter((_, i) => i % Math.max(1, Math.floor(db.packages().length / 40)) === 0);
    const asked: { path: string; listed: string }[] = [];
    for (const p of pkgs) {
      const f = [...db.md5sums(p).keys()].find((x) => !x.startsWith('/usr/share/doc/'));
      if (f) asked.push({ path: db.physical(f), listed: f });
    }
    // The aliases the reference notes name: /bin/sh is dash's, /usr/bin/ls coreutils', the loader libc6's.
    asked.push({ path: '/usr/bin/sh', listed: '/bin/sh' }, { path: '/usr/bin/ls', listed: '/bin/ls' });
    // perl/5.36 is a link to 5.36.0 inside libperl's own tree: asked through the link, listed under the real name.
    const dumper = '/usr/lib/x86_64-linux-gnu/perl/5.36/Data/Dumper.pm';
    if (existsSync(dumper)) asked.push({ path: dumper, listed: join(realpathSync(dirname(dumper)), 'Dumper.pm') });
    const fresh = DpkgDatabase.open('/')!;
    const owners = fresh.ownersOf(asked.map((a) => a.path));
    for (const a of asked) {
      const r = run('dpkg', ['-S', a.listed], { env: { LC_ALL: 'C' } });
      const line = r.stdout.split('\n').find((l) => l.endsWith(': ' + a.listed) && !l.startsWith('diversion'));
      assert.ok(line, `dpkg -S ${a.listed}: ${r.stdout}${r.stderr}`);
      const want = line
        .slice(0, line.length - a.listed.length - 2)
        .split(', ')
        .map((n) => n.replace(/:.*/, ''))
        .sort();
      assert.deepEqual([...new Set(owners.get(a.path)!.map((p) => p.name))].sort(), [...new Set(want)].sort(), a.path);
    }
  });

  it('reports no owner where dpkg -S finds none, and the alternatives link instead', () => {
    const r = run('dpkg', ['-S', '/usr/bin/awk']);
    assert.notEqual(r.status, 0);
    assert.equal(db.ownerOf('/usr/bin/awk'), undefined);
    const alt = db.alternative('/usr/bin/awk');
    assert.equal(alt?.name, 'awk');
    assert.equal(alt?.target, sh('readlink /etc/alternatives/awk').trim());
    assert.equal(db.ownerOf('/ocislim/not/a/file'), undefined);
  });

  it('reads md5sums that match the files on disk, and conffiles as dpkg-query shows them', () => {
    const libc = db.get('libc6')!;
    assert.equal(libc.arch, sh('dpkg --print-architecture').trim());
    const sums = db.md5sums(libc);
    const so = [...sums.keys()].find((k) => k.endsWith('/libc.so.6'))!;
    assert.equal(sums.get(so), createHash('md5').update(readFileSync(so)).digest('hex'));
    const base = db.get('base-files')!;
    const want = sh(`dpkg-query -W -f '\${Conffiles}' base-files`)
      .split('\n')
      .map((l) => l.trim().split(' ')[0])
      .filter(Boolean);
    assert.deepEqual(db.conffiles(base), want);
    assert.deepEqual(
      db.files(base),
      sh('dpkg -L base-files').split('\n').filter((l) => l && l !== '/.'),
    );
  });

  it('groups binary packages by source', () => {
    const want = sh(`dpkg-query -W -f '\${source:Package} \${Package}\\n' | awk '$1=="glibc"{print $2}' | sort -u`).split('\n').filter(Boolean);
    assert.deepEqual([...new Set(db.bySource('glibc').map((p) => p.name))].sort(), want);
  });

  it('reads os-release', () => {
    const os = readOsRelease('/')!;
    assert.equal(os.ID, sh('. /etc/os-release; echo $ID').trim());
    assert.equal(os.VERSION_ID, sh('. /etc/os-release; echo $VERSION_ID').trim());
  });
});

const STATUS = `Package: libfoo1
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: foo (1.0-1)
Version: 1.0-1+b1
Description: foo library
 long text
 .
 more

Package: libfoo1
Status: install ok installed
Architecture: i386
Multi-Arch: same
Source: foo (1.0-1)
Version: 1.0-1+b1

Package: footool
Status: install ok installed
Architecture: amd64
Source: foo
Version: 1:1.0-1
Conffiles:
 /etc/foo.conf 0123456789abcdef0123456789abcdef
 /etc/old.conf newconffile remove-on-upgrade

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 0.1
`;

describe('dpkg database fixtures', () => {
  it('keys packages by name and architecture, applies merged /usr, diversions and Multi-Arch sharing', () => {
    const root = fixture('multi', {
      'bin': '->usr/bin',
      'lib': '->usr/lib',
      'usr/bin/foo': 'x',
      'usr/bin/foo.distrib': 'y',
      'usr/lib/x86_64-linux-gnu/libfoo.so.1': 'z',
      'usr/share/doc/libfoo1/copyright': 'c',
      'var/lib/dpkg/status': STATUS,
      'var/lib/dpkg/info/libfoo1:amd64.list': '/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libfoo.so.1\n/usr/share/doc/libfoo1/copyright\n',
      'var/lib/dpkg/info/libfoo1:amd64.md5sums': 'd41d8cd98f00b204e9800998ecf8427e  lib/x86_64-linux-gnu/libfoo.so.1\n',
      'var/lib/dpkg/info/libfoo1:i386.list': '/.\n/usr/lib/i386-linux-gnu/libfoo.so.1\n/usr/share/doc/libfoo1/copyright\n',
      'var/lib/dpkg/info/footool.list': '/.\n/bin\n/bin/foo\n/etc/foo.conf\n',
      'var/lib/dpkg/info/footool.conffiles': '/etc/foo.conf\nremove-on-upgrade /etc/old.conf\n',
      'var/lib/dpkg/diversions': '/bin/foo\n/bin/foo.distrib\nlibfoo1\n',
    });
    const db = DpkgDatabase.open(root)!;
    assert.deepEqual(
      db.packages().map((p) => `${p.name}:${p.arch}`),
      ['libfoo1:amd64', 'libfoo1:i386', 'footool:amd64'],
    );
    assert.equal(db.allPackages().length, 4);
    const foo = db.get('libfoo1')!;
    assert.equal(foo.arch, 'amd64', 'the native architecture first');
    assert.equal(db.get('libfoo1', 'i386')?.arch, 'i386');
    assert.equal(db.get('libfoo1:i386')?.arch, 'i386');
    assert.equal(foo.source, 'foo');
    assert.equal(foo.sourceVersion, '1.0-1');
    assert.equal(foo.version, '1.0-1+b1');
    assert.equal(foo.fields.Description, 'foo library\nlong text\n\nmore');
    assert.equal(db.get('footool')!.sourceVersion, '1:1.0-1');
    assert.equal(db.get('gone'), undefined);
    assert.deepEqual(
      db.bySource('foo').map((p) => p.name + ':' + p.arch),
      ['libfoo1:amd64', 'libfoo1:i386', 'footool:amd64'],
    );
    assert.deepEqual(db.conffiles(db.get('footool')!), ['/etc/foo.conf', '/etc/old.conf']);
    assert.deepEqual([...db.md5sums(foo)], [['/lib/x86_64-linux-gnu/libfoo.so.1', 'd41d8cd98f00b204e9800998ecf8427e']]);
    // md5Of: any spelling of the file; a name that only ends the same, or starts the same, is another file.
    assert.equal(db.md5Of(foo, '/usr/lib/x86_64-linux-gnu/libfoo.so.1'), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(db.md5Of(foo, '/lib/x86_64-linux-gnu/libfoo.so.1'), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(db.md5Of(foo, '/usr/lib/x86_64-linux-gnu/oo.so.1'), undefined);
    assert.equal(db.md5Of(foo, '/usr/lib/x86_64-linux-gnu/libfoo.so'), undefined);
    // Listed as /lib/..., asked as /usr/lib/... (and the other way round).
    assert.equal(db.ownerOf('/usr/lib/x86_64-linux-gnu/libfoo.so.1')?.arch, 'amd64');
    assert.equal(db.ownerOf('/lib/x86_64-linux-gnu/libfoo.so.1')?.name, 'libfoo1');
    // A Multi-Arch: same file is listed by both instances.
    assert.deepEqual(
      db.ownersOf(['/usr/share/doc/libfoo1/copyright']).get('/usr/share/doc/libfoo1/copyright')!.map((p) => p.arch),
      ['amd64', 'i386'],
    );
    // footool's /bin/foo is diverted by libfoo1 to /bin/foo.distrib: the file at /usr/bin/foo is nobody's.
    assert.equal(db.ownerOf('/usr/bin/foo.distrib')?.name, 'footool');
    assert.equal(db.ownerOf('/usr/bin/foo'), undefined);
    assert.equal(db.ownerOf('/usr/bin/nothing'), undefined);
    assert.deepEqual([...db.diversions().values()], [{ from: '/bin/foo', to: '/bin/foo.distrib', by: 'libfoo1' }]);
  });

  it('reads a distroless status.d: stanzas without Status, files from the md5sums', () => {
    const root = fixture('statusd', {
      'var/lib/dpkg/status.d/libbar2': 'Package: libbar2\nVersion: 2.0-3\nArchitecture: arm64\nSource: bar\n',
      'var/lib/dpkg/status.d/libbar2.md5sums': '0123456789abcdef0123456789abcdef  usr/lib/aarch64-linux-gnu/libbar.so.2\n',
      'var/lib/dpkg/status.d/baz': 'Package: baz\nVersion: 1\nArchitecture: all\n',
    });
    const db = DpkgDatabase.open(root)!;
    assert.deepEqual(
      db.packages().map((p) => p.name),
      ['baz', 'libbar2'],
    );
    const bar = db.get('libbar2')!;
    assert.equal(bar.status, 'install ok installed');
    assert.equal(bar.origin, '/var/lib/dpkg/status.d/libbar2');
    assert.ok(db.isDistroless(bar));
    assert.deepEqual(db.files(bar), ['/usr/lib/aarch64-linux-gnu/libbar.so.2']);
    assert.equal(db.ownerOf('/usr/lib/aarch64-linux-gnu/libbar.so.2'), bar);
    assert.deepEqual(db.files(db.get('baz')!), []);
  });

  it('has no database in a root without /var/lib/dpkg', () => {
    assert.equal(DpkgDatabase.open(fixture('empty', { 'etc/hostname': 'x\n' })), null);
  });

  const broken: [string, Record<string, string>, RegExp][] = [
    ['continuation first', { 'var/lib/dpkg/status': ' Package: x\n' }, /status:1: continuation line outside a field/],
    ['no colon', { 'var/lib/dpkg/status': 'Package: a\nVersion: 1\nArchitecture: all\n\nPackage: b\nVersion 2\n' }, /status:6: expected "Field: value"/],
    ['duplicate', { 'var/lib/dpkg/status': 'Package: a\nVersion: 1\nVersion: 2\nArchitecture: all\n' }, /status:3: duplicate field Version/],
    ['no Package', { 'var/lib/dpkg/status': 'Package: a\nVersion: 1\nArchitecture: all\n\nVersion: 2\n' }, /status:5: stanza without a Package field/],
    ['bad Status', { 'var/lib/dpkg/status': 'Package: a\nStatus: installed\nVersion: 1\nArchitecture: all\n' }, /status:1: a: Status "installed"/],
    ['no Version', { 'var/lib/dpkg/status': 'Package: a\nStatus: install ok installed\nArchitecture: all\n' }, /status:1: a: no Version field/],
    ['bad status.d', { 'var/lib/dpkg/status.d/x': 'Package: x\nVersion: 1\nArchitecture: all\n\n  \nfoo\n' }, /status\.d\/x:6: expected "Field: value"/],
  ];
  for (const [name, files, re] of broken) {
    it(`a broken database is a ControlFileError naming the file and line: ${name}`, () => {
      assert.throws(
        () => DpkgDatabase.open(fixture('broken-' + name.replace(/\W/g, '_'), files)),
        (e: unknown) => e instanceof ControlFileError && re.test(e.message),
      );
    });
  }

  it('broken md5sums, diversions and late-parsed fields name their file and line', () => {
    const root = fixture('broken-info', {
      'var/lib/dpkg/status': 'Package: a\nVersion: 1\nArchitecture: all\nDescription: x\n y\n',
      'var/lib/dpkg/info/a.md5sums': '0123456789abcdef0123456789abcdef  usr/a\nnot a sum\n',
      'var/lib/dpkg/diversions': '/a\n/b\n',
    });
    const db = DpkgDatabase.open(root)!;
    assert.throws(() => db.md5sums(db.get('a')!), /a\.md5sums:2: expected "MD5SUM {2}PATH"/);
    assert.throws(() => db.md5Of(db.get('a')!, '/usr/a'), /a\.md5sums:2: expected "MD5SUM {2}PATH"/);
    assert.throws(() => db.diversions(), /diversions:2: incomplete diversion record/);
  });

  it('the quick status scan reads what the line-by-line one reads, and leaves to it every file it cannot vouch for', () => {
    const wanted = ['package', 'architecture', 'version', 'status', 'source'];
    const same = (text: string) => {
      const spans = quickScan(Buffer.from(text), wanted);
      assert.ok(spans, JSON.stringify(text));
      const slow = scanStanzas(text, 'x', wanted);
      // scanStanzas ends the last stanza's text with "\n" when the file does not.
      const quick = spans.map((s) => ({ head: s.head, text: Buffer.from(text).subarray(s.start, s.end).toString().replace(/([^\n])$/, '$1\n') }));
      assert.deepEqual(
        quick,
        slow.map((s) => ({ head: s.head, text: s.text })),
      );
    };
    same(STATUS);
    // Field names in any case, values trimmed, blank runs, a last line without "\n", "Package:" inside a continuation.
    same('PACKAGE:  a \nversion:1\nArchiTecture: all\nDescription: x\n Package: not-a-field\n\n\n\nPackage: b\nVersion: 2\nArchitecture: all');
    same('Package: a\nVersion: 1\nArchitecture: all\nMaintainer: Jos\u00e9 <j@example.org>\n');
    // Not vouched for: CR line ends, a blank line of spaces, a repeated field, a stanza without any of the fields,
    // UTF-8 in one of them, an odd line, a continuation where a stanza starts.
    for (const t of [
      'Package: a\r\nVersion: 1\r\n',
      'Package: a\nVersion: 1\n \nPackage: b\n',
      'Package: a\nVersion: 1\nversion: 2\n',
      'Package: a\n\nDescription: x\n',
      'Package: a\nVersion: 1\u00e9\n',
      'Package: a\nno field here\n',
      'Package: a\n\n continued\n',
      ' Package: a\n',
    ]) {
      assert.equal(quickScan(Buffer.from(t), wanted), null, JSON.stringify(t));
    }
  });

  it('a malformed field found when a package\'s fields are first read names the line in the file', () => {
    const root = fixture('late-field', {
      'var/lib/dpkg/status': 'Package: a\nVersion: 1\nArchitecture: all\n\nPackage: b\nVersion: 1\nArchitecture: all\nDepends: x\nDepends: y\n',
    });
    const db = DpkgDatabase.open(root)!;
    assert.equal(db.get('a')!.fields.Version, '1');
    assert.throws(() => db.get('b')!.fields, (e: unknown) => e instanceof ControlFileError && /status:9: duplicate field Depends/.test(e.message));
  });

  it('parses deb822 continuation lines and " ." paragraph breaks', () => {
    const [s] = parseStanzas('Package: a\nDescription: short\n long\n .\n end\n', 'x');
    assert.equal(s.fields.Description, 'short\nlong\n\nend');
  });
});

describe('what a plain build reads of the package database', { skip: !has('strace') && 'strace is not installed' }, () => {
  it('redis-server: the status file once, a few lists, the md5sums of the packages it ships only, no copyright file', () => {
    const log = join(dir, 'redis-openat.log');
    const layout = join(dir, 'redis-layout');
    const r = run('strace', ['-f', '-qq', '-e', 'trace=openat', '-e', 'signal=none', '-o', log, process.execPath, BIN, 'build', '/usr/bin/redis-server', '-o', `oci:${layout}`, '--explain', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const opened = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => !/= -1 E/.test(l))
      .map((l) => /openat\([^"]*"([^"]+)"/.exec(l)?.[1])
      .filter((p): p is string => !!p);
    const shipped = new Set(
      (JSON.parse(r.stdout).explain.files as { package?: string }[]).filter((f) => f.package).map((f) => f.package!.replace(/:.*/, '')),
    );
    assert.ok(shipped.has('libc6') && shipped.has('redis-tools'), [...shipped].join(' '));
    // Once, or not at all when the cache holds an index of it (then read for the records' stanzas, once).
    assert.ok(opened.filter((p) => p === '/var/lib/dpkg/status').length <= 1, 'the status file is read at most once per build');
    const lists = opened.filter((p) => /^\/var\/lib\/dpkg\/info\/.*\.list$/.test(p));
    const installed = DpkgDatabase.open('/')!.packages().length;
    assert.ok(lists.length > 0 && lists.length <= 3 * shipped.size, `${lists.length} lists read for ${shipped.size} packages (of ${installed} installed)`);
    const sums = opened.filter((p) => p.endsWith('.md5sums')).map((p) => p.replace(/^.*\/info\//, '').replace(/(:[^.]*)?\.md5sums$/, ''));
    assert.ok(sums.includes('libc6') && sums.includes('libssl3'), sums.join(' '));
    assert.deepEqual(
      sums.filter((n) => !shipped.has(n)),
      [],
      'md5sums of the packages shipped only',
    );
    assert.deepEqual(
      opened.filter((p) => p.startsWith('/usr/share/doc/')),
      [],
      'copyright files are read for SBOM documents only',
    );
  });
});

describe('the status index kept in the cache, and what the database costs a build', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const names = (db: DpkgDatabase) => db.packages().map((p) => `${p.name}:${p.arch}=${p.version}`);

  it('serves the index only for the status file it was made from (rename, in-place edit with the old size and mtime)', { skip: !has('strace') && 'strace is not installed' }, async () => {
    const root = fixture('indexed', { 'var/lib/dpkg/status': STATUS, 'var/lib/dpkg/info/footool.list': '/.\n/usr/bin/foo\n' });
    const cache = join(dir, 'index-cache');
    const status = join(root, 'var/lib/dpkg/status');
    // A status file changed within the last two seconds is not indexed (the same stamp could hide a second write).
    assert.deepEqual(names(DpkgDatabase.open(root, undefined, { cacheDir: cache })!), ['libfoo1:amd64=1.0-1+b1', 'libfoo1:i386=1.0-1+b1', 'footool:amd64=1:1.0-1']);
    assert.equal(existsSync(join(cache, 'dpkg')), false, 'a file written just now is not indexed');
    await sleep(2100);
    DpkgDatabase.open(root, undefined, { cacheDir: cache });
    assert.equal(readdirSync(join(cache, 'dpkg')).length, 1);
    // With the index, opening reads no byte of the status file; a stanza's text reads its own bytes (each stanza asked for).
    const script = `import { DpkgDatabase } from ${JSON.stringify(new URL('../src/packages/dpkg.js', import.meta.url).href)};
      const db = DpkgDatabase.open(process.argv[1], undefined, { cacheDir: process.argv[2] });
      console.log(db.packages().length); process.stderr.write('--fields--\\n'); console.log(db.get('libfoo1').fields.Description.length, db.get('footool').stanza.length);`;
    const log = join(dir, 'index-strace.log');
    const r = run('strace', ['-f', '-qq', '-e', 'trace=openat,write,pread64', '-e', 'signal=none', '-o', log, process.execPath, '--input-type=module', '-e', script, root, cache]);
    assert.equal(r.status, 0, r.stderr);
    const footool = STATUS.slice(STATUS.indexOf('Package: footool'), STATUS.indexOf('\n\nPackage: gone') + 1);
    assert.equal(r.stdout, `3\n27 ${footool.length}\n`);
    const trace = readFileSync(log, 'utf8');
    const split = trace.indexOf('--fields--');
    const opens = (t: string) => t.split('\n').filter((l) => l.includes(`"${status}"`)).length;
    assert.equal(opens(trace.slice(0, split)), 0, 'the index answers the open');
    assert.equal(opens(trace.slice(split)), 2, 'the status file opened for each of the two stanzas');
    const reads = trace.slice(split).split('\n').filter((l) => /^\d+ +pread64\(/.test(l));
    assert.ok(reads.length >= 2 && reads.every((l) => / = (\d+)$/.exec(l) && Number(/ = (\d+)$/.exec(l)![1]) < STATUS.length), `each reads its stanza, not the whole file: ${reads.join('; ')}`);

    // dpkg's way: a new file renamed into place.
    const footool2 = STATUS.replace('Version: 1:1.0-1', 'Version: 1:1.0-2');
    writeFileSync(status + '-new', footool2);
    renameSync(status + '-new', status);
    assert.deepEqual(names(DpkgDatabase.open(root, undefined, { cacheDir: cache })!), ['libfoo1:amd64=1.0-1+b1', 'libfoo1:i386=1.0-1+b1', 'footool:amd64=1:1.0-2']);
    await sleep(2100);
    DpkgDatabase.open(root, undefined, { cacheDir: cache });
    // An edit in place of the same size, its mtime put back: the ctime still tells.
    const before = statSync(status);
    writeFileSync(status, footool2.replace('Version: 1:1.0-2', 'Version: 1:1.0-3'));
    utimesSync(status, before.atime, before.mtime);
    assert.equal(statSync(status).size, before.size);
    const db = DpkgDatabase.open(root, undefined, { cacheDir: cache })!;
    assert.deepEqual(names(db), ['libfoo1:amd64=1.0-1+b1', 'libfoo1:i386=1.0-1+b1', 'footool:amd64=1:1.0-3']);
    // Changed after the database was opened from its index: the stanza's text is not taken from the new file.
    await sleep(2100);
    DpkgDatabase.open(root, undefined, { cacheDir: cache });
    const stale = DpkgDatabase.open(root, undefined, { cacheDir: cache })!;
    writeFileSync(status, STATUS);
    assert.throws(() => stale.get('footool')!.fields, /status:0: changed while it was being read/);
    assert.equal(DpkgDatabase.open(root, undefined, { cacheDir: cache })!.get('footool')!.fields.Version, '1:1.0-1');
  });

  it('a file of a non-ASCII name is found in the lists (UTF-8, as dpkg writes them) with or without the index of their names', async () => {
    const root = fixture('utf8-names', {
      'var/lib/dpkg/status': 'Package: uni\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\nPackage: other\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n',
      'var/lib/dpkg/info/uni.list': '/.\n/usr\n/usr/bin\n/usr/bin/tööl\n',
      'var/lib/dpkg/info/other.list': '/.\n/usr\n/usr/bin\n/usr/bin/tøøl\n',
      'usr/bin/tööl': 'x',
      'usr/bin/tøøl': 'x',
    });
    const cache = join(dir, 'utf8-names-cache');
    await new Promise((r) => setTimeout(r, 2100));
    // Without a cache (the lists searched), then with one (the first run makes the index, the second asks it).
    for (const cacheDir of [undefined, cache, cache]) {
      const db = DpkgDatabase.open(root, undefined, cacheDir ? { cacheDir } : undefined)!;
      assert.equal(db.ownerOf('/usr/bin/tööl')?.name, 'uni', String(cacheDir));
      assert.equal(db.ownerOf('/usr/bin/tøøl')?.name, 'other', String(cacheDir));
    }
  });

  it('an info/ file that is a symlink is followed inside the root, not on the host', () => {
    const root = fixture('info-link', {
      'var/lib/dpkg/status': STATUS,
      'var/lib/dpkg/info/footool.list': '->/srv/lists/footool.list',
      'srv/lists/footool.list': '/.\n/usr/bin/foo\n',
    });
    assert.deepEqual(DpkgDatabase.open(root)!.files(DpkgDatabase.open(root)!.get('footool')!), ['/usr/bin/foo']);
  });

  it('owners through every list resolve the directories of same-named entries only (a few lstats, not one per directory)', () => {
    const db = DpkgDatabase.open('/')!;
    let lstats = 0;
    const lstat = db.fs.lstat.bind(db.fs);
    db.fs.lstat = (p: string) => {
      lstats++;
      return lstat(p);
    };
    // More unexplained paths than the targeted search takes: every list is indexed.
    const unknown = Array.from({ length: 30 }, (_, i) => `/usr/share/nothing-here/file${i}`);
    const owners = db.ownersOf([...unknown, '/usr/bin/sh', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/bin/ls']);
    assert.equal(owners.get('/usr/bin/sh')?.[0]?.name, 'dash');
    assert.equal(owners.get('/usr/bin/ls')?.[0]?.name, 'coreutils');
    assert.ok(owners.get('/usr/lib/x86_64-linux-gnu/libc.so.6')?.[0]?.name.startsWith('libc6'));
    assert.deepEqual(unknown.flatMap((u) => owners.get(u)!), []);
    assert.ok(lstats < 100, `${lstats} lstats`);
  });

  it('a build is not served from the cache once a .list or the status file of its root changed (edits of the same size, mtimes put back)', async () => {
    const prog = readFileSync('/bin/busybox');
    const md5 = createHash('md5').update(prog).digest('hex');
    const status = 'Package: prog\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n';
    const root = fixture('memo-root', {
      'usr/bin/prog': '',
      'var/lib/dpkg/status': status,
      'var/lib/dpkg/info/prog.list': '/.\n/usr\n/usr/bin\n/usr/bin/prog\n',
      'var/lib/dpkg/info/prog.md5sums': `${md5}  usr/bin/prog\n`,
    });
    writeFileSync(join(root, 'usr/bin/prog'), prog);
    chmodSync(join(root, 'usr/bin/prog'), 0o755);
    const env = { OCISLIM_CACHE: join(dir, 'memo-cache') };
    const build = (...extra: string[]) => {
      const r = ocislim(['build', '--root', root, '/usr/bin/prog', '-o', `oci:${join(dir, 'memo-out')}`, ...extra], { env });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    /** Rewrites a file of the root in place, keeping its size and mtime. */
    const edit = (rel: string, from: string, to: string) => {
      const p = join(root, rel);
      const st = statSync(p);
      writeFileSync(p, readFileSync(p, 'utf8').replace(from, to));
      utimesSync(p, st.atime, st.mtime);
      assert.equal(statSync(p).size, st.size);
    };
    await new Promise((r) => setTimeout(r, 2100));
    const first = build();
    assert.equal(readdirSync(join(env.OCISLIM_CACHE, 'builds')).length, 1, 'the build is remembered');
    assert.equal(readdirSync(join(env.OCISLIM_CACHE, 'dpkg')).filter((n) => !/^(names[0-9a-f]?|paths|elf[01][01])-/.test(n)).length, 1, 'the status file is indexed');
    assert.equal(build(), first);
    // The program no longer listed: nobody's file, no package record.
    edit('var/lib/dpkg/info/prog.list', '/usr/bin/prog', '/usr/bin/prox');
    const unlisted = build();
    assert.notEqual(unlisted, first);
    assert.equal(build('--no-cache'), unlisted);
    edit('var/lib/dpkg/info/prog.list', '/usr/bin/prox', '/usr/bin/prog');
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(build(), first);
    // Another version in the status file.
    edit('var/lib/dpkg/status', 'Version: 1.0-1', 'Version: 1.0-2');
    const other = build();
    assert.notEqual(other, first);
    assert.equal(build('--no-cache'), other);
  });

  it("the inventory does not look up the build's staged files in the lists", () => {
    const stage = join(dir, 'stage');
    mkdirSync(stage, { recursive: true });
    writeFileSync(join(stage, 'm0'), 'staged');
    const db = DpkgDatabase.open('/')!;
    const asked: string[] = [];
    const ownersOf = db.ownersOf.bind(db);
    db.ownersOf = (paths: string[]) => {
      asked.push(...paths);
      return ownersOf(paths);
    };
    const entries = [
      { path: '/usr/bin/staged', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, source: join(stage, 'm0') },
      { path: '/usr/bin/sh', type: 'file' as const, mode: 0o755, uid: 0, gid: 0, source: '/usr/bin/dash' },
    ];
    const inv = takeInventory(entries, new RootFs('/'), db, [{ from: join(stage, 'm0'), to: '/usr/bin/dash' }], null, { scratch: stage });
    assert.deepEqual(asked.filter((p) => p.startsWith(stage)), []);
    assert.ok(asked.includes('/usr/bin/staged') && asked.includes('/usr/bin/dash'));
    assert.deepEqual(inv.unowned.map((f) => f.path), ['/usr/bin/staged']);
    assert.equal(inv.packages.find((p) => p.files.some((f) => f.path === '/usr/bin/sh'))?.pkg.name, 'dash');
  });

  it('the classic Dockerfile (FROM scratch, ADD rootfs.tar.gz): its memo journal holds few directory probes', async () => {
    const ctx = join(dir, 'classic');
    sh(`mkdir -p rootfs/usr/bin && cp /usr/bin/redis-server rootfs/usr/bin/
      for f in $(ldd /usr/bin/redis-server | grep -o '/[^ ]*'); do mkdir -p rootfs$(dirname $f); cp -L $f rootfs$f; done
      tar -C rootfs -czf rootfs.tar.gz . && rm -rf rootfs
      printf 'FROM scratch\nADD rootfs.tar.gz /\nCMD ["/usr/bin/redis-server"]\n' > Dockerfile`, (mkdirSync(ctx, { recursive: true }), ctx));
    await new Promise((r) => setTimeout(r, 2100));
    const cache = join(dir, 'classic-cache');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${join(dir, 'classic-out')}`], { env: { OCISLIM_CACHE: cache } });
    assert.equal(r.status, 0, r.stderr);
    const [rec] = readdirSync(join(cache, 'builds'));
    const obs = (JSON.parse(readFileSync(join(cache, 'builds', rec), 'utf8')) as { obs: [string, string, string][] }).obs;
    const dirs = obs.filter(([k, , f]) => k === 'l' && f.startsWith('d:'));
    // One lstat per directory of every list read was 6,500 of 7,500 observations.
    assert.ok(dirs.length < 200, `${dirs.length} directories of ${obs.length} observations`);
    // Each info/ file opened under the name dpkg gives it (Multi-Arch: same or not): no failed try first.
    const missing = obs.filter(([k, p, f]) => k === 's' && p.startsWith('/var/lib/dpkg/info/') && f === 'E:ENOENT');
    assert.ok(missing.length < 10, missing.map((o) => o[1]).join(' '));
  });
});
