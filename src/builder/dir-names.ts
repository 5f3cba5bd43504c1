import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The names in a host directory, sorted. Image paths are UTF-8 strings: a name that is not UTF-8 cannot be carried
 * (readdir would hand back a mangled name that no longer exists, and the file would be left out without a word), so
 * it is an error naming the file, its bytes escaped.
 */
export function dirNames(dir: string): string[] {
  const names: string[] = [];
  for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
    try {
      names.push(utf8.decode(raw));
    } catch {
      throw new BuildError(`${join(dir, escapeBytes(raw))}: the file name is not UTF-8, which image paths must be; rename it or leave it out`);
    }
  }
  return names.sort();
}

function escapeBytes(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}
