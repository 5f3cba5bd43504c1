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

/**
 * The run check ("will it run") refuses the image: `text` says what cannot run and why; `advice`, when there is one,
 * what to add instead. The message suggests no option: front ends name theirs for skipping the check (`noVerify`),
 * and `keeps` says whether skipping keeps something (a dangling link) rather than just skipping the check.
 */
export class RunCheckError extends BuildError {
  constructor(
    readonly text: string,
    readonly advice?: string,
    readonly keeps = false,
  ) {
    super(advice ? `${text} (${advice})` : text);
    this.name = 'RunCheckError';
  }
}

/** Nothing to put in the image: no input file, no ADD or COPY (the CLI names its flags). */
export class NothingToBuildError extends BuildError {
  constructor() {
    super('nothing to build: give at least one input file, an ADD or a COPY');
    this.name = 'NothingToBuildError';
  }
}

/** No ELF file tells the platform, none was asked for, and the host's is not one images are made for. */
export class UnknownPlatformError extends BuildError {
  constructor() {
    super('no ELF file tells the platform: give the platform');
    this.name = 'UnknownPlatformError';
  }
}

/** The image's files add up to more than the size budget (`maxSize`). Both in bytes. */
export class MaxSizeError extends BuildError {
  constructor(
    readonly total: number,
    readonly max: number,
  ) {
    super(`the image's files add up to ${total} bytes, over the maximum size ${max}`);
    this.name = 'MaxSizeError';
  }
}

/** The base image (`base`, as named) is of another platform (`found`) than the image built on it (`want`). */
export class BasePlatformError extends BuildError {
  constructor(
    readonly base: string,
    readonly found: string,
    readonly want: string,
  ) {
    super(`the base image ${base} is ${found}, but the image is ${want}`);
    this.name = 'BasePlatformError';
  }
}

/** The target stage asked of a multi-stage Dockerfile (`target`) is not one of its `stages` (names, or indexes). */
export class NoSuchStageError extends BuildError {
  constructor(
    readonly file: string,
    readonly target: string,
    readonly stages: string[],
  ) {
    super(`${file}: no stage named ${target} (stages: ${stages.join(', ')})`);
    this.name = 'NoSuchStageError';
  }
}

/**
 * A build option's request cannot be met: `option` is the BuildSpec field (withLibs, gconv, idn, tz, withShell,
 * packages, trace), `value` the item of it at fault (a library, a module, a zone, a package), `reason` what is wrong.
 * Front ends name the option their own way (the CLI: --with-lib).
 */
export class OptionError extends BuildError {
  constructor(
    readonly option: string,
    readonly value: string | undefined,
    readonly reason: string,
  ) {
    super(`${option}${value !== undefined ? ` ${value}` : ''}: ${reason}`);
    this.name = 'OptionError';
  }
}
