import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlFileError, DpkgDatabase, readOsRelease } from '../src/packages/dpkg.js';
import { parseStanzas, quickScan, scanStanzas } from '../src/packages/deb822.js';
import { BIN } from './helpers/cli.js';
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
    assert.equal(opened.filter((p) => p === '/var/lib/dpkg/status').length, 1, 'the status file is read once per build');
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
