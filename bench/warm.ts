// The CI case: the same build run again, pushed to a registry that already has the blobs. Interleaved in one run:
//  1. the classic Dockerfile (ldd + tar -> rootfs.tar.gz, ADD to scratch): `ocislim build -f --push` with its layer
//     cache vs `buildah --storage-driver vfs bud` (its layer cache) + `buildah push`;
//  2. the redis image: `ocislim build --push` with its layer cache vs lddtree --copy-to-tree + umoci + skopeo copy;
//  3. the same with an empty cache each time (the cold build) against the same manual pipeline.
// Medians of ROUNDS after one warm-up round; wall and CPU (user + sys of the whole process tree).
// Run: npm run build && node dist/bench/warm.js [ROUNDS]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/helpers/registry.js';
import { has } from './util.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-warm-'));
const rounds = Number(process.argv[2] ?? 5);

function timed(script: string, env: NodeJS.ProcessEnv = {}): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', 'bash', '-ec', script], { cwd: work, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: user + sys };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const reg = await startRegistry(join(work, 'registry'));
try {
  timed(`mkdir -p classic/rootfs/usr/bin && cp /usr/bin/redis-server classic/rootfs/usr/bin/
      for f in $(ldd /usr/bin/redis-server | grep -o '/[^ ]*'); do mkdir -p classic/rootfs$(dirname $f); cp -L $f classic/rootfs$f; done
      tar -C classic/rootfs -czf classic/rootfs.tar.gz . && rm -rf classic/rootfs
      printf 'FROM scratch\\nADD rootfs.tar.gz /\\nEXPOSE 6379\\nCMD ["/usr/bin/redis-server"]\\n' > classic/Dockerfile`);
  const cache = { OCISLIM_CACHE: join(work, 'cache') };
  const buildah = `buildah --storage-driver vfs --root ${join(work, 'bh-root')} --runroot ${join(work, 'bh-run')}`;
  const jobs: { name: string; peer?: string; run: (i: number) => { wall: number; cpu: number } }[] = [
    { name: 'ocislim build -f Dockerfile --push (warm cache)', peer: 'buildah', run: (i) => timed(`node ${BIN} build -f classic/Dockerfile classic --push ${reg.host}/df:${i} >/dev/null 2>&1`, cache) },
    ...(has('buildah')
      ? [{ name: 'buildah bud (layer cache) + buildah push', run: (i: number) => timed(`${buildah} bud -q --layers -t df:${i} classic >/dev/null 2>&1 && ${buildah} push --tls-verify=false df:${i} docker://${reg.host}/bh:${i} >/dev/null 2>&1`) }]
      : []),
    { name: 'ocislim build redis --push (warm cache)', peer: 'manual', run: (i) => timed(`node ${BIN} build /usr/bin/redis-server --expose 6379 --push ${reg.host}/r:${i} >/dev/null 2>&1`, cache) },
    { name: 'ocislim build redis --push (empty cache)', peer: 'manual', run: (i) => timed(`rm -rf cold && node ${BIN} build /usr/bin/redis-server --expose 6379 --push ${reg.host}/c:${i} >/dev/null 2>&1`, { OCISLIM_CACHE: join(work, 'cold') }) },
    {
      name: 'lddtree + umoci + skopeo copy',
      run: (i) =>
        timed(`rm -rf tree u && /usr/bin/python3 /usr/bin/lddtree --copy-to-tree tree /usr/bin/redis-server >/dev/null
          umoci init --layout u && umoci new --image u:latest && umoci insert --image u:latest tree / >/dev/null
          umoci config --image u:latest --config.entrypoint /usr/bin/redis-server --config.exposedports 6379/tcp
          skopeo copy --dest-tls-verify=false oci:u:latest docker://${reg.host}/m:${i} >/dev/null`),
    },
  ];
  const results = new Map<string, { wall: number[]; cpu: number[] }>();
  for (let i = 0; i <= rounds; i++) {
    for (const j of jobs) {
      const t = j.run(i);
      if (i === 0) continue; // warm-up: fills the caches and the registry
      const r = results.get(j.name) ?? results.set(j.name, { wall: [], cpu: [] }).get(j.name)!;
      r.wall.push(t.wall);
      r.cpu.push(t.cpu);
    }
  }
  const peerOf = (p?: string) => (p === 'buildah' ? results.get(jobs[1].name) : p === 'manual' ? results.get('lddtree + umoci + skopeo copy') : undefined);
  console.log(`### Rebuild and push, blobs already in the registry (median of ${rounds}, interleaved, after a warm-up round)\n`);
  console.log('| work | wall | CPU | wall ÷ peer | CPU ÷ peer |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const j of jobs) {
    const r = results.get(j.name)!;
    const p = peerOf(j.peer);
    const ratio = (a: number[], b?: number[]) => (b ? (median(a) / median(b)).toFixed(2) : '');
    console.log(`| ${j.name} | ${median(r.wall).toFixed(2)} s | ${median(r.cpu).toFixed(2)} s | ${ratio(r.wall, p?.wall)} | ${ratio(r.cpu, p?.cpu)} |`);
  }
} finally {
  await reg.stop();
  spawnSync('bash', ['-c', `buildah --storage-driver vfs --root ${join(work, 'bh-root')} --runroot ${join(work, 'bh-run')} rm -a >/dev/null 2>&1; true`]);
  rmSync(work, { recursive: true, force: true });
}
