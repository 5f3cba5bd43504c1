import { closeSync, openSync, readSync } from 'node:fs';
import { posix } from 'node:path';
import { ElfFile } from '../../elf/reader.js';
import { Closure } from '../../elf/resolve.js';

/** Imported symbols that reveal a run-time need. */
export const T = {
  unwinder: /^(pthread_cancel|pthread_exit|backtrace|backtrace_symbols|backtrace_symbols_fd)$/,
  users: /^(getpw(nam|uid|ent)(_r)?|getgr(nam|gid|ent)(_r)?|getgrouplist|initgroups|getspnam(_r)?|getlogin(_r)?)$/,
  hosts: /^(getaddrinfo|gethostbyname2?(_r)?|gethostbyaddr(_r)?|getnameinfo)$/,
  // Functions that read the system trust store. SSL_CTX_load_verify_locations and X509_STORE_load_file take the
  // caller's path (redis's tls-ca-cert-file), so they are no signal on their own.
  trust: /^(SSL_CTX_set_default_verify_(paths|file|dir|store)|X509_STORE_set_default_paths(_ex)?|gnutls_certificate_set_x509_system_trust|gnutls_x509_trust_list_add_system_trust)$/,
  tz: /^(tzset|localtime(_r)?|mktime|strftime|timegm|ctime(_r)?)$/,
  iconv: /^iconv_open$/,
  locale: /^(setlocale|newlocale)$/,
  dlopen: /^(dlopen|dlmopen)$/,
  /** Functions that run /bin/sh -c. */
  shell: /^(system|popen|wordexp)$/,
};

export const SYSTEM_LIB = /^(libc\.so|libm\.so|ld-linux|ld64\.so|ld-musl)/;
/** TLS libraries: they implement the trust-store functions (and libssl imports libcrypto's), so they are no signal. */
export const TLS_LIB = /^lib(ssl|crypto|gnutls|mbedtls|mbedx509|wolfssl|nss3|nssutil3|smime3)\./;

export type ElfObject = { path: string; host: string; elf: ElfFile; hostPath?: string };

/** Every object of the closures: programs first, then their libraries (root path for reading, image path for naming). */
export function objects(closures: Closure[], statics: ElfObject[] = []): ElfObject[] {
  const out = new Map<string, ElfObject>();
  for (const s of statics) out.set(s.path, s);
  for (const c of closures) {
    out.set(c.file.path, { path: c.file.path, host: c.file.realPath, elf: c.elf, hostPath: c.file.host });
    for (const l of c.libraries) if (!out.has(l.path)) out.set(l.path, { path: l.path, host: l.realPath, elf: l.elf, hostPath: l.host });
  }
  return [...out.values()];
}

/**
 * The names a pattern of literal names matches, when it is one: ^SEQUENCE$ of letters, digits, underscores and
 * groups of alternatives ("|"), each maybe optional ("?"), without flags (every pattern of T); null for any other pattern. The answer is
 * the pattern's whole language, so testing each of these names against a list's names answers as the pattern would.
 */
export function literalNames(re: RegExp): Set<string> | null {
  if (re.flags !== '') return null;
  const src = re.source;
  if (src.length < 3 || src[0] !== '^' || src[src.length - 1] !== '$') return null;
  const end = src.length - 1;
  let i = 1;
  const literal = /^[A-Za-z0-9_]$/;
  const alternatives = (): string[] | null => {
    let out = sequence();
    while (out && i < end && src[i] === '|') {
      i++;
      const next = sequence();
      out = next && out.concat(next);
    }
    return out;
  };
  const sequence = (): string[] | null => {
    let acc = [''];
    while (i < end && src[i] !== '|' && src[i] !== ')') {
      let atom: string[] | null;
      if (src[i] === '(') {
        i++;
        atom = alternatives();
        if (!atom || src[i] !== ')') return null;
        i++;
      } else if (literal.test(src[i])) atom = [src[i++]];
      else return null;
      if (src[i] === '?') {
        i++;
        atom = ['', ...atom];
      }
      const next: string[] = [];
      for (const a of acc) for (const b of atom) next.push(a + b);
      if (next.length > 4096) return null;
      acc = next;
    }
    return acc;
  };
  // A "|" at the top would bind looser than the anchors (^a|b$ is "starts with a, or ends with b"): none there.
  const names = sequence();
  return names && i === end ? new Set(names) : null;
}

/**
 * Whether an import list holds a symbol matching `re`. The rules ask the same questions of the same objects several
 * times (hosts, users, unwinder, ...) over lists of hundreds of names: each answer is kept with the list (the parsed
 * ELF's, never changed once read). A pattern of literal names (literalNames) is answered by looking its few names up
 * in a set of the list's names, made once per list, instead of testing the pattern against every name of every list
 * (a dozen patterns, some twenty objects, hundreds of names each). A stateful pattern (g, y) is asked afresh every
 * time.
 */
const matchMemo = new WeakMap<readonly string[], Map<RegExp, boolean>>();
const importSets = new WeakMap<readonly string[], Set<string>>();
const literalMemo = new WeakMap<RegExp, Set<string> | null>();
export function importsMatch(imports: readonly string[] | undefined, re: RegExp): boolean {
  if (!imports) return false;
  if (re.global || re.sticky) return imports.some((s) => re.test(s));
  let m = matchMemo.get(imports);
  if (!m) matchMemo.set(imports, (m = new Map()));
  let r = m.get(re);
  if (r === undefined) {
    let names = literalMemo.get(re);
    if (names === undefined) literalMemo.set(re, (names = literalNames(re)));
    if (names) {
      let set = importSets.get(imports);
      if (!set) importSets.set(imports, (set = new Set(imports)));
      r = false;
      for (const n of names) {
        if (set.has(n)) {
          r = true;
          break;
        }
      }
    } else r = imports.some((s) => re.test(s));
    m.set(re, r);
  }
  return r;
}

/** Which objects import a symbol matching `re` (skipping libc and the loader, which define or forward them). */
export function importers(closures: Closure[], re: RegExp, skip: RegExp = SYSTEM_LIB): string[] {
  return objects(closures)
    .filter((o) => !skip.test(posix.basename(o.path)) && importsMatch(o.elf.imports, re))
    .map((o) => o.path);
}

/** Where programs look for the CA bundle (OpenSSL-using code such as libcurl, GnuTLS users, Go's crypto/x509). */
const TRUST_PATHS = ['/etc/ssl/certs', '/etc/pki/tls/certs', '/etc/pki/ca-trust', '/etc/ssl/cert.pem', '/etc/ssl/ca-bundle.pem'].map((s) => Buffer.from(s));

/** Imports of a TLS API: only such objects (and programs, which may carry a static TLS stack) can name a CA path. */
const TLS_API = /^(SSL_|X509_|gnutls_|mbedtls_|wolfSSL_|CERT_|NSS_)/;

/** fileContains' read buffer, one for the process (the function is synchronous): no fresh 1 MiB per file. */
let sliceBuffer: Buffer | null = null;

/** The bytes every needle starts with (empty when they share none). */
function commonPrefix(needles: Buffer[]): Buffer {
  let n = Math.min(...needles.map((t) => t.length));
  for (const t of needles) {
    let i = 0;
    while (i < n && t[i] === needles[0][i]) i++;
    n = i;
  }
  return needles[0].subarray(0, n);
}

/**
 * Whether a host file contains any of `needles`, read in 1 MiB slices, or searched in `held`, the file's bytes in
 * order when the build holds them already (Plan.held). Needles that share a prefix (the CA paths all start with
 * "/etc/") are looked for in one pass: each place the prefix occurs is checked against every needle, instead of a
 * pass over the slice per needle.
 */
export function fileContains(hostPath: string, needles: Buffer[], held?: Buffer[] | null): boolean {
  if (!needles.length) return false;
  const overlap = Math.max(...needles.map((n) => n.length));
  const prefix = commonPrefix(needles);
  const found = (view: Buffer): boolean => {
    if (prefix.length < 2) return needles.some((t) => view.includes(t));
    for (let i = view.indexOf(prefix); i >= 0; i = view.indexOf(prefix, i + 1)) {
      for (const t of needles) if (i + t.length <= view.length && view.compare(t, 0, t.length, i, i + t.length) === 0) return true;
    }
    return false;
  };
  if (held) return chunksContain(held, overlap, found);
  const fd = openSync(hostPath, 'r');
  try {
    if (!sliceBuffer || sliceBuffer.length < (1 << 20) + overlap) sliceBuffer = Buffer.allocUnsafeSlow((1 << 20) + overlap);
    const buf = sliceBuffer.subarray(0, (1 << 20) + overlap);
    let pos = 0;
    let kept = 0;
    for (;;) {
      const n = readSync(fd, buf, kept, buf.length - kept, pos);
      if (n <= 0) break;
      pos += n;
      const view = buf.subarray(0, kept + n);
      if (found(view)) return true;
      kept = Math.min(overlap, view.length);
      view.copy(buf, 0, view.length - kept);
    }
  } finally {
    closeSync(fd);
  }
  return false;
}

/**
 * Whether `found` holds in the bytes `chunks` make in order: in each chunk, and across each seam in the bytes on
 * either side of it that a needle of at most `overlap` bytes can span (the last overlap - 1 bytes before it, which
 * may cover several short chunks, and the first overlap - 1 after).
 */
function chunksContain(chunks: Buffer[], overlap: number, found: (view: Buffer) => boolean): boolean {
  const keep = overlap - 1;
  let carry: Buffer = Buffer.alloc(0);
  for (const c of chunks) {
    if (keep > 0 && carry.length && found(Buffer.concat([carry, c.subarray(0, keep)]))) return true;
    if (found(c)) return true;
    if (keep <= 0) continue;
    carry = c.length >= keep ? c.subarray(c.length - keep) : Buffer.concat([carry, c]).subarray(-keep);
  }
  return false;
}

/**
 * The first program, or library using a TLS API (not libc, not a TLS library itself), whose bytes name a system CA
 * path.
 */
export function namesTrustStore(closures: Closure[], statics: ElfObject[], fs: { host(p: string): string }, held?: (hostPath: string) => Buffer[] | null): string | null {
  const programs = new Set([...statics.map((s) => s.path), ...closures.map((c) => c.file.path)]);
  for (const o of objects(closures, statics)) {
    const base = posix.basename(o.path);
    if (SYSTEM_LIB.test(base) || TLS_LIB.test(base)) continue;
    if (!programs.has(o.path) && !o.elf.imports?.some((s) => TLS_API.test(s))) continue;
    const host = o.hostPath ?? fs.host(o.host);
    if (fileContains(host, TRUST_PATHS, held?.(host))) return o.path;
  }
  return null;
}

/** "a, b, c and 4 more": base names, each once. */
export function names(paths: string[], max = 4): string {
  const u = [...new Set(paths.map((p) => posix.basename(p)))];
  return u.length > max ? `${u.slice(0, max).join(', ')} and ${u.length - max} more` : u.join(', ');
}
