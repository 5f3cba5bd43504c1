import { posix } from 'node:path';
import { BuildError } from './errors.js';
import { Plan, PlannedEntry } from './plan.js';

const MAX_HOPS = 40;

/** Follows a path through the plan's symlinks; the entry it ends at, 'dir' for an implicit directory, or null. */
function follow(plan: Plan, path: string, dirs: Set<string>): PlannedEntry | 'dir' | null {
  let p = posix.normalize(path);
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const e = plan.entries.get(p);
    if (!e) return dirs.has(p) || p === '/' ? 'dir' : null;
    if (e.type !== 'symlink') return e;
    p = e.linkname!.startsWith('/') ? posix.normalize(e.linkname!) : posix.normalize(posix.join(posix.dirname(p), e.linkname!));
  }
  return null;
}

/**
 * "Will it run" on a scratch image's final file set: every program's interpreter is there, every library its
 * loader will look for is where the loader looks, no symlink dangles, and the entrypoint is an executable file (for
 * the shell form of CMD or ENTRYPOINT, /bin/sh is).
 * (Libraries found only through ld.so.conf were already moved to the loader's own directory.)
 */
export function verifyRuns(plan: Plan, argv: string[] | undefined, shellForm: string[] = []): void {
  const dirs = new Set<string>();
  for (const p of plan.entries.keys()) for (let d = posix.dirname(p); d !== '/'; d = posix.dirname(d)) dirs.add(d);
  for (const c of plan.closures) {
    if (c.elf.interp && c.elf.kind !== 'shared-object') {
      const t = follow(plan, c.elf.interp, dirs);
      if (!t || t === 'dir' || t.type === 'dir') throw new BuildError(`${c.file.path}: its interpreter ${c.elf.interp} is not in the image`);
    }
    for (const l of c.libraries) {
      const where = [l.imagePath, ...(c.defaultDirs[0] && !l.name.includes('/') ? [posix.join(c.defaultDirs[0], l.name)] : [])];
      const at = where.some((p) => {
        const t = follow(plan, p, dirs);
        return t && t !== 'dir' && t.type === 'file';
      });
      if (!at) throw new BuildError(`${l.name}, needed by ${l.neededBy}, is not in the image`);
    }
  }
  const first = argv?.[0];
  if (shellForm.length) {
    // The runtime execs /bin/sh -c "...": a scratch image without a shell cannot start.
    const t = follow(plan, '/bin/sh', dirs);
    if (!t || t === 'dir' || t.type === 'dir' || (t.type === 'file' && !(t.mode & 0o111))) {
      throw new BuildError(`${shellForm.join(', ')} uses the shell form, but the image has no /bin/sh: use the exec form ["program", "arg"] (or --no-verify)`);
    }
  } else if (first && first.startsWith('/')) checkEntrypoint(plan, first, dirs);
  checkLinks(plan, dirs);
}

function checkEntrypoint(plan: Plan, first: string, dirs: Set<string>): void {
  const t = follow(plan, first, dirs);
  if (!t) throw new BuildError(`entrypoint ${first} is not in the image`);
  if (t === 'dir' || t.type === 'dir') throw new BuildError(`entrypoint ${first} is a directory in the image, not a program`);
  if (t.type === 'file' && !(t.mode & 0o111)) throw new BuildError(`entrypoint ${first} is not executable (mode ${t.mode.toString(8)})`);
}

function checkLinks(plan: Plan, dirs: Set<string>): void {
  for (const e of plan.entries.values()) {
    if (e.type !== 'symlink') continue;
    if (!follow(plan, e.path, dirs)) throw new BuildError(`${e.path} is a symbolic link to "${e.linkname}", which is not in the image (pass --no-verify to keep it)`);
  }
}

