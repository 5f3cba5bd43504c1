import { lstatSync, readFileSync, readlinkSync, Stats } from 'node:fs';
import { dirNames } from './dir-names.js';
import { join, posix } from 'node:path';
import { archiveKind, unpackArchive } from './archive-input.js';
import { BuildError } from './errors.js';
import { FsNode, FsView, Overlay, resolveIn } from './fs-tree.js';
import type { PlannedEntry } from './plan.js';
import type { CopySpec } from './spec.js';

/**
 * Where ADD/COPY read from: the build context (a host directory with its .dockerignore; owners reset to root) or
 * an image file system (an earlier stage or an image; owners kept). Paths are absolute inside that root.
 */
export interface CopySource {
  /** For messages: "the build context", "stage build", "image alpine". */
  what: string;
  get(path: string): FsNode | undefined;
  children(dir: string): string[];
  /** Excluded by .dockerignore (context only). */
  ignored?(path: string): boolean;
  /** Whether an excluded directory may hold re-included entries (so it must still be walked). */
  mayReinclude?(path: string): boolean;
}

/** The build context as a CopySource: host files below `dir`, read lazily. */
export function contextSource(dir: string, ignore: IgnoreRules): CopySource {
  const cache = new Map<string, FsNode | null>();
  const host = (p: string) => join(dir, p);
  return {
    what: 'the build context',
    get(p) {
      if (cache.has(p)) return cache.get(p) ?? undefined;
      let st: Stats;
      try {
        st = lstatSync(host(p));
      } catch {
        cache.set(p, null);
        return undefined;
      }
      const common = { mode: st.mode & 0o7777, uid: 0, gid: 0 };
      let n: FsNode | null = null;
      if (st.isDirectory()) n = { type: 'dir', ...common };
      else if (st.isSymbolicLink()) n = { type: 'symlink', ...common, mode: 0o777, linkname: readlinkSync(host(p)) };
      else if (st.isFile()) n = { type: 'file', ...common, source: host(p), size: st.size, ...(st.nlink > 1 ? { inode: `${st.dev}:${st.ino}` } : {}) } as FsNode;
      cache.set(p, n);
      return n ?? undefined;
    },
    children(p) {
      let names: string[];
      try {
        names = dirNames(host(p));
      } catch (e) {
        if (e instanceof BuildError) throw e;
        return [];
      }
      return names;
    },
    ignored: (p) => ignore.ignored(p.slice(1)),
    mayReinclude: (p) => ignore.mayReinclude(p.slice(1)),
  };
}

/** A view (stage or image tree) as a CopySource. */
export function treeSource(view: FsView, what: string): CopySource {
  return { what, get: (p) => view.get(p), children: (d) => view.children(d) };
}

/** .dockerignore rules (moby/patternmatcher): last match wins, a pattern matches a path or any parent of it. */
export interface IgnoreRules {
  ignored(rel: string): boolean;
  mayReinclude(rel: string): boolean;
}

function patternRegExp(p: string): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') {
      i++;
      if (p[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += '[' + p.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else if (c === '\\' && i + 1 < p.length) re += p[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function parseIgnore(text: string): IgnoreRules {
  const rules = text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const negate = l.startsWith('!');
      let pat = negate ? l.slice(1).trim() : l;
      pat = posix.normalize(pat).replace(/\/+$/, '');
      if (pat.startsWith('/')) pat = pat.slice(1);
      if (pat === '.' ) pat = '';
      return { negate, pat, re: patternRegExp(pat) };
    })
    .filter((r) => r.pat !== '');
  const matches = (re: RegExp, rel: string) => {
    const parts = rel.split('/');
    for (let n = parts.length; n >= 1; n--) if (re.test(parts.slice(0, n).join('/'))) return true;
    return false;
  };
  return {
    ignored(rel) {
      let ig = false;
      for (const r of rules) if (matches(r.re, rel)) ig = !r.negate;
      return ig;
    },
    mayReinclude(rel) {
      return rules.some((r) => r.negate && (/[*?[\\]/.test(r.pat) || r.pat.startsWith(rel + '/')));
    },
  };
}

/** Where a copy writes: the image view so far, and how entries are added. */
export interface CopyTarget {
  view: FsView;
  add(e: PlannedEntry): void;
}

export interface Owner {
  uid: number;
  gid: number;
}

function fileContent(view: FsView, path: string): string | null {
  const n = view.get(resolveIn(view, path));
  if (!n || n.type !== 'file') return null;
  if (n.content) return Buffer.from(n.content).toString('utf8');
  if (n.source) {
    try {
      return readFileSync(n.source, 'utf8');
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * USER[:GROUP] by name or number → uid:gid, from the image's /etc/passwd and /etc/group. A user given alone takes
 * its primary group (a number alone: gid = uid). `strict`: an unknown name is an error, else root.
 */
export function lookupOwner(view: FsView, spec: string, where: string, strict: boolean): Owner {
  const [user, group] = spec.split(':', 2) as [string, string | undefined];
  let passwd: string[][] | null = null;
  const users = () => (passwd ??= (fileContent(view, '/etc/passwd') ?? '').split('\n').map((l) => l.split(':')));
  let uid: number;
  let primary: number | undefined;
  if (/^\d+$/.test(user)) uid = Number(user);
  else if (user === 'root') {
    uid = 0;
    primary = 0;
  } else {
    const u = users().find((f) => f[0] === user && f.length >= 4);
    if (!u) {
      if (!strict) return { uid: 0, gid: 0 };
      throw new BuildError(`${where}: unknown user "${user}" (not in the image's /etc/passwd)`);
    }
    uid = Number(u[2]);
    primary = Number(u[3]);
  }
  let gid: number;
  if (group === undefined) gid = primary ?? uid;
  else if (group === '') gid = 0;
  else if (/^\d+$/.test(group)) gid = Number(group);
  else if (group === 'root') gid = 0;
  else {
    const g = (fileContent(view, '/etc/group') ?? '').split('\n').map((l) => l.split(':')).find((f) => f[0] === group && f.length >= 3);
    if (!g) {
      if (!strict) return { uid, gid: 0 };
      throw new BuildError(`${where}: unknown group "${group}" (not in the image's /etc/group)`);
    }
    gid = Number(g[2]);
  }
  return { uid, gid };
}

/**
 * mkdir -p inside the image, following symlinks (a directory is never written over one). New directories get
 * mode 0755 and `owner`. Returns the resolved path.
 */
export function mkdirAll(t: CopyTarget, path: string, owner: Owner | undefined, reason: string, where: string): string {
  const real = resolveIn(t.view, path);
  const parts = real.split('/').filter(Boolean);
  let cur = '';
  for (const p of parts) {
    cur += '/' + p;
    const n = t.view.get(cur);
    if (!n) t.add({ path: cur, type: 'dir', mode: 0o755, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, group: 'app', reason });
    else if (n.type !== 'dir') throw new BuildError(`${where}: ${cur} exists in the image and is not a directory`);
  }
  return real;
}

const WILDCARD = /[*?[]/;

function matchComponent(pattern: string, name: string): boolean {
  return patternRegExp(pattern.replace(/\*\*/g, '*')).test(name);
}

/** A source path resolved inside its root, following symlinks (the name it was asked by is kept for the copy). */
function resolveSource(src: CopySource, path: string, where: string, shown: string): { path: string; node: FsNode } {
  const view = { get: (p: string) => src.get(p), children: (d: string) => src.children(d) };
  const real = resolveIn(view, path);
  const node = src.get(real);
  if (!node) {
    const n = src.get(path);
    if (n?.type === 'symlink') throw new BuildError(`${where}: ${shown} is a symbolic link to "${n.linkname}", which is not in ${src.what} (links are resolved inside it)`);
    throw new BuildError(`${where}: ${shown}: no such file or directory in ${src.what}`);
  }
  if (src.ignored && real !== '/' && src.ignored(real)) throw new BuildError(`${where}: ${shown} is excluded by .dockerignore`);
  return { path: real, node };
}

/** Expands a source (wildcards as in Go's filepath.Match, per path component) to the paths it names, in order. */
function expandSource(src: CopySource, raw: string, where: string): { name: string; path: string; node: FsNode }[] {
  const cleaned = posix.normalize('/' + raw);
  if (raw.split('/').includes('..') && posix.normalize(raw.replace(/^\/+/, '')).startsWith('..')) throw new BuildError(`${where}: ${raw} is outside ${src.what}`);
  const parts = cleaned.split('/').filter(Boolean);
  const w = parts.findIndex((p) => WILDCARD.test(p));
  if (w < 0) {
    const r = resolveSource(src, cleaned, where, raw);
    return [{ name: posix.basename(cleaned) || '/', ...r }];
  }
  const prefix = '/' + parts.slice(0, w).join('/');
  const view = { get: (p: string) => src.get(p), children: (d: string) => src.children(d) };
  const root = resolveIn(view, prefix);
  const out: { name: string; path: string; node: FsNode }[] = [];
  const walk = (dir: string, depth: number) => {
    for (const name of src.children(dir)) {
      if (!matchComponent(parts[w + depth], name)) continue;
      const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const n = src.get(p);
      if (!n) continue;
      if (src.ignored?.(p)) continue;
      if (depth === parts.length - w - 1) {
        // A matched symlink is followed, and copied under its own name.
        if (n.type === 'symlink') {
          const r = resolveSource(src, p, where, p.slice(1));
          out.push({ name, ...r });
        } else out.push({ name, path: p, node: n });
      } else if (n.type === 'dir') walk(p, depth + 1);
    }
  };
  if (src.get(root)?.type === 'dir') walk(root, 0);
  return out;
}

export interface CopyOptions {
  spec: CopySpec;
  /** ADD: local archives are unpacked. */
  unpack: boolean;
  where: string;
  /** --chown resolved to numbers. */
  owner?: Owner;
  /** Staging directory for unpacked archives. */
  stageDir: string;
}

/**
 * One ADD/COPY source, with docker's destination rules: a directory's contents go into DEST; anything else goes
 * into DEST when DEST ends with "/" or is an existing directory (after symlinks), else it becomes DEST. Parents are
 * created (0755, the --chown owner); symlinks in the image are followed, never replaced by directories.
 */
export async function copyInto(t: CopyTarget, src: CopySource, o: CopyOptions): Promise<void> {
  const { spec, where, owner } = o;
  const reason = `${o.unpack ? 'ADD' : 'COPY'} ${spec.src}`;
  const items = expandSource(src, spec.src, where);
  const fromContext = !!src.ignored;
  const meta = (n: FsNode) => ({
    mode: spec.chmod !== undefined && n.type !== 'symlink' ? spec.chmod : n.mode,
    uid: owner ? owner.uid : fromContext ? 0 : n.uid,
    gid: owner ? owner.gid : fromContext ? 0 : n.gid,
  });
  const destIsDir = spec.dest.endsWith('/');
  for (const item of items) {
    if (item.node.type === 'dir') {
      const existed = t.view.get(resolveIn(t.view, spec.dest))?.type === 'dir';
      const parent = posix.dirname(posix.normalize(spec.dest));
      mkdirAll(t, parent, owner, reason, where);
      const real = resolveIn(t.view, posix.normalize(spec.dest));
      const cur = t.view.get(real);
      if (cur && cur.type !== 'dir') throw new BuildError(`${where}: ${real} exists in the image and is not a directory`);
      if (!existed && real !== '/') t.add({ path: real, type: 'dir', ...meta({ type: 'dir', mode: 0o755, uid: 0, gid: 0 }), uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, group: 'app', reason });
      copyTree(t, src, item.path, real, meta, reason, where);
      continue;
    }
    if (o.unpack && item.node.type === 'file' && item.node.source && fromContext) {
      const kind = archiveKind(item.node.source);
      if (kind) {
        const real = mkdirAll(t, spec.dest, owner, reason, where);
        const entries = await unpackArchive(item.node.source, kind, '/', join(o.stageDir), 'app', reason);
        entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
        for (const e of entries) {
          const rel = e.path.slice(1);
          const parent = mkdirAll(t, posix.join(real, posix.dirname(rel)), owner, reason, where);
          const at = posix.join(parent, posix.basename(rel));
          const ex = t.view.get(at);
          if (e.type === 'dir' && ex?.type === 'dir') continue;
          if (e.type === 'dir' && ex?.type === 'symlink') continue;
          t.add({ ...e, path: at, ...(e.type === 'hardlink' ? { linkname: posix.join(real, e.linkname!.slice(1)) } : {}), ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) });
        }
        continue;
      }
    }
    // A file (or a followed symlink): into DEST/ or an existing directory, else as DEST.
    let at: string;
    if (destIsDir) {
      at = posix.join(mkdirAll(t, spec.dest, owner, reason, where), item.name);
    } else {
      mkdirAll(t, posix.dirname(posix.normalize(spec.dest)), owner, reason, where);
      const real = resolveIn(t.view, posix.normalize(spec.dest));
      at = t.view.get(real)?.type === 'dir' ? posix.join(real, item.name) : real;
    }
    if (t.view.get(at)?.type === 'dir') throw new BuildError(`${where}: cannot copy ${spec.src} over the directory ${at}`);
    t.add(fileEntry(src, item.node, at, meta(item.node), reason));
  }
}

function fileEntry(src: CopySource, n: FsNode, at: string, m: { mode: number; uid: number; gid: number }, reason: string): PlannedEntry {
  let node = n;
  if (n.type === 'hardlink' && n.linkname) node = src.get(n.linkname) ?? n;
  if (node.type === 'symlink') return { path: at, type: 'symlink', mode: 0o777, uid: m.uid, gid: m.gid, linkname: node.linkname, group: 'app', reason };
  return { path: at, type: 'file', mode: m.mode, uid: m.uid, gid: m.gid, source: node.source, content: node.content, size: node.size, ...(node.xattrs ? { xattrs: node.xattrs } : {}), group: 'app', reason };
}

/** A directory's contents under `dest`: symlinks kept as they are, hard links within the copy kept. */
function copyTree(t: CopyTarget, src: CopySource, from: string, dest: string, meta: (n: FsNode) => { mode: number; uid: number; gid: number }, reason: string, where: string): void {
  const linked = new Map<string, string>();
  const walk = (dir: string, to: string) => {
    for (const name of src.children(dir)) {
      const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const n = src.get(p);
      if (!n) continue;
      const excluded = src.ignored?.(p) ?? false;
      if (excluded && !(n.type === 'dir' && src.mayReinclude?.(p))) continue;
      let at = posix.join(to, name);
      const ex = t.view.get(at);
      if (n.type === 'dir') {
        // An image symlink to a directory is followed (tar --keep-directory-symlink), never replaced.
        if (ex?.type === 'symlink') {
          const real = resolveIn(t.view, at);
          if (t.view.get(real)?.type === 'dir') at = real;
          else throw new BuildError(`${where}: ${at} is a symbolic link in the image, not a directory`);
        } else if (ex && ex.type !== 'dir') throw new BuildError(`${where}: ${at} exists in the image and is not a directory`);
        if (!excluded) t.add({ path: at, type: 'dir', ...meta(n), group: 'app', reason });
        walk(p, at);
        if (excluded && !t.view.get(at)) continue;
        continue;
      }
      if (excluded) continue;
      if (ex?.type === 'dir') throw new BuildError(`${where}: cannot copy ${p.slice(1)} over the directory ${at}`);
      // Ancestors of a re-included file inside an excluded directory come with their own metadata.
      ensureAncestors(t, src, from, dir, to, meta, reason);
      const inode = (n as { inode?: string }).inode;
      if (inode && linked.has(inode)) {
        t.add({ path: at, type: 'hardlink', ...meta(n), linkname: linked.get(inode), group: 'app', reason });
        continue;
      }
      if (inode) linked.set(inode, at);
      t.add(fileEntry(src, n, at, meta(n), reason));
    }
  };
  walk(from, dest);
}

function ensureAncestors(t: CopyTarget, src: CopySource, from: string, dir: string, to: string, meta: (n: FsNode) => { mode: number; uid: number; gid: number }, reason: string): void {
  if (t.view.get(to)) return;
  ensureAncestors(t, src, from, posix.dirname(dir), posix.dirname(to), meta, reason);
  const n = src.get(dir);
  if (n) t.add({ path: to, type: 'dir', ...meta(n), group: 'app', reason });
}

/** WORKDIR: mkdir -p, new directories owned by the USER in effect. */
export function workdir(t: CopyTarget, path: string, owner: Owner | undefined, where: string): void {
  mkdirAll(t, path, owner, `WORKDIR ${path}`, where);
}

export function overlay(base: FsView | null, top: Map<string, PlannedEntry>): Overlay {
  return new Overlay(base, top as Map<string, FsNode>);
}
