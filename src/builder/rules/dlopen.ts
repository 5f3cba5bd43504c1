import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { BuildError, OptionError } from '../errors.js';
import { Rule } from './context.js';
import { importers, importsMatch, names, T } from './symbols.js';

/** libgcc_s: glibc loads it on first use of cancellation or unwinding, and aborts without it. */
export const unwinder: Rule = {
  name: 'libgcc_s',
  applies: (x) => !x.opts.noRules && importers(x.glibc, T.unwinder).length > 0,
  apply(x) {
    const unwind = importers(x.glibc, T.unwinder);
    for (const c of x.glibc) {
      if (c.libraries.some((l) => posix.basename(l.path) === 'libgcc_s.so.1')) continue;
      const loc = x.plan.resolver.findForDlopen(c, 'libgcc_s.so.1');
      if (!loc) throw new BuildError(`${unwind[0]} uses ${'pthread_cancel/pthread_exit/backtrace'}, which needs libgcc_s.so.1, not found in ${x.plan.fs.root}`);
      x.plan.addLibrary(loc.path, `rule: glibc dlopens libgcc_s.so.1 for pthread_cancel, pthread_exit and backtrace (used by ${names(unwind)})`);
      x.say(`libgcc_s.so.1 (glibc loads it for ${names(unwind)})`);
      break;
    }
  },
};

/** --with-lib NAME|PATH: a library the program dlopens, with its closure. */
export const withLib: Rule = {
  name: 'with-lib',
  applies: (x) => x.opts.withLibs.length > 0,
  apply(x) {
    for (const lib of x.opts.withLibs) {
      if (lib.includes('/')) x.plan.addLibrary(x.plan.fs.toRootPath(lib), x.opt('withLibs', lib));
      else {
        const c = x.glibc[0];
        const loc = c ? x.plan.resolver.findForDlopen(c, lib) : null;
        if (!loc) throw new OptionError('withLibs', lib, `not found in the library search path of ${x.plan.fs.root}`);
        x.plan.addLibrary(loc.path, x.opt('withLibs', lib));
      }
      x.say(`${lib} (${x.opt('withLibs')})`);
    }
  },
};

/** gconv modules for iconv: opt-in (--with-gconv), with a warning when iconv_open is imported without it. */
export const gconv: Rule = {
  name: 'gconv',
  applies: (x) => (x.opts.gconv ?? []).length > 0 || importers(x.glibc, T.iconv).length > 0,
  apply(x) {
    const gconv = x.opts.gconv ?? [];
    const plan = x.plan;
    if (!gconv.length) {
      const ic = importers(x.glibc, T.iconv);
      x.warn(`${names(ic)} call${ic.length === 1 ? 's' : ''} iconv_open: only UTF-8, ASCII and UCS conversions are built into glibc; add others with ${x.opt('gconv', 'NAME')}`);
      return;
    }
    const c = x.glibc[0];
    const libc = c?.libraries.find((l) => /^libc\.so\./.test(posix.basename(l.path)));
    if (!libc) throw new OptionError('gconv', undefined, 'only glibc programs load gconv modules');
    // glibc's compiled-in GCONV_PATH is $(libdir)/gconv, beside libc.
    const dir = posix.join(posix.dirname(libc.realPath), 'gconv');
    if (!plan.fs.isDirectory(dir)) throw new OptionError('gconv', undefined, `${dir} does not exist in ${plan.fs.root}`);
    if (gconv.includes('all')) plan.addLinkChain(dir, 'libs', `rule: ${x.opt('gconv', 'all')}`, dir);
    else {
      for (const f of ['gconv-modules', 'gconv-modules.cache', 'gconv-modules.d']) {
        if (plan.fs.stat(posix.join(dir, f))) plan.addLinkChain(posix.join(dir, f), 'libs', 'rule: gconv configuration for iconv', f);
      }
      for (const m of gconv) {
        const so = posix.join(dir, `${m.replace(/\.so$/, '')}.so`);
        if (!plan.fs.stat(so)) throw new OptionError('gconv', m, `no ${so} in ${plan.fs.root} (names are the module files there, e.g. ISO8859-1, EUC-JP)`);
        plan.addLibrary(so, `rule: ${x.opt('gconv', m)} (iconv loads it with dlopen)`);
      }
    }
    x.say(`gconv modules for iconv: ${gconv.join(', ')}`);
  },
};

/**
 * IDN: AI_IDN/NI_IDN are run-time flags no symbol reveals, so this is opt-in. glibc >= 2.28 dlopens libidn2.so.0;
 * older glibc its own libcidn.so.1; musl has no IDN support.
 */
export const idn: Rule = {
  name: 'idn',
  applies: (x) => !!x.opts.idn,
  apply(x) {
    const c = x.glibc[0];
    if (!c) throw new OptionError('idn', undefined, `only glibc programs load an IDN library (musl's getaddrinfo has no AI_IDN)`);
    const libc = c.libraries.find((l) => /^libc\.so\./.test(posix.basename(l.path)));
    const name = libc?.elf.versionDefs.includes('GLIBC_2.28') ? 'libidn2.so.0' : 'libcidn.so.1';
    const loc = x.plan.resolver.findForDlopen(c, name);
    if (!loc) throw new OptionError('idn', undefined, `${name} is not in ${x.plan.fs.root}${name === 'libidn2.so.0' ? ' (install libidn2-0)' : ''}`);
    const users = importers(x.glibc, T.hosts);
    x.plan.addLibrary(loc.path, `rule: ${x.opt('idn')} (glibc dlopens ${name} for getaddrinfo AI_IDN and getnameinfo NI_IDN)`);
    x.say(`${name} (${x.opt('idn')})`);
    if (!users.length) x.warn(`${x.opt('idn')}: nothing in the image calls getaddrinfo or getnameinfo`);
  },
};

/**
 * NSS: glibc >= 2.34 has files and dns built in; other services named by an nsswitch.conf the user ships (or, on
 * older glibc, files and dns themselves) are modules glibc dlopens.
 */
export const nss: Rule = {
  name: 'nss',
  applies: (x) => !x.opts.noRules && x.glibc.length > 0,
  apply(x) {
    const plan = x.plan;
    const c = x.glibc[0];
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
    if (!modern && importers(x.glibc, T.users).length) services.add('files');
    if (!modern && importers(x.glibc, T.hosts).length) ['files', 'dns'].forEach((s) => services.add(s));
    if (modern) ['files', 'dns'].forEach((s) => services.delete(s));
    for (const svc of services) {
      const name = `libnss_${svc}.so.2`;
      const loc = plan.resolver.findForDlopen(c, name);
      if (!loc) {
        x.warn(`/etc/nsswitch.conf names "${svc}", but ${name} is not in ${plan.fs.root}: lookups through it will fail`);
        continue;
      }
      plan.addLibrary(loc.path, `rule: NSS module for "${svc}" (glibc dlopens it for nsswitch.conf)`);
      x.say(`${name} (nsswitch.conf names ${svc})`);
    }
  },
};

/** Only the programs themselves: libraries' own dlopen calls (libselinux, libcrypto...) are mostly optional. */
export const dlopenWarning: Rule = {
  name: 'dlopen-warning',
  applies: (x) => programsImporting(x.closures, T.dlopen).length > 0,
  apply(x) {
    const dl = programsImporting(x.closures, T.dlopen);
    x.warn(`${names(dl)} call${dl.length === 1 ? 's' : ''} dlopen: libraries loaded at run time are not visible statically; add them with ${x.opt('withLibs')}`);
  },
};

function programsImporting(closures: { elf: { kind: string; imports?: string[] }; file: { path: string } }[], re: RegExp): string[] {
  return [...new Set(closures.filter((c) => c.elf.kind !== 'shared-object' && importsMatch(c.elf.imports, re)).map((c) => c.file.path))];
}
