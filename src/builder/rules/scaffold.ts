import { readFileSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { OptionError } from '../errors.js';
import { Plan } from '../plan.js';
import { Rule, RuleContext } from './context.js';
import { importers, names, namesTrustStore, SYSTEM_LIB, T, TLS_LIB } from './symbols.js';

const PASSWD = 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n';
// nogroup is Debian's name for 65534 (nginx's default "user nobody nogroup"); nobody is other systems'.
const GROUP = 'root:x:0:\nnobody:x:65534:\nnogroup:x:65534:\nnonroot:x:65532:\n';
// The databases other than these default to "files" without a line; hosts must read /etc/hosts before DNS (glibc's
// default without the file is "dns [!UNAVAIL=return] files", which never reaches /etc/hosts when DNS answers).
const NSSWITCH = 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n';

/**
 * The build root's system accounts (ids 1-999: daemon, www-data, postgres...), which services name in their
 * configuration (nginx's "user www-data;"); shells become nologin, group members are dropped.
 */
function systemAccounts(plan: Plan, file: string, kind: 'passwd' | 'group'): string {
  const st = plan.fs.stat(file);
  if (!st?.stats.isFile()) return '';
  const known = new Set((kind === 'passwd' ? PASSWD : GROUP).split('\n').map((l) => l.split(':')[0]));
  const out: string[] = [];
  for (const line of readFileSync(plan.fs.hostReal(st.located), 'utf8').split('\n')) {
    const f = line.split(':');
    const id = Number(f[2]);
    if (line.startsWith('#') || !/^\d+$/.test(f[2] ?? '') || id < 1 || id > 999 || known.has(f[0])) continue;
    if (kind === 'passwd' && f.length === 7) out.push([f[0], 'x', f[2], f[3], f[4], f[5], '/usr/sbin/nologin'].join(':'));
    if (kind === 'group' && f.length === 4) out.push([f[0], 'x', f[2], ''].join(':'));
  }
  return out.map((l) => l + '\n').join('');
}

/** Only the programs' own imports: libraries import the user functions for paths most programs never take. */
const userImporters = (x: RuleContext) => importers(x.closures, T.users).filter((p) => x.isProgram(p));
const namedUser = (x: RuleContext) => !!x.opts.user && !/^\d+(:\d+)?$/.test(x.opts.user);

export const passwd: Rule = {
  name: 'passwd',
  applies: (x) =>
    !x.opts.hasBase &&
    (x.opts.scaffold.passwd || !!x.opts.force?.passwd) &&
    (userImporters(x).length > 0 || namedUser(x) || !!x.opts.force?.passwd) &&
    !x.plan.entries.has('/etc/passwd'),
  apply(x) {
    const users = userImporters(x);
    const why = users.length ? `used by ${names(users)}` : namedUser(x) ? x.opt('user', x.opts.user) : x.opt('scaffold', 'passwd');
    x.gen('/etc/passwd', PASSWD + systemAccounts(x.plan, '/etc/passwd', 'passwd'), 0o644, `scaffold: users root, nobody, nonroot (65532) and the root's system accounts; ${why}`);
    x.gen('/etc/group', GROUP + systemAccounts(x.plan, '/etc/group', 'group'), 0o644, `scaffold: groups for /etc/passwd (nogroup 65534 included); ${why}`);
    x.say(`/etc/passwd and /etc/group (${why})`);
  },
};

export const nsswitch: Rule = {
  name: 'nsswitch',
  applies: (x) => !x.opts.hasBase && x.glibc.length > 0 && (userImporters(x).length > 0 || importers(x.closures, T.hosts).length > 0) && !x.plan.entries.has('/etc/nsswitch.conf'),
  apply(x) {
    x.gen('/etc/nsswitch.conf', NSSWITCH, 0o644, 'scaffold: a minimal nsswitch.conf (files and dns are built into glibc)');
    x.say('/etc/nsswitch.conf (minimal)');
  },
};

/** /tmp (1777) and /run: every Debian program may expect them. */
export const dirs: Rule = {
  name: 'tmp-run',
  applies: (x) => !x.opts.hasBase && x.opts.scaffold.tmp,
  apply(x) {
    if (!x.plan.entries.has('/tmp')) x.plan.add({ path: '/tmp', type: 'dir', mode: 0o1777, uid: 0, gid: 0, group: 'libs', reason: 'scaffold: /tmp (1777)' });
    if (!x.plan.entries.has('/run')) x.plan.add({ path: '/run', type: 'dir', mode: 0o755, uid: 0, gid: 0, group: 'libs', reason: 'scaffold: /run' });
  },
};

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Why the trust store is needed, or null. */
function trustReason(x: RuleContext): string | null {
  if (x.opts.force?.certs) return x.opt('scaffold', 'certs');
  const trust = importers(x.closures, T.trust, new RegExp(`${SYSTEM_LIB.source}|${TLS_LIB.source}`));
  if (trust.length) return `${names(trust)} reads the system trust store`;
  const named = namesTrustStore(x.closures, x.plan.statics.map((s) => ({ path: s.path, host: s.realPath, elf: s.elf, hostPath: s.hostPath })), x.plan.fs, x.plan.held);
  return named ? `${posix.basename(named)} names a system CA path` : null;
}

/**
 * CA certificates when something reads the system trust store: a trust-store function is imported, or an object
 * names a CA path (libcurl's compiled-in bundle, Go's crypto/x509). Merely linking libssl is not enough: redis links
 * it, but only ever loads the CA file its configuration names. GnuTLS reads the same bundle (Debian builds it with
 * --with-default-trust-store-file=/etc/ssl/certs/ca-certificates.crt).
 */
export const certs: Rule = {
  name: 'certs',
  applies: (x) => !x.opts.hasBase && (x.opts.scaffold.certs || !!x.opts.force?.certs),
  apply(x) {
    const why = trustReason(x);
    if (!why) return;
    if (!x.plan.fs.stat(CA_BUNDLE)) {
      x.warn(`${why}, but ${x.plan.fs.root} has no ${CA_BUNDLE}: install ca-certificates or pass ${x.opt('noScaffold', 'certs')}`);
      return;
    }
    x.plan.addLinkChain(CA_BUNDLE, 'libs', `scaffold: CA certificates (${why})`, CA_BUNDLE);
    x.say(`${CA_BUNDLE} (${why})`);
  },
};

/** Imports that read OpenSSL's configuration file (openssl req, ca, and programs that load it themselves). */
const OPENSSL_CONF = /^(CONF_modules_load(_file)?|CONF_get1_default_config_file|CONF_load|NCONF_load|OPENSSL_config)$/;

const OPENSSLDIR = Buffer.from('OPENSSLDIR: "', 'latin1');

/**
 * OPENSSLDIR compiled into libcrypto ("OPENSSLDIR: \"/usr/lib/ssl\"", as `openssl version -d` prints it): the first
 * such string whose value (no quote, no NUL) is not empty. Searched in the file's bytes, not in a string of them (a
 * libcrypto is 4 to 5 MB).
 */
function opensslDir(libcrypto: string): string | null {
  const b = readFileSync(libcrypto);
  for (let i = b.indexOf(OPENSSLDIR); i >= 0; i = b.indexOf(OPENSSLDIR, i + 1)) {
    const start = i + OPENSSLDIR.length;
    let end = start;
    while (end < b.length && b[end] !== 0x22 && b[end] !== 0) end++;
    if (end > start && b[end] === 0x22) return b.toString('latin1', start, end);
  }
  return null;
}

/**
 * OpenSSL's own directory as the root lays it out (Debian: /usr/lib/ssl with certs -> /etc/ssl/certs, cert.pem ->
 * the bundle, openssl.cnf -> /etc/ssl/openssl.cnf): the default verify paths (SSL_CTX_set_default_verify_paths,
 * Python's ssl, node --use-openssl-ca) are OPENSSLDIR/cert.pem and OPENSSLDIR/certs, not the bundle's own path;
 * openssl req and friends need openssl.cnf.
 */
export const opensslDirRule: Rule = {
  name: 'openssl-dir',
  applies: (x) => !x.opts.hasBase && x.opts.scaffold.certs && x.closures.some((c) => c.libraries.some((l) => /^libcrypto\.so\./.test(posix.basename(l.path)))),
  apply(x) {
    const plan = x.plan;
    const bundle = plan.entries.has(CA_BUNDLE);
    const conf = importers(x.closures, OPENSSL_CONF, /^(libcrypto|libssl)\./);
    const names = [...(bundle ? ['certs', 'cert.pem'] : []), ...(bundle || conf.length ? ['openssl.cnf'] : [])];
    // Nothing to ship (no CA bundle, nothing reads openssl.cnf: redis): libcrypto is not searched.
    if (!names.length) return;
    const lib = x.closures.flatMap((c) => c.libraries).find((l) => /^libcrypto\.so\./.test(posix.basename(l.path)))!;
    const dir = opensslDir(plan.fs.hostReal(lib));
    if (!dir || !plan.fs.isDirectory(dir)) return;
    const shipped: string[] = [];
    for (const n of names) {
      const p = posix.join(dir, n);
      const loc = plan.fs.locate(posix.dirname(p));
      const st = loc ? plan.fs.lstat(posix.join(loc.realPath, n)) : null;
      if (!st) continue;
      if (n === 'certs' && st.isSymbolicLink()) {
        // The link only: its target (/etc/ssl/certs) holds the bundle already; its hashed links are not needed by
        // OpenSSL when cert.pem is there.
        plan.add({ path: p, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: readLink(plan, posix.join(loc!.realPath, n)), group: 'libs', reason: `scaffold: OpenSSL's certificate directory (${dir})` });
      } else if (n !== 'certs') {
        plan.addLinkChain(p, 'libs', `scaffold: OpenSSL's ${n} (${dir})`, p);
      } else continue;
      shipped.push(p);
    }
    if (shipped.length) x.say(`${shipped.join(', ')} (OpenSSL's default paths${conf.length && !bundle ? `; ${posix.basename(conf[0])} reads openssl.cnf` : ''})`);
  },
};

function readLink(plan: Plan, inRoot: string): string {
  return readlinkSync(plan.fs.host(inRoot));
}

/**
 * Locales: glibc has only C and POSIX built in (C.UTF-8 too before 2.35); a LANG/LC_* in the image's environment
 * makes setlocale(LC_ALL, "") look for /usr/lib/locale/NAME, with the codeset normalised (UTF-8 -> utf8).
 */
export const locale: Rule = {
  name: 'locale',
  applies: (x) => !x.opts.hasBase && x.opts.scaffold.locale && !!x.opts.envLocale && x.glibc.length > 0 && !/^(C|POSIX)$/.test(x.opts.envLocale) && importers(x.closures, T.locale).length > 0,
  apply(x) {
    const env = x.opts.envLocale!;
    const m = /^([^.@]+)(?:\.([^@]+))?(@.*)?$/.exec(env);
    const norm = m?.[2] ? m[2].toLowerCase().replace(/[^a-z0-9]/g, '') : undefined;
    const names = [...new Set([env, m && norm ? `${m[1]}.${norm}${m[3] ?? ''}` : env])];
    const found = names.map((n) => posix.join('/usr/lib/locale', n)).find((p) => x.plan.fs.isDirectory(p));
    if (found) {
      x.plan.addLinkChain(found, 'libs', `scaffold: locale ${env} (named by the image's environment; setlocale loads it)`, found);
      x.say(`locale ${posix.basename(found)} (${env} in the image's environment)`);
    } else x.warn(`the image's environment names the locale ${env}, but ${x.plan.fs.root} has no /usr/lib/locale/${names[names.length - 1]}: setlocale will fall back to C`);
  },
};

/**
 * Time zones: with TZ unset (or TZ=UTC) glibc, musl and Go all fall back to UTC without any file, so a zone is
 * shipped only when one is named: --tz, a TZ in the image's environment that names a zone file (static programs
 * such as Go read zoneinfo without importing anything), or --scaffold tz for the whole database.
 */
export const tz: Rule = {
  name: 'tz',
  applies: (x) => !x.opts.hasBase && (x.opts.scaffold.tz || !!x.opts.force?.tz),
  apply(x) {
    const { plan, opts } = x;
    const tzUsers = importers(x.closures, T.tz);
    const envTz = opts.envTz?.replace(/^:/, '');
    const envZone = envTz && !/^(UTC|UTC0|GMT|Etc\/UTC)$/.test(envTz) && plan.fs.stat(posix.join('/usr/share/zoneinfo', envTz)) ? envTz : null;
    const wanted = opts.tz.length ? opts.tz : opts.force?.tz ? ['all'] : envZone ? [envZone] : [];
    if (wanted.length) {
      const base = '/usr/share/zoneinfo';
      for (const z of wanted) {
        const p = z === 'all' ? base : posix.join(base, z);
        if (!plan.fs.stat(p)) throw new OptionError('tz', z, `${p} does not exist in ${plan.fs.root} (install tzdata)`);
        const why = opts.tz.length ? x.opt('tz', z) : opts.force?.tz ? x.opt('scaffold', 'tz') : `TZ=${opts.envTz} in the image's environment`;
        plan.addLinkChain(p, 'libs', `scaffold: time zone ${z} (${why}${tzUsers.length ? `; used by ${names(tzUsers)}` : ''})`, p);
      }
      // Debian's database holds localtime -> /etc/localtime, the host's own setting: it would dangle in the image.
      const lt = plan.entries.get(posix.join(base, 'localtime'));
      if (lt?.type === 'symlink' && lt.linkname === '/etc/localtime' && !plan.entries.has('/etc/localtime')) plan.entries.delete(lt.path);
      x.say(`zoneinfo: ${wanted.join(', ')}`);
    } else if (opts.scaffold.tz && tzUsers.some((p) => x.isProgram(p)) && !plan.entries.has('/usr/share/zoneinfo/UTC')) {
      const progs = [...new Set(tzUsers.filter((p) => x.plan.programs.some((q) => q.path === p || q.realPath === p)).map((t) => posix.basename(t)))];
      if (progs.length) x.note(`${progs.join(', ')} use${progs.length === 1 ? 's' : ''} the time-zone functions: no zoneinfo shipped, times are UTC; for a TZ set at run time add ${x.opt('tz', 'ZONE')} (or ${x.opt('scaffold', 'tz')} for all zones)`);
    }
  },
};

