import { BasePlatformError, MaxSizeError, NoSuchStageError, NothingToBuildError, OptionError, PlatformMismatchError, RunCheckError, SpecError, UnknownPlatformError } from '../builder/errors.js';
import { CaFileError, CredentialsRefusedError, PlainHttpError, RegistryError } from '../registry/errors.js';
import { TargetError, UserError } from './errors.js';

/** BuildSpec fields whose flag is not their name in kebab case. */
const FLAGS: Record<string, string> = { withLibs: '--with-lib', gconv: '--with-gconv', idn: '--with-idn', packages: '--package' };

/** The flag for a BuildSpec field: maxSize -> --max-size, withLibs -> --with-lib. */
export function flagOf(field: string): string {
  return FLAGS[field] ?? '--' + field.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** A BuildSpec option with its value as the command line gives it (the builder's OptionNamer): --with-gconv NAME. */
export function optionText(option: string, value?: string): string {
  return value === undefined ? flagOf(option) : `${flagOf(option)} ${value}`;
}

/**
 * An error as the CLI says it: lower layers throw typed errors with fields and no flag names; the flags are named
 * here. Anything else keeps its message (every layer's messages name the file or reference and what is wrong).
 */
export function errorText(e: unknown): string {
  if (e instanceof TargetError) return e.error instanceof PlatformMismatchError ? `${e.label}: ${e.error.file} is ${e.error.found}, not ${e.error.want}` : `${e.label}: ${errorText(e.error)}`;
  if (e instanceof PlatformMismatchError) return `--platform ${e.want} does not match ${e.file}, which is ${e.found}`;
  if (e instanceof RunCheckError) return `${e.text} (${e.advice ? `${e.advice}, or ` : ''}--no-verify ${e.keeps ? 'to keep it' : 'to skip'})`;
  if (e instanceof OptionError) return `${optionText(e.option, e.value)}: ${e.reason}`;
  if (e instanceof NoSuchStageError) return `${e.file}: --target ${e.target}: no stage of that name (stages: ${e.stages.join(', ')})`;
  if (e instanceof NothingToBuildError) return 'nothing to build: give at least one file, --add or --copy';
  if (e instanceof UnknownPlatformError) return 'no ELF file tells the platform: give --platform';
  if (e instanceof MaxSizeError) return `the image's files add up to ${e.total} bytes, over --max-size ${e.max} (see --explain)`;
  if (e instanceof BasePlatformError) return `--from ${e.base} is ${e.found}, but the image is ${e.want}`;
  if (e instanceof SpecError) return `${flagOf(e.field)} "${e.value}" ${e.reason}`;
  if (e instanceof CaFileError) return `--ca-file ${e.path}: ${e.reason}`;
  if (e instanceof CredentialsRefusedError && !e.credentials) return `${e.message}; run ocislim login ${e.registry}, or pass -u USER --password-stdin`;
  if (e instanceof PlainHttpError) return `${e.registry}: ${e.what} is not https (use --insecure to allow it)`;
  if (e instanceof RegistryError && e.code === 'UND_ERR_HEADERS_OVERFLOW') return `${e.message}; Node's --max-http-header-size (in NODE_OPTIONS) raises it`;
  return fsErrorText(e) ?? (e as Error)?.message ?? String(e);
}

/**
 * A file system error as Node raised it ("ENOENT: no such file or directory, open '/app/prog'": a file removed while
 * the image was being built), worded as the others: the file first, then what is wrong ("/app/prog: no such file or
 * directory (open)"). Null for anything else.
 */
function fsErrorText(e: unknown): string | null {
  const x = e as NodeJS.ErrnoException | null;
  if (!(x instanceof Error) || typeof x.code !== 'string' || typeof x.path !== 'string' || typeof x.syscall !== 'string') return null;
  const what = new RegExp(`^${x.code}: (.+?), ${x.syscall}\\b`).exec(x.message)?.[1];
  if (!what) return null;
  const dest = (x as { dest?: unknown }).dest;
  return `${x.path}: ${what} (${x.syscall}${typeof dest === 'string' ? ` to ${dest}` : ''})`;
}

/** The exit status for an error: a usage error's 2, else 1. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof TargetError) return exitCodeOf(e.error);
  return e instanceof UserError ? e.exitCode : 1;
}
