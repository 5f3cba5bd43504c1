import { readFileSync } from 'node:fs';
import { RootFs } from '../elf/rootfs.js';
import { ControlFileError, field, parseStanzas } from './deb822.js';

/** A package's license as an SPDX expression, with the texts of the LicenseRef-… names it uses. */
export interface PackageLicense {
  expression: string;
  /** LicenseRef-… id → its text (from the copyright file's stand-alone License stanza, else a pointer to the file). */
  refs: Map<string, string>;
}

/** Debian short names (DEP-5 §7.2) that differ from their SPDX identifiers; matched case-insensitively. */
const SPDX_NAMES: Record<string, string> = {
  'apache-1.0': 'Apache-1.0',
  'apache-1.1': 'Apache-1.1',
  'apache-2.0': 'Apache-2.0',
  artistic: 'Artistic-1.0-Perl',
  'artistic-1.0': 'Artistic-1.0',
  'artistic-2.0': 'Artistic-2.0',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  'bsl-1.0': 'BSL-1.0',
  'cc0-1.0': 'CC0-1.0',
  cc0: 'CC0-1.0',
  curl: 'curl',
  expat: 'MIT',
  mit: 'MIT',
  ftl: 'FTL',
  isc: 'ISC',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  openssl: 'OpenSSL',
  ssleay: 'SSLeay-standalone',
  python: 'Python-2.0',
  'psf-2': 'PSF-2.0',
  'unicode-dfs-2016': 'Unicode-DFS-2016',
  wtfpl: 'WTFPL',
  x11: 'X11',
  zlib: 'Zlib',
  'zope-2.1': 'ZPL-2.1',
  'ofl-1.1': 'OFL-1.1',
  'bzip2-1.0.6': 'bzip2-1.0.6',
  'libpng': 'Libpng',
  'libpng-2.0': 'libpng-2.0',
  'ijg': 'IJG',
  'tcl': 'TCL',
  'sleepycat': 'Sleepycat',
  'gpl-2.0-only': 'GPL-2.0-only',
  'gpl-2.0-or-later': 'GPL-2.0-or-later',
  'lgpl-2.1-only': 'LGPL-2.1-only',
  'lgpl-2.1-or-later': 'LGPL-2.1-or-later',
  'cc-by-3.0': 'CC-BY-3.0',
  'cc-by-4.0': 'CC-BY-4.0',
  'cc-by-sa-3.0': 'CC-BY-SA-3.0',
  'cc-by-sa-4.0': 'CC-BY-SA-4.0',
};

/** SPDX license exceptions Debian copyright files name in "with X exception". */
const SPDX_EXCEPTIONS: Record<string, string> = {
  'linux-syscall-note': 'Linux-syscall-note',
  'gcc-exception-3.1': 'GCC-exception-3.1',
  'gcc-exception-2.0': 'GCC-exception-2.0',
  'autoconf-exception-2.0': 'Autoconf-exception-2.0',
  'autoconf-exception-3.0': 'Autoconf-exception-3.0',
  'bison-exception-2.2': 'Bison-exception-2.2',
  'classpath-exception-2.0': 'Classpath-exception-2.0',
  'font-exception-2.0': 'Font-exception-2.0',
  openssl: 'openvpn-openssl-exception',
  'llvm-exception': 'LLVM-exception',
};

/** One Debian license name → an SPDX id, or null when it has none. */
export function spdxId(name: string): string | null {
  const n = name.trim().toLowerCase();
  if (SPDX_NAMES[n]) return SPDX_NAMES[n];
  const gpl = /^(a|l)?gpl-(\d)(?:\.(\d))?(\+)?$/.exec(n);
  if (gpl) return `${(gpl[1] ?? '').toUpperCase()}GPL-${gpl[2]}.${gpl[3] ?? '0'}-${gpl[4] ? 'or-later' : 'only'}`;
  const gfdl = /^gfdl-(\d)\.(\d)(\+)?$/.exec(n);
  if (gfdl) return `GFDL-${gfdl[1]}.${gfdl[2]}-${gfdl[3] ? 'or-later' : 'only'}`;
  return null;
}

function licenseRef(name: string): string {
  return 'LicenseRef-' + name.trim().replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '');
}

/**
 * A DEP-5 License synopsis ("GPL-2+ or BSD-3-clause", "LGPL-2.1+ and MIT, or Apache-2.0", "GPL-2 with
 * Linux-syscall-note exception") → an SPDX expression. "and" binds tighter than "or"; ", and" / ", or" bind
 * loosest. Names without an SPDX id become LicenseRef-NAME (added to `refs`).
 */
export function synopsisToSpdx(synopsis: string, refs: Set<string>): string {
  const term = (t: string): string => {
    const w = /^(.+?)\s+with\s+(.+?)\s+exception$/i.exec(t.trim());
    if (w) {
      const lic = spdxId(w[1]);
      const exc = SPDX_EXCEPTIONS[w[2].trim().toLowerCase()];
      if (lic && exc) return `${lic} WITH ${exc}`;
      const ref = licenseRef(`${w[1]}-with-${w[2]}-exception`);
      refs.add(ref);
      return ref;
    }
    const id = spdxId(t);
    if (id) return id;
    const ref = licenseRef(t);
    refs.add(ref);
    return ref;
  };
  const group = (parts: string[], op: string, inner: (s: string) => string) => {
    const xs = parts.map(inner);
    return xs.length === 1 ? xs[0] : xs.map((x) => (/ (AND|OR) /.test(x) ? `(${x})` : x)).join(` ${op} `);
  };
  const andOr = (s: string) => group(s.split(/\s+or\s+/i), 'OR', (alt) => group(alt.split(/\s+and\s+/i), 'AND', term));
  // ", and" / ", or" split at the lowest precedence, left to right.
  const pieces = synopsis.split(/,\s*(and|or)\s+/i);
  let expr = andOr(pieces[0]);
  for (let i = 1; i + 1 < pieces.length; i += 2) {
    const rhs = andOr(pieces[i + 1]);
    const wrap = (x: string) => (/ (AND|OR) /.test(x) ? `(${x})` : x);
    expr = `${wrap(expr)} ${pieces[i].toUpperCase()} ${wrap(rhs)}`;
  }
  return expr;
}

/**
 * The license of an installed package from /usr/share/doc/NAME/copyright in the root, when that file is
 * machine-readable (DEP-5: its first stanza has a Format field); null otherwise (the SBOM then says NOASSERTION).
 * The package license is every Files stanza's License synopsis, joined with AND.
 */
export function packageLicense(fs: RootFs, pkgName: string): PackageLicense | null {
  const path = `/usr/share/doc/${pkgName}/copyright`;
  const loc = fs.stat(path);
  if (!loc?.stats.isFile() || loc.stats.size > 4 << 20) return null;
  let text: string;
  try {
    text = readFileSync(fs.hostReal(loc.located), 'utf8');
  } catch {
    return null;
  }
  let stanzas;
  try {
    stanzas = parseStanzas(text, path, { comments: true });
  } catch (e) {
    if (e instanceof ControlFileError) return null; // free text: not machine-readable
    throw e;
  }
  if (!stanzas.length || !(field(stanzas[0].fields, 'Format') ?? field(stanzas[0].fields, 'Format-Specification'))) return null;
  const texts = new Map<string, string>();
  for (const s of stanzas) {
    const lic = field(s.fields, 'License');
    if (lic && !field(s.fields, 'Files')) {
      const [name, ...body] = lic.split('\n');
      if (body.length) texts.set(name.trim().toLowerCase(), body.join('\n'));
    }
  }
  const refs = new Set<string>();
  const exprs: string[] = [];
  for (const s of stanzas) {
    if (!field(s.fields, 'Files')) continue;
    const lic = field(s.fields, 'License');
    const synopsis = lic?.split('\n')[0].trim();
    if (!synopsis) continue;
    const e = synopsisToSpdx(synopsis, refs);
    if (!exprs.includes(e)) exprs.push(e);
  }
  if (!exprs.length) return null;
  const expression = exprs.length === 1 ? exprs[0] : exprs.map((x) => (/ (AND|OR|WITH) /.test(x) ? `(${x})` : x)).join(' AND ');
  const refTexts = new Map<string, string>();
  for (const r of [...refs].sort()) {
    const name = r.slice('LicenseRef-'.length).toLowerCase();
    const body = [...texts].find(([k]) => licenseRef(k).toLowerCase() === r.toLowerCase())?.[1];
    refTexts.set(r, body ?? `License "${name}" as named in ${path} (Debian copyright file).`);
  }
  return { expression, refs: refTexts };
}
