/** A build input problem: the message names the file or reference and what is wrong. */
export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

/** The ELF files are of another platform than the build was asked for (the CLI names the flag that asked). */
export class PlatformMismatchError extends BuildError {
  constructor(
    readonly want: string,
    readonly found: string,
    readonly file: string,
  ) {
    super(`${file} is ${found}, not ${want}`);
    this.name = 'PlatformMismatchError';
  }
}

/**
 * A malformed value of one BuildSpec field (`field` is the field's name: maxSize, expose, stopSignal, user). The
 * front end names it its own way (the CLI: --max-size; a Dockerfile: STOPSIGNAL).
 */
export class SpecError extends BuildError {
  constructor(
    readonly field: string,
    readonly value: string,
    /** What is wrong, as a predicate: 'must be a size such as 20M or 1.5G'. */
    readonly reason: string,
  ) {
    super(`${field} "${value}" ${reason}`);
    this.name = 'SpecError';
  }
}
