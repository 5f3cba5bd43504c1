import { closeSync, openSync, readSync } from 'node:fs';
import { posix } from 'node:path';
import { BuildError } from '../errors.js';
import { Plan } from '../plan.js';
import { Rule } from './context.js';
import { importers, T } from './symbols.js';

/** Executable scripts of the plan whose #! line names a shell. */
function shellScripts(plan: Plan): string[] {
  const out: string[] = [];
  for (const e of plan.entries.values()) {
    if (e.type !== 'file' || !e.source || !(e.mode & 0o111)) continue;
    let fd: number;
    try {
      fd = openSync(e.source, 'r');
    } catch {
      continue;
    }
    try {
      const b = Buffer.alloc(64);
      const n = readSync(fd, b, 0, 64, 0);
      const line = b.subarray(0, n).toString('latin1').split('\n')[0];
      if (/^#!\s*(\/usr)?\/bin\/(sh|dash|bash)\b|^#!\s*\/usr\/bin\/env\s+(sh|bash)\b/.test(line)) out.push(e.path);
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

/**
 * The shell: system(), popen() and wordexp() run /bin/sh -c, and shell scripts need it too. With --with-shell the
 * root's /bin/sh (its link chain to dash or busybox, whose closure follows) is shipped; without it, a warning names
 * who needs it.
 */
export const shell: Rule = {
  name: 'shell',
  applies: (x) => !x.opts.hasBase || !!x.opts.withShell,
  apply(x) {
    const plan = x.plan;
    if (x.opts.withShell) {
      if (!plan.fs.stat('/bin/sh')) throw new BuildError(`--with-shell: ${plan.fs.root} has no /bin/sh`);
      plan.addLinkChain('/bin/sh', 'libs', 'rule: --with-shell (/bin/sh for system, popen and scripts)', '/bin/sh');
      x.say(`/bin/sh -> ${plan.fs.locate('/bin/sh')!.realPath} (--with-shell)`);
      return;
    }
    if (plan.entries.has('/bin/sh')) return;
    const users = [...new Set(importers(x.closures, T.shell).filter((p) => x.isProgram(p)).map((p) => posix.basename(p)))];
    const scripts = shellScripts(plan);
    if (!users.length && !scripts.length) return;
    const who = [...(users.length ? [`${users.join(', ')} call${users.length === 1 ? 's' : ''} system, popen or wordexp`] : []), ...(scripts.length ? [`${scripts.slice(0, 3).join(', ')}${scripts.length > 3 ? ` and ${scripts.length - 3} more` : ''} ${scripts.length === 1 ? 'is a shell script' : 'are shell scripts'}`] : [])];
    x.warn(`${who.join('; ')}: they need /bin/sh, which the image lacks; add it with --with-shell`);
  },
};
