import { createRequire } from 'node:module';

/**
 * Holds V8's optimizing compiler (TurboFan) back for the rest of a short command: only Sparkplug's baseline code is
 * made, at once and cheaply. A short command spends its JavaScript time in code that runs once or a few dozen times;
 * TurboFan compiles the warmest of it on background threads at a CPU cost its faster code never earns back before
 * the process ends (a cold build of redis: 6% less CPU held back). Whether the command is short must be known
 * beforehand: a function that ran hot while held stays in baseline code when the hold ends (V8 does not come back
 * to it), and a long command (a Dockerfile ADD of 22,000 files) is a third slower in baseline code. Node's own
 * --max-opt is left alone, and so is a process that makes a V8 code cache (OCISLIM_KEEP_V8_FLAGS: changing a flag
 * changes V8's flag hash, and a code cache made afterwards would be refused). Returns the function that ends the
 * hold, for a command run in a longer process.
 */
export function holdOptimizer(): () => void {
  if (process.env.OCISLIM_KEEP_V8_FLAGS || process.execArgv.some((a) => a.startsWith('--max-opt'))) return () => {};
  const v8 = createRequire(import.meta.url)('node:v8') as typeof import('node:v8');
  v8.setFlagsFromString('--max-opt=1');
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    v8.setFlagsFromString('--max-opt=999');
  };
}
