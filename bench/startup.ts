// CLI start-up against Node's own: `node -e 0` beside `ocislim --version`, `ocislim --help` and `ocislim ldd` of one
// small program, run in interleaved rounds (the machine may be shared and loaded). Each run is timed by bash's `time`
// (wall, and the process's user + sys CPU, to the millisecond); the table gives medians and the difference to
// `node -e 0`, the floor no Node CLI can go below. ocislim runs as a program, as npx and a PATH lookup start it (its
// launcher keeps NODE_EXTRA_CA_CERTS from Node's start: bin/ocislim.js); when that variable is set, `node -e 0`
// without it is measured too. The bundle must be current (npm run build), else the unbundled CLI is measured (it says
// so).
// Run: npm run build && node dist/bench/startup.js [ROUNDS]
import { spawnSync } from 'node:child_process';

const rounds = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 31);
const BIN = new URL('../../bin/ocislim.js', import.meta.url).pathname;
const node = process.execPath;

function timed(argv: string[]): { wall: number; cpu: number } {
  const r = spawnSync('bash', ['-c', 'TIMEFORMAT="%3R %3U %3S"; time "$@" >/dev/null 2>&1', 'time', ...argv], { encoding: 'utf8' });
  const [wall, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  if (!Number.isFinite(wall)) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return { wall: wall * 1000, cpu: (user + sys) * 1000 };
}

const stale = spawnSync('strace', ['-f', '-e', 'trace=openat', BIN, '--version'], { encoding: 'utf8' });
if (stale.status === 0 && !/ocislim\.cjs\.cache"/.test(stale.stderr)) console.log('note: the bundle is stale or missing: the unbundled CLI is measured');

const jobs: { name: string; argv: string[] }[] = [
  { name: '`node -e 0`', argv: [node, '-e', '0'] },
  ...(process.env.NODE_EXTRA_CA_CERTS ? [{ name: '`node -e 0`, NODE_EXTRA_CA_CERTS unset', argv: ['env', '-u', 'NODE_EXTRA_CA_CERTS', node, '-e', '0'] }] : []),
  { name: '`ocislim --version`', argv: [BIN, '--version'] },
  { name: '`ocislim --help`', argv: [BIN, '--help'] },
  { name: '`ocislim ldd /bin/true`', argv: [BIN, 'ldd', '/bin/true'] },
];
const samples = jobs.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
for (let i = 0; i < rounds; i++) {
  jobs.forEach((j, k) => {
    const t = timed(j.argv);
    samples[k].wall.push(t.wall);
    samples[k].cpu.push(t.cpu);
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = { wall: median(samples[0].wall), cpu: median(samples[0].cpu) };
console.log(`\n### CLI start-up (medians of ${rounds} interleaved rounds)\n`);
console.log('| command | wall | CPU | wall − `node -e 0` | CPU − `node -e 0` | CPU ÷ `node -e 0` |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
jobs.forEach((j, k) => {
  const w = median(samples[k].wall);
  const c = median(samples[k].cpu);
  const diff = (d: number) => (k ? `${d < 0 ? '−' : '+'}${Math.abs(d).toFixed(0)} ms` : '');
  console.log(`| ${j.name} | ${w.toFixed(0)} ms | ${c.toFixed(0)} ms | ${diff(w - base.wall)} | ${diff(c - base.cpu)} | ${(c / base.cpu).toFixed(2)} |`);
});
