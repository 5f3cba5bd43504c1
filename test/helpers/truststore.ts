import { appendFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './sh.js';

/**
 * The host's trust store plus a test CA, seen only by the commands run through `wrap`: a copy of /etc/ssl/certs
 * (the CA appended to its bundle and hashed in) bind-mounted over /etc/ssl/certs in a private mount namespace.
 * Tests never change the host's own store, which other tests' builds read at the same time.
 */
export function privateTrustStore(dir: string, caCertFile: string): { wrap: (argv: string[]) => string[] } {
  const certs = join(dir, 'trust-store-certs');
  mkdirSync(certs, { recursive: true });
  cpSync('/etc/ssl/certs', certs, { recursive: true, verbatimSymlinks: true });
  const pem = readFileSync(caCertFile, 'utf8');
  writeFileSync(join(certs, 'ocislim-test-ca.pem'), pem);
  appendFileSync(join(certs, 'ca-certificates.crt'), pem.endsWith('\n') ? pem : pem + '\n');
  sh(`openssl rehash ${certs} >/dev/null 2>&1 || c_rehash ${certs} >/dev/null 2>&1`);
  return {
    wrap: (argv) => ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/ssl/certs && exec "$@"', certs, ...argv],
  };
}
