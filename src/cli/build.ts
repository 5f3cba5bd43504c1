import { build, BuildResult, checkPlatform, planOnBase, withWorkDir } from '../builder/build-image.js';
import type { Plan } from '../builder/plan.js';
import { BuildError } from '../builder/errors.js';
import { BuildSpec, CopySpec, parseSize, parseCommand, parseCopy, parseKeyValue, parsePort, parseSignal, parseUser, sourceDateEpoch } from '../builder/spec.js';
import { formatPlatform, hostPlatform, Platform } from '../oci/platform.js';
import { BuildTarget, buildTargets } from './targets.js';
import { Artifact, assembleIndex, isImageIndex } from '../oci/index.js';
import type { LayerStream } from '../oci/layer.js';
import { join, posix, sep } from 'node:path';
import { TargetError, UsageError, UserError } from './errors.js';
import { readFileSync, statSync } from 'node:fs';
import { parseDockerfile } from '../builder/dockerfile.js';
import { loadContext } from '../builder/context.js';
import { explain, formatExplain } from '../builder/explain.js';
import type { BuildArgs } from './options.js';
import { inputPlacement } from '../builder/plan.js';
import type { Log } from '../log.js';
import { artifactJson, CiFiles, ciFilesArg, localTag, Pushed, writeCiFiles, Written } from './result.js';
import type { ClientPool } from '../registry/pool.js';
import type { LocalImageRef, RegistryAccess } from '../refs/image-ref.js';
import { imageRefArg, localRefArg, pushTargetArg, pushTo, writeOrSay, fsMessage } from './refs.js';
import { errorText, optionText } from './words.js';
import type { Image, RunConfig } from '../oci/image.js';
import { BaseLoader, ImageLoader } from '../builder/build-image.js';
import { humanSize } from './format.js';
import { Cache, cacheOwnPaths, defaultCacheDir } from '../oci/cache.js';
import { writeFileAtomic } from '../oci/atomic.js';
import type { Referrer } from '../oci/artifact.js';
import { SbomFormat } from '../packages/sbom-documents.js';
import { buildSbom } from '../builder/sbom.js';
import { RegistryImageRef } from '../refs/image-ref.js';
import { buildKey, LogLine, memoizable, recallBuild, rememberBuild } from '../builder/build-memo.js';
import { FsJournal, journaled } from '../builder/fs-journal.js';
import type { LayerBlob } from '../oci/layer.js';
import { holdOptimizer } from './jit.js';


const SCAFFOLD_ITEMS = ['passwd', 'tmp', 'certs', 'tz', 'locale'] as const;

/** --scaffold ITEM[,ITEM]: items wanted even when nothing in the program asks for them. */
function scaffoldForced(items: string[] | undefined): BuildSpec['scaffoldForce'] {
  const forced: NonNullable<BuildSpec['scaffoldForce']> = {};
  for (const i of (items ?? []).flatMap((x) => x.split(',')).filter(Boolean)) {
    if (i === 'tmp' || i === 'locale' || !(SCAFFOLD_ITEMS as readonly string[]).includes(i)) throw new BuildError(`--scaffold ${i}: use passwd, certs or tz (/tmp is always added)`);
    forced[i as 'passwd' | 'certs' | 'tz'] = true;
  }
  return forced;
}

/** --no-scaffold (everything) or --no-scaffold ITEM[,ITEM]. */
function scaffoldFrom(no: string[] | undefined): BuildSpec['scaffold'] {
  const s = { passwd: true, tmp: true, certs: true, tz: true, locale: true };
  if (!no) return s;
  const items = no.flatMap((x) => x.split(',')).filter(Boolean);
  if (!items.length || items.includes('all')) return { passwd: false, tmp: false, certs: false, tz: false, locale: false };
  for (const i of items) {
    if (!(SCAFFOLD_ITEMS as readonly string[]).includes(i)) throw new BuildError(`--no-scaffold ${i}: use ${SCAFFOLD_ITEMS.join(', ')} (or nothing for all)`);
    s[i as (typeof SCAFFOLD_ITEMS)[number]] = false;
  }
  return s;
}

/** Flags → build spec for one target (root and platform), validating everything before any work starts. */
export function specFromArgs(a: BuildArgs, target: BuildTarget = buildTargets(a.root, a.platform)[0]): BuildSpec {
  try {
    const kv = (xs: string[] | undefined, what: string) => Object.fromEntries((xs ?? []).map((x) => parseKeyValue(x, what)));
    if (a.layers !== undefined && a.layers !== 1 && a.layers !== 3) throw new BuildError(`--layers ${a.layers}: use 1 (one layer) or 3 (loader and libc, libraries, application)`);
    const zst = a.compression === 'zstd';
    if (a.compressionLevel !== undefined && !(Number.isInteger(a.compressionLevel) && a.compressionLevel >= 1 && a.compressionLevel <= (zst ? 19 : 9))) {
      throw new BuildError(`--compression-level ${a.compressionLevel}: use a ${zst ? 'zstd level from 1 (fastest) to 19' : 'gzip level from 1 (fastest) to 9'} (smallest)`);
    }
    if (zst && a.format === 'docker') throw new BuildError('--compression zstd needs --format oci: Docker schema 2 has no zstd layer type');
    if (a.format && a.format !== 'oci' && a.format !== 'docker') throw new BuildError(`--format ${a.format}: use oci or docker`);
    if (a.workdir && !a.workdir.startsWith('/')) throw new BuildError(`--workdir "${a.workdir}" must be an absolute path`);
    for (const v of a.volume ?? []) if (!v.startsWith('/')) throw new BuildError(`--volume "${v}" must be an absolute path`);
    for (const p of a.expose ?? []) parsePort(p);
    for (const e of a.env ?? []) parseKeyValue(e, '--env');
    for (const f of a.files ?? []) if (!a.file) inputPlacement(f);
    return {
      optionNames: optionText,
      inputs: a.files ?? [],
      from: a.from,
      adds: (a.add ?? []).map((s): CopySpec => ({ ...parseCopy(s, '--add'), where: '--add' })),
      copies: (a.copy ?? []).map((s): CopySpec => ({ ...parseCopy(s, '--copy'), where: '--copy' })),
      root: target.root,
      entrypoint: a.entrypoint !== undefined ? parseCommand(a.entrypoint, '--entrypoint') : undefined,
      cmd: a.cmd !== undefined ? parseCommand(a.cmd, '--cmd') : undefined,
      env: a.env ?? [],
      expose: a.expose ?? [],
      workdir: a.workdir,
      user: a.user !== undefined ? parseUser(a.user) : undefined,
      labels: kv(a.label, '--label'),
      annotations: kv(a.annotation, '--annotation'),
      stopSignal: a.stopSignal !== undefined ? parseSignal(a.stopSignal) : undefined,
      volumes: a.volume ?? [],
      layers: (a.layers ?? 3) as 1 | 3,
      format: (a.format ?? 'oci') as 'oci' | 'docker',
      platform: target.platform,
      epoch: sourceDateEpoch(),
      compression: zst ? 'zstd' : undefined,
      gzipLevel: a.compressionLevel,
      cacheDir: a.noCache ? undefined : defaultCacheDir(),
      scaffold: scaffoldFrom(a.noScaffold),
      scaffoldForce: scaffoldForced(a.scaffold),
      tz: a.tz ?? [],
      withLibs: a.withLib ?? [],
      noRules: a.noRules,
      noVerify: a.noVerify,
      gconv: a.withGconv,
      idn: a.withIdn,
      withShell: a.withShell,
      packages: a.package,
      noRuntime: a.noRuntime,
      noHelpers: a.noHelpers,
      trace: a.trace,
      maxSize: a.maxSize !== undefined ? parseSize(a.maxSize) : undefined,
      sbom: !a.noSbom,
      sbomDocument: a.sbom !== undefined,
    };
  } catch (e) {
    throw new UsageError(errorText(e));
  }
}

/** Dockerfile + context → spec for one target; command-line flags add to (and override) what the Dockerfile says. */
export async function specFromDockerfile(
  a: BuildArgs,
  target: BuildTarget,
  imageConfig: (ref: string, platform: Platform) => Promise<RunConfig>,
  log: Log,
): Promise<BuildSpec> {
  const base = specFromArgs({ ...a, files: [] }, target);
  if (a.files.length > 1) throw new UsageError(`with -f, give one build context directory (got ${a.files.join(' ')})`);
  if (a.add?.length || a.copy?.length) throw new UsageError('with -f, put ADD and COPY in the Dockerfile');
  let text: string;
  try {
    text = readFileSync(a.file!, 'utf8');
  } catch (e) {
    throw new BuildError(`${a.file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const buildArgs = Object.fromEntries((a.buildArg ?? []).map((x) => parseKeyValue(x, '--build-arg')));
  const host = hostPlatform() ?? { os: 'linux', architecture: 'amd64' };
  // The automatic platform ARGs (TARGETARCH...) come from the target's platform, the host's when none is named.
  const df = await parseDockerfile(text, { file: a.file!, buildArgs, target: a.target, platform: target.platform ?? host, buildPlatform: host, imageConfig });
  for (const w of df.warnings) log.warn(w);
  const context = loadContext(a.files[0] ?? '.', a.file);
  return {
    ...base,
    from: a.from ?? df.from,
    fromPlatform: df.fromPlatform,
    steps: df.steps,
    stages: df.stages,
    context,
    config: df.config,
    author: df.author,
    shellForm: base.entrypoint || base.cmd ? [] : df.shellForm,
  };
}

/** `ocislim build`: stdout gets only the digest (or the --json document); progress goes to stderr. */
export async function buildCommand(a: BuildArgs, out: (s: string) => void, log: Log, err: (s: string) => void): Promise<number> {
  // The registry client (undici) loads only when needed: for a registry base, a Dockerfile's COPY --from image, or a
  // push; it starts loading early, and compiles while the main thread waits for the layers' gzip.
  let registry: Promise<typeof import('./registry.js')> | null = null;
  let access: (RegistryAccess & { pool: ClientPool; log: Log }) | null = null;
  const getAccess = async (): Promise<RegistryAccess & { log: Log }> => (access ??= (await (registry ??= import('./registry.js'))).registryAccess(a, log));
  // Each image is read once: a Dockerfile's base is asked for its config while parsing, then for its layers.
  const cache = new Map<string, Promise<Image>>();
  const images: ImageLoader = (ref, platform) => {
    const key = `${ref} ${platform.os}/${platform.architecture}/${platform.variant ?? ''}`;
    let p = cache.get(key);
    if (!p) {
      const r = imageRefArg(ref, ref === a.from ? '--from' : 'FROM');
      p = (async () => r.read({ ...(r.kind === 'registry' ? await getAccess() : { log }), platform }))();
      cache.set(key, p);
    }
    return p;
  };
  const configOf = async (ref: string, platform: Platform): Promise<RunConfig> => (await images(ref, platform)).config.config;
  let releaseOptimizer = () => {};
  try {
    const targets = buildTargets(a.root, a.platform);
    const specs: BuildSpec[] = [];
    // Journaled: what the spec took from files (the Dockerfile, .dockerignore) belongs to a remembered build's journal.
    const { journal: specJournal } = await journaled([], async () => {
      for (const t of targets) specs.push(a.file ? await specFromDockerfile(a, t, configOf, log) : specFromArgs(a, t));
    });
    const spec = specs[0];
    if (specs.every(boundedBuild)) releaseOptimizer = holdOptimizer();
    const outputs = (a.output ?? []).map((o) => localRefArg(o, '-o'));
    const pushes = (a.push ?? []).map((p) => pushTargetArg(p, '--push', a.tag));
    if (!outputs.length && !pushes.length) throw new UsageError('say where the image goes: --push REF, -o oci:DIR[:TAG], -o oci-archive:FILE[:TAG] or -o docker-archive:FILE[:NAME:TAG]');
    if (a.tag?.length && !pushes.length) throw new UsageError('--tag adds tags to a --push; give --push REF too');
    if (a.sbom === '') throw new UsageError('--sbom needs the FILE to write the SBOM to');
    if (a.sbomFormat !== undefined && a.sbom === undefined) throw new UsageError('--sbom-format chooses the format of --sbom FILE; give --sbom FILE too');
    // A Dockerfile may change only the config of its base (FROM base + ENV + CMD): that is an image too.
    if (!a.file && !spec.inputs.length && !spec.adds.length && !spec.copies.length && !spec.packages?.length) throw new UsageError('nothing to build: give at least one file, --package, --add or --copy');
    const dockerArchive = outputs.find((o) => o.kind === 'docker-archive');
    if (targets.length > 1 && dockerArchive) {
      throw new UsageError(`-o ${dockerArchive}: a docker-archive holds one image, and this build makes ${targets.length} (one per --root platform); write oci: or oci-archive:`);
    }
    const from = spec.from ? imageRefArg(spec.from, '--from') : null;
    const ci = ciFilesArg(a);
    if (pushes.some((p) => p.kind === 'registry') || from?.kind === 'registry') registry ??= import('./registry.js');
    const loadBase: BaseLoader | undefined = from
      ? async (platform) => {
          const image = await images(spec.from!, platform);
          return { image: from.kind === 'registry' ? cachedBlobs(image, spec) : image, name: spec.from! };
        }
      : undefined;
    // The layers go up to the first registry of --push while they compress (one image; an index is pushed per platform).
    const first = targets.length === 1 ? pushes.find((p): p is RegistryImageRef => p instanceof RegistryImageRef) : undefined;
    const uploads = first ? (await registry!).layerUploads(((await getAccess()) as RegistryAccess & { pool: ClientPool }).pool.get(first.reference.registry), first.reference) : null;
    const push = async (img: Artifact) => {
      const uploaded = uploads ? uploads.inFlight() : null;
      const done: Pushed[] = [];
      for (const p of pushes) {
        const what = p === first && uploaded && !isImageIndex(img) ? (await registry!).withUploaded(img, uploaded, first.reference) : img;
        done.push(await pushTo(what, p, a.tag ?? [], p.kind === 'registry' ? await getAccess() : { log }));
      }
      return done;
    };
    // Each platform's image gets its own SBOM: in oci: layouts, and in registries under the digest the image has there.
    const attach = async (art: Referrer, pushed: Pushed[], inIndex: boolean) => {
      for (const [k, p] of pushes.entries()) {
        if (p instanceof RegistryImageRef) {
          const stored = inIndex ? art.subject.digest : pushed[k].ref.slice(pushed[k].ref.lastIndexOf('@') + 1);
          const acc = (await getAccess()) as RegistryAccess & { pool: ClientPool; log: Log };
          await (await registry!).attachTo(art, p, stored, acc);
        } else if (p.kind === 'oci') await p.attach(art);
      }
    };
    return await buildAndShip(specs, targets, a, ci, outputs, push, attach, loadBase, out, log, err, images, specJournal, uploads?.stream);
  } finally {
    releaseOptimizer();
    await (access as (RegistryAccess & { pool: ClientPool }) | null)?.pool.close();
  }
}

/**
 * A build of programs and files named on the command line, with their closures and run-time rules: hundreds of files,
 * never many thousands (cli/jit.ts holds V8's optimizing compiler back for such builds). A directory, a package, an
 * archive, a Dockerfile, a base image or --trace can bring any number of files.
 */
export function boundedBuild(spec: BuildSpec): boolean {
  if (spec.context || spec.from || spec.adds.length || spec.copies.length || spec.steps?.length || spec.packages?.length || spec.trace) return false;
  if (spec.tz?.includes('all') || spec.gconv?.includes('all')) return false;
  return spec.inputs.every((input) => {
    const src = inputPlacement(input).src;
    // The path on the host or, with --root, in the root: neither may be a directory.
    for (const p of new Set([posix.resolve(src), posix.join(spec.root, posix.resolve(src))])) {
      try {
        if (statSync(p).isDirectory()) return false;
      } catch {
        /* not there: the build says so */
      }
    }
    return true;
  });
}

/** A registry base image's blobs are kept in the cache: read once from the registry, then from disk. */
function cachedBlobs(img: Image, spec: BuildSpec): Image {
  if (!spec.cacheDir) return img;
  const cache = new Cache(spec.cacheDir);
  return { ...img, layers: img.layers.map((l) => ({ ...l, blob: cache.blobReader(l.descriptor, l.blob) })) };
}

/** One target's image: built now (`full`), or remembered from an earlier build with the same inputs. */
interface Built {
  image: Image;
  layers: LayerBlob[];
  platform: Platform;
  warnings: string[];
  full?: BuildResult;
}

/** A target's error says which target it is (cli/words.ts words both). */
function wordError(e: unknown, target: BuildTarget): unknown {
  return target.label ? new TargetError(target.label, e) : e;
}

/**
 * Every target's inputs are found and checked against its platform before any layer is written, so a bad root is
 * reported before the good ones are built.
 */
async function planAll(specs: BuildSpec[], targets: BuildTarget[], work: string, loadBase: BaseLoader | undefined, images: ImageLoader): Promise<Plan[]> {
  const plans: Plan[] = [];
  for (let i = 0; i < specs.length; i++) {
    try {
      const plan = await planOnBase(specs[i], join(work, `stage${i}`), loadBase, images);
      checkPlatform(plan, specs[i]);
      plans.push(plan);
    } catch (e) {
      throw wordError(e, targets[i]);
    }
  }
  return plans;
}

/** The same log, each line saying which platform it is about. */
function prefixed(log: Log, prefix: string): Log {
  if (!prefix) return log;
  return { info: (s) => log.info(prefix + s), warn: (s) => log.warn(prefix + s), task: (label, total) => log.task(prefix + label, total) };
}

async function buildAndShip(
  specs: BuildSpec[],
  targets: BuildTarget[],
  a: BuildArgs,
  ci: CiFiles,
  outputs: LocalImageRef[],
  push: (img: Artifact) => Promise<Pushed[]>,
  attach: (art: Referrer, pushed: Pushed[], inIndex: boolean) => Promise<void>,
  loadBase: BaseLoader | undefined,
  out: (s: string) => void,
  log: Log,
  err: (s: string) => void,
  images: ImageLoader,
  specJournal: FsJournal,
  layerStream?: () => LayerStream | null,
): Promise<number> {
  const spec = specs[0];
  return withWorkDir(async (work) => {
    const many = targets.length > 1;
    const logs = targets.map((t) => prefixed(log, many ? `${formatPlatform(t.platform!)}: ` : ''));
    // The whole build from the memo when nothing it read changed (not for --explain and --sbom, which need the plan).
    const memo = !many && !a.explain && a.sbom === undefined && memoizable(spec) ? { cache: new Cache(spec.cacheDir!), key: buildKey(spec) } : null;
    const recalled = memo ? recallBuild(memo.cache, memo.key) : null;
    const results: Built[] = [];
    if (recalled) {
      for (const [level, text] of recalled.lines) log[level](text);
      log.info('inputs unchanged since an earlier build: image from the cache');
      results.push(recalled);
    } else {
      const plans = many ? await planAll(specs, targets, work, loadBase, images) : [];
      // One platform after another: each build already compresses its layers in parallel.
      for (let i = 0; i < specs.length; i++) {
        try {
          // A spec made from files changed in the last two seconds cannot be remembered: no journal for its build.
          if (memo && !specJournal.racy && !specJournal.unusable) {
            const lines: LogLine[] = [];
            const said: Log = { info: (s) => (lines.push(['info', s]), log.info(s)), warn: (s) => (lines.push(['warn', s]), log.warn(s)), task: (l, t) => log.task(l, t) };
            const { value: r, journal } = await journaled([work + sep, ...cacheOwnPaths(spec.cacheDir!)], () => build(specs[i], work, said, loadBase, plans[i], images, layerStream));
            results.push({ ...r, warnings: r.plan.warnings, full: r });
            if (!journal.racy && !journal.unusable) {
              rememberBuild(memo.cache, memo.key, [...specJournal.observations, ...journal.observations], { ...r, lines, warnings: r.plan.warnings });
            }
          } else {
            const r = await build(specs[i], many ? join(work, String(i)) : work, logs[i], loadBase, plans[i], images, layerStream);
            results.push({ ...r, warnings: r.plan.warnings, full: r });
          }
        } catch (e) {
          throw wordError(e, targets[i]);
        }
      }
    }
    const artifact: Artifact = many ? assembleIndex(results.map((r) => r.image), spec.format) : results[0].image;
    for (const [i, result] of results.entries()) for (const w of new Set(result.warnings)) logs[i].warn(w);
    const explained = a.explain ? results.map((r) => explain(r.full!.plan)) : null;
    if (explained && !a.json) for (const x of explained) err(formatExplain(x));
    const written: Written[] = [];
    for (const o of outputs) {
      const w = await writeOrSay(o, artifact, spec.epoch);
      written.push({ ref: w.ref, tag: localTag(w.ref, o) });
      log.info(`wrote ${w.ref}`);
    }
    const format = (a.sbomFormat ?? 'spdx') as SbomFormat;
    const sboms = a.sbom !== undefined ? results.map((r, i) => buildSbom(r.full!, specs[i], format)) : [];
    for (const [i, sbom] of sboms.entries()) {
      const file = many ? platformFile(a.sbom!, results[i].platform) : a.sbom!;
      try {
        writeFileAtomic(file, sbom.document);
      } catch (e) {
        throw new UserError(`cannot write --sbom ${file}: ${fsMessage(e)}`);
      }
      const inv = results[i].full!.inventory!;
      logs[i].info(`wrote ${format === 'spdx' ? 'SPDX' : 'CycloneDX'} SBOM ${file} (${inv.packages.length} packages, ${inv.unowned.length} files of no package)`);
      for (const o of outputs) if (o.kind === 'oci') await o.attach(sbom.artifact);
    }
    const pushed = await push(artifact);
    for (const sbom of sboms) await attach(sbom.artifact, pushed, many);
    for (const [i, r] of results.entries()) {
      const size = r.layers.reduce((n, l) => n + l.size, 0);
      logs[i].info(`${r.image.digest} (${r.layers.length} layers, ${humanSize(size)} compressed)`);
    }
    if (many) log.info(`index ${artifact.digest} (${results.length} platforms)`);
    const uncompressed = new Map(results.flatMap((r) => r.layers.map((l) => [l.digest, l.uncompressedSize] as [string, number])));
    const j = artifactJson(artifact, { outputs: written, pushed, uncompressed, explain: explained ? (many ? explained : explained[0]) : undefined });
    writeCiFiles(ci, j, pushed);
    if (a.json) out(JSON.stringify(j, null, 2));
    else if (pushed.length) for (const p of pushed) out(p.ref);
    else out(artifact.digest);
    return 0;
  });
}

/** --sbom FILE for one platform of several: redis.spdx.json → redis-linux-arm64.spdx.json. */
function platformFile(file: string, p: { os: string; architecture: string; variant?: string }): string {
  const slash = file.lastIndexOf('/') + 1;
  const dot = file.indexOf('.', slash);
  const tag = [p.os, p.architecture, p.variant].filter(Boolean).join('-');
  return dot > slash ? `${file.slice(0, dot)}-${tag}${file.slice(dot)}` : `${file}-${tag}`;
}
