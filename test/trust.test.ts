import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislimAsync } from './helpers/cli.js';
import { runcRunAsync, umociUnpack } from './helpers/container.js';
import { removeDir, sh, tempDir } from './helpers/sh.js';
import { privateTrustStore } from './helpers/truststore.js';

/**
 * TLS trust beyond OpenSSL (issue 10, item 5), under runc: GnuTLS reads the build root's CA bundle; NSS reads its
 * own modules and databases, not /etc/ssl/certs, unless the root's libnssckbi.so is p11-kit's trust module.
 * Two local TLS servers: one whose CA is in the build root's store (a private copy, see truststore.ts), one whose
 * CA is known nowhere.
 */

/** A TLS client on NSS: nssget HOST PORT [DBDIR] fetches /; nssget --roots counts the root module's certificates. */
const NSSGET = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nspr.h>
#include <nss.h>
#include <ssl.h>
#include <secmod.h>
#include <pk11pub.h>
#include <cert.h>
static int fail(const char *what) {
  const char *e = PR_ErrorToName(PR_GetError());
  fprintf(stderr, "nssget: %s: %s\\n", what, e ? e : "unknown error");
  return 1;
}
int main(int argc, char **argv) {
  int roots = argc == 2 && !strcmp(argv[1], "--roots");
  if (!roots && argc < 3) return 2;
  if ((argc > 3 ? NSS_Init(argv[3]) : NSS_NoDB_Init(NULL)) != SECSuccess) return fail("NSS init");
  /* As curl and tstclnt -b do: the root module, by name. */
  SECMODModule *m = SECMOD_LoadUserModule("library=libnssckbi.so name=\\"Root Certs\\"", NULL, PR_FALSE);
  if (!m || !m->loaded) return fail("loading libnssckbi.so");
  if (roots) {
    int n = 0;
    CERTCertList *l = m->slotCount ? PK11_ListCertsInSlot(m->slots[0]) : NULL;
    if (l) for (CERTCertListNode *c = CERT_LIST_HEAD(l); !CERT_LIST_END(c, l); c = CERT_LIST_NEXT(c)) n++;
    printf("%d roots\\n", n);
    return 0;
  }
  if (NSS_SetDomesticPolicy() != SECSuccess) return fail("policy");
  PRNetAddr addr;
  if (PR_StringToNetAddr(argv[1], &addr) != PR_SUCCESS) return fail("address");
  addr.inet.port = PR_htons(atoi(argv[2]));
  PRFileDesc *tcp = PR_OpenTCPSocket(addr.raw.family);
  PRFileDesc *ssl = tcp ? SSL_ImportFD(NULL, tcp) : NULL;
  if (!ssl) return fail("socket");
  SSL_OptionSet(ssl, SSL_HANDSHAKE_AS_CLIENT, PR_TRUE);
  SSL_SetURL(ssl, argv[1]);
  if (PR_Connect(ssl, &addr, PR_SecondsToInterval(10)) != PR_SUCCESS) return fail("connect");
  if (SSL_ForceHandshake(ssl) != SECSuccess) return fail("handshake");
  const char req[] = "GET / HTTP/1.0\\r\\n\\r\\n";
  PR_Write(ssl, req, sizeof req - 1);
  char buf[4096];
  PRInt32 n;
  while ((n = PR_Read(ssl, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
  return 0;
}
`;

/** GnuTLS's trust-list API (what glib-networking uses) rather than gnutls_certificate_set_x509_system_trust. */
const GTRUST = `#include <stdio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
int main(int argc, char **argv) {
  gnutls_x509_trust_list_t tl;
  gnutls_x509_crt_t crt;
  gnutls_datum_t pem;
  unsigned status = 1;
  if (argc < 2 || gnutls_global_init() < 0 || gnutls_x509_trust_list_init(&tl, 0) < 0) return 2;
  int n = gnutls_x509_trust_list_add_system_trust(tl, 0, 0);
  if (gnutls_load_file(argv[1], &pem) < 0 || gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) < 0) return 2;
  gnutls_x509_trust_list_verify_crt(tl, &crt, 1, 0, &status, NULL);
  printf("%d system CAs: %s\\n", n, status ? "not trusted" : "trusted");
  return status ? 1 : 0;
}
`;

/** A client on Debian's libcurl-nss (no curl headers needed): curlnss URL [CAFILE]. */
const CURLNSS = `#include <stdio.h>
typedef void CURL;
extern CURL *curl_easy_init(void);
extern int curl_easy_setopt(CURL *, int, ...);
extern int curl_easy_perform(CURL *);
extern const char *curl_easy_strerror(int);
int main(int argc, char **argv) {
  CURL *c = curl_easy_init();
  if (!c || argc < 2) return 2;
  curl_easy_setopt(c, 10002 /* CURLOPT_URL */, argv[1]);
  if (argc > 2) curl_easy_setopt(c, 10065 /* CURLOPT_CAINFO */, argv[2]);
  int rc = curl_easy_perform(c);
  if (rc) fprintf(stderr, "curlnss: %s\\n", curl_easy_strerror(rc));
  return rc ? 1 : 0;
}
`;

let dir: string;
const servers: Server[] = [];
let good: number;
let unknown: number;
const built = new Map<string, Promise<{ bundle: string; stderr: string }>>();

function build(name: string, args: string[], wrap?: (argv: string[]) => string[]): Promise<{ bundle: string; stderr: string }> {
  const p = (async () => {
    const layout = join(dir, `img-${name}`);
    const r = await ocislimAsync(['build', ...args, '-o', `oci:${layout}`], { timeout: 300000, wrap });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    const bundle = join(dir, `${name}-bundle`);
    umociUnpack(`${layout}:latest`, bundle);
    return { bundle, stderr: r.stderr };
  })();
  built.set(name, p);
  p.catch(() => {});
  return p;
}

async function serve(cert: string, key: string): Promise<number> {
  const s = createServer({ cert: readFileSync(join(dir, cert)), key: readFileSync(join(dir, key)) }, (_q, res) => res.end('hello over tls\n'));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as { port: number }).port;
}

before(async () => {
  dir = tempDir('ocislim-trust-');
  sh(
    `for n in known unknown; do
       openssl req -x509 -newkey rsa:2048 -nodes -keyout $n-ca.key -out $n-ca.crt -days 2 -subj /CN=ocislim-trust-$n-ca 2>/dev/null
       openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=127.0.0.1 2>/dev/null
       printf 'subjectAltName=IP:127.0.0.1\\n' > ext
       openssl x509 -req -in $n.csr -CA $n-ca.crt -CAkey $n-ca.key -CAcreateserial -out $n.crt -days 2 -extfile ext 2>/dev/null
     done
     mkdir nssdb && certutil -N -d sql:nssdb --empty-password && certutil -A -d sql:nssdb -n ocislim-trust-known-ca -t C,, -i known-ca.crt`,
    dir,
  );
  writeFileSync(join(dir, 'nssget.c'), NSSGET);
  writeFileSync(join(dir, 'gtrust.c'), GTRUST);
  writeFileSync(join(dir, 'curlnss.c'), CURLNSS);
  sh('gcc -O2 -I/usr/include/nss -I/usr/include/nspr -o nssget nssget.c -lssl3 -lnss3 -lnspr4 && gcc -O2 -o gtrust gtrust.c -lgnutls && gcc -O2 -o curlnss curlnss.c -l:libcurl-nss.so.4', dir);
  good = await serve('known.crt', 'known.key');
  unknown = await serve('unknown.crt', 'unknown.key');
  const store = privateTrustStore(dir, join(dir, 'known-ca.crt'));
  // A root whose libnssckbi.so is p11-kit's trust module (Fedora's layout), seen only by that build.
  const ckbi = sh(`dpkg -L libnss3 | grep '/libnssckbi\\.so$'`).trim();
  const p11trust = sh(`dpkg -L p11-kit-modules | grep '/p11-kit-trust\\.so$'`).trim();
  const p11wrap = (argv: string[]) => store.wrap(['sh', '-c', 'mount --bind "$0" "$1" && shift 2 && exec "$@"', p11trust, ckbi, ...argv]);
  // Roots with files the host lacks (/etc/pki/nssdb, /etc/gnutls/config): /etc overlaid in a private mount
  // namespace (an upper directory per build), so the host's /etc stays as it is; `then` wraps further (the store).
  const etcWith = (name: string, setup: string, then: (a: string[]) => string[] = (a) => a) => {
    sh(`mkdir -p etc-${name}/upper etc-${name}/work`, dir);
    return (argv: string[]) => [
      'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
      `mount -t overlay overlay -o lowerdir=/etc,upperdir="$0/etc-${name}/upper",workdir="$0/etc-${name}/work" /etc && ${setup} && exec "$@"`,
      dir, ...then(argv),
    ];
  };
  const sysdb = 'mkdir -p /etc/pki && cp -r "$0/nssdb" /etc/pki/nssdb';
  // GnuTLS's system-wide overrides: no TLS version left, so a handshake cannot start.
  writeFileSync(join(dir, 'gnutls.config'), '[overrides]\ndisabled-version = tls1.2\ndisabled-version = tls1.3\n');
  const nssget = join(dir, 'nssget');
  const jobs: [string, string[], ((a: string[]) => string[])?][] = [
    ['wget', ['/usr/bin/wget'], store.wrap],
    ['gtrust', [join(dir, 'gtrust'), join(dir, 'known.crt'), join(dir, 'unknown.crt')], store.wrap],
    ['nss', [nssget], store.wrap],
    ['nss-db', [nssget, `${join(dir, 'nssdb')}:/etc/pki/nssdb`]],
    ['nss-nocerts', [nssget, '--no-scaffold', 'certs']],
    ['nss-p11', [nssget], p11wrap],
    ['nss-sysdb', [nssget], etcWith('nss-sysdb', sysdb)],
    ['curl-nss', [join(dir, 'curlnss'), join(dir, 'unknown-ca.crt')], etcWith('curl-nss', sysdb)],
    ['wget-conf', ['/usr/bin/wget'], etcWith('wget-conf', 'mkdir -p /etc/gnutls && cp "$0/gnutls.config" /etc/gnutls/config', store.wrap)],
  ];
  // Two builds at a time: the machine's cores are shared.
  const worker = async () => {
    for (let j = jobs.shift(); j; j = jobs.shift()) await build(j[0], j[1], j[2]).catch(() => {});
  };
  await Promise.all([worker(), worker()]);
});

after(() => {
  for (const s of servers) s.close();
  removeDir(dir);
});

describe('TLS trust for GnuTLS and NSS users', () => {
  it('GnuTLS (wget): verifies a local TLS server whose CA is in the build root store, refuses an unknown CA', async () => {
    const { bundle, stderr } = await built.get('wget')!;
    assert.match(stderr, /added \/etc\/ssl\/certs\/ca-certificates\.crt \(wget reads the system trust store\)/);
    const ok = await runcRunAsync(bundle, ['/usr/bin/wget', '-q', '-O-', `https://127.0.0.1:${good}/`]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'hello over tls\n');
    const bad = await runcRunAsync(bundle, ['/usr/bin/wget', '-O-', `https://127.0.0.1:${unknown}/`]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /certificate of '127\.0\.0\.1' is not trusted/);
  });

  it("GnuTLS's system-wide configuration (/etc/gnutls/config) comes when the root has one, and takes effect", async () => {
    const { bundle, stderr } = await built.get('wget-conf')!;
    assert.match(stderr, /added \/etc\/gnutls\/config \(GnuTLS's system-wide configuration in \/; wget uses GnuTLS\)/);
    assert.doesNotMatch((await built.get('wget'))!.stderr, /\/etc\/gnutls/);
    const r = await runcRunAsync(bundle, ['/usr/bin/wget', '-O-', `https://127.0.0.1:${good}/`]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Unable to establish SSL connection/);
  });

  it("GnuTLS's trust-list API (gnutls_x509_trust_list_add_system_trust) is a reason to ship the CA bundle", async () => {
    const { bundle, stderr } = await built.get('gtrust')!;
    assert.match(stderr, /added \/etc\/ssl\/certs\/ca-certificates\.crt \(gtrust reads the system trust store\)/);
    const ok = await runcRunAsync(bundle, [join(dir, 'gtrust'), join(dir, 'known.crt')]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^[1-9]\d* system CAs: trusted$/m);
    const bad = await runcRunAsync(bundle, [join(dir, 'gtrust'), join(dir, 'unknown.crt')]);
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /not trusted/);
  });

  it("NSS: its crypto modules and Mozilla's built-in roots come; the build root's store is not NSS's (unknown issuer, and a note says so)", async () => {
    const { bundle, stderr } = await built.get('nss')!;
    assert.match(stderr, /added libsoftokn3\.so, libfreeblpriv3\.so, libnssckbi\.so \(NSS loads them with dlopen; nssget uses libnss3\.so\)/);
    assert.match(stderr, /note: nssget uses NSS, which does not read the system trust store: .*certutil -d sql:DIR -A -t C,, /);
    assert.doesNotMatch(stderr, /ca-certificates\.crt/);
    const roots = await runcRunAsync(bundle, [join(dir, 'nssget'), '--roots']);
    assert.equal(roots.status, 0, roots.stderr);
    assert.ok(Number(/^(\d+) roots$/.exec(roots.stdout.trim())?.[1]) > 50, roots.stdout);
    const r = await runcRunAsync(bundle, [join(dir, 'nssget'), '127.0.0.1', String(good)]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.equal(r.stderr, 'nssget: handshake: SEC_ERROR_UNKNOWN_ISSUER\n');
  });

  it('NSS with --no-scaffold certs: the crypto modules still come (NSS cannot start without them), the root module does not', async () => {
    const { bundle, stderr } = await built.get('nss-nocerts')!;
    assert.match(stderr, /added libsoftokn3\.so, libfreeblpriv3\.so \(NSS loads them with dlopen; nssget uses libnss3\.so\)/);
    assert.doesNotMatch(stderr, /libnssckbi|note: nssget uses NSS/);
    const r = await runcRunAsync(bundle, [join(dir, 'nssget'), '--roots']);
    assert.equal(r.stderr, 'nssget: loading libnssckbi.so: PR_LOAD_LIBRARY_ERROR\n');
  });

  it('NSS with a private CA: a database holding it, shipped where the program opens it, is trusted', async () => {
    const { bundle, stderr } = await built.get('nss-db')!;
    assert.doesNotMatch(stderr, /note: nssget uses NSS/);
    const ok = await runcRunAsync(bundle, [join(dir, 'nssget'), '127.0.0.1', String(good), 'sql:/etc/pki/nssdb']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /\r\n\r\nhello over tls\n$/);
    const bad = await runcRunAsync(bundle, [join(dir, 'nssget'), '127.0.0.1', String(unknown), 'sql:/etc/pki/nssdb']);
    assert.equal(bad.stderr, 'nssget: handshake: SEC_ERROR_UNKNOWN_ISSUER\n');
  });

  it("NSS: the build root's system-wide database /etc/pki/nssdb comes, and the CA it holds is trusted", async () => {
    const { bundle, stderr } = await built.get('nss-sysdb')!;
    assert.match(stderr, /added \/etc\/pki\/nssdb \(the system-wide NSS database; nssget uses NSS\)/);
    assert.doesNotMatch(stderr, /note: nssget uses NSS/);
    const ok = await runcRunAsync(bundle, [join(dir, 'nssget'), '127.0.0.1', String(good), 'sql:/etc/pki/nssdb']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /hello over tls\n$/);
  });

  it('libcurl-nss: the PKCS#11 modules it names by path (the PEM reader, the root module) come; the root database and a CA file both work', async () => {
    const { bundle, stderr } = await built.get('curl-nss')!;
    assert.match(stderr, /added libsoftokn3\.so, libfreeblpriv3\.so, \/usr\/lib\/[^/]+\/libnssckbi\.so, \/usr\/lib\/[^/]+\/nss\/libnsspem\.so \(NSS loads them with dlopen; curlnss uses libnss3\.so\)/);
    assert.match(stderr, /added \/etc\/pki\/nssdb \(the system-wide NSS database; curlnss uses NSS\)/);
    const curl = (args: string[]) => runcRunAsync(bundle, [join(dir, 'curlnss'), ...args]);
    const db = await curl([`https://127.0.0.1:${good}/`]);
    assert.equal(db.status, 0, db.stderr);
    assert.equal(db.stdout, 'hello over tls\n');
    const bad = await curl([`https://127.0.0.1:${unknown}/`]);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /curlnss: SSL peer certificate/);
    // CURLOPT_CAINFO goes through libnsspem.so, which libcurl-nss loads by its full path.
    const pem = await curl([`https://127.0.0.1:${unknown}/`, join(dir, 'unknown-ca.crt')]);
    assert.equal(pem.status, 0, pem.stderr);
    assert.equal(pem.stdout, 'hello over tls\n');
  });

  it("NSS whose libnssckbi.so is p11-kit's trust module: the store it reads comes, and the build root's CA is trusted", async () => {
    const { bundle, stderr } = await built.get('nss-p11')!;
    assert.match(stderr, /added \/etc\/ssl\/certs\/ca-certificates\.crt \(libnssckbi\.so, an NSS trust module in \/, reads it\)/);
    assert.doesNotMatch(stderr, /note: nssget uses NSS/);
    const ok = await runcRunAsync(bundle, [join(dir, 'nssget'), '127.0.0.1', String(good)]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /hello over tls\n$/);
    const bad = await runcRunAsync(bundle, [join(dir, 'nssget'), '127.0.0.1', String(unknown)]);
    assert.equal(bad.stderr, 'nssget: handshake: SEC_ERROR_UNKNOWN_ISSUER\n');
  });
});
