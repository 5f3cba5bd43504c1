import { closeSync, lstatSync, openSync, readFileSync, readlinkSync, readSync, Stats } from 'node:fs';
import { dirNames } from './dir-names.js';
import { posix } from 'node:path';
import { createRequire } from 'node:module';
import { ElfError } from '../elf/errors.js';
import { formatPlatform, Platform, platformMatches } from '../oci/platform.js';
import { ElfFile, readElfFile } from '../elf/reader.js';
import { Closure, Resolver } from '../elf/resolve.js';
import { LayerEntry } from '../oci/layer.js';
import type { DpkgDatabase } from '../packages/dpkg.js';
import { BuildError } from './errors.js';
import { readShebang } from './shebang.js';

/** Which layer an entry goes to: split by how often things change, so images built on one system share the lower ones. */
export type LayerGroup = 'libc' | 'libs' | 'app';

export const GROUP_ORDER: LayerGroup[] = ['libc', 'libs', 'app'];
export const GROUP_COMMENT: Record<LayerGroup, string> = {
  libc: 'the dynamic loader and libc',
  libs: 'shared libraries',
  app: 'the application',
};

/** A build context the tree walk must stay in, with its .dockerignore. */
export interface TreeContext {
  dir: string;
  ignored: (rel: string) => boolean;
}

export interface PlannedEntry extends LayerEntry {
  group: LayerGroup;
  /** The directory it came with (not named by itself): a dangling symlink there is a warning, not an error. */
  inTree?: string;
}

/**
 * The loader and libc: every dynamic program of a system has exactly these, so a layer of only them is shared byte
 * for byte by every image built there. (libm and friends vary by program and go with the other libraries.)
 */
const LIBC_FAMILY = /^(ld-linux[^/]*\.so\.\d+|ld64\.so\.\d+|ld-musl-[^/]+\.so\.1|ld\.so\.\d+|libc\.so\.\d+|libc\.musl-[^/]+\.so\.1)$/;

export function isLibcFamily(path: string): boolean {
  return LIBC_FAMILY.test(posix.basename(path));
}

const MAX_LINK_HOPS = 40;

/**
 * Inputs → file entries: everything the image will hold, each with where it comes from and why. Paths are image
 * paths ("/usr/bin/x"); sources are host paths inside the build root.
 */
export class Plan {
  readonly entries = new Map<string, PlannedEntry>();
  platform: { value: Platform; from: string } | null = null;
  /** First program given (an ELF executable or an executable #! script), where it lands: the default entrypoint. */
  entrypoint: string | null = null;
  readonly closures: Closure[] = [];
  /** Statically linked programs (no closure): root path of the file and its parsed header. */
  /** `hostPath`: where the file is read when it does not come from the build root (a Dockerfile's COPY). */
  readonly statics: { path: string; realPath: string; elf: ElfFile; hostPath?: string }[] = [];
  /** Image paths of the executable #! scripts the user named (the run check follows them to their interpreter). */
  readonly scripts: string[] = [];
  readonly warnings: string[] = [];
  /** What the inputs added beyond the files named (packages), said on stderr. */
  readonly notes: string[] = [];
  /** ELF executables the user named (in-root path and real path): the programs the runtime rule serves. */
  readonly programs: { path: string; realPath: string }[] = [];
  /**
   * Executables the program runs as its own helpers: files the runtime rule found under directories the program
   * names (git's /usr/lib/git-core, postgres's bin directory), and the program itself when it lives there.
   */
  readonly helpers = new Set<string>();
  /** The root's dpkg database: undefined until opened, null when there is none (builder/packages.ts). */
  dpkg: DpkgDatabase | null | undefined;
  /** Where the database's status index is kept across builds (the cache directory); undefined: nowhere. */
  dpkgCacheDir: string | undefined;
  /**
   * The bytes of a file read ahead of its layer (oci/preread.ts), by host path, when they are held: the rules that
   * search a file's bytes take them instead of reading the file again. Unset: every file is read.
   */
  held: ((hostPath: string) => Buffer[] | null) | undefined;
  /** The build's own scratch directory (archive members and other staged files): nothing in it is the root's. */
  stage: string | undefined;
  /** Image paths whose ELF closure has been taken (or that are no ELF file). */
  private closed = new Set<string>();
  private closedReal = new Set<string>();

  constructor(readonly resolver: Resolver) {}

  get fs() {
    return this.resolver.fs;
  }

  add(e: PlannedEntry): void {
    const prev = this.entries.get(e.path);
    // Later inputs override earlier ones (Dockerfile semantics), but the same file twice keeps its first reason.
    if (prev && prev.type === e.type && prev.source === e.source && prev.linkname === e.linkname) {
      if (GROUP_ORDER.indexOf(e.group) < GROUP_ORDER.indexOf(prev.group)) prev.group = e.group;
      return;
    }
    this.entries.set(e.path, e);
  }

  private fileEntry(hostPath: string, st: Stats, imagePath: string, group: LayerGroup, reason: string): PlannedEntry {
    const e: PlannedEntry = { path: imagePath, type: 'file', mode: st.mode & 0o7777, uid: 0, gid: 0, source: hostPath, size: st.size, group, reason };
    const cap = readCapability(hostPath);
    if (cap) e.xattrs = { 'security.capability': cap };
    return e;
  }

  /**
   * Every ELF file the plan holds tells the platform, not only programs and their libraries: files copied in (COPY,
   * ADD, --copy, directories) are checked too, so a binary of another architecture cannot slip into an image
   * labelled with this one. Malformed ELF files are left to the run check.
   */
  noteCopiedElfPlatforms(): void {
    for (const e of this.entries.values()) {
      if (e.type !== 'file' || !e.source || e.content || this.noted.has(e.source) || !hasElfMagic(e.source)) continue;
      let elf: ElfFile;
      try {
        elf = readElfFile(e.source);
      } catch (err) {
        if (err instanceof ElfError) continue;
        throw err;
      }
      if (elf.platform && elf.kind !== 'other') this.notePlatform(elf, e.path, e.source);
    }
  }

  /**
   * Host paths whose platform is noted already: every ELF file the plan parsed on its way in (programs, interpreters,
   * libraries), so that noteCopiedElfPlatforms parses only the files that came by another route.
   */
  private readonly noted = new Set<string>();

  /** Records an ELF file's platform; every ELF in the image must agree. */
  private notePlatform(elf: ElfFile, where: string, source?: string): void {
    if (source) this.noted.add(source);
    if (!elf.platform) throw new BuildError(`${where}: ${elf.platformError ?? 'unknown ELF machine'}`);
    const p = elf.platform;
    if (!this.platform) {
      this.platform = { value: p, from: where };
      return;
    }
    const q = this.platform.value;
    if (!platformMatches(p, q)) {
      throw new BuildError(`${where} is ${formatPlatform(p)} but ${this.platform.from} is ${formatPlatform(q)}: one image holds one platform`);
    }
  }

  /**
   * Adds a path the user named: a directory as a tree, a file through its chain of file symlinks (kept, so that
   * argv[0] dispatchers like redis-server and busybox still work), an ELF file with its library closure.
   * Where it lands (inputPlacement): SRC:DEST at DEST; an absolute path at that path; a relative one under "/".
   */
  addInput(input: string, group: LayerGroup = 'app'): void {
    const { src: userPath, dest: placed } = inputPlacement(input);
    const inRoot = this.fs.toRootPath(userPath);
    // A host path into --root DIR names the file in the root: it lands at its path there.
    const abs = posix.resolve(userPath);
    const intoRoot = this.fs.root !== '/' && (abs === this.fs.root || abs.startsWith(this.fs.root + '/'));
    const dest = placed ?? (intoRoot || userPath.startsWith('/') ? inRoot : '/' + posix.normalize(userPath).replace(/\/$/, ''));
    if (dest !== inRoot) return this.addPlaced(userPath, inRoot, dest, group);
    const dirLoc = this.fs.locate(posix.dirname(inRoot));
    const st = dirLoc ? this.fs.lstat(posix.join(dirLoc.realPath, posix.basename(inRoot))) : null;
    if (!st) {
      const why = dirLoc ? 'no such file' : this.fs.failure(posix.dirname(inRoot));
      throw new BuildError(`${userPath}: ${why === 'no such file' ? 'no such file or directory' : why}`);
    }
    const target = this.fs.stat(inRoot);
    if (!target) {
      const why = this.fs.failure(inRoot);
      throw new BuildError(`${userPath}: ${why === 'no such file' ? 'dangling symbolic link' : why}`);
    }
    if (target.stats.isDirectory()) {
      this.addTree(this.fs.hostReal(target.located), inRoot, group, 'user');
      return;
    }
    if (!target.stats.isFile()) throw new BuildError(`${userPath}: not a regular file or directory`);
    this.addLinkChain(inRoot, group, 'user', userPath);
    let elf: ElfFile;
    try {
      elf = this.resolver.readElf(target.located);
    } catch (e) {
      if (e instanceof ElfError && /not an ELF file|too short|empty file/.test(e.reason)) return this.noteScript(inRoot, this.fs.hostReal(target.located), target.stats.mode);
      if (e instanceof ElfError) throw new BuildError(`${userPath}: ${e.reason}`);
      throw e;
    }
    this.notePlatform(elf, userPath, this.fs.hostReal(target.located));
    if (elf.kind !== 'shared-object' && elf.kind !== 'other') {
      if (!this.entrypoint) this.entrypoint = inRoot;
      this.programs.push({ path: inRoot, realPath: target.located.realPath });
    }
    if (elf.kind === 'static' || (elf.kind === 'static-pie' && !elf.needed.length)) {
      this.statics.push({ path: inRoot, realPath: target.located.realPath, elf });
      return;
    }
    if (elf.kind === 'other') return;
    this.addClosure(inRoot, userPath);
  }

  /**
   * A file or directory placed at another path than its own (SRC:DEST, or a relative path): the file's content (its
   * symlinks followed, as COPY does) at `dest`; an ELF program still brings its closure, found from where it is.
   */
  private addPlaced(userPath: string, inRoot: string, dest: string, group: LayerGroup): void {
    const target = this.fs.stat(inRoot);
    if (!target) throw new BuildError(`${userPath}: no such file or directory`);
    if (target.stats.isDirectory()) {
      this.addTree(this.fs.hostReal(target.located), dest, group, 'user');
      return;
    }
    if (!target.stats.isFile()) throw new BuildError(`${userPath}: not a regular file or directory`);
    this.add(this.fileEntry(this.fs.hostReal(target.located), target.stats, dest, group, 'user'));
    let elf: ElfFile;
    try {
      elf = this.resolver.readElf(target.located);
    } catch (e) {
      if (e instanceof ElfError && /not an ELF file|too short|empty file/.test(e.reason)) return this.noteScript(dest, this.fs.hostReal(target.located), target.stats.mode);
      if (e instanceof ElfError) throw new BuildError(`${userPath}: ${e.reason}`);
      throw e;
    }
    this.notePlatform(elf, userPath, this.fs.hostReal(target.located));
    if (elf.kind !== 'shared-object' && elf.kind !== 'other' && !this.entrypoint) this.entrypoint = dest;
    if (elf.kind === 'static' || (elf.kind === 'static-pie' && !elf.needed.length)) {
      this.statics.push({ path: inRoot, realPath: target.located.realPath, elf });
      return;
    }
    if (elf.kind === 'other') return;
    this.addClosure(inRoot, userPath);
  }

  /** An executable #! script the user named is a program too: the default entrypoint when first, and run-checked. */
  private noteScript(imagePath: string, hostPath: string, mode: number): void {
    if (!(mode & 0o111) || !readShebang({ path: hostPath })) return;
    this.scripts.push(imagePath);
    if (!this.entrypoint) this.entrypoint = imagePath;
  }

  /** The interpreter at exactly its PT_INTERP path and each library where the search found it, as regular files. */
  addClosure(inRoot: string, userPath: string, given?: Closure): void {
    const c = given ?? this.resolver.resolve(inRoot);
    // For a file that came with a directory, an archive or a package, what the image already holds at a library's
    // path (the archive's own copy) stays: the closure only fills what is missing.
    const put = (e: PlannedEntry) => (given && this.entries.has(e.path) ? undefined : this.add(e));
    this.closures.push(c);
    this.closed.add(c.file.path);
    this.closedReal.add(c.file.realPath);
    if (c.notFound.length) {
      const what = c.notFound.map((n) => `${n.name}${n.reason ? ` (${n.reason})` : ''} (needed by ${n.neededBy})`).join(', ');
      // A program the user named must start; a file that came with a directory or a package may be an optional
      // plugin whose libraries are not installed (the root has the same gap): reported, not fatal.
      if (!given) throw new BuildError(`${userPath}: not found in ${this.fs.root}: ${what}`);
      this.warnings.push(`${userPath} cannot be loaded: not found in ${this.fs.root}: ${what}`);
    }
    if (c.interpreter) {
      const st = this.fs.lstat(c.interpreter.realPath)!;
      const interpPath = c.elf.interp ?? c.interpreter.path;
      if (c.interpreter.elf.platform && c.interpreter.elf.kind !== 'other') this.notePlatform(c.interpreter.elf, interpPath, this.fs.hostReal(c.interpreter));
      put(this.fileEntry(this.fs.host(c.interpreter.realPath), st, interpPath, 'libc', `interpreter of ${userPath}`));
      this.closed.add(interpPath);
    }
    for (const lib of c.libraries) {
      this.notePlatform(lib.elf, lib.path, this.fs.hostReal(lib));
      // Held by the image already (found beside the program): nothing to add; its own needs came with this walk.
      if (lib.host !== undefined) {
        this.closed.add(lib.path);
        // Found only through an ld.so.conf directory (a COPY'd /usr/local/lib): the image's loader has no
        // ld.so.cache and does not look there, so a link in its own directory leads it to the file.
        const link = lib.confOnly && c.defaultDirs.length && !lib.name.includes('/') ? posix.join(c.defaultDirs[0], lib.name) : null;
        if (link && !this.entries.has(link)) {
          this.add({ path: link, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: lib.path, group: 'app', reason: `${lib.name}, needed by ${lib.neededBy} (a link to ${lib.path}: ${posix.dirname(lib.path)} is an ld.so.conf directory, and the image has no ld.so.cache)` });
          this.closed.add(link);
        }
        continue;
      }
      const st = this.fs.lstat(lib.realPath)!;
      const group: LayerGroup = isLibcFamily(lib.imagePath) ? 'libc' : 'libs';
      // The image has no ld.so.cache: a library found only through ld.so.conf moves to the loader's own directory.
      const rehome = lib.confOnly && c.defaultDirs.length && !lib.name.includes('/');
      const at = rehome ? posix.join(c.defaultDirs[0], lib.name) : lib.imagePath;
      const why = `${lib.name}, needed by ${lib.neededBy}${rehome ? ` (moved from ${posix.dirname(lib.imagePath)}, an ld.so.conf directory: the image has no ld.so.cache)` : ''}`;
      put(this.fileEntry(this.fs.host(lib.realPath), st, at, group, why));
      this.closed.add(at);
      for (const v of lib.variants) {
        const vst = this.fs.lstat(v.realPath)!;
        const vp = this.resolver.imagePath(v);
        put(this.fileEntry(this.fs.host(v.realPath), vst, vp, group, `hwcaps variant of ${lib.name}`));
        this.closed.add(vp);
      }
    }
  }

  /**
   * Every ELF file of the image brings its closure, whatever route it came by (a directory, COPY, ADD, a package,
   * a rule): each file entry not yet looked at is checked for the ELF magic, and executables and shared objects get
   * their libraries. Call after the inputs and after each rule that adds files.
   */
  closeAll(): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const e of [...this.entries.values()]) {
        if (e.type !== 'file' || !e.source || this.closed.has(e.path)) continue;
        this.closed.add(e.path);
        if (!hasElfMagic(e.source)) continue;
        const before = this.entries.size;
        this.closeOne(e);
        if (this.entries.size !== before) changed = true;
      }
    }
  }

  private closeOne(e: PlannedEntry): void {
    const root = this.fs.root;
    const inRoot = root === '/' ? e.source! : e.source!.startsWith(root + '/') ? e.source!.slice(root.length) : null;
    // The same file reached by another name (redis-server -> redis-check-rdb) already has its closure.
    const real = inRoot ? this.fs.locate(inRoot)?.realPath : undefined;
    if (real && this.closedReal.has(real)) return;
    // A file the image holds somewhere else than the root does (COPY app /opt/app, an ADD archive's member, a
    // directory placed elsewhere) is resolved where it will run: named by its image path, $ORIGIN its image
    // directory, and what the image holds beside it found first. Resolving it at its host path would name the
    // context's location in messages and bring $ORIGIN libraries to host paths in the image.
    const inPlace = inRoot !== null && (inRoot === e.path || (real !== undefined && this.fs.locate(e.path)?.realPath === real));
    let c: Closure;
    try {
      c = inPlace ? this.resolver.resolve(inRoot) : this.imageResolver().resolveExternal(e.source!, e.path);
    } catch (err) {
      if (err instanceof ElfError) {
        if (!/not an ELF file|too short|empty file/.test(err.reason)) this.warnings.push(`${e.path}: ${err.reason} (not checked)`);
        return;
      }
      throw err;
    }
    if (c.elf.kind === 'other' || c.elf.kind === 'static' || (c.elf.kind === 'static-pie' && !c.elf.needed.length)) return;
    if (!c.elf.platform) return;
    const q = this.platform?.value;
    const p = c.elf.platform;
    if (q && (p.architecture !== q.architecture || p.os !== q.os)) {
      this.warnings.push(`${e.path} is ${formatPlatform(p)}, not ${formatPlatform(q)}: shipped without its libraries`);
      return;
    }
    if (!q) this.platform = { value: p, from: e.path };
    this.addClosure(inRoot ?? e.path, e.path, c);
  }

  private imageResolverMemo: Resolver | null = null;

  /** A resolver that sees the image being built over the root (ResolveOptions.image): for files placed elsewhere. */
  private imageResolver(): Resolver {
    return (this.imageResolverMemo ??= new Resolver(this.fs, { ...this.resolver.opts, image: (p) => this.heldFile(p) }));
  }

  /** The host file of the regular file the plan holds at an image path, following the plan's symlinks; else null. */
  private heldFile(path: string): string | null {
    // (the search asks for $ORIGIN/../lib/NAME as written; ".." is taken lexically: the image has no symlinked dirs
    // at a COPY destination that the plan would know of)
    let p = posix.normalize(path);
    for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
      const e = this.entries.get(p);
      if (!e) return null;
      if (e.type === 'file') return e.content || !e.source ? null : e.source;
      if (e.type === 'hardlink' && e.linkname) p = e.linkname;
      else if (e.type === 'symlink' && e.linkname) p = posix.resolve(posix.dirname(p), e.linkname);
      else return null;
    }
    return null;
  }

  /** A library (by in-root path) with its own closure, placed where the loader searches. */
  addLibrary(inRoot: string, reason: string): void {
    const loc = this.fs.locate(inRoot);
    if (!loc) throw new BuildError(`${inRoot}: no such file in ${this.fs.root}`);
    const st = this.fs.lstat(loc.realPath)!;
    const elf = this.resolver.readElf(loc);
    this.notePlatform(elf, inRoot, this.fs.hostReal(loc));
    this.add(this.fileEntry(this.fs.host(loc.realPath), st, this.resolver.imagePath(loc), 'libs', reason));
    if (elf.needed.length) this.addClosure(inRoot, inRoot);
  }

  /**
   * Adds `inRoot` by following file-level symlinks: each link becomes a symlink entry at the path it was reached
   * by, the final file a regular entry. Directories on the way are resolved on the host but kept as named in the
   * image (the image has plain directories there).
   */
  addLinkChain(inRoot: string, group: LayerGroup, reason: string, userPath: string): void {
    let cur = posix.normalize(inRoot);
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const dirLoc = this.fs.locate(posix.dirname(cur));
      if (!dirLoc) throw new BuildError(`${userPath}: ${posix.dirname(cur)} does not exist in ${this.fs.root}`);
      const physical = posix.join(dirLoc.realPath, posix.basename(cur));
      const st = this.fs.lstat(physical);
      if (!st) throw new BuildError(`${userPath}: ${cur} does not exist in ${this.fs.root}`);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(this.fs.host(physical));
        this.add({ path: cur, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: target, group, reason });
        cur = target.startsWith('/') ? posix.normalize(target) : posix.normalize(posix.join(posix.dirname(cur), target));
        continue;
      }
      if (st.isDirectory()) {
        this.addTree(this.fs.host(physical), cur, group, reason);
        return;
      }
      this.add(this.fileEntry(this.fs.host(physical), st, cur, group, reason));
      return;
    }
    throw new BuildError(`${userPath}: too many levels of symbolic links`);
  }

  /** A host directory tree at an image path: symlinks kept as they are, hard links kept as hard links. */
  addTree(hostDir: string, imageDir: string, group: LayerGroup, reason: string, owner?: { uid: number; gid: number }, context?: TreeContext): void {
    const uid = owner?.uid ?? 0;
    const gid = owner?.gid ?? 0;
    const linked = new Map<string, { host: string; image: string; st: Stats }[]>();
    const walk = (host: string, image: string) => {
      if (context && host !== hostDir && context.ignored(posix.relative(context.dir, host))) return;
      // A file that vanishes while the tree is read (a store being rewritten) is not part of it.
      const st = lstatSync(host, { throwIfNoEntry: false });
      if (!st) return;
      if (st.isDirectory()) {
        if (image !== '/') this.add({ path: image, type: 'dir', mode: st.mode & 0o7777, uid, gid, group, reason });
        for (const name of dirNames(host)) walk(posix.join(host, name), posix.join(image, name));
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(host);
        if (context) {
          const to = posix.resolve(posix.dirname(host), target);
          if (target.startsWith('/') || (to !== context.dir && !to.startsWith(context.dir + '/'))) {
            throw new BuildError(`${reason}: ${posix.relative(context.dir, host)} is a symbolic link to "${target}", outside the build context`);
          }
        }
        this.add({ path: image, type: 'symlink', mode: 0o777, uid, gid, linkname: target, group, reason, ...(host !== hostDir ? { inTree: `the directory ${posix.normalize(imageDir)}` } : {}) });
      } else if (st.isFile()) {
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const l = linked.get(key) ?? [];
          l.push({ host, image, st });
          linked.set(key, l);
        }
        this.add({ ...this.fileEntry(host, st, image, group, reason), uid, gid });
      } else {
        this.warnings.push(`${host}: skipped (not a file, directory or symlink)`);
      }
    };
    walk(hostDir, posix.normalize(imageDir));
    // Hard links: the first path in tar order holds the content, the others link to it.
    for (const group_ of linked.values()) {
      if (group_.length < 2) continue;
      group_.sort((a, b) => Buffer.compare(Buffer.from(a.image), Buffer.from(b.image)));
      for (const o of group_.slice(1)) {
        this.add({ path: o.image, type: 'hardlink', mode: o.st.mode & 0o7777, uid, gid, linkname: group_[0].image, group, reason });
      }
    }
  }
}

// A native addon: loaded on first use (not a static import), so a bundled CLI does not load it at start-up for commands
// that never read file capabilities.
type XattrModule = typeof import('@napi-rs/xattr');
let xattrModule: XattrModule | null = null;
function xattr(): XattrModule {
  return (xattrModule ??= loadXattr());
}

/**
 * The addon's binding for this platform, opened directly: the package's index.js picks the same file (a glibc or musl
 * build by what /usr/bin/ldd says, as here), but first tries paths that do not exist here, each a thrown error with
 * its stack, and resolves the platform package through require: 3-4 ms of CPU per build against 0.4 for the dlopen.
 * Anything unusual (another platform, the index's override variable, a file that will not load) goes through the
 * index as before.
 */
function loadXattr(): XattrModule {
  const require = createRequire(import.meta.url);
  if (process.platform === 'linux' && !process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
    try {
      const libc = readFileSync('/usr/bin/ldd', 'latin1').includes('musl') ? 'musl' : 'gnu';
      const name = `linux-${process.arch}-${libc}`;
      const m = { exports: {} as XattrModule };
      process.dlopen(m, require.resolve(`@napi-rs/xattr-${name}/xattr.${name}.node`));
      if (typeof m.exports.getAttributeSync === 'function') return m.exports;
    } catch {
      /* the index decides */
    }
  }
  return require('@napi-rs/xattr') as XattrModule;
}

function readCapability(hostPath: string): Buffer | null {
  try {
    return xattr().getAttributeSync(hostPath, 'security.capability');
  } catch {
    return null;
  }
}

/**
 * Where a positional input lands in the image, decided by how it is written (never by the current directory):
 *   SRC:DEST   at DEST (absolute; ending in "/", DEST/basename(SRC)), SRC found as any input is;
 *   /abs/path  at the same path;
 *   rel/path   at /rel/path: relative to the image's root, like a build context ("./mytrue" -> "/mytrue");
 *              a relative path that climbs out with ".." must say where it goes with SRC:DEST;
 *   with --root DIR, a path into DIR (absolute or relative) lands at its path in DIR.
 * Without DEST, Plan.addInput places it (it knows the root).
 */
export function inputPlacement(input: string): { src: string; dest?: string } {
  // The first ":" followed by "/" splits SRC:DEST (a path rarely holds ":/").
  const m = /^(.+?):(\/.*)$/.exec(input);
  if (m) {
    const dest = posix.normalize(m[2]);
    return { src: m[1], dest: m[2].endsWith('/') ? posix.join(dest, posix.basename(m[1])) : dest.replace(/(.)\/$/, '$1') };
  }
  if (input.startsWith('/')) return { src: input };
  const rel = posix.normalize(input).replace(/\/$/, '');
  if (rel === '..' || rel.startsWith('../')) throw new BuildError(`${input}: a relative path leaving the current directory has no place in the image; say where it goes with ${input}:/DEST`);
  if (rel === '.') throw new BuildError(`${input}: the current directory would be the image's root; say where it goes with ${input}:/DEST`);
  return { src: input };
}

/** Whether a host file starts with the ELF magic (a cheap test before parsing). */
function hasElfMagic(hostPath: string): boolean {
  let fd: number;
  try {
    fd = openSync(hostPath, 'r');
  } catch {
    return false;
  }
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32BE(0) === 0x7f454c46;
  } finally {
    closeSync(fd);
  }
}
