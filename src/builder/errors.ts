/** A build input problem: the message names the file or reference and what is wrong. */
export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}
