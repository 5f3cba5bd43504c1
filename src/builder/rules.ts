import { posix } from 'node:path';
import { ElfFile } from '../elf/reader.js';
import { BuildError } from './errors.js';
import { Plan } from './plan.js';
import { Rule, RuleContext, RuleOptions } from './rules/context.js';
import { dlopenWarning, gconv, idn, nss, unwinder, withLib } from './rules/dlopen.js';
import { certs, dirs, locale, nsswitch, opensslDirRule, passwd, tz } from './rules/scaffold.js';
import { gnutlsConfig } from './rules/gnutls.js';
import { helpers } from './rules/helpers.js';
import { nss3 } from './rules/nss3.js';
import { runtime } from './rules/runtime.js';
import { shell } from './rules/shell.js';

export type { Rule, RuleOptions, ScaffoldOptions } from './rules/context.js';
export { RuleContext } from './rules/context.js';

/**
 * What ldd cannot see but the program needs to run, as a table of named rules applied in this order: the program's
 * own runtime (from the package database), the helpers it runs by name, libraries glibc dlopens, the shell, the files a scratch image lacks. Each rule says whether it applies to the plan and
 * what it adds; every addition carries its reason (shown by --explain).
 */
export const RULES: Rule[] = [runtime, helpers, unwinder, withLib, gconv, idn, nss, dlopenWarning, shell, passwd, nsswitch, dirs, certs, opensslDirRule, gnutlsConfig, nss3, locale, tz];

/**
 * Applies the rules in order; the ELF files a rule adds bring their own closures before the next rule looks. The
 * returned lines report what was added ("added ...") and the choices the user may want to revisit ("note: ...").
 */
export function applyRules(plan: Plan, opts: RuleOptions, rules: Rule[] = RULES): string[] {
  const x = new RuleContext(plan, opts);
  for (const r of rules) {
    if (!r.applies(x)) continue;
    const before = plan.entries.size;
    r.apply(x);
    if (plan.entries.size !== before) plan.closeAll();
  }
  return x.added;
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
