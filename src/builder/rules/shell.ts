import { closeSync, openSync, readSync } from 'node:fs';
import { OptionError } from '../errors.js';
import { Plan } from '../plan.js';
import { Rule } from './context.js';
import { importers, names, T } from './symbols.js';

/** Executable scripts of the plan whose #! line names a shell. */
function shellScripts(plan: Plan, only?: Set<string>): string[] {
  const out: string[] = [];
  for (const e of plan.entries.values()) {
    if (e.type !== 'file' || !e.source || !(e.mode & 0o111) || (only && !only.has(e.path))) continue;
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
      if (!plan.fs.stat('/bin/sh')) throw new OptionError('withShell', undefined, `${plan.fs.root} has no /bin/sh`);
      plan.addLinkChain('/bin/sh', 'libs', `rule: ${x.opt('withShell')} (/bin/sh for system, popen and scripts)`, '/bin/sh');
      x.say(`/bin/sh -> ${plan.fs.locate('/bin/sh')!.realPath} (${x.opt('withShell')})`);
      return;
    }
    if (plan.entries.has('/bin/sh')) return;
    // The program's own helpers (found by the runtime rule under directories it names) are run by the program:
    // when one is a shell script or runs commands through the shell (initdb's popen, git's scripts in git-core),
    // the program cannot work without /bin/sh, so it is shipped.
    const helperScripts = shellScripts(plan, plan.helpers);
    const helperUsers = importers(x.closures, T.shell).filter((p) => plan.helpers.has(p));
    if ((helperScripts.length || helperUsers.length) && plan.fs.stat('/bin/sh')) {
      const why = helperScripts.length ? `${names(helperScripts, 3)} ${helperScripts.length === 1 ? 'is a shell script' : 'are shell scripts'}` : `${names(helperUsers, 3)} call${helperUsers.length === 1 ? 's' : ''} system or popen`;
      plan.addLinkChain('/bin/sh', 'libs', `rule: the program's helpers need /bin/sh (${why})`, '/bin/sh');
      x.say(`/bin/sh -> ${plan.fs.locate('/bin/sh')!.realPath} (the program's own helpers need it: ${why})`);
      return;
    }
    const users = importers(x.closures, T.shell).filter((p) => x.isProgram(p));
    const scripts = shellScripts(plan);
    if (!users.length && !scripts.length) return;
    const who = [
      ...(users.length ? [`${names(users)} call${users.length === 1 ? 's' : ''} system, popen or wordexp`] : []),
      ...(scripts.length ? [`${names(scripts, 3)} ${scripts.length === 1 ? 'is a shell script' : 'are shell scripts'}`] : []),
    ];
    x.warn(`${who.join('; ')}: /bin/sh is needed, and the image has none; add it with ${x.opt('withShell')}`);
  },
};
