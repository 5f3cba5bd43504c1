// What the package database costs a plain redis build (the issue's budget: under 20 ms), through the real CLI:
// `node bin/ocislim.js build /usr/bin/redis-server --expose 6379 -o oci:DIR` (the launcher, the bundle and its V8
// code cache, as `npx ocislim` runs it), each build a fresh process, in two arms that differ in one thing only:
//   with     the host's root as it is;
//   without  the same, in a private mount namespace whose /var/lib/dpkg is an empty tmpfs: the CLI finds no package
//            database (one failed stat), so no runtime rule, owner lookups, md5sums, status.d records or SBOM data.
// Both arms run under `unshare --mount` (root, else a user namespace: `unshare -rm`) through the same bash `time`
// (wall, and user + sys CPU of the process tree, to the millisecond). Each arm has its own warm layer cache; its
// build memo is removed before each run (a memo hit would replay the journal instead of building). The rounds
// interleave the arms (the order alternates); the figure is the median of the per-round differences (and the
// medians of each arm). The real alternative for the same answers, interleaved too: dpkg-query -S for the image's
// files and dpkg-query -s for their packages.
// Then, separately, where the time goes inside the reader (the compiled modules in this process, every call into
// DpkgDatabase timed).
// Run: npm run build && node dist/bench/runtime-cost.js [ROUNDS] [--no-breakdown]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../src/builder/build-image.js';
import { DpkgDatabase } from '../src/packages/dpkg.js';
import { median } from './util.js';

const BIN = fileURLToPath(new URL('../../bin/ocislim.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../src/cli/ocislim.cjs', import.meta.url));
const PROGRAM = '/usr/bin/redis-server';

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
    // The cache directory as the CLI has it (the status index lives there); none when OCISLIM_CACHE is unset.
    const spec = { inputs: [PROGRAM], adds: [], copies: [], root: '/', env: [], expose: ['6379'], labels: {}, annotations: {}, volumes: [], layers: 3 as const, format: 'oci' as const, epoch: 0, cacheDir: process.env.OCISLIM_CACHE };
    const t0 = process.hrtime.bigint();
    const r = await build(spec, dir);
    const total = Number(process.hrtime.bigint() - t0) / 1e6;
    const inv = r.inventory!;
    return { wall, cpu, build: total, opens, parts, cpuParts, files: inv.packages.flatMap((p) => p.files.map((f) => f.path)), packages: inv.packages.map((p) => p.key) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Wall and CPU (user + sys of the process tree) in ms of a bash script, by bash's `time` (to the millisecond). */
function timedBash(script: string, args: string[], env: NodeJS.ProcessEnv = {}): { wall: number; cpu: number; err: string } {
  const r = spawnSync('bash', ['-c', `TIMEFORMAT="%3R %3U %3S"; time { ${script} ; }`, 'bench', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = r.stderr.trim().split('\n');
  const [wall, user, sys] = lines.pop()!.split(' ').map(Number);
  if (!Number.isFinite(wall) || !Number.isFinite(user)) throw new Error(`bash -c ${script}: ${r.stderr}`);
  return { wall: wall * 1000, cpu: (user + sys) * 1000, err: lines.join('\n') };
}

/** Whether bin/ocislim.js will run the bundle (the check it makes: every input's size, and its mtime or content). */
function bundleCurrent(): boolean {
  try {
    const inputs = JSON.parse(readFileSync(BUNDLE + '.inputs.json', 'utf8')) as [string, number, number, string][];
    return inputs.every(([rel, mtime, size, sha1]) => {
      const path = join(dirname(BUNDLE), rel);
      const st = statSync(path);
      return st.size === size && (st.mtimeMs === mtime || createHash('sha1').update(readFileSync(path)).digest('hex') === sha1);
    });
  } catch {
    return false;
  }
}

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await child()));
} else {
  const rounds = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 15);
  const breakdown = !process.argv.includes('--no-breakdown');
  if (!bundleCurrent()) throw new Error(`${BUNDLE} is missing or older than dist/: run "npm run build" first (the CLI would run the unbundled modules)`);
  const work = mkdtempSync(join(tmpdir(), 'ocislim-bench-dpkg-'));
  const unshare = process.getuid?.() === 0 ? 'unshare --mount --propagation private' : 'unshare -rm --propagation private';
  const arms = {
    with: '',
    without: 'mount -t tmpfs -o ro,size=4k none /var/lib/dpkg && ',
  } as const;
  type Arm = keyof typeof arms;
  /** One build in an arm: the memo removed first (untimed), then the CLI under unshare, timed. */
  const run = (arm: Arm) => {
    const cache = join(work, `cache-${arm}`);
    rmSync(join(cache, 'builds'), { recursive: true, force: true });
    const out = join(work, `out-${arm}`);
    rmSync(out, { recursive: true, force: true });
    const inner = `${arms[arm]}exec "$0" "$@" >/dev/null 2>"$OCISLIM_BENCH_ERR"`;
    const t = timedBash(`${unshare} sh -c '${inner}' "$@"`, [process.execPath, BIN, 'build', PROGRAM, '--expose', '6379', '-o', `oci:${out}`], {
      OCISLIM_CACHE: cache,
      OCISLIM_BENCH_ERR: join(work, `${arm}.err`),
    });
    const err = readFileSync(join(work, `${arm}.err`), 'utf8');
    if (!/^ocislim: sha256:/m.test(err)) throw new Error(`${arm}: the build failed:\n${err}\n${t.err}`);
    return { ...t, digest: /^ocislim: (sha256:[0-9a-f]{64})/m.exec(err)![1] };
  };
  try {
    const digests: string[] = [];
    for (const arm of Object.keys(arms) as Arm[]) {
      mkdirSync(join(work, `cache-${arm}`), { recursive: true });
      digests.push(run(arm).digest); // warms its layer cache (untimed)
    }
    // Without a database the image has no package records: another image.
    if (digests[0] === digests[1]) throw new Error('the arm without /var/lib/dpkg made the same image: the database was not hidden');
    // The files and packages of the image, for dpkg-query (and the breakdown) from one in-process build.
    const childEnv = { ...process.env, OCISLIM_CACHE: join(work, 'cache-child') };
    const first = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child'], { encoding: 'utf8', env: childEnv });
    if (first.status !== 0) throw new Error(first.stderr);
    const s0: Sample = JSON.parse(first.stdout);
    const files = s0.files.filter((f) => !f.startsWith('/var/lib/dpkg/') && !f.startsWith('/etc/'));
    const samples = { with: [] as { wall: number; cpu: number }[], without: [] as { wall: number; cpu: number }[], dpkg: [] as { wall: number; cpu: number }[] };
    const diffs = { wall: [] as number[], cpu: [] as number[] };
    const load0 = loadavg();
    for (let i = 0; i < rounds; i++) {
      const order: Arm[] = i % 2 ? ['without', 'with'] : ['with', 'without'];
      const r = {} as Record<Arm, { wall: number; cpu: number }>;
      for (const arm of order) samples[arm].push((r[arm] = run(arm)));
      diffs.wall.push(r.with.wall - r.without.wall);
      diffs.cpu.push(r.with.cpu - r.without.cpu);
      // dpkg-query exits 1 when a path is not listed as spelled (/lib/... under merged /usr): it read every list all the same.
      const q = timedBash('dpkg-query -S "$@" >/dev/null 2>&1 || [ $? = 1 ]', files);
      const st = timedBash('dpkg-query -s "$@" >/dev/null', s0.packages);
      samples.dpkg.push({ wall: q.wall + st.wall, cpu: q.cpu + st.cpu });
    }
    const load1 = loadavg();
    const mw = (arm: keyof typeof samples) => median(samples[arm].map((s) => s.wall));
    const mc = (arm: keyof typeof samples) => median(samples[arm].map((s) => s.cpu));
    const dw = median(diffs.wall);
    const dc = median(diffs.cpu);
    const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    console.log(`package database cost of \`ocislim build ${PROGRAM}\` through bin/ocislim.js (the bundle), ${rounds} interleaved rounds, load average ${la(load0)} -> ${la(load1)} on ${cpus().length} cores (${s0.packages.length} packages, ${s0.files.length} files of packages in the image):`);
    console.log(`  with the database:    ${mw('with').toFixed(1)} ms wall, ${mc('with').toFixed(1)} ms CPU (medians)`);
    console.log(`  without (none found): ${mw('without').toFixed(1)} ms wall, ${mc('without').toFixed(1)} ms CPU`);
    console.log(`  the database's cost (median of the per-round differences): ${dw.toFixed(1)} ms wall, ${dc.toFixed(1)} ms CPU; differences of the medians ${(mw('with') - mw('without')).toFixed(1)} / ${(mc('with') - mc('without')).toFixed(1)} ms`);
    console.log(`    per-round CPU differences (ms): ${diffs.cpu.map((x) => x.toFixed(0)).join(' ')}`);
    console.log(`  dpkg-query -S (the ${files.length} files) + dpkg-query -s (the ${s0.packages.length} packages): ${mw('dpkg').toFixed(0)} ms wall, ${mc('dpkg').toFixed(0)} ms CPU`);
    console.log(`  ratio, the database's cost / dpkg-query: ${(dw / mw('dpkg')).toFixed(2)}x wall, ${(dc / mc('dpkg')).toFixed(2)}x CPU`);
    if (breakdown) {
      const ours: Sample[] = [];
      for (let i = 0; i < Math.min(rounds, 9); i++) {
        const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child'], { encoding: 'utf8', env: childEnv });
        if (r.status !== 0) throw new Error(r.stderr);
        ours.push(JSON.parse(r.stdout));
      }
      const m = (f: (s: Sample) => number) => median(ours.map(f));
      const labels = [...new Set(ours.flatMap((s) => Object.keys(s.parts)))];
      console.log(`  where it goes (compiled modules, the same build in-process with a cache directory, calls into the reader timed, medians of ${ours.length}): ${m((s) => s.wall).toFixed(1)} ms wall, ${m((s) => s.cpu).toFixed(1)} ms CPU (database opened ${ours[0].opens}x)`);
      console.log(`    by call (wall/CPU ms): ${labels.map((l) => `${l} ${m((s) => s.parts[l] ?? 0).toFixed(1)}/${m((s) => s.cpuParts[l] ?? 0).toFixed(1)}`).join(', ')}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
