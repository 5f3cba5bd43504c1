import { posix } from 'node:path';
import { BuildError, RunCheckError } from './errors.js';
import { Plan, PlannedEntry } from './plan.js';
import { Closure } from '../elf/resolve.js';
import { ElfError } from '../elf/errors.js';
import { readElfFile } from '../elf/reader.js';
import { DEFAULT_PATH, envTarget, readShebang } from './shebang.js';
import { resolveIn } from './fs-tree.js';

/**
 * Follows a path through the plan's symlinks, in every component (a link inside a linked directory too); the entry
 * it ends at, 'dir' for an implicit directory, or null.
 */
function follow(plan: Plan, path: string, dirs: Set<string>): PlannedEntry | 'dir' | null {
  const view = {
    get: (p: string) => plan.entries.get(p) ?? (dirs.has(p) || p === '/' ? { type: 'dir' as const, mode: 0o755, uid: 0, gid: 0 } : undefined),
    children: () => [],
  };
  let real: string;
  try {
    real = resolveIn(view, posix.normalize(path));
  } catch {
    return null;
  }
  const e = plan.entries.get(real);
  if (e) return e.type === 'symlink' ? null : e;
  return dirs.has(real) || real === '/' ? 'dir' : null;
}

/**
 * "Will it run" on a scratch image's final file set: every program's interpreter is there, every library its
 * loader will look for is where the loader looks, no symlink dangles, and the entrypoint is an executable file (for
 * the shell form of CMD or ENTRYPOINT, /bin/sh is).
 * (Libraries found only through ld.so.conf were already moved to the loader's own directory.)
 */
export function verifyRuns(plan: Plan, argv: string[] | undefined, shellForm: string[] = [], path = DEFAULT_PATH): void {
  const dirs = new Set<string>();
  for (const p of plan.entries.keys()) for (let d = posix.dirname(p); d !== '/'; d = posix.dirname(d)) dirs.add(d);
  for (const c of plan.closures) checkClosure(plan, c, dirs);
  const first = argv?.[0];
  if (shellForm.length) {
    // The runtime execs /bin/sh -c "...": a scratch image without a shell cannot start.
    const t = follow(plan, '/bin/sh', dirs);
    if (!t || t === 'dir' || t.type === 'dir' || (t.type === 'file' && !(t.mode & 0o111))) {
      throw new RunCheckError(`${shellForm.join(', ')} uses the shell form, but the image has no /bin/sh: use the exec form ["program", "arg"]`);
    }
  } else if (first && first.startsWith('/')) checkExec(plan, first, dirs, `entrypoint ${first}`, path);
  // Other scripts the user named: a missing interpreter is worth a warning (they may never run).
  for (const s of plan.scripts) {
    if (s === first) continue;
    try {
      checkExec(plan, s, dirs, s, path);
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      plan.warnings.push(e.message);
    }
  }
  checkLinks(plan, dirs);
}

/** The program's loader and every library it needs are where the image's loader will look. */
function checkClosure(plan: Plan, c: Closure, dirs: Set<string>, who = c.file.path): void {
  if (c.elf.interp && c.elf.kind !== 'shared-object') {
    const t = follow(plan, c.elf.interp, dirs);
    if (!t || t === 'dir' || t.type === 'dir') throw new BuildError(`${who}: its interpreter ${c.elf.interp} is not in the image`);
  }
  for (const l of c.libraries) {
    const where = [l.imagePath, ...(c.defaultDirs[0] && !l.name.includes('/') ? [posix.join(c.defaultDirs[0], l.name)] : [])];
    const at = where.some((p) => {
      const t = follow(plan, p, dirs);
      return t && t !== 'dir' && t.type === 'file';
    });
    if (!at) throw new BuildError(`${l.name}, needed by ${l.neededBy === c.file.path ? who : l.neededBy}, is not in the image`);
  }
}

/**
 * What execve does with `path` in the image, checked: an executable regular file that is either an ELF program
 * (with its closure) or a #! script whose interpreter passes the same check (for `#!/usr/bin/env NAME`, NAME in
 * PATH too), as the kernel follows it (up to 4 levels).
 */
function checkExec(plan: Plan, path: string, dirs: Set<string>, what: string, searchPath: string, depth = 0): void {
  const t = follow(plan, path, dirs);
  if (!t) throw new BuildError(`${what} is not in the image`);
  if (t === 'dir' || t.type === 'dir') throw new BuildError(`${what} is a directory in the image, not a program`);
  if (t.type !== 'file') return;
  if (!(t.mode & 0o111)) throw new BuildError(`${what} is not executable (mode ${t.mode.toString(8)})`);
  const sb = readShebang({ path: t.source, content: t.content });
  if (!sb) return checkElf(plan, t, dirs, what);
  const line = `#!${sb.interpreter}${sb.arg ? ' ' + sb.arg : ''}`;
  if (depth >= 4) throw new BuildError(`${what}: too many levels of #! interpreters`);
  if (!sb.interpreter.startsWith('/')) throw new BuildError(`${what} starts with "${line}": the interpreter must be an absolute path`);
  const interp = `${what}: its interpreter ${sb.interpreter} (${line})`;
  if (!follow(plan, sb.interpreter, dirs)) throw new RunCheckError(`${interp} is not in the image`, 'add it as an input');
  checkExec(plan, sb.interpreter, dirs, interp, searchPath, depth + 1);
  const name = envTarget(sb);
  if (!name) return;
  const found = name.includes('/') ? name : searchPath.split(':').map((d) => posix.join(d || '/', name)).find((p) => {
    const e = follow(plan, p, dirs);
    return e && e !== 'dir' && e.type !== 'dir';
  });
  if (!found) throw new BuildError(`${what}: ${line} runs ${name}, which is not in the image's PATH (${searchPath})`);
  checkExec(plan, found, dirs, `${what}: ${name} (${line})`, searchPath, depth + 1);
}

/** An executable that is not a script must be an ELF program whose closure is in the image. */
function checkElf(plan: Plan, e: PlannedEntry, dirs: Set<string>, what: string): void {
  const checked = plan.closures.find((c) => c.file.path === e.path);
  if (checked) return;
  if (!e.source) return;
  const root = plan.fs.root;
  if (root !== '/' && !e.source.startsWith(root + '/')) return checkOutsideElf(plan, e, dirs, what);
  let c: Closure;
  try {
    c = plan.resolver.resolve(plan.fs.toRootPath(e.source));
  } catch (err) {
    if (err instanceof ElfError && /not an ELF file|too short|empty file/.test(err.reason)) {
      throw new BuildError(`${what} is neither an ELF program nor a #! script: it cannot be executed`);
    }
    if (err instanceof ElfError) throw new BuildError(`${what}: ${err.reason}`);
    throw err;
  }
  if (c.kind === 'static' || c.kind === 'static-pie' || c.kind === 'shared-object') return;
  if (c.notFound.length) throw new BuildError(`${what}: ${c.notFound[0].name}, which it needs, is not in ${plan.fs.root}`);
  checkClosure(plan, c, dirs, what);
}

/**
 * A program copied from outside the build root (a Dockerfile's context with --root): its header is read where it
 * is; a static program needs nothing else, a dynamic one needs its interpreter in the image.
 */
function checkOutsideElf(plan: Plan, e: PlannedEntry, dirs: Set<string>, what: string): void {
  let elf;
  try {
    elf = readElfFile(e.source!);
  } catch (err) {
    if (err instanceof ElfError && /not an ELF file|too short|empty file/.test(err.reason)) {
      throw new BuildError(`${what} is neither an ELF program nor a #! script: it cannot be executed`);
    }
    if (err instanceof ElfError) throw new BuildError(`${what}: ${err.reason}`);
    throw err;
  }
  if (!elf.interp || elf.kind === 'shared-object') return;
  const t = follow(plan, elf.interp, dirs);
  if (!t || t === 'dir' || t.type === 'dir') throw new BuildError(`${what}: its interpreter ${elf.interp} is not in the image`);
}

function checkLinks(plan: Plan, dirs: Set<string>): void {
  for (const e of plan.entries.values()) {
    if (e.type !== 'symlink') continue;
    if (follow(plan, e.path, dirs)) continue;
    // A link that came inside a directory (a package's, a tree the user added) is reported, and the build goes on:
    // it points at something optional or host-specific more often than at something the program needs.
    if (/^(COPY|ADD) /.test(e.reason ?? '')) plan.warnings.push(`${e.path} is a symbolic link to "${e.linkname}", which is not in the image`);
    else if (e.inTree) plan.warnings.push(`${e.path} is a symbolic link to "${e.linkname}", which is not in the image (it came with ${e.inTree}; kept as it is)`);
    else throw new RunCheckError(`${e.path} is a symbolic link to "${e.linkname}", which is not in the image`, undefined, true);
  }
}

