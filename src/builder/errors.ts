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
