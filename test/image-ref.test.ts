import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { skopeo } from './helpers/container.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';
import { parseImageRef } from '../src/refs/image-ref.js';
import { defaultKeychain, staticKeychain } from '../src/registry/keychain.js';
import { RegistryError } from '../src/registry/errors.js';
import { ClientPool } from '../src/registry/pool.js';

let dir: string;
let reg: TestRegistry;
let authReg: TestRegistry;
const USER = 'bob';
const PASSWORD = 'keychain-pass-1';

before(async () => {
  dir = tempDir('ocislim-ref-');
  sh(`htpasswd -Bbn ${USER} '${PASSWORD}' > htpasswd`, dir);
  reg = await startRegistry(join(dir, 'reg'));
  authReg = await startRegistry(join(dir, 'authreg'), { htpasswd: join(dir, 'htpasswd') });
  const r = ocislim(['build', '/bin/busybox', '-o', `oci:${join(dir, 'bb')}`]);
  assert.equal(r.status, 0, r.stderr);
});
after(async () => {
  await reg.stop();
  await authReg.stop();
  removeDir(dir);
});

describe('image references: one type reads and writes oci:, oci-archive:, docker-archive: and registries', () => {
  it('an image goes round every kind and keeps its digest; skopeo reads each copy', async () => {
    const src = parseImageRef(`oci:${join(dir, 'bb')}`);
    assert.equal(src.kind, 'oci');
    const img = await src.read();
    const refs = [`oci-archive:${join(dir, 'bb.tar')}`, `docker-archive:${join(dir, 'bb.docker.tar')}:ocislim/bb:1`, `${reg.host}/bb:1`, `oci:${join(dir, 'copy')}:v1`];
    let current = img;
    for (const s of refs) {
      const ref = parseImageRef(s);
      const w = await ref.write(current);
      assert.equal(w.digest, img.digest, `${s}: written digest`);
      current = await parseImageRef(s).read();
      assert.equal(current.digest, img.digest, `${s}: read back digest`);
    }
    assert.equal(JSON.parse(skopeo(['inspect', `oci-archive:${join(dir, 'bb.tar')}`])).Digest, img.digest);
    assert.equal(JSON.parse(skopeo(['inspect', `docker-archive:${join(dir, 'bb.docker.tar')}`])).Layers.length, img.layers.length);
    assert.equal(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/bb:1`])).Digest, img.digest);
    assert.equal(JSON.parse(skopeo(['inspect', `oci:${join(dir, 'copy')}:v1`])).Digest, img.digest);
    // A registry write reports where the image is now, by digest; extra tags land in the same repository.
    const w = await parseImageRef(`${reg.host}/bb:2`).write(img, { tags: ['2b'] });
    assert.equal(w.ref, `${reg.host}/bb@${img.digest}`);
    assert.equal(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/bb:2b`])).Digest, img.digest);
    // An untagged layout gets "latest", as umoci and buildah need.
    assert.equal((await parseImageRef(`oci:${join(dir, 'untagged')}`).write(img)).ref, `oci:${join(dir, 'untagged')}:latest`);
  });

  it('credentials come from the keychain passed in: none means anonymous, even when docker config has them', async () => {
    const img = await parseImageRef(`oci:${join(dir, 'bb')}`).read();
    const target = parseImageRef(`${authReg.host}/private:1`);
    const cfgDir = join(dir, 'docker-config');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(join(cfgDir, 'config.json'), JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = cfgDir;
    try {
      await assert.rejects(target.write(img), (e: unknown) => e instanceof RegistryError && e.status === 401);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
    }
    await assert.rejects(target.write(img, { keychain: staticKeychain({ username: USER, password: 'wrong', source: 'test' }) }), RegistryError);
    const viaFiles = await target.write(img, { keychain: defaultKeychain({ DOCKER_CONFIG: cfgDir, HOME: dir }) });
    assert.equal(viaFiles.digest, img.digest);
    // A pool shared by several operations, with the keychain given once.
    const pool = new ClientPool({ keychain: staticKeychain({ username: USER, password: PASSWORD, source: 'test' }, authReg.host) });
    try {
      await parseImageRef(`${authReg.host}/private:2`).write(img, { pool });
      const back = await parseImageRef(`${authReg.host}/private:2`).read({ pool });
      assert.equal(back.digest, img.digest);
      await parseImageRef(`oci:${join(dir, 'from-auth')}`).write(back, { pool });
    } finally {
      await pool.close();
    }
    assert.equal(JSON.parse(skopeo(['inspect', `oci:${join(dir, 'from-auth')}:latest`])).Digest, img.digest);
  });

  it('pull does not load the builder (its modules, statically or dynamically imported)', () => {
    const srcDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+\.js)['"]/g)) visit(join(dirname(file), m[1]));
    };
    visit(join(srcDir, 'cli', 'pull.js'));
    const builder = [...seen].filter((f) => f.includes(`${join(srcDir, 'builder')}/`) || f.endsWith(join('cli', 'build.js')));
    assert.deepEqual(builder, []);
    assert.ok(seen.has(join(srcDir, 'refs', 'image-ref.js')), 'the walk follows imports');
  });
});
