import { closeSync, openSync, readSync } from 'node:fs';

/** A script's `#!` line, as the kernel reads it (fs/binfmt_script.c): the interpreter path and at most one argument. */
export interface Shebang {
  interpreter: string;
  arg?: string;
}

/** The kernel reads this much of a script for its #! line (BINPRM_BUF_SIZE). */
const HEAD = 256;

/** Parses the #! line at the start of `head`; null when the file is not a script. */
export function parseShebang(head: Uint8Array): Shebang | null {
  if (head.length < 3 || head[0] !== 0x23 || head[1] !== 0x21) return null;
  let end = head.indexOf(0x0a);
  if (end < 0) end = head.length;
  const line = Buffer.from(head.subarray(2, end)).toString('latin1').replace(/[ \t]+$/, '').replace(/^[ \t]+/, '');
  if (!line) return null;
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line)!;
  return { interpreter: m[1], ...(m[2] ? { arg: m[2] } : {}) };
}

/** The #! line of a host file or of generated content; null for anything else (an ELF file, data, unreadable). */
export function readShebang(source: { path?: string; content?: Uint8Array }): Shebang | null {
  if (source.content) return parseShebang(source.content.subarray(0, HEAD));
  if (!source.path) return null;
  let fd: number | undefined;
  try {
    fd = openSync(source.path, 'r');
    const buf = Buffer.alloc(HEAD);
    const n = readSync(fd, buf, 0, HEAD, 0);
    return parseShebang(buf.subarray(0, n));
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Default PATH for `#!/usr/bin/env NAME` (the image's own PATH when it has one). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** For `#!/usr/bin/env [-S] NAME ...`: the program env will look up in PATH; null for any other interpreter. */
export function envTarget(s: Shebang): string | null {
  if (!/(^|\/)env$/.test(s.interpreter) || !s.arg) return null;
  const words = s.arg.split(/[ \t]+/).filter((w) => w !== '-S' && !w.startsWith('-') && !/^\w+=/.test(w));
  return words[0] ?? null;
}
