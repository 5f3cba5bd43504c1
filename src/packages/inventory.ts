import { readlinkSync } from 'node:fs';
import { posix, sep } from 'node:path';
import { RootFs } from '../elf/rootfs.js';
import { hashFileSync } from '../oci/digest.js';
import { LayerEntry } from '../oci/layer.js';
import { packageLicense, PackageLicense } from './copyright.js';
import { DpkgDatabase, DpkgPackage } from './dpkg.js';

/** One non-directory entry of the image, with its content hashes (regular files and hard links). */
export interface InventoryFile {
  path: string;
  type: 'file' | 'symlink' | 'hardlink';
  sha256?: string;
  sha1?: string;
  md5?: string;
  size?: number;
  linkname?: string;
}

export interface InventoryPackage {
  pkg: DpkgPackage;
  /** "name:arch": unique within an inventory. */
  key: string;
  files: InventoryFile[];
  license: PackageLicense | null;
  /** Keys of the packages whose libraries this package's files need (DT_NEEDED edges of the closure). */
  dependsOn: string[];
}

/** What an image holds, by package: the input of status.d and of the SPDX and CycloneDX documents. */
export interface Inventory {
  /** The root's os-release (ID, VERSION_ID, ...), or null. */
  os: Record<string, string> | null;
  /** Whether the root had a dpkg database (without one, every file is unowned). */
  database: boolean;
  packages: InventoryPackage[];
  /** Files no package owns (the user's own, scaffolding, ...). */
  unowned: InventoryFile[];
}

/** A dependency edge between two in-root paths (a DT_NEEDED satisfied by a found library). */
export interface PathEdge {
  from: string;
  to: string | null;
}

/** A file's hashes for the inventory: sha256 and md5 always, sha1 when the caller asked for it (SBOM documents). */
export type FileHasher = (e: LayerEntry) => { sha256: string; sha1?: string; md5: string; size: number };

/** Reads the file (or hashes its generated content): sha256, sha1 and md5 in one pass. */
export function hashFile(e: LayerEntry): { sha256: string; sha1: string; md5: string; size: number } {
  const source = e.content ?? e.source ?? new Uint8Array(0);
  const { hex, size } = hashFileSync(source, ['sha256', 'sha1', 'md5']);
  return { sha256: hex[0], sha1: hex[1], md5: hex[2], size };
}

/**
 * Maps every entry of an image plan to the package that owns it in the root's dpkg database (null: none). A file
 * read from the root counts as its owner's when the package recorded no md5 for it or recorded this md5; a file from
 * elsewhere (a build context, an archive) counts only when its md5 is the one the package recorded for its image
 * path, so byte-identical copies of packaged files (the classic ldd + tar recipe) are recognised and anything else
 * is not. A symlink counts when the root holds the same link at that path. `opts.scratch`: the build's own staging
 * directory (host path): its files are never looked up as the root's, even when the root is /.
 */
export function takeInventory(
  entries: Iterable<LayerEntry>,
  fs: RootFs,
  db: DpkgDatabase | null,
  edges: PathEdge[] = [],
  os: Record<string, string> | null = null,
  opts: { allPackages?: boolean; hash?: FileHasher; scratch?: string } = {},
): Inventory {
  const hash = opts.hash ?? hashFile;
  const files: { f: InventoryFile; e: LayerEntry; rootPath: string | null }[] = [];
  const byPath = new Map<string, InventoryFile>();
  const list = [...entries].filter((e) => e.type !== 'dir');
  for (const e of list) {
    const f: InventoryFile = { path: e.path, type: e.type as InventoryFile['type'] };
    if (e.type === 'file') Object.assign(f, hash(e));
    if (e.type === 'symlink') f.linkname = e.linkname;
    const rootPath = e.type === 'file' && e.source && !e.content ? inRoot(fs, e.source, opts.scratch) : null;
    files.push({ f, e, rootPath });
    byPath.set(e.path, f);
  }
  for (const { f, e } of files) {
    if (e.type !== 'hardlink') continue;
    const t = byPath.get(e.linkname ?? '');
    if (t) Object.assign(f, { sha256: t.sha256, sha1: t.sha1, md5: t.md5, size: t.size });
  }
  const owner = new Map<InventoryFile, DpkgPackage>();
  if (db) {
    const asked = new Set<string>();
    // A copy made through a symlink (cp -L of ldd's /lib/x86_64-linux-gnu/libz.so.1) holds the content of the
    // link's target: that file's md5 and owner count.
    const viaLink = new Map<InventoryFile, string>();
    // Content ocislim generates (scaffolding, these records) is nobody's: not looked up.
    const generated = new Set(files.filter(({ e }) => e.content).map(({ f }) => f));
    for (const { f, rootPath } of files) {
      if (generated.has(f)) continue;
      asked.add(f.path);
      if (rootPath) asked.add(rootPath);
      if (f.type !== 'symlink') {
        const real = fs.locate(f.path)?.realPath;
        if (real && real !== db.physical(f.path)) {
          viaLink.set(f, real);
          asked.add(real);
        }
      }
    }
    const owners = db.ownersOf([...asked]);
    const accept = (p: DpkgPackage | undefined, path: string, f: InventoryFile, fromHere: boolean) => {
      if (!p) return false;
      if (f.type === 'symlink') {
        try {
          return readlinkSync(fs.host(db.physical(path))) === f.linkname;
        } catch {
          return false;
        }
      }
      const sum = db.md5Of(p, path);
      return sum === undefined ? fromHere : sum === f.md5;
    };
    for (const { f, rootPath } of files) {
      if (generated.has(f)) continue;
      const tries: [string, boolean][] = rootPath ? [[rootPath, true], [f.path, false]] : [[f.path, f.type === 'symlink']];
      const real = viaLink.get(f);
      if (real && real !== rootPath) tries.push([real, false]);
      for (const [path, fromHere] of tries) {
        const p = (owners.get(path) ?? []).find((o) => accept(o, path, f, fromHere));
        if (p) {
          owner.set(f, p);
          break;
        }
      }
    }
  }
  const pkgs = new Map<string, InventoryPackage>();
  const unowned: InventoryFile[] = [];
  for (const { f } of files) {
    const p = owner.get(f);
    if (!p) {
      unowned.push(f);
      continue;
    }
    const key = `${p.name}:${p.arch}`;
    let ip = pkgs.get(key);
    if (!ip) {
      ip = { pkg: p, key, files: [], license: null, dependsOn: [] };
      pkgs.set(key, ip);
    }
    ip.files.push(f);
  }
  // An image's own records list packages whose only files are symlinks (md5sums hold regular files only).
  if (db && opts.allPackages) {
    for (const p of db.packages()) {
      const key = `${p.name}:${p.arch}`;
      if (!pkgs.has(key)) pkgs.set(key, { pkg: p, key, files: [], license: null, dependsOn: [] });
    }
  }
  for (const ip of pkgs.values()) {
    ip.files.sort((a, b) => cmp(a.path, b.path));
    lazyLicense(ip, fs);
  }
  if (db && edges.length) {
    // The file behind each end counts (redis-server is a link of redis-server's to redis-tools' program).
    const real = (p: string) => fs.locate(p)?.realPath ?? p;
    edges = edges.map((ed) => ({ from: real(ed.from), to: ed.to && real(ed.to) }));
    const ends = new Set<string>();
    // A staged file (an archive's member) is in no list: not looked up.
    const add = (p: string) => {
      if (!inScratch(fs.host(p), opts.scratch)) ends.add(p);
    };
    for (const ed of edges) {
      add(ed.from);
      if (ed.to) add(ed.to);
    }
    const owners = db.ownersOf([...ends]);
    const keyOf = (path: string) => {
      const o = owners.get(path)?.[0];
      return o && pkgs.has(`${o.name}:${o.arch}`) ? `${o.name}:${o.arch}` : null;
    };
    for (const ed of edges) {
      if (!ed.to) continue;
      const a = keyOf(ed.from);
      const b = keyOf(ed.to);
      if (a && b && a !== b && !pkgs.get(a)!.dependsOn.includes(b)) pkgs.get(a)!.dependsOn.push(b);
    }
    for (const ip of pkgs.values()) ip.dependsOn.sort(cmp);
  }
  unowned.sort((a, b) => cmp(a.path, b.path));
  return { os, database: !!db, packages: [...pkgs.values()].sort((a, b) => cmp(a.key, b.key)), unowned };
}

/**
 * The package's license, read from its copyright file when first asked for: only the SBOM documents use it, not
 * the status.d records of a plain build. A plain property once read (it enumerates, and can be set).
 */
function lazyLicense(ip: InventoryPackage, fs: RootFs): void {
  Object.defineProperty(ip, 'license', {
    configurable: true,
    enumerable: true,
    get() {
      const license = packageLicense(fs, ip.pkg.name);
      Object.defineProperty(ip, 'license', { value: license, writable: true, configurable: true, enumerable: true });
      return license;
    },
    set(value: PackageLicense | null) {
      Object.defineProperty(ip, 'license', { value, writable: true, configurable: true, enumerable: true });
    },
  });
}

/** A host path inside the root, as an in-root path; null when it is outside. */
/** Whether a host path is in the build's staging directory. */
function inScratch(host: string, scratch: string | undefined): boolean {
  return !!scratch && (host === scratch || host.startsWith(scratch.endsWith(sep) ? scratch : scratch + sep));
}

function inRoot(fs: RootFs, host: string, scratch?: string): string | null {
  // A file the build staged (an archive's member) is no file of the root, even with the root at /.
  if (inScratch(host, scratch)) return null;
  if (fs.root === '/') return host;
  if (host.startsWith(fs.root + sep)) return posix.normalize(host.slice(fs.root.length));
  return null;
}

/** Bytewise order (as tar entries are sorted), independent of the locale. */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
