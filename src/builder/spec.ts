import type { IgnoreRules } from './copy.js';
import { ImageFormat } from '../oci/mediatypes.js';
import { Platform } from '../oci/platform.js';
import type { RunConfig } from '../oci/image.js';
import { BuildError, SpecError } from './errors.js';

/**
 * Names a BuildSpec option (a field: withLibs, gconv, idn, tz, scaffold, noScaffold, user, withShell, trace), with
 * the value given to it, in what the builder says: front ends name their own (the CLI: "--with-gconv NAME").
 */
export type OptionNamer = (option: string, value?: string) => string;

/** The library's own naming: the field, then the value. */
export const fieldNames: OptionNamer = (option, value) => (value === undefined ? option : `${option} ${value}`);

export interface CopySpec {
  src: string;
  /** Absolute path in the image; a trailing "/" means "into this directory". */
  dest: string;
  chown?: { uid: number; gid: number };
  /** USER[:GROUP] by name or number, looked up in the image's /etc/passwd and /etc/group (Dockerfile --chown). */
  chownName?: string;
  chmod?: number;
  /** Read the source from an earlier stage (by index) or an image, instead of the build context. */
  from?: { stage: number } | { image: string };
  /** What names this copy in errors (the CLI: its flag); ADD or COPY when absent. */
  where?: string;
}

/** One step that changes files, in order: ADD/COPY, or WORKDIR (which creates its directory). */
export type BuildStep =
  | { kind: 'ADD' | 'COPY'; spec: CopySpec; where: string }
  | { kind: 'WORKDIR'; path: string; user?: string; where: string };

/** A stage of a multi-stage Dockerfile that COPY --from reads: its base image and its steps. */
export interface SourceStage {
  name?: string;
  /** Base image (registry reference or local layout); scratch when absent. */
  from?: string;
  fromPlatform?: Platform;
  steps: BuildStep[];
  user?: string;
}

/** Everything a build needs, whatever front end (flags or a Dockerfile) produced it. */
export interface BuildSpec {
  inputs: string[];
  /** Base image: a registry reference, oci:DIR[:TAG] or oci-archive:FILE[:TAG]; scratch when absent. */
  from?: string;
  adds: CopySpec[];
  copies: CopySpec[];
  /** Root filesystem the inputs and their libraries are read from. */
  root: string;
  entrypoint?: string[];
  cmd?: string[];
  env: string[];
  expose: string[];
  workdir?: string;
  user?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  stopSignal?: string;
  volumes: string[];
  /** 1: one layer; 3 (default): loader and libc, other libraries, application. */
  layers: 1 | 3;
  format: ImageFormat;
  /** Expected platform; the ELF files' platform must match it. */
  platform?: Platform;
  /** Seconds since the epoch for every timestamp (SOURCE_DATE_EPOCH, else 0). */
  epoch: number;
  /** Layer compression: gzip (default) or zstd (OCI tar+zstd; OCI format only). */
  compression?: 'gzip' | 'zstd';
  /** Compression level: gzip 1-9, zstd 1-19 (part of the inputs: another level gives another digest). */
  gzipLevel?: number;
  /** Persistent layer cache directory (no cache when absent). Never changes the image: only how fast it is made. */
  cacheDir?: string;
  /** ADD, COPY and WORKDIR in the order to apply them (a Dockerfile's order); default: every --add, then every --copy. */
  steps?: BuildStep[];
  /** Stages that COPY --from reads, by index (multi-stage Dockerfiles). */
  stages?: (SourceStage | undefined)[];
  /** The run config the flags apply to instead of the base image's (a Dockerfile's result, base included). */
  config?: RunConfig;
  /** Platform to load the base image for (Dockerfile builds load it before planning). */
  fromPlatform?: Platform;
  /** The image's author (Dockerfile MAINTAINER). */
  author?: string;
  /** Sources of ADD/COPY are read only inside this context (Dockerfile builds). */
  context?: { dir: string; ignored: (rel: string) => boolean; rules?: IgnoreRules };
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  /** Instructions that used the shell form (a warning when the image has no /bin/sh). */
  shellForm?: string[];
  /** Scaffolding for scratch images (on by default where the program needs it). */
  scaffold?: { passwd: boolean; tmp: boolean; certs: boolean; tz: boolean; locale: boolean };
  /** Scaffolding wanted even when no trigger fires (--scaffold certs). */
  scaffoldForce?: { passwd?: boolean; certs?: boolean; tz?: boolean };
  /** Time zones to ship (default UTC when the program uses time-zone functions; "all" for all). */
  tz?: string[];
  /** Skip the "will it run" check of the final file set. */
  noVerify?: boolean;
  /** gconv modules to ship for iconv (opt-in). */
  gconv?: string[];
  /** Ship the library glibc loads for IDN host names (opt-in). */
  idn?: boolean;
  /** Turn off the dlopen rules (libgcc_s for pthread_cancel...). */
  noRules?: boolean;
  /** Extra libraries, by name (searched as dlopen would) or path, each with its closure. */
  withLibs?: string[];
  /** Fail when the image's files add up to more than this many bytes (uncompressed). */
  maxSize?: number;
  /** Package records in the image (/var/lib/dpkg/status.d, the distroless convention); on unless false (--no-sbom). */
  sbom?: boolean;
  /** Take the package inventory for an SBOM document even when the records stay out of the image. */
  sbomDocument?: boolean;
  /** Ship the root's /bin/sh with its closure (for system, popen, wordexp and shell scripts). */
  withShell?: boolean;
  /** Installed packages (dpkg) to ship, without documentation, each ELF file with its closure. */
  packages?: string[];
  /** Turn off the runtime rule (same-source packages and the directories the program names). */
  noRuntime?: boolean;
  /** Turn off the helpers rule only (executables of related packages that the program runs by name through PATH). */
  noHelpers?: boolean;
  /** A command to run once under strace on the build machine; the files it opens are added (opt-in). */
  trace?: string;
  /** How notes, warnings and --explain reasons name an option of this spec (the CLI: its flags); field names if absent. */
  optionNames?: OptionNamer;
}

/** "150M", "2G", "500K", "1000" → bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(s.trim());
  if (!m) throw new SpecError('maxSize', s, 'must be a size such as 20M or 1.5G');
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.round(Number(m[1]) * mult);
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** SOURCE_DATE_EPOCH (reproducible-builds.org) or 0. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) throw new BuildError(`SOURCE_DATE_EPOCH="${v}" is not a whole number of seconds`);
  return Number(v);
}

export function isoTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** `KEY=VALUE` (env, labels, annotations). */
export function parseKeyValue(s: string, what: string): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0) throw new BuildError(`${what} "${s}" must be KEY=VALUE`);
  return [s.slice(0, i), s.slice(i + 1)];
}

/** `PORT[/tcp|/udp|/sctp]` → "6379/tcp". */
export function parsePort(s: string): string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(s.trim());
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new SpecError('expose', s, 'must be PORT[/tcp|/udp] with PORT from 1 to 65535');
  return `${Number(m[1])}/${(m[2] ?? 'tcp').toLowerCase()}`;
}

/** A command as a JSON array (exec form) or a whitespace-separated string. */
export function parseCommand(s: string, what: string): string[] {
  const t = s.trim();
  if (t.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      throw new BuildError(`${what} ${s} is not a valid JSON array`);
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new BuildError(`${what} ${s} must be a JSON array of strings`);
    return v as string[];
  }
  return splitWords(t, what);
}

/** Splits words as a POSIX shell would, for quoting only: '...', "..." and backslash escapes; no expansions. */
export function splitWords(s: string, what: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new BuildError(`${what} ${s}: unterminated single quote`);
      cur += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1])) j++;
        cur += s[j];
      }
      if (j >= s.length) throw new BuildError(`${what} ${s}: unterminated double quote`);
      i = j;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** `SRC:DEST` for --add and --copy; the last ":" separates, so SRC may hold colons. */
export function parseCopy(s: string, what: string): CopySpec {
  const i = s.lastIndexOf(':');
  if (i <= 0 || i === s.length - 1) throw new BuildError(`${what} "${s}" must be SRC:DEST`);
  const dest = s.slice(i + 1);
  if (!dest.startsWith('/')) throw new BuildError(`${what} "${s}": DEST must be an absolute path in the image`);
  return { src: s.slice(0, i), dest };
}

export function parseSignal(s: string): string {
  if (/^SIG[A-Z0-9+-]+$/.test(s) || /^\d+$/.test(s)) return s;
  if (/^[A-Z0-9]+$/.test(s)) return 'SIG' + s;
  throw new SpecError('stopSignal', s, 'must be a signal name (SIGTERM) or number');
}

export function parseUser(s: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(s)) throw new SpecError('user', s, 'must be USER[:GROUP] (names or numbers)');
  return s;
}
