import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../oci/atomic.js';
import { Cache } from '../oci/cache.js';
import { Digest, hexOf, isDigest, sha256 } from '../oci/digest.js';
import { Image, parseConfig, parseManifest } from '../oci/image.js';
import { cachedLayerNote, LayerBlob } from '../oci/layer.js';
import { layerFromBlob } from '../oci/mutate.js';
import { Platform, platformRecord } from '../oci/platform.js';
import { Observation, stillHolds } from './fs-journal.js';
import type { BuildSpec } from './spec.js';

/**
 * The build memo: a whole build, remembered with the journal of what it read (fs-journal.ts). A later build with the
 * same spec, by the same code, whose every observation still holds (the same files with the same stat identity, the
 * same directory listings, the same link targets, the same absent paths) would read the same bytes and so make the
 * same image: it is served from here, with its layers from the cache, without planning or hashing anything.
 *
 *   builds/HEX.json   a build key → the journal, the manifest and config bytes, the layers, what the build said
 */

/** Bump when what a record holds, or what a build depends on outside its journal, changes. */
const MEMO_FORMAT = 1;

export type LogLine = ['info' | 'warn', string];

/** A build served from the memo: what a front end needs to write, push and report it. */
export interface Remembered {
  image: Image;
  layers: LayerBlob[];
  platform: Platform;
  /** What the build said (notes and warnings), to say again; then each layer is said to come from the cache. */
  lines: LogLine[];
  /** The plan's warnings, shown after the build. */
  warnings: string[];
}

type StoredLayer = Omit<LayerBlob, 'path' | 'cached'>;

interface MemoRecord {
  v: number;
  obs: Observation[];
  manifest: string;
  config: string;
  layers: StoredLayer[];
  platform: Platform;
  lines: LogLine[];
  warnings: string[];
}

let codeStampMemo: string | null = null;

/**
 * What identifies the code doing the build: the stat of the bundled CLI, or of every compiled module in dist/src;
 * of the package.json and node_modules/.package-lock.json (the dependencies); Node's version. Another build of
 * ocislim never uses this one's records.
 */
export function codeStamp(): string {
  if (codeStampMemo) return codeStampMemo;
  const self = fileURLToPath(import.meta.url);
  let dir = dirname(self);
  for (let i = 0; i < 5 && !safeStat(join(dir, 'package.json')); i++) dir = dirname(dir);
  const h = createHash('sha256');
  h.update(`${process.version} ${process.arch} ${MEMO_FORMAT}\n`);
  const add = (p: string) => {
    const st = safeStat(p);
    h.update(`${p} ${st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : '-'}\n`);
  };
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = safeStat(p);
      if (st?.isDirectory()) walk(p);
      else if (n.endsWith('.js') || n.endsWith('.cjs')) add(p);
    }
  };
  add(join(dir, 'package.json'));
  add(join(dir, 'node_modules', '.package-lock.json'));
  // The bundled CLI (scripts/bundle.mjs) is one file holding every module; otherwise every compiled module counts.
  if (self.endsWith('.cjs')) add(self);
  else walk(join(dir, 'dist', 'src'));
  return (codeStampMemo = h.digest('hex'));
}

function safeStat(p: string) {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

/** JSON for the key: regular expressions, maps and sets written out; functions left out (see buildKey). */
function keyJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === 'function') return undefined;
    if (x instanceof RegExp) return `/${x.source}/${x.flags}`;
    if (x instanceof Map) return { map: [...x.entries()] };
    if (x instanceof Set) return { set: [...x] };
    return x;
  });
}

/**
 * A build's key: its spec, the directory relative paths are read from, and the code (codeStamp). Whatever the spec
 * holds that JSON does not show (a .dockerignore's rules behind a function) must come from files the journal saw
 * being read: the front end journals the making of the spec too.
 */
export function buildKey(spec: BuildSpec, extra: unknown = null): Digest {
  // Who builds: a cache shared by two users must not serve one what only the other could read.
  const who = `${process.getuid?.() ?? ''}:${process.getgid?.() ?? ''}:${(process.getgroups?.() ?? []).join(',')}`;
  return sha256(`${codeStamp()}\n${who}\n${process.cwd()}\n${keyJson(spec)}\n${keyJson(extra)}`);
}

/**
 * Whether a spec may be remembered: it needs a cache, and everything it reads must be local files. A base image or
 * COPY --from an image reads a registry or a layout the journal does not model; --trace runs a program.
 */
export function memoizable(spec: BuildSpec): boolean {
  if (!spec.cacheDir || spec.from || spec.trace) return false;
  const fromImage = (steps: BuildSpec['steps']) => (steps ?? []).some((s) => s.kind !== 'WORKDIR' && s.spec.from && 'image' in s.spec.from);
  if (fromImage(spec.steps)) return false;
  return !(spec.stages ?? []).some((st) => st && (st.from || fromImage(st.steps)));
}

function recordPath(cache: Cache, key: Digest): string {
  return join(cache.dir, 'builds', `${hexOf(key)}.json`);
}

/**
 * The build remembered under `key`, when every observation of its journal still holds and its blobs are here. A
 * record that cannot be read or is not what this version writes (truncated, hand-edited, another shape) is no record.
 */
export function recallBuild(cache: Cache, key: Digest): Remembered | null {
  try {
    return recall(cache, key);
  } catch {
    return null;
  }
}

function recall(cache: Cache, key: Digest): Remembered | null {
  const rec = JSON.parse(readFileSync(recordPath(cache, key), 'utf8')) as MemoRecord;
  if (!rec || rec.v !== MEMO_FORMAT || !Array.isArray(rec.obs) || !Array.isArray(rec.layers)) return null;
  const layers: LayerBlob[] = [];
  for (const l of rec.layers) {
    if (!isDigest(l.digest)) return null;
    const path = cache.hasBlob(l.digest, l.size);
    if (!path) return null;
    layers.push({ ...l, path, cached: true });
  }
  if (!stillHolds(rec.obs)) return null;
  const manifestBytes = Buffer.from(rec.manifest, 'utf8');
  const configBytes = Buffer.from(rec.config, 'utf8');
  const manifest = parseManifest(manifestBytes, 'build memo');
  const config = parseConfig(configBytes, 'build memo');
  // The record is only a shortcut: it must describe these very layers.
  if (manifest.config.digest !== sha256(configBytes) || manifest.layers.length !== layers.length) return null;
  if (manifest.layers.some((d, i) => d.digest !== layers[i].digest || d.size !== layers[i].size)) return null;
  const image: Image = { manifestBytes, manifest, digest: sha256(manifestBytes), configBytes, config, layers: layers.map(layerFromBlob) };
  const lines: LogLine[] = [...(rec.lines ?? []), ...layers.map((l): LogLine => ['info', cachedLayerNote(l.comment)])];
  const now = new Date();
  utimesSync(recordPath(cache, key), now, now); // used: the cache's size cap removes least recently used records first
  return { image, layers, platform: platformRecord(rec.platform), lines, warnings: rec.warnings ?? [] };
}

/** Remembers a build under `key` (atomically; an unwritable cache only costs the next build its time). */
export function rememberBuild(cache: Cache, key: Digest, obs: Observation[], r: Remembered): void {
  // Only layers of the cache can be served later (a --no-cache layer lives in the build's scratch directory).
  if (r.layers.some((l) => !cache.hasBlob(l.digest, l.size))) return;
  const rec: MemoRecord = {
    v: MEMO_FORMAT,
    obs,
    manifest: r.image.manifestBytes.toString('utf8'),
    config: r.image.configBytes.toString('utf8'),
    layers: r.layers.map(({ digest, diffId, size, uncompressedSize, mediaType, comment, entries }) => ({ digest, diffId, size, uncompressedSize, mediaType, comment, entries })),
    platform: r.platform,
    // Said again at each recall, for every layer (whether this build found it in the cache or wrote it).
    lines: r.lines.filter(([, text]) => !r.layers.some((l) => text === cachedLayerNote(l.comment))),
    warnings: r.warnings,
  };
  try {
    mkdirSync(join(cache.dir, 'builds'), { recursive: true });
    writeFileAtomic(recordPath(cache, key), JSON.stringify(rec));
  } catch {
    /* read-only cache */
  }
}
