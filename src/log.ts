/**
 * The one sink every layer reports to. Lower layers say what happens; the front end decides how it shows (plain
 * lines in a log, bars on a terminal, nothing with --quiet).
 */
export interface Log {
  /** News for the user: a file a rule added, a retry, a resumed upload. */
  info(text: string): void;
  /** Something that may be wrong, or surprising; shown even when quiet. */
  warn(text: string): void;
  /** A long job counted in bytes (compressing a layer, uploading a blob); `label` names it. */
  task(label: string, total: number): Task;
}

/** Progress of one job of Log.task. */
export interface Task {
  /** `n` more bytes done. */
  add(n: number): void;
  /** Back to zero: the job starts again (a retried upload). */
  restart(): void;
  /** Finished; `how` says how it ended ("uploaded", "compressed to 7.1 MiB"). */
  done(how: string): void;
}

const idle: Task = { add() {}, restart() {}, done() {} };

/** Reports nothing: the default for library callers that pass no log. */
export const silentLog: Log = { info() {}, warn() {}, task: () => idle };
