// The cold build (empty layer cache), against the manual pipeline, interleaved in one run:
//  1. the redis image to an OCI layout: `ocislim build` vs lddtree --copy-to-tree + umoci;
//  2. the same pushed to a repository the registry has never seen (every blob uploaded on both sides): `ocislim
//     build --push` vs lddtree + umoci + skopeo copy.
// Each round runs every job once, in turn; medians of ROUNDS after one warm-up round (page cache, the registry).
// Wall and CPU (user + sys of the whole process tree, /usr/bin/time); the load average before and after is printed,
// since the machine is shared. The compressed size of the layout is compared with umoci's. ocislim runs as a program,
// as npx and a PATH lookup start it; when NODE_EXTRA_CA_CERTS is set (Node 20 parses that file at start; the launcher,
// bin/ocislim.js, keeps it from Node), the layout build runs once more without it.
// Run: npm run build && node dist/bench/cold.js [ROUNDS]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/helpers/registry.js';
import { has, ratioRows, timedScript } from './util.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-cold-'));
const rounds = Number(process.argv[2] ?? 7);

const timed = (script: string, env: NodeJS.ProcessEnv = {}) => timedScript(script, work, env);
const blobBytes = (d: string) => Number(spawnSync('du', ['-sb', '--apparent-size', join(work, d, 'blobs')], { encoding: 'utf8' }).stdout.split('\t')[0]);
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

if (!has('lddtree') || !has('umoci') || !has('skopeo')) throw new Error('needs lddtree (pax-utils), umoci and skopeo');
const reg = await startRegistry(join(work, 'registry'));
const manual = `rm -rf tree u && /usr/bin/python3 /usr/bin/lddtree --copy-to-tree tree /usr/bin/redis-server >/dev/null
  umoci init --layout u && umoci new --image u:latest && umoci insert --image u:latest tree / >/dev/null
  umoci config --image u:latest --config.entrypoint /usr/bin/redis-server --config.exposedports 6379/tcp`;
// A fresh cache directory each time: the cold build.
const cold = { OCISLIM_CACHE: join(work, 'cache') };
try {
  const jobs: { name: string; peer?: string; run: (i: number) => { wall: number; cpu: number } }[] = [
    { name: 'ocislim build redis -o oci: (empty cache)', peer: 'lddtree + umoci', run: () => timed(`rm -rf cache o && ${BIN} build /usr/bin/redis-server --expose 6379 -o oci:o >/dev/null 2>&1`, cold) },
    { name: 'lddtree + umoci', run: () => timed(manual) },
    // Node reads and parses every certificate of NODE_EXTRA_CA_CERTS when it starts, before any line of ocislim runs
    // (set to the system's whole bundle, about 40 ms of CPU): the same build without it, when it is set here.
    ...(process.env.NODE_EXTRA_CA_CERTS
      ? [{ name: 'ocislim build redis -o oci: (empty cache; NODE_EXTRA_CA_CERTS unset)', peer: 'lddtree + umoci', run: () => timed(`rm -rf cache o && env -u NODE_EXTRA_CA_CERTS ${BIN} build /usr/bin/redis-server --expose 6379 -o oci:o >/dev/null 2>&1`, cold) }]
      : []),
    { name: 'ocislim build redis --push (empty cache, new repository)', peer: 'lddtree + umoci + skopeo copy', run: (i) => timed(`rm -rf cache && ${BIN} build /usr/bin/redis-server --expose 6379 --push ${reg.host}/o${i}:latest >/dev/null 2>&1`, cold) },
    { name: 'lddtree + umoci + skopeo copy', run: (i) => timed(`${manual}\n skopeo copy -q --dest-tls-verify=false oci:u:latest docker://${reg.host}/m${i}:latest >/dev/null`) },
  ];
  const before = load();
  const results = new Map<string, { wall: number[]; cpu: number[] }>();
  for (let i = 0; i <= rounds; i++) {
    for (const j of jobs) {
      const t = j.run(i);
      if (i === 0) continue; // warm-up
      const r = results.get(j.name) ?? results.set(j.name, { wall: [], cpu: [] }).get(j.name)!;
      r.wall.push(t.wall);
      r.cpu.push(t.cpu);
    }
  }
  const after = load();
  const size = blobBytes('o');
  const umociSize = blobBytes('u');
  console.log(`### Cold build (empty cache), median of ${rounds} interleaved rounds; load average ${before} before, ${after} after\n`);
  console.log(ratioRows(jobs, results));
  console.log(`\nCompressed size (all blobs of the layout): ocislim ${(size / 1e6).toFixed(2)} MB, umoci ${(umociSize / 1e6).toFixed(2)} MB (${(size / umociSize).toFixed(3)}×)`);
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
