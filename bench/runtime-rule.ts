// Measures the runtime rules over many programs: every ELF executable in /usr/bin and /usr/sbin that a package owns.
// For each, the plan is made in process (no layers written) twice, with and without the rules (runtime and helpers),
// and we count what the rules added: files, bytes, which packages, the helpers run by name they found, and whether
// they brought executables of other packages of the same source (sibling tools: the rule should not bring those,
// except a helper the program runs or a path it names).
// Run: npm run build && node dist/bench/runtime-rule.js [STRIDE] [--json FILE]   (every STRIDE-th program; default all)
//      node dist/bench/runtime-rule.js --compare BEFORE.json AFTER.json          (a before/after table of two runs)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { planBuild } from '../src/builder/build-image.js';
import { applyRules } from '../src/builder/rules.js';
import { packageDatabase } from '../src/builder/packages.js';
import { Plan } from '../src/builder/plan.js';

interface Row {
  program: string;
  /** Bytes of regular files the rules added. */
  bytes: number;
  entries: number;
  /** Executables on PATH of other packages of the program's source that came without being a helper. */
  siblings: string[];
  /** Entries whose reason is the helpers rule. */
  helpers: string[];
  failed?: string;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

function compare(beforeFile: string, afterFile: string): void {
  const before = new Map<string, Row>((JSON.parse(readFileSync(beforeFile, 'utf8')) as Row[]).map((r) => [r.program, r]));
  const after = JSON.parse(readFileSync(afterFile, 'utf8')) as Row[];
  const total = (rows: Row[]) => rows.reduce((n, r) => n + r.bytes, 0);
  const b = after.map((r) => before.get(r.program)).filter((r): r is Row => !!r);
  const count = (rows: Row[], f: (r: Row) => boolean) => rows.filter(f).length;
  console.log(`| over ${after.length} programs | before | after |`);
  console.log('| --- | ---: | ---: |');
  console.log(`| programs the rules added files to | ${count(b, (r) => r.entries > 0)} | ${count(after, (r) => r.entries > 0)} |`);
  console.log(`| bytes added, total | ${mib(total(b))} | ${mib(total(after))} |`);
  const med = (rows: Row[]) => {
    const s = rows.filter((r) => r.entries > 0).map((r) => r.bytes).sort((x, y) => x - y);
    return s.length ? s[Math.floor(s.length / 2)] : 0;
  };
  console.log(`| median added (programs with additions) | ${mib(med(b))} | ${mib(med(after))} |`);
  console.log(`| programs given sibling executables | ${count(b, (r) => r.siblings.length > 0)} | ${count(after, (r) => r.siblings.length > 0)} |`);
  console.log(`| programs given helpers run by name | ${count(b, (r) => r.helpers.length > 0)} | ${count(after, (r) => r.helpers.length > 0)} |`);
  console.log(`| failed | ${count(b, (r) => !!r.failed)} | ${count(after, (r) => !!r.failed)} |`);
  console.log('\n| program | before | after | helpers run by name (after) |');
  console.log('| --- | ---: | ---: | --- |');
  const rows = after.map((r) => ({ r, was: before.get(r.program) })).filter(({ r, was }) => was && (Math.abs(r.bytes - was.bytes) > 1048576 || r.helpers.length));
  rows.sort((x, y) => Math.max(y.r.bytes, y.was!.bytes) - Math.max(x.r.bytes, x.was!.bytes));
  for (const { r, was } of rows) console.log(`| ${r.program} | ${mib(was!.bytes)} | ${mib(r.bytes)} | ${r.helpers.join(', ')} |`);
}

async function measure(stride: number, json?: string): Promise<void> {
  const base = { adds: [], copies: [], root: '/', env: [], expose: [], labels: {}, annotations: {}, volumes: [], layers: 3 as const, format: 'oci' as const, epoch: 0 };
  const opts = { scaffold: { passwd: false, tmp: false, certs: false, tz: false, locale: false }, tz: [], withLibs: [], hasBase: false };
  const plan = async (p: string, noRuntime: boolean): Promise<Plan> => {
    const pl = await planBuild({ ...base, inputs: [p] }, '/tmp/ocislim-bench-stage');
    applyRules(pl, { ...opts, noRuntime, noHelpers: noRuntime, noRules: true });
    pl.closeAll();
    return pl;
  };
  const size = (pl: Plan, keys: string[]) => keys.reduce((n, k) => n + ((e) => (e?.type === 'file' ? (e.size ?? 0) : 0))(pl.entries.get(k)), 0);
  const programs: string[] = [];
  for (const d of ['/usr/bin', '/usr/sbin']) for (const n of readdirSync(d).sort()) programs.push(`${d}/${n}`);
  const sample = programs.filter((_p, i) => i % stride === 0);
  const out: Row[] = [];
  const t0 = Date.now();
  for (const p of sample) {
    let without: Plan;
    try {
      without = await plan(p, true);
    } catch {
      continue; // not an ELF program, or its libraries are missing
    }
    if (!without.programs.length || !without.closures.length) continue;
    let withRule: Plan;
    try {
      withRule = await plan(p, false);
    } catch (e) {
      out.push({ program: p, bytes: 0, entries: 0, siblings: [], helpers: [], failed: (e as Error).message });
      continue;
    }
    const db = packageDatabase(withRule)!;
    const added = [...withRule.entries.keys()].filter((k) => !without.entries.has(k));
    const own = db.ownerOf(withRule.programs[0].realPath);
    const helpers = added.filter((a) => /^rule: helper /.test(withRule.entries.get(a)?.reason ?? '') && withRule.entries.get(a)?.type === 'file');
    // A path the program names (gpg: /bin/gpgconf) is its helper too.
    const named = (a: string) => / names \//.test(withRule.entries.get(a)?.reason ?? '');
    const sib = added.filter((a) => /^\/usr\/s?bin\/[^/]+$/.test(a) && withRule.entries.get(a)?.type === 'file' && !withRule.helpers.has(a) && !helpers.includes(a) && !named(a));
    const sibOwners = sib.map((s) => db.ownerOf(s)).filter((o) => o && own && o.source === own.source && o !== own);
    out.push({ program: p, bytes: size(withRule, added), entries: added.length, siblings: [...new Set(sibOwners.map((o) => o!.name))], helpers: helpers.map((h) => h.replace(/^.*\//, '')) });
  }
  const changed = out.filter((r) => r.entries > 0);
  console.log(
    `${out.length} programs with a closure, in ${((Date.now() - t0) / 1000).toFixed(0)} s; the rules added files to ${changed.length}; ` +
      `${out.filter((r) => r.siblings.length).length} got PATH executables of sibling packages; ${out.filter((r) => r.helpers.length).length} got helpers run by name; ` +
      `${out.filter((r) => r.failed).length} failed`,
  );
  for (const r of out.filter((r) => r.failed)) console.log(`FAILED ${r.program}: ${r.failed}`);
  for (const r of [...changed].sort((a, b) => b.bytes - a.bytes).slice(0, 40)) {
    const what = [`${r.entries} entries`, ...(r.helpers.length ? [`helpers: ${r.helpers.join(', ')}`] : []), ...(r.siblings.length ? [`PATH executables of sibling packages: ${r.siblings.join(', ')}`] : [])];
    console.log(`${(r.bytes / 1048576).toFixed(1).padStart(7)} MiB  ${r.program}  (${what.join('; ')})`);
  }
  if (json) writeFileSync(json, JSON.stringify(out, null, 1));
}

const args = process.argv.slice(2);
if (args[0] === '--compare') compare(args[1], args[2]);
else {
  const j = args.indexOf('--json');
  const json = j >= 0 ? args.splice(j, 2)[1] : undefined;
  await measure(Number(args[0] ?? 1), json);
}
