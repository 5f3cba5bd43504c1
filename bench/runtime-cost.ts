// What the package database costs a plain redis build (the issue's budget: under 20 ms): `ocislim build
// /usr/bin/redis-server` as the CLI runs it (the runtime rule, the owner of every file, the status.d records), each
// build in a fresh Node process, with the time spent inside the dpkg database reader (opening it, owner lookups,
// lists, md5sums, fields and stanzas read) summed up: wall clock and CPU (user + sys of the process while inside).
// Interleaved with the real alternative for the same answers: dpkg-query -S for the image's files and dpkg-query -s
// for their packages' records.
// Run: npm run build && node dist/bench/runtime-cost.js [ROUNDS]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../src/builder/build-image.js';
import { DpkgDatabase } from '../src/packages/dpkg.js';

interface Sample {
  wall: number;
  cpu: number;
  build: number;
  opens: number;
  parts: Record<string, number>;
  cpuParts: Record<string, number>;
  files: string[];
  packages: string[];
}

/** One build in this process, every call into the database timed (outermost calls only: nested ones are inside). */
async function child(): Promise<Sample> {
  let depth = 0;
  let wall = 0;
  let cpu = 0;
  let opens = 0;
  const parts: Record<string, number> = {};
  const cpuParts: Record<string, number> = {};
  const timed = <F extends (...a: never[]) => unknown>(label: string, f: F): F =>
    function (this: unknown, ...a: never[]) {
      if (depth) return f.apply(this, a);
      depth++;
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      try {
        return f.apply(this, a);
      } finally {
        const w = Number(process.hrtime.bigint() - t0) / 1e6;
        const c = process.cpuUsage(c0);
        wall += w;
        cpu += (c.user + c.system) / 1e3;
        parts[label] = (parts[label] ?? 0) + w;
        cpuParts[label] = (cpuParts[label] ?? 0) + (c.user + c.system) / 1e3;
        depth--;
      }
    } as F;
  const proto = DpkgDatabase.prototype as unknown as Record<string, (...a: never[]) => unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name !== 'constructor' && typeof Object.getOwnPropertyDescriptor(proto, name)?.value === 'function') proto[name] = timed(name, proto[name]);
  }
  // The packages' lazily read fields and stanzas, wrapped on the first database opened.
  let entries = false;
  const open = DpkgDatabase.open;
  DpkgDatabase.open = timed('open', (...a: Parameters<typeof open>) => {
    opens++;
    const db = open.apply(DpkgDatabase, a);
    const p = db?.allPackages()[0];
    if (p && !entries) {
      entries = true;
      const eproto = Object.getPrototypeOf(p);
      for (const name of ['fields', 'stanza']) {
        const d = Object.getOwnPropertyDescriptor(eproto, name);
        if (d?.get) Object.defineProperty(eproto, name, { ...d, get: timed(name, d.get) });
      }
    }
    return db;
  }) as typeof open;
  const dir = mkdtempSync(join(tmpdir(), 'ocislim-bench-dpkg-'));
  try {
    const spec = { inputs: ['/usr/bin/redis-server'], adds: [], copies: [], root: '/', env: [], expose: ['6379'], labels: {}, annotations: {}, volumes: [], layers: 3 as const, format: 'oci' as const, epoch: 0 };
    const t0 = process.hrtime.bigint();
    const r = await build(spec, dir);
    const total = Number(process.hrtime.bigint() - t0) / 1e6;
    const inv = r.inventory!;
    return { wall, cpu, build: total, opens, parts, cpuParts, files: inv.packages.flatMap((p) => p.files.map((f) => f.path)), packages: inv.packages.map((p) => p.key) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Wall and CPU (user + sys, from GNU time) of a command. dpkg-query -S exits 1 when a path is not listed as spelled
 * (dpkg knows /lib/x86_64-linux-gnu/libssl.so.3 only under the name its package lists): it has read every list all the same.
 */
function timedRun(cmd: string[]): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', ...cmd], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const [e, u, s] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  if ((r.status !== 0 && r.status !== 1) || !Number.isFinite(e)) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
  return { wall: e * 1000, cpu: (u + s) * 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await child()));
} else {
  const rounds = Number(process.argv[2] ?? 9);
  const self = fileURLToPath(import.meta.url);
  const ours: Sample[] = [];
  const theirs: { wall: number; cpu: number }[] = [];
  const load0 = loadavg()[0];
  for (let i = 0; i < rounds; i++) {
    const r = spawnSync(process.execPath, [self, '--child'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const s: Sample = JSON.parse(r.stdout);
    ours.push(s);
    // The same answers from dpkg: the owner of each file the image ships, and those packages' status records.
    const files = s.files.filter((f) => !f.startsWith('/var/lib/dpkg/') && !f.startsWith('/etc/'));
    const q = timedRun(['dpkg-query', '-S', ...files]);
    const st = timedRun(['dpkg-query', '-s', ...s.packages]);
    theirs.push({ wall: q.wall + st.wall, cpu: q.cpu + st.cpu });
  }
  const load1 = loadavg()[0];
  const m = (f: (s: Sample) => number) => median(ours.map(f));
  const tw = median(theirs.map((t) => t.wall));
  const tc = median(theirs.map((t) => t.cpu));
  const labels = [...new Set(ours.flatMap((s) => Object.keys(s.parts)))];
  console.log(`package database cost of \`ocislim build /usr/bin/redis-server\` (${ours[0].packages.length} packages, ${ours[0].files.length} files of packages), medians of ${rounds} fresh processes, load average ${load0.toFixed(1)} -> ${load1.toFixed(1)} on ${cpus().length} cores:`);
  console.log(`  ocislim, inside the database reader: ${m((s) => s.wall).toFixed(1)} ms wall, ${m((s) => s.cpu).toFixed(1)} ms CPU (database opened ${ours[0].opens}x; whole build ${m((s) => s.build).toFixed(0)} ms wall)`);
  console.log(`    by call (wall/CPU ms): ${labels.map((l) => `${l} ${m((s) => s.parts[l] ?? 0).toFixed(1)}/${m((s) => s.cpuParts[l] ?? 0).toFixed(1)}`).join(', ')}`);
  console.log(`  dpkg-query -S (the files) + dpkg-query -s (the packages): ${tw.toFixed(0)} ms wall, ${tc.toFixed(0)} ms CPU`);
  console.log(`  ratio ocislim / dpkg-query: ${(m((s) => s.wall) / tw).toFixed(2)}x wall, ${(m((s) => s.cpu) / tc).toFixed(2)}x CPU`);
}
