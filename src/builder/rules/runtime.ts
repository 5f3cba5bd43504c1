import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { DpkgDatabase, DpkgPackage } from '../../packages/dpkg.js';
import { addPackagePath, excludedPath, installedOf, isBuildOnly, packageDatabase, packageFiles, relationGroups } from '../packages.js';
import { Plan } from '../plan.js';
import { Rule, RuleContext } from './context.js';
import { nulStrings } from './strings.js';
import { PATH_DIRS } from './helpers.js';
import { names } from './symbols.js';
import { memoPaths } from './paths-memo.js';

/**
 * Directories every program of a system shares: naming one says nothing about a program's own runtime (the loader's
 * directories and PATH are added from the program's model at run time).
 */
const GENERIC = new Set([
  '/', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr', '/usr/bin', '/usr/sbin', '/usr/lib', '/usr/lib32', '/usr/lib64',
  '/usr/libx32', '/usr/libexec', '/usr/include', '/usr/share', '/usr/share/doc', '/usr/share/man', '/usr/share/info', '/usr/share/locale',
  '/usr/share/i18n', '/usr/lib/locale', '/usr/share/misc', '/usr/share/common-licenses', '/usr/src', '/usr/games', '/etc', '/etc/ssl',
  '/etc/ssl/certs', '/etc/ssl/private', '/etc/alternatives', '/etc/default', '/etc/init.d', '/etc/systemd', '/var', '/var/lib', '/var/run', '/run', '/var/tmp',
  '/tmp', '/var/log', '/var/cache', '/var/spool', '/var/mail', '/var/backups', '/var/local', '/var/opt', '/home', '/root', '/opt', '/srv', '/mnt', '/media', '/dev', '/proc', '/sys',
  '/boot', '/usr/local', '/var/lib/dpkg', '/usr/share/pixmaps', '/usr/share/applications', '/usr/share/icons', '/usr/share/fonts',
]);

/** Paths never worth following: kernel and device trees, and anything below /usr/local (the host's own additions). */
const NEVER = /^\/(proc|sys|dev|usr\/local|home|root|tmp|var\/tmp|var\/log|var\/cache)(\/|$)/;

const MAX_FILES = 50000;
const MAX_DEPTH = 12;

/** Bytes a path's components are made of: A-Z a-z 0-9 _ + . @ - */
const PATH_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.@-') PATH_BYTE[c.charCodeAt(0)] = 1;

/**
 * Absolute paths in a file's bytes ("/usr/share/perl/5.36", "/usr/lib/php/20220829"), trailing slashes dropped: a "/"
 * after anything but a visible character (or at the start), components of path bytes separated by single "/"s (one
 * may end it), then a NUL. What the regular expression (?<![\x21-\x7e])\/[A-Za-z0-9_+.@-]+(?:\/[A-Za-z0-9_+.@-]+)*\/?(?=\x00)
 * finds in the file read as latin1, found from each "/" of the bytes: no text made of a program of megabytes (redis's
 * 2.4 MB cost a third more that way).
 */
export function absolutePaths(hostFile: string): string[] {
  const buf = readFileSync(hostFile);
  const n = buf.length;
  const out = new Set<string>();
  for (let p = buf.indexOf(0x2f); p >= 0; p = buf.indexOf(0x2f, p + 1)) {
    const before = p > 0 ? buf[p - 1] : 0;
    if (before >= 0x21 && before <= 0x7e) continue;
    // Bytes of the current component since the last "/": an empty one ("//", "/" alone) ends the path unmatched.
    let q = p + 1;
    let component = 0;
    for (; q < n; q++) {
      const c = buf[q];
      if (c === 0x2f) {
        if (component === 0) break;
        component = 0;
      } else if (PATH_BYTE[c] === 1) component++;
      else break;
    }
    if (q >= n || buf[q] !== 0 || q === p + 1) continue;
    const path = posix.normalize(buf.toString('latin1', p, q)).replace(/\/+$/, '') || '/';
    if (!NEVER.test(path) && path.length < 256) out.add(path);
    p = q;
  }
  return [...out].sort();
}

/** Hard dependencies (Depends, Pre-Depends), transitively, of the given packages, themselves included. */
function dependsClosure(db: DpkgDatabase, start: DpkgPackage[]): Set<DpkgPackage> {
  const seen = new Set<DpkgPackage>(start);
  const queue = [...start];
  while (queue.length) {
    const p = queue.shift()!;
    for (const f of ['Pre-Depends', 'Depends']) {
      for (const g of relationGroups(p.fields[f])) {
        const d = installedOf(db, g, p.arch === 'all' ? db.nativeArch() : p.arch);
        if (d && !seen.has(d)) {
          seen.add(d);
          queue.push(d);
        }
      }
    }
  }
  return seen;
}

/**
 * The same-source packages a program's package needs (Depends, Pre-Depends, Recommends), followed only through
 * packages of that source: python3.11-minimal → libpython3.11-minimal, python3.11 → libpython3.11-stdlib. A sibling
 * that depends on the program's package instead (redis-server on redis-tools) is a consumer, not a runtime.
 */
function sameSourceRuntime(db: DpkgDatabase, own: DpkgPackage): DpkgPackage[] {
  const siblings = new Set(db.bySource(own.source).filter((p) => !isBuildOnly(p.name)));
  const seen = new Set<DpkgPackage>([own]);
  const queue = [own];
  while (queue.length) {
    const p = queue.shift()!;
    for (const f of ['Pre-Depends', 'Depends', 'Recommends']) {
      for (const g of relationGroups(p.fields[f])) {
        const d = installedOf(db, g, own.arch === 'all' ? db.nativeArch() : own.arch);
        if (d && siblings.has(d) && !seen.has(d)) {
          seen.add(d);
          queue.push(d);
        }
      }
    }
  }
  seen.delete(own);
  return [...seen];
}

/** Directories that say nothing specific: the generic ones, the loader's directories, PATH and their parents. */
function genericDirs(plan: Plan): Set<string> {
  const g = new Set(GENERIC);
  for (const c of plan.closures) for (const d of c.defaultDirs) for (let p = d.replace(/\/+$/, ''); p && p !== '/'; p = posix.dirname(p)) g.add(p);
  return g;
}

/** Non-directory paths under `dir` (following directory links, each real directory once), as the program names them. */
function walk(plan: Plan, dir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const go = (d: string, depth: number) => {
    const loc = plan.fs.locate(d);
    if (!loc || seen.has(loc.realPath) || depth > MAX_DEPTH || out.length > MAX_FILES) return;
    seen.add(loc.realPath);
    for (const name of [...plan.fs.readdir(d)].sort()) {
      const p = posix.join(d, name);
      const st = plan.fs.lstat(posix.join(loc.realPath, name));
      if (!st) continue;
      if (st.isDirectory() || (st.isSymbolicLink() && plan.fs.isDirectory(p))) go(p, depth + 1);
      else out.push(p);
    }
  };
  go(dir, 0);
  return out;
}

/** Directories whose executables are tools (a sibling's bin/ is not a runtime): bin, sbin, libexec, games. */
const TOOL_DIR = /\/(s?bin|libexec|games)$/;
const SO_NAME = /\.so(\.[0-9.]+)?$/;

type FileKind = 'executable' | 'library' | 'data';

/**
 * What a package's file is to a program: an executable (an ELF program anywhere, or any executable file in a bin,
 * sbin, libexec or games directory), an ELF shared object (a library or a plugin), or data (everything else:
 * modules of an interpreter, configuration, scripts it reads).
 */
function kindOf(plan: Plan, path: string): FileKind {
  const st = plan.fs.stat(path);
  if (!st?.stats.isFile()) return 'data';
  const x = (st.stats.mode & 0o111) !== 0;
  const so = SO_NAME.test(posix.basename(path));
  if (!x && !so) return 'data';
  if (x && TOOL_DIR.test(posix.dirname(st.located.realPath))) return 'executable';
  try {
    const k = plan.resolver.readElf(st.located).kind;
    if (k === 'shared-object') return 'library';
    if (k === 'dynamic-executable' || k === 'static' || k === 'static-pie' || k === 'interpreter-only') return 'executable';
  } catch {
    // not an ELF file
  }
  return 'data';
}

/** The highest directory above `path` below a shared one (/usr/lib/python3.11 for its lib-dynload/x.so); null when a shared one holds it. */
function topDir(path: string, generic: Set<string>): string | null {
  let d = posix.dirname(path);
  if (generic.has(d)) return null;
  while (!generic.has(posix.dirname(d)) && posix.dirname(d) !== d) d = posix.dirname(d);
  return d;
}

/** A package's label for messages: name, and its source when that differs. */
const label = (p: DpkgPackage) => p.name;

/**
 * The runtime rule: a program that cannot work without its own runtime files (an interpreter's library, its
 * plugins, its data) gets them, found from the package database rather than from lists of programs:
 *   1. the packages built from the same Debian source as the program's package that it needs (Depends,
 *      Pre-Depends, Recommends, followed through that source only), minus -dev/-doc/-dbg, all their files;
 *   2. absolute paths in the program (and in its libraries of that source) that are directories of the root and
 *      not shared system directories: their files owned by the program's package, its source's packages or its
 *      hard dependencies, and under /etc also files no package lists (ucf configuration, enabled-module links);
 *      an absolute path that is a file of those packages (a helper program) comes too.
 * Documentation, man pages and translations are left out; every ELF file brings its closure afterwards.
 */
export const runtime: Rule = {
  name: 'runtime',
  applies: (x) => !x.opts.noRuntime && x.plan.programs.length > 0 && packageDatabase(x.plan) !== null,
  apply(x) {
    const db = packageDatabase(x.plan)!;
    const done = new Set<string>();
    for (const prog of x.plan.programs) {
      if (done.has(prog.realPath)) continue;
      done.add(prog.realPath);
      addRuntime(x, db, prog);
    }
  },
};

function addRuntime(x: RuleContext, db: DpkgDatabase, prog: { path: string; realPath: string }): void {
  const plan = x.plan;
  const own = db.ownerOf(prog.realPath);
  if (!own) return;
  const name = posix.basename(prog.path);
  const reasonBase = `runtime of ${name}`;
  const same = sameSourceRuntime(db, own);
  const source = new Set([own, ...db.bySource(own.source).filter((p) => !isBuildOnly(p.name))]);
  /**
   * The packages whose files a named directory may bring: the program's package, its same-source runtimes and their
   * hard dependencies, and the source's packages. Made when a named directory first asks (most programs name none
   * but the loader's: the dependencies' stanzas are then never parsed).
   */
  let allowedSet: Set<DpkgPackage> | undefined;
  const allowed = (q: DpkgPackage): boolean => {
    if (!allowedSet) {
      allowedSet = dependsClosure(db, [own, ...same]);
      for (const p of source) allowedSet.add(p);
    }
    return allowedSet.has(q);
  };
  // What the program names: in itself and in its libraries built from the same source.
  const scanned = [prog.realPath];
  const closure = plan.closures.find((c) => c.file.realPath === prog.realPath);
  /** Physical paths of the closure's libraries: a sibling owning one of them is a runtime the program loads. */
  const loaded = new Set<string>();
  if (closure) {
    // The source's own files (a few lists), rather than the owner index of every library.
    const ofSource = new Set<string>();
    for (const p of source) for (const f of db.files(p)) ofSource.add(db.physical(f));
    for (const l of closure.libraries) {
      loaded.add(db.physical(l.realPath));
      if (ofSource.has(db.physical(l.realPath))) scanned.push(l.realPath);
    }
  }
  const generic = genericDirs(plan);
  const named = new Map<string, string>();
  /** Every string of the scanned files and the last component of each: a library named there is loaded by name. */
  let words: Set<string> | undefined;
  const namesWord = (w: string) => {
    if (!words) {
      words = new Set<string>();
      for (const f of scanned) {
        for (const s of nulStrings(plan.fs.host(f))) {
          words.add(s);
          if (s.includes('/')) words.add(posix.basename(s));
        }
      }
    }
    return words.has(w);
  };
  for (const f of scanned) {
    for (const p of memoPaths(plan.fs.host(f), plan.dpkgCacheDir, absolutePaths)) {
      if (!named.has(p)) named.set(p, posix.basename(f));
      // A named file's directory counts too (php names /usr/share/zoneinfo/zone.tab and reads the zones beside it).
      const d = posix.dirname(p);
      if (!named.has(d) && plan.fs.stat(p)?.stats.isFile()) named.set(d, posix.basename(f));
    }
  }
  const namedFile = (f: string) => named.has(f) || named.has(db.physical(f));
  /**
   * A sibling's executable the program runs: named as a path, or by its name when it lives outside PATH (gcc holds
   * "cc1", which cpp-12 keeps in /usr/lib/gcc/<triplet>/12; what is on PATH is the helpers rule's).
   */
  const runs = (f: string) => namedFile(f) || (!PATH_DIRS.has(posix.dirname(db.physical(f))) && namesWord(posix.basename(f)));
  // 1. Same-source packages the program's package needs: their data, and their ELF libraries and plugins the
  //    program loads; not their tools.
  /** Same-source packages of which the program uses nothing. */
  const unused: string[] = [];
  for (const p of same) {
    const files = packageFiles(db, p);
    const kinds = new Map(files.map((f) => [f, kindOf(plan, f)]));
    const real = new Map(files.map((f) => [f, plan.fs.locate(f)?.realPath]));
    const reached = files.some((f) => loaded.has(real.get(f) ?? ''));
    /** Trees where the package keeps data: a plugin inside one is that runtime's (python3.11's lib-dynload). */
    const dataTrees = new Set<string>();
    for (const [f, k] of kinds) if (k === 'data') dataTrees.add(topDir(f, generic) ?? '');
    dataTrees.delete('');
    const take: string[] = [];
    let tools = 0;
    let libs = 0;
    for (const f of files) {
      const k = kinds.get(f)!;
      // A library of the closure is in the image already (merged /usr: the loader found /lib/x/libLLVM-14.so.1,
      // the package lists /usr/lib/x/libLLVM-14.so.1): a second copy under the package's name is not needed.
      if (k === 'library' && loaded.has(real.get(f) ?? '')) continue;
      if (k === 'executable' && !runs(f)) {
        tools++;
        continue;
      }
      if (k === 'library' && !reached && !namedFile(f) && !dataTrees.has(topDir(f, generic) ?? '') && !namesWord(posix.basename(f))) {
        libs++;
        continue;
      }
      take.push(f);
    }
    // A package none of whose files the program uses is not shipped for its copyright file alone.
    let n = 0;
    if (take.some((f) => !f.startsWith('/usr/share/doc/'))) {
      for (const f of take) if (addPackagePath(plan, f, 'app', `rule: ${reasonBase} (package ${p.name}, same source ${own.source} as ${own.name})`)) n++;
    }
    const left = [...(tools ? [`${tools} executable${tools === 1 ? '' : 's'}`] : []), ...(libs ? [`${libs} librar${libs === 1 ? 'y' : 'ies'} ${name} does not load`] : [])];
    if (n) x.say(`${p.name} (${n} files): ${name}'s package ${own.name} needs it and both are built from ${own.source}${left.length ? ` (left out: ${left.join(', ')})` : ''}`);
    else if (left.length) unused.push(p.name);
  }
  if (unused.length) x.note(`${names(unused)}, built from ${own.source} like ${own.name}: only tools and libraries ${name} does not load, left out`);
  // 2. Paths the program names.
  /** A directory the program writes into or reads from, shipped even when empty (nginx's /var/lib/nginx). */
  const addDir = (d: string, by: string) => {
    const st = plan.fs.stat(d);
    if (!st?.stats.isDirectory() || generic.has(d) || generic.has(st.located.realPath) || plan.entries.has(d)) return false;
    if (!(db.ownersOf([d]).get(d) ?? []).some((q) => allowed(q))) return false;
    plan.add({ path: d, type: 'dir', mode: st.stats.mode & 0o7777, uid: 0, gid: 0, group: 'app', reason: `rule: ${reasonBase} (${by} names ${d})` });
    return true;
  };
  for (const [p, by] of named) {
    const st = plan.fs.stat(p);
    if (!st) {
      // A path the program creates (nginx's /var/lib/nginx/body): its directory must be there.
      addDir(posix.dirname(p), by);
      continue;
    }
    if (st.stats.isDirectory()) addDir(p, by);
    if (st.stats.isFile()) {
      if (plan.entries.has(p)) continue;
      const o = db.ownersOf([p]).get(p) ?? [];
      if (!o.some((q) => source.has(q))) continue;
      if (addPackagePath(plan, p, 'app', `rule: ${reasonBase} (${by} names ${p}; package ${o[0].name})`)) x.say(`${p}: ${by} names it (package ${label(o[0])})`);
      continue;
    }
    if (!st.stats.isDirectory() || generic.has(p) || generic.has(st.located.realPath)) continue;
    if (posix.dirname(prog.path) === p || posix.dirname(prog.realPath) === st.located.realPath) plan.helpers.add(prog.path);
    const files = walk(plan, p).filter((f) => !excludedPath(f) && !plan.entries.has(f));
    if (!files.length) continue;
    const owners = db.ownersOf(files);
    const underEtc = st.located.realPath.startsWith('/etc/');
    const count = new Map<string, number>();
    for (const f of files) {
      const o = owners.get(f) ?? [];
      const ok = o.length ? o.find((q) => allowed(q) && !isBuildOnly(q.name)) : underEtc ? null : undefined;
      if (ok === undefined) continue;
      // A sibling's tool in a directory the program names (psql beside postgres's initdb) is not the program's helper.
      if (ok && ok !== own && source.has(ok) && kindOf(plan, f) === 'executable' && !runs(f)) continue;
      const what = ok ? `package ${ok.name}` : 'made by a maintainer script';
      if (addPackagePath(plan, f, 'app', `rule: ${reasonBase} (${by} names ${p}; ${what})`, true)) {
        plan.helpers.add(f);
      } else continue;
      count.set(ok ? ok.name : '(no package)', (count.get(ok ? ok.name : '(no package)') ?? 0) + 1);
    }
    if (count.size) x.say(`${p}/ (${[...count].map(([k, v]) => `${v} from ${k}`).join(', ')}): ${named.get(p)} names it`);
  }
}
