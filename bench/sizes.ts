// The size table of the README, in the classic form: image, base, language, compressed and uncompressed sizes.
// Every ocislim row is built here and measured from its blobs; the ubuntu/debian rows are public figures.
// Run: npm run build && node dist/bench/sizes.js
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-sizes-'));
const sh = (s: string) => {
  const r = spawnSync('bash', ['-ec', s], { cwd: work, encoding: 'utf8', env: { ...process.env, CGO_ENABLED: '0', GOCACHE: join(work, 'gocache'), HOME: work } });
  if (r.status !== 0) throw new Error(`${s}\n${r.stderr}`);
};

async function sizes(layout: string): Promise<{ compressed: number; uncompressed: number }> {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d: string) => join(layout, 'blobs/sha256', d.slice(7));
  const m = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  let compressed = m.config.size;
  let uncompressed = m.config.size;
  for (const l of m.layers) {
    compressed += l.size;
    let n = 0;
    await pipeline(createReadStream(blob(l.digest)), createGunzip(), new Writable({ write: (c: Buffer, _e, cb) => ((n += c.length), cb()) }));
    uncompressed += n;
  }
  return { compressed, uncompressed };
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
try {
  writeFileSync(join(work, 'hello.go'), 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("Hello World")\n}\n');
  sh('go build -o hello hello.go && mkdir ctx && cp hello ctx/ && printf "FROM scratch\\nCOPY hello /\\nENTRYPOINT [\\"/hello\\"]\\n" > ctx/Dockerfile');
  sh(`${BIN} build /usr/bin/redis-server --expose 6379 -o oci:redis 2>/dev/null`);
  // The classic recipe verbatim: ldd + tar make rootfs.tar.gz, and its Dockerfile ADDs it to scratch.
  sh(`mkdir -p classic/rootfs/usr/bin && cp /usr/bin/redis-server classic/rootfs/usr/bin/
      for f in $(ldd /usr/bin/redis-server | grep -o '/[^ ]*'); do mkdir -p classic/rootfs$(dirname $f); cp -L $f classic/rootfs$f; done
      tar -C classic/rootfs -czf classic/rootfs.tar.gz . && rm -rf classic/rootfs
      printf 'bind 127.0.0.1\\n' > classic/redis.conf
      printf 'FROM scratch\\nADD rootfs.tar.gz /\\nCOPY redis.conf /etc/redis/redis.conf\\nEXPOSE 6379\\nCMD ["redis-server"]\\n' > classic/Dockerfile
      ${BIN} build -f classic/Dockerfile classic -o oci:classic-oci 2>/dev/null`);
  sh(`${BIN} build /bin/busybox -o oci:busybox 2>/dev/null`);
  sh(`${BIN} build -f ctx/Dockerfile ctx -o oci:go 2>/dev/null`);
  const rows: string[][] = [];
  const add = async (image: string, base: string, lang: string, layout: string) => {
    const s = await sizes(join(work, layout));
    rows.push([image, base, lang, mb(s.compressed), mb(s.uncompressed)]);
  };
  await add('redis-server (ocislim build)', 'scratch', 'C', 'redis');
  await add('redis, classic recipe: ldd + tar + Dockerfile (ocislim build -f)', 'scratch', 'C', 'classic-oci');
  await add('busybox (ocislim build)', 'scratch', 'C (static)', 'busybox');
  await add('Go hello world (Dockerfile, ocislim)', 'scratch', 'Go, CGO_ENABLED=0', 'go');
  rows.push(['redis (classic docker recipe, public figure)', 'scratch', 'C', '—', '7.7 MB']);
  rows.push(['redis on ubuntu (public figure)', 'ubuntu', 'C', '—', '347 MB']);
  console.log('| image | base | language | compressed | uncompressed |\n| --- | --- | --- | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(`\nGo binary itself: ${mb(statSync(join(work, 'hello')).size)}; measured ${new Date().toISOString().slice(0, 10)} on Debian 12 amd64 (${readdirSync('/usr/bin').length} files in /usr/bin).`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
