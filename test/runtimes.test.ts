import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync, chownSync } from 'node:fs';
import { createServer, Server } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislimAsync } from './helpers/cli.js';
import { freePort, runcRunAsync, runcStart, umociUnpack } from './helpers/container.js';
import { removeDir, run, sh, tempDir } from './helpers/sh.js';
import { privateTrustStore } from './helpers/truststore.js';

/**
 * Acceptance of issue 10: real Debian programs built with `ocislim build PROGRAM [its script or config]` and no other
 * flag (tar: --with-shell) run a real operation under runc. The images are built up front, two at a time.
 */
let dir: string;
let server: Server;
let url: string;
let tlsPort: number;
const built = new Map<string, Promise<{ bundle: string; stderr: string }>>();

function build(name: string, args: string[], wrap?: (argv: string[]) => string[]): Promise<{ bundle: string; stderr: string }> {
  const p = (async () => {
    const layout = join(dir, `img-${name}`);
    const r = await ocislimAsync(['build', ...args, '-o', `oci:${layout}`], { timeout: 600000, wrap });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    const bundle = join(dir, `${name}-bundle`);
    umociUnpack(`${layout}:latest`, bundle);
    return { bundle, stderr: r.stderr };
  })();
  built.set(name, p);
  return p;
}

/** Edits a bundle's config.json (capabilities, user) before the helpers run it. */
function configure(bundle: string, f: (c: any) => void): void {
  const p = join(bundle, 'config.json');
  const c = JSON.parse(readFileSync(p, 'utf8'));
  f(c);
  writeFileSync(p, JSON.stringify(c));
}

before(async () => {
  dir = tempDir('ocislim-runtimes-');
  // A CA in the build root's trust store (a private copy of the host's, see truststore.ts) and a server certificate it signed.
  sh(
    `openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ocislim-runtimes-ca 2>/dev/null
     openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
     printf 'subjectAltName=IP:127.0.0.1\\n' > ext
     openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext 2>/dev/null`,
    dir,
  );
  const store = privateTrustStore(dir, join(dir, 'ca.crt'));
  server = createServer({ cert: readFileSync(join(dir, 'srv.crt')), key: readFileSync(join(dir, 'srv.key')) }, (_q, res) => res.end('hello over tls\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  tlsPort = (server.address() as { port: number }).port;
  url = `https://127.0.0.1:${tlsPort}/`;
  writeFileSync(
    join(dir, 't.py'),
    `import json, ssl, sqlite3, hashlib, ctypes, decimal, sys, urllib.request
con = sqlite3.connect(':memory:')
print(json.dumps({'sum': con.execute('select 1+1').fetchone()[0], 'sha': hashlib.sha256(b'x').hexdigest()[:8], 'dec': str(decimal.Decimal(1) / 4), 'c': ctypes.sizeof(ctypes.c_int)}))
print(urllib.request.urlopen(sys.argv[1]).read().decode(), end='')
`,
  );
  mkdirSync(join(dir, 'www'));
  writeFileSync(join(dir, 'www/index.html'), 'served by nginx\n');
  sh(`convert -size 16x16 xc:red ${join(dir, 'in.png')} && git init -q ${join(dir, 'repo')} && cd ${join(dir, 'repo')} && echo a > a && git add a && git -c user.email=a@b -c user.name=a commit -qm first`);
  // A Debian package for dpkg-deb to unpack (dpkg-deb runs tar by name through PATH).
  sh(
    `mkdir -p deb/DEBIAN deb/usr/share/ocislim-hello && echo hello from a deb > deb/usr/share/ocislim-hello/greeting
     printf 'Package: ocislim-hello\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@example.org>\\nDescription: test\\n' > deb/DEBIAN/control
     dpkg-deb --root-owner-group -Zgzip -b deb hello.deb >/dev/null`,
    dir,
  );
  // The two images that need the test CA are built seeing the store that holds it.
  await Promise.all([build('python', ['/usr/bin/python3', join(dir, 't.py')], store.wrap), build('openssl', ['/usr/bin/openssl'], store.wrap)]).catch(() => {});
  // Two builds at a time: the machine's cores are shared.
  const jobs: [string, string[]][] = [
    ['perl', ['/usr/bin/perl']],
    ['php', ['/usr/bin/php8.2']],
    ['postgres', ['/usr/lib/postgresql/15/bin/postgres']],
    ['nginx', ['/usr/sbin/nginx', join(dir, 'www')]],
    ['convert', ['/usr/bin/convert', join(dir, 'in.png')]],
    ['tar', ['/usr/bin/tar', '--with-shell']],
    ['dpkg-deb', ['/usr/bin/dpkg-deb']],
    ['gpg', ['/usr/bin/gpg']],
    ['git', ['/usr/bin/git', join(dir, 'repo')]],
  ];
  const queue = [...jobs];
  const worker = async () => {
    for (let j = queue.shift(); j; j = queue.shift()) await build(j[0], j[1]).catch(() => {});
  };
  await Promise.all([worker(), worker()]);
});

after(() => {
  server?.close();
  removeDir(dir);
});

describe('real programs run from their own runtime (package-aware builds)', () => {
  it('python3: json, ssl, sqlite3, hashlib, ctypes, decimal, and urllib over https with the CA from the build root', async () => {
    const { bundle, stderr } = await built.get('python')!;
    assert.match(stderr, /added libpython3\.11-stdlib \(\d+ files\): python3's package python3\.11-minimal needs it and both are built from python3\.11/);
    // python3.11's tools are siblings, not the interpreter's runtime.
    assert.match(stderr, /added python3\.11 \(\d+ files\): .* \(left out: 2 executables\)/);
    assert.ok(!existsSync(join(bundle, 'rootfs/usr/bin/pydoc3.11')), 'pydoc3.11 left out');
    const r = await runcRunAsync(bundle, ['/usr/bin/python3', join(dir, 't.py'), url]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '{"sum": 2, "sha": "2d711642", "dec": "0.25", "c": 4}\nhello over tls\n');
  });

  it('perl with JSON::PP and POSIX; php8.2 date() and json_encode', async () => {
    const perl = await built.get('perl')!;
    assert.match(perl.stderr, /added \/usr\/share\/perl\/5\.36\/ \(\d+ from perl-modules-5\.36\): perl names it/);
    const p = await runcRunAsync(perl.bundle, ['/usr/bin/perl', '-MJSON::PP', '-MPOSIX', '-e', 'print encode_json({a => POSIX::floor(2.5)}), "\\n"']);
    assert.equal(p.stdout, '{"a":2}\n', p.stderr);
    const php = await built.get('php')!;
    const q = await runcRunAsync(php.bundle, ['/usr/bin/php8.2', '-r', 'echo date("Y"), " ", json_encode(["a" => 1]), "\\n";']);
    assert.equal(q.stdout, `${new Date().getUTCFullYear()} {"a":1}\n`, q.stderr);
  });

  it('postgres: initdb as a non-root user, the server, SELECT 1+1 from the host psql over TCP', async () => {
    const { bundle } = await built.get('postgres')!;
    const uid = Number(run('id', ['-u', 'postgres']).stdout);
    const gid = Number(run('id', ['-g', 'postgres']).stdout);
    mkdirSync(join(bundle, 'rootfs/pgdata'));
    chownSync(join(bundle, 'rootfs/pgdata'), uid, gid);
    const init = await runcRunAsync(bundle, ['/usr/lib/postgresql/15/bin/initdb', '-D', '/pgdata/d', '-U', 'postgres', '--auth=trust'], undefined, { user: { uid, gid } });
    assert.equal(init.status, 0, init.stdout + init.stderr);
    const port = await freePort();
    const srv = runcStart(bundle, ['/usr/lib/postgresql/15/bin/postgres', '-D', '/pgdata/d', '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', '/tmp']);
    try {
      let out = '';
      for (let i = 0; i < 100 && out !== '2'; i++) {
        out = run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-Atc', 'SELECT 1+1']).stdout.trim();
        if (out !== '2') await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(out, '2');
    } finally {
      srv.stop();
    }
  });

  it('nginx with a Debian-style configuration (user www-data) serves a static file', async () => {
    const { bundle } = await built.get('nginx')!;
    const port = await freePort();
    const conf = join(bundle, 'rootfs/etc/nginx/test.conf');
    writeFileSync(
      conf,
      `user www-data;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log stderr;\nevents { worker_connections 64; }\nhttp {\n  include /etc/nginx/mime.types;\n  access_log off;\n  server { listen 127.0.0.1:${port}; root ${join(dir, 'www')}; }\n}\n`,
    );
    // As root with the capabilities a Docker container has, so that the workers switch to www-data.
    configure(bundle, (c) => {
      for (const k of ['bounding', 'effective', 'permitted']) c.process.capabilities[k] = [...new Set([...c.process.capabilities[k], 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID', 'CAP_DAC_OVERRIDE'])];
    });
    const srv = runcStart(bundle, ['/usr/sbin/nginx', '-c', '/etc/nginx/test.conf', '-g', 'daemon off;']);
    try {
      let body = '';
      for (let i = 0; i < 50 && !body; i++) {
        body = run('curl', ['-s', `http://127.0.0.1:${port}/`]).stdout;
        if (!body) await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(body, 'served by nginx\n', readFileSync(join(bundle, 'runc.log'), 'utf8'));
    } finally {
      srv.stop();
    }
  });

  it('ImageMagick convert PNG -> JPEG', async () => {
    const { bundle } = await built.get('convert')!;
    const r = await runcRunAsync(bundle, ['/usr/bin/convert', join(dir, 'in.png'), '/tmp/out.jpg']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(run('identify', ['-format', '%m %wx%h', join(bundle, 'rootfs/tmp/out.jpg')]).stdout, 'JPEG 16x16');
  });

  it('openssl s_client -verify_return_error to a local TLS server (CA from the build root), and openssl req -new -x509', async () => {
    const { bundle, stderr } = await built.get('openssl')!;
    assert.match(stderr, /\/usr\/lib\/ssl\/cert\.pem/);
    const c = await runcRunAsync(bundle, ['/usr/bin/openssl', 's_client', '-connect', `127.0.0.1:${tlsPort}`, '-verify_return_error', '-brief']);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stderr, /Verification: OK/);
    const req = await runcRunAsync(bundle, ['/usr/bin/openssl', 'req', '-new', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '/tmp/k.pem', '-out', '/tmp/c.pem', '-subj', '/CN=ocislim', '-days', '1']);
    assert.equal(req.status, 0, req.stderr);
    assert.match(run('openssl', ['x509', '-noout', '-subject', '-in', join(bundle, 'rootfs/tmp/c.pem')]).stdout, /CN = ocislim/);
  });

  it('tar -cJf: xz is found as a helper tar runs by name (tar Suggests xz-utils); --with-shell since tar runs it through /bin/sh', async () => {
    const { bundle, stderr } = await built.get('tar')!;
    assert.match(stderr, /added \/usr\/bin\/xz \(xz-utils\): tar runs programs by name and names "xz"; tar Suggests xz-utils/);
    const r = await runcRunAsync(bundle, ['/usr/bin/tar', '-cJf', '/tmp/x.tar.xz', '/usr/bin/tar']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(run('tar', ['-tJf', join(bundle, 'rootfs/tmp/x.tar.xz')]).stdout, /^usr\/bin\/tar$/m);
  });

  it('dpkg-deb -x: tar is found as a helper dpkg-deb runs by name (dpkg Depends tar)', async () => {
    const { bundle, stderr } = await built.get('dpkg-deb')!;
    assert.match(stderr, /added \/usr\/bin\/tar \(tar\): dpkg-deb runs programs by name and names "tar"; dpkg Depends tar/);
    cpSync(join(dir, 'hello.deb'), join(bundle, 'rootfs/tmp/hello.deb'));
    const r = await runcRunAsync(bundle, ['/usr/bin/dpkg-deb', '-x', '/tmp/hello.deb', '/tmp/out']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(bundle, 'rootfs/tmp/out/usr/share/ocislim-hello/greeting'), 'utf8'), 'hello from a deb\n');
  });

  it('gpg: symmetric encryption and decryption (gpg-agent comes as part of its runtime)', async () => {
    const { bundle } = await built.get('gpg')!;
    const common = ['--batch', '--homedir', '/tmp', '--passphrase', 'secret', '--pinentry-mode', 'loopback'];
    const enc = await runcRunAsync(bundle, ['/usr/bin/gpg', ...common, '-c', '-o', '/tmp/x.gpg', '/etc/group']);
    assert.equal(enc.status, 0, enc.stderr);
    const dec = await runcRunAsync(bundle, ['/usr/bin/gpg', ...common, '-d', '/tmp/x.gpg']);
    assert.equal(dec.status, 0, dec.stderr);
    assert.equal(dec.stdout, readFileSync(join(bundle, 'rootfs/etc/group'), 'utf8'));
  });

  it('git: clone over file://, commit, log (its git-core helpers and /bin/sh for them come with it)', async () => {
    const { bundle, stderr } = await built.get('git')!;
    assert.match(stderr, /added \/bin\/sh -> \/usr\/bin\/dash \(the program's own helpers need it/);
    const g = (args: string[]) => runcRunAsync(bundle, ['/usr/bin/git', '-c', 'user.name=t', '-c', 'user.email=t@x', '-c', 'safe.directory=*', ...args]);
    const clone = await g(['clone', '-q', `file://${join(dir, 'repo')}`, '/tmp/c']);
    assert.equal(clone.status, 0, clone.stderr);
    cpSync(join(dir, 't.py'), join(bundle, 'rootfs/tmp/c/t.py'));
    assert.equal((await g(['-C', '/tmp/c', 'add', 't.py'])).status, 0);
    const commit = await g(['-C', '/tmp/c', 'commit', '-qm', 'second']);
    assert.equal(commit.status, 0, commit.stderr);
    const log = await g(['-C', '/tmp/c', 'log', '--format=%s']);
    assert.equal(log.stdout, 'second\nfirst\n', log.stderr);
  });
});
