import { posix } from 'node:path';
import { Plan } from './plan.js';
import { packageDatabase } from './packages.js';
import { Closure } from '../elf/resolve.js';

export interface Explanation {
  /** Each file, who pulled it in, and the Debian package it came from (when the root has a dpkg database). */
  files: { path: string; size: number; reason: string; package?: string }[];
  total: number;
  /** Bytes per cause: the program itself, each direct dependency's subtree, rules, scaffolding, user files. */
  causes: { cause: string; files: number; size: number; share: number }[];
}

/** Who pulled each file in: a library is charged to the direct dependency of the program that brought it. */
export function explain(plan: Plan): Explanation {
  const files = [...plan.entries.values()].filter((e) => e.type === 'file');
  const x = explainFiles(
    files.map((e) => ({ path: e.path, size: e.content ? e.content.length : (e.size ?? 0), reason: e.reason ?? '' })),
    plan.closures,
  );
  // The package each file came from: its source inside the root, looked up in the root's dpkg database.
  const db = packageDatabase(plan);
  if (db) {
    const root = plan.fs.root;
    const inRoot = new Map<string, string>();
    for (const e of files) {
      const src = e.source;
      if (!src) continue;
      const p = root === '/' ? src : src.startsWith(root + '/') ? src.slice(root.length) : null;
      if (p) inRoot.set(e.path, p);
    }
    const owners = db.ownersOf([...new Set(inRoot.values())]);
    for (const f of x.files) {
      const o = owners.get(inRoot.get(f.path) ?? '')?.[0];
      if (o) f.package = o.name;
    }
  }
  return x;
}

/** The same for any list of files (an existing image's), given the closures of its programs. */
export function explainFiles(entries: { path: string; size: number; reason: string }[], closures: Closure[]): Explanation {
  const top = new Map<string, string>();
  for (const c of closures) {
    const neededBy = new Map(c.libraries.map((l) => [l.path, l.neededBy]));
    for (const l of c.libraries) {
      let p = l.path;
      for (let i = 0; i < 64 && neededBy.get(p) !== c.file.path && neededBy.has(p); i++) p = neededBy.get(p)!;
      top.set(l.imagePath, `${posix.basename(p)} subtree`);
    }
    if (c.interpreter) top.set(c.elf.interp ?? c.interpreter.path, 'loader');
  }
  const files: Explanation['files'] = [];
  const causes = new Map<string, { files: number; size: number }>();
  let total = 0;
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const size = e.size;
    total += size;
    files.push({ path: e.path, size, reason: e.reason });
    const r = e.reason;
    const cause = top.get(e.path) ?? (r.startsWith('rule:') ? 'rules' : r.startsWith('scaffold:') ? 'scaffolding' : r === 'user' ? 'the program and user files' : r.split(' ')[0] || 'other');
    const c = causes.get(cause) ?? { files: 0, size: 0 };
    c.files++;
    c.size += size;
    causes.set(cause, c);
  }
  return {
    files,
    total,
    causes: [...causes].map(([cause, c]) => ({ cause, ...c, share: total ? c.size / total : 0 })).sort((a, b) => b.size - a.size),
  };
}

/** Control characters of a name shown escaped, so that one file is one line. */
const oneLine = (s: string) => s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));

export function formatExplain(x: Explanation): string {
  const mb = (n: number) => `${(n / 1048576).toFixed(2)} MiB`;
  const lines = ['Files (uncompressed):'];
  for (const f of x.files) lines.push(`  ${mb(f.size).padStart(10)}  ${oneLine(f.path)}  <- ${oneLine(f.reason)}${f.package ? `  [${f.package}]` : ''}`);
  lines.push(`Totals per cause (${mb(x.total)} in all):`);
  for (const c of x.causes) lines.push(`  ${mb(c.size).padStart(10)}  ${(c.share * 100).toFixed(1).padStart(5)}%  ${String(c.files).padStart(3)} files  ${c.cause}`);
  return lines.join('\n');
}
