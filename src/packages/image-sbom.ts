import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { Resolver } from '../elf/resolve.js';
import { RootFs } from '../elf/rootfs.js';
import type { Image } from '../oci/image.js';
import { unpackImage } from '../oci/unpack.js';
import { VERSION } from '../version.js';
import { DpkgDatabase, readOsRelease } from './dpkg.js';
import { Inventory, PathEdge, takeInventory } from './inventory.js';
import { sbomDocument, SbomFormat } from './sbom-documents.js';
import { withTempDir } from '../temp-paths.js';

/** The SBOM's creator tool. */
export const SBOM_TOOL = { name: 'ocislim', version: VERSION };

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

/**
 * A document built from the image's own files: the distroless package records (status.d) it carries, every file
 * with its checksums, licenses from copyright files it ships, dependencies from its entrypoint's closure. `note`
 * hears when the image has no package records.
 */
export function sbomFromImage(img: Image, format: SbomFormat, note: (s: string) => void = () => {}): Promise<Buffer> {
  return withTempDir('ocislim-sbom-', async (dir) => {
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
    const created = img.config.created ?? '1970-01-01T00:00:00Z';
    return sbomDocument(format, inv, { name: sbomName(img), digest: img.digest, created, tool: SBOM_TOOL });
  });
}
