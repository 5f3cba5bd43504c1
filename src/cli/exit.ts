import { printable } from './format.js';
import { errorText, exitCodeOf } from './words.js';
import { removeHeldTemps } from '../temp-paths.js';

/** An error as every command reports it: one line (names from files are escaped); --debug adds the stack. */
export function report(e: unknown, debug: boolean): number {
  process.stderr.write(`ocislim: ${printable(errorText(e))}\n`);
  if (debug) process.stderr.write(((e as Error)?.stack ?? '') + '\n');
  return exitCodeOf(e);
}

/** Resolves once every write queued on the stream so far has reached the OS (or the stream failed: a reader gone). */
function flushed(s: NodeJS.WriteStream): Promise<void> {
  if (s.destroyed || !s.writable) return Promise.resolve();
  // Write callbacks run in order, so the callback of an empty write runs after every earlier write completed.
  return new Promise((resolve) => s.write('', () => resolve()));
}

/**
 * Exits with `code` as soon as stdout and stderr are flushed. process.exit() alone drops writes still queued for a
 * pipe (they are asynchronous once the pipe's 64 KiB buffer is full, whatever the reader's speed); waiting for the
 * event loop to drain instead would also wait for a registry's keep-alive socket to close (150-200 ms).
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  process.exitCode = code;
  exitOnClosedPipe();
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/**
 * A reader that goes away (`ocislim ldd ... | head`) makes the next write fail with EPIPE. Like a C program killed by
 * SIGPIPE, stop quietly with status 141 instead of an unhandled 'error' event and its stack trace.
 */
export function exitOnClosedPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    if (s.listenerCount('error') > 0) continue;
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(141);
      throw e;
    });
  }
}

let removingOnStop = false;

/**
 * SIGINT (Ctrl-C), SIGTERM (a CI job cancelled) and SIGHUP stop a command as they would, after the temporary files
 * and directories it holds are removed (temp-paths.ts): a stopped build leaves neither a scratch directory nor a
 * half-written blob or output. The signal is raised again once its handler is gone, so the exit status is the
 * signal's (130, 143, 129). Installed once per process.
 */
export function removeTempsOnStop(): void {
  if (removingOnStop) return;
  removingOnStop = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      removeHeldTemps();
      process.kill(process.pid, sig);
    });
  }
}
