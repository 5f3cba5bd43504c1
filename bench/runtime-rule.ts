// Measures the runtime rule over many programs: every ELF executable in /usr/bin and /usr/sbin that a package owns.
// For each, the plan is made in process (no layers written) twice, with and without the rule, and we count what the
// rule added: files, bytes, which packages, and whether it brought executables of PATH directories from other
// packages of the same source (sibling tools: the rule should not bring those, except through a directory the
// program names). Run: npm run build && node dist/bench/runtime-rule.js [STRIDE] (every STRIDE-th program; default all)
import { readdirSync } from 'node:fs';
import { planBuild } from '../src/builder/build-image.js';
import { applyRules } from '../src/builder/rules.js';
import { packageDatabase } from '../src/builder/packages.js';
import { Plan } from '../src/builder/plan.js';

const stride = Number(process.argv[2] ?? 1);
const base = { adds: [], copies: [], root: '/', env: [], expose: [], labels: {}, annotations: {}, volumes: [], layers: 3 as const, format: 'oci' as const, epoch: 0 };
const opts = { scaffold: { passwd: false, tmp: false, certs: false, tz: false, locale: false }, tz: [], withLibs: [], hasBase: false };

async function plan(p: string, noRuntime: boolean): Promise<Plan> {
  const pl = await planBuild({ ...base, inputs: [p] }, '/tmp/ocislim-bench-stage');
  applyRules(pl, { ...opts, noRuntime, noRules: true });
  pl.closeAll();
  return pl;
}

const size = (pl: Plan) => [...pl.entries.values()].reduce((n, e) => n + (e.type === 'file' ? (e.size ?? 0) : 0), 0);
const programs: string[] = [];
for (const d of ['/usr/bin', '/usr/sbin']) for (const n of readdirSync(d).sort()) programs.push(`${d}/${n}`);
const sample = programs.filter((_p, i) => i % stride === 0);
let done = 0;
let changed = 0;
let siblings = 0;
let failed = 0;
const big: [string, number, string][] = [];
const t0 = Date.now();
for (const p of sample) {
  let without: Plan;
  try {
    without = await plan(p, true);
  } catch {
    continue; // not an ELF program, or its libraries are missing
  }
  if (!without.programs.length || !without.closures.length) continue;
  done++;
  let withRule: Plan;
  try {
    withRule = await plan(p, false);
  } catch (e) {
    failed++;
    console.log(`FAILED ${p}: ${(e as Error).message}`);
    continue;
  }
  const db = packageDatabase(withRule)!;
  const added = [...withRule.entries.keys()].filter((k) => !without.entries.has(k));
  if (!added.length) continue;
  changed++;
  const own = db.ownerOf(withRule.programs[0].realPath);
  const sib = added.filter((a) => /^\/usr\/s?bin\/[^/]+$/.test(a) && withRule.entries.get(a)?.type === 'file' && !withRule.helpers.has(a));
  const sibOwners = sib.map((s) => db.ownerOf(s)).filter((o) => o && own && o.source === own.source && o !== own);
  if (sibOwners.length) siblings++;
  big.push([p, size(withRule) - size(without), `${added.length} entries${sibOwners.length ? `; PATH executables of sibling packages: ${[...new Set(sibOwners.map((o) => o!.name))].join(', ')}` : ''}`]);
}
big.sort((a, b) => b[1] - a[1]);
console.log(`${done} programs with a closure, in ${((Date.now() - t0) / 1000).toFixed(0)} s; the rule added files to ${changed}; ${siblings} got PATH executables of sibling packages; ${failed} failed`);
for (const [p, n, what] of big.slice(0, 40)) console.log(`${(n / 1048576).toFixed(1).padStart(7)} MiB  ${p}  (${what})`);
