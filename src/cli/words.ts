import { SpecError } from '../builder/errors.js';
import { CaFileError, CredentialsRefusedError, PlainHttpError } from '../registry/errors.js';
import { UserError } from './errors.js';

/** The flag for a BuildSpec field: maxSize -> --max-size. */
export function flagOf(field: string): string {
  return '--' + field.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/**
 * An error as the CLI says it: lower layers throw typed errors with fields and no flag names; the flags are named
 * here. Anything else keeps its message (every layer's messages name the file or reference and what is wrong).
 */
export function errorText(e: unknown): string {
  if (e instanceof SpecError) return `${flagOf(e.field)} "${e.value}" ${e.reason}`;
  if (e instanceof CaFileError) return `--ca-file ${e.path}: ${e.reason}`;
  if (e instanceof CredentialsRefusedError && !e.credentials) return `${e.message}; run ocislim login ${e.registry}, or pass -u USER --password-stdin`;
  if (e instanceof PlainHttpError) return `${e.registry}: ${e.what} is not https (use --insecure to allow it)`;
  return (e as Error)?.message ?? String(e);
}

/** The exit status for an error: a usage error's 2, else 1. */
export function exitCodeOf(e: unknown): number {
  return e instanceof UserError ? e.exitCode : 1;
}
