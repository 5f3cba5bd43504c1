import { createHash } from 'node:crypto';
import { Inventory, InventoryFile, InventoryPackage } from './inventory.js';

export type SbomFormat = 'spdx' | 'cyclonedx';
export const SBOM_FORMATS: SbomFormat[] = ['spdx', 'cyclonedx'];

/** Media types of the documents (IANA), also the artifactType of an attached SBOM. */
export const SBOM_MEDIA_TYPE: Record<SbomFormat, string> = {
  spdx: 'application/spdx+json',
  cyclonedx: 'application/vnd.cyclonedx+json',
};

export interface SbomSubject {
  /** The image's name (a repository, or a local reference). */
  name: string;
  /** The image manifest's digest. */
  digest: string;
  /** ISO time of the document (the build's SOURCE_DATE_EPOCH, so documents are reproducible). */
  created: string;
  tool: { name: string; version: string };
}

/** percent-encoding for purl components: ":" stays, "+" becomes %2B (purl-spec "Character encoding"). */
function purlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ':');
}

/** The distribution namespace and qualifier: os-release ID and ID-VERSION_ID (debian, debian-12). */
function distro(inv: Inventory): { namespace: string; qualifier?: string } {
  const id = (inv.os?.ID ?? 'debian').toLowerCase();
  const v = inv.os?.VERSION_ID;
  return { namespace: id, qualifier: inv.os?.ID && v ? `${id}-${v}` : undefined };
}

/** pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12&upstream=SOURCE (qualifiers sorted). */
export function debPurl(p: InventoryPackage, inv: Inventory): string {
  const d = distro(inv);
  const q: [string, string][] = [['arch', p.pkg.arch]];
  if (d.qualifier) q.push(['distro', d.qualifier]);
  if (p.pkg.source !== p.pkg.name || p.pkg.sourceVersion !== p.pkg.version) {
    q.push(['upstream', p.pkg.sourceVersion !== p.pkg.version ? `${p.pkg.source}@${p.pkg.sourceVersion}` : p.pkg.source]);
  }
  return `pkg:deb/${purlEncode(d.namespace)}/${purlEncode(p.pkg.name.toLowerCase())}@${purlEncode(p.pkg.version)}?${q.map(([k, v]) => `${k}=${purlEncode(v)}`).join('&')}`;
}

/** pkg:oci/NAME@sha256%3A… for the image itself. */
function imagePurl(s: SbomSubject): string {
  const last = s.name.replace(/[@:].*$/, '').split('/').pop() || 'image';
  return `pkg:oci/${purlEncode(last.toLowerCase())}@${purlEncode(s.digest)}`;
}

/** A name-based (version 5 style) UUID from the image digest: the same image gives the same document. */
function uuidFor(seed: string): string {
  const h = createHash('sha1').update(seed).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

function hashedFiles(files: InventoryFile[]): InventoryFile[] {
  return files.filter((f) => f.sha256 && (f.type === 'file' || f.type === 'hardlink'));
}

/** SPDXRef-… ids: letters, digits, "." and "-" only. */
function spdxId(kind: string, s: string): string {
  return `SPDXRef-${kind}-${s.replace(/[^A-Za-z0-9.-]+/g, '-')}`;
}

/** The source version split as Trivy records it: epoch, upstream version, Debian revision. */
function splitVersion(v: string): { epoch?: string; version: string; release?: string } {
  const e = /^(\d+):(.*)$/.exec(v);
  const rest = e ? e[2] : v;
  const i = rest.lastIndexOf('-');
  return { epoch: e && e[1] !== '0' ? e[1] : undefined, version: i > 0 ? rest.slice(0, i) : rest, release: i > 0 ? rest.slice(i + 1) : undefined };
}

/** An SPDX 2.3 JSON document: the image, the OS, each package (purl, license, files with checksums), relationships. */
export function spdxDocument(inv: Inventory, s: SbomSubject): object {
  const fileIds = new Map<InventoryFile, string>();
  const used = new Set<string>();
  const idFor = (f: InventoryFile) => {
    const base = spdxId('File', f.path.slice(1));
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}-${n}`;
    used.add(id);
    fileIds.set(f, id);
    return id;
  };
  const pkgId = (p: InventoryPackage) => spdxId('Package-deb', `${p.pkg.name}-${p.pkg.arch}`);
  const imageId = 'SPDXRef-Image';
  const extracted = new Map<string, string>();
  const packages: object[] = [
    {
      SPDXID: imageId,
      name: s.name,
      versionInfo: s.digest,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'CONTAINER',
      checksums: [{ algorithm: 'SHA256', checksumValue: s.digest.replace(/^sha256:/, '') }],
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: imagePurl(s) }],
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
    },
  ];
  const relationships: object[] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId }];
  if (inv.os?.ID) {
    packages.push({
      SPDXID: 'SPDXRef-OperatingSystem',
      name: inv.os.ID,
      versionInfo: inv.os.VERSION_ID ?? 'NOASSERTION',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'OPERATING_SYSTEM',
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
    });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-OperatingSystem' });
  }
  const files: object[] = [];
  const fileObj = (f: InventoryFile) => ({
    SPDXID: idFor(f),
    fileName: '.' + f.path,
    checksums: [
      { algorithm: 'SHA1', checksumValue: f.sha1! },
      { algorithm: 'SHA256', checksumValue: f.sha256! },
      { algorithm: 'MD5', checksumValue: f.md5! },
    ],
    licenseConcluded: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
  });
  for (const p of inv.packages) {
    const id = pkgId(p);
    const maint = p.pkg.fields.Maintainer;
    for (const [ref, text] of p.license?.refs ?? []) extracted.set(ref, text);
    packages.push({
      SPDXID: id,
      name: p.pkg.name,
      versionInfo: p.pkg.version,
      supplier: maint ? `Organization: ${maint}` : 'NOASSERTION',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      sourceInfo: `built package from: ${p.pkg.source} ${p.pkg.sourceVersion}`,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: p.license?.expression ?? 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: debPurl(p, inv) }],
    });
    relationships.push({ spdxElementId: inv.os?.ID ? 'SPDXRef-OperatingSystem' : imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
    for (const f of hashedFiles(p.files)) {
      files.push(fileObj(f));
      relationships.push({ spdxElementId: id, relationshipType: 'CONTAINS', relatedSpdxElement: fileIds.get(f) });
    }
  }
  for (const p of inv.packages) {
    for (const d of p.dependsOn) {
      const q = inv.packages.find((x) => x.key === d);
      if (q) relationships.push({ spdxElementId: pkgId(p), relationshipType: 'DEPENDS_ON', relatedSpdxElement: pkgId(q) });
    }
  }
  for (const f of hashedFiles(inv.unowned)) {
    files.push(fileObj(f));
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: fileIds.get(f) });
  }
  const doc: Record<string, unknown> = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: s.name,
    documentNamespace: `https://ocislim.invalid/spdx/${purlEncode(s.name)}/${s.digest.replace(':', '-')}`,
    creationInfo: {
      created: s.created,
      creators: [`Tool: ${s.tool.name}-${s.tool.version}`],
      ...(inv.database ? {} : { comment: 'The root filesystem has no dpkg database: this document lists files only.' }),
    },
    packages,
    files,
    relationships,
  };
  if (extracted.size) {
    doc.hasExtractedLicensingInfos = [...extracted].sort(([a], [b]) => (a < b ? -1 : 1)).map(([licenseId, extractedText]) => ({ licenseId, extractedText }));
  }
  return doc;
}

/** A CycloneDX 1.6 JSON document: the image as the root component, the OS, packages with their files nested, dependencies. */
export function cyclonedxDocument(inv: Inventory, s: SbomSubject): object {
  const fileComp = (f: InventoryFile) => ({
    type: 'file',
    'bom-ref': `file:${f.path}`,
    name: f.path,
    hashes: [
      { alg: 'SHA-1', content: f.sha1 },
      { alg: 'SHA-256', content: f.sha256 },
      { alg: 'MD5', content: f.md5 },
    ],
  });
  const components: object[] = [];
  const dependencies: { ref: string; dependsOn: string[] }[] = [];
  const pkgRef = (p: InventoryPackage) => `deb:${p.key}`;
  const top: string[] = [];
  if (inv.os?.ID) {
    components.push({ type: 'operating-system', 'bom-ref': 'os', name: inv.os.ID, ...(inv.os.VERSION_ID ? { version: inv.os.VERSION_ID } : {}) });
    top.push('os');
  }
  for (const p of inv.packages) {
    const v = splitVersion(p.pkg.sourceVersion);
    const props = [
      { name: 'aquasecurity:trivy:SrcName', value: p.pkg.source },
      { name: 'aquasecurity:trivy:SrcVersion', value: v.version },
      ...(v.release ? [{ name: 'aquasecurity:trivy:SrcRelease', value: v.release }] : []),
      ...(v.epoch ? [{ name: 'aquasecurity:trivy:SrcEpoch', value: v.epoch }] : []),
    ];
    const files = hashedFiles(p.files);
    components.push({
      type: 'library',
      'bom-ref': pkgRef(p),
      ...(p.pkg.fields.Maintainer ? { supplier: { name: p.pkg.fields.Maintainer } } : {}),
      name: p.pkg.name,
      version: p.pkg.version,
      ...(p.license ? { licenses: [{ expression: p.license.expression }] } : {}),
      purl: debPurl(p, inv),
      properties: props,
      ...(files.length ? { components: files.map(fileComp) } : {}),
    });
    dependencies.push({ ref: pkgRef(p), dependsOn: p.dependsOn.map((k) => `deb:${k}`) });
  }
  if (inv.os?.ID) dependencies.push({ ref: 'os', dependsOn: inv.packages.map(pkgRef) });
  else top.push(...inv.packages.map(pkgRef));
  for (const f of hashedFiles(inv.unowned)) components.push(fileComp(f));
  dependencies.unshift({ ref: 'image', dependsOn: top });
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${uuidFor(`${s.digest} cyclonedx`)}`,
    version: 1,
    metadata: {
      timestamp: s.created,
      tools: { components: [{ type: 'application', name: s.tool.name, version: s.tool.version }] },
      component: {
        type: 'container',
        'bom-ref': 'image',
        name: s.name,
        version: s.digest,
        hashes: [{ alg: 'SHA-256', content: s.digest.replace(/^sha256:/, '') }],
        purl: imagePurl(s),
      },
      ...(inv.database ? {} : { properties: [{ name: 'ocislim:note', value: 'The root filesystem has no dpkg database: this document lists files only.' }] }),
    },
    components,
    dependencies,
  };
}

/** The document as the bytes written and attached: JSON with two-space indentation and a final newline. */
export function sbomDocument(format: SbomFormat, inv: Inventory, s: SbomSubject): Buffer {
  const doc = format === 'spdx' ? spdxDocument(inv, s) : cyclonedxDocument(inv, s);
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}
