import { Dirent, lstatSync, readdirSync, readlinkSync, statSync, Stats } from 'node:fs';
import { ElfError } from './errors.js';
import { posix, resolve as hostResolve, sep } from 'node:path';

/** One symlink met while resolving a path: where it is (inside the root) and what it says. */
export interface LinkStep {
  path: string;
  target: string;
}

/** A path looked up inside a root, chroot-style. */
export interface Located {
  /** The path as asked for (normalised only by removing "." and duplicate slashes). */
  path: string;
  /** The canonical path inside the root, every symlink resolved. */
  realPath: string;
  /** Every symlink followed, in order, including intermediate directories (/lib -> usr/lib). */
  links: LinkStep[];
  /**
   * Set when the path is held by the image being built rather than the root (ResolveOptions.image): the host file
   * it is read from. Such a path is not in the root: callers neither stat it there nor copy it from there.
   */
  host?: string;
}

const MAX_SYMLINKS = 40;

/** What a path names, without following a final symlink (lstat's file type). */
export const enum Kind {
  None = 0,
  File = 1,
  Directory = 2,
  Symlink = 3,
  Other = 4,
}

/**
 * A directory probed this often for names is read whole (one getdents with file types) and answers every later
 * probe: ldd over /usr/bin asks it 700 times, a library search asks /usr/lib/<triplet> hundreds of times. Below it,
 * each probe is an lstat.
 */
const LIST_AFTER_PROBES = 32;

function kindOfStats(st: Stats): Kind {
  return st.isFile() ? Kind.File : st.isDirectory() ? Kind.Directory : st.isSymbolicLink() ? Kind.Symlink : Kind.Other;
}

function kindOfDirent(d: Dirent): Kind {
  return d.isFile() ? Kind.File : d.isDirectory() ? Kind.Directory : d.isSymbolicLink() ? Kind.Symlink : Kind.Other;
}

/**
 * A root filesystem seen the way a process chrooted into it sees it: absolute symlinks and ".." are confined to the
 * root. Lookups are cached, since the resolver asks for the same directories many times.
 */
export class RootFs {
  readonly root: string;
  private statCache = new Map<string, Stats | null>();
  private linkCache = new Map<string, string>();
  private locateCache = new Map<string, Located | null>();
  private dirCache = new Map<string, string[]>();
  private kindCache = new Map<string, Kind>();
  /** Directories read whole (name -> kind), or null when reading one failed; and how often others were probed. */
  private listings = new Map<string, Map<string, Kind> | null>();
  private probes = new Map<string, number>();
  private dirWalks = new Map<string, { real: string | null; links: LinkStep[]; hops: number }>();

  /** Throws an ElfError naming the root when it is missing or not a directory. */
  constructor(root = '/') {
    // ('/' is its own resolve(), which costs a millisecond the first time a process calls it)
    this.root = root === '/' ? '/' : hostResolve(root);
    let st: Stats | undefined;
    try {
      st = statSync(this.root, { throwIfNoEntry: false });
    } catch (e) {
      throw new ElfError(root, `root filesystem: ${(e as NodeJS.ErrnoException).code === 'ELOOP' ? 'too many levels of symbolic links' : (e as Error).message}`);
    }
    if (!st) throw new ElfError(root, 'root filesystem: no such directory');
    if (!st.isDirectory()) throw new ElfError(root, 'root filesystem: not a directory');
  }

  /**
   * Why `p` cannot be resolved (after locate() gave null): "no such file", "too many levels of symbolic links
   * (a symlink loop)", or "a path component is not a directory".
   */
  failure(p: string): string {
    const budget = { hops: 0, why: 'no such file' };
    this.walk(p, [], true, budget);
    return budget.why;
  }

  /** Host path for an in-root absolute path (no resolution). */
  host(p: string): string {
    return this.root === '/' ? p : this.root + p;
  }

  /**
   * Maps a path given by a user (host path, absolute or relative to cwd) to a path inside the root: a host path
   * under the root is made relative to it; any other absolute path is taken as already inside the root.
   */
  toRootPath(userPath: string): string {
    // (an absolute path with no empty, "." or ".." component is its own resolve(): ldd's usual arguments)
    if (this.root === '/' && userPath.charCodeAt(0) === 0x2f && !UNCLEAN.test(userPath) && !DOTDOT.test(userPath)) return userPath;
    const abs = hostResolve(userPath);
    if (this.root === '/') return abs;
    if (abs === this.root) return '/';
    if (abs.startsWith(this.root + sep)) return abs.slice(this.root.length);
    return userPath.startsWith('/') ? posix.normalize(userPath) : abs;
  }

  lstat(p: string): Stats | null {
    let st = this.statCache.get(p);
    if (st === undefined) {
      try {
        // No exception for a missing path: most lookups of a library search miss.
        st = lstatSync(this.host(p), { throwIfNoEntry: false }) ?? null;
      } catch {
        st = null;
      }
      this.statCache.set(p, st);
    }
    return st;
  }

  /**
   * What `p` names, as lstat says (a final symlink is not followed); `p` must be canonical up to its last component,
   * as walk() builds it. From the directory's listing once that directory has been probed often, else one lstat.
   */
  kind(p: string): Kind {
    let k = this.kindCache.get(p);
    if (k !== undefined) return k;
    const slash = p.lastIndexOf('/');
    const dir = slash <= 0 ? '/' : p.slice(0, slash);
    let listing = this.listings.get(dir);
    if (listing === undefined) {
      const n = (this.probes.get(dir) ?? 0) + 1;
      this.probes.set(dir, n);
      if (n >= LIST_AFTER_PROBES) this.listings.set(dir, (listing = this.list(dir)));
    }
    if (listing) k = listing.get(p.slice(slash + 1)) ?? Kind.None;
    else {
      const st = this.lstat(p);
      k = st ? kindOfStats(st) : Kind.None;
    }
    this.kindCache.set(p, k);
    return k;
  }

  private list(dir: string): Map<string, Kind> | null {
    let entries: Dirent[];
    try {
      entries = readdirSync(this.host(dir), { withFileTypes: true });
    } catch {
      return null;
    }
    const m = new Map<string, Kind>();
    for (const e of entries) m.set(e.name, kindOfDirent(e));
    return m;
  }

  /** What the path leads to, every symlink followed: Kind.None when it leads nowhere. */
  kindAt(p: string): Kind {
    const loc = this.locate(p);
    return loc ? this.kind(loc.realPath) : Kind.None;
  }

  private readlink(p: string): string {
    let t = this.linkCache.get(p);
    if (t === undefined) {
      t = readlinkSync(this.host(p));
      this.linkCache.set(p, t);
    }
    return t;
  }

  /**
   * Resolves `p` component by component (results are cached and shared: treat them as immutable) like the kernel does inside a chroot. Returns null when some component is
   * missing, not a directory, or the link count exceeds 40. `followLast: false` leaves a final symlink unresolved.
   */
  locate(p: string, followLast = true): Located | null {
    if (!followLast) return this.locateUncached(p, false);
    let r = this.locateCache.get(p);
    if (r === undefined) {
      r = this.locateUncached(p, true);
      this.locateCache.set(p, r);
    }
    return r;
  }

  private locateUncached(p: string, followLast: boolean): Located | null {
    const links: LinkStep[] = [];
    const real = this.walk(p, links, followLast, { hops: 0 });
    return real === null ? null : { path: cleanPath(p), realPath: real, links };
  }

  private walk(p: string, links: LinkStep[], followLast: boolean, budget: { hops: number; why?: string }, base = '/'): string | null {
    // A path's directory is walked once (dirWalk), then only its last component here. Not when the reason for a
    // failure is wanted (failure() sets budget.why): that walk goes component by component.
    if (budget.why === undefined) {
      const full = p.charCodeAt(0) === 0x2f ? p : base + '/' + p;
      const s = full.lastIndexOf('/');
      const name = full.slice(s + 1);
      if (name !== '' && name !== '.' && name !== '..') {
        const d = this.dirWalk(s === 0 ? '/' : full.slice(0, s));
        if (d.real === null) return null;
        budget.hops += d.hops;
        if (budget.hops > MAX_SYMLINKS) return null;
        for (let i = 0; i < d.links.length; i++) links.push(d.links[i]);
        // The last component, as the loop below takes it.
        const next = d.real === '/' ? '/' + name : d.real + '/' + name;
        const k = this.kind(next);
        if (k === Kind.None) return null;
        if (k !== Kind.Symlink || !followLast) return next;
        if (++budget.hops > MAX_SYMLINKS) return null;
        const target = this.readlink(next);
        links.push({ path: next, target });
        return this.walk(target, links, true, budget, d.real);
      }
    }
    const parts = (p.startsWith('/') ? p : base + '/' + p).split('/').filter((x) => x !== '' && x !== '.');
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (part === '..') {
        cur = posix.dirname(cur);
        continue;
      }
      const next = cur === '/' ? '/' + part : cur + '/' + part;
      const k = this.kind(next);
      if (k === Kind.None) return null;
      const last = i === parts.length - 1;
      if (k === Kind.Symlink && (!last || followLast)) {
        if (++budget.hops > MAX_SYMLINKS) {
          budget.why = 'too many levels of symbolic links (a symlink loop)';
          return null;
        }
        const target = this.readlink(next);
        links.push({ path: next, target });
        const resolved = this.walk(target, links, true, budget, cur);
        if (resolved === null) return null;
        cur = resolved;
      } else {
        if (!last && k !== Kind.Directory) {
          budget.why = 'a path component is not a directory';
          return null;
        }
        cur = next;
      }
    }
    return cur;
  }

  /**
   * A directory path walked (every component followed), cached: its real path (null when it leads nowhere), the
   * links met and how many. Nearly every file the resolver looks up is in one of a few directories.
   */
  private dirWalk(dir: string): { real: string | null; links: LinkStep[]; hops: number } {
    let d = this.dirWalks.get(dir);
    if (d === undefined) {
      const links: LinkStep[] = [];
      const budget = { hops: 0 };
      const real = this.walk(dir, links, true, budget);
      d = { real, links, hops: budget.hops };
      this.dirWalks.set(dir, d);
    }
    return d;
  }

  /** Stats the file a path leads to (following links), or null. */
  stat(p: string): { located: Located; stats: Stats } | null {
    const located = this.locate(p);
    if (!located) return null;
    const stats = this.lstat(located.realPath);
    return stats ? { located, stats } : null;
  }

  isDirectory(p: string): boolean {
    return this.kindAt(p) === Kind.Directory;
  }

  /** Directory entries (cached, so callers must not modify the array). */
  readdir(p: string): string[] {
    let r = this.dirCache.get(p);
    if (r === undefined) {
      const loc = this.locate(p);
      r = [];
      if (loc) {
        try {
          r = readdirSync(this.host(loc.realPath));
        } catch {
          r = [];
        }
      }
      this.dirCache.set(p, r);
    }
    return r;
  }

  /** Host path of the real file behind an in-root path, for reading. */
  hostReal(located: Located): string {
    return located.host ?? this.host(located.realPath);
  }

  /** The file a container runtime would execute for argv[0]: absolute as is, else the first match on PATH. */
  which(argv0: string, pathVar = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'): string | null {
    if (argv0.startsWith('/')) return this.stat(argv0) ? argv0 : null;
    for (const d of pathVar.split(':').filter(Boolean)) {
      const p = posix.join(d, argv0);
      if (this.stat(p)?.stats.isFile()) return p;
    }
    return null;
  }

  /**
   * Expands a glob (*, ?, [...]) inside the root, component by component; results sorted, as glob(3) gives them.
   * Throws a RangeError when more than `limit` paths are in play at any step (symlinks to "." multiply them).
   */
  glob(pattern: string, limit = Infinity): string[] {
    const parts = pattern.split('/').filter((x) => x !== '');
    let paths = ['/'];
    for (const part of parts) {
      const next: string[] = [];
      if (!/[*?[]/.test(part)) {
        for (const d of paths) next.push(posix.join(d, part));
      } else {
        const re = globToRegExp(part);
        for (const d of paths) {
          for (const name of [...this.readdir(d)].sort()) {
            if (re.test(name) && !(name.startsWith('.') && !part.startsWith('.'))) next.push(posix.join(d, name));
          }
        }
      }
      if (next.length > limit) throw new RangeError(`${pattern}: more than ${limit} matches`);
      paths = next;
    }
    return paths.filter((x) => this.stat(x) !== null).sort();
  }
}

export function cleanPath(p: string): string {
  // Most paths are clean already: no empty or "." component, no trailing slash.
  if (p !== '' && !UNCLEAN.test(p)) return p;
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  return (p.startsWith('/') ? '/' : '') + parts.join('/');
}

const UNCLEAN = /\/\/|\/\.(\/|$)|^\.(\/|$)|.\/$/;
const DOTDOT = /\/\.\.(\/|$)/;

function globToRegExp(g: string): RegExp {
  let re = '^';
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = g.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = g.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += '[' + body.replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

