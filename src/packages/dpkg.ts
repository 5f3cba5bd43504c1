import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, readlinkSync, Stats } from 'node:fs';
import { posix } from 'node:path';
import { cleanPath, RootFs } from '../elf/rootfs.js';
import { settled, stampOf } from '../oci/file-digests.js';
import { ControlFileError, field, parseStanzas, quickScan, scanStanzas } from './deb822.js';
import { IndexRow, loadStatusIndex, readStamped, saveStatusIndex, statusStamp } from './status-index.js';
import { ListNamesKey, listNamesCandidates, saveListNames } from './list-names.js';

export { ControlFileError } from './deb822.js';

/** One installed package (one stanza of dpkg's status, or one distroless status.d file). */
export interface DpkgPackage {
  name: string;
  /** A Debian architecture, or "all". */
  arch: string;
  /** Full version, epoch included. */
  version: string;
  /** The Source field's name part; the package name when there is none. */
  source: string;
  /** The Source field's "(version)"; the package version when there is none. */
  sourceVersion: string;
  /** The Status field ("install ok installed"); status.d stanzas have none and count as installed. */
  status: string;
  fields: Record<string, string>;
  /** The raw stanza, ending in "\n". */
  stanza: string;
  /** Where the stanza was read, inside the root: /var/lib/dpkg/status or /var/lib/dpkg/status.d/NAME. */
  origin: string;
}

/** A dpkg-divert record: every package but `by` (all, for a local diversion) has its `from` file at `to`. */
export interface Diversion {
  from: string;
  to: string;
  /** The diverting package; null for a local diversion (":"). */
  by: string | null;
}

/** An update-alternatives link: `link` → /etc/alternatives/`name` → `target`. */
export interface AlternativeLink {
  name: string;
  link: string;
  /** What /etc/alternatives/NAME points to now, or null when it is missing. */
  target: string | null;
}

const DB = '/var/lib/dpkg';
/** Above this many files that no likely package explains, every list is indexed instead of searched per name. */
const MAX_TARGETED = 24;
/** What follows a library's stem in its package's name: a version, maybe t64, maybe "-N" (libssl3, liblua5.1-0, libfoo3t64). */
const LIBRARY_SUFFIX = /^-?\d[\d.]*[a-z]?(t64)?(-\d+)?$/;
/** open(2) flags for reading a file that must not be a symlink (fs accepts numbers; its types say string). */
const NO_FOLLOW = (fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW) as unknown as string;
/** States in which a package's files are on disk (dpkg(1)); not-installed and config-files have none. */
const GONE = new Set(['not-installed', 'config-files']);

/**
 * Where the owner index files a path `p`'s list holds: where a diversion by another package moved it, else the path
 * itself; `diverted` when a diversion names the path at all (its target is then not a clean list path).
 */
function filedAt(p: DpkgPackage, listed: string, div: Map<string, Diversion>): { at: string; diverted: boolean } {
  const d = div.get(listed);
  return { at: d && d.by !== p.name ? d.to : listed, diverted: !!d };
}

/**
 * A root filesystem's dpkg database, read lazily: the status file (or distroless status.d/), info/*.list,
 * *.md5sums, *.conffiles, diversions and alternatives. Packages are keyed by (name, architecture): with multiarch a
 * name can be installed twice.
 *
 * File ownership works on physical paths: a listed path owns a path when its parent directory, resolved through the
 * root's symlinks (merged /usr: /lib → usr/lib; in-package links such as perl/5.36 → 5.36.0), is the path's, and the
 * last components (never resolved) are equal; diversions are applied. The index holds listed paths by their last
 * component, so only the directories of entries named like a path asked about are resolved (one lstat per directory,
 * cached): never every directory of every list. It is built lazily: `ownersOf` first reads the lists of the packages a
 * file's name points to (Debian names library packages after the SONAME: libssl.so.3 → libssl3), and reads every
 * list only for files those do not explain (a file is listed by one package, or by the same package's other
 * architectures); after a full read the index is complete and never read again.
 */
export class DpkgDatabase {
  readonly fs: RootFs;
  private all: DpkgPackage[];
  private present: DpkgPackage[];
  private byName = new Map<string, DpkgPackage[]>();
  /** Packages read from status.d (no info/ files). */
  private distroless = new Set<DpkgPackage>();
  private listCache = new Map<DpkgPackage, string[]>();
  private md5Cache = new Map<DpkgPackage, Map<string, string>>();
  /** Per package: last path component → [listed path, md5] of its md5sums (md5Of). */
  private md5ByName = new Map<DpkgPackage, Map<string, [string, string][]>>();
  /** Last path component → the listed paths of that name (where a diversion puts them) and their packages, in reading order. */
  private index = new Map<string, IndexEntry[]>();
  private indexed = new Set<DpkgPackage>();
  /** Lists parsed whole into the index of listed paths (for tests). */
  readonly stats = { indexed: 0 };
  private complete = false;
  /** Physical paths known to be in no list (after a scan). */
  private missing = new Set<string>();
  /** Raw info/*.list bytes, kept for later scans. */
  private listBuffers = new Map<DpkgPackage, Buffer>();
  private dirReal = new Map<string, string>([['/', '/']]);
  /** Host path of the resolved info/ directory (null: none), once asked for. */
  private infoHost: string | null | undefined;
  /** Where indexes are kept across runs (status-index.ts, list-names.ts); none when undefined. */
  private cacheDir: string | undefined;
  private diversionMap: Map<string, Diversion> | null = null;
  private altMap: Map<string, AlternativeLink> | null = null;
  private native: string | undefined;
  /** Every installed package name, each between "\n"s, in database order (candidates searches it). */
  private nameText: string | undefined;

  private constructor(fs: RootFs, packages: DpkgPackage[], distroless: DpkgPackage[]) {
    this.fs = fs;
    this.all = distroless.length ? packages.concat(distroless) : packages;
    for (const p of distroless) this.distroless.add(p);
    // Indexed loops: this runs once per process over a thousand packages, before V8 optimises anything.
    const present: DpkgPackage[] = [];
    for (let i = 0; i < this.all.length; i++) {
      const p = this.all[i];
      if (GONE.has((p as StatusEntry).state)) continue;
      present.push(p);
      const l = this.byName.get(p.name);
      if (l) l.push(p);
      else this.byName.set(p.name, [p]);
    }
    this.present = present;
  }

  /**
   * Opens the database of a root filesystem (host path): /var/lib/dpkg/status and/or /var/lib/dpkg/status.d/.
   * Null when there is neither; a ControlFileError (file and line) when a stanza is malformed. `where` names the root
   * (an unpacked image) in errors, which then name files by their path in it. `cacheDir`: where an index of the status
   * file is kept across runs (status-index.ts); none when undefined.
   */
  static open(root: string | RootFs, where?: string, opts: { cacheDir?: string } = {}): DpkgDatabase | null {
    const fs = typeof root === 'string' ? new RootFs(root) : root;
    const statusLoc = fs.stat(`${DB}/status`);
    const dirLoc = fs.stat(`${DB}/status.d`);
    const hasStatus = statusLoc?.stats.isFile() ?? false;
    const hasDir = dirLoc?.stats.isDirectory() ?? false;
    if (!hasStatus && !hasDir) return null;
    const packages = hasStatus ? readControl(fs, `${DB}/status`, where, opts.cacheDir) : [];
    const distroless: DpkgPackage[] = [];
    if (hasDir) {
      for (const name of [...fs.readdir(`${DB}/status.d`)].sort()) {
        if (name.startsWith('.') || name.endsWith('.md5sums')) continue;
        const p = `${DB}/status.d/${name}`;
        if (!fs.stat(p)?.stats.isFile()) continue;
        distroless.push(...readControl(fs, p, where));
      }
    }
    const db = new DpkgDatabase(fs, packages, distroless);
    db.cacheDir = opts.cacheDir;
    return db;
  }

  /** Packages whose files are on disk (every state but not-installed and config-files), in database order. */
  packages(): DpkgPackage[] {
    return this.present;
  }

  /** Every stanza, including removed packages that left configuration files. */
  allPackages(): DpkgPackage[] {
    return this.all;
  }

  /** The dpkg native architecture (the one dpkg itself is built for). */
  nativeArch(): string {
    if (this.native === undefined) {
      const dpkg = this.byName.get('dpkg')?.[0];
      let arch = dpkg && dpkg.arch !== 'all' ? dpkg.arch : undefined;
      if (!arch) {
        const a = this.readText(`${DB}/arch`);
        arch = a?.split('\n')[0].trim() || undefined;
      }
      this.native = arch ?? this.present.find((p) => p.arch !== 'all')?.arch ?? 'all';
    }
    return this.native;
  }

  /** A package by name ("name" or "name:arch"); without an architecture the native one, then "all", then any. */
  get(name: string, arch?: string): DpkgPackage | undefined {
    if (arch === undefined && name.includes(':')) [name, arch] = name.split(':', 2);
    const l = this.byName.get(name);
    if (!l) return undefined;
    if (arch) return l.find((p) => p.arch === arch);
    const native = this.nativeArch();
    return l.find((p) => p.arch === native) ?? l.find((p) => p.arch === 'all') ?? l[0];
  }

  /** Installed packages built from a source package (by name). */
  bySource(source: string): DpkgPackage[] {
    return this.present.filter((p) => p.source === source);
  }

  /** Whether the package came from a distroless status.d/ (no info/ files; its files are its md5sums). */
  isDistroless(p: DpkgPackage): boolean {
    return this.distroless.has(p);
  }

  /**
   * The paths a package installed, as dpkg lists them (directories included, "/." left out); for a status.d
   * package, the files of its md5sums.
   */
  files(p: DpkgPackage): string[] {
    let l = this.listCache.get(p);
    if (l === undefined) {
      if (this.distroless.has(p)) l = [...this.md5sums(p).keys()];
      else {
        // (a list read already to search it is not read again)
        const text = this.listBuffers.get(p)?.toString('utf8') ?? this.readInfo(p, 'list');
        l = [];
        if (text !== null) {
          for (const line of text.split('\n')) {
            if (line === '' || line === '/.') continue;
            l.push(line);
          }
        }
      }
      this.listCache.set(p, l);
    }
    return l;
  }

  /** Configuration files (info/NAME.conffiles, else the status Conffiles field), flags such as remove-on-upgrade left off. */
  conffiles(p: DpkgPackage): string[] {
    const text = this.distroless.has(p) ? null : this.readInfo(p, 'conffiles');
    if (text !== null) {
      return text
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .map((l) => l.slice(l.indexOf('/')));
    }
    const f = field(p.fields, 'Conffiles');
    if (!f) return [];
    return f
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((x) => x?.startsWith('/'));
  }

  /** Path (with a leading "/") → md5 of the package's regular files (info/ or status.d/ md5sums); empty when it has none. */
  md5sums(p: DpkgPackage): Map<string, string> {
    let m = this.md5Cache.get(p);
    if (m === undefined) {
      m = new Map();
      let file: string | null = null;
      let text: string | null = null;
      if (this.distroless.has(p)) {
        for (const n of [`${p.name}:${p.arch}.md5sums`, `${p.name}.md5sums`]) {
          text = this.readText(`${DB}/status.d/${n}`);
          if (text !== null) {
            file = `${DB}/status.d/${n}`;
            break;
          }
        }
      } else {
        for (const n of infoNames(p, 'md5sums')) {
          text = this.readInfoFile(n)?.toString('utf8') ?? null;
          if (text !== null) {
            file = `${DB}/info/${n}`;
            break;
          }
        }
      }
      if (text !== null && file !== null) {
        const lines = text.split('\n');
        for (let i = 0; i < lines.length; i++) {
          const l = lines[i];
          if (l === '') continue;
          const mm = /^([0-9a-f]{32}) [ *]?(.+)$/.exec(l);
          if (!mm) throw new ControlFileError(this.fs.host(file), i + 1, 'expected "MD5SUM  PATH"');
          m.set(mm[2].startsWith('/') ? mm[2] : '/' + mm[2], mm[1]);
        }
      }
      this.md5Cache.set(p, m);
    }
    return m;
  }

  /** The md5 the package recorded for a path (any spelling: merged-/usr aliases match), or undefined. */
  md5Of(p: DpkgPackage, path: string): string | undefined {
    // Only a listed path with the same last component can be the same file (physical keeps it): those are compared.
    let m = this.md5ByName.get(p);
    if (!m) {
      m = new Map();
      for (const [f, sum] of this.md5sums(p)) {
        const norm = f.includes('/.') || f.includes('//') || f.endsWith('/') ? this.physical(f) : f;
        const base = norm.slice(norm.lastIndexOf('/') + 1);
        const l = m.get(base);
        if (l) l.push([f, sum]);
        else m.set(base, [[f, sum]]);
      }
      this.md5ByName.set(p, m);
    }
    const ph = this.physical(path);
    const same = m.get(ph.slice(ph.lastIndexOf('/') + 1)) ?? [];
    // The last of several spellings of one file wins, as in the file.
    for (let i = same.length - 1; i >= 0; i--) if (this.physical(same[i][0]) === ph) return same[i][1];
    return undefined;
  }

  /** The package owning a file (first of several only for Multi-Arch: same packages sharing it). */
  ownerOf(imagePath: string): DpkgPackage | undefined {
    return this.ownersOf([imagePath]).get(imagePath)?.[0];
  }

  /**
   * Owners of many paths at once (the fast way: each path's likely packages are read first). Paths are in-root
   * paths; any spelling works (/bin/sh, /usr/bin/sh). Directories have many owners; an unowned path maps to [].
   */
  ownersOf(paths: string[]): Map<string, DpkgPackage[]> {
    const phys = new Map(paths.map((p) => [p, this.physical(p)]));
    const pending = () => [...new Set(phys.values())].filter((ph) => !this.missing.has(ph) && !this.ownersAt(ph).length);
    // A file found in one package may be shared by the same package's other architectures (Multi-Arch: same).
    const siblings = () => {
      for (const ph of phys.values()) for (const o of this.ownersAt(ph)) for (const s of this.byName.get(o.name) ?? []) this.indexPackage(s);
    };
    if (!this.complete) {
      for (const tier of [1, 2] as const) {
        for (const cs of this.candidates(pending().map((ph) => posix.basename(ph)), tier)) for (const c of cs) this.indexPackage(c);
        siblings();
      }
      const todo = pending();
      if (todo.length > MAX_TARGETED) {
        for (const p of this.present) this.indexPackage(p);
        this.complete = true;
      } else if (todo.length) {
        this.scanFor(todo);
        siblings();
        for (const ph of pending()) this.missing.add(ph);
      }
    }
    const out = new Map<string, DpkgPackage[]>();
    for (const [p, ph] of phys) out.set(p, this.ownersAt(ph));
    return out;
  }

  /** The packages of the lists read so far that list a physical path (any spelling of its directory), in reading order. */
  private ownersAt(ph: string): DpkgPackage[] {
    const out: DpkgPackage[] = [];
    const same = this.index.get(ph.slice(ph.lastIndexOf('/') + 1));
    if (!same) return out;
    for (const e of same) {
      if (out.includes(e.pkg)) continue;
      // A listed path equal to a physical one is physical itself (its directory has no link to resolve).
      if (e.at === ph || (e.clean ? this.physicalClean(e.at) : this.physical(e.at)) === ph) out.push(e.pkg);
    }
    return out;
  }

  /**
   * The lists that may hold these paths, found without parsing every list: a listed path ends in "/NAME", and only
   * its parent directory can be spelled another way (or, for a diverted file, the name it had before the
   * diversion). Each candidate list (from the index of the lists' names, else every list) is read once into memory,
   * and only a list with a line that ends in "/NAME" and stands for one of these paths is indexed (parsed whole): a
   * name as common as "app" or "main" is in lists of thousands of lines (one of 50,000 lines took 100 ms to index),
   * while the paths sought are most often no package's (a program in the user's directory).
   */
  private scanFor(todo: string[]): void {
    const names = new Set<string>();
    const div = this.diversions();
    for (const ph of todo) {
      names.add(posix.basename(ph));
      for (const d of div.values()) if (this.physical(d.to) === ph) names.add(posix.basename(d.from));
    }
    const sought = new Set(todo);
    const key = this.listNamesKey();
    // The lists that may name them, from the index of every list's names: only those are read.
    const keys = key && listNamesCandidates(this.cacheDir!, key, names);
    // The lists' bytes are UTF-8 (they are decoded so everywhere else): a name searched for in another encoding
    // misses every non-ASCII one, which the index of their names (hashed as UTF-8) then finds: cached and --no-cache
    // builds differed.
    const needles = [...names].map((n) => Buffer.from(`/${n}\n`, 'utf8'));
    for (const p of this.present) {
      if (this.indexed.has(p)) continue;
      if (this.distroless.has(p)) {
        this.indexPackage(p);
        continue;
      }
      if (keys && !keys.has(`${p.name}:${p.arch}`)) continue;
      if (this.listsAny(p, this.listBuffer(p), needles, sought, div)) this.indexPackage(p);
    }
    if (keys) return;
    // Every list was at hand: the next build asks the index instead.
    if (key) {
      const lists: [string, Buffer][] = [];
      for (const p of this.present) {
        if (this.distroless.has(p)) continue;
        const b = this.listBuffer(p);
        if (b.length) lists.push([`${p.name}:${p.arch}`, b]);
      }
      saveListNames(this.cacheDir!, key, lists);
    }
  }

  /** A package's info/*.list as read (empty when it has none), ending in "\n", read once per database. */
  private listBuffer(p: DpkgPackage): Buffer {
    let buf = this.listBuffers.get(p);
    if (buf === undefined) {
      buf = this.readInfoBuffer(p, 'list') ?? Buffer.alloc(0);
      // A final line without "\n" still matches.
      if (buf.length && buf[buf.length - 1] !== 10) buf = Buffer.concat([buf, Buffer.from('\n')]);
      this.listBuffers.set(p, buf);
    }
    return buf;
  }

  /**
   * Whether the list `buf` of `p` has a line ending in one of `needles` ("/NAME\n") that indexPackage would file at one
   * of the physical paths `sought` (the place its diversion by another package moved it to, else itself): exactly the
   * lines ownersAt would then find for them.
   */
  private listsAny(p: DpkgPackage, buf: Buffer, needles: Buffer[], sought: Set<string>, div: Map<string, Diversion>): boolean {
    for (const n of needles) {
      for (let i = buf.indexOf(n); i >= 0; i = buf.indexOf(n, i + 1)) {
        const listed = buf.toString('utf8', buf.lastIndexOf(10, i) + 1, i + n.length - 1);
        if (sought.has(this.physical(filedAt(p, listed, div).at))) return true;
      }
    }
    return false;
  }

  /**
   * What the index of the lists' names is valid for (list-names.ts): the stat identities of the status file and of
   * the info directory, neither changed in the last two seconds; null without a cache directory or a status file.
   * dpkg never writes a list in place: it writes NAME.list.new and renames it over NAME.list (lib/dpkg/atomic-file.c,
   * used by write_filelist_except in db-fsys-files.c), renames a new package's control files into info/, and
   * unlinks a removed package's; each of these changes the directory's mtime and ctime, and every install, upgrade
   * or removal rewrites the status file. Two stats, then, instead of one per list.
   */
  private listNamesKey(): ListNamesKey | null {
    if (!this.cacheDir) return null;
    const infoHost = this.infoDirHost();
    const status = this.fs.locate(`${DB}/status`);
    if (!infoHost || !status) return null;
    const statusHost = this.fs.hostReal(status);
    const s = statusStamp(statusHost);
    // A bigint stat of the directory: the build's journal (builder/fs-journal.ts) keeps its times too.
    const i = statusStamp(infoHost);
    if (!s || !i || !i.st.isDirectory() || !settled(s.st) || !settled(i.st)) return null;
    return { infoHost, statusHost, statusStamp: s.stamp, infoStamp: i.stamp };
  }

  /** Diversions (/var/lib/dpkg/diversions), by the diverted path. */
  diversions(): Map<string, Diversion> {
    if (!this.diversionMap) {
      const m = new Map<string, Diversion>();
      const file = `${DB}/diversions`;
      const text = this.readText(file);
      if (text !== null) {
        const lines = text.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        if (lines.length % 3) throw new ControlFileError(this.fs.host(file), lines.length, 'incomplete diversion record (three lines each: path, diverted-to path, package)');
        for (let i = 0; i < lines.length; i += 3) {
          const [from, to, by] = lines.slice(i, i + 3);
          if (!from.startsWith('/') || !to.startsWith('/')) throw new ControlFileError(this.fs.host(file), i + 1, 'diversion paths must be absolute');
          m.set(from, { from, to, by: by === ':' ? null : by });
        }
      }
      this.diversionMap = m;
    }
    return this.diversionMap;
  }

  /**
   * The alternatives link a path is (a master or slave link such as /usr/bin/awk, or /etc/alternatives/NAME), from
   * /var/lib/dpkg/alternatives/. dpkg lists no package for these links; the file they lead to has one.
   */
  alternative(path: string): AlternativeLink | undefined {
    if (!this.altMap) {
      const m = new Map<string, AlternativeLink>();
      for (const name of this.fs.readdir(`${DB}/alternatives`)) {
        const text = this.readText(`${DB}/alternatives/${name}`);
        if (text === null) continue;
        const lines = text.split('\n');
        const add = (n: string, link: string | undefined) => {
          if (!link?.startsWith('/')) return;
          const a = `/etc/alternatives/${n}`;
          const st = this.fs.lstat(this.physical(a));
          const target = st?.isSymbolicLink() ? this.readLink(a) : null;
          const entry = { name: n, link, target };
          m.set(this.physical(link), entry);
          m.set(this.physical(a), entry);
        };
        add(name, lines[1]);
        // Slaves: (name, link) pairs until an empty line.
        for (let i = 2; i + 1 < lines.length && lines[i] !== ''; i += 2) add(lines[i], lines[i + 1]);
      }
      this.altMap = m;
    }
    return this.altMap.get(this.physical(path));
  }

  /** The path with its parent directory resolved through the root's symlinks (the last component kept). */
  physical(path: string): string {
    const p = cleanPath(posix.normalize(path.startsWith('/') ? path : '/' + path));
    return p === '/' ? p : this.physicalClean(p);
  }

  /** physical() of a clean absolute path (as .list files hold them). */
  private physicalClean(p: string): string {
    const slash = p.lastIndexOf('/');
    const dir = slash <= 0 ? '/' : this.realDir(p.slice(0, slash));
    return dir === '/' ? p.slice(slash) : dir + p.slice(slash);
  }

  private realDir(dir: string): string {
    let r = this.dirReal.get(dir);
    if (r === undefined) {
      const slash = dir.lastIndexOf('/');
      const parent = slash <= 0 ? '/' : this.realDir(dir.slice(0, slash));
      const here = (parent === '/' ? '' : parent) + dir.slice(slash);
      const st: Stats | null = this.fs.lstat(here);
      r = st?.isSymbolicLink() ? (this.fs.locate(here)?.realPath ?? here) : here;
      this.dirReal.set(dir, r);
    }
    return r;
  }

  private indexPackage(p: DpkgPackage): void {
    if (this.indexed.has(p)) return;
    this.indexed.add(p);
    this.stats.indexed++;
    const div = this.diversions();
    for (const listed of this.files(p)) {
      const { at, diverted } = filedAt(p, listed, div);
      // Lists hold clean paths; a diversion's path is cleaned as physical() does (its last component is kept).
      const name = diverted ? posix.basename(cleanPath(posix.normalize(at))) : at.slice(at.lastIndexOf('/') + 1);
      const entry: IndexEntry = { at, pkg: p, clean: !diverted };
      const l = this.index.get(name);
      if (!l) this.index.set(name, [entry]);
      else l.push(entry);
    }
  }

  /**
   * Packages likely to own a file by its name, for each name. Tier 1: Debian's library package naming (Policy 8.1):
   * libfoo.so.3 → libfoo3, libfoo-3, libfoo3t64, liblua5.1-0 (not -dev or -dbg packages). Tier 2: a package name
   * word equal to a word of the file name (redis-check-rdb → redis-tools). One search of the names finds the
   * packages any of the files may belong to; each file's own are picked from those, in database order.
   */
  private candidates(bases: string[], tier: 1 | 2): DpkgPackage[][] {
    const tests: (((name: string) => boolean) | null)[] = [];
    const alts = new Set<string>();
    for (const base of bases) {
      if (tier === 1) {
        const m = /^(.+?)\.so(?:\.|$)/.exec(base);
        if (!m) {
          tests.push(null);
          continue;
        }
        const stem = m[1].toLowerCase().replace(/_/g, '-');
        alts.add(stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
        tests.push((name) => name.startsWith(stem) && LIBRARY_SUFFIX.test(name.slice(stem.length)));
        continue;
      }
      const words = new Set(
        base
          .toLowerCase()
          .split(/[^a-z0-9]+/)
          .filter((w) => w.length >= 3 && w !== 'lib' && !/^\d+$/.test(w)),
      );
      if (!words.size) {
        tests.push(null);
        continue;
      }
      // A name word equal to a file name word, or to one without its "lib".
      for (const w of words) alts.add(w.startsWith('lib') ? `(?:lib)?${w.slice(3)}` : w);
      tests.push((name) => name.split(/[-.+]/).some((w) => words.has(w) || words.has('lib' + w)));
    }
    if (!alts.size) return bases.map(() => []);
    const pattern =
      tier === 1
        ? `(?:${[...alts].join('|')})-?\\d[\\d.]*[a-z]?(?:t64)?(?:-\\d+)?`
        : `(?:[^\\n]*[-.+])?(?:${[...alts].join('|')})(?:[-.+][^\\n]*)?`;
    // Every name, "\n"-separated, in database order.
    this.nameText ??= `\n${[...this.byName.keys()].join('\n')}\n`;
    const names = [...this.nameText.matchAll(new RegExp(`\\n(${pattern})(?=\\n)`, 'g'))].map((m) => m[1]);
    return tests.map((test) => {
      if (!test) return [];
      const out = names.filter(test).flatMap((n) => this.byName.get(n)!);
      return tier === 2 && out.length > 64 ? [] : out;
    });
  }

  /**
   * An info/ file of a package (NAME:ARCH.EXT, else NAME.EXT), or null. Read by name inside the info/ directory
   * resolved once: a lookup through RootFs.locate would, after a few dozen names, list the whole directory (thousands
   * of entries) to answer them, and a build's journal would hash that listing too.
   */
  private readInfoBuffer(p: DpkgPackage, ext: string): Buffer | null {
    for (const n of infoNames(p, ext)) {
      const b = this.readInfoFile(n);
      if (b !== null) return b;
    }
    return null;
  }

  private readInfo(p: DpkgPackage, ext: string): string | null {
    for (const n of infoNames(p, ext)) {
      const b = this.readInfoFile(n);
      if (b !== null) return b.toString('utf8');
    }
    return null;
  }

  /** The host path of the info/ directory, resolved once (null: none). */
  private infoDirHost(): string | null {
    if (this.infoHost === undefined) {
      const loc = this.fs.locate(`${DB}/info`);
      this.infoHost = loc ? this.fs.hostReal(loc) : null;
    }
    return this.infoHost;
  }

  /** info/NAME's bytes, or null when there is none (or it cannot be read). */
  private readInfoFile(name: string): Buffer | null {
    if (this.infoDirHost() === null || name.includes('/')) return null;
    try {
      // A symlink (dpkg makes none here) is followed the way the root sees it, not the host.
      return readFileSync(`${this.infoHost === '/' ? '' : this.infoHost}/${name}`, { flag: NO_FOLLOW });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOOP') return null;
      const loc = this.fs.locate(`${DB}/info/${name}`);
      if (!loc) return null;
      try {
        return readFileSync(this.fs.hostReal(loc));
      } catch {
        return null;
      }
    }
  }

  private readText(inRoot: string): string | null {
    const loc = this.fs.locate(inRoot);
    if (!loc) return null;
    try {
      return readFileSync(this.fs.hostReal(loc), 'utf8');
    } catch {
      return null;
    }
  }

  private readLink(inRoot: string): string | null {
    try {
      return readlinkSync(this.fs.host(this.physical(inRoot)));
    } catch {
      return null;
    }
  }
}

/** A path a list holds (where a diversion puts it), its package, and whether it is clean as lists are (no ".", "//"). */
interface IndexEntry {
  at: string;
  pkg: DpkgPackage;
  clean: boolean;
}

/**
 * info/ file names of a package: dpkg names them NAME:ARCH.EXT for a Multi-Arch: same package and NAME.EXT otherwise;
 * that one is tried first, the other after it (a database written otherwise). Trying the right one first spares a
 * failed open per file, and a build's journal an observation.
 */
function infoNames(p: DpkgPackage, ext: string): string[] {
  const qualified = `${p.name}:${p.arch}.${ext}`;
  const plain = `${p.name}.${ext}`;
  return p instanceof StatusEntry && !p.multiArchSame ? [plain, qualified] : [qualified, plain];
}

/**
 * The stanzas of a control file (dpkg's status, a status.d file). `where`, when given, names the root (an unpacked
 * image): errors then name the file by its path in the root. The common case is read by quickScan, each stanza's
 * text decoded when asked for; anything it does not vouch for (and any error) goes through scanStanzas, which names
 * the file and line at fault.
 */
function readControl(fs: RootFs, inRoot: string, where?: string, cacheDir?: string): DpkgPackage[] {
  const host = fs.hostReal(fs.locate(inRoot)!);
  const file = where ? inRoot : host;
  if (cacheDir) {
    const stat = statusStamp(host);
    const rows = stat && loadStatusIndex(cacheDir, host, stat.stamp);
    if (rows) {
      const bytes = new FileBytes(null, { host, stamp: stat.stamp, file });
      const out: DpkgPackage[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) out[i] = new StatusEntry(rows[i], { bytes, start: rows[i][8], end: rows[i][9] }, host, inRoot);
      return out;
    }
  }
  let bytes: Buffer;
  let stat: ReturnType<typeof statusStamp> = null;
  try {
    // Through one descriptor: the stamp an index is kept under is the stat of the very bytes read.
    const fd = openSync(host, 'r');
    try {
      const before = fstatSync(fd, { bigint: true });
      bytes = readFileSync(fd);
      const after = fstatSync(fd, { bigint: true });
      if (stampOf(before) === stampOf(after) && bytes.length === Number(after.size)) stat = { stamp: stampOf(after), st: after };
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new ControlFileError(file, 0, (e as NodeJS.ErrnoException).code ?? String(e), where);
  }
  const spans = quickScan(bytes, HEAD_FIELDS);
  if (spans) {
    try {
      const read = new FileBytes(bytes);
      const entries = spans.map((s) => new StatusEntry(s.head, { bytes: read, start: s.start, end: s.end }, host, inRoot));
      if (cacheDir && stat) saveStatusIndex(cacheDir, host, stat, entries.map((e, i) => e.indexRow(spans[i].start, spans[i].end)));
      return entries;
    } catch (e) {
      if (!(e instanceof ControlFileError)) throw e;
      // scanStanzas reports it, with the line.
    }
  }
  return scanStanzas(bytes.toString('utf8'), file, HEAD_FIELDS, where).map((s) => new StatusEntry(s.head, { text: s.text, line: s.line }, host, inRoot));
}

const HEAD_FIELDS = ['package', 'architecture', 'version', 'status', 'source', 'multi-arch'];
const INSTALLED = 'install ok installed';
const INSTALLED_WORDS = INSTALLED.split(' ');

/**
 * A control file's bytes: read already, or (the file's index said where its stanzas are) read when first asked for,
 * and only while the file keeps the stamp the index was made under: the stanzas asked for each on its own (a build
 * wants a few dozen of the status file's thousand: a few KB, not the 800 KB file), the whole file at most once.
 */
class FileBytes {
  constructor(
    private buf: Buffer | null,
    private readonly from?: { host: string; stamp: string; file: string },
  ) {}

  get(): Buffer {
    if (this.buf === null) this.buf = this.read();
    return this.buf;
  }

  /** The bytes from `start` to `end`. */
  range(start: number, end: number): Buffer {
    return this.buf ? this.buf.subarray(start, end) : this.read({ start, end });
  }

  private read(range?: { start: number; end: number }): Buffer {
    const { host, stamp, file } = this.from!;
    const b = readStamped(host, stamp, range);
    if (b === null) throw new ControlFileError(file, 0, 'changed while it was being read (did dpkg run meanwhile?): run again');
    return b;
  }
}

/** Where a stanza's text is: already decoded (with its first line), or a byte range of its file, decoded when asked for. */
type StanzaSource = { text: string; line: number } | { bytes: FileBytes; start: number; end: number };

/** A package read from a control file; its fields other than the head ones are parsed when first asked for. */
class StatusEntry implements DpkgPackage {
  name: string;
  arch: string;
  version: string;
  source: string;
  sourceVersion: string;
  status: string;
  /** The third word of Status (installed, config-files, ...). */
  readonly state: string;
  /** Multi-Arch: same (its info/ files are named NAME:ARCH.EXT). */
  readonly multiArchSame: boolean;
  private parsed: Record<string, string> | null = null;
  private text: string | null;

  /** `head`: the head fields read from the stanza (checked here), or what an index kept of an entry made so (status-index.ts). */
  constructor(
    head: Record<string, string> | IndexRow,
    private readonly at: StanzaSource,
    private readonly file: string,
    readonly origin: string,
  ) {
    this.text = 'text' in at ? at.text : null;
    if (Array.isArray(head)) {
      // What equals its default is kept as "" (status-index.ts IndexRow).
      this.name = head[0];
      this.arch = head[1];
      this.version = head[2];
      this.source = head[3] || head[0];
      this.sourceVersion = head[4] || head[2];
      this.status = head[5] || INSTALLED;
      this.state = head[6] || 'installed';
      this.multiArchSame = head[7] === 1;
      return;
    }
    // Errors from a quickScan stanza carry no line: readControl reads the file again with scanStanzas, which has it.
    const line = 'line' in at ? at.line : 0;
    const { file: f } = this;
    const name = head.package;
    if (!name) throw new ControlFileError(f, line, 'stanza without a Package field');
    if (!/^[a-z0-9][a-z0-9+.-]*$/.test(name)) throw new ControlFileError(f, line, `invalid package name "${name}"`);
    const status = head.status ?? INSTALLED;
    const words = status === INSTALLED ? INSTALLED_WORDS : status.split(/\s+/);
    if (words.length !== 3) throw new ControlFileError(f, line, `${name}: Status "${status}" is not "WANT FLAG STATE"`);
    const version = head.version ?? '';
    if (!version && !GONE.has(words[2])) throw new ControlFileError(f, line, `${name}: no Version field`);
    const arch = head.architecture ?? '';
    if (!arch && !GONE.has(words[2])) throw new ControlFileError(f, line, `${name}: no Architecture field`);
    let source = name;
    let sourceVersion = version;
    if (head.source) {
      const m = /^(\S+)(?:\s+\((\S+)\))?$/.exec(head.source);
      if (!m) throw new ControlFileError(f, line, `${name}: Source "${head.source}" is not "NAME" or "NAME (VERSION)"`);
      source = m[1];
      if (m[2]) sourceVersion = m[2];
    }
    this.name = name;
    this.arch = arch;
    this.version = version;
    this.source = source;
    this.sourceVersion = sourceVersion;
    this.status = status;
    this.state = words[2];
    this.multiArchSame = head['multi-arch'] === 'same';
  }

  /** What the status index keeps of this entry (status-index.ts), with its stanza's bytes [start, end). */
  indexRow(start: number, end: number): IndexRow {
    const installed = this.status === INSTALLED;
    return [
      this.name,
      this.arch,
      this.version,
      this.source === this.name ? '' : this.source,
      this.sourceVersion === this.version ? '' : this.sourceVersion,
      installed ? '' : this.status,
      installed ? '' : this.state,
      this.multiArchSame ? 1 : 0,
      start,
      end,
    ];
  }

  /** The raw stanza, ending in "\n". */
  get stanza(): string {
    if (this.text === null) {
      const { bytes, start, end } = this.at as { bytes: FileBytes; start: number; end: number };
      const t = bytes.range(start, end).toString('utf8');
      this.text = t.endsWith('\n') ? t : t + '\n';
    }
    return this.text;
  }

  /** What JSON shows of it: the DpkgPackage fields (not where its text is kept). */
  toJSON(): DpkgPackage {
    const { name, arch, version, source, sourceVersion, status, fields, stanza, origin } = this;
    return { name, arch, version, source, sourceVersion, status, fields, stanza, origin };
  }

  get fields(): Record<string, string> {
    if (!this.parsed) {
      const at = this.at;
      if ('line' in at) this.parsed = parseStanzas(this.stanza, this.file, { firstLine: at.line })[0]?.fields ?? {};
      else {
        try {
          this.parsed = parseStanzas(this.stanza, this.file)[0]?.fields ?? {};
        } catch (e) {
          if (!(e instanceof ControlFileError)) throw e;
          // The line in the file: the stanza's own line plus the lines before it.
          const bytes = at.bytes.get();
          let before = 0;
          for (let i = bytes.indexOf(10); i >= 0 && i < at.start; i = bytes.indexOf(10, i + 1)) before++;
          throw new ControlFileError(e.file, e.line + before, e.reason, e.where);
        }
      }
    }
    return this.parsed;
  }
}

/** /etc/os-release (else /usr/lib/os-release) of a root as KEY → value (quotes removed); null when there is none. */
export function readOsRelease(root: string | RootFs): Record<string, string> | null {
  const fs = typeof root === 'string' ? new RootFs(root) : root;
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    const loc = fs.locate(p);
    if (!loc) continue;
    let text: string;
    try {
      text = readFileSync(fs.hostReal(loc), 'utf8');
    } catch {
      continue;
    }
    const out: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (!m) continue;
      let v = m[2].trim();
      if (/^".*"$/.test(v)) v = v.slice(1, -1).replace(/\\(["$`\\])/g, '$1');
      else if (/^'.*'$/.test(v)) v = v.slice(1, -1);
      out[m[1]] = v;
    }
    return out;
  }
  return null;
}
