import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findCredentials } from '../../src/registry/credentials.js';
import { defaultKeychain, multiKeychain, staticKeychain } from '../../src/registry/keychain.js';
import { removeDir, tempDir } from '../helpers/sh.js';

let dir: string;
const b64 = (s: string) => Buffer.from(s).toString('base64');
before(() => {
  dir = tempDir('ocislim-unit-cred-');
});
after(() => removeDir(dir));

function config(name: string, cfg: unknown): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
  return d;
}

describe('registry/credentials.ts lookup, as docker and podman do it', () => {
  it('auths by host, Docker Hub under its legacy key, identity tokens', () => {
    const d = config('auths', {
      auths: {
        'r.example:5000': { auth: b64('u:p') },
        'https://index.docker.io/v1/': { auth: b64('hub:secret') },
        'https://legacy.example/v1/': { identitytoken: 'tok' },
      },
    });
    const env = { DOCKER_CONFIG: d, HOME: dir };
    assert.deepEqual(findCredentials('r.example:5000', env), { username: 'u', password: 'p', source: join(d, 'config.json') });
    assert.equal(findCredentials('docker.io', env)?.username, 'hub');
    assert.equal(findCredentials('legacy.example', env)?.identityToken, 'tok');
    assert.equal(findCredentials('other.example', env), null);
  });

  it('DOCKER_AUTH_CONFIG first, then REGISTRY_AUTH_FILE, then DOCKER_CONFIG; a broken file names itself, not its text', () => {
    const d = config('low', { auths: { 'r.example': { auth: b64('low:1') } } });
    const file = join(dir, 'auth.json');
    writeFileSync(file, JSON.stringify({ auths: { 'r.example': { auth: b64('mid:2') } } }));
    const env = { DOCKER_CONFIG: d, HOME: dir, REGISTRY_AUTH_FILE: file };
    assert.equal(findCredentials('r.example', env)?.username, 'mid');
    assert.equal(findCredentials('r.example', { ...env, DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'r.example': { auth: b64('top:3') } } }) })?.username, 'top');
    const bad = config('bad', {});
    writeFileSync(join(bad, 'config.json'), '{"auths": {"r.example": {"auth": "c2VjcmV0"}');
    assert.throws(
      () => findCredentials('r.example', { DOCKER_CONFIG: bad, HOME: dir }),
      (e: Error) => e.message.includes(join(bad, 'config.json')) && !e.message.includes('c2VjcmV0'),
    );
  });

  it('credHelpers and credsStore through the docker-credential-* protocol', () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const helper = join(bin, 'docker-credential-unit');
    writeFileSync(helper, '#!/bin/sh\nread server\nprintf \'{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}\' "$server"\n');
    chmodSync(helper, 0o755);
    const d = config('helpers', { credHelpers: { 'h.example': 'unit' }, auths: { 'h.example': { auth: b64('ignored:x') } } });
    const env = { DOCKER_CONFIG: d, HOME: dir, PATH: `${bin}:/usr/bin:/bin` };
    assert.deepEqual(findCredentials('h.example', env), { username: 'helper-user', password: 'helper-secret', source: 'docker-credential-unit' });
    const s = config('store', { credsStore: 'unit' });
    assert.equal(findCredentials('any.example', { ...env, DOCKER_CONFIG: s })?.password, 'helper-secret');
  });

  it('keychains: static for one registry, the files through defaultKeychain, the first that answers', async () => {
    const cred = { username: 'k', password: 'v', source: 'test' };
    assert.equal(await staticKeychain(cred, 'a.example').resolve('b.example'), null);
    assert.equal(await staticKeychain(cred).resolve('b.example'), cred);
    const d = config('kc', { auths: { 'f.example': { auth: b64('file:pw') } } });
    const files = defaultKeychain({ DOCKER_CONFIG: d, HOME: dir });
    assert.equal((await files.resolve('f.example'))?.username, 'file');
    const both = multiKeychain(staticKeychain(cred, 'a.example'), files);
    assert.equal((await both.resolve('a.example'))?.username, 'k');
    assert.equal((await both.resolve('f.example'))?.username, 'file');
    assert.equal(await both.resolve('none.example'), null);
  });
});
