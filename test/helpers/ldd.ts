import { execFile } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

export interface LddTruth {
  /** "ok": a list; "static": ldd said statically linked / not dynamic; "error": the loader failed. */
  status: 'ok' | 'static' | 'error';
  /** Real paths of every file the loader would open (vdso excluded). */
  files: Set<string>;
  notFound: Set<string>;
  raw: string;
}

/** Parses ldd (or ld.so --list) output into real paths. */
export function parseLddOutput(text: string, realpath: (p: string) => string = safeRealpath): LddTruth {
  const files = new Set<string>();
  const notFound = new Set<string>();
  if (/statically linked|not a dynamic executable/.test(text)) return { status: 'static', files, notFound, raw: text };
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    let m = /^(\S+) => not found$/.exec(t);
    if (m) {
      notFound.add(m[1]);
      continue;
    }
    m = /^(\S*) => (\S+) \(0x[0-9a-f]+\)$/.exec(t);
    if (m) {
      if (m[2].startsWith('/')) files.add(realpath(m[2]));
      continue;
    }
    m = /^(\S+) \(0x[0-9a-f]+\)$/.exec(t);
    if (m) {
      if (m[1].startsWith('/')) files.add(realpath(m[1]));
      continue;
    }
  }
  return { status: 'ok', files, notFound, raw: text };
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** Runs the real ldd (which executes the loader in trace mode) on a file. */
export async function realLdd(file: string, env: NodeJS.ProcessEnv = {}): Promise<LddTruth> {
  try {
    const { stdout, stderr } = await pexec('ldd', [file], { timeout: 30000, env: { PATH: process.env.PATH, LC_ALL: 'C', ...env }, maxBuffer: 1 << 22 });
    const t = parseLddOutput(stdout + stderr);
    return t;
  } catch (e) {
    const ex = e as { stdout?: string; stderr?: string };
    const text = (ex.stdout ?? '') + (ex.stderr ?? '');
    const t = parseLddOutput(text);
    if (t.status === 'ok' && t.files.size === 0 && t.notFound.size === 0) return { ...t, status: /not a dynamic/.test(text) ? 'static' : 'error' };
    if (/error while loading|invalid ELF|exited with unknown/.test(text)) return { ...t, status: 'error' };
    return t;
  }
}
