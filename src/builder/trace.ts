import { childProcess } from '../child-process.js';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { OptionError } from './errors.js';
import { Plan } from './plan.js';
import { fieldNames, OptionNamer, splitWords } from './spec.js';
import { withTempDirSync } from '../temp-paths.js';

/**
 * Paths a traced command touches that are not its runtime: kernel and device files, temporary and home
 * directories, the host's own identity and network configuration (scaffolding writes the image's own), the cache.
 */
const SKIP = /^\/(proc|sys|dev|run|tmp|var\/tmp|home|root|var\/log|var\/cache)(\/|$)|^\/etc\/(ld\.so\.cache|passwd|group|shadow|gshadow|hosts|resolv\.conf|hostname|nsswitch\.conf|localtime|machine-id)$/;

/** `strace` on PATH, or an OptionError naming the Debian package. */
function findStrace(): string {
  for (const d of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = join(d, 'strace');
    const r = childProcess().spawnSync(p, ['-V'], { stdio: 'ignore' });
    if (r.status === 0) return p;
  }
  throw new OptionError('trace', undefined, 'strace is not installed: install the Debian package strace (apt-get install strace)');
}

/** Paths of successful open/openat/openat2/execve/execveat calls in an strace -f log. */
export function tracedPaths(log: string): string[] {
  const out = new Set<string>();
  for (const line of log.split('\n')) {
    const m = /\b(open|openat|openat2|execve|execveat|creat)\((?:AT_FDCWD, |\d+<[^>]*>, )?"((?:[^"\\]|\\.)*)"/.exec(line);
    if (!m) continue;
    if (/= -1 /.test(line)) continue;
    const p = m[2].replace(/\\x([0-9a-f]{2})/gi, (_s, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\(.)/g, '$1');
    if (p.startsWith('/')) out.add(posix.normalize(p));
  }
  return [...out].sort();
}

/**
 * --trace 'COMMAND ARGS': runs the command once on this machine under `strace -f`, and adds every regular file it
 * opened or executed that exists in the root (with its symlink chain; ELF files bring their closures afterwards).
 * Returns the lines to say on stderr: that the command was executed, and what was added.
 */
export function addTraced(plan: Plan, command: string, names: OptionNamer = fieldNames): string[] {
  const flag = names('trace');
  const argv = splitWords(command, flag);
  if (!argv.length) throw new OptionError('trace', undefined, `needs a command, e.g. "/usr/bin/python3 -c 'import ssl'"`);
  const strace = findStrace();
  return withTempDirSync('ocislim-trace-', (dir) => {
    const log = join(dir, 'strace.log');
    const r = childProcess().spawnSync(strace, ['-f', '-qq', '-z', '-s', '4096', '-e', 'trace=open,openat,openat2,execve,execveat,creat', '-e', 'signal=none', '-o', log, '--', ...argv], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 10 * 60 * 1000,
    });
    if (r.error) throw new OptionError('trace', undefined, `cannot run strace: ${r.error.message}`);
    let text = '';
    try {
      text = readFileSync(log, 'utf8');
    } catch {
      throw new OptionError('trace', undefined, `${argv[0]} did not start under strace: ${(r.stderr?.toString() ?? '').trim().split('\n').pop()}`);
    }
    if (!/\bexecve\(/.test(text)) throw new OptionError('trace', undefined, `${argv[0]} could not be executed: ${(r.stderr?.toString() ?? '').trim().split('\n').pop()}`);
    const said = [`${flag}: executed "${command}" on this machine under strace (exit status ${r.status ?? r.signal})`];
    let added = 0;
    for (const p of tracedPaths(text)) {
      if (SKIP.test(p)) continue;
      const st = plan.fs.stat(p);
      if (!st?.stats.isFile() || plan.entries.has(p)) continue;
      plan.addLinkChain(p, 'app', `${flag}: ${posix.basename(argv[0])} opened it`, p);
      added++;
    }
    said.push(`added ${added} file${added === 1 ? '' : 's'} the traced command opened or executed (${flag})`);
    return said;
  });
}
