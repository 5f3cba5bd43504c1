import { readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { ControlFileError, DpkgDatabase, DpkgPackage } from '../packages/dpkg.js';
import { BuildError, OptionError } from './errors.js';
import { LayerGroup, Plan } from './plan.js';

/**
 * Paths a package installs that a container does not use: documentation, man and info pages, translations, lintian
 * and reportbug data (debuerreotype's slim excludes; copyright files are kept).
 */
const EXCLUDED = /^\/usr\/share\/(doc\/(?!.*\/copyright$)|man\/|info\/|locale\/|lintian\/|linda\/|bug\/|doc-base\/)|^\/usr\/lib\/debug\//;

export function excludedPath(p: string): boolean {
  return EXCLUDED.test(p);
}

/** -dev, -doc and -dbg packages are for building and debugging, never a runtime. */
export function isBuildOnly(name: string): boolean {
  return /-(dev|doc|dbg|dbgsym)$/.test(name);
}

/** The root's dpkg database (opened once per plan), null when the root has none; a corrupt one is a BuildError. */
export function packageDatabase(plan: Plan): DpkgDatabase | null {
  if (plan.dpkg === undefined) {
    try {
      plan.dpkg = DpkgDatabase.open(plan.fs, undefined, { cacheDir: plan.dpkgCacheDir });
    } catch (e) {
      if (e instanceof ControlFileError) throw new BuildError(`corrupt dpkg database: ${e.message}`);
      throw e;
    }
  }
  return plan.dpkg;
}

/** Package names a relation field names (Depends: "a (>= 1), b | c, d:any"), each group's alternatives in order. */
export function relationGroups(field: string | undefined): string[][] {
  if (!field) return [];
  return field
    .split(',')
    .map((g) =>
      g
        .split('|')
        .map((alt) => alt.trim().replace(/\s*\(.*$/, '').replace(/\s*\[.*$/, '').replace(/:.*$/, ''))
        .filter(Boolean),
    )
    .filter((g) => g.length);
}

/** An installed package of a relation group (the first alternative installed), compatible with `arch`. */
export function installedOf(db: DpkgDatabase, group: string[], arch: string): DpkgPackage | undefined {
  for (const n of group) {
    const p = db.get(n, arch) ?? db.get(n, 'all') ?? db.get(n);
    if (p) return p;
  }
  return undefined;
}

/** Adds one path a package lists (links kept, a link to a directory brings that tree). False when it is not on disk. */
export function addPackagePath(plan: Plan, path: string, group: LayerGroup, reason: string, asNamed = false): boolean {
  const dir = plan.fs.locate(posix.dirname(path));
  if (!dir) return false;
  const st = plan.fs.lstat(posix.join(dir.realPath, posix.basename(path)));
  if (!st || st.isDirectory()) return false;
  // A listed file goes to its physical directory (merged /usr: dpkg's /bin/x is /usr/bin/x); a file found under a
  // directory a program names stays under that name (perl names /usr/share/perl/5.36, a link to 5.36.0).
  const at = asNamed ? path : posix.join(dir.realPath, posix.basename(path));
  if (st.isSymbolicLink()) {
    const target = plan.fs.stat(at);
    if (!target) {
      plan.warnings.push(`${at} (from ${reason}) is a symbolic link whose target is not in ${plan.fs.root}: left out`);
      return false;
    }
    // A link to a directory (nginx's modules -> ../../lib/nginx/modules) is shipped as a link: what it leads to comes
    // from the packages that own it, or the link is reported as dangling.
    if (target.stats.isDirectory()) {
      plan.add({ path: at, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: readlinkSync(plan.fs.host(posix.join(dir.realPath, posix.basename(path)))), group, reason, inTree: reason });
      return true;
    }
  }
  plan.addLinkChain(at, group, reason, at);
  return true;
}

/**
 * A package's files to ship: what it lists, without documentation and without the directories it lists (every
 * path that is a parent of another; merged /usr makes /lib a link, which is no file of the package).
 */
export function packageFiles(db: DpkgDatabase, p: DpkgPackage): string[] {
  const list = db.files(p);
  const parents = new Set<string>();
  for (const f of list) for (let d = posix.dirname(f); d !== '/' && !parents.has(d); d = posix.dirname(d)) parents.add(d);
  return list.filter((f) => !parents.has(f) && !excludedPath(f));
}

/** --package NAME: an installed package's files without documentation; each ELF file brings its closure later. */
export function addPackage(plan: Plan, name: string): { pkg: DpkgPackage; files: number } {
  const db = packageDatabase(plan);
  if (!db) throw new OptionError('packages', name, `${plan.fs.root} has no dpkg database (/var/lib/dpkg/status)`);
  const pkg = db.get(name);
  if (!pkg) throw new OptionError('packages', name, `not installed in ${plan.fs.root}`);
  let files = 0;
  for (const f of packageFiles(db, pkg)) {
    if (addPackagePath(plan, f, 'app', `package ${pkg.name}`)) files++;
  }
  return { pkg, files };
}
