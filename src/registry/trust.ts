import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SecureContext } from 'node:tls';
import type { buildConnector as buildConnectorType } from 'undici';
import type { Log } from '../log.js';
import { CaFileError } from './errors.js';
import { deferredExtraCa } from './extra-ca.js';

/**
 * Which certificate authorities the registry transport trusts: Node's own store (its bundled list, or the system's
 * with --use-openssl-ca), plus --ca-file, plus NODE_EXTRA_CA_CERTS where Node did not put it in that store itself.
 */

/** A PEM file of certificate authorities trusted beside Node's store. */
export interface Trusted {
  file: string;
  pem: string;
}

const REASONS: Record<string, string> = { ENOENT: 'no such file', EISDIR: 'is a directory', EACCES: 'permission denied', EPERM: 'permission denied' };

/** A PEM file's text, or a CaFileError saying why it cannot be used. */
export function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CaFileError(file, (code && REASONS[code]) ?? (e as Error).message);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new CaFileError(file, 'no PEM certificate in it');
  return pem;
}

const warned = new Set<string>();

/**
 * The NODE_EXTRA_CA_CERTS file the transport must trust itself: always when the launcher kept it from Node
 * (extra-ca.ts); else only beside --ca-file (its secure context is made anew, from Node's store as it was before Node
 * added the file). A file that cannot be used is what Node makes of it: a warning (once; Node's own at start when it
 * read the file itself), and the other authorities alone.
 */
export function extraFromEnv(withCaFile: boolean, log: Log | undefined): Trusted[] {
  const deferred = deferredExtraCa();
  const file = deferred ?? (withCaFile ? process.env.NODE_EXTRA_CA_CERTS || undefined : undefined);
  if (!file) return [];
  try {
    return [{ file, pem: readCaFile(file) }];
  } catch (e) {
    if (deferred && !warned.has(file)) {
      warned.add(file);
      const text = `NODE_EXTRA_CA_CERTS ${file}: ${e instanceof CaFileError ? e.reason : (e as Error).message}; its certificates are not trusted`;
      if (log) log.warn(text);
      else process.emitWarning(text);
    }
    return [];
  }
}

type Connector = ReturnType<typeof buildConnectorType>;

/** Secure contexts made, by the files they trust: every transport of the process to the same authorities shares one. */
const secureContexts = new Map<string, SecureContext>();

/** node:tls, loaded at the first TLS connection (a registry on loopback speaks plain http: 3-5 ms saved). */
let tls: typeof import('node:tls') | undefined;

/**
 * Node's store with `trusted` added: the context Node's own secure contexts start from (createSecureContext with no
 * `ca`: the bundled or the system store), each file's certificates added to it, as Node adds NODE_EXTRA_CA_CERTS. A
 * runtime without that method gets the bundled list and the files (a `ca` option replaces the store).
 */
function contextTrusting(trusted: Trusted[]): SecureContext {
  tls ??= createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  const ctx = tls.createSecureContext();
  const native = (ctx as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
  if (typeof native?.addCACert !== 'function') return tls.createSecureContext({ ca: [...tls.rootCertificates, ...trusted.map((t) => t.pem)] });
  for (const t of trusted) native.addCACert(t.pem);
  return ctx;
}

/**
 * undici's connector, with the trusted authorities put together at the first TLS connection: one secure context for
 * every connection (a `ca` option would have each connection parse every certificate again), and none for plain
 * http.
 */
export function connector(buildConnector: typeof buildConnectorType, timeout: number, extra: () => Trusted[]): Connector {
  let plain: Connector | undefined;
  let secure: Connector | undefined;
  return (opts, callback) => {
    if (opts.protocol !== 'https:') return (plain ??= buildConnector({ timeout }))(opts, callback);
    if (!secure) {
      const trusted = extra();
      const files = trusted.map((t) => t.file).join(', ');
      let secureContext = secureContexts.get(files);
      try {
        if (trusted.length && !secureContext) secureContexts.set(files, (secureContext = contextTrusting(trusted)));
      } catch (e) {
        return callback(new CaFileError(files, (e as Error).message), null);
      }
      secure = buildConnector({ timeout, ...(secureContext ? { secureContext } : {}) });
    }
    return secure(opts, callback);
  };
}
