import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislimAsync } from './helpers/cli.js';
import { skopeo } from './helpers/container.js';
import { startRegistry, TestRegistry } from './helpers/registry.js';
import { startTokenServer, TokenServer } from './helpers/tokenserver.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';

const USER = 'alice';
const PASSWORD = 'pa55-Wd.very-secret';
let dir: string;
let image: string;
const transcript: string[] = [];

async function run(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const r = await ocislimAsync(args, opts);
  transcript.push(r.stdout, r.stderr);
  return r;
}

before(() => {
  dir = tempDir('ocislim-auth-');
  sh(
    `openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ocislim-test-ca 2>/dev/null
     openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
     printf 'subjectAltName=IP:127.0.0.1\\n' > ext
     openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext 2>/dev/null
     openssl req -x509 -newkey rsa:2048 -nodes -keyout tok.key -out tok.crt -days 2 -subj /CN=ocislim-token-issuer 2>/dev/null
     htpasswd -Bbn ${USER} '${PASSWORD}' > htpasswd`,
    dir,
  );
  image = join(dir, 'img.tar');
  sh(`node ${join(process.cwd(), 'bin/ocislim.js')} build /bin/busybox -o oci-archive:${image} 2>/dev/null`);
});
after(() => {
  // No password or token may reach any output.
  const all = transcript.join('\n');
  assert.ok(!all.includes(PASSWORD), 'the password leaked into output');
  assert.ok(!all.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')), 'the Basic credentials leaked into output');
  removeDir(dir);
});

describe('registry authentication, against the real registry', () => {
  it('an https registry redirecting to http is refused (mock: the real registry never redirects)', async () => {
    const { createServer } = await import('node:https');
    const server = createServer({ cert: readFileSync(join(dir, 'srv.crt')), key: readFileSync(join(dir, 'srv.key')) }, (req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(200);
        return res.end('{}');
      }
      res.writeHead(307, { location: `http://127.0.0.1:1${req.url}` });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const r = await run(['pull', `${host}/x:1`, '--ca-file', join(dir, 'ca.crt'), '-o', `oci:${join(dir, 'never')}`]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /refusing a redirect from https to http:\/\/127\.0\.0\.1:1/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('TLS with a self-signed CA: --ca-file or NODE_EXTRA_CA_CERTS, and a clear error without', async () => {
    const reg: TestRegistry = await startRegistry(join(dir, 'tls'), { tls: { cert: join(dir, 'srv.crt'), key: join(dir, 'srv.key') } });
    try {
      const bad = await run(['push', `oci-archive:${image}`, `${reg.host}/tls:1`]);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /^ocislim: .*(certificate|self.signed|UNABLE_TO_VERIFY)/im);
      // A certificate failure is not retried, so the error does not claim attempts.
      assert.doesNotMatch(bad.stderr, /attempts/);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      const good = await run(['push', `oci-archive:${image}`, `${reg.host}/tls:1`, '--ca-file', join(dir, 'ca.crt')]);
      assert.equal(good.status, 0, good.stderr);
      const env = await run(['push', `oci-archive:${image}`, `${reg.host}/tls:2`], { env: { NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') } });
      assert.equal(env.status, 0, env.stderr);
      // Started as a program (as npx and a PATH lookup start it), bin keeps the file from Node's start and the
      // transport trusts it itself, beside the bundled authorities, with --ca-file too.
      const asProgram = { wrap: (argv: string[]) => argv.slice(1) };
      const launched = await ocislimAsync(['push', `oci-archive:${image}`, `${reg.host}/tls:3`], { ...asProgram, env: { NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') } });
      assert.equal(launched.status, 0, launched.stderr);
      assert.equal(launched.stdout, good.stdout.replace('tls:1', 'tls:3'));
      // --ca-file beside NODE_EXTRA_CA_CERTS: both are trusted (here the CA is in the variable's file, --ca-file holds
      // another certificate), whether Node read the variable at start or bin kept it from Node.
      for (const mode of [asProgram, {}]) {
        const both = await ocislimAsync(['push', `oci-archive:${image}`, `${reg.host}/tls:4`, '--ca-file', join(dir, 'tok.crt')], { ...mode, env: { NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') } });
        assert.equal(both.status, 0, both.stderr);
      }
      // The system store (--use-openssl-ca: OpenSSL's SSL_CERT_FILE, here the test CA) stays trusted beside the file.
      for (const mode of [asProgram, {}]) {
        const system = await ocislimAsync(['push', `oci-archive:${image}`, `${reg.host}/tls:6`], { ...mode, env: { NODE_OPTIONS: '--use-openssl-ca', SSL_CERT_FILE: join(dir, 'ca.crt'), SSL_CERT_DIR: join(dir, 'none'), NODE_EXTRA_CA_CERTS: join(dir, 'tok.crt') } });
        assert.equal(system.status, 0, system.stderr);
      }
      // A file that cannot be read: Node's answer (a warning, the bundled authorities alone), so the registry's is refused.
      const unreadable = await ocislimAsync(['push', `oci-archive:${image}`, `${reg.host}/tls:5`], { ...asProgram, env: { NODE_EXTRA_CA_CERTS: join(dir, 'no-such.crt') } });
      assert.notEqual(unreadable.status, 0);
      assert.match(unreadable.stderr, /NODE_EXTRA_CA_CERTS .*no-such\.crt: no such file; its certificates are not trusted/);
      assert.equal(unreadable.stderr.match(/NODE_EXTRA_CA_CERTS/g)?.length, 1, unreadable.stderr);
      assert.match(unreadable.stderr, /^ocislim: .*(certificate|self.signed|UNABLE_TO_VERIFY)/im);
      sh(`mkdir -p certs && cp ca.crt certs/`, dir);
      const info = JSON.parse(skopeo(['inspect', '--cert-dir', join(dir, 'certs'), `docker://${reg.host}/tls:1`]));
      assert.equal(info.Digest, good.stdout.trim().split('@')[1]);
    } finally {
      await reg.stop();
    }
  });

  it('htpasswd Basic auth: --username/--password-stdin, login then config.json, wrong password refused', async () => {
    const reg = await startRegistry(join(dir, 'basic'), { htpasswd: join(dir, 'htpasswd') });
    const dockerConfig = join(dir, 'docker-config');
    const env = { DOCKER_CONFIG: dockerConfig, HOME: dir };
    try {
      const anon = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:1`], { env });
      assert.notEqual(anon.status, 0);
      assert.match(anon.stderr, /^ocislim: push 127\.0\.0\.1:\d+\/basic:1: 127\.0\.0\.1:\d+ requires credentials and none were found for it \(HTTP 401 when .*\); run ocislim login 127\.0\.0\.1:\d+/);
      // A wrong password: the registry refused these credentials, and which registry (not "checking blob: unauthorized").
      const badPush = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:1`, '--username', USER, '--password-stdin'], { env, input: 'wrong-password\n' });
      assert.notEqual(badPush.status, 0);
      assert.equal(badPush.stderr.trim().split('\n').length, 1, badPush.stderr);
      assert.match(badPush.stderr, new RegExp(`^ocislim: push ${reg.host.replace(/\./g, '\\.')}/basic:1: ${reg.host.replace(/\./g, '\\.')} refused the credentials from --username/--password-stdin \\(HTTP 401 when `));
      const direct = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:1`, '--username', USER, '--password-stdin'], { env, input: PASSWORD + '\n' });
      assert.equal(direct.status, 0, direct.stderr);
      const wrong = await run(['login', reg.host, '-u', USER, '--password-stdin'], { env, input: 'wrong-password\n' });
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.stderr, /^ocislim: login 127\.0\.0\.1:\d+: the registry refused the credentials$/m);
      const login = await run(['login', reg.host, '-u', USER, '--password-stdin'], { env, input: PASSWORD + '\n' });
      assert.equal(login.status, 0, login.stderr);
      const cfg = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8'));
      assert.equal(Buffer.from(cfg.auths[reg.host].auth, 'base64').toString(), `${USER}:${PASSWORD}`);
      const viaConfig = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:2`], { env });
      assert.equal(viaConfig.status, 0, viaConfig.stderr);
      // skopeo reads the same config.json as docker and ocislim.
      const info = JSON.parse(skopeo(['inspect', '--tls-verify=false', '--authfile', join(dockerConfig, 'config.json'), `docker://${reg.host}/basic:2`]));
      assert.equal(info.Digest, viaConfig.stdout.trim().split('@')[1]);
      // podman's auth.json through REGISTRY_AUTH_FILE.
      const podmanAuth = join(dir, 'auth.json');
      writeFileSync(podmanAuth, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
      const viaPodman = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:4`], { env: { DOCKER_CONFIG: join(dir, 'none'), HOME: dir, REGISTRY_AUTH_FILE: podmanAuth } });
      assert.equal(viaPodman.status, 0, viaPodman.stderr);
      // DOCKER_AUTH_CONFIG: the whole config.json in the environment, as CI systems pass it; it wins over the files.
      const authJson = JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } });
      const viaEnv = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:5`], { env: { DOCKER_CONFIG: join(dir, 'none'), HOME: dir, DOCKER_AUTH_CONFIG: authJson, REGISTRY_AUTH_FILE: join(dir, 'none.json') } });
      assert.equal(viaEnv.status, 0, viaEnv.stderr);
      // Broken JSON holding the password: a one-line error naming the variable, never its text.
      const broken = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:6`], { env: { DOCKER_CONFIG: join(dir, 'none'), HOME: dir, DOCKER_AUTH_CONFIG: `{"auths": {"${reg.host}": {"password": ${PASSWORD}}}}` } });
      assert.notEqual(broken.status, 0);
      assert.match(broken.stderr, /^ocislim: .*DOCKER_AUTH_CONFIG: not valid JSON( \(at character \d+\))?\n$/);
      assert.ok(!broken.stderr.includes(PASSWORD));
      // A credential helper (docker-credential-* protocol) is used when config.json names one.
      const helperDir = join(dir, 'helper-bin');
      sh(`mkdir -p ${helperDir} && cat > ${helperDir}/docker-credential-ocitest <<'SH'
#!/bin/sh
read server
printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASSWORD}"}' "$server"
SH
chmod +x ${helperDir}/docker-credential-ocitest`);
      const helperCfg = join(dir, 'helper-config');
      sh(`mkdir -p ${helperCfg}`);
      writeFileSync(join(helperCfg, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'ocitest' } }));
      const viaHelper = await run(['push', `oci-archive:${image}`, `${reg.host}/basic:3`], { env: { DOCKER_CONFIG: helperCfg, HOME: dir, PATH: `${helperDir}:${process.env.PATH}` } });
      assert.equal(viaHelper.status, 0, viaHelper.stderr);
    } finally {
      await reg.stop();
    }
  });

  it('token auth: scoped tokens from a token server; push asks pull,push, a mount also asks pull on the source', async () => {
    const service = 'ocislim-test-registry';
    const issuer = 'ocislim-test-issuer';
    const REFRESH = 'refresh-token-for-ocislim-test';
    const ts: TokenServer = await startTokenServer({ keyFile: join(dir, 'tok.key'), certFile: join(dir, 'tok.crt'), issuer, service, user: USER, password: PASSWORD, refreshToken: REFRESH });
    const reg = await startRegistry(join(dir, 'token'), { token: { realm: ts.realm, service, issuer, rootCertBundle: join(dir, 'tok.crt') } });
    const env = { DOCKER_CONFIG: join(dir, 'none'), HOME: dir };
    try {
      const anon = await run(['push', `oci-archive:${image}`, `${reg.host}/tok/a:1`], { env });
      assert.notEqual(anon.status, 0, 'anonymous tokens grant nothing');
      const push = await run(['push', `oci-archive:${image}`, `${reg.host}/tok/a:1`, '-u', USER, '--password-stdin'], { env, input: PASSWORD });
      assert.equal(push.status, 0, push.stderr);
      assert.ok(ts.scopes.some((s) => s[0] === 'repository:tok/a:pull,push'), JSON.stringify(ts.scopes));
      const pushTokens = ts.issued.length;
      ts.scopes.length = 0;
      const mount = await run(['push', `${reg.host}/tok/a:1`, `${reg.host}/tok/b:1`, '-u', USER, '--password-stdin'], { env, input: PASSWORD });
      assert.equal(mount.status, 0, mount.stderr);
      assert.match(mount.stderr, /mounted from tok\/a/);
      assert.ok(ts.scopes.some((s) => s[0] === 'repository:tok/b:pull,push' && s.includes('repository:tok/a:pull')), JSON.stringify(ts.scopes));
      // Tokens are reused while valid: a push needs one token per scope set, not one per request.
      assert.ok(ts.issued.length - pushTokens <= 3, `${ts.issued.length - pushTokens} tokens for one mounting push`);
      // An identity token in config.json is exchanged with the OAuth2 POST (refresh_token grant).
      const idCfg = join(dir, 'identity-config');
      sh(`mkdir -p ${idCfg}`);
      writeFileSync(join(idCfg, 'config.json'), JSON.stringify({ auths: { [reg.host]: { identitytoken: REFRESH } } }));
      const posts = ts.posts;
      const viaIdentity = await run(['push', `oci-archive:${image}`, `${reg.host}/tok/c:1`], { env: { DOCKER_CONFIG: idCfg, HOME: dir } });
      assert.equal(viaIdentity.status, 0, viaIdentity.stderr);
      assert.ok(ts.posts > posts, 'the refresh token went through the OAuth2 POST');
      const all = transcript.join('\n');
      assert.ok(!all.includes(REFRESH), 'the identity token leaked into output');
      for (const t of ts.issued) assert.ok(!all.includes(t), 'a token leaked into output');
    } finally {
      await reg.stop();
      await ts.close();
    }
  });
});
