import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim as cli } from './helpers/cli.js';
import { skopeo, umociUnpack } from './helpers/container.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { removeDir, tempDir } from './helpers/sh.js';
import type * as Api from '../src/index.js';

// The package imported by its own name, as a user's code would (package.json "exports"); a non-literal specifier so
// the compiler does not need the declarations it is about to emit.
const PACKAGE: string = 'ocislim';
let api: typeof Api;
let dir: string;
let reg: TestRegistry;

before(async () => {
  api = (await import(PACKAGE)) as typeof Api;
  dir = tempDir('ocislim-api-');
  reg = await startRegistry(join(dir, 'registry'));
});
after(async () => {
  await reg.stop();
  removeDir(dir);
});

describe("the public API (import 'ocislim')", () => {
  it('resolves to the compiled entry point, with type declarations', () => {
    const url = import.meta.resolve(PACKAGE);
    assert.match(url, /\/dist\/src\/index\.js$/);
    assert.ok(existsSync(new URL('index.d.ts', url)), 'index.d.ts emitted beside index.js');
  });

  it('builds redis, writes it to a layout, pushes it to the real registry, the same image as the CLI builds', async () => {
    const { build, buildSpec, parseImageRef, withWorkDir, anonymous } = api;
    const spec = buildSpec({ inputs: ['/usr/bin/redis-server'], expose: ['6379'], epoch: 1700000000 });
    const result = await withWorkDir(async (work) => {
      const r = await build(spec, work);
      const local = await parseImageRef(`oci:${join(dir, 'redis')}`).write(r.image);
      const pushed = await parseImageRef(`${reg.host}/api/redis:1`).write(r.image, { keychain: anonymous, tags: ['latest'] });
      return { digest: r.image.digest, local, pushed };
    });
    assert.equal(result.local.ref, `oci:${join(dir, 'redis')}:latest`);
    assert.equal(result.pushed.ref, `${reg.host}/api/redis@${result.digest}`);
    assert.equal(JSON.parse(skopeo(['inspect', `oci:${join(dir, 'redis')}:latest`])).Digest, result.digest);
    assert.equal(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/api/redis:latest`])).Digest, result.digest);
    const c = cli(['build', '/usr/bin/redis-server', '--expose', '6379', '-o', `oci:${join(dir, 'cli')}`], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    assert.equal(c.stdout.trim(), result.digest, 'the library and the CLI build the same image');
  });

  it('empty and append compose images: a layer written from entries, on a base read back from the registry', async () => {
    const { append, empty, layerFromBlob, parseImageRef, writeLayer, withWorkDir, mediaTypesFor } = api;
    await withWorkDir(async (work) => {
      const base = await parseImageRef(`${reg.host}/api/redis:1`).read();
      const motd = await writeLayer([{ path: '/etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('hello from the API\n') }], {
        dir: work,
        mediaType: mediaTypesFor('oci').layer,
        mtime: 0,
        comment: 'motd',
      });
      const img = append(base, [{ layer: layerFromBlob(motd), history: { created_by: 'api test: motd' } }], { config: (c) => ({ ...c, Env: [...(c.Env ?? []), 'GREETING=hi'] }) });
      assert.equal(img.layers.length, base.layers.length + 1);
      assert.deepEqual(img.config.rootfs.diff_ids, [...base.config.rootfs.diff_ids, motd.diffId]);
      assert.equal(img.config.architecture, base.config.architecture);
      await parseImageRef(`oci:${join(dir, 'motd')}:v1`).write(img);
      // scratch plus the same layer: a one-layer image of its own.
      const alone = append(empty, [{ layer: layerFromBlob(motd) }], { platform: { os: 'linux', architecture: 'amd64' } });
      assert.equal(alone.manifest.layers.length, 1);
      await parseImageRef(`oci-archive:${join(dir, 'alone.tar')}`).write(alone);
    });
    const cfg = JSON.parse(skopeo(['inspect', '--config', `oci:${join(dir, 'motd')}:v1`]));
    assert.ok(cfg.config.Env.includes('GREETING=hi'));
    assert.deepEqual(cfg.config.Entrypoint, ['/usr/bin/redis-server']);
    umociUnpack(`${join(dir, 'motd')}:v1`, join(dir, 'bundle'));
    assert.equal(readFileSync(join(dir, 'bundle/rootfs/etc/motd'), 'utf8'), 'hello from the API\n');
    assert.ok(existsSync(join(dir, 'bundle/rootfs/usr/bin/redis-check-rdb')));
    assert.equal(JSON.parse(skopeo(['inspect', `oci-archive:${join(dir, 'alone.tar')}`])).Layers.length, 1);
  });

  it('an SBOM of a build, attached in a layout and on the real registry, read back by readSbom and by the CLI', async () => {
    const { build, buildSbom, buildSpec, parseImageRef, readSbom, withWorkDir, anonymous, SBOM_MEDIA_TYPE } = api;
    const spec = buildSpec({ inputs: ['/usr/bin/redis-server'], epoch: 1700000000, sbomDocument: true });
    const layout = parseImageRef(`oci:${join(dir, 'sbom')}`);
    const remote = parseImageRef(`${reg.host}/api/sbom:1`);
    const sbom = await withWorkDir(async (work) => {
      const r = await build(spec, work);
      const s = buildSbom(r, spec, 'cyclonedx');
      await layout.write(r.image);
      await layout.attach(s.artifact);
      await remote.write(r.image, { keychain: anonymous });
      await remote.attach(s.artifact, { keychain: anonymous });
      // an archive has no place for referrers: a typed error naming it
      await parseImageRef(`oci-archive:${join(dir, 'sbom.tar')}`).write(r.image);
      await assert.rejects(parseImageRef(`oci-archive:${join(dir, 'sbom.tar')}`).attach(s.artifact), { name: 'LocationError', message: /sbom\.tar.*: an oci-archive cannot hold attached artifacts/ });
      return { ...s, image: r.image.digest };
    });
    assert.equal(JSON.parse(sbom.document.toString('utf8')).bomFormat, 'CycloneDX');
    for (const ref of [layout, remote]) {
      const got = await readSbom(ref, { format: 'cyclonedx' });
      assert.equal(got.image.digest, sbom.image);
      assert.equal(got.attached?.digest, sbom.artifact.digest, `${ref} lists the attached SBOM`);
      assert.ok(got.document.equals(sbom.document), `${ref} gives back the same bytes`);
      // none of the other format is attached: built from the image's files instead
      const spdx = await readSbom(ref, { format: 'spdx' });
      assert.equal(spdx.attached, null);
      assert.equal(JSON.parse(spdx.document.toString('utf8')).spdxVersion, 'SPDX-2.3');
    }
    // the registry holds it under the referrers tag the distribution spec defines, as a real client sees it
    const tag = `sha256-${sbom.image.slice('sha256:'.length)}`;
    const index = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/api/sbom:${tag}`]));
    assert.deepEqual(index.manifests.map((m: { digest: string; artifactType: string }) => [m.digest, m.artifactType]), [[sbom.artifact.digest, SBOM_MEDIA_TYPE.cyclonedx]]);
    const c = cli(['sbom', `${reg.host}/api/sbom:1`, '--format', 'cyclonedx']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout.trim(), sbom.document.toString('utf8').trim(), 'the CLI prints the attached document');
  });
});
