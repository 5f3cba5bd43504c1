/** The one error type the ELF reader throws: always names the file and what is wrong with it. */
export class ElfError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ElfError';
  }
}
