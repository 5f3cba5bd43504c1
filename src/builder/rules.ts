import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { posix } from 'node:path';
import { ElfFile } from '../elf/reader.js';
import { Closure } from '../elf/resolve.js';
import { BuildError } from './errors.js';
import { LayerGroup, Plan } from './plan.js';

/** Scaffolding items, each on by default where the program needs it. */
export interface ScaffoldOptions {
  passwd: boolean;
  tmp: boolean;
  certs: boolean;
  tz: boolean;
  locale: boolean;
}

export interface RuleOptions {
  /** Turn off the dlopen rules (libgcc_s); scaffolding has its own switches. */
  noRules?: boolean;
  scaffold: ScaffoldOptions;
  /** Scaffolding items wanted even when no trigger fires (--scaffold certs). */
  force?: Partial<ScaffoldOptions>;
  /** Time zones to ship (--tz; "all" for the whole database). */
  tz: string[];
  /** TZ from the image's environment: its zone is shipped when the program uses the time-zone functions. */
  envTz?: string;
  /** Extra libraries (names searched as dlopen would, or paths), each with its closure. */
  withLibs: string[];
  /** gconv modules for iconv (file names such as ISO8859-1 or EUC-JP, or "all"); opt-in. */
  gconv?: string[];
  /** The library glibc loads for IDN names in getaddrinfo/getnameinfo (AI_IDN, NI_IDN); opt-in. */
  idn?: boolean;
  /** LANG, LC_ALL or LC_CTYPE from the image's environment: that locale is shipped when the program sets locales. */
  envLocale?: string;
  /** USER of the image, to make sure a named user exists. */
  user?: string;
  /** Whether a base image provides the system files (then scaffolding is not needed). */
  hasBase: boolean;
}

const T = {
  unwinder: /^(pthread_cancel|pthread_exit|backtrace|backtrace_symbols|backtrace_symbols_fd)$/,
  users: /^(getpw(nam|uid|ent)(_r)?|getgr(nam|gid|ent)(_r)?|getgrouplist|initgroups|getspnam(_r)?|getlogin(_r)?)$/,
  hosts: /^(getaddrinfo|gethostbyname2?(_r)?|gethostbyaddr(_r)?|getnameinfo)$/,
  // Functions that read the system trust store. SSL_CTX_load_verify_locations and X509_STORE_load_file take the
  // caller's path (redis's tls-ca-cert-file), so they are no signal on their own.
  trust: /^(SSL_CTX_set_default_verify_(paths|file|dir|store)|X509_STORE_set_default_paths(_ex)?|gnutls_certificate_set_x509_system_trust)$/,
  tz: /^(tzset|localtime(_r)?|mktime|strftime|timegm|ctime(_r)?)$/,
  iconv: /^iconv_open$/,
  locale: /^(setlocale|newlocale)$/,
  dlopen: /^(dlopen|dlmopen)$/,
};

const SYSTEM_LIB = /^(libc\.so|libm\.so|ld-linux|ld64\.so|ld-musl)/;
/** TLS libraries: they implement the trust-store functions (and libssl imports libcrypto's), so they are no signal. */
const TLS_LIB = /^lib(ssl|crypto|gnutls|mbedtls|mbedx509|wolfssl|nss3|nssutil3|smime3)\./;

type ElfObject = { path: string; host: string; elf: ElfFile; hostPath?: string };

/** Every object of the closures: programs first, then their libraries (root path for reading, image path for naming). */
function objects(closures: Closure[], statics: ElfObject[] = []): ElfObject[] {
  const out = new Map<string, ElfObject>();
  for (const s of statics) out.set(s.path, s);
  for (const c of closures) {
    out.set(c.file.path, { path: c.file.path, host: c.file.realPath, elf: c.elf });
    for (const l of c.libraries) if (!out.has(l.path)) out.set(l.path, { path: l.path, host: l.realPath, elf: l.elf });
  }
  return [...out.values()];
}

/** Which objects import a symbol matching `re` (skipping libc and the loader, which define or forward them). */
function importers(closures: Closure[], re: RegExp, skip: RegExp = SYSTEM_LIB): string[] {
  return objects(closures)
    .filter((o) => !skip.test(posix.basename(o.path)) && o.elf.imports?.some((s) => re.test(s)))
    .map((o) => o.path);
}

/** Where programs look for the CA bundle (OpenSSL-using code such as libcurl, GnuTLS users, Go's crypto/x509). */
const TRUST_PATHS = ['/etc/ssl/certs', '/etc/pki/tls/certs', '/etc/pki/ca-trust', '/etc/ssl/cert.pem', '/etc/ssl/ca-bundle.pem'].map((s) => Buffer.from(s));

/** Imports of a TLS API: only such objects (and programs, which may carry a static TLS stack) can name a CA path. */
const TLS_API = /^(SSL_|X509_|gnutls_|mbedtls_|wolfSSL_|CERT_|NSS_)/;

/**
 * The first program, or library using a TLS API (not libc, not a TLS library itself), whose bytes name a system CA
 * path; read in 1 MiB slices.
 */
function namesTrustStore(closures: Closure[], statics: ElfObject[], fs: { host(p: string): string }): string | null {
  const overlap = Math.max(...TRUST_PATHS.map((n) => n.length));
  const programs = new Set([...statics.map((s) => s.path), ...closures.map((c) => c.file.path)]);
  for (const o of objects(closures, statics)) {
    const base = posix.basename(o.path);
    if (SYSTEM_LIB.test(base) || TLS_LIB.test(base)) continue;
    if (!programs.has(o.path) && !o.elf.imports?.some((s) => TLS_API.test(s))) continue;
    const fd = openSync(o.hostPath ?? fs.host(o.host), 'r');
    try {
      const buf = Buffer.allocUnsafe((1 << 20) + overlap);
      let pos = 0;
      let kept = 0;
      for (;;) {
        const n = readSync(fd, buf, kept, buf.length - kept, pos);
        if (n <= 0) break;
        pos += n;
        const view = buf.subarray(0, kept + n);
        if (TRUST_PATHS.some((t) => view.includes(t))) return o.path;
        kept = Math.min(overlap, view.length);
        view.copy(buf, 0, view.length - kept);
      }
    } finally {
      closeSync(fd);
    }
  }
  return null;
}

const PASSWD = 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n';
// The databases other than these default to "files" without a line; hosts must read /etc/hosts before DNS (glibc's
// default without the file is "dns [!UNAVAIL=return] files", which never reaches /etc/hosts when DNS answers).
const NSSWITCH = 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n';

/**
 * What ldd cannot see but the program needs to run: libraries glibc dlopens, and the files a scratch image lacks.
 * Every addition carries its reason (shown by --explain); the returned lines report them ("added ...") and the
 * choices the user may want to revisit.
 */
export function applyRules(plan: Plan, opts: RuleOptions): string[] {
  const added: string[] = [];
  const closures = plan.closures;
  const glibc = closures.filter((c) => c.flavour === 'glibc' && c.elf.interp);
  const say = (what: string) => added.push(`added ${what}`);
  const isProgram = (path: string) => closures.some((c) => c.file.path === path);
  const note = (what: string) => added.push(`note: ${what}`);
  // Scaffolding goes with the libraries: the loader-and-libc layer stays identical for every program of a system.
  const gen = (path: string, content: string, mode: number, reason: string, group: LayerGroup = 'libs') =>
    plan.add({ path, type: 'file', mode, uid: 0, gid: 0, content: Buffer.from(content), group, reason });

  // libgcc_s: glibc loads it on first use of cancellation or unwinding, and aborts without it.
  const unwind = opts.noRules ? [] : importers(glibc, T.unwinder);
  if (unwind.length) {
    for (const c of glibc) {
      if (c.libraries.some((l) => posix.basename(l.path) === 'libgcc_s.so.1')) continue;
      const loc = plan.resolver.findForDlopen(c, 'libgcc_s.so.1');
      if (!loc) throw new BuildError(`${unwind[0]} uses ${'pthread_cancel/pthread_exit/backtrace'}, which needs libgcc_s.so.1, not found in ${plan.fs.root}`);
      plan.addLibrary(loc.path, `rule: glibc dlopens libgcc_s.so.1 for pthread_cancel, pthread_exit and backtrace (used by ${unwind.join(', ')})`);
      say(`libgcc_s.so.1 (glibc loads it for ${unwind.map((u) => posix.basename(u)).join(', ')})`);
      break;
    }
  }
  for (const lib of opts.withLibs) {
    if (lib.includes('/')) plan.addLibrary(plan.fs.toRootPath(lib), `--with-lib ${lib}`);
    else {
      const c = glibc[0];
      const loc = c ? plan.resolver.findForDlopen(c, lib) : null;
      if (!loc) throw new BuildError(`--with-lib ${lib}: not found in the library search path of ${plan.fs.root}`);
      plan.addLibrary(loc.path, `--with-lib ${lib}`);
    }
    say(`${lib} (--with-lib)`);
  }
  const gconv = opts.gconv ?? [];
  if (gconv.length) {
    const c = glibc[0];
    const libc = c?.libraries.find((l) => /^libc\.so\./.test(posix.basename(l.path)));
    if (!libc) throw new BuildError('--with-gconv: only glibc programs load gconv modules');
    // glibc's compiled-in GCONV_PATH is $(libdir)/gconv, beside libc.
    const dir = posix.join(posix.dirname(libc.realPath), 'gconv');
    if (!plan.fs.isDirectory(dir)) throw new BuildError(`--with-gconv: ${dir} does not exist in ${plan.fs.root}`);
    if (gconv.includes('all')) plan.addLinkChain(dir, 'libs', 'rule: --with-gconv all', dir);
    else {
      for (const f of ['gconv-modules', 'gconv-modules.cache', 'gconv-modules.d']) {
        if (plan.fs.stat(posix.join(dir, f))) plan.addLinkChain(posix.join(dir, f), 'libs', 'rule: gconv configuration for iconv', f);
      }
      for (const m of gconv) {
        const so = posix.join(dir, `${m.replace(/\.so$/, '')}.so`);
        if (!plan.fs.stat(so)) throw new BuildError(`--with-gconv ${m}: no ${so} in ${plan.fs.root} (names are the module files there, e.g. ISO8859-1, EUC-JP)`);
        plan.addLibrary(so, `rule: --with-gconv ${m} (iconv loads it with dlopen)`);
      }
    }
    say(`gconv modules for iconv: ${gconv.join(', ')}`);
  } else {
    const ic = importers(glibc, T.iconv);
    if (ic.length) plan.warnings.push(`${ic.map((x) => posix.basename(x)).join(', ')} call${ic.length === 1 ? 's' : ''} iconv_open: only UTF-8, ASCII and UCS conversions are built into glibc; add others with --with-gconv NAME`);
  }
  // IDN: AI_IDN/NI_IDN are run-time flags no symbol reveals, so this is opt-in. glibc >= 2.28 dlopens libidn2.so.0;
  // older glibc its own libcidn.so.1; musl has no IDN support.
  if (opts.idn) {
    const c = glibc[0];
    if (!c) throw new BuildError(`--with-idn: only glibc programs load an IDN library (musl's getaddrinfo has no AI_IDN)`);
    const libc = c.libraries.find((l) => /^libc\.so\./.test(posix.basename(l.path)));
    const name = libc?.elf.versionDefs.includes('GLIBC_2.28') ? 'libidn2.so.0' : 'libcidn.so.1';
    const loc = plan.resolver.findForDlopen(c, name);
    if (!loc) throw new BuildError(`--with-idn: ${name} is not in ${plan.fs.root}${name === 'libidn2.so.0' ? ' (install libidn2-0)' : ''}`);
    const users = importers(glibc, T.hosts);
    plan.addLibrary(loc.path, `rule: --with-idn (glibc dlopens ${name} for getaddrinfo AI_IDN and getnameinfo NI_IDN)`);
    say(`${name} (--with-idn)`);
    if (!users.length) plan.warnings.push(`--with-idn: nothing in the image calls getaddrinfo or getnameinfo`);
  }
  // NSS: glibc >= 2.34 has files and dns built in; other services named by an nsswitch.conf the user ships (or, on
  // older glibc, files and dns themselves) are modules glibc dlopens.
  if (!opts.noRules && glibc.length) {
    const c = glibc[0];
    const libc = c.libraries.find((l) => /^libc\.so\./.test(posix.basename(l.path)));
    const modern = !!libc?.elf.versionDefs.includes('GLIBC_2.34');
    const services = new Set<string>();
    const ns = plan.entries.get('/etc/nsswitch.conf');
    if (ns?.source) {
      for (const line of readFileSync(ns.source, 'utf8').split('\n')) {
        const m = /^\s*([a-z]+)\s*:\s*(.*)$/.exec(line.replace(/#.*/, ''));
        if (m) for (const w of m[2].replace(/\[[^\]]*\]/g, ' ').split(/\s+/).filter(Boolean)) services.add(w);
      }
    }
    if (!modern && importers(glibc, T.users).length) services.add('files');
    if (!modern && importers(glibc, T.hosts).length) ['files', 'dns'].forEach((x) => services.add(x));
    if (modern) ['files', 'dns'].forEach((x) => services.delete(x));
    for (const svc of services) {
      const name = `libnss_${svc}.so.2`;
      const loc = plan.resolver.findForDlopen(c, name);
      if (!loc) {
        plan.warnings.push(`/etc/nsswitch.conf names "${svc}", but ${name} is not in ${plan.fs.root}: lookups through it will fail`);
        continue;
      }
      plan.addLibrary(loc.path, `rule: NSS module for "${svc}" (glibc dlopens it for nsswitch.conf)`);
      say(`${name} (nsswitch.conf names ${svc})`);
    }
  }
  // Only the programs themselves: libraries' own dlopen calls (libselinux, libcrypto...) are mostly optional.
  const dl = closures.filter((c) => c.elf.kind !== 'shared-object' && c.elf.imports?.some((x) => T.dlopen.test(x))).map((c) => c.file.path);
  if (dl.length) plan.warnings.push(`${dl.map((d) => posix.basename(d)).join(', ')} call${dl.length === 1 ? 's' : ''} dlopen: libraries loaded at run time are not visible statically; add them with --with-lib`);
  if (opts.hasBase) return added;

  const s = opts.scaffold;
  // Only the programs' own imports: libraries import the user functions for paths most programs never take
  // (libsystemd, libgpg-error in redis), and a named --user needs the files anyway.
  const users = importers(closures, T.users).filter(isProgram);
  const namedUser = opts.user && !/^\d+(:\d+)?$/.test(opts.user);
  if ((s.passwd || opts.force?.passwd) && (users.length || namedUser || opts.force?.passwd) && !plan.entries.has('/etc/passwd')) {
    const why = users.length ? `used by ${users.map((u) => posix.basename(u)).join(', ')}` : namedUser ? `--user ${opts.user}` : '--scaffold passwd';
    gen('/etc/passwd', PASSWD, 0o644, `scaffold: users root, nobody, nonroot (65532); ${why}`);
    gen('/etc/group', GROUP, 0o644, `scaffold: groups for /etc/passwd; ${why}`);
    say(`/etc/passwd and /etc/group (${why})`);
  }
  const hosts = importers(closures, T.hosts);
  if (glibc.length && (users.length || hosts.length) && !plan.entries.has('/etc/nsswitch.conf')) {
    gen('/etc/nsswitch.conf', NSSWITCH, 0o644, 'scaffold: a minimal nsswitch.conf (files and dns are built into glibc)');
    say('/etc/nsswitch.conf (minimal)');
  }
  if (s.tmp && !plan.entries.has('/tmp')) {
    plan.add({ path: '/tmp', type: 'dir', mode: 0o1777, uid: 0, gid: 0, group: 'libs', reason: 'scaffold: /tmp (1777)' });
  }
  // CA certificates when something reads the system trust store: a trust-store function is imported, or an object
  // names a CA path (libcurl's compiled-in bundle, Go's crypto/x509). Merely linking libssl is not enough: redis
  // links it, but only ever loads the CA file its configuration names.
  if (s.certs || opts.force?.certs) {
    const trust = importers(closures, T.trust, new RegExp(`${SYSTEM_LIB.source}|${TLS_LIB.source}`));
    const named = trust.length || opts.force?.certs ? null : namesTrustStore(closures, plan.statics.map((x) => ({ path: x.path, host: x.realPath, elf: x.elf, hostPath: x.hostPath })), plan.fs);
    const why = opts.force?.certs ? '--scaffold certs' : trust.length ? `${trust.map((t) => posix.basename(t)).join(', ')} reads the system trust store` : named ? `${posix.basename(named)} names a system CA path` : null;
    const bundle = '/etc/ssl/certs/ca-certificates.crt';
    if (why && plan.fs.stat(bundle)) {
      plan.addLinkChain(bundle, 'libs', `scaffold: CA certificates (${why})`, bundle);
      say(`${bundle} (${why})`);
    } else if (why) plan.warnings.push(`${why}, but ${plan.fs.root} has no ${bundle}: install ca-certificates or pass --no-scaffold certs`);
  }
  // Locales: glibc has only C and POSIX built in (C.UTF-8 too before 2.35); a LANG/LC_* in the image's environment
  // makes setlocale(LC_ALL, "") look for /usr/lib/locale/NAME, with the codeset normalised (UTF-8 -> utf8).
  if (s.locale && opts.envLocale && glibc.length && !/^(C|POSIX)$/.test(opts.envLocale) && importers(closures, T.locale).length) {
    const m = /^([^.@]+)(?:\.([^@]+))?(@.*)?$/.exec(opts.envLocale);
    const norm = m?.[2] ? m[2].toLowerCase().replace(/[^a-z0-9]/g, '') : undefined;
    const names = [...new Set([opts.envLocale, m && norm ? `${m[1]}.${norm}${m[3] ?? ''}` : opts.envLocale])];
    const found = names.map((n) => posix.join('/usr/lib/locale', n)).find((p) => plan.fs.isDirectory(p));
    if (found) {
      plan.addLinkChain(found, 'libs', `scaffold: locale ${opts.envLocale} (named by the image's environment; setlocale loads it)`, found);
      say(`locale ${posix.basename(found)} (${opts.envLocale} in the image's environment)`);
    } else plan.warnings.push(`the image's environment names the locale ${opts.envLocale}, but ${plan.fs.root} has no /usr/lib/locale/${names[names.length - 1]}: setlocale will fall back to C`);
  }
  // Time zones: with TZ unset (or TZ=UTC) glibc, musl and Go all fall back to UTC without any file, so a zone is
  // shipped only when one is named: --tz, a TZ in the image's environment that names a zone file (static programs
  // such as Go read zoneinfo without importing anything), or --scaffold tz for the whole database.
  const tz = importers(closures, T.tz);
  const envTz = opts.envTz?.replace(/^:/, '');
  const envZone = envTz && !/^(UTC|UTC0|GMT|Etc\/UTC)$/.test(envTz) && plan.fs.stat(posix.join('/usr/share/zoneinfo', envTz)) ? envTz : null;
  const wanted = opts.tz.length ? opts.tz : opts.force?.tz ? ['all'] : envZone ? [envZone] : [];
  if ((s.tz || opts.force?.tz) && wanted.length) {
    const base = '/usr/share/zoneinfo';
    for (const z of wanted) {
      const p = z === 'all' ? base : posix.join(base, z);
      if (!plan.fs.stat(p)) throw new BuildError(`--tz ${z}: ${p} does not exist in ${plan.fs.root} (install tzdata)`);
      const why = opts.tz.length ? `--tz ${z}` : opts.force?.tz ? '--scaffold tz' : `TZ=${opts.envTz} in the image's environment`;
      plan.addLinkChain(p, 'libs', `scaffold: time zone ${z} (${why}${tz.length ? `; used by ${tz.map((t) => posix.basename(t)).join(', ')}` : ''})`, p);
    }
    // Debian's database holds localtime -> /etc/localtime, the host's own setting: it would dangle in the image.
    const lt = plan.entries.get(posix.join(base, 'localtime'));
    if (lt?.type === 'symlink' && lt.linkname === '/etc/localtime' && !plan.entries.has('/etc/localtime')) plan.entries.delete(lt.path);
    say(`zoneinfo: ${wanted.join(', ')}`);
  } else if (s.tz && tz.some(isProgram)) {
    const progs = tz.filter(isProgram).map((t) => posix.basename(t));
    note(`${progs.join(', ')} use${progs.length === 1 ? 's' : ''} the time-zone functions: no zoneinfo shipped, times are UTC; for a TZ set at run time add --tz ZONE (or --scaffold tz for all zones)`);
  }
  return added;
}

/**
 * The glibc compatibility gate: every symbol version an object of the image needs (GLIBC_2.34, GLIBCXX_3.4.30,
 * CXXABI_1.3.13, ...) must be defined by the library of the image that satisfies it.
 */
export function checkVersions(plan: Plan): { kernelFloor: string | null } {
  let floor: string | null = null;
  const cmp = (a: string, b: string) => {
    const x = a.split('.').map(Number);
    const y = b.split('.').map(Number);
    for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  };
  for (const c of plan.closures) {
    const bySoname = new Map<string, { path: string; elf: ElfFile }>();
    for (const l of c.libraries) bySoname.set(l.elf.soname ?? posix.basename(l.path), { path: l.path, elf: l.elf });
    if (c.interpreter) bySoname.set(c.interpreter.elf.soname ?? posix.basename(c.interpreter.path), { path: c.interpreter.path, elf: c.interpreter.elf });
    const objects = [{ path: c.file.path, elf: c.elf }, ...c.libraries.map((l) => ({ path: l.path, elf: l.elf }))];
    for (const o of objects) {
      if (o.elf.abiTag?.os === 'Linux' && (!floor || cmp(o.elf.abiTag.version, floor) > 0)) floor = o.elf.abiTag.version;
      for (const need of o.elf.versionNeeds) {
        const provider = bySoname.get(need.file);
        if (!provider) continue;
        const defs = new Set(provider.elf.versionDefs);
        for (const v of need.versions) {
          if (!defs.has(v)) throw new BuildError(`${o.path} requires ${v} from ${need.file}, which ${provider.path} does not provide (built against a newer library than ${plan.fs.root} has)`);
        }
      }
    }
  }
  return { kernelFloor: floor };
}
