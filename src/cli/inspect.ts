import { formatPlatform } from '../oci/platform.js';
import { Image, platformOfConfig } from '../oci/image.js';
import { listLayer } from '../oci/files.js';
import type { Entry } from '../oci/entry.js';
import { localRefArg } from './refs.js';
import { ImageIndex, isImageIndex } from '../oci/index.js';
import { platformFlag } from './platform.js';
import { UserError } from './errors.js';
import { artifactJson, imageJson } from './result.js';
import { humanSize, printable } from './format.js';
import { readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { Resolver } from '../elf/resolve.js';
import { Explanation, explainFiles, formatExplain } from '../builder/explain.js';
import { unpackImage } from '../oci/unpack.js';

import type { InspectArgs } from './options.js';
import { ImagePackage, imagePackages } from '../packages/image-packages.js';
import { withTempDir } from '../temp-paths.js';

/** Unpacks the image and explains its files from the closure of its entrypoint, computed inside it. */
function explainImage(img: Image): Promise<Explanation> {
  return withTempDir('ocislim-inspect-', async (dir) => {
    await unpackImage(img, dir);
    const c = img.config.config;
    const argv0 = (c.Entrypoint ?? c.Cmd ?? [])[0];
    const closures = [];
    const resolver = new Resolver(dir);
    let program: string | undefined;
    if (argv0) {
      program = resolver.fs.which(argv0, (c.Env ?? []).find((e) => e.startsWith('PATH='))?.slice(5)) ?? undefined;
      if (program) {
        try {
          closures.push(resolver.resolve(program));
        } catch {
          /* not an ELF program: nothing to attribute */
        }
      }
    }
    const files: { path: string; size: number; reason: string }[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(join(dir, d), { withFileTypes: true })) {
        const p = posix.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files.push({ path: p, size: statSync(join(dir, p)).size, reason: program && resolver.fs.locate(program)?.realPath === p ? 'user' : 'other files' });
      }
    };
    walk('/');
    return explainFiles(files, closures);
  });
}

/** A multi-platform image: its index and one line per platform. */
function inspectIndex(idx: ImageIndex, json: boolean | undefined, out: (s: string) => void): number {
  if (json) {
    out(JSON.stringify(artifactJson(idx), null, 2));
    return 0;
  }
  const size = (img: Image) => img.layers.reduce((a, l) => a + l.descriptor.size, 0) + img.configBytes.length;
  const rows = idx.images.map((img) => ({ platform: formatPlatform(platformOfConfig(img.config)), digest: img.digest, size: size(img) }));
  const lines = [`Index:       ${idx.digest}`, `Media type:  ${idx.mediaType}`, `Platforms:   ${rows.length} (inspect one with --platform)`];
  const w = Math.max(...rows.map((r) => r.platform.length));
  for (const r of rows) lines.push(`  ${r.platform.padEnd(w)}  ${r.digest}  ${humanSize(r.size).padStart(10)}`);
  out(lines.join('\n'));
  return 0;
}

/** `ocislim inspect`: platform, config, layers and (with --files) every file; a multi-platform image lists its platforms. */
export async function inspectCommand(args: InspectArgs, out: (s: string) => void): Promise<number> {
  const p = platformFlag(args.platform);
  const a = await localRefArg(args.image, 'inspect').readArtifact({ platform: p === 'all' ? undefined : p });
  if (isImageIndex(a)) {
    if (args.files || args.explain) throw new UserError(`${args.image} is a multi-platform image (${a.images.map((i) => formatPlatform(platformOfConfig(i.config))).join(', ')}): choose one with --platform for --files or --explain`);
    return inspectIndex(a, args.json, out);
  }
  const img = a;
  const files: Entry[][] = [];
  if (args.files) for (const l of img.layers) files.push(await listLayer(l));
  const history = (img.config.history ?? []).filter((h) => !h.empty_layer);
  const explained = args.explain ? await explainImage(img) : null;
  const packages: ImagePackage[] = await imagePackages(img, args.image);
  if (args.json) {
    out(JSON.stringify(imageJson(img, { files: args.files ? files : undefined, explain: explained ?? undefined, packages: args.packages ? packages.map(({ name, version, arch, source }) => ({ name, version, arch, source })) : undefined }), null, 2));
    return 0;
  }
  const c = img.config.config;
  const lines = [
    `Image:       ${img.digest}`,
    `Media type:  ${img.manifest.mediaType}`,
    `Platform:    ${formatPlatform(platformOfConfig(img.config))}`,
    `Created:     ${img.config.created ?? '(unset)'}`,
  ];
  const kv = (k: string, v: unknown) => v !== undefined && lines.push(`${(k + ':').padEnd(13)}${typeof v === 'string' ? printable(v) : JSON.stringify(v)}`);
  kv('Entrypoint', c.Entrypoint);
  kv('Cmd', c.Cmd);
  kv('Env', c.Env);
  kv('Ports', c.ExposedPorts && Object.keys(c.ExposedPorts).join(' '));
  kv('WorkingDir', c.WorkingDir);
  kv('User', c.User);
  kv('Labels', c.Labels);
  kv('Volumes', c.Volumes && Object.keys(c.Volumes).join(' '));
  kv('StopSignal', c.StopSignal);
  const total = img.layers.reduce((a, l) => a + l.descriptor.size, 0);
  lines.push(`Layers:      ${img.layers.length}, ${humanSize(total)} compressed`);
  img.layers.forEach((l, i) => {
    lines.push(`  ${String(i + 1).padStart(2)}  ${l.descriptor.digest.slice(0, 19)}  ${humanSize(l.descriptor.size).padStart(10)}  ${printable(history[i]?.created_by ?? '')}`);
    if (args.files) {
      for (const f of files[i]) {
        const size = f.type === 'file' ? humanSize(f.size ?? 0) : f.type;
        lines.push(`        ${size.padStart(10)}  ${printable(f.path)}${f.linkname ? ` -> ${printable(f.linkname)}` : ''}`);
      }
    }
  });
  if (packages.length) {
    lines.push(`Packages:    ${packages.length} (Debian package records in /var/lib/dpkg)`);
    const w = Math.max(...packages.map((p) => p.name.length));
    for (const p of packages) lines.push(`  ${p.name.padEnd(w)}  ${p.version}  ${p.arch}`);
  }
  if (explained) lines.push(formatExplain(explained));
  out(lines.join('\n'));
  return 0;
}

