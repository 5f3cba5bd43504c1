import { posix } from 'node:path';
import { DF_1_NODEFLIB } from './constants.js';
import { expandGlibcDst, expandMuslDst, splitPathList } from './dst.js';
import { ElfError } from './errors.js';
import { Flavour, LoaderModel, loaderModel } from './loader.js';
import { readLdSoConf } from './ldconfig.js';
import { compatible } from './platform.js';
import type { Platform } from '../oci/platform.js';
import { ElfFile, ElfKind, ReadOptions, readElfFile } from './reader.js';
import { cleanPath, Kind, Located, RootFs } from './rootfs.js';

export interface ResolveOptions {
  /** Directories searched as LD_LIBRARY_PATH would be (never taken from the environment). */
  libraryPath?: string[];
  /** glibc-hwcaps subdirectories to prefer; "host" for this CPU's levels (as ldd would pick); default: baseline only. */
  hwcaps?: string[] | 'host';
  /** Read imported symbol names of every object (for the dlopen rules). */
  symbols?: boolean;
  /** Read every object's version records (default true; see ReadOptions.versions). */
  versions?: boolean;
  /**
   * The image being built, over the root: the host file of a regular file the image holds at an absolute path, or
   * null. Each library is searched for in the image first (the loader's whole order over what the image holds), then
   * in the root: a library shipped beside a program (a COPY'd directory with $ORIGIN/../lib, an archive's own lib/)
   * is found where the program will find it at run time, and a root's copy earlier in the search does not shadow it.
   */
  image?: (path: string) => string | null;
  /**
   * How an object is read (default readElfFile): a caller may answer from what it kept of an earlier read of the
   * same file (builder/elf-memo.ts), which must be what readElfFile would give. `found`: the file was found by the
   * loader's search (a library, the interpreter), not given (a program, which changes more often than its libraries).
   */
  readElf?: (hostPath: string, opts: ReadOptions, name: string, found: boolean) => ElfFile;
}

/** One object of the closure. */
export interface ClosureObject extends Located {
  /** The name it was requested by (the DT_NEEDED string). */
  name: string;
  /** Found path of the object whose DT_NEEDED first asked for it. */
  neededBy: string;
  /** Where the image must hold it: the found path with ".." resolved physically inside the root. */
  imagePath: string;
  elf: ElfFile;
  /** glibc-hwcaps variants beside the found file (dir/glibc-hwcaps/NAME/lib), for the runtime CPU to choose. */
  variants: Located[];
  /** Found only through ld.so.conf (the cache), in a directory the loader does not search by itself. */
  confOnly: boolean;
}

export interface Interpreter extends Located {
  elf: ElfFile;
}

export interface Edge {
  from: string;
  name: string;
  /** Found path of the object satisfying the name, or null when not found. */
  to: string | null;
}

export interface Closure {
  file: Located;
  elf: ElfFile;
  kind: ElfKind;
  platform: Platform | null;
  flavour: Flavour | null;
  interpreter: Interpreter | null;
  /** Libraries in load order, without the interpreter and the file itself. */
  libraries: ClosureObject[];
  notFound: { name: string; neededBy: string; reason?: string }[];
  edges: Edge[];
  warnings: string[];
  /** The loader's own directories (searched without any ld.so.cache). */
  defaultDirs: string[];
}

interface Node {
  path: string;
  located: Located;
  elf: ElfFile;
  origin: string | null;
  loader: Node | null;
  searchDir?: string;
  viaCache?: boolean;
  place?: Placement;
}

type Attempt = { node: { located: Located; elf: ElfFile } } | { skip: true } | { error: string };

/** A closure's interpreter, found once per interpreter path and wanted identity. */
interface InterpSetup {
  flavour: Flavour;
  node: Node | null;
  /** Why the interpreter cannot serve (reported as not found), or null. */
  missing: string | null;
  model: LoaderModel;
}

/** What steps 4 and 5 of glibc's search (ld.so.cache, default directories) give for one name. */
interface SystemAnswer {
  a: Attempt;
  viaCache: boolean;
  /** Where the library found goes in an image (filled on first use). */
  place?: Placement;
}

/** Where a found library goes in the image, and its glibc-hwcaps variants (shared: copy before handing out). */
interface Placement {
  imagePath: string;
  variants: Located[];
}
/** Those answers by name, for one loader model and wanted identity: [without, with DF_1_NODEFLIB]. */
type SystemMemos = (Map<string, SystemAnswer> | undefined)[];

/** The state of one closure walk: the program, its loader and model, and the objects loaded so far. */
interface Walk {
  path: string;
  main: Node;
  interp: Node | null;
  model: LoaderModel;
  byName: WalkMap;
  byReal: WalkMap;
  /** The answers of searchGlibc's steps 4 and 5 for this walk's loader and identity (found once per walk). */
  system: SystemMemos;
}

/**
 * Computes the files the dynamic loader opens to start an ELF file, statically, by the loader's own rules (glibc or
 * musl, chosen from PT_INTERP). Holds caches, so one Resolver serves many files of one root.
 */
export class Resolver {
  readonly fs: RootFs;
  private elfCache = new Map<string, ElfFile | ElfError>();
  private models = new Map<string, LoaderModel>();
  private confDirs: string[] | null = null;
  private attempts = new Map<string, Attempt>();
  /** inDir's answers (before the requester is attached), by loader model, wanted identity, soname rule, dir, name. */
  private inDirMemo = new Map<string, Attempt>();
  /** The ld.so.cache and default-directory steps' answers, which depend only on the name and the loader. */
  private systemMemo = new Map<string, Map<string, SystemAnswer>>();
  private modelIds = new WeakMap<object, number>();
  private placements = new Map<string, Placement>();
  private interps = new Map<string, InterpSetup>();
  private subdirMemo = new WeakMap<object, Map<string, { hwcaps: boolean; legacy: string[] }>>();
  /** The current walk's objects by name and by real path. */
  private byName = new WalkMap();
  private byReal = new WalkMap();

  constructor(
    root: string | RootFs = '/',
    readonly opts: ResolveOptions = {},
  ) {
    this.fs = typeof root === 'string' ? new RootFs(root) : root;
  }

  /** Parses an in-root path (cached by real path); `found`: by the loader's search (see ResolveOptions.readElf). Throws ElfError. */
  readElf(located: Located, found = false): ElfFile {
    const key = located.host === undefined ? located.realPath : `image:${located.realPath}`;
    let e = this.elfCache.get(key);
    if (e === undefined) {
      try {
        const host = located.host ?? this.fs.hostReal(located);
        const opts = { symbols: this.opts.symbols, versions: this.opts.versions };
        // A file the image holds (staged from an archive or a COPY: a scratch path) counts as given.
        e = this.opts.readElf ? this.opts.readElf(host, opts, located.path, found && located.host === undefined) : readElfFile(host, opts, located.path);
      } catch (err) {
        if (!(err instanceof ElfError)) throw err;
        e = err;
      }
      this.elfCache.set(key, e);
    }
    if (e instanceof ElfError) {
      if (e.file !== located.path) throw new ElfError(located.path, e.reason);
      throw e;
    }
    return e;
  }

  private conf(): string[] {
    if (!this.confDirs) this.confDirs = readLdSoConf(this.fs);
    return this.confDirs;
  }

  /** Resolves the closure of a file given as a path inside the root. Throws ElfError for a bad input file. */
  resolve(path: string): Closure {
    const fs = this.fs;
    const located = fs.locate(path);
    if (!located) throw new ElfError(path, fs.failure(path));
    const kind = fs.kind(located.realPath);
    if (kind === Kind.Directory) throw new ElfError(path, 'is a directory, not an ELF file');
    if (kind !== Kind.File) throw new ElfError(path, 'is not a regular file');
    return this.closureOf(located, this.readElf(located));
  }

  /**
   * The closure of an ELF file that is not inside the root (a COPY from a build context, an unpacked ADD archive),
   * placed at `imagePath`: its libraries are searched in the root, $ORIGIN is its image directory.
   */
  resolveExternal(hostFile: string, imagePath: string): Closure {
    const located: Located = { path: imagePath, realPath: imagePath, links: [], host: hostFile };
    return this.closureOf(located, readElfFile(hostFile, { symbols: this.opts.symbols, versions: this.opts.versions }, imagePath));
  }

  private closureOf(located: Located, elf: ElfFile): Closure {
    const st = { located };
    const path = located.path;
    const closure: Closure = {
      file: st.located,
      elf,
      kind: elf.kind,
      platform: elf.platform,
      flavour: null,
      interpreter: null,
      libraries: [],
      notFound: [],
      edges: [],
      warnings: [],
      defaultDirs: [],
    };
    if (!elf.interp && elf.kind !== 'shared-object') return closure;

    // A shared object analysed on its own (as ldd does) is started by the system's loader for its architecture.
    const interpPath = elf.interp ?? this.guessInterp(elf);
    const main: Node = { path: st.located.path, located: st.located, elf, origin: posix.dirname(st.located.realPath), loader: null };
    // (each walk empties the resolver's two maps rather than making its own: two maps grown entry by entry in every
    // closure were a tenth of the garbage of ldd over /usr/bin)
    const byName = this.byName.clear();
    const byReal = this.byReal.clear();
    byName.set(main.path, main);
    byReal.set(main.located.realPath, main);

    let model: LoaderModel;
    let interpNode: Node | null = null;
    if (interpPath) {
      const setup = this.interpSetup(interpPath, elf);
      closure.flavour = setup.flavour;
      if (setup.missing !== null) closure.notFound.push({ name: interpPath, neededBy: main.path, reason: setup.missing });
      interpNode = setup.node;
      if (interpNode) {
        const ielf = interpNode.elf;
        // An executable's interpreter is always mapped; for a shared object analysed on its own the system
        // loader shows up only when something needs it by name (ldd's behaviour).
        if (elf.interp) closure.interpreter = interpreterOf(interpNode.located, ielf);
        byName.set(interpPath, interpNode);
        byName.set(interpNode.located.path, interpNode);
        if (ielf.soname) byName.set(ielf.soname, interpNode);
        byReal.set(interpNode.located.realPath, interpNode);
      }
      model = setup.model;
    } else {
      closure.flavour = 'glibc';
      model = this.model('', null, elf);
    }
    closure.defaultDirs = model.muslPath ?? model.defaultDirs;
    if (elf.interp && !elf.needed.length && !elf.filters.length) return closure;

    return this.searchLoop(closure, { path, main, interp: interpNode, model, byName, byReal, system: [] });
  }

  /**
   * The interpreter a program names, as every closure with that interpreter and identity sees it (found once): its
   * flavour, its node (shared: never changed by a walk), why it is unusable, and the loader model.
   */
  private interpSetup(interpPath: string, elf: ElfFile): InterpSetup {
    const key = `${interpPath}\0${this.wantKey(elf)}`;
    let setup = this.interps.get(key);
    if (setup) return setup;
    const flavour: Flavour = posix.basename(interpPath).startsWith('ld-musl-') ? 'musl' : 'glibc';
    let node: Node | null = null;
    let missing: string | null = null;
    const located = this.fs.locate(interpPath);
    if (!located || this.fs.kind(located.realPath) !== Kind.File) {
      missing = 'interpreter not found in the root';
    } else {
      try {
        const ielf = this.readElf(located, true);
        if (!compatible(elf, ielf)) missing = 'interpreter is for another architecture';
        else node = { path: located.path, located, elf: ielf, origin: posix.dirname(located.path), loader: null };
      } catch (e) {
        if (!(e instanceof ElfError)) throw e;
        missing = e.reason;
      }
    }
    const model = this.model(interpPath, node ? this.fs.hostReal(node.located) : null, elf);
    setup = { flavour, node, missing, model };
    this.interps.set(key, setup);
    return setup;
  }

  /**
   * The loader's breadth-first walk (elf/dl-deps.c): each object's DT_NEEDED (and filter) names in order, each
   * found once by findLib, every new object queued in turn. Fills the closure's libraries, edges and notFound.
   */
  private searchLoop(closure: Closure, w: Walk): Closure {
    const queue: Node[] = [w.main];
    for (let qi = 0; qi < queue.length; qi++) {
      const node = queue[qi];
      const needed = node.elf.needed;
      const filters = node.elf.filters;
      const count = needed.length + filters.length;
      for (let k = 0; k < count; k++) {
        const name = k < needed.length ? needed[k] : filters[k - needed.length];
        // Most names of a closure were loaded already (libc by every library): the loader's first check.
        const known = w.byName.get(name);
        if (known !== undefined) {
          if (known === w.interp && !closure.interpreter) closure.interpreter = interpreterOf(known.located, known.elf);
          closure.edges.push({ from: node.path, name, to: known.path });
          continue;
        }
        const r = this.findLib(name, node, w);
        if ('missing' in r) {
          closure.notFound.push(r.missing ? { name, neededBy: node.path, reason: r.missing } : { name, neededBy: node.path });
          closure.edges.push({ from: node.path, name, to: null });
          continue;
        }
        const dep = r.node;
        // The system loader of a shared object analysed on its own shows up once something needs it by name.
        if (r.how === 'name' && dep === w.interp && !closure.interpreter) closure.interpreter = interpreterOf(dep.located, dep.elf);
        w.byName.set(name, dep);
        closure.edges.push({ from: node.path, name, to: dep.path });
        if (r.how !== 'new') continue;
        w.byName.set(dep.path, dep);
        if (dep.elf.soname) w.byName.set(dep.elf.soname, dep);
        w.byReal.set(dep.located.realPath, dep);
        if (closure.libraries.length >= 4096) throw new ElfError(w.path, 'closure exceeds 4096 objects');
        // (a library found by the system search carries its placement, found once per name)
        const place = dep.place ?? this.placement(dep, name, w.model);
        const loc = dep.located;
        const lib: ClosureObject = {
          path: loc.path,
          realPath: loc.realPath,
          links: loc.links,
          name,
          neededBy: node.path,
          imagePath: place.imagePath,
          elf: dep.elf,
          variants: place.variants.length ? place.variants.slice() : [],
          confOnly: !!dep.viaCache && !w.model.defaultDirs.includes(dep.searchDir ?? ''),
        };
        // (set only when there is one, rather than spreading an object made for the purpose into every library)
        if (loc.host !== undefined) lib.host = loc.host;
        closure.libraries.push(lib);
        queue.push(dep);
      }
    }
    return closure;
  }

  /**
   * One name needed by `from`: an object already loaded under that name (or musl's reserved names, answered by the
   * loader itself), else the loader's search (glibc or musl order); a found file already loaded under another name
   * is that object (file identity), else a new one. `missing` carries the reason when a candidate was unusable.
   */
  private findLib(name: string, from: Node, w: Walk): { node: Node; how: 'name' | 'file' | 'new' } | { missing: string | undefined } {
    let dep = w.byName.get(name);
    if (!dep && w.model.flavour === 'musl' && w.interp && isMuslReserved(name)) dep = w.interp;
    if (dep) return { node: dep, how: 'name' };
    const search = (memos?: SystemMemos) => (w.model.flavour === 'musl' ? this.searchMusl(name, from, w.main, w.model) : this.searchGlibc(name, from, w.main, w.model, memos));
    let found: Attempt | null = null;
    if (this.opts.image) {
      // What the image holds first, in the loader's order: a library the image ships (an archive's own libz in
      // /usr/lib) is the one the loader finds there unless the build adds another copy ahead of it in the search
      // (the root's in /lib, which would shadow it). The root's files come in only for what the image lacks.
      this.imagePass = true;
      try {
        found = search();
      } finally {
        this.imagePass = false;
      }
      if (!('node' in found)) found = null;
    }
    found ??= search(w.system);
    if ('error' in found) return { missing: found.error };
    if ('skip' in found) return { missing: undefined };
    const node = found.node as Node;
    // Same file under another name: the loader maps it once.
    const existing = w.byReal.get(node.located.realPath);
    return existing ? { node: existing, how: 'file' } : { node, how: 'new' };
  }

  /**
   * Finds a library as libc's dlopen would for the program of `c` (libgcc_s for pthread_cancel, NSS modules):
   * the program's RPATH, --library-path, the ld.so.conf directories and the loader's defaults. Null when absent.
   */
  findForDlopen(c: Closure, name: string): Located | null {
    if (!c.elf.interp || c.flavour !== 'glibc') return null;
    const model = this.model(c.elf.interp, c.interpreter ? this.fs.hostReal(c.interpreter) : null, c.elf);
    const main: Node = { path: c.file.path, located: c.file, elf: c.elf, origin: posix.dirname(c.file.realPath), loader: null };
    const libc = c.libraries.find((l) => /^libc\.so\./.test(posix.basename(l.path)));
    const from: Node = libc ? { path: libc.path, located: libc, elf: libc.elf, origin: posix.dirname(libc.path), loader: main } : main;
    const a = this.searchGlibc(name, from, main, model);
    return 'node' in a ? a.node.located : null;
  }

  private model(interp: string, interpHost: string | null, exe: ElfFile): LoaderModel {
    const key = `${interp}\0${exe.machine}\0${exe.elfClass}`;
    let m = this.models.get(key);
    if (!m) {
      m = loaderModel(this.fs, interp || '/ld.so', interpHost, exe, { hwcaps: this.opts.hwcaps });
      this.models.set(key, m);
    }
    return m;
  }

  private guessInterp(elf: ElfFile): string | null {
    // Use the loader that libc in this root names, found through the default directories.
    for (const d of ['/lib64', '/lib', '/usr/lib64', '/usr/lib']) {
      for (const n of this.fs.readdir(d)) {
        if (!/^ld-linux.*\.so\.\d$|^ld64\.so\.\d$/.test(n)) continue;
        const loc = this.fs.locate(`${d}/${n}`);
        if (!loc) continue;
        try {
          if (compatible(elf, this.readElf(loc, true))) return loc.path;
        } catch {
          /* not a loader */
        }
      }
    }
    return null;
  }

  /** Opens one candidate as open_verify does: missing or wrong class/machine means keep searching. */
  private wantKey(want: ElfFile): string {
    // Nearly every file of a run has the identity of the one before: the last key answers, without a WeakMap entry
    // per file (each scavenge walks a WeakMap's table).
    const last = this.lastWant;
    if (last !== null && last.machine === want.machine && last.elfClass === want.elfClass && last.littleEndian === want.littleEndian && last.flags === want.flags) {
      return this.lastWantKey;
    }
    const k = `${want.machine}/${want.elfClass}/${want.littleEndian}/${want.flags}`;
    this.lastWant = want;
    this.lastWantKey = k;
    return k;
  }
  private lastWant: ElfFile | null = null;
  private lastWantKey = '';

  private modelId(model: object | null): number {
    if (!model) return 0;
    let id = this.modelIds.get(model);
    if (id === undefined) {
      id = ++this.modelCount;
      this.modelIds.set(model, id);
    }
    return id;
  }
  private modelCount = 0;

  /** Searching only what the image holds (findLib's first pass); every memo key below names the pass. */
  private imagePass = false;

  private attempt(path: string, want: ElfFile): Attempt {
    const key = `${this.imagePass ? 'I' : ''}${this.wantKey(want)}\0${path}`;
    let a = this.attempts.get(key);
    if (!a) {
      a = this.attemptUncached(path, want);
      this.attempts.set(key, a);
    }
    return a;
  }

  private attemptUncached(path: string, want: ElfFile): Attempt {
    // The image's pass sees only the files the image holds; the root's pass sees the root.
    let located: Located | null;
    if (this.imagePass) {
      const host = this.opts.image?.(path);
      if (!host) return { skip: true };
      located = { path, realPath: path, links: [], host };
    } else {
      located = this.fs.locate(path);
      if (!located || this.fs.kind(located.realPath) !== Kind.File) return { skip: true };
    }
    let elf: ElfFile;
    try {
      elf = this.readElf(located, true);
    } catch (e) {
      if (!(e instanceof ElfError)) throw e;
      return { error: e.message };
    }
    if (!compatible(want, elf)) return { skip: true };
    if (elf.type !== 2 && elf.type !== 3) return { error: `${path}: ELF file is not an executable or shared object` };
    return { node: { located, elf } };
  }

  /**
   * One search directory, as open_path tries it: the glibc-hwcaps subdirectories, the legacy hwcap subdirectories,
   * then the directory itself. `sonameMustMatch` (the ld.so.cache step) passes over a file whose SONAME differs.
   */
  private inDir(dir: string, name: string, want: ElfFile, model: { hwcaps: string[]; legacy: string[] } | null, from: Node, sonameMustMatch = false): Attempt {
    // Memoized: every answer below is a pure function of these (the file system lookups are cached).
    const key = `${this.imagePass ? 'I' : ''}${this.modelId(model)}\0${this.wantKey(want)}\0${sonameMustMatch ? 1 : 0}\0${dir}\0${name}`;
    let a = this.inDirMemo.get(key);
    if (a === undefined) {
      a = this.inDirUncached(dir, name, want, model, sonameMustMatch);
      this.inDirMemo.set(key, a);
    }
    return this.withOrigin(a, from, dir);
  }

  private inDirUncached(dir: string, name: string, want: ElfFile, model: { hwcaps: string[]; legacy: string[] } | null, sonameMustMatch: boolean): Attempt {
    const accept = (e: ElfFile) => !sonameMustMatch || (e.soname ?? name) === name;
    // Candidates under subdirectories that do not exist are skipped without building their paths.
    const subs = model ? this.subdirsIn(dir, model) : null;
    if (subs?.hwcaps) {
      for (const hw of model!.hwcaps) {
        const a = this.attempt(`${dir}/glibc-hwcaps/${hw}/${name}`, want);
        if (!('skip' in a) && (!('node' in a) || accept(a.node.elf))) return a;
      }
    }
    for (const sub of subs?.legacy ?? []) {
      const a = this.attempt(`${dir}/${sub}/${name}`, want);
      if (!('skip' in a) && (!('node' in a) || accept(a.node.elf))) return a;
    }
    const a = this.attempt(dir === '/' ? `/${name}` : `${dir}/${name}`, want);
    if ('node' in a && !accept(a.node.elf)) return { skip: true };
    return a;
  }

  /**
   * Which of the loader's subdirectories a search directory has: glibc-hwcaps, and the legacy hwcap subdirectories
   * whose first component exists (tls/haswell/x86_64 is only tried when tls/ is there), in the loader's order.
   * Mostly none: found once per directory and model instead of once per name.
   */
  private subdirsIn(dir: string, model: { hwcaps: string[]; legacy: string[] }): { hwcaps: boolean; legacy: string[] } {
    let byDir = this.subdirMemo.get(model);
    if (!byDir) this.subdirMemo.set(model, (byDir = new Map()));
    let r = byDir.get(dir);
    if (!r) {
      const firsts = new Map<string, boolean>();
      const present = (first: string) => {
        let p = firsts.get(first);
        if (p === undefined) firsts.set(first, (p = this.fs.isDirectory(`${dir}/${first}`)));
        return p;
      };
      r = { hwcaps: model.hwcaps.length > 0 && this.fs.isDirectory(`${dir}/glibc-hwcaps`), legacy: model.legacy.filter((sub) => present(sub.split('/')[0])) };
      byDir.set(dir, r);
    }
    return r;
  }

  private withOrigin(a: Attempt, from: Node, searchDir: string): Attempt {
    if (!('node' in a)) return a;
    const node: Node = { path: a.node.located.path, located: a.node.located, elf: a.node.elf, origin: posix.dirname(a.node.located.path), loader: from, searchDir };
    return { node };
  }

  private expandList(list: string, node: Node, model: LoaderModel): string[] {
    const out: string[] = [];
    // An empty list searches nothing (decompose_rpath: "Ignore empty rpaths"); an empty element of a longer one is
    // the working directory.
    if (list === '') return out;
    for (const el of splitPathList(list)) {
      const e = expandGlibcDst(el, { ORIGIN: node.origin, LIB: model.lib, PLATFORM: model.platform });
      if (e === null || e === '') continue;
      out.push(this.absolute(e));
    }
    return out;
  }

  /** Relative search paths are relative to the process's working directory: the caller's cwd for the host root. */
  private absolute(p: string): string {
    if (p.startsWith('/')) return p.length > 1 ? p.replace(/\/+$/, '') : p;
    return this.fs.root === '/' ? posix.resolve(process.cwd(), p) : posix.resolve('/', p);
  }

  /** glibc's order for one name requested by `from` (elf/dl-load.c _dl_map_object). */
  private searchGlibc(name: string, from: Node, main: Node, model: LoaderModel, memos?: SystemMemos): Attempt {
    const want = main.elf;
    if (name.includes('/')) {
      const e = expandGlibcDst(name, { ORIGIN: from.origin, LIB: model.lib, PLATFORM: model.platform });
      if (e === null) return { skip: true };
      const a = this.attempt(this.absolute(e), want);
      return this.withOrigin(a, from, posix.dirname(this.absolute(e)));
    }
    const r = this.searchPaths(name, from, main, model);
    if (r) return r;
    const nodeflib = (from.elf.flags1 & DF_1_NODEFLIB) !== 0;
    // 4 and 5 depend only on the name, the wanted identity, the loader and nodeflib (a directory that steps 1-3
    // tried gave "skip", and gives it again here), so their answer is computed once per name.
    const flag = nodeflib ? 1 : 0;
    let memo = memos?.[flag];
    if (!memo) {
      const key = `${this.imagePass ? 'I' : ''}${this.modelId(model)}\0${this.wantKey(want)}\0${flag}`;
      memo = this.systemMemo.get(key);
      if (!memo) this.systemMemo.set(key, (memo = new Map()));
      if (memos) memos[flag] = memo;
    }
    let sys = memo.get(name);
    if (sys === undefined) {
      sys = this.systemSearch(name, want, model, main, nodeflib);
      memo.set(name, sys);
    }
    if (!('node' in sys.a)) return sys.a;
    const found = sys.a.node as Node;
    const node: Node = { path: found.path, located: found.located, elf: found.elf, origin: found.origin, loader: from, searchDir: found.searchDir };
    node.place = sys.place ??= this.placement(node, name, model);
    if (sys.viaCache) node.viaCache = true;
    return { node };
  }

  /**
   * Steps 1-3 of glibc's order for one name: the RPATHs, --library-path, the requester's RUNPATH. Null when none of
   * them gives an answer; at once when there are none (most programs: this runs for every library of every closure,
   * and searchPathsOf's closure would cost its context at every call).
   */
  private searchPaths(name: string, from: Node, main: Node, model: LoaderModel): Attempt | null {
    let any = from.elf.runpath !== null || main.elf.rpath !== null || !!this.opts.libraryPath?.length;
    for (let n: Node | null = from; n && !any; n = n.loader) any = n.elf.rpath !== null;
    return any ? this.searchPathsOf(name, from, main, model) : null;
  }

  private searchPathsOf(name: string, from: Node, main: Node, model: LoaderModel): Attempt | null {
    const want = main.elf;
    // Directories tried by steps 1-3, each once.
    let tried: Set<string> | null = null;
    const tryDirs = (dirs: string[]): Attempt | null => {
      tried ??= new Set<string>();
      for (const d of dirs) {
        if (tried.has(d)) continue;
        tried.add(d);
        const a = this.inDir(d, name, want, model, from);
        if (!('skip' in a)) return a;
      }
      return null;
    };
    let r: Attempt | null = null;
    // 1. RPATH of the requester and of each object up its loader chain; only when the requester has no RUNPATH.
    //    An object with both ignores its RPATH; the executable's RPATH is reached at the chain's end. A RUNPATH
    //    counts when present, even empty (glibc tests the tag, get-dynamic-info.h; patchelf --set-rpath '' makes one).
    if (from.elf.runpath === null) {
      for (let n: Node | null = from; n && !r; n = n.loader) {
        if (n.elf.rpath !== null && n.elf.runpath === null) r = tryDirs(this.expandList(n.elf.rpath, n, model));
      }
      if (!r && main.elf.rpath !== null && main.elf.runpath === null) r = tryDirs(this.expandList(main.elf.rpath, main, model));
      if (r) return r;
    }
    // 2. LD_LIBRARY_PATH, only when the user gave one.
    if (this.opts.libraryPath?.length) {
      r = tryDirs(this.opts.libraryPath.flatMap((l) => this.expandList(l, main, model)));
      if (r) return r;
    }
    // 3. The requester's own RUNPATH (never inherited).
    if (from.elf.runpath !== null) {
      r = tryDirs(this.expandList(from.elf.runpath, from, model));
      if (r) return r;
    }
    return null;
  }

  /** Steps 4 and 5 of searchGlibc, without a requester (its `loader` is filled in by the caller). */
  private systemSearch(name: string, want: ElfFile, model: LoaderModel, main: Node, nodeflib: boolean): SystemAnswer {
    const isSystem = (d: string) => model.defaultDirs.some((s) => (d + '/').startsWith(s === '/' ? '/' : s + '/'));
    // 4. ld.so.cache, modelled by the ld.so.conf directories and the built-in ones ldconfig adds, keyed by SONAME.
    if (/^(lib|ld-)/.test(name) && name.includes('.so') && this.fs.locate('/etc/ld.so.conf')) {
      const cacheTried = new Set<string>();
      for (const d of [...this.conf(), ...model.defaultDirs]) {
        if (cacheTried.has(d) || (nodeflib && isSystem(d))) continue;
        cacheTried.add(d);
        const a = this.inDir(d, name, want, model, main, true);
        if (!('skip' in a)) return { a, viaCache: 'node' in a };
      }
    }
    // 5. The loader's built-in directories, unless the requester was linked with -z nodefaultlib.
    if (!nodeflib) {
      const tried = new Set<string>();
      for (const d of model.defaultDirs) {
        if (tried.has(d)) continue;
        tried.add(d);
        const a = this.inDir(d, name, want, model, main);
        if (!('skip' in a)) return { a, viaCache: false };
      }
    }
    return { a: { skip: true }, viaCache: false };
  }

  /** musl's order (ldso/dynlink.c load_library). */
  private searchMusl(name: string, from: Node, main: Node, model: LoaderModel): Attempt {
    const want = main.elf;
    if (name.includes('/')) return this.withOrigin(this.attempt(this.absolute(name), want), from, posix.dirname(this.absolute(name)));
    const dirs: string[] = [];
    if (this.opts.libraryPath?.length) dirs.push(...this.opts.libraryPath.flatMap((l) => l.split(':').filter(Boolean)));
    for (let n: Node | null = from; n; n = n.loader) {
      const list = n.elf.runpath ?? n.elf.rpath;
      if (!list) continue;
      const origin = n === main ? posix.dirname(main.located.realPath) : posix.dirname(n.path);
      const e = expandMuslDst(list, origin);
      if (e !== null) dirs.push(...e.split(':').filter(Boolean));
    }
    dirs.push(...(model.muslPath ?? model.defaultDirs));
    for (const d of dirs) {
      const a = this.inDir(this.absolute(d), name, want, null, from);
      if (!('skip' in a)) return a;
    }
    return { skip: true };
  }

  /** Where a found library goes in the image and its hwcaps variants: the same for every closure it is in. */
  private placement(dep: Node, name: string, model: LoaderModel): Placement {
    const glibcDir = model.flavour === 'glibc' && dep.searchDir ? dep.searchDir : '';
    const key = `${glibcDir}\0${name}\0${dep.located.path}`;
    if (dep.located.host !== undefined) return { imagePath: dep.located.path, variants: [] };
    let m = this.placements.get(key);
    if (m === undefined) {
      m = { imagePath: this.imagePath(dep.located), variants: glibcDir ? this.variants(glibcDir, name, dep.located.path) : [] };
      this.placements.set(key, m);
    }
    return m;
  }

  private variants(dir: string, name: string, chosen: string): Located[] {
    const out: Located[] = [];
    for (const hw of [...this.fs.readdir(`${dir}/glibc-hwcaps`)].sort()) {
      const loc = this.fs.locate(`${dir}/glibc-hwcaps/${hw}/${name}`);
      if (loc && loc.path !== chosen && this.fs.kind(loc.realPath) === Kind.File) out.push(loc);
    }
    return out;
  }

  /** The found path with "." and ".." resolved physically, as the kernel would: where the image must place it. */
  imagePath(loc: Located): string {
    const p = cleanPath(loc.path);
    if (!p.split('/').includes('..')) return p;
    const dir = this.fs.locate(posix.dirname(p));
    return dir ? posix.join(dir.realPath, posix.basename(p)) : posix.normalize(p);
  }
}

/**
 * A map from names to the objects of one walk at a time. clear() starts a new walk in O(1): entries stay, stamped with
 * the walk that set them, and are reused by later walks (which mostly meet the same names).
 */
class WalkMap {
  private entries = new Map<string, { walk: number; node: Node }>();
  private walk = 0;
  clear(): this {
    this.walk++;
    return this;
  }
  get(key: string): Node | undefined {
    const e = this.entries.get(key);
    return e !== undefined && e.walk === this.walk ? e.node : undefined;
  }
  set(key: string, node: Node): void {
    const e = this.entries.get(key);
    if (e === undefined) this.entries.set(key, { walk: this.walk, node });
    else {
      e.walk = this.walk;
      e.node = node;
    }
  }
}

/** The interpreter as a closure shows it (its Located fields and ELF), without spreading: this runs per closure. */
function interpreterOf(loc: Located, elf: ElfFile): Interpreter {
  return { path: loc.path, realPath: loc.realPath, links: loc.links, elf };
}

const MUSL_RESERVED = ['c', 'pthread', 'rt', 'm', 'dl', 'util', 'xnet'];

/** musl maps these names to itself (ldso/dynlink.c load_library's reserved list). */
export function isMuslReserved(name: string): boolean {
  const m = /^lib([a-z]+)\./.exec(name);
  return !!m && MUSL_RESERVED.includes(m[1]);
}

/** Convenience: resolve one file in a root. */
export function resolveClosure(path: string, root: string | RootFs = '/', opts: ResolveOptions = {}): Closure {
  const r = new Resolver(root, opts);
  return r.resolve(typeof root === 'string' ? r.fs.toRootPath(path) : path);
}
