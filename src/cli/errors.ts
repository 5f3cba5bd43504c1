/** An error meant for the user: its message is the whole story, printed on one line without a stack. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** A mistake in the command line itself (a missing or malformed flag): exit status 2, as getopt-style tools do. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/**
 * An error of one target of a multi-platform build (`label`: "--root linux/arm64=DIR"): the reporter words `error`
 * after the label, so the user sees which target failed.
 */
export class TargetError extends Error {
  constructor(
    readonly label: string,
    readonly error: unknown,
  ) {
    super(`${label}: ${(error as Error)?.message ?? String(error)}`);
    this.name = 'TargetError';
  }
}
