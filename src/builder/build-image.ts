import { mkdirSync, statSync } from 'node:fs';
import { unpackImage } from '../oci/unpack.js';
import { ElfError } from '../elf/errors.js';
import { join, posix } from 'node:path';
import { Resolver } from '../elf/resolve.js';
import { memoElfReader } from './elf-memo.js';
import { readElfFile } from '../elf/reader.js';
import { formatPlatform, hostPlatform, Platform, platformMatches } from '../oci/platform.js';
import { HistoryEntry, Image, platformOfConfig } from '../oci/image.js';
import { DEFAULT_GZIP_LEVEL, LayerBlob, LayerEntry, LayerStream, writeLayer } from '../oci/layer.js';
import { Preread, prereadFiles } from '../oci/preread.js';
import { hexOf } from '../oci/digest.js';
import { Cache } from '../oci/cache.js';
import { FileDigests } from '../oci/file-digests.js';
import { mediaTypesFor, MT } from '../oci/mediatypes.js';
import { runConfig } from './config.js';
import { append, empty, layerFromBlob } from '../oci/mutate.js';
import { BasePlatformError, BuildError, MaxSizeError, NothingToBuildError, PlatformMismatchError, RunCheckError, UnknownPlatformError } from './errors.js';
import { GROUP_COMMENT, GROUP_ORDER, LayerGroup, Plan, PlannedEntry } from './plan.js';
import { BuildSpec, BuildStep, CopySpec, isoTime } from './spec.js';
import { contextSource, CopySource, CopyTarget, copyInto, lookupOwner, overlay, parseIgnore, treeSource, workdir } from './copy.js';
import { FsTree, readImageTree } from './fs-tree.js';
import { keepBaseDirs, placeOnBase } from './on-base.js';
import { archiveKind, unpackArchive } from './archive-input.js';
import { contextSource as legacyContextSource } from './context.js';
import { applyRules, checkVersions } from './rules.js';
import { addPackage } from './packages.js';
import { addTraced } from './trace.js';
import { verifyRuns } from './verify.js';
import { DEFAULT_PATH, envTarget, readShebang } from './shebang.js';
import { Log, silentLog } from '../log.js';
import { withTempDir } from '../temp-paths.js';
import { ControlFileError, DpkgDatabase, readOsRelease } from '../packages/dpkg.js';
import { hashFile, Inventory, takeInventory } from '../packages/inventory.js';
import { statusDEntries } from '../packages/statusd.js';

export interface BuildResult {
  image: Image;
  plan: Plan;
  /** The image's files by package (null with --no-sbom): the input of SBOM documents. */
  inventory: Inventory | null;
  layers: LayerBlob[];
  platform: Platform;
}

/**
 * Runs `fn` with a scratch directory for staged files and layer blobs; removed afterwards. Sinks must be written
 * inside `fn`, while the blobs exist.
 */
export function withWorkDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  return withTempDir('ocislim-build-', fn);
}

function hostPath(p: string): string {
  return posix.resolve(p);
}

/** COPY/ADD semantics: a directory's contents go into DEST; a file goes to DEST, or into it when DEST ends with "/". */
async function addCopy(plan: Plan, c: CopySpec, unpack: boolean, stage: string, n: number, where: string, ctx?: BuildSpec['context']): Promise<void> {
  const what = where;
  const src = ctx ? legacyContextSource(ctx, c.src, where) : hostPath(c.src);
  let st;
  try {
    st = statSync(src);
  } catch {
    throw new BuildError(`${what} ${c.src}: no such file or directory`);
  }
  const owner = c.chown;
  const reason = `${unpack ? 'ADD' : 'COPY'} ${c.src}`;
  const before = new Set(plan.entries.keys());
  if (st.isDirectory()) {
    plan.addTree(src, c.dest, 'app', reason, owner, ctx);
  } else {
    const kind = unpack ? archiveKind(src) : null;
    if (kind) {
      const entries = await unpackArchive(src, kind, c.dest, join(stage, `add${n}`), 'app', reason);
      for (const e of entries) plan.add({ ...e, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}), ...(e.type === 'symlink' ? { inTree: `the archive ${c.src}` } : {}) });
    } else {
      const dest = c.dest.endsWith('/') ? posix.join(c.dest, posix.basename(src)) : c.dest;
      plan.add({ path: dest, type: 'file', mode: st.mode & 0o7777, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, source: src, size: st.size, group: 'app', reason });
    }
  }
  if (c.chmod !== undefined) {
    for (const [p, e] of plan.entries) if (!before.has(p) && e.type !== 'symlink') e.mode = c.chmod;
  }
}

/** Loads an image by reference (a registry or a local layout), for COPY --from and multi-stage bases. */
export type ImageLoader = (ref: string, platform: Platform) => Promise<Image>;

/** Inputs → plan: every file the image will hold. */
export async function planBuild(spec: BuildSpec, stage: string, baseTree: FsTree | null = null, images?: ImageLoader): Promise<Plan> {
  // Libraries parsed in an earlier build are read from the cache (elf-memo.ts).
  const plan = new Plan(new Resolver(spec.root, { symbols: true, ...(spec.cacheDir ? { readElf: memoElfReader(spec.cacheDir) } : {}) }));
  plan.dpkgCacheDir = spec.cacheDir;
  plan.stage = stage;
  for (const input of spec.inputs) plan.addInput(input);
  for (const name of spec.packages ?? []) {
    const { pkg, files } = addPackage(plan, name);
    plan.notes.push(`added package ${pkg.name} ${pkg.version} (${files} files; documentation left out)`);
  }
  if (spec.trace) plan.notes.push(...addTraced(plan, spec.trace, spec.optionNames));
  if (spec.context) {
    await applyDockerfileSteps(spec, plan, baseTree, stage, images);
    plan.closeAll();
    plan.noteCopiedElfPlatforms();
    noteCopiedStatics(plan);
    return plan;
  }
  let n = 0;
  const steps = spec.steps ?? [
    ...spec.adds.map((a) => ({ kind: 'ADD' as const, spec: a, where: a.where ?? 'ADD' })),
    ...spec.copies.map((c) => ({ kind: 'COPY' as const, spec: c, where: c.where ?? 'COPY' })),
  ];
  for (const s of steps) if (s.kind !== 'WORKDIR') await addCopy(plan, s.spec, s.kind === 'ADD', stage, n++, s.where, spec.context);
  plan.closeAll();
  if (!plan.entries.size) throw new NothingToBuildError();
  plan.noteCopiedElfPlatforms();
  return plan;
}

/**
 * Statically linked programs a Dockerfile copies in get the same run-time rules as programs given to a CLI build
 * (a static Go client that names the system CA path gets the CA bundle).
 */
function noteCopiedStatics(plan: Plan): void {
  for (const e of plan.entries.values()) {
    if (e.type !== 'file' || !e.source || !(e.mode & 0o111)) continue;
    let elf;
    try {
      elf = readElfFile(e.source);
    } catch (err) {
      if (err instanceof ElfError) continue;
      throw err;
    }
    if (elf.kind === 'static' || (elf.kind === 'static-pie' && !elf.needed.length)) plan.statics.push({ path: e.path, realPath: e.path, elf, hostPath: e.source });
  }
}

/** The platform a Dockerfile's base image is read for: FROM --platform, else the target's, else the host's. */
function dockerfileBasePlatform(spec: BuildSpec): Platform {
  return spec.fromPlatform ?? spec.platform ?? hostPlatform() ?? { os: 'linux', architecture: 'amd64' };
}

/** What a Dockerfile's COPY needs of its base: every path's metadata, and the contents of /etc/passwd and /etc/group. */
function baseTreeOf(image: Image): Promise<FsTree> {
  return readImageTree(image, (p) => p === '/etc/passwd' || p === '/etc/group');
}

/**
 * planBuild, with a Dockerfile's base image read first (its file system decides where COPY writes); for plans made
 * before any layer is written (several platforms: a bad one fails before the good ones are built).
 */
export async function planOnBase(spec: BuildSpec, stage: string, loadBase?: BaseLoader, images?: ImageLoader): Promise<Plan> {
  const base = spec.context && loadBase ? await loadBase(dockerfileBasePlatform(spec)) : null;
  return planBuild(spec, stage, base ? await baseTreeOf(base.image) : null, images);
}

/** Applies ADD, COPY and WORKDIR steps to a target, reading stages and images for --from as needed. */
async function applySteps(steps: BuildStep[], t: CopyTarget, context: CopySource | null, stage: string, from: (f: NonNullable<CopySpec['from']>, where: string) => Promise<CopySource>): Promise<void> {
  let n = 0;
  for (const s of steps) {
    if (s.kind === 'WORKDIR') {
      workdir(t, s.path, s.user ? lookupOwner(t.view, s.user, s.where, false) : undefined, s.where);
      continue;
    }
    const c = s.spec;
    const owner = c.chown ?? (c.chownName !== undefined ? lookupOwner(t.view, c.chownName, `${s.where} --chown=${c.chownName}`, true) : undefined);
    const src = c.from ? await from(c.from, s.where) : context;
    if (!src) throw new BuildError(`${s.where}: no build context`);
    await copyInto(t, src, { spec: c, unpack: s.kind === 'ADD' && !c.from, where: s.where, owner, stageDir: join(stage, `add${n++}`) });
  }
}

/**
 * A Dockerfile's steps on the base image's file system: destinations resolved through the image's symlinks,
 * owners looked up in its /etc/passwd, earlier stages and images read for COPY --from.
 */
async function applyDockerfileSteps(spec: BuildSpec, plan: Plan, baseTree: FsTree | null, stage: string, images?: ImageLoader): Promise<void> {
  const ctx = spec.context!;
  const context = contextSource(ctx.dir, ctx.rules ?? parseIgnore(''));
  const stageViews = new Map<number, Promise<CopySource>>();
  const imageViews = new Map<string, Promise<CopySource>>();
  let k = 0;
  const loadTree = async (ref: string, platform: Platform | undefined, where: string): Promise<FsTree> => {
    if (!images) throw new BuildError(`${where}: cannot load ${ref} here`);
    const img = await images(ref, platform ?? spec.platform ?? hostPlatform() ?? { os: 'linux', architecture: 'amd64' });
    return readImageTree(img, () => true, join(stage, `image${k++}`));
  };
  const from = (f: NonNullable<CopySpec['from']>, where: string): Promise<CopySource> => {
    if ('image' in f) {
      let p = imageViews.get(f.image);
      if (!p) imageViews.set(f.image, (p = loadTree(f.image, spec.fromPlatform, where).then((t) => treeSource(t, `image ${f.image}`))));
      return p;
    }
    let p = stageViews.get(f.stage);
    if (!p) {
      const st = spec.stages?.[f.stage];
      if (!st) throw new BuildError(`${where}: stage ${f.stage} is not available`);
      p = (async () => {
        const base = st.from ? await loadTree(st.from, st.fromPlatform, where) : null;
        const top = new Map<string, PlannedEntry>();
        const view = overlay(base, top);
        await applySteps(st.steps, { view, add: (e) => void top.set(e.path, e) }, context, join(stage, `stage${f.stage}`), from);
        return treeSource(view, `stage ${st.name ?? f.stage}`);
      })();
      stageViews.set(f.stage, p);
    }
    return p;
  };
  const view = overlay(baseTree, plan.entries);
  await applySteps(spec.steps ?? [], { view, add: (e) => plan.add(e) }, context, stage, from);
  // Directories of the base that hold new entries go into the layer as the base has them (not as 0755 root).
  if (baseTree) keepBaseDirs(plan, baseTree);
}

/** The image's platform: the ELF files', which must agree with the one asked for (or the host's without ELF files). */
export function checkPlatform(plan: Plan, spec: BuildSpec): Platform {
  const found = plan.platform?.value;
  const want = spec.platform;
  if (found && want && !platformMatches(found, want)) {
    throw new PlatformMismatchError(formatPlatform(want), formatPlatform(found), plan.platform!.from);
  }
  if (found) return want?.variant && !found.variant ? { ...found, variant: want.variant } : found;
  if (want) return want;
  const host = hostPlatform();
  if (!host) throw new UnknownPlatformError();
  return host;
}

export function totalSize(plan: Plan): number {
  let n = 0;
  for (const e of plan.entries.values()) if (e.type === 'file') n += e.content ? e.content.length : (e.size ?? 0);
  return n;
}

/** A base image for --from, loaded once the platform is known (from the ELF files). */
export type BaseLoader = (platform: Platform) => Promise<{ image: Image; name: string }>;

/** Plan → layers (streamed once each) → image, in `workDir`; `planned` is a plan made beforehand by planBuild. */
export async function build(spec: BuildSpec, workDir: string, log: Log = silentLog, loadBase?: BaseLoader, planned?: Plan, images?: ImageLoader, layerStream?: () => LayerStream | null): Promise<BuildResult> {
  // A Dockerfile's COPY resolves its destinations in the base image, so its base is read first.
  let base = spec.context && loadBase ? await loadBase(dockerfileBasePlatform(spec)) : null;
  const plan = planned ?? (await planBuild(spec, join(workDir, 'stage'), base ? await baseTreeOf(base.image) : null, images));
  const platform = base && !plan.platform && !spec.platform ? platformOfConfig(base.image.config) : checkPlatform(plan, spec);
  // One reader of file contents for the whole build: the inventory's md5s and the layer cache's sha256s come from one
  // read of each file.
  const cache = openCache(spec.cacheDir, log);
  const files = cache?.files ?? new FileDigests(null);
  const wantInventory = !(spec.sbom === false && !spec.sbomDocument);
  // The large files the plan holds so far are read now and their blocks deflated on the other core while the rules
  // and the package records run (preread.ts). Not with a base image (paths may move onto its links) or zstd.
  const preread: Preread | undefined =
    !spec.from && !base && spec.compression !== 'zstd'
      ? prereadFiles(plan.entries.values(), { mtime: spec.epoch, level: spec.gzipLevel ?? DEFAULT_GZIP_LEVEL, files, want: { md5: wantInventory, sha1: !!spec.sbomDocument }, blocks: cache?.cache.blocks ?? null })
      : undefined;
  if (preread) plan.held = (p) => preread.content(p);
  const added = applyRules(plan, {
    scaffold: spec.scaffold ?? { passwd: true, tmp: true, certs: true, tz: true, locale: true },
    force: spec.scaffoldForce,
    tz: spec.tz ?? [],
    envTz: [...(spec.config?.Env ?? []), ...spec.env].reverse().find((e) => e.startsWith('TZ='))?.slice(3),
    withLibs: spec.withLibs ?? [],
    user: spec.user ?? spec.config?.User,
    hasBase: !!spec.from,
    noRules: spec.noRules,
    gconv: spec.gconv,
    idn: spec.idn,
    withShell: spec.withShell,
    noRuntime: spec.noRuntime,
    noHelpers: spec.noHelpers,
    names: spec.optionNames,
    envLocale: ['LC_ALL', 'LC_CTYPE', 'LANG'].map((k) => [...(spec.config?.Env ?? []), ...spec.env].reverse().find((e) => e.startsWith(`${k}=`))?.slice(k.length + 1)).find((v) => v),
  });
  plan.closeAll();
  if (!base && loadBase) base = await loadBase(platform);
  if (base) {
    const bc = base.image.config;
    if (!platformMatches(platformOfConfig(bc), platform)) {
      throw new BasePlatformError(base.name, formatPlatform(platformOfConfig(bc)), formatPlatform(platform));
    }
    // Files given on the command line go where their paths lead in the base (a Dockerfile's COPY already did).
    if (!spec.context) {
      const moved = placeOnBase(plan, await baseTreeOf(base.image));
      if (moved) plan.notes.push(`${moved} path${moved === 1 ? '' : 's'} placed through symbolic links of ${base.name} (its /lib -> usr/lib and the like stay links)`);
    }
  }
  for (const a of [...plan.notes, ...added]) log.info(a);
  const inventory = wantInventory ? packageRecords(plan, spec, log, files) : null;
  const { kernelFloor } = checkVersions(plan);
  if (kernelFloor) log.info(`needs Linux ${kernelFloor} or newer (ELF ABI note)`);
  if (spec.maxSize !== undefined) {
    const total = totalSize(plan);
    if (total > spec.maxSize) throw new MaxSizeError(total, spec.maxSize);
  }
  const baseImage = base?.image ?? empty;
  const run = runConfig(spec, plan.entrypoint, spec.config ?? baseImage.config.config);
  // Before any layer is written. With a base image the entrypoint may live in its layers: that check runs on the
  // final image below.
  if (!base && !spec.noVerify) verifyRuns(plan, run.Entrypoint ?? run.Cmd, spec.shellForm, run.Env?.find((e) => e.startsWith('PATH='))?.slice(5));
  const groups = new Map<LayerGroup, PlannedEntry[]>();
  for (const e of plan.entries.values()) {
    const g: LayerGroup = spec.layers === 1 ? 'app' : e.group;
    (groups.get(g) ?? groups.set(g, []).get(g)!).push(e);
  }
  const mt = mediaTypesFor(spec.format);
  if (spec.compression === 'zstd' && spec.format === 'docker') throw new BuildError('zstd layers need the OCI format: Docker schema 2 has no zstd layer type');
  const layerType = spec.compression === 'zstd' ? MT.ociLayerZstd : mt.layer;
  const created = isoTime(spec.epoch);
  const jobs: { comment: string; entries: PlannedEntry[] }[] = [];
  for (const g of GROUP_ORDER) {
    const entries = groups.get(g);
    if (!entries?.length) continue;
    const files = entries.filter((e) => e.type === 'file').length;
    const count = `${files} file${files === 1 ? '' : 's'}`;
    jobs.push({ entries, comment: spec.layers === 1 ? `everything (${count})` : `${GROUP_COMMENT[g]} (${count})` });
  }
  // Layers compress concurrently: gzip runs on libuv's thread pool, so each layer gets a core.
  const blobs: LayerBlob[] = await Promise.all(
    jobs.map(({ entries, comment }) => writeLayer(entries, { dir: join(workDir, 'blobs'), mediaType: layerType, mtime: spec.epoch, comment, compression: spec.compression, gzipLevel: spec.gzipLevel, log, cache: cache ?? undefined, stream: layerStream, preread, scratch: plan.stage })),
  );
  if (cache) {
    cache.files.save();
    if (blobs.some((b) => !b.cached)) cache.cache.afterWrite();
  }
  const history: HistoryEntry[] = jobs.map((j) => ({ created, created_by: `ocislim build: ${j.comment}` }));
  // The shell form without a shell: an error from the run check below, a warning when that check is skipped.
  if (spec.shellForm?.length && !base && spec.noVerify && !plan.entries.has('/bin/sh')) {
    plan.warnings.push(`${spec.shellForm.join(', ')} uses the shell form, but the image has no /bin/sh: use the exec form ["program", "arg"]`);
  }
  const annotations: Record<string, string> = { 'org.opencontainers.image.created': created };
  if (base) {
    annotations['org.opencontainers.image.base.name'] = base.name;
    annotations['org.opencontainers.image.base.digest'] = base.image.digest;
  }
  Object.assign(annotations, spec.annotations);
  const image = append(
    baseImage,
    blobs.map((b, i) => ({ layer: layerFromBlob(b), history: history[i] })),
    { created, platform, config: () => run, ...(spec.author !== undefined ? { author: spec.author } : {}) },
    { format: spec.format, annotations },
  );
  if (base && !spec.noVerify) await verifyOnBase(image, join(workDir, 'verify'), log);
  return { image, plan, inventory, layers: blobs, platform };
}

/**
 * Which package each file of the plan comes from (the root's dpkg database), and the distroless package records
 * (status.d) for them, added to the application layer so the loader/libc and library layers stay shared.
 */
function packageRecords(plan: Plan, spec: BuildSpec, log: Log, files: FileDigests): Inventory {
  // The database the rules opened (one read per build), else opened here.
  let db: DpkgDatabase | null | undefined = plan.dpkg;
  if (db === undefined) {
    try {
      db = plan.dpkg = DpkgDatabase.open(plan.fs, undefined, { cacheDir: plan.dpkgCacheDir });
    } catch (e) {
      if (e instanceof ControlFileError) throw new BuildError(`dpkg database: ${e.message}`);
      throw e;
    }
  }
  if (!db && spec.sbomDocument) log.info(`note: no dpkg database in ${plan.fs.root}: the SBOM lists files only`);
  const edges = plan.closures.flatMap((c) => c.edges);
  // sha1 only for the SBOM documents (SPDX requires it); md5 for ownership and status.d, sha256 for both.
  const sha1 = !!spec.sbomDocument;
  const hash = (e: LayerEntry) => {
    if (e.content || !e.source) return hashFile(e);
    const h = files.hashes(e.source, { md5: true, sha1 });
    return { sha256: hexOf(h.digest), md5: h.md5!, size: h.size, ...(h.sha1 ? { sha1: h.sha1 } : {}) };
  };
  const inv = takeInventory(plan.entries.values(), plan.fs, db, edges, readOsRelease(plan.fs), { hash, scratch: plan.stage });
  if (spec.sbom === false) return inv;
  for (const e of statusDEntries(inv, plan.fs, { osFiles: !spec.from, present: (p) => plan.entries.has(p) })) plan.add({ ...e, group: 'app' });
  return inv;
}

/** The persistent cache, or null (none asked for, or its directory cannot be written: the build goes on without). */
function openCache(dir: string | undefined, log: Log): { cache: Cache; files: FileDigests } | null {
  if (!dir) return null;
  const cache = new Cache(dir);
  try {
    mkdirSync(cache.blobDir, { recursive: true });
  } catch (e) {
    log.warn(`cache ${dir} cannot be used (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); building without it`);
    return null;
  }
  return { cache, files: new FileDigests(join(dir, 'files.json')) };
}

/**
 * With a base image, the base's files count: the final image is unpacked and its entrypoint resolved inside it, by
 * the image's own loader rules. A missing interpreter or library, or a missing entrypoint, is an error.
 */
async function verifyOnBase(image: Image, dir: string, log: Log): Promise<void> {
  const c = image.config.config;
  const argv0 = (c.Entrypoint ?? c.Cmd ?? [])[0];
  if (!argv0) return;
  log.info('checking that the image runs (base layers included)');
  mkdirSync(dir, { recursive: true });
  await unpackImage(image, dir);
  const resolver = new Resolver(dir);
  const path = (c.Env ?? []).find((e) => e.startsWith('PATH='))?.slice(5);
  checkExecInImage(resolver, argv0, path, `entrypoint ${argv0}`);
}

/** execve in the unpacked image: an executable ELF program whose loader finds every library, or a #! script whose interpreter is one. */
function checkExecInImage(resolver: Resolver, name: string, path: string | undefined, what: string, depth = 0): void {
  const program = resolver.fs.which(name, path);
  const st = program ? resolver.fs.stat(program) : null;
  if (!program || !st) throw new BuildError(`${what} is not in the image${name.startsWith('/') ? '' : ` (searched PATH=${path ?? 'the default'})`}`);
  if (!st.stats.isFile()) throw new BuildError(`${what} is not a regular file in the image`);
  if (!(st.stats.mode & 0o111)) throw new BuildError(`${what} is not executable in the image`);
  let closure;
  try {
    closure = resolver.resolve(program);
  } catch (e) {
    if (!(e instanceof ElfError && /not an ELF file|too short|empty file/.test(e.reason))) throw new BuildError(`${what}: ${(e as Error).message}`);
    const sb = readShebang({ path: resolver.fs.hostReal(st.located) });
    if (!sb) throw new BuildError(`${what} is neither an ELF program nor a #! script: it cannot be executed`);
    const line = `#!${sb.interpreter}${sb.arg ? ' ' + sb.arg : ''}`;
    if (depth >= 4) throw new BuildError(`${what}: too many levels of #! interpreters`);
    if (!sb.interpreter.startsWith('/')) throw new BuildError(`${what} starts with "${line}": the interpreter must be an absolute path`);
    checkExecInImage(resolver, sb.interpreter, path, `${what}: its interpreter ${sb.interpreter} (${line})`, depth + 1);
    const target = envTarget(sb);
    if (target) checkExecInImage(resolver, target, path ?? DEFAULT_PATH, `${what}: ${target} (${line})`, depth + 1);
    return;
  }
  if (closure.notFound.length) {
    const n = closure.notFound[0];
    throw new RunCheckError(`${what} cannot start in the image: ${n.name}${n.reason ? ` (${n.reason})` : ''}, needed by ${n.neededBy}, is not found by the image's loader`);
  }
}
