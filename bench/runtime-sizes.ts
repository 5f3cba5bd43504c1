// The README's table of runtime images: each program built with `ocislim build PROGRAM` (the runtime rule on), its
// compressed and uncompressed size measured from the blobs, beside what Debian installs for it: the Installed-Size of
// the program's package and its Depends/Pre-Depends closure (apt-get install --no-install-recommends on an empty
// system). Run: npm run build && node dist/bench/runtime-sizes.js
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DpkgDatabase, DpkgPackage } from '../src/packages/dpkg.js';
import { installedOf, relationGroups } from '../src/builder/packages.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const PROGRAMS = ['/usr/bin/python3', '/usr/bin/perl', '/usr/bin/php8.2', '/usr/lib/postgresql/15/bin/postgres', '/usr/sbin/nginx', '/usr/bin/convert', '/usr/bin/openssl', '/usr/bin/gpg', '/usr/bin/git', '/usr/bin/tclsh', '/usr/bin/tar --with-shell', '/usr/bin/dpkg-deb', '/usr/bin/redis-server'];

async function sizes(layout: string): Promise<{ compressed: number; uncompressed: number }> {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d: string) => join(layout, 'blobs/sha256', d.slice(7));
  const m = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  let compressed = m.config.size;
  let uncompressed = 0;
  for (const l of m.layers) {
    compressed += l.size;
    await pipeline(createReadStream(blob(l.digest)), createGunzip(), new Writable({ write: (c: Buffer, _e, cb) => ((uncompressed += c.length), cb()) }));
  }
  return { compressed, uncompressed };
}

function installed(db: DpkgDatabase, own: DpkgPackage): number {
  const seen = new Set<DpkgPackage>([own]);
  const queue = [own];
  while (queue.length) {
    const p = queue.shift()!;
    for (const f of ['Pre-Depends', 'Depends']) {
      for (const g of relationGroups(p.fields[f])) {
        const d = installedOf(db, g, db.nativeArch());
        if (d && !seen.has(d)) {
          seen.add(d);
          queue.push(d);
        }
      }
    }
  }
  return [...seen].reduce((n, p) => n + Number(p.fields['Installed-Size'] ?? 0) * 1024, 0);
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const work = mkdtempSync(join(tmpdir(), 'ocislim-runtime-sizes-'));
const db = DpkgDatabase.open('/')!;
try {
  console.log('| program | image compressed | image uncompressed | Debian installed size (package + Depends) |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const line of PROGRAMS) {
    const [p, ...flags] = line.split(' ');
    const layout = join(work, p.replace(/\//g, '_'));
    const r = spawnSync(BIN, ['build', p, ...flags, '-o', `oci:${layout}`], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`| ${p} | build failed: ${r.stderr.trim().split('\n').pop()} | | |`);
      continue;
    }
    const s = await sizes(layout);
    const own = db.ownerOf(realpathSync(p))!;
    console.log(`| \`${line}\` (${own.name}) | ${mb(s.compressed)} | ${mb(s.uncompressed)} | ${mb(installed(db, own))} |`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
