// Build benchmarks, each against the real alternative on the same input in one run:
//  1. the redis image: `ocislim build` vs `lddtree --copy-to-tree` + `umoci init/new/insert/config`;
//  2. peak memory while building an image that holds a 2 GiB file.
// Run: npm run build && node dist/bench/build.js
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { has, table, time } from './util.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-'));

function sh(script: string): void {
  const r = spawnSync('bash', ['-ec', script], { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}`);
}

/** Peak RSS (KiB) of a command, from getrusage of its process tree. */
function peakRss(cmd: string[]): number {
  const py = 'import resource,subprocess,sys; r=subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); assert r.returncode==0, r; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)';
  const r = spawnSync('python3', ['-c', py, ...cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return Number(r.stdout.trim());
}

try {
  const runs = 3;
  const ours = time(() => {
    for (let i = 0; i < runs; i++) sh(`rm -rf o && ${BIN} build /usr/bin/redis-server --expose 6379 -o oci:o 2>/dev/null >/dev/null`);
  });
  const size = (d: string) => Number(spawnSync('du', ['-sb', join(work, d, 'blobs')], { encoding: 'utf8' }).stdout.split('\t')[0]);
  const rows = [{ name: 'ocislim build /usr/bin/redis-server -o oci:', ms: ours.ms / runs, note: `${(size('o') / 1048576).toFixed(2)} MiB of blobs` }];
  const fast = time(() => {
    for (let i = 0; i < runs; i++) sh(`rm -rf f && ${BIN} build /usr/bin/redis-server --expose 6379 --compression-level 1 -o oci:f 2>/dev/null >/dev/null`);
  });
  rows.push({ name: 'ocislim build --compression-level 1', ms: fast.ms / runs, note: `${(size('f') / 1048576).toFixed(2)} MiB of blobs` });
  if (has('lddtree') && has('umoci')) {
    const theirs = time(() => {
      for (let i = 0; i < runs; i++) {
        sh(`rm -rf tree u && /usr/bin/python3 /usr/bin/lddtree --copy-to-tree tree /usr/bin/redis-server >/dev/null
            umoci init --layout u && umoci new --image u:latest && umoci insert --image u:latest tree / >/dev/null
            umoci config --image u:latest --config.entrypoint /usr/bin/redis-server --config.exposedports 6379/tcp`);
      }
    });
    rows.push({ name: 'lddtree --copy-to-tree + umoci init/new/insert/config', ms: theirs.ms / runs, note: `${(size('u') / 1048576).toFixed(2)} MiB of blobs` });
  } else console.log('lddtree or umoci missing: comparison skipped');
  console.log(table(`Build the redis image to an OCI layout (mean of ${runs})`, rows));

  sh('truncate -s 2G big.bin');
  const kib = peakRss([BIN, 'build', join(work, 'big.bin'), '-o', `oci:${join(work, 'big')}`]);
  console.log(`\n### Peak memory building an image that holds a 2 GiB file\n\nocislim build: ${(kib / 1024).toFixed(0)} MiB peak RSS (aim: under 150 MiB)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
