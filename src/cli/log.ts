import type { Log, Task } from '../log.js';
import { humanSize, printable } from './format.js';

export interface CliLogOptions {
  /** --quiet: notes and progress are dropped; warnings still show. */
  quiet?: boolean;
  /** Bars redrawn in place (a terminal), or plain lines (a CI log, a file, a pipe). */
  tty?: boolean;
}

/** Plain lines: one every PLAIN_EVERY_MS, or every 10% of a blob of at least PLAIN_STEP_MIN bytes. */
const PLAIN_EVERY_MS = 5000;
const PLAIN_STEP_MIN = 8 << 20;
const REDRAW_MS = 100;

interface Job {
  label: string;
  total: number;
  done: number;
  start: number;
  /** Plain mode: when and at how many bytes the last line was written. */
  lineAt: number;
  lineBytes: number;
}

const seconds = (ms: number) => (ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

function rate(j: Job, now: number): number {
  const ms = now - j.start;
  return ms > 0 ? (j.done * 1000) / ms : 0;
}

/** "40% of 17.6 MiB, 5.20 MiB/s, ETA 3.1 s" */
function status(j: Job, now: number): string {
  const pct = j.total ? Math.floor((100 * j.done) / j.total) : 100;
  const r = rate(j, now);
  const eta = r > 0 && j.total > j.done ? `, ETA ${seconds(((j.total - j.done) * 1000) / r)}` : '';
  return `${pct}% of ${humanSize(j.total)}, ${humanSize(Math.round(r))}/s${eta}`;
}

/** "done, 7.1 MiB in 0.4 s (17.8 MiB/s)"; a job that ended early says how far it got: "stopped, 1.0 MiB of 7.1 MiB in ...". */
function finished(j: Job, how: string, now: number): string {
  const ms = now - j.start;
  const bytes = j.done >= j.total ? humanSize(j.done) : `${humanSize(j.done)} of ${humanSize(j.total)}`;
  return `${j.label}: ${how}, ${bytes} in ${seconds(ms)}${ms > 0 ? ` (${humanSize(Math.round((j.done * 1000) / ms))}/s)` : ''}`;
}

/**
 * The command line's sink for every layer's notes, warnings and progress (src/log.ts), written to stderr as
 * "ocislim: ..." lines. On a terminal each running job has a bar with its rate and time left, redrawn in place; in a
 * log, a job gets a line when it starts, every 5 s or 10%, and when it ends.
 */
export function cliLog(stream: NodeJS.WritableStream & { columns?: number }, opts: CliLogOptions = {}): Log {
  const write = (s: string) => stream.write(s);
  const jobs = new Set<Job>();
  let drawn = 0;
  let lastDraw = 0;
  let timer: NodeJS.Timeout | null = null;

  const clear = () => {
    if (drawn) write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const bar = (j: Job, now: number) => {
    const width = 12;
    const frac = j.total ? Math.min(1, j.done / j.total) : 1;
    const r = rate(j, now);
    const eta = r > 0 && j.total > j.done ? `, ETA ${seconds(((j.total - j.done) * 1000) / r)}` : '';
    const tail = ` [${'#'.repeat(Math.round(frac * width)).padEnd(width, '-')}] ${String(Math.floor(frac * 100)).padStart(3)}% ${humanSize(j.done)} / ${humanSize(j.total)}, ${humanSize(Math.round(r))}/s${eta}`;
    // The label gives way first: the numbers are what a bar is for.
    const room = Math.max(12, (stream.columns ?? 120) - 1 - tail.length);
    return (j.label.length > room ? j.label.slice(0, room - 1) + '…' : j.label) + tail;
  };
  const draw = () => {
    const now = Date.now();
    lastDraw = now;
    clear();
    for (const j of jobs) write(`\x1b[2K${bar(j, now)}\n`);
    drawn = jobs.size;
  };
  /** A permanent line: above the bars on a terminal. */
  const line = (raw: string) => {
    const s = printable(raw);
    if (opts.tty) {
      clear();
      write(`ocislim: ${s}\n`);
      draw();
    } else write(`ocislim: ${s}\n`);
  };
  const tick = () => {
    const now = Date.now();
    for (const j of jobs) if (now - j.lineAt >= PLAIN_EVERY_MS) plainProgress(j, now);
  };
  const plainProgress = (j: Job, now: number) => {
    j.lineAt = now;
    j.lineBytes = j.done;
    write(`ocislim: ${j.label}: ${status(j, now)}\n`);
  };

  const task = (label: string, total: number): Task => {
    const j: Job = { label: printable(label), total, done: 0, start: Date.now(), lineAt: Date.now(), lineBytes: 0 };
    jobs.add(j);
    if (opts.tty) draw();
    else {
      write(`ocislim: ${j.label}: ${humanSize(total)}\n`);
      // Also while nothing moves (a stalled upload): the log shows the job is alive, and where it stands.
      timer ??= setInterval(tick, 1000).unref();
    }
    return {
      add(n) {
        j.done += n;
        const now = Date.now();
        if (opts.tty) {
          if (now - lastDraw >= REDRAW_MS) draw();
        } else if (j.total >= PLAIN_STEP_MIN && j.done < j.total && (j.done - j.lineBytes) * 10 >= j.total) plainProgress(j, now);
      },
      restart() {
        j.done = 0;
        j.lineBytes = 0;
        j.start = Date.now();
        if (opts.tty) draw();
      },
      done(how) {
        if (!jobs.delete(j)) return;
        if (!jobs.size && timer) {
          clearInterval(timer);
          timer = null;
        }
        line(finished(j, how, Date.now()));
      },
    };
  };

  const idle: Task = { add() {}, restart() {}, done() {} };
  return {
    info: (text) => {
      if (!opts.quiet) line(text);
    },
    warn: (text) => line(`warning: ${text}`),
    task: (label, total) => (opts.quiet ? idle : task(label, total)),
  };
}
