import { setFlagsFromString } from 'node:v8';
import { Closure, Resolver } from '../elf/resolve.js';
import { ElfError } from '../elf/errors.js';
import { formatPlatform } from '../oci/platform.js';
import { printable as p } from './format.js';

export interface LddArgs {
  files: string[];
  root: string;
  libraryPath?: string[];
  json?: boolean;
  tree?: boolean;
}

/**
 * `ocislim ldd`: ldd's familiar output, computed statically. Returns the exit code. Standard output is written once
 * at the end (one write for hundreds of files), and before each error message so the two streams keep their order.
 */
export function lddCommand(args: LddArgs, out: (s: string) => void, err: (s: string) => void): number {
  return withBaselineJit(args.files.length, () => lddFiles(args, out, err));
}

/**
 * Runs `fn` with V8's optimizing compiler (TurboFan) held back: the hot functions of a closure walk over a few hundred
 * files are compiled by it in the background at a CPU cost higher than what its code then saves before the command
 * ends; Sparkplug's baseline code is compiled at once and cheaply (ldd over /usr/bin and /usr/sbin: a third less CPU).
 * Long batches keep the optimizing compiler, and a --max-opt given to node is left alone. Changing a flag changes
 * V8's flag hash for the rest of the process, so that no code cache made afterwards in it would ever be accepted:
 * scripts/bundle.mjs, which makes one after running ldd, sets OCISLIM_KEEP_V8_FLAGS.
 */
function withBaselineJit<T>(files: number, fn: () => T): T {
  if (files > BASELINE_JIT_MAX_FILES || process.env.OCISLIM_KEEP_V8_FLAGS || process.execArgv.some((a) => a.startsWith('--max-opt'))) return fn();
  setFlagsFromString('--max-opt=1');
  try {
    return fn();
  } finally {
    setFlagsFromString('--max-opt=999');
  }
}
const BASELINE_JIT_MAX_FILES = 5000;

function lddFiles(args: LddArgs, out: (s: string) => void, err: (s: string) => void): number {
  // Version records appear only in --json.
  const resolver = new Resolver(args.root, { libraryPath: args.libraryPath, hwcaps: args.root === '/' ? 'host' : [], versions: !!args.json });
  let code = 0;
  const results: unknown[] = [];
  const text: string[] = [];
  const flush = () => {
    if (text.length) out(text.join('\n'));
    text.length = 0;
  };
  for (let i = 0; i < args.files.length; i++) {
    const file = args.files[i];
    const inRoot = resolver.fs.toRootPath(file);
    let c: Closure;
    try {
      c = resolver.resolve(inRoot);
    } catch (e) {
      if (!(e instanceof ElfError)) throw e;
      flush();
      err(`ocislim ldd: ${p(e.message)}`);
      code = 1;
      continue;
    }
    if (c.notFound.length) code = 1;
    if (args.json) {
      results.push(closureJson(c));
      continue;
    }
    if (args.files.length > 1) text.push(`${p(file)}:`);
    text.push(args.tree ? formatTree(c) : formatLdd(c));
  }
  flush();
  if (args.json) out(JSON.stringify(args.files.length === 1 ? results[0] ?? null : results, null, 2));
  return code;
}

/** printable() of names and paths, which repeat across closures (libc's path is in every one). */
const shown = new Map<string, string>();
function pp(s: string): string {
  let t = shown.get(s);
  if (t === undefined) {
    if (shown.size >= 1 << 16) shown.clear();
    shown.set(s, (t = p(s)));
  }
  return t;
}

export function formatLdd(c: Closure): string {
  const lines: string[] = [];
  if (!c.elf.interp && c.kind !== 'shared-object') {
    return c.kind === 'static' || c.kind === 'static-pie' ? '\tstatically linked' : '\tnot a dynamic executable';
  }
  // (indexed loops: this runs for every file, mostly before V8 compiles it, and for...of makes an object per step)
  const libs = c.libraries;
  for (let i = 0; i < libs.length; i++) lines.push(`\t${pp(libs[i].name)} => ${pp(libs[i].path)}`);
  for (const nf of c.notFound) lines.push(`\t${p(nf.name)} => not found${nf.reason ? ` (${p(nf.reason)})` : ''}`);
  if (c.interpreter) {
    // Names the loader answers itself (musl's libc.so) are shown as resolving to it, as ld-musl --list does.
    const interp = c.interpreter;
    let aliases: Set<string> | null = null;
    const edges = c.edges;
    for (let i = 0; i < edges.length; i++) {
      const e = edges[i];
      if (e.to === interp.path && e.name !== interp.path && e.name !== interp.elf.soname && e.name !== c.elf.interp) (aliases ??= new Set()).add(e.name);
    }
    for (const a of aliases ?? []) lines.push(`\t${p(a)} => ${pp(interp.path)}`);
    lines.push(`\t${pp(interp.path)}`);
  }
  return lines.join('\n');
}

export function formatTree(c: Closure): string {
  const lines: string[] = [];
  const head = c.interpreter ? ` (interpreter ${p(c.interpreter.path)})` : c.elf.interp ? ` (interpreter ${p(c.elf.interp)}: not found)` : ` (${c.kind})`;
  lines.push(`${p(c.file.path)}${head}`);
  const children = new Map<string, { name: string; to: string | null }[]>();
  for (const e of c.edges) {
    let l = children.get(e.from);
    if (!l) children.set(e.from, (l = []));
    l.push(e);
  }
  const shown = new Set<string>([c.file.path]);
  const walk = (from: string, depth: number) => {
    for (const e of children.get(from) ?? []) {
      const pad = '    '.repeat(depth);
      if (e.to === null) {
        lines.push(`${pad}${p(e.name)} => not found`);
        continue;
      }
      const first = !shown.has(e.to);
      const isInterp = c.interpreter && e.to === c.interpreter.path;
      lines.push(`${pad}${p(e.name)} => ${p(e.to)}${isInterp ? ' (interpreter)' : first ? '' : ' (already loaded)'}`);
      if (first) {
        shown.add(e.to);
        walk(e.to, depth + 1);
      }
    }
  };
  walk(c.file.path, 1);
  return lines.join('\n');
}

export function closureJson(c: Closure): unknown {
  const elfSummary = (e: Closure['elf']) => ({
    class: e.elfClass,
    endian: e.littleEndian ? 'little' : 'big',
    machine: e.machine,
    kind: e.kind,
    soname: e.soname,
    needed: e.needed,
    rpath: e.rpath,
    runpath: e.runpath,
    nodeflib: (e.flags1 & 0x800) !== 0,
    versionNeeds: e.versionNeeds,
    abiTag: e.abiTag,
  });
  return {
    file: c.file.path,
    realPath: c.file.realPath,
    links: c.file.links,
    kind: c.kind,
    platform: c.platform ? formatPlatform(c.platform) : null,
    flavour: c.flavour,
    elf: elfSummary(c.elf),
    interpreter: c.interpreter ? { path: c.interpreter.path, realPath: c.interpreter.realPath, links: c.interpreter.links } : null,
    libraries: c.libraries.map((l) => ({
      name: l.name,
      path: l.path,
      realPath: l.realPath,
      imagePath: l.imagePath,
      links: l.links,
      neededBy: l.neededBy,
      variants: l.variants.map((v) => v.path),
      elf: elfSummary(l.elf),
    })),
    notFound: c.notFound,
    warnings: c.warnings,
  };
}
