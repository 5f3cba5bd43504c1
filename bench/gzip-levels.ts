// Which gzip level by default? Builds the redis image at every level and, interleaved in the same run, the manual
// pipeline (lddtree --copy-to-tree + umoci, whose Go gzip has one fixed level), reporting the compressed size and the
// time of each (wall and CPU, medians). The layer cache is off: this measures compression.
// Run: npm run build && node dist/bench/gzip-levels.js [ROUNDS]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { has } from './util.js';

const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-gzip-'));
const rounds = Number(process.argv[2] ?? 5);

/** Runs a bash script under /usr/bin/time: wall and CPU (user + sys) seconds of the whole process tree. */
function timed(script: string): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', 'bash', '-ec', script], { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: user + sys };
}

const blobBytes = (d: string) => Number(spawnSync('du', ['-sb', '--apparent-size', join(work, d, 'blobs')], { encoding: 'utf8' }).stdout.split('\t')[0]);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const levels = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const rows = new Map<string, { wall: number[]; cpu: number[]; size: number }>();
  const add = (name: string, t: { wall: number; cpu: number }, size: number) => {
    const r = rows.get(name) ?? rows.set(name, { wall: [], cpu: [], size }).get(name)!;
    r.wall.push(t.wall);
    r.cpu.push(t.cpu);
  };
  const umoci = has('lddtree') && has('umoci');
  for (let i = 0; i < rounds; i++) {
    for (const l of levels) {
      const t = timed(`rm -rf o${l} && ${BIN} build /usr/bin/redis-server --expose 6379 --no-cache --compression-level ${l} -o oci:o${l} >/dev/null 2>&1`);
      add(`ocislim level ${l}`, t, blobBytes(`o${l}`));
      if (l === 1 || l === 3 || l === 9) {
        const z = l === 9 ? 19 : l;
        const t2 = timed(`rm -rf z${z} && ${BIN} build /usr/bin/redis-server --expose 6379 --no-cache --compression zstd --compression-level ${z} -o oci:z${z} >/dev/null 2>&1`);
        add(`ocislim --compression zstd, level ${z}`, t2, blobBytes(`z${z}`));
      }
      if (umoci && l % 3 === 0) {
        const u = timed(`rm -rf tree u && /usr/bin/python3 /usr/bin/lddtree --copy-to-tree tree /usr/bin/redis-server >/dev/null
          umoci init --layout u && umoci new --image u:latest && umoci insert --image u:latest tree / >/dev/null
          umoci config --image u:latest --config.entrypoint /usr/bin/redis-server --config.exposedports 6379/tcp`);
        add('lddtree + umoci', u, blobBytes('u'));
      }
    }
  }
  const ref = rows.get('lddtree + umoci');
  console.log(`### gzip level: the redis image (median of ${rounds} rounds, interleaved; ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores)\n`);
  console.log('| build | compressed | wall | CPU | size ÷ umoci | wall ÷ umoci |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of rows) {
    const w = median(r.wall);
    console.log(`| ${name} | ${(r.size / 1e6).toFixed(2)} MB | ${w.toFixed(2)} s | ${median(r.cpu).toFixed(2)} s | ${ref ? (r.size / ref.size).toFixed(3) : '—'} | ${ref ? (w / median(ref.wall)).toFixed(2) : '—'} |`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
