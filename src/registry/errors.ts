/** A registry operation failed; the message names the registry or reference and what happened (never a secret). */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/**
 * Why a request ended without an answer to judge: `timeout` (nothing within the timeout: connecting, waiting for the
 * answer, or between two chunks of a body), `deadline` (the whole exchange took too long), `tls`, or `network`
 * (reset, refused, closed...; `errno` says which).
 */
export type NetworkFailure = 'timeout' | 'deadline' | 'tls' | 'network';

/** A request failed at the network level (after `attempts` tries, retries included). */
export class NetworkError extends RegistryError {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly failure: NetworkFailure,
    readonly errno: string | undefined,
    readonly attempts: number,
    /** The time limit that ran out (ms), for `timeout` and `deadline`. */
    readonly limitMs?: number,
  ) {
    const what =
      failure === 'timeout'
        ? `no answer within ${limitMs! / 1000} s${errno ? ` (${errno})` : ''}`
        : failure === 'deadline'
          ? `not done within the ${limitMs! / 1000} s deadline`
          : errno === 'UND_ERR_HEADERS_OVERFLOW'
            ? `response headers over Node's limit for them (${errno})`
            : errno ?? failure;
    super(`${method} ${url}: ${what}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`, undefined, errno);
    this.name = 'NetworkError';
  }
}

/** A response body went past its size cap (the stream was aborted the moment it did). */
export class TooLargeError extends RegistryError {
  constructor(
    readonly url: string,
    /** What the body is: "manifest", "token response", ... */
    readonly what: string,
    readonly limit: number,
  ) {
    super(`${url}: the ${what} is larger than ${limit / 1024 >= 1024 ? `${limit / 1024 / 1024} MiB` : `${limit / 1024} KiB`}`);
    this.name = 'TooLargeError';
  }
}

/**
 * The registry answered 401 to a request that carried credentials (after a fresh token or Basic header): it refuses
 * these credentials. `source` says where they came from; `credentials` is false when none were found (anonymous).
 */
export class CredentialsRefusedError extends RegistryError {
  constructor(
    readonly registry: string,
    readonly credentials: boolean,
    readonly source: string | undefined,
    /** The operation that was refused, e.g. "checking blob sha256:... in repo". */
    readonly operation: string,
    status: number,
  ) {
    super(
      credentials
        ? `${registry} refused the credentials from ${source ?? 'the configuration'} (HTTP ${status} when ${operation})`
        : `${registry} requires credentials and none were found for it (HTTP ${status} when ${operation})`,
      status,
      'UNAUTHORIZED',
    );
    this.name = 'CredentialsRefusedError';
  }
}

/** The CA certificate file given for TLS cannot be used. */
export class CaFileError extends RegistryError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`CA file ${path}: ${reason}`);
    this.name = 'CaFileError';
  }
}

/** Plain http where https is required (allowed with the `insecure` option, or on loopback). */
export class PlainHttpError extends RegistryError {
  constructor(
    readonly registry: string,
    /** What is not https: 'token realm http://auth.example'. */
    readonly what: string,
  ) {
    super(`${registry}: ${what} is not https (the insecure option allows it)`);
    this.name = 'PlainHttpError';
  }
}
