/**
 * Every command's flags, as data: yargs reads these schemas, and the argument types the commands receive are derived
 * from them (ArgsOf), so a flag is declared once, here.
 */
import type { InferredOptionTypes, Options } from 'yargs';

/** Help sections: what goes in, where the image goes, how registries are reached, what the container runs with. */
export const GROUP = {
  input: 'Input:',
  output: 'Output:',
  registry: 'Registry:',
  runtime: 'Runtime (image config and run-time files):',
  check: 'Checks:',
} as const;

/**
 * Repeatable flags (`array: true`) take one value per occurrence (`nargs: 1`), as docker's, ko's and crane's do:
 * `--expose 80 --expose 443`. A greedy array would swallow what follows (`build --expose 6379 ./redis-server` took
 * the program for a port; `ldd --library-path /lib /bin/true` took the file for a directory). `--no-scaffold`, whose
 * value is optional, is the exception.
 */
type Schema = Record<string, Options>;

/** yargs hands commands both spellings of each flag (`stop-signal` and `stopSignal`); the types keep the camelCase one. */
type CamelCase<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;
export type ArgsOf<S extends Schema> = { [K in keyof InferredOptionTypes<S> as CamelCase<K & string>]: InferredOptionTypes<S>[K] };

/** Flags every command takes. */
export const globalOptions = {
  debug: { type: 'boolean', describe: 'Print stack traces on errors' },
  quiet: { alias: 'q', type: 'boolean', describe: 'No notes or progress on stderr (warnings and errors still show)' },
} as const satisfies Schema;

export const registryOptions = {
  insecure: { type: 'boolean', group: GROUP.registry, describe: 'Allow plain http to a registry that is not on loopback' },
  'ca-file': { type: 'string', group: GROUP.registry, describe: 'PEM file of extra CA certificates for TLS registries' },
  username: { alias: 'u', type: 'string', group: GROUP.registry, describe: 'Registry user name (with --password-stdin)' },
  'password-stdin': { type: 'boolean', group: GROUP.registry, describe: 'Read the registry password from standard input (needs -u)' },
  timeout: { type: 'number', group: GROUP.registry, describe: 'Seconds to wait on the registry for each step: connecting, its answer, each chunk of data (default 10)' },
  retries: { type: 'number', group: GROUP.registry, describe: 'Retries of a failed registry request; progress (bytes moved) starts the count again (default 4)' },
} as const satisfies Schema;

const localForms = 'oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]';

export const buildOptions = {
  file: { alias: 'f', type: 'string', group: GROUP.input, describe: 'Build from this Dockerfile (the positional argument is then the context directory)' },
  'build-arg': { type: 'string', array: true, nargs: 1, group: GROUP.input, describe: 'KEY=VALUE for an ARG of the Dockerfile (repeatable)' },
  target: { type: 'string', group: GROUP.input, describe: 'The Dockerfile stage to build (default: the last)' },
  from: { type: 'string', group: GROUP.input, describe: 'Base image: registry REF (or docker://REF), oci:DIR[:TAG] or oci-archive:FILE[:TAG] (default: scratch)' },
  add: { type: 'string', array: true, nargs: 1, group: GROUP.input, describe: 'SRC:DEST, like Dockerfile ADD: a local tar (gz, bz2, xz) is unpacked into DEST' },
  copy: { type: 'string', array: true, nargs: 1, group: GROUP.input, describe: 'SRC:DEST, like Dockerfile COPY' },
  // Not an array option (those are greedy: `--root DIR PROGRAM` would take PROGRAM as a root); repeats collect anyway.
  root: { type: 'string', group: GROUP.input, describe: 'Root filesystem to take files and libraries from (default /); PLATFORM=DIR, once per platform, builds a multi-platform image' },
  platform: { type: 'string', group: GROUP.input, describe: 'Expected os/arch[/variant], checked against the ELF files; with --root PLATFORM=DIR a comma list of those platforms, or all' },
  'with-lib': { type: 'string', array: true, nargs: 1, group: GROUP.input, describe: 'Add a library (name or path) with its closure, e.g. one the program dlopens' },
  'with-gconv': { type: 'string', array: true, nargs: 1, group: GROUP.input, describe: 'gconv modules for iconv (ISO8859-1, EUC-JP, ... or all)' },
  'with-idn': { type: 'boolean', group: GROUP.input, describe: 'Add the library glibc loads for international host names (getaddrinfo AI_IDN)' },
  'with-shell': { type: 'boolean', group: GROUP.input, describe: "Ship the root's /bin/sh (dash or busybox) with its libraries, for system(), popen() and shell scripts" },
  package: { type: 'string', array: true, nargs: 1, group: GROUP.input, describe: 'Ship an installed Debian package (from the root\'s dpkg database) without its documentation; its programs bring their libraries (repeatable)' },
  'no-runtime': { type: 'boolean', group: GROUP.input, describe: 'Do not add the program\'s runtime found in the package database (same-source packages, directories it names)' },
  'no-helpers': { type: 'boolean', group: GROUP.input, describe: 'Do not add the programs it runs by name through PATH that its package ships or declares (tar: xz); --no-runtime turns this off too' },
  trace: { type: 'string', group: GROUP.input, describe: "Run this command once HERE under strace and add every file of the root it opens or executes (for dlopen by computed names); it is executed" },
  'no-rules': { type: 'boolean', group: GROUP.input, describe: 'Do not add the libraries glibc loads at run time (libgcc_s for pthread_cancel)' },

  output: { alias: 'o', type: 'string', array: true, nargs: 1, group: GROUP.output, describe: `Where to write: ${localForms} (repeatable)` },
  push: { type: 'string', array: true, nargs: 1, group: GROUP.output, describe: 'Push to this registry reference, REF or docker://REF (repeatable); prints REF@DIGEST' },
  tag: { type: 'string', array: true, nargs: 1, group: GROUP.output, describe: 'More tags for --push, in the same repository' },
  format: { type: 'string', choices: ['oci', 'docker'], group: GROUP.output, describe: 'Media types: oci (default) or docker (schema 2)' },
  layers: { type: 'number', group: GROUP.output, describe: '1 for a single layer; default 3 (loader and libc, libraries, application)' },
  compression: { type: 'string', choices: ['gzip', 'zstd'], group: GROUP.output, describe: 'Layer compression: gzip (default) or zstd (OCI tar+zstd; readers need zstd support)' },
  'compression-level': { type: 'number', group: GROUP.output, describe: 'gzip level, 1 (fastest) to 9 (smallest), default 4; zstd level 1 to 19, default 3' },
  annotation: { type: 'string', array: true, nargs: 1, group: GROUP.output, describe: 'KEY=VALUE manifest annotation (repeatable)' },
  json: { type: 'boolean', group: GROUP.output, describe: 'Print the JSON result (the same shape for build, push, pull, inspect) instead of the digest' },
  'image-refs': { type: 'string', group: GROUP.output, describe: 'Write each pushed REGISTRY/REPO@DIGEST (then each -o location) to this file, one per line, as ko and crane do' },
  'metadata-file': { type: 'string', group: GROUP.output, describe: "Write buildx's metadata JSON (containerimage.digest, containerimage.descriptor, image.name) to this file" },
  iidfile: { type: 'string', group: GROUP.output, describe: 'Write the image (manifest) digest to this file' },
  'no-cache': { type: 'boolean', group: GROUP.output, describe: 'Do not use the layer cache ($OCISLIM_CACHE, default ~/.cache/ocislim)' },
  sbom: { type: 'string', group: GROUP.output, describe: 'Write an SBOM of the image to FILE, and attach it to the pushed image and to oci: layouts (OCI 1.1 referrer)' },
  'sbom-format': { type: 'string', choices: ['spdx', 'cyclonedx'], group: GROUP.output, describe: 'SBOM format: spdx (SPDX 2.3 JSON, default) or cyclonedx (CycloneDX 1.6 JSON)' },
  'no-sbom': { type: 'boolean', group: GROUP.output, describe: 'Leave the package records (/var/lib/dpkg/status.d) out of the image' },

  entrypoint: { type: 'string', group: GROUP.runtime, describe: 'Entrypoint: JSON array or words (default: the first executable given)' },
  cmd: { type: 'string', group: GROUP.runtime, describe: 'Cmd: JSON array or words' },
  env: { type: 'string', array: true, nargs: 1, group: GROUP.runtime, describe: 'KEY=VALUE (repeatable)' },
  expose: { type: 'string', array: true, nargs: 1, group: GROUP.runtime, describe: 'PORT[/tcp|/udp] (repeatable)' },
  workdir: { type: 'string', group: GROUP.runtime, describe: 'Working directory' },
  user: { type: 'string', group: GROUP.runtime, describe: 'USER[:GROUP]' },
  label: { type: 'string', array: true, nargs: 1, group: GROUP.runtime, describe: 'KEY=VALUE config label (repeatable)' },
  'stop-signal': { type: 'string', group: GROUP.runtime, describe: 'Signal that stops the container' },
  volume: { type: 'string', array: true, nargs: 1, group: GROUP.runtime, describe: 'Volume mount point (repeatable)' },
  // (its value is optional, bare means all: yargs cannot say "zero or one", so it stays a list of the words after it)
  'no-scaffold': { type: 'string', array: true, group: GROUP.runtime, describe: 'Leave out scaffolding: all, or passwd, tmp, certs, tz, locale' },
  scaffold: { type: 'string', array: true, nargs: 1, group: GROUP.runtime, describe: 'Add scaffolding even when the program shows no need: passwd, certs, tz' },
  tz: { type: 'string', array: true, nargs: 1, group: GROUP.runtime, describe: 'Time zones to ship (default UTC when the program uses them; "all")' },

  'no-verify': { type: 'boolean', group: GROUP.check, describe: 'Skip the check that the image can run (interpreter, libraries, symlinks, entrypoint)' },
  'max-size': { type: 'string', group: GROUP.check, describe: 'Fail when the files add up to more than this (e.g. 20M)' },
  explain: { type: 'boolean', group: GROUP.check, describe: 'Show each file, who pulled it in and its size, with totals per cause' },
} as const satisfies Schema;

export type RegistryArgs = ArgsOf<typeof registryOptions>;
export type BuildArgs = ArgsOf<typeof buildOptions> & RegistryArgs & { files: string[] };

export const pushOptions = {
  tag: { type: 'string', array: true, nargs: 1, group: GROUP.output, describe: 'More tags in the same repository' },
  platform: { type: 'string', group: GROUP.input, describe: 'os/arch[/variant] to push from a multi-platform image (default: all of it, as its index)' },
  json: buildOptions.json,
  'image-refs': buildOptions['image-refs'],
  'metadata-file': buildOptions['metadata-file'],
  iidfile: buildOptions.iidfile,
} as const satisfies Schema;
export type PushArgs = ArgsOf<typeof pushOptions> & RegistryArgs & { source: string; target: string };

export const pullOptions = {
  output: { alias: 'o', type: 'string', array: true, nargs: 1, demandOption: true, group: GROUP.output, describe: `Where to write: ${localForms} (repeatable)` },
  platform: { type: 'string', group: GROUP.input, describe: 'os/arch[/variant] to pick from a multi-platform image, or "all" for the whole index' },
  json: buildOptions.json,
  'image-refs': buildOptions['image-refs'],
  'metadata-file': buildOptions['metadata-file'],
  iidfile: buildOptions.iidfile,
} as const satisfies Schema;
export type PullArgs = ArgsOf<typeof pullOptions> & RegistryArgs & { source: string };

export const indexOptions = {
  tag: { type: 'string', array: true, nargs: 1, group: GROUP.output, describe: 'More tags for the index, in the same repository' },
  format: { type: 'string', choices: ['oci', 'docker'], group: GROUP.output, describe: 'OCI image index or Docker manifest list (default: what an appended index is; for a new one, docker when every image is Docker schema 2)' },
  json: buildOptions.json,
  'image-refs': buildOptions['image-refs'],
  'metadata-file': buildOptions['metadata-file'],
  iidfile: buildOptions.iidfile,
} as const satisfies Schema;
export type IndexArgs = ArgsOf<typeof indexOptions> & RegistryArgs & { action: string; target: string; sources: string[] };

export const inspectOptions = {
  files: { type: 'boolean', group: GROUP.output, describe: 'List every file of every layer with its size' },
  explain: { type: 'boolean', group: GROUP.output, describe: "Unpack the image and attribute its files to the entrypoint's libraries" },
  packages: { type: 'boolean', group: GROUP.output, describe: 'With --json, add the Debian packages the image declares (the text output always lists them)' },
  platform: { type: 'string', group: GROUP.input, describe: 'os/arch[/variant]: show that image of a multi-platform image (which otherwise lists its platforms)' },
  json: { type: 'boolean', group: GROUP.output, describe: 'Print JSON' },
} as const satisfies Schema;
export type InspectArgs = ArgsOf<typeof inspectOptions> & { image: string };

export const cacheOptions = {
  'max-size': { type: 'string', group: GROUP.output, describe: 'prune: keep the most recently used entries up to this size (e.g. 500M)' },
} as const satisfies Schema;
export type CacheArgs = ArgsOf<typeof cacheOptions> & { action: 'info' | 'prune' };

export const sbomOptions = {
  format: { type: 'string', choices: ['spdx', 'cyclonedx'], group: GROUP.output, describe: 'Format of a document built from the image (an attached one is printed as it is, in its own format)' },
  platform: { type: 'string', group: GROUP.input, describe: 'os/arch[/variant] to pick from a multi-platform image' },
} as const satisfies Schema;
export type SbomArgs = ArgsOf<typeof sbomOptions> & RegistryArgs & { image: string };

export const lddOptions = {
  root: { type: 'string', default: '/', group: GROUP.input, describe: 'Resolve inside this root filesystem (a sysroot)' },
  'library-path': { type: 'string', array: true, nargs: 1, group: GROUP.input, describe: 'Directories searched like LD_LIBRARY_PATH (colon-separated allowed)' },
  json: { type: 'boolean', group: GROUP.output, describe: 'Print the structured result as JSON' },
  tree: { type: 'boolean', group: GROUP.output, describe: 'Print who needs what, as a tree' },
} as const satisfies Schema;

/** A positional argument, as yargs' `positional` takes it; `array`: the rest of the words (`[files..]`, `<sources..>`). */
export interface Positional {
  name: string;
  type: 'string';
  array?: boolean;
  demandOption?: boolean;
  choices?: readonly string[];
  describe: string;
}

/** A command's flags (its own and the registry's) and positional arguments, in order. */
export interface CommandShape {
  options: Schema;
  positionals: readonly Positional[];
}

/** Every command's shape: main.ts gives these to yargs, and plain-args.ts reads plain command lines with them. */
export const commandShapes = {
  ldd: {
    options: lddOptions,
    positionals: [{ name: 'files', type: 'string', array: true, demandOption: true, describe: 'ELF programs or libraries (paths inside --root when it is given)' }],
  },
  build: {
    options: { ...buildOptions, ...registryOptions },
    positionals: [
      {
        name: 'files',
        type: 'string',
        array: true,
        describe: 'Programs (each brings its libraries), files and directories: an absolute path lands at that path, a relative one under / (./app -> /app), SRC:DEST at DEST; with -f, the build context directory',
      },
    ],
  },
  inspect: { options: inspectOptions, positionals: [{ name: 'image', type: 'string', demandOption: true, describe: 'oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE' }] },
  sbom: {
    options: { ...sbomOptions, ...registryOptions },
    positionals: [{ name: 'image', type: 'string', demandOption: true, describe: 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or a registry REF' }],
  },
  push: {
    options: { ...pushOptions, ...registryOptions },
    positionals: [
      { name: 'source', type: 'string', demandOption: true, describe: 'The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, or a registry REF' },
      { name: 'target', type: 'string', demandOption: true, describe: 'Registry reference to push to (REF or docker://REF)' },
    ],
  },
  pull: {
    options: { ...pullOptions, ...registryOptions },
    positionals: [{ name: 'source', type: 'string', demandOption: true, describe: 'Registry reference (REF or docker://REF), or a local image' }],
  },
  index: {
    options: { ...indexOptions, ...registryOptions },
    positionals: [
      { name: 'action', type: 'string', choices: ['create', 'append'], demandOption: true, describe: 'create or append' },
      { name: 'target', type: 'string', demandOption: true, describe: 'Where the index goes: a registry REF, oci:DIR[:TAG] or oci-archive:FILE[:TAG]' },
      { name: 'sources', type: 'string', array: true, demandOption: true, describe: 'Images (or indexes, for all their images): registry REFs, oci:, oci-archive:, docker-archive:' },
    ],
  },
  login: { options: registryOptions, positionals: [{ name: 'registry', type: 'string', demandOption: true, describe: 'Registry host[:port]' }] },
  cache: { options: cacheOptions, positionals: [{ name: 'action', type: 'string', choices: ['info', 'prune'], demandOption: true, describe: 'info or prune' }] },
} as const satisfies Record<string, CommandShape>;
