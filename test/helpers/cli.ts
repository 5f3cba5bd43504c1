import { fileURLToPath } from 'node:url';
import { run } from './sh.js';

export const BIN = fileURLToPath(new URL('../../../bin/ocislim.js', import.meta.url));

/** Runs the real CLI as a user would (a separate node process). */
export function ocislim(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}) {
  return run(process.execPath, [BIN, ...args], opts);
}
