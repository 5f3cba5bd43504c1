import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs a bash script with `set -e`; throws with its output when it fails. */
export function sh(script: string, cwd?: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync('bash', ['-ec', script], { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', ...env }, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`script failed (${r.status}): ${script}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Runs a command and returns status and output without throwing. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}) {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', env: { ...process.env, ...opts.env }, input: opts.input, timeout: opts.timeout ?? 120000, maxBuffer: 1 << 26 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function has(cmd: string): boolean {
  try {
    execFileSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function tempDir(prefix = 'ocislim-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
}
