import { readFileSync } from 'node:fs';
import { RootFs } from '../elf/rootfs.js';
import { LayerEntry } from '../oci/layer.js';
import { cmp, Inventory, InventoryPackage } from './inventory.js';

export const STATUS_D = '/var/lib/dpkg/status.d';

/** The status.d file name of a package: NAME, or NAME:ARCH when the image holds the name for two architectures. */
function fileNames(inv: Inventory): Map<InventoryPackage, string> {
  const count = new Map<string, number>();
  for (const p of inv.packages) count.set(p.pkg.name, (count.get(p.pkg.name) ?? 0) + 1);
  return new Map(inv.packages.map((p) => [p, count.get(p.pkg.name)! > 1 ? p.key : p.pkg.name]));
}

/** The stanza as dpkg has it, minus Conffiles (it names files the image does not hold). */
export function statusStanza(p: InventoryPackage): string {
  const out: string[] = [];
  let skip = false;
  for (const line of p.pkg.stanza.split('\n')) {
    if (line === '') continue;
    if (line[0] !== ' ' && line[0] !== '\t') skip = /^conffiles:/i.test(line);
    if (!skip) out.push(line);
  }
  return out.join('\n') + '\n';
}

/** md5sums of the files the image ships for the package: "MD5  path" (no leading "/"), bytewise sorted. */
export function shippedMd5sums(p: InventoryPackage): string {
  return p.files
    .filter((f) => f.md5 && (f.type === 'file' || f.type === 'hardlink'))
    .sort((a, b) => cmp(a.path, b.path))
    .map((f) => `${f.md5}  ${f.path.slice(1)}\n`)
    .join('');
}

/**
 * The distroless convention (which Trivy, Grype and Syft read): /var/lib/dpkg/status.d/NAME holding the package's
 * status stanza and NAME.md5sums listing only the files shipped, for each package that contributes files. With
 * `osFiles`, /etc/os-release and /etc/debian_version from the root too (scanners name the distribution from them),
 * unless `present` says the image has them already.
 */
export function statusDEntries(inv: Inventory, fs: RootFs, opts: { osFiles: boolean; present: (path: string) => boolean }): LayerEntry[] {
  const out: LayerEntry[] = [];
  const gen = (path: string, content: string, reason: string): LayerEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from(content), reason });
  const names = fileNames(inv);
  for (const p of inv.packages) {
    const name = names.get(p)!;
    out.push(gen(`${STATUS_D}/${name}`, statusStanza(p), `package record of ${p.key} (SBOM)`));
    const sums = shippedMd5sums(p);
    if (sums) out.push(gen(`${STATUS_D}/${name}.md5sums`, sums, `files shipped from ${p.key} (SBOM)`));
  }
  if (opts.osFiles && inv.packages.length) {
    for (const path of ['/etc/os-release', '/etc/debian_version']) {
      if (opts.present(path)) continue;
      const loc = fs.stat(path);
      if (!loc?.stats.isFile()) continue;
      out.push(gen(path, readFileSync(fs.hostReal(loc.located), 'utf8'), 'names the distribution for scanners (SBOM)'));
    }
  }
  return out;
}
