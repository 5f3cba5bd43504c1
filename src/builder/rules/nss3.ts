import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { Closure } from '../../elf/resolve.js';
import { Rule, RuleContext } from './context.js';
import { absolutePaths } from './runtime.js';
import { names, objects, SYSTEM_LIB } from './symbols.js';

/** System trust locations a PKCS#11 trust module may read (p11-kit's trust paths: Debian's bundle, Fedora's tree). */
const TRUST_LOCATION = /^\/etc\/(ssl|pki)\/|^\/usr\/share\/(pki|ca-certificates)\//;

/** NSS's own libraries (they name their modules themselves) and the API whose importers are NSS users. */
const NSS_OWN = /^lib(nss3|nssutil3|smime3|ssl3|softokn3|freebl3|freeblpriv3|nssckbi|nssdbm3|nsspem)\.so$/;
const NSS_API = /^(NSS_|SECMOD_)/;

/** The system-wide NSS database (Fedora's convention; Debian creates none): programs that open sql:/etc/pki/nssdb. */
const SYSTEM_DB = '/etc/pki/nssdb';

type NssGroup = { dir: string; closure: Closure; users: string[] };

/** Users of libnss3.so by the directory the loader finds it in (Firefox carries its own NSS beside it). */
function nssGroups(x: RuleContext): NssGroup[] {
  const byDir = new Map<string, NssGroup>();
  for (const c of x.closures) {
    const lib = c.libraries.find((l) => posix.basename(l.path) === 'libnss3.so');
    if (!lib) continue;
    const dir = posix.dirname(lib.path);
    const g = byDir.get(dir) ?? { dir, closure: c, users: [] };
    byDir.set(dir, g);
    g.users.push(c.file.path);
  }
  return [...byDir.values()];
}

/**
 * The system trust locations a file names (NUL-terminated strings, colon-separated lists split): p11-kit's trust
 * module carries its compiled-in trust paths this way ("/etc/ssl/certs/ca-certificates.crt" on Debian).
 */
export function namedTrustLocations(hostFile: string): string[] {
  const out = new Set<string>();
  for (const m of readFileSync(hostFile).toString('latin1').matchAll(/(?<=\0)\/[\x21-\x7e]+(?=\0)/g)) {
    for (const p of m[0].split(':')) if (TRUST_LOCATION.test(p)) out.add(posix.normalize(p));
  }
  return [...out].sort();
}

/**
 * NSS (libnss3.so, Mozilla's TLS library): what it loads with dlopen and where its trust comes from.
 *  - its PKCS#11 crypto module libsoftokn3.so and that module's libfreeblpriv3.so (libfreebl3.so before NSS 3.16),
 *    loaded from libnss3's own directory on every NSS_Init/NSS_NoDB_Init, with their .chk files (FIPS mode checks
 *    them; the kernel's fips_enabled decides, and a container shares the host's kernel);
 *  - the built-in roots module libnssckbi.so: NSS does not read /etc/ssl/certs. Programs load this module by name
 *    (curl, Chromium, tstclnt -b), or a database's pkcs11.txt names it, and then trust Mozilla's roots compiled
 *    into it, plus what the database they open holds. When the root's libnssckbi.so is p11-kit's trust module
 *    (Fedora's layout, or an admin's link on Debian), it reads the system store: the locations it names come too;
 *  - the system-wide database /etc/pki/nssdb when the root has one.
 * Trust parts are scaffolding (--no-scaffold certs turns them off); the crypto modules are libraries NSS cannot
 * initialise without.
 */
export const nss3: Rule = {
  name: 'libnss3',
  applies: (x) => !x.opts.noRules && nssGroups(x).length > 0,
  apply(x) {
    for (const g of nssGroups(x)) nssOf(x, g);
  },
};

function nssOf(x: RuleContext, { dir, closure, users }: NssGroup): void {
  const plan = x.plan;
  const who = names(users);
  const uses = users.length === 1 ? 'uses' : 'use';
  const shippedSources = new Set([...plan.entries.values()].map((e) => e.source).filter((s): s is string => !!s));
  // The same file already shipped under another name (the runtime rule's /usr/lib copy of a /lib library) serves.
  const shipped = (inRoot: string) => {
    const loc = plan.fs.locate(inRoot);
    return !!loc && shippedSources.has(plan.fs.host(loc.realPath));
  };
  const added: string[] = [];
  const trust = !x.opts.hasBase && (x.opts.scaffold.certs || !!x.opts.force?.certs);
  const readsStore: string[] = [];
  // `exact`: loaded from that very path (named by a program), so the same file elsewhere in the image does not serve.
  const addModule = (inRoot: string, why: string, exact = false) => {
    if (exact ? plan.entries.has(inRoot) : shipped(inRoot)) return;
    const stores = trust ? namedTrustLocations(plan.fs.host(plan.fs.locate(inRoot)!.realPath)).filter((p) => plan.fs.stat(p)) : [];
    shippedSources.add(plan.fs.host(plan.fs.locate(inRoot)!.realPath));
    plan.addLibrary(inRoot, `rule: ${why}${stores.length ? `, a trust module reading ${stores.join(', ')}` : ''}; NSS loads it with dlopen (${who} ${uses} libnss3.so)`);
    const chk = inRoot.replace(/\.so$/, '.chk');
    if (plan.fs.stat(chk)) plan.addLinkChain(chk, 'libs', `rule: ${posix.basename(chk)}, the FIPS self-check of ${posix.basename(inRoot)}`, chk);
    added.push(exact ? inRoot : posix.basename(inRoot));
    for (const p of stores) {
      readsStore.push(p);
      if (plan.entries.has(p)) continue;
      plan.addLinkChain(p, 'libs', `scaffold: CA certificates (${posix.basename(inRoot)}, an NSS trust module, reads them)`, p);
      x.say(`${p} (${posix.basename(inRoot)}, an NSS trust module in ${plan.fs.root}, reads it)`);
    }
  };

  const softokn = posix.join(dir, 'libsoftokn3.so');
  if (!plan.fs.stat(softokn)) {
    x.warn(`${who} ${uses} NSS, which loads libsoftokn3.so from ${dir}, but ${plan.fs.root} has none there: NSS_Init will fail`);
    return;
  }
  addModule(softokn, "NSS's crypto module (softoken)");
  const freebl = ['libfreeblpriv3.so', 'libfreebl3.so'].map((n) => posix.join(dir, n)).find((p) => plan.fs.stat(p));
  if (freebl) addModule(freebl, "softoken's crypto primitives (freebl)");

  // PKCS#11 modules an NSS user names by absolute path (libcurl-nss: .../nss/libnsspem.so for PEM files, and the
  // root module): loaded from exactly there.
  const closures = x.closures.filter((c) => users.includes(c.file.path));
  for (const o of objects(closures)) {
    const base = posix.basename(o.path);
    if (NSS_OWN.test(base) || SYSTEM_LIB.test(base) || !o.elf.imports?.some((s) => NSS_API.test(s))) continue;
    for (const p of absolutePaths(o.hostPath ?? plan.fs.host(o.host))) {
      if (!/\.so(\.\d+)*$/.test(p) || !plan.fs.stat(p)?.stats.isFile()) continue;
      if (posix.basename(p) === 'libnssckbi.so' && !trust) continue;
      addModule(p, `a PKCS#11 module ${base} loads by its path`, true);
    }
  }

  if (trust) {
    const beside = posix.join(dir, 'libnssckbi.so');
    const roots = plan.resolver.findForDlopen(closure, 'libnssckbi.so')?.path ?? (plan.fs.stat(beside) ? beside : null);
    if (roots) addModule(roots, "NSS's root module (Mozilla's built-in root certificates)");
    if (plan.fs.isDirectory(SYSTEM_DB) && !plan.entries.has(SYSTEM_DB)) {
      plan.addLinkChain(SYSTEM_DB, 'libs', `scaffold: the system-wide NSS database (sql:${SYSTEM_DB}; ${who} ${uses} NSS)`, SYSTEM_DB);
      x.say(`${SYSTEM_DB} (the system-wide NSS database; ${who} ${uses} NSS)`);
    }
  }
  if (added.length) x.say(`${added.join(', ')} (NSS loads ${added.length === 1 ? 'it' : 'them'} with dlopen; ${who} ${uses} libnss3.so)`);
  if (trust && !readsStore.length && !plan.entries.has(SYSTEM_DB)) {
    x.note(
      `${who} ${uses} NSS, which does not read the system trust store: it trusts Mozilla's roots in libnssckbi.so and the NSS database the program opens; for a private CA ship a database holding it (certutil -d sql:DIR -A -t C,, -n NAME -i CA.pem) where the program opens it, e.g. DIR:/etc/pki/nssdb`,
    );
  }
}
