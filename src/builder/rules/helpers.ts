import { posix } from 'node:path';
import { DpkgDatabase, DpkgPackage } from '../../packages/dpkg.js';
import { addPackagePath, installedOf, isBuildOnly, packageDatabase, relationGroups } from '../packages.js';
import { DEFAULT_PATH } from '../spec.js';
import { Plan } from '../plan.js';
import { Rule, RuleContext } from './context.js';
import { nulStrings, namedWords } from './strings.js';
import { SYSTEM_LIB } from './symbols.js';

/** Imports that run a program found through PATH: the exec*p family, posix_spawnp, and the shell (system, popen). */
export const BY_NAME = /^(execvp|execlp|execvpe|posix_spawnp|system|popen)$/;

/** The relations a package declares to the programs it may run (tar Suggests xz-utils, dpkg Depends tar). */
const RELATIONS = ['Pre-Depends', 'Depends', 'Recommends', 'Suggests'];


/** PATH directories of the image (the default PATH without /usr/local: the root's own additions are never shipped). */
export const PATH_DIRS = new Set(DEFAULT_PATH.split(':').filter((d) => !d.startsWith('/usr/local')));

interface Runner {
  path: string;
  realPath: string;
}

interface Candidate {
  /** The path the package lists (/bin/tar, /usr/bin/xz). */
  listed: string;
  pkg: DpkgPackage;
  /** Why the program may run it: "tar Suggests xz-utils", "its own package", "built from the same source". */
  why: string;
  /** An alternatives link (/usr/bin/lzma): added after the files packages list, so those keep their own reason. */
  alternative?: boolean;
  /**
   * Suggested or recommended (a relation Debian adds for programs a package runs: tar Suggests xz-utils): then the
   * end of a longer string counts too, since linkers merge strings (tar's "xz" is the tail of "txz"). Otherwise the
   * program must hold the name whole or after a separator ("S.gpg-agent"): "id" ending "invalid" says nothing.
   */
  declared?: boolean;
}

/**
 * Helpers run by name: a program that runs programs through PATH (it imports execvp, execlp, execvpe, posix_spawnp,
 * system or popen) and whose read-only data holds the bare name of an executable on the image's PATH gets that
 * executable, with its closure, when a package the program's package is tied to owns it: the program's own package,
 * the packages built from its source, and the packages it declares (Pre-Depends, Depends, Recommends, Suggests).
 * GNU tar names "xz" and Suggests xz-utils; dpkg-deb names "tar" and Depends on it. A helper's own helpers are not
 * followed (what the program asks of it is unknown: dpkg-deb gives tar a decompressed stream), and the shell itself
 * is --with-shell's.
 */
export const helpers: Rule = {
  name: 'helpers',
  applies: (x) => !x.opts.noRuntime && !x.opts.noHelpers && runners(x).length > 0 && packageDatabase(x.plan) !== null,
  apply(x) {
    const db = packageDatabase(x.plan)!;
    for (const r of runners(x)) addHelpers(x, db, r);
  },
};

/** The programs that run others by name (their imports), each once. */
function runners(x: RuleContext): Runner[] {
  const out = new Map<string, Runner>();
  for (const p of x.plan.programs) if (!out.has(p.realPath) && runsByName(x.plan, p.path)) out.set(p.realPath, p);
  return [...out.values()];
}

/** Whether the program at `path` (or a library of its closure built from its source: checked later) imports BY_NAME. */
function runsByName(plan: Plan, path: string): boolean {
  const loc = plan.fs.locate(path);
  if (!loc) return false;
  try {
    return plan.resolver.readElf(loc).imports?.some((s) => BY_NAME.test(s)) ?? false;
  } catch {
    return false;
  }
}

/** The executables on PATH of the packages `own` is tied to, by name. */
function candidates(db: DpkgDatabase, own: DpkgPackage): Map<string, Candidate> {
  const out = new Map<string, Candidate>();
  const arch = own.arch === 'all' ? db.nativeArch() : own.arch;
  const tied: [DpkgPackage, string, boolean][] = [[own, `${own.name} ships it`, false]];
  for (const p of db.bySource(own.source)) if (p !== own && !isBuildOnly(p.name)) tied.push([p, `${own.name} and ${p.name} are built from ${own.source}`, false]);
  for (const f of RELATIONS) {
    for (const g of relationGroups(own.fields[f])) {
      // Every installed alternative: the name the program holds tells which one it runs.
      for (const n of g) {
        const p = installedOf(db, [n], arch);
        if (p && !isBuildOnly(p.name) && p.source !== own.source) tied.push([p, `${own.name} ${f} ${p.name}`, f === 'Recommends' || f === 'Suggests']);
      }
    }
  }
  const byFile = new Map<string, Candidate>();
  for (const [p, why, declared] of tied) {
    for (const f of db.files(p)) {
      const c = { listed: f, pkg: p, why, declared };
      byFile.set(db.physical(f), c);
      const name = posix.basename(f);
      if (!PATH_DIRS.has(posix.dirname(f)) || out.has(name)) continue;
      out.set(name, c);
    }
  }
  // Alternatives links on PATH (/usr/bin/lzma -> /etc/alternatives/lzma -> /usr/bin/xz): no package lists the link;
  // the file it leads to now tells whose it is.
  for (const n of [...db.fs.readdir('/etc/alternatives')].sort()) {
    const alt = db.alternative(`/etc/alternatives/${n}`);
    if (!alt?.target || !PATH_DIRS.has(posix.dirname(alt.link))) continue;
    const name = posix.basename(alt.link);
    const by = byFile.get(db.physical(alt.target));
    if (by && !out.has(name)) out.set(name, { ...by, listed: alt.link, alternative: true });
  }
  return out;
}

/** Adds the helpers one program names. */
function addHelpers(x: RuleContext, db: DpkgDatabase, r: Runner): void {
  const plan = x.plan;
  const own = db.ownerOf(r.realPath);
  if (!own) return;
  const byName = candidates(db, own);
  if (!byName.size) return;
  // The program, and the libraries of its closure built from its source that run programs by name too.
  const scanned = [r.realPath];
  const closure = plan.closures.find((c) => c.file.realPath === r.realPath);
  const libs = (closure?.libraries ?? []).filter((l) => !SYSTEM_LIB.test(posix.basename(l.path)) && l.elf.imports?.some((s) => BY_NAME.test(s)));
  if (libs.length) {
    const ofSource = new Set<string>();
    for (const p of db.bySource(own.source)) for (const f of db.files(p)) ofSource.add(db.physical(f));
    for (const l of libs) if (ofSource.has(db.physical(l.realPath))) scanned.push(l.realPath);
  }
  const names = new Set<string>();
  for (const f of scanned) for (const [n, how] of namedWords(nulStrings(plan.fs.host(f)), new Set(byName.keys()), PATH_DIRS)) if (how !== 'tail' || byName.get(n)!.declared) names.add(n);
  const shell = plan.fs.locate('/bin/sh')?.realPath;
  const name = posix.basename(r.path);
  const present = new Set(plan.entries.keys());
  const order = [...names].sort().map((n) => byName.get(n)!);
  for (const c of [...order.filter((c) => !c.alternative), ...order.filter((c) => c.alternative)]) {
    const n = posix.basename(c.listed);
    const st = plan.fs.stat(c.listed);
    if (!st?.stats.isFile() || !(st.stats.mode & 0o111)) continue;
    const real = st.located.realPath;
    // The program itself, and the shell (--with-shell ships it), are not helpers.
    if (real === r.realPath || real === shell) continue;
    const dir = plan.fs.locate(posix.dirname(c.listed));
    if (!dir) continue;
    const at = posix.join(dir.realPath, n);
    if (present.has(at)) continue;
    if (!addPackagePath(plan, c.listed, 'app', `rule: helper of ${name} (it runs programs by name through PATH and names "${n}"; ${c.why})`)) continue;
    plan.helpers.add(at);
    x.say(`${at} (${c.pkg.name}): ${name} runs programs by name and names "${n}"; ${c.why}`);
  }
}
