import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { BuildResult } from '../builder/build-image.js';
import { BuildSpec, isoTime } from '../builder/spec.js';
import { RootFs } from '../elf/rootfs.js';
import { Resolver } from '../elf/resolve.js';
import { Referrer, layoutReferrers, makeArtifact, readLayoutBlob } from '../oci/artifact.js';
import { Image } from '../oci/image.js';
import { parsePlatform } from '../oci/platform.js';
import { DirStore, LayoutStore, TarStore } from '../oci/store.js';
import { unpackImage } from '../oci/unpack.js';
import { DpkgDatabase, readOsRelease } from '../packages/dpkg.js';
import { Inventory, PathEdge, takeInventory } from '../packages/inventory.js';
import { SBOM_MEDIA_TYPE, sbomDocument, SbomFormat } from '../packages/sbom-documents.js';
import { UserError } from './errors.js';
import type { SbomArgs } from './options.js';
import { VERSION } from './version.js';
import type { Log } from '../log.js';
import { LocalImageRef } from '../refs/image-ref.js';
import { imageRefArg } from './refs.js';

const TOOL = { name: 'ocislim', version: VERSION };

/**
 * The name an SBOM gives the image, from the image itself so that every copy of it (layout, archive, registry)
 * gets the same document: its org.opencontainers.image.title label, else its entrypoint's file name.
 */
export function sbomName(img: Image): string {
  const c = img.config.config;
  const title = c.Labels?.['org.opencontainers.image.title'];
  if (title) return title;
  const argv0 = (c.Entrypoint ?? c.Cmd ?? [])[0];
  return argv0 ? basename(argv0) : 'image';
}

function subjectOf(img: Image) {
  return { mediaType: img.manifest.mediaType, digest: img.digest, size: img.manifestBytes.length };
}

/** The document of a build (--sbom) and the artifact that attaches it to the image. */
export function buildSbom(result: BuildResult, spec: BuildSpec, format: SbomFormat): { format: SbomFormat; document: Buffer; artifact: Referrer } {
  const created = isoTime(spec.epoch);
  const document = sbomDocument(format, result.inventory!, { name: sbomName(result.image), digest: result.image.digest, created, tool: TOOL });
  const artifact = makeArtifact(subjectOf(result.image), SBOM_MEDIA_TYPE[format], document, { 'org.opencontainers.image.created': created }, `sbom.${format}.json`);
  return { format, document, artifact };
}

const SBOM_TYPES = new Set(Object.values(SBOM_MEDIA_TYPE));

/** An attached SBOM in a local layout or archive (an index.json artifact whose subject is the image). */
function localAttached(store: LayoutStore, img: Image, type?: string): Buffer | null {
  for (const r of layoutReferrers(store, img.digest, type)) {
    if (!SBOM_TYPES.has(r.descriptor.artifactType ?? '')) continue;
    const layer = r.manifest.layers?.[0];
    if (layer) return readLayoutBlob(store, layer);
  }
  return null;
}

/**
 * A document built from the image's own files: the distroless package records (status.d) it carries, every file
 * with its checksums, licenses from copyright files it ships, dependencies from its entrypoint's closure.
 */
export async function sbomFromImage(img: Image, format: SbomFormat, note: (s: string) => void): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'ocislim-sbom-'));
  try {
    await unpackImage(img, dir);
    const fs = new RootFs(dir);
    const db: DpkgDatabase | null = DpkgDatabase.open(fs, 'the image');
    if (!db) note('the image has no package records (/var/lib/dpkg): the SBOM lists files only');
    const entries: { path: string; type: 'file' | 'symlink'; mode: number; uid: number; gid: number; source?: string; linkname?: string }[] = [];
    const walk = (d: string) => {
      for (const name of readdirSync(join(dir, d)).sort()) {
        const p = posix.join(d, name);
        const st = lstatSync(join(dir, p));
        if (st.isDirectory()) walk(p);
        else if (st.isFile()) entries.push({ path: p, type: 'file', mode: st.mode, uid: 0, gid: 0, source: join(dir, p) });
        else if (st.isSymbolicLink()) entries.push({ path: p, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: readlinkSync(join(dir, p)) });
      }
    };
    walk('/');
    const edges: PathEdge[] = [];
    const c = img.config.config;
    const argv0 = (c.Entrypoint ?? c.Cmd ?? [])[0];
    if (argv0) {
      const resolver = new Resolver(dir);
      const program = resolver.fs.which(argv0, (c.Env ?? []).find((e) => e.startsWith('PATH='))?.slice(5));
      if (program) {
        try {
          edges.push(...resolver.resolve(program).edges);
        } catch {
          /* not an ELF program */
        }
      }
    }
    const inv: Inventory = takeInventory(entries, fs, db, edges, readOsRelease(fs), { allPackages: true });
    const created = img.config.created ?? isoTime(0);
    return sbomDocument(format, inv, { name: sbomName(img), digest: img.digest, created, tool: TOOL });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


/** `ocislim sbom IMAGE`: the attached SBOM when there is one, else one built from the image's package records. */
export async function sbomCommand(a: SbomArgs, out: (s: string) => void, log: Log): Promise<number> {
  const format = a.format as SbomFormat | undefined;
  const type = format ? SBOM_MEDIA_TYPE[format] : undefined;
  const platform = a.platform ? parsePlatform(a.platform) : undefined;
  const fromFiles = (i: Image) => {
    log.info(`no SBOM attached to ${i.digest}: building one from the image's files`);
    return sbomFromImage(i, format ?? 'spdx', (s) => log.info(s));
  };
  const ref = imageRefArg(a.image, 'IMAGE');
  let doc: Buffer | null = null;
  if (ref instanceof LocalImageRef) {
    const img: Image = await ref.read({ platform });
    if (ref.kind !== 'docker-archive') {
      const store = ref.kind === 'oci' ? new DirStore(ref.location.path) : new TarStore(ref.location.path);
      doc = localAttached(store, img, type);
      if (doc) log.info(`attached SBOM of ${ref} (${img.digest})`);
    }
    doc ??= await fromFiles(img);
  } else {
    const { registryAccess } = await import('./registry.js');
    const { listReferrers } = await import('../registry/referrers.js');
    const { sha256 } = await import('../oci/digest.js');
    const access = registryAccess(a, log);
    try {
      const r = ref.reference;
      const client = access.pool.get(r.registry);
      const img = await ref.read({ ...access, platform });
      const refs = (await listReferrers(client, r.repository, img.digest, type)).filter((d) => SBOM_TYPES.has(d.artifactType ?? ''));
      if (refs.length) {
        const m = await client.getManifest(r.repository, refs[0].digest);
        const layer = (JSON.parse(m.bytes.toString('utf8')) as { layers?: { digest: string; size: number }[] }).layers?.[0];
        if (layer) {
          const chunks: Buffer[] = [];
          for await (const c of client.blobBytes(r.repository, layer.digest)) chunks.push(c);
          doc = Buffer.concat(chunks);
          if (sha256(doc) !== layer.digest) throw new UserError(`${a.image}: the attached SBOM ${layer.digest} does not match its digest`);
          log.info(`attached SBOM ${refs[0].digest} of ${img.digest}`);
        }
      }
      // Layers stream from the registry: build the document while the clients are open.
      doc ??= await fromFiles(img);
    } finally {
      await access.pool.close();
    }
  }
  out(doc.toString('utf8').replace(/\n$/, ''));
  return 0;
}
