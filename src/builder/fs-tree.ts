import { createWriteStream, mkdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type { Image } from '../oci/image.js';
import { layerTar } from '../oci/files.js';
import type { LayerEntry } from '../oci/layer.js';
import { BuildError } from './errors.js';

/** A file system entry without its path (the key of the tree holds it). */
export type FsNode = Omit<LayerEntry, 'path'> & { path?: string };

/** Read-only lookups in an image file system: exact paths, no symlink resolution ("/" is always a directory). */
export interface FsView {
  get(path: string): FsNode | undefined;
  /** Names directly inside a directory, sorted. */
  children(dir: string): string[];
}

/** An image's file system (its layers applied in order), as entries by absolute path. */
export class FsTree implements FsView {
  readonly nodes = new Map<string, FsNode>();
  private index: Map<string, Set<string>> | null = null;

  get(path: string): FsNode | undefined {
    if (path === '/') return this.nodes.get('/') ?? { type: 'dir', mode: 0o755, uid: 0, gid: 0 };
    return this.nodes.get(path);
  }

  set(path: string, n: FsNode): void {
    this.nodes.set(path, n);
    this.index = null;
  }

  /** Removes a path and everything below it (whiteouts). */
  remove(path: string, keepSelf = false): void {
    if (!keepSelf) this.nodes.delete(path);
    const prefix = path === '/' ? '/' : path + '/';
    for (const k of [...this.nodes.keys()]) if (k.startsWith(prefix)) this.nodes.delete(k);
    this.index = null;
  }

  children(dir: string): string[] {
    if (!this.index) {
      this.index = new Map();
      for (const k of this.nodes.keys()) {
        if (k === '/') continue;
        const d = posix.dirname(k);
        (this.index.get(d) ?? this.index.set(d, new Set()).get(d)!).add(posix.basename(k));
      }
    }
    return [...(this.index.get(dir) ?? [])].sort();
  }
}

/** A base view with entries on top (what a stage holds after its steps). */
export class Overlay implements FsView {
  constructor(
    readonly base: FsView | null,
    readonly top: Map<string, FsNode>,
  ) {}

  get(path: string): FsNode | undefined {
    return this.top.get(path) ?? this.base?.get(path) ?? (path === '/' ? { type: 'dir', mode: 0o755, uid: 0, gid: 0 } : undefined);
  }

  children(dir: string): string[] {
    const names = new Set(this.base?.children(dir) ?? []);
    const prefix = dir === '/' ? '/' : dir + '/';
    for (const k of this.top.keys()) if (k.startsWith(prefix) && !k.slice(prefix.length).includes('/') && k !== dir) names.add(k.slice(prefix.length));
    return [...names].sort();
  }
}

const MAX_HOPS = 40;

/**
 * Resolves a path inside an image root as BuildKit does (continuity's RootPath): symlinks in every component are
 * followed (the last one too when `followLast`), absolute targets are re-rooted, and ".." never leaves the root.
 * Components that do not exist are kept as written.
 */
export function resolveIn(view: FsView, path: string, followLast = true): string {
  let hops = 0;
  const walk = (parts: string[]): string => {
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p === '' || p === '.') continue;
      if (p === '..') {
        cur = posix.dirname(cur);
        continue;
      }
      const next = cur === '/' ? `/${p}` : `${cur}/${p}`;
      const n = view.get(next);
      const last = i === parts.length - 1;
      if (n?.type === 'symlink' && (!last || followLast)) {
        if (++hops > MAX_HOPS) throw new BuildError(`${path}: too many levels of symbolic links`);
        const target = n.linkname ?? '';
        const rest = parts.slice(i + 1);
        return walk([...(target.startsWith('/') ? target.split('/') : [...cur.split('/'), ...target.split('/')]), ...rest]);
      }
      cur = next;
    }
    return cur;
  };
  return walk(path.split('/'));
}

/**
 * Reads an image's layers into a tree (whiteouts applied). File contents are kept only for paths `keep` accepts:
 * written under `stageDir` when given, else held in memory.
 */
export async function readImageTree(image: Image, keep: (path: string) => boolean, stageDir?: string): Promise<FsTree> {
  const tree = new FsTree();
  let n = 0;
  if (stageDir) mkdirSync(stageDir, { recursive: true });
  for (const layer of image.layers) {
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      stream.on('error', () => {});
      const path = posix.normalize('/' + h.name).replace(/\/+$/, '') || '/';
      const base = posix.basename(path);
      const skip = () => {
        stream.on('end', next);
        stream.resume();
      };
      if (path.startsWith('/..')) return skip();
      if (base === '.wh..wh..opq') {
        tree.remove(posix.dirname(path), true);
        return skip();
      }
      if (base.startsWith('.wh.')) {
        tree.remove(posix.join(posix.dirname(path), base.slice(4)));
        return skip();
      }
      const common = { mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0 };
      const prev = tree.get(path);
      if (h.type === 'directory') {
        tree.set(path, { type: 'dir', ...common });
        return skip();
      }
      if (prev?.type === 'dir') tree.remove(path);
      if (h.type === 'symlink') {
        tree.set(path, { type: 'symlink', ...common, linkname: h.linkname ?? '' });
        return skip();
      }
      if (h.type === 'link') {
        const target = posix.normalize('/' + (h.linkname ?? ''));
        const t = tree.get(target);
        if (t?.type === 'file') tree.set(path, { ...t, ...common, type: 'file' });
        return skip();
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') return skip();
      const node: FsNode = { type: 'file', ...common, size: h.size ?? 0 };
      tree.set(path, node);
      if (!keep(path)) return skip();
      if (stageDir) {
        const file = join(stageDir, `f${n++}`);
        node.source = file;
        pipeline(stream, createWriteStream(file)).then(() => next(), next);
      } else {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
        stream.on('end', () => {
          node.content = Buffer.concat(chunks);
          next();
        });
      }
    });
    await pipeline(layerTar(layer), extract);
  }
  return tree;
}
