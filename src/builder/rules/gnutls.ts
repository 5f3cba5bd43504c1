import { posix } from 'node:path';
import { Rule, RuleContext } from './context.js';
import { absolutePaths } from './runtime.js';
import { names } from './symbols.js';

/** The trust files GnuTLS names are the certs rule's to decide (only programs that read the system store need them). */
const TRUST = /^\/etc\/(ssl|pki)\//;

function gnutlsUsers(x: RuleContext): { lib: string; users: string[] } | null {
  let found: { lib: string; users: string[] } | null = null;
  for (const c of x.closures) {
    const lib = c.libraries.find((l) => /^libgnutls\.so\./.test(posix.basename(l.path)));
    if (!lib) continue;
    found ??= { lib: x.plan.fs.hostReal(lib), users: [] };
    found.users.push(c.file.path);
  }
  return found;
}

/**
 * GnuTLS's system-wide configuration, as OpenSSL's openssl.cnf: the files below /etc that libgnutls names and the
 * root has (Debian: /etc/gnutls/config, the priority overrides read at library load; /etc/gnutls/pkcs11.conf). Debian
 * installs neither, so this ships nothing unless the root's administrator made them. The trust store GnuTLS reads
 * (its compiled-in /etc/ssl/certs/ca-certificates.crt) comes with the certs rule.
 */
export const gnutlsConfig: Rule = {
  name: 'gnutls-config',
  applies: (x) => !x.opts.hasBase && (x.opts.scaffold.certs || !!x.opts.force?.certs) && gnutlsUsers(x) !== null,
  apply(x) {
    const { lib, users } = gnutlsUsers(x)!;
    const plan = x.plan;
    const shipped: string[] = [];
    for (const p of absolutePaths(lib)) {
      if (!p.startsWith('/etc/') || TRUST.test(p) || plan.entries.has(p) || !plan.fs.stat(p)?.stats.isFile()) continue;
      plan.addLinkChain(p, 'libs', `scaffold: GnuTLS's system-wide configuration (libgnutls reads it; ${names(users)} use${users.length === 1 ? 's' : ''} GnuTLS)`, p);
      shipped.push(p);
    }
    if (shipped.length) x.say(`${shipped.join(', ')} (GnuTLS's system-wide configuration in ${plan.fs.root}; ${names(users)} use${users.length === 1 ? 's' : ''} GnuTLS)`);
  },
};
