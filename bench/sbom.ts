// File → package lookup for the redis image: ocislim's dpkg reader (a fresh database each round, as a build opens
// it) against `dpkg -S` given the same files in one call, and the whole inventory (hashing included).
// Run: npm run build && node dist/bench/sbom.js
import { realpathSync } from 'node:fs';
import { RootFs } from '../src/elf/rootfs.js';
import { Resolver } from '../src/elf/resolve.js';
import { DpkgDatabase } from '../src/packages/dpkg.js';
import { takeInventory } from '../src/packages/inventory.js';
import { runQuiet, time } from './util.js';

const program = '/usr/bin/redis-server';
const closure = new Resolver('/').resolve(program);
// The paths dpkg lists: each library's found path, the program's chain.
const paths = [program, realpathSync(program), closure.interpreter!.path, ...closure.libraries.map((l) => l.path)];
const rounds = 5;
const best = (fn: () => unknown) => Math.min(...Array.from({ length: rounds }, () => time(fn).ms));

const open = best(() => DpkgDatabase.open('/'));
const lookup = best(() => DpkgDatabase.open('/')!.ownersOf(paths));
const full = best(() => DpkgDatabase.open('/')!.ownersOf(['/ocislim/no/such/file']));
const entries = paths.map((p) => ({ path: p, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, source: realpathSync(p) }));
const inventory = best(() => takeInventory(entries, new RootFs('/'), DpkgDatabase.open('/'), closure.edges));
const dpkgS = best(() => runQuiet('dpkg', ['-S', ...paths.map((p) => p.replace(/^\/usr\/lib\//, '/lib/'))]));
const rows: [string, number][] = [
  ['ocislim: open the database + owners of the redis files', lookup],
  ['`dpkg -S FILE...`, one call', dpkgS],
  ['ocislim: open the database only (status read, fields parsed lazily)', open],
  ['ocislim: open + a miss (every .list read once)', full],
  ['ocislim: whole inventory (owners, md5/sha1/sha256 of every file, licenses, dependencies)', inventory],
];
console.log(`### Owners of the ${paths.length} files of the redis image (best of ${rounds})\n\n| what | time | ratio to the first row |\n| --- | ---: | ---: |`);
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(1)} ms | ${(ms / lookup).toFixed(1)}× |`);
