import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The temporary files and directories this process is writing while it waits on something (a build's scratch
 * directory, a layer or a blob written under a temporary name, an archive before its rename), so that a command
 * stopped by a signal removes them (cli/exit.ts, removeTempsOnStop), as does any other exit (below): outputs appear
 * whole by a rename, and an interrupted command leaves nothing behind, not even a temporary name. A write that never
 * awaits needs no entry: a signal's handler runs between turns of the event loop.
 */
const held = new Set<string>();
let onExit = false;

/**
 * Lists `path` until the returned function is called (once it is renamed into place or removed). Whatever is still
 * listed when the process exits is removed then: an exit in the middle of the work (a reader of stderr gone, whose
 * EPIPE ends the command with status 141; an uncaught exception; process.exit from the program that uses the library)
 * leaves no scratch directory or temporary name either.
 */
export function holdTemp(path: string): () => void {
  if (!onExit) {
    onExit = true;
    process.on('exit', removeHeldTemps);
  }
  held.add(path);
  return () => {
    held.delete(path);
  };
}

/** Removes every path still held (best effort: the process is about to end). */
export function removeHeldTemps(): void {
  for (const p of held) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      /* what cannot be removed stays; the process ends anyway */
    }
  }
  held.clear();
}

/** A new directory in the system's temporary directory, held (above) until `done` removes it. */
function heldTempDir(prefix: string): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const release = holdTemp(dir);
  return {
    dir,
    done: () => {
      rmSync(dir, { recursive: true, force: true });
      release();
    },
  };
}

/** Runs `fn` with a scratch directory (`prefix` + a random part, under the system's temporary directory), removed after. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const t = heldTempDir(prefix);
  try {
    return await fn(t.dir);
  } finally {
    t.done();
  }
}

/** withTempDir for work that does not wait on anything. */
export function withTempDirSync<T>(prefix: string, fn: (dir: string) => T): T {
  const t = heldTempDir(prefix);
  try {
    return fn(t.dir);
  } finally {
    t.done();
  }
}
