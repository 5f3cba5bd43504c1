/**
 * NODE_EXTRA_CA_CERTS, when Node did not load it at start.
 *
 * Node 20 reads and parses that file as the process starts, whether or not the process ever speaks TLS: with
 * OpenSSL 3 that is ~45 ms of CPU for a system bundle of ~150 certificates (nodejs/node#40524; Node 23 moved it off
 * the main thread), more than a warm build spends planning. The launcher (bin/ocislim.js) keeps the variable from
 * Node, puts it back into the environment for the programs ocislim starts, and hands the file here; the registry
 * client (trust.ts) adds its certificates to Node's store at its first TLS connection, as Node would have at start.
 * This module holds only the file's name: it is loaded at every start, node:tls is not.
 */
let deferred: string | undefined;

/** The process was started without Node loading NODE_EXTRA_CA_CERTS: the transport trusts `file` itself. */
export function trustDeferredExtraCa(file: string): void {
  deferred = file || undefined;
}

/** The file handed over by trustDeferredExtraCa, if any. */
export function deferredExtraCa(): string | undefined {
  return deferred;
}
