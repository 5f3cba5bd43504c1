// The CI case: a build run again and pushed to a registry that already has the blobs. Interleaved in one run, each
// ocislim job right beside its peer on the same input:
//  1. the classic Dockerfile (ldd + tar -> rootfs.tar.gz, ADD to scratch), same inputs: `ocislim build -f --push`
//     with its cache vs `buildah --storage-driver vfs bud` (its layer cache) + `buildah push`;
//  2. the redis image, same inputs: `ocislim build --push` with its cache vs lddtree --copy-to-tree + umoci + skopeo;
//  3. only the application binary changed (a copy of redis-server with a few bytes appended, new each round, built
//     as /usr/bin/redis-server): the same two tools as in 2;
//  4. the classic Dockerfile with only the application binary changed (rootfs.tar.gz made again from the new binary
//     before the round, untimed): the same two tools as in 1;
//  5. redis with an empty cache each time (the cold build) against the manual pipeline of 2.
// Medians of ROUNDS after one warm-up round; wall and CPU (user + sys of the whole process tree, /usr/bin/time).
// ocislim runs as a program (bin/ocislim.js), as npx and a PATH lookup start it.
// Run: npm run build && node dist/bench/warm.js [ROUNDS]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/helpers/registry.js';
import { has, median, ratioRows, timedScript } from './util.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-warm-'));
const rounds = Number(process.argv[2] ?? 5);

const timed = (script: string, env: NodeJS.ProcessEnv = {}) => timedScript(script, work, env, lastErr);
function sh(script: string): void {
  const r = spawnSync('bash', ['-ec', script], { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}`);
}
/** What the last ocislim run said on stderr (kept for a failure's report). */
const lastErr = () => {
  try {
    return readFileSync(join(work, 'last.err'), 'utf8');
  } catch {
    return '';
  }
};

/** ldd + tar: the classic recipe's rootfs.tar.gz of a program (as /usr/bin/redis-server) and its libraries. */
function classic(dir: string, program: string): void {
  sh(`rm -rf ${dir}/rootfs && mkdir -p ${dir}/rootfs/usr/bin && cp ${program} ${dir}/rootfs/usr/bin/redis-server
    for f in $(ldd ${program} | grep -o '/[^ ]*'); do mkdir -p ${dir}/rootfs$(dirname $f); cp -L $f ${dir}/rootfs$f; done
    tar -C ${dir}/rootfs -czf ${dir}/rootfs.tar.gz . && rm -rf ${dir}/rootfs
    printf 'FROM scratch\\nADD rootfs.tar.gz /\\nEXPOSE 6379\\nCMD ["/usr/bin/redis-server"]\\n' > ${dir}/Dockerfile`);
}

const reg = await startRegistry(join(work, 'registry'));
try {
  sh('mkdir -p classic app classic-app');
  classic('classic', '/usr/bin/redis-server');
  const cache = { OCISLIM_CACHE: join(work, 'cache') };
  const buildah = `buildah --storage-driver vfs --root ${join(work, 'bh-root')} --runroot ${join(work, 'bh-run')}`;
  const manual = (program: string, repo: string) => (i: number) =>
    timed(`rm -rf tree u && /usr/bin/python3 /usr/bin/lddtree --copy-to-tree tree ${program} >/dev/null
      if [ ${program} != /usr/bin/redis-server ]; then mkdir -p tree/usr/bin && mv tree${program} tree/usr/bin/redis-server; fi
      umoci init --layout u && umoci new --image u:latest && umoci insert --image u:latest tree / >/dev/null
      umoci config --image u:latest --config.entrypoint /usr/bin/redis-server --config.exposedports 6379/tcp
      skopeo copy --dest-tls-verify=false oci:u:latest docker://${reg.host}/${repo}:${i} >/dev/null`);
  const bud = (dir: string, repo: string) => (i: number) =>
    timed(`${buildah} bud -q --layers -t ${repo}:${i} ${dir} >/dev/null 2>&1 && ${buildah} push --tls-verify=false ${repo}:${i} docker://${reg.host}/${repo}:${i} >/dev/null 2>&1`);
  type Job = { name: string; peer?: string; run: (i: number) => { wall: number; cpu: number } };
  const jobs: Job[] = [
    { name: 'same inputs: ocislim build -f Dockerfile --push', peer: 'same inputs: buildah bud + push', run: (i) => timed(`${BIN} build -f classic/Dockerfile classic --push ${reg.host}/df:${i} >/dev/null 2>last.err`, cache) },
    ...(has('buildah') ? [{ name: 'same inputs: buildah bud + push', run: bud('classic', 'bh') }] : []),
    { name: 'same inputs: ocislim build redis --push', peer: 'same inputs: lddtree + umoci + skopeo', run: (i) => timed(`${BIN} build /usr/bin/redis-server --expose 6379 --push ${reg.host}/r:${i} >/dev/null 2>last.err`, cache) },
    { name: 'same inputs: lddtree + umoci + skopeo', run: manual('/usr/bin/redis-server', 'm') },
    {
      name: 'binary changed: ocislim build --push',
      peer: 'binary changed: lddtree + umoci + skopeo',
      run: (i) => timed(`${BIN} build app/redis-server:/usr/bin/redis-server --expose 6379 --push ${reg.host}/ra:${i} >/dev/null 2>last.err`, cache),
    },
    { name: 'binary changed: lddtree + umoci + skopeo', run: manual(join(work, 'app/redis-server'), 'ma') },
    {
      name: 'binary changed: ocislim build -f Dockerfile --push',
      peer: 'binary changed: buildah bud + push',
      run: (i) => timed(`${BIN} build -f classic-app/Dockerfile classic-app --push ${reg.host}/dfa:${i} >/dev/null 2>last.err`, cache),
    },
    ...(has('buildah') ? [{ name: 'binary changed: buildah bud + push', run: bud('classic-app', 'bha') }] : []),
    { name: 'empty cache: ocislim build redis --push', peer: 'same inputs: lddtree + umoci + skopeo', run: (i) => timed(`rm -rf cold && ${BIN} build /usr/bin/redis-server --expose 6379 --push ${reg.host}/c:${i} >/dev/null 2>last.err`, { OCISLIM_CACHE: join(work, 'cold') }) },
  ];
  const results = new Map<string, { wall: number[]; cpu: number[] }>();
  const loads: number[] = [];
  for (let i = 0; i <= rounds; i++) {
    // Untimed: this round's application binary, and the classic recipe's tarball of it.
    sh(`cp /usr/bin/redis-check-rdb app/redis-server && printf 'build %d' ${i} >> app/redis-server`);
    classic('classic-app', join(work, 'app/redis-server'));
    loads.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    for (const j of jobs) {
      const t = j.run(i);
      if (i === 0) continue; // warm-up: fills the caches and the registry
      const r = results.get(j.name) ?? results.set(j.name, { wall: [], cpu: [] }).get(j.name)!;
      r.wall.push(t.wall);
      r.cpu.push(t.cpu);
    }
  }
  console.log(`### Rebuild and push (median of ${rounds}, interleaved, after a warm-up round; load average ${median(loads).toFixed(1)})\n`);
  console.log(ratioRows(jobs, results));
} finally {
  await reg.stop();
  spawnSync('bash', ['-c', `buildah --storage-driver vfs --root ${join(work, 'bh-root')} --runroot ${join(work, 'bh-run')} rm -a >/dev/null 2>&1; true`]);
  rmSync(work, { recursive: true, force: true });
}
