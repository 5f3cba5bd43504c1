import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './sh.js';

// Every test process gets its own empty layer cache, shared by the builds it runs (which exercises sharing), so a
// developer's ~/.cache/ocislim never decides a test's outcome. A test may still set OCISLIM_CACHE itself.
if (!process.env.OCISLIM_CACHE) {
  const dir = mkdtempSync(join(tmpdir(), 'ocislim-test-cache-'));
  process.env.OCISLIM_CACHE = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}

export const BIN = fileURLToPath(new URL('../../../bin/ocislim.js', import.meta.url));

/** Runs the real CLI as a user would (a separate node process). */
export function ocislim(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}) {
  return run(process.execPath, [BIN, ...args], opts);
}

/** Like ocislim(), without blocking the event loop (needed when the test process also runs a proxy or server). */
export function ocislimAsync(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number; wrap?: (argv: string[]) => string[] } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const [cmd, ...argv] = (opts.wrap ?? ((a: string[]) => a))([process.execPath, BIN, ...args]);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 300000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
