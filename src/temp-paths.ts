import { rmSync } from 'node:fs';

/**
 * The temporary files and directories this process is writing while it waits on something (a build's scratch
 * directory, a layer or a blob written under a temporary name, an archive before its rename), so that a command
 * stopped by a signal removes them (cli/exit.ts, removeOnStop): outputs appear whole by a rename, and an interrupted
 * command leaves nothing behind, not even a temporary name. A write that never awaits needs no entry: a signal's
 * handler runs between turns of the event loop.
 */
const held = new Set<string>();

/** Lists `path` until the returned function is called (once it is renamed into place or removed). */
export function holdTemp(path: string): () => void {
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
