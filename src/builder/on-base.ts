import { posix } from 'node:path';
import { FsTree, resolveIn } from './fs-tree.js';
import type { Plan, PlannedEntry } from './plan.js';

/**
 * A plan laid over a base image's file system, the way COPY writes into it: each entry goes where its path leads
 * through the base's symbolic links (a merged-/usr base keeps `/lib -> usr/lib`, and a library planned at
 * /lib/x86_64-linux-gnu lands in /usr/lib/x86_64-linux-gnu), so no directory of the layer hides a link of the base.
 * Relative link targets are rewritten to keep pointing where they did; directories of the base that receive entries
 * go into the layer as the base has them. Returns how many entries moved.
 */
export function placeOnBase(plan: Plan, base: FsTree): number {
  const moved = new Map<string, string>();
  const placed: PlannedEntry[] = [];
  for (const e of [...plan.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const dir = posix.dirname(e.path);
    const at = posix.join(resolveIn(base, dir), posix.basename(e.path));
    // A directory the base has as a link to a directory: the link stays, what the plan puts inside follows it.
    if (e.type === 'dir' && base.get(e.path)?.type === 'symlink' && base.get(resolveIn(base, e.path))?.type === 'dir') continue;
    if (at === e.path) {
      placed.push(e);
      continue;
    }
    moved.set(e.path, at);
    if (e.type === 'symlink' && e.linkname && !e.linkname.startsWith('/')) {
      const target = posix.join(dir, e.linkname);
      placed.push({ ...e, path: at, linkname: posix.relative(posix.dirname(at), target) || '.' });
    } else placed.push({ ...e, path: at });
  }
  if (!moved.size && placed.length === plan.entries.size) return 0;
  plan.entries.clear();
  for (const e of placed) {
    const linked = e.type === 'hardlink' && e.linkname ? { ...e, linkname: moved.get(e.linkname) ?? e.linkname } : e;
    plan.add(linked);
  }
  keepBaseDirs(plan, base);
  return moved.size;
}

/** Directories of the base that hold new entries go into the layer as the base has them (not as 0755 root). */
export function keepBaseDirs(plan: Plan, base: FsTree): void {
  for (const p of [...plan.entries.keys()]) {
    for (let d = posix.dirname(p); d !== '/'; d = posix.dirname(d)) {
      if (plan.entries.has(d)) continue;
      const n = base.get(d);
      if (n?.type === 'dir') plan.add({ path: d, type: 'dir', mode: n.mode, uid: n.uid, gid: n.gid, group: 'app', reason: 'directory of the base image' });
    }
  }
}
