import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import cdx from '@cyclonedx/cyclonedx-library';
import { ocislim, ocislimAsync } from './helpers/cli.js';
import { skopeo, umociUnpack } from './helpers/container.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { removeDir, run, sh, tempDir } from './helpers/sh.js';
import { debianSysroot } from './helpers/sysroot.js';

let dir: string;
before(() => {
  dir = tempDir('ocislim-sbom-');
});
after(() => removeDir(dir));

type Spdx = {
  spdxVersion: string;
  dataLicense: string;
  SPDXID: string;
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: { SPDXID: string; name: string; versionInfo?: string; downloadLocation: string; filesAnalyzed?: boolean; packageVerificationCode?: unknown; externalRefs?: { referenceType: string; referenceLocator: string }[]; licenseDeclared?: string }[];
  files: { SPDXID: string; fileName: string; checksums: { algorithm: string; checksumValue: string }[] }[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
  hasExtractedLicensingInfos?: { licenseId: string; extractedText: string }[];
};

/** dpkg-query's version of each installed name:arch. */
function dpkgVersions(): Map<string, string> {
  return new Map(
    sh(`dpkg-query -W -f '\${Package}:\${Architecture} \${Version}\\n'`)
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );
}

/** The packages dpkg -S names for the files ldd lists (trying the other merged-/usr spelling when needed). */
function lddOwners(program: string): Set<string> {
  const owners = new Set<string>();
  for (const p of sh(`ldd ${program} | grep -o '/[^ ]*'`).split('\n').filter(Boolean)) {
    const real = realpathSync(p);
    const tries = [p, real, real.replace(/^\/usr/, ''), p.replace(/^\/usr/, ''), '/usr' + p];
    const hit = tries.map((t) => run('dpkg', ['-S', t], { env: { LC_ALL: 'C' } })).find((r) => r.status === 0 && !r.stdout.startsWith('diversion'));
    assert.ok(hit, `dpkg -S ${p}`);
    owners.add(hit.stdout.split(':')[0]);
  }
  return owners;
}

/** The SPDX 2.3 requirements of the spec text (chapters 6, 7, 11), which its JSON schema does not all enforce. */
function checkSpdx(d: Spdx): void {
  assert.equal(d.spdxVersion, 'SPDX-2.3');
  assert.equal(d.dataLicense, 'CC0-1.0');
  assert.equal(d.SPDXID, 'SPDXRef-DOCUMENT');
  assert.ok(d.name);
  assert.match(d.documentNamespace, /^[a-z]+:\/\/[^#\s]+$/, 'documentNamespace: an absolute URI without "#"');
  assert.match(d.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(d.creationInfo.creators.length && d.creationInfo.creators.every((c) => /^(Tool|Organization|Person): \S/.test(c)));
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  for (const p of d.packages) {
    assert.match(p.SPDXID, /^SPDXRef-[A-Za-z0-9.-]+$/);
    assert.ok(!ids.has(p.SPDXID), `duplicate ${p.SPDXID}`);
    ids.add(p.SPDXID);
    assert.ok(p.name, p.SPDXID);
    assert.ok(p.downloadLocation, p.SPDXID);
    // filesAnalyzed defaults to true, which then needs a verification code.
    assert.ok(p.filesAnalyzed === false || p.packageVerificationCode, `${p.SPDXID}: filesAnalyzed without packageVerificationCode`);
  }
  for (const f of d.files) {
    assert.match(f.SPDXID, /^SPDXRef-[A-Za-z0-9.-]+$/);
    assert.ok(!ids.has(f.SPDXID));
    ids.add(f.SPDXID);
    assert.ok(f.fileName.startsWith('./'));
    assert.ok(f.checksums.some((c) => c.algorithm === 'SHA1' && /^[0-9a-f]{40}$/.test(c.checksumValue)), 'a file must have a SHA1 checksum');
  }
  assert.ok(d.relationships.some((r) => r.spdxElementId === 'SPDXRef-DOCUMENT' && r.relationshipType === 'DESCRIBES'));
  for (const r of d.relationships) assert.ok(ids.has(r.spdxElementId) && ids.has(r.relatedSpdxElement), JSON.stringify(r));
  const refs = new Set((d.hasExtractedLicensingInfos ?? []).map((x) => x.licenseId));
  for (const p of d.packages) for (const m of (p.licenseDeclared ?? '').matchAll(/LicenseRef-[A-Za-z0-9.-]+/g)) assert.ok(refs.has(m[0]), `${m[0]} has no extracted licensing info`);
}

function purlOf(p: Spdx['packages'][number]): string | undefined {
  return p.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator;
}

describe('SBOM of the redis image', () => {
  let layout: string;
  let spdx: Spdx;
  let cyclonedx: string;
  before(() => {
    layout = join(dir, 'redis');
    const r = ocislim(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${layout}`, '--sbom', join(dir, 'redis.spdx.json')]);
    assert.equal(r.status, 0, r.stderr);
    spdx = JSON.parse(readFileSync(join(dir, 'redis.spdx.json'), 'utf8'));
    const c = ocislim(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${join(dir, 'redis-cdx')}`, '--sbom', join(dir, 'redis.cdx.json'), '--sbom-format', 'cyclonedx']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout, r.stdout, 'the document is not part of the image: same digest');
    cyclonedx = readFileSync(join(dir, 'redis.cdx.json'), 'utf8');
  });

  it('CycloneDX validates with @cyclonedx/cyclonedx-library, with unique refs and known dependencies', async () => {
    const errors = await new cdx.Validation.JsonStrictValidator(cdx.Spec.Version.v1dot6).validate(cyclonedx);
    assert.equal(errors, null, JSON.stringify(errors));
    const d = JSON.parse(cyclonedx);
    const refs: string[] = [d.metadata.component['bom-ref']];
    const walk = (cs: { 'bom-ref': string; components?: unknown[] }[]) => cs.forEach((c) => (refs.push(c['bom-ref']), walk((c.components ?? []) as typeof cs)));
    walk(d.components);
    assert.equal(new Set(refs).size, refs.length, 'bom-refs are unique');
    for (const dep of d.dependencies) for (const r of [dep.ref, ...dep.dependsOn]) assert.ok(refs.includes(r), r);
    assert.equal(d.metadata.component.type, 'container');
    assert.equal(d.metadata.component.version, run('cat', [join(dir, 'redis/index.json')]).stdout.match(/sha256:[0-9a-f]{64}/)![0]);
  });

  it('SPDX has every field SPDX 2.3 requires', () => checkSpdx(spdx));

  it('lists the packages dpkg -S names for what ldd finds, with the versions dpkg-query reports and their purls', () => {
    const versions = dpkgVersions();
    const debs = spdx.packages.filter((p) => purlOf(p)?.startsWith('pkg:deb/'));
    const names = new Set(debs.map((p) => p.name));
    for (const n of [...lddOwners('/usr/bin/redis-server'), 'libssl3', 'libsystemd0', 'libc6', 'redis-tools']) assert.ok(names.has(n.replace(/:.*/, '')), `${n} missing from ${[...names]}`);
    const id = sh('. /etc/os-release; echo $ID-$VERSION_ID').trim();
    for (const p of debs) {
      const purl = purlOf(p)!;
      const m = /^pkg:deb\/debian\/([^@]+)@([^?]+)\?arch=([^&]+)&distro=([^&]+)/.exec(purl);
      assert.ok(m, purl);
      assert.equal(decodeURIComponent(m[1]), p.name);
      assert.equal(m[4], id);
      assert.equal(decodeURIComponent(m[2]), p.versionInfo);
      assert.equal(p.versionInfo, versions.get(`${p.name}:${m[3]}`), `${p.name}: dpkg-query says ${versions.get(`${p.name}:${m[3]}`)}`);
    }
    // The image and its digest are the root; libssl3's license comes from its DEP-5 copyright file.
    assert.ok(spdx.relationships.some((r) => r.relationshipType === 'DESCRIBES' && r.relatedSpdxElement === 'SPDXRef-Image'));
    assert.match(spdx.packages.find((p) => p.name === 'libssl3')!.licenseDeclared!, /Apache-2\.0/);
    assert.equal(spdx.packages.find((p) => p.name === 'libc6')!.licenseDeclared, 'NOASSERTION', "libc6's copyright file is free text");
  });

  it('lists each package file with the sha256 of the file shipped, unowned files too, and which package needs which', () => {
    const ssl = realpathSync('/usr/lib/x86_64-linux-gnu/libssl.so.3');
    const f = spdx.files.find((x) => x.fileName.endsWith('/x86_64-linux-gnu/libssl.so.3'))!;
    assert.ok(f, 'libssl.so.3 is a file of the SBOM');
    assert.equal(f.checksums.find((c) => c.algorithm === 'SHA256')!.checksumValue, createHash('sha256').update(readFileSync(ssl)).digest('hex'));
    const pkgOf = (fileId: string) => spdx.relationships.find((r) => r.relationshipType === 'CONTAINS' && r.relatedSpdxElement === fileId)!.spdxElementId;
    assert.equal(pkgOf(f.SPDXID), 'SPDXRef-Package-deb-libssl3-amd64');
    const nss = spdx.files.find((x) => x.fileName === './etc/nsswitch.conf')!;
    assert.equal(pkgOf(nss.SPDXID), 'SPDXRef-Image', 'scaffolding belongs to no package');
    const dep = (a: string, b: string) => spdx.relationships.some((r) => r.relationshipType === 'DEPENDS_ON' && r.spdxElementId === `SPDXRef-Package-deb-${a}-amd64` && r.relatedSpdxElement === `SPDXRef-Package-deb-${b}-amd64`);
    assert.ok(dep('redis-tools', 'libssl3'), 'redis-check-rdb (redis-tools) needs libssl.so.3');
    assert.ok(dep('libsystemd0', 'libzstd1'));
    assert.ok(!dep('libzstd1', 'libssl3'));
  });

  it('puts distroless package records in the image: deb822 stanzas python3-debian parses, md5sums md5sum -c accepts', () => {
    const bundle = join(dir, 'redis-bundle');
    umociUnpack(`${layout}:latest`, bundle);
    const rootfs = join(bundle, 'rootfs');
    const statusD = join(rootfs, 'var/lib/dpkg/status.d');
    const names = readdirSync(statusD).filter((n) => !n.endsWith('.md5sums'));
    const parsed = JSON.parse(
      sh(`/usr/bin/python3 -c '
import json, sys, glob
from debian import deb822
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/*")):
    if f.endswith(".md5sums"): continue
    with open(f) as fh:
        paras = list(deb822.Deb822.iter_paragraphs(fh))
    assert len(paras) == 1, f
    out[paras[0]["Package"]] = [paras[0]["Version"], paras[0]["Architecture"], paras[0]["Status"]]
print(json.dumps(out))' ${statusD}`),
    ) as Record<string, [string, string, string]>;
    const versions = dpkgVersions();
    assert.deepEqual(Object.keys(parsed).sort(), names.sort());
    for (const [n, [v, a, s]] of Object.entries(parsed)) {
      assert.equal(v, versions.get(`${n}:${a}`), n);
      assert.equal(s, 'install ok installed');
    }
    assert.equal(sh(`grep-dctrl -n -s Version -X -F Package libssl3 ${statusD}/libssl3`).trim(), versions.get('libssl3:amd64'));
    // Every md5sums line names a file the image ships, with its content's md5.
    const check = sh(`cd ${rootfs} && md5sum -c var/lib/dpkg/status.d/*.md5sums`);
    assert.match(check, /x86_64-linux-gnu\/libssl\.so\.3: OK/);
    assert.doesNotMatch(check, /FAILED/);
    assert.ok(existsSync(join(rootfs, 'etc/os-release')) && existsSync(join(rootfs, 'etc/debian_version')), 'scanners read the distribution from these');
    const inspect = ocislim(['inspect', `oci:${layout}`]);
    assert.match(inspect.stdout, /Packages: +\d+ /);
    assert.match(inspect.stdout, new RegExp(`\\n  libssl3 +${versions.get('libssl3:amd64')!.replace(/[.+~]/g, '\\$&')}  amd64`));
  });

  it('is reproducible, and --no-sbom leaves the records out', () => {
    const again = ocislim(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${join(dir, 'redis-again')}`, '--sbom', join(dir, 'again.spdx.json')]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(readFileSync(join(dir, 'again.spdx.json'), 'utf8'), readFileSync(join(dir, 'redis.spdx.json'), 'utf8'));
    const plain = ocislim(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${join(dir, 'redis-plain')}`, '--no-sbom', '--json']);
    assert.equal(plain.status, 0, plain.stderr);
    const files = ocislim(['inspect', '--files', `oci:${join(dir, 'redis-plain')}`]).stdout;
    assert.doesNotMatch(files, /status\.d|os-release/);
    assert.doesNotMatch(ocislim(['inspect', `oci:${join(dir, 'redis-plain')}`]).stdout, /Packages:/);
  });

  it('recognises copies of packaged files (the classic ldd + tar recipe) by their md5, and nothing else', () => {
    const ctx = join(dir, 'classic');
    mkdirSync(join(ctx, 'rootfs/usr/bin'), { recursive: true });
    sh(
      `cp /usr/bin/redis-server rootfs/usr/bin/redis-server
       for f in $(ldd /usr/bin/redis-server | grep -o '/[^ ]*'); do mkdir -p rootfs$(dirname $f); cp -L $f rootfs$f; done
       echo 'not the packaged file' >> rootfs$(ldd /usr/bin/redis-server | grep -o '/[^ ]*liblzf[^ ]*')
       tar -C rootfs -czf rootfs.tar.gz . && rm -rf rootfs`,
      ctx,
    );
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD rootfs.tar.gz /\nCMD ["redis-server"]\n');
    const r = ocislim(['build', '-f', join(ctx, 'Dockerfile'), ctx, '-o', `oci:${join(dir, 'classic-oci')}`, '--no-verify']);
    assert.equal(r.status, 0, r.stderr);
    const pk = JSON.parse(ocislim(['inspect', '--json', '--packages', `oci:${join(dir, 'classic-oci')}`]).stdout).packages.map((p: { name: string }) => p.name);
    // cp -L copied the links' targets: redis-server is redis-tools' redis-check-rdb, libzstd.so.1 libzstd1's file.
    for (const n of ['libc6', 'libssl3', 'libsystemd0', 'libzstd1', 'redis-tools']) assert.ok(pk.includes(n), `${n} in ${pk}`);
    assert.ok(!pk.includes('liblzf1'), 'a modified file is not the package’s');
  });
});

describe('SBOM of a foreign sysroot that has a database', () => {
  it('arm64 openssl from .debs with distroless status.d records: packages, versions and arch=arm64 purls from the .debs', () => {
    const base = debianSysroot('arm64', ['libc6', 'libssl3', 'openssl']);
    const root = join(dir, 'arm64-root');
    sh(`cp -a '${base}' '${root}' && mkdir -p '${root}/var/lib/dpkg/status.d'`);
    // The records a distroless build writes: each .deb's control file, and its md5sums.
    const dl = join(dir, 'debs');
    mkdirSync(dl);
    sh('apt-get download libc6:arm64 libssl3:arm64 openssl:arm64', dl);
    const want = new Map<string, string>();
    for (const deb of readdirSync(dl)) {
      const name = sh(`dpkg-deb -f '${deb}' Package`, dl).trim();
      want.set(name, sh(`dpkg-deb -f '${deb}' Version`, dl).trim());
      sh(`dpkg-deb -f '${deb}' > '${root}/var/lib/dpkg/status.d/${name}' && dpkg-deb --ctrl-tarfile '${deb}' | tar -xO ./md5sums > '${root}/var/lib/dpkg/status.d/${name}.md5sums'`, dl);
    }
    const r = ocislim(['build', '--root', root, join(root, 'usr/bin/openssl'), '--platform', 'linux/arm64', '-o', `oci:${join(dir, 'arm64-oci')}`, '--sbom', join(dir, 'arm64.cdx.json'), '--sbom-format', 'cyclonedx']);
    assert.equal(r.status, 0, r.stderr);
    const d = JSON.parse(readFileSync(join(dir, 'arm64.cdx.json'), 'utf8'));
    const libs = new Map<string, { version: string; purl: string }>(d.components.filter((c: { type: string }) => c.type === 'library').map((c: { name: string; version: string; purl: string }) => [c.name, c]));
    assert.deepEqual([...libs.keys()].sort(), [...want.keys()].sort());
    for (const [n, v] of want) {
      assert.equal(libs.get(n)!.version, v, n);
      assert.match(libs.get(n)!.purl, /^pkg:deb\/debian\/[^?]+\?arch=arm64(&upstream=[^&]+)?$/, 'the sysroot has no os-release: no distro qualifier');
    }
    const pk = JSON.parse(ocislim(['inspect', '--json', '--packages', `oci:${join(dir, 'arm64-oci')}`]).stdout).packages;
    assert.deepEqual(pk.map((p: { name: string }) => p.name).sort(), [...want.keys()].sort());
  });
});

describe('SBOM of a multi-platform image', () => {
  it('one document and one referrer per platform image (--root PLATFORM=DIR), each found by ocislim sbom --platform', () => {
    const arm = debianSysroot('arm64', ['libc6', 'libssl3', 'openssl']);
    const layout = join(dir, 'multi');
    const r = ocislim(['build', '--root', 'linux/amd64=/', '--root', `linux/arm64=${arm}`, '/usr/bin/openssl', '-o', `oci:${layout}`, '--sbom', join(dir, 'multi.cdx.json'), '--sbom-format', 'cyclonedx']);
    assert.equal(r.status, 0, r.stderr);
    const amd = JSON.parse(readFileSync(join(dir, 'multi-linux-amd64.cdx.json'), 'utf8'));
    const a64 = JSON.parse(readFileSync(join(dir, 'multi-linux-arm64.cdx.json'), 'utf8'));
    assert.notEqual(amd.metadata.component.version, a64.metadata.component.version, 'each document names its own image');
    assert.ok(amd.components.some((c: { name: string; purl?: string }) => c.name === 'libssl3' && /arch=amd64/.test(c.purl!)));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const refs = index.manifests.filter((m: { artifactType?: string }) => m.artifactType === 'application/vnd.cyclonedx+json');
    assert.equal(refs.length, 2);
    for (const [p, doc] of [['linux/amd64', amd], ['linux/arm64', a64]] as const) {
      const s = ocislim(['sbom', `oci:${layout}`, '--platform', p]);
      assert.equal(s.status, 0, s.stderr);
      assert.equal(JSON.parse(s.stdout).metadata.component.version, doc.metadata.component.version, p);
    }
  });
});

describe('SBOM edge cases', () => {
  it('a root without a dpkg database: a note, and a document of files only', () => {
    const root = join(dir, 'nodb');
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
    const r = ocislim(['build', '--root', root, join(root, 'bin/busybox'), '-o', `oci:${join(dir, 'nodb-oci')}`, '--sbom', join(dir, 'nodb.json'), '--sbom-format', 'cyclonedx']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /no dpkg database in .*: the SBOM lists files only/);
    const d = JSON.parse(readFileSync(join(dir, 'nodb.json'), 'utf8'));
    assert.deepEqual(
      d.components.map((c: { name: string }) => c.name),
      ['/bin/busybox'],
    );
    assert.equal(d.components[0].hashes.find((h: { alg: string }) => h.alg === 'SHA-256').content, createHash('sha256').update(readFileSync('/bin/busybox')).digest('hex'));
  });

  it('an unknown --sbom-format is a usage error; a broken dpkg database a one-line error naming the line', () => {
    const u = ocislim(['build', '/usr/bin/redis-server', '-o', `oci:${join(dir, 'x')}`, '--sbom', join(dir, 'x.json'), '--sbom-format', 'swid']);
    assert.equal(u.status, 2);
    assert.match(u.stderr, /sbom-format/);
    assert.ok(!existsSync(join(dir, 'x')) && !existsSync(join(dir, 'x.json')));
    for (const args of [['--sbom'], ['--sbom-format', 'spdx']]) {
      const e = ocislim(['build', '/usr/bin/redis-server', '-o', `oci:${join(dir, 'x')}`, ...args]);
      assert.equal(e.status, 2, e.stderr);
      assert.match(e.stderr, /^ocislim: --sbom/);
      assert.ok(!existsSync(join(dir, 'x')));
    }
    const root = join(dir, 'brokendb');
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), 'Package: a\nVersion: 1\nArchitecture: all\nthis is not a field\n');
    writeFileSync(join(root, 'hello.txt'), 'hi\n');
    const b = ocislim(['build', '--root', root, join(root, 'hello.txt'), '-o', `oci:${join(dir, 'y')}`]);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /^ocislim: dpkg database: .*var\/lib\/dpkg\/status:4: expected "Field: value"/m);
    assert.equal(b.stderr.trim().split('\n').filter((l) => !/^ocislim: (added|note)/.test(l)).length, 1, b.stderr);
    assert.ok(!existsSync(join(dir, 'y')));
  });
});

describe('SBOM attached to the pushed image (OCI 1.1 subject, referrers tag schema on distribution 2.8)', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry(join(dir, 'registry'));
  });
  after(async () => {
    await reg?.stop();
  });

  it('pushes the artifact, keeps the sha256-<hex> index up to date, and ocislim sbom reads it back', async () => {
    const layout = join(dir, 'pushed');
    const r = await ocislimAsync(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${layout}`, '--push', `${reg.host}/redis:1`, '--sbom', join(dir, 'pushed.spdx.json')]);
    assert.equal(r.status, 0, r.stderr);
    const digest = r.stdout.trim().split('@')[1];
    const tag = `sha256-${digest.slice(7)}`;
    const index = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/redis:${tag}`]));
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0].artifactType, 'application/spdx+json');
    const art = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/redis@${index.manifests[0].digest}`]));
    assert.equal(art.subject.digest, digest);
    assert.equal(art.artifactType, 'application/spdx+json');
    assert.equal(art.config.mediaType, 'application/vnd.oci.empty.v1+json');
    // The same document from the registry, from the layout, and as written.
    const fromReg = await ocislimAsync(['sbom', `${reg.host}/redis:1`]);
    assert.equal(fromReg.status, 0, fromReg.stderr);
    const fromLayout = ocislim(['sbom', `oci:${layout}`]);
    assert.equal(fromLayout.status, 0, fromLayout.stderr);
    assert.equal(fromReg.stdout, fromLayout.stdout);
    assert.equal(fromReg.stdout, readFileSync(join(dir, 'pushed.spdx.json'), 'utf8'));
    // ocislim push of the layout carries the attached SBOM along.
    const copied = await ocislimAsync(['push', `oci:${layout}`, `${reg.host}/copied:1`]);
    assert.equal(copied.status, 0, copied.stderr);
    const copiedIndex = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/copied:${tag}`]));
    assert.equal(copiedIndex.manifests[0].digest, index.manifests[0].digest);
    assert.equal((await ocislimAsync(['sbom', `${reg.host}/copied:1`])).stdout, fromLayout.stdout);
    // A second SBOM of the same image (the same build, CycloneDX) joins the index; the first stays.
    const c = await ocislimAsync(['build', '/usr/bin/redis-server', '--expose', '6379', '--push', `${reg.host}/redis:1`, '--sbom', join(dir, 'pushed.cdx.json'), '--sbom-format', 'cyclonedx']);
    assert.equal(c.status, 0, c.stderr);
    const index2 = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/redis:${tag}`]));
    assert.deepEqual(
      index2.manifests.map((m: { artifactType: string }) => m.artifactType),
      ['application/spdx+json', 'application/vnd.cyclonedx+json'],
    );
    assert.equal(index2.manifests[0].digest, index.manifests[0].digest);
    // Pushing the same SBOM again does not list it twice.
    const again = await ocislimAsync(['build', '/usr/bin/redis-server', '--expose', '6379', '--push', `${reg.host}/redis:1`, '--sbom', join(dir, 'again.cdx.json'), '--sbom-format', 'cyclonedx']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/redis:${tag}`])).manifests.length, 2);
    const cdxDoc = await ocislimAsync(['sbom', `${reg.host}/redis:1`, '--format', 'cyclonedx']);
    assert.equal(cdxDoc.stdout, readFileSync(join(dir, 'pushed.cdx.json'), 'utf8'));
  });

  it('an image without an attached SBOM gets one built from its package records, the same from the layout and the registry', async () => {
    const layout = join(dir, 'plain');
    const r = await ocislimAsync(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${layout}`, '--push', `${reg.host}/plain:1`]);
    assert.equal(r.status, 0, r.stderr);
    const fromLayout = ocislim(['sbom', `oci:${layout}`, '--format', 'cyclonedx']);
    assert.equal(fromLayout.status, 0, fromLayout.stderr);
    assert.match(fromLayout.stderr, /no SBOM attached/);
    const fromReg = await ocislimAsync(['sbom', `${reg.host}/plain:1`, '--format', 'cyclonedx']);
    assert.equal(fromReg.stdout, fromLayout.stdout);
    const d = JSON.parse(fromLayout.stdout);
    const errors = await new cdx.Validation.JsonStrictValidator(cdx.Spec.Version.v1dot6).validate(fromLayout.stdout);
    assert.equal(errors, null, JSON.stringify(errors));
    const versions = dpkgVersions();
    const libs = d.components.filter((c: { type: string }) => c.type === 'library');
    for (const n of ['libssl3', 'libsystemd0', 'libc6', 'redis-server', 'redis-tools']) {
      const c = libs.find((x: { name: string }) => x.name === n);
      assert.ok(c, n);
      assert.equal(c.version, versions.get(`${n}:amd64`));
    }
  });

  it('a multi-platform push attaches each platform image its own SBOM', async () => {
    const arm = debianSysroot('arm64', ['libc6', 'libssl3', 'openssl']);
    const r = await ocislimAsync(['build', '--root', 'linux/amd64=/', '--root', `linux/arm64=${arm}`, '/usr/bin/openssl', '--push', `${reg.host}/multi:1`, '--sbom', join(dir, 'm.spdx.json')]);
    assert.equal(r.status, 0, r.stderr);
    const index = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi:1`]));
    assert.equal(index.manifests.length, 2);
    for (const m of index.manifests as { digest: string; platform: { architecture: string } }[]) {
      const refs = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi:sha256-${m.digest.slice(7)}`]));
      assert.equal(refs.manifests.length, 1);
      const doc = readFileSync(join(dir, `m-linux-${m.platform.architecture}.spdx.json`), 'utf8');
      assert.equal(JSON.parse(doc).packages[0].versionInfo, m.digest);
      const s = await ocislimAsync(['sbom', `${reg.host}/multi:1`, '--platform', `linux/${m.platform.architecture}`]);
      assert.equal(s.stdout, doc);
    }
  });

  it('refuses to overwrite a referrers tag that holds something other than an index', async () => {
    const r = await ocislimAsync(['build', '/usr/bin/redis-server', '--push', `${reg.host}/clash:1`, '--no-sbom']);
    assert.equal(r.status, 0, r.stderr);
    const digest = r.stdout.trim().split('@')[1];
    // Put an image manifest where the referrers index belongs.
    const p = await ocislimAsync(['push', `${reg.host}/clash:1`, `${reg.host}/clash:sha256-${digest.slice(7)}`]);
    assert.equal(p.status, 0, p.stderr);
    const a = await ocislimAsync(['build', '/usr/bin/redis-server', '--push', `${reg.host}/clash:1`, '--no-sbom', '--sbom', join(dir, 'clash.json')]);
    assert.equal(a.status, 1);
    assert.match(a.stderr, /sha256-[0-9a-f]{64} is a application\/vnd\.oci\.image\.manifest\.v1\+json, not the image index/);
  });
});
