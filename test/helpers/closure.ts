import { realpathSync } from 'node:fs';
import { Closure } from '../../src/elf/resolve.js';

/** The files a closure says the loader opens, as host real paths (the interpreter included). */
export function closureFiles(c: Closure, root = '/'): Set<string> {
  const host = (p: string) => realpathSync(root === '/' ? p : root + p);
  const s = new Set(c.libraries.map((l) => host(l.realPath)));
  if (c.interpreter) s.add(host(c.interpreter.realPath));
  return s;
}

/**
 * What ldd lists of a closure: ldd prints the loader only when some object needs it by name (libc does), although
 * the kernel always opens it for a program with PT_INTERP.
 */
export function lddView(c: Closure, root = '/'): Set<string> {
  const s = closureFiles(c, root);
  if (c.interpreter && !c.edges.some((e) => e.to === c.interpreter!.path)) {
    s.delete(realpathSync(root === '/' ? c.interpreter.realPath : root + c.interpreter.realPath));
  }
  return s;
}

export function sorted(s: Iterable<string>): string[] {
  return [...s].sort();
}
