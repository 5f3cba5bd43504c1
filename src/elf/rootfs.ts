import { lstatSync, readdirSync, readlinkSync, statSync, Stats } from 'node:fs';
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
}

const MAX_SYMLINKS = 40;

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

  /** Throws an ElfError naming the root when it is missing or not a directory. */
  constructor(root = '/') {
    this.root = hostResolve(root);
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
    const parts = (p.startsWith('/') ? p : base + '/' + p).split('/').filter((x) => x !== '' && x !== '.');
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (part === '..') {
        cur = posix.dirname(cur);
        continue;
      }
      const next = cur === '/' ? '/' + part : cur + '/' + part;
      const st = this.lstat(next);
      if (!st) return null;
      const last = i === parts.length - 1;
      if (st.isSymbolicLink() && (!last || followLast)) {
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
        if (!last && !st.isDirectory()) {
          budget.why = 'a path component is not a directory';
          return null;
        }
        cur = next;
      }
    }
    return cur;
  }

  /** Stats the file a path leads to (following links), or null. */
  stat(p: string): { located: Located; stats: Stats } | null {
    const located = this.locate(p);
    if (!located) return null;
    const stats = this.lstat(located.realPath);
    return stats ? { located, stats } : null;
  }

  isDirectory(p: string): boolean {
    return this.stat(p)?.stats.isDirectory() ?? false;
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
    return this.host(located.realPath);
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
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  return (p.startsWith('/') ? '/' : '') + parts.join('/');
}

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

