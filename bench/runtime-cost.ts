// What the package database and the runtime rule cost a redis build (the budget: under 20 ms): the rule
// applied to redis-server's plan, with the database opened fresh each time, against the same plan without it.
// Run: npm run build && node dist/bench/runtime-cost.js
import { planBuild } from '../src/builder/build-image.js';
import { Rule, RuleContext } from '../src/builder/rules.js';
import { runtime } from '../src/builder/rules/runtime.js';

const spec = { inputs: ['/usr/bin/redis-server'], adds: [], copies: [], root: '/', env: [], expose: [], labels: {}, annotations: {}, volumes: [], layers: 3 as const, format: 'oci' as const, epoch: 0 };
const opts = { scaffold: { passwd: false, tmp: false, certs: false, tz: false, locale: false }, tz: [], withLibs: [], hasBase: false };
const times: number[] = [];
for (let i = 0; i < 7; i++) {
  const plan = await planBuild(spec, '/tmp/ocislim-bench-stage');
  const before = plan.entries.size;
  const t0 = process.hrtime.bigint();
  const x = new RuleContext(plan, opts);
  const r: Rule = runtime;
  if (r.applies(x)) r.apply(x);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (plan.entries.size !== before) throw new Error('the runtime rule added files to redis-server');
}
times.sort((a, b) => a - b);
console.log(`runtime rule on redis-server (dpkg database opened, owner index, same-source packages, named paths): median ${times[3].toFixed(1)} ms, min ${times[0].toFixed(1)} ms over ${times.length} runs`);
