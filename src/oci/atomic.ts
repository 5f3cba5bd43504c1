import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { holdTemp } from '../temp-paths.js';

/** A temporary name beside `target`, so the final rename stays on one filesystem. */
export function tempSibling(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

/** Writes a file under a temporary name and renames it into place: readers never see half a file. */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode?: number): void {
  const tmp = tempSibling(path);
  try {
    writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Runs `fn` on a temporary path next to `target` and renames it to `target` only when `fn` succeeds. The rename
 * replaces a file, or an empty directory with a directory, in one step; anything else at `target` makes it fail
 * (the caller checks first what it may replace), and nothing there is ever removed.
 */
export async function withTempPath<T>(target: string, fn: (tmp: string) => Promise<T>): Promise<T> {
  mkdirSync(dirname(target), { recursive: true });
  const tmp = tempSibling(target);
  const release = holdTemp(tmp);
  try {
    const r = await fn(tmp);
    renameSync(tmp, target);
    return r;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    release();
  }
}
