import { readFileSync } from 'node:fs';
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
}

export interface RuleOptions {
  /** Turn off the dlopen rules (libgcc_s); scaffolding has its own switches. */
  noRules?: boolean;
  scaffold: ScaffoldOptions;
  /** Time zones to ship when the program uses the time-zone functions ("all" for the whole database). */
  tz: string[];
  /** Extra libraries (names searched as dlopen would, or paths), each with its closure. */
  withLibs: string[];
  /** gconv modules for iconv (file names such as ISO8859-1 or EUC-JP, or "all"); opt-in. */
  gconv?: string[];
  /** USER of the image, to make sure a named user exists. */
  user?: string;
  /** Whether a base image provides the system files (then scaffolding is not needed). */
  hasBase: boolean;
}

const T = {
  unwinder: /^(pthread_cancel|pthread_exit|backtrace|backtrace_symbols|backtrace_symbols_fd)$/,
  users: /^(getpw(nam|uid|ent)(_r)?|getgr(nam|gid|ent)(_r)?|getgrouplist|initgroups|getspnam(_r)?|getlogin(_r)?)$/,
  hosts: /^(getaddrinfo|gethostbyname2?(_r)?|gethostbyaddr(_r)?|getnameinfo)$/,
  tls: /^(SSL_CTX_set_default_verify_paths|SSL_CTX_load_verify_locations|X509_STORE_set_default_paths|X509_STORE_load_locations|gnutls_certificate_set_x509_system_trust)$/,
  tz: /^(tzset|localtime(_r)?|mktime|strftime|timegm|ctime(_r)?)$/,
  iconv: /^iconv_open$/,
  dlopen: /^(dlopen|dlmopen)$/,
};

/** Which objects import a symbol matching `re` (skipping libc and the loader, which define or forward them). */
function importers(closures: Closure[], re: RegExp): string[] {
  const out = new Set<string>();
  const check = (path: string, e: ElfFile) => {
    if (/^(libc\.so|libm\.so|ld-linux|ld64\.so|ld-musl)/.test(posix.basename(path))) return;
    if (e.imports?.some((s) => re.test(s))) out.add(path);
  };
  for (const c of closures) {
    check(c.file.path, c.elf);
    for (const l of c.libraries) check(l.path, l.elf);
  }
  return [...out];
}

const PASSWD = 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n';
const NSSWITCH = 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\nethers: files\nrpc: files\n';

/**
 * What ldd cannot see but the program needs to run: libraries glibc dlopens, and the files a scratch image lacks.
 * Every addition carries its reason (shown by --explain) and is listed in `added`.
 */
export function applyRules(plan: Plan, opts: RuleOptions): string[] {
  const added: string[] = [];
  const closures = plan.closures;
  const glibc = closures.filter((c) => c.flavour === 'glibc' && c.elf.interp);
  const say = (what: string) => added.push(what);
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
    if (ic.length) plan.warnings.push(`${ic.map((x) => posix.basename(x)).join(', ')} call iconv_open: only UTF-8, ASCII and UCS conversions are built into glibc; add others with --with-gconv NAME`);
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
  if (dl.length) plan.warnings.push(`${dl.map((d) => posix.basename(d)).join(', ')} call dlopen: libraries loaded at run time are not visible statically; add them with --with-lib`);
  if (opts.hasBase) return added;

  const s = opts.scaffold;
  const users = importers(closures, T.users);
  const namedUser = opts.user && !/^\d+(:\d+)?$/.test(opts.user);
  if (s.passwd && (users.length || namedUser) && !plan.entries.has('/etc/passwd')) {
    const why = users.length ? `used by ${users.map((u) => posix.basename(u)).join(', ')}` : `--user ${opts.user}`;
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
  const tls = importers(closures, T.tls);
  const tlsLib = closures.some((c) => c.libraries.some((l) => /^lib(ssl|gnutls|mbedtls|wolfssl|nss3)\./.test(posix.basename(l.path))));
  if (s.certs && (tls.length || tlsLib)) {
    const bundle = '/etc/ssl/certs/ca-certificates.crt';
    if (plan.fs.stat(bundle)) {
      plan.addLinkChain(bundle, 'libs', `scaffold: CA certificates (the program links a TLS library)`, bundle);
      say(`${bundle} (TLS)`);
    } else plan.warnings.push(`the program links a TLS library but ${plan.fs.root} has no ${bundle}: install ca-certificates or pass --no-scaffold certs`);
  }
  const tz = importers(closures, T.tz);
  if (s.tz && (tz.length || opts.tz.length)) {
    const zones = opts.tz.length ? opts.tz : ['UTC'];
    const base = '/usr/share/zoneinfo';
    for (const z of zones) {
      const p = z === 'all' ? base : posix.join(base, z);
      if (!plan.fs.stat(p)) throw new BuildError(`--tz ${z}: ${p} does not exist in ${plan.fs.root} (install tzdata)`);
      plan.addLinkChain(p, 'libs', `scaffold: time zone ${z}${tz.length ? ` (used by ${tz.map((t) => posix.basename(t)).join(', ')})` : ''}`, p);
    }
    say(`zoneinfo: ${zones.join(', ')}`);
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
