import { createRequire } from 'node:module';

let mod: typeof import('node:child_process') | undefined;

/**
 * node:child_process, loaded on its first use: most runs start no process, and loading it (net, dgram and the rest
 * come with it) is about 2 ms of every start of the bundled CLI.
 */
export function childProcess(): typeof import('node:child_process') {
  return (mod ??= createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process'));
}
