// ocislim ldd over the whole /usr/bin + /usr/sbin corpus in one CLI call, against ldd run once per file (and,
// with --lddtree, Debian's lddtree over all files in one process). The machine may be shared and loaded, so the runs
// are interleaved for ROUNDS rounds and both wall time and CPU time (user + sys of the whole process tree, from
// /usr/bin/time) are reported as medians; CPU is the steadier figure under load.
// Run: npm run build && node dist/bench/ldd.js [ROUNDS] [--lddtree]
import { spawnSync } from 'node:child_process';
import { Resolver } from '../src/elf/resolve.js';
import { ElfError } from '../src/elf/errors.js';
import { elfFilesIn, has } from './util.js';

const files = [...elfFilesIn('/usr/bin'), ...elfFilesIn('/usr/sbin')];
const rounds = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 3);
const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
console.log(`corpus: ${files.length} ELF files in /usr/bin and /usr/sbin; ${rounds} interleaved rounds`);

/** Wall and CPU seconds of one command's process tree; output discarded. */
function timed(cmd: string, args: string[]): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  const [wall, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  if (!Number.isFinite(wall)) throw new Error(`${cmd}: ${r.stderr}`);
  return { wall, cpu: user + sys };
}

function inProcess(): { wall: number; cpu: number; edges: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = new Resolver('/', { hwcaps: 'host' });
  let edges = 0;
  for (const f of files) {
    try {
      edges += r.resolve(f).libraries.length;
    } catch (e) {
      if (!(e instanceof ElfError)) throw e;
    }
  }
  const c = process.cpuUsage(c0);
  return { wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6, edges };
}

const jobs: { name: string; run: () => { wall: number; cpu: number } }[] = [
  { name: '`ocislim ldd FILE...`, one CLI call, Node start-up included', run: () => timed(BIN, ['ldd', ...files]) },
  { name: '`ldd FILE`, once per file', run: () => timed('bash', ['-c', 'for f in "$@"; do ldd "$f"; done >/dev/null 2>&1', 'ldd-loop', ...files]) },
  { name: 'ocislim resolver in process (a fresh Resolver; JIT warm after round 1)', run: inProcess },
];
if (has('lddtree') && process.argv.includes('--lddtree')) {
  jobs.push({ name: '`lddtree -l`, all files in one process', run: () => timed('/usr/bin/python3', ['/usr/bin/lddtree', '-l', ...files]) });
} else {
  console.log('lddtree skipped (give --lddtree; needs pax-utils and python3-pyelftools)');
}

const results = jobs.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
console.log(`library edges found in process: ${inProcess().edges}`);
for (let i = 0; i < rounds; i++) {
  jobs.forEach((j, k) => {
    const t = j.run();
    results[k].wall.push(t.wall);
    results[k].cpu.push(t.cpu);
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cli = { wall: median(results[0].wall), cpu: median(results[0].cpu) };
console.log(`\n### Static library closure of ${files.length} files (medians of ${rounds} interleaved rounds)\n`);
console.log('| tool | wall | CPU | wall ÷ ocislim ldd CLI | CPU ÷ ocislim ldd CLI |');
console.log('| --- | ---: | ---: | ---: | ---: |');
jobs.forEach((j, k) => {
  const w = median(results[k].wall);
  const c = median(results[k].cpu);
  console.log(`| ${j.name} | ${w.toFixed(2)} s | ${c.toFixed(2)} s | ${(w / cli.wall).toFixed(1)}× | ${(c / cli.cpu).toFixed(1)}× |`);
});
