import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { ElfError } from '../elf/errors.js';
import { UserError } from './errors.js';
// Command modules load on demand: undici, tar-stream and the builder cost start-up time that --help and ldd need not pay.
import type { Argv } from 'yargs';

function registryOptions<T>(y: Argv<T>) {
  return y
    .option('insecure', { type: 'boolean', describe: 'Allow plain http to a registry that is not on loopback' })
    .option('ca-file', { type: 'string', describe: 'PEM file of extra CA certificates for TLS registries' })
    .option('username', { alias: 'u', type: 'string', describe: 'Registry user name (with --password-stdin)' })
    .option('password-stdin', { type: 'boolean', describe: 'Read the registry password from standard input' });
}


const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

/**
 * The command yargs picked. Handlers only pick: the command runs once parsing is over, because right after a handler
 * returns, yargs renders and caches the whole help text (50–80 ms of string-width work for build's options).
 */
class Picked {
  constructor(readonly run: () => Promise<number>) {}
}
const pick = (run: () => Promise<number>): never => {
  throw new Picked(run);
};

function report(e: unknown, debug: boolean): number {
  if (e instanceof UserError || e instanceof ElfError) {
    err(`ocislim: ${e.message}`);
    if (debug) err(e.stack ?? '');
    return e instanceof UserError ? e.exitCode : 1;
  }
  err(`ocislim: ${(e as Error)?.message ?? e}`);
  if (debug) err((e as Error)?.stack ?? '');
  return 1;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Resolves once every write queued on the stream so far has reached the OS (or the stream failed: a reader gone). */
function flushed(s: NodeJS.WriteStream): Promise<void> {
  if (s.destroyed || !s.writable) return Promise.resolve();
  // Write callbacks run in order, so the callback of an empty write runs after every earlier write completed.
  return new Promise((resolve) => s.write('', () => resolve()));
}

/**
 * Exits with `code` as soon as stdout and stderr are flushed. process.exit() alone drops writes still queued for a
 * pipe (they are asynchronous once the pipe's 64 KiB buffer is full, whatever the reader's speed); waiting for the
 * event loop to drain instead would also wait for a registry's keep-alive socket to close (150-200 ms).
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  process.exitCode = code;
  exitOnClosedPipe();
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/**
 * A reader that goes away (`ocislim ldd ... | head`) makes the next write fail with EPIPE. Like a C program killed by
 * SIGPIPE, stop quietly with status 141 instead of an unhandled 'error' event and its stack trace.
 */
function exitOnClosedPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    if (s.listenerCount('error') > 0) continue;
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(141);
      throw e;
    });
  }
}

/** Runs the CLI and returns the exit code. Errors print one line; --debug adds the stack. */
export async function run(argv: string[]): Promise<number> {
  exitOnClosedPipe();
  const debug = argv.includes('--debug');
  let picked: Picked | null = null;
  try {
    await yargs(argv)
      .scriptName('ocislim')
      .parserConfiguration({ 'boolean-negation': false })
      .usage('$0 <command> [options]\n\nBuild minimal OCI images from native binaries, without a Docker daemon.')
      .option('debug', { type: 'boolean', describe: 'Print stack traces on errors' })
      .command(
        'ldd <files..>',
        'Print the shared libraries a program needs, computed statically (nothing is executed)',
        (y) =>
          y
            .positional('files', { type: 'string', array: true, demandOption: true, describe: 'ELF files' })
            .option('root', { type: 'string', default: '/', describe: 'Resolve inside this root filesystem (a sysroot)' })
            .option('library-path', { type: 'string', array: true, describe: 'Directories searched like LD_LIBRARY_PATH (colon-separated allowed)' })
            .option('json', { type: 'boolean', describe: 'Print the structured result as JSON' })
            .option('tree', { type: 'boolean', describe: 'Print who needs what, as a tree' }),
        (a) =>
          pick(async () => {
          const { lddCommand } = await import('./ldd.js');
          return lddCommand(
            { files: a.files as string[], root: a.root, libraryPath: a['library-path']?.flatMap((x) => x.split(':')), json: a.json, tree: a.tree },
            out,
            err,
          );
        }),
      )
      .command(
        'build [files..]',
        'Build an image from native binaries (with their libraries), files and directories',
        (y) =>
          registryOptions(y)
            .positional('files', { type: 'string', array: true, describe: 'Executables, files and directories to put in the image at the same paths' })
            .option('output', { alias: 'o', type: 'string', array: true, describe: 'Where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] (repeatable)' })
            .option('add', { type: 'string', array: true, describe: 'SRC:DEST, like Dockerfile ADD: a local tar (gz, bz2, xz) is unpacked into DEST' })
            .option('copy', { type: 'string', array: true, describe: 'SRC:DEST, like Dockerfile COPY' })
            .option('entrypoint', { type: 'string', describe: 'Entrypoint: JSON array or words (default: the first executable given)' })
            .option('cmd', { type: 'string', describe: 'Cmd: JSON array or words' })
            .option('env', { type: 'string', array: true, describe: 'KEY=VALUE (repeatable)' })
            .option('expose', { type: 'string', array: true, describe: 'PORT[/tcp|/udp] (repeatable)' })
            .option('workdir', { type: 'string', describe: 'Working directory' })
            .option('user', { type: 'string', describe: 'USER[:GROUP]' })
            .option('label', { type: 'string', array: true, describe: 'KEY=VALUE config label (repeatable)' })
            .option('annotation', { type: 'string', array: true, describe: 'KEY=VALUE manifest annotation (repeatable)' })
            .option('stop-signal', { type: 'string', describe: 'Signal that stops the container' })
            .option('volume', { type: 'string', array: true, describe: 'Volume mount point (repeatable)' })
            .option('layers', { type: 'number', describe: '1 for a single layer; default 3 (loader and libc, libraries, application)' })
            .option('format', { type: 'string', choices: ['oci', 'docker'], describe: 'Media types: oci (default) or docker (schema 2)' })
            .option('platform', { type: 'string', describe: 'Expected os/arch[/variant]; checked against the ELF files' })
            .option('root', { type: 'string', default: '/', describe: 'Root filesystem to take files and libraries from' })
            .option('file', { alias: 'f', type: 'string', describe: 'Build from this Dockerfile (the positional argument is then the context directory)' })
            .option('build-arg', { type: 'string', array: true, describe: 'KEY=VALUE for an ARG of the Dockerfile (repeatable)' })
            .option('from', { type: 'string', describe: 'Base image: registry REF, oci:DIR[:TAG] or oci-archive:FILE[:TAG] (default: scratch)' })
            .option('push', { type: 'string', array: true, describe: 'Push to this registry reference (repeatable); prints REF@DIGEST' })
            .option('tag', { type: 'string', array: true, describe: 'More tags for --push, in the same repository' })
            .option('no-scaffold', { type: 'string', array: true, describe: 'Leave out scaffolding: all, or passwd, tmp, certs, tz, locale' })
            .option('scaffold', { type: 'string', array: true, describe: 'Add scaffolding even when the program shows no need: passwd, certs, tz' })
            .option('tz', { type: 'string', array: true, describe: 'Time zones to ship (default UTC when the program uses them; "all")' })
            .option('with-lib', { type: 'string', array: true, describe: 'Add a library (name or path) with its closure, e.g. one the program dlopens' })
            .option('max-size', { type: 'string', describe: 'Fail when the files add up to more than this (e.g. 20M)' })
            .option('no-verify', { type: 'boolean', describe: 'Skip the check that the image can run (interpreter, libraries, symlinks, entrypoint)' })
            .option('with-gconv', { type: 'string', array: true, describe: 'gconv modules for iconv (ISO8859-1, EUC-JP, ... or all)' })
            .option('with-idn', { type: 'boolean', describe: 'Add the library glibc loads for international host names (getaddrinfo AI_IDN)' })
            .option('no-rules', { type: 'boolean', describe: 'Do not add the libraries glibc loads at run time (libgcc_s for pthread_cancel)' })
            .option('explain', { type: 'boolean', describe: 'Show each file, who pulled it in and its size, with totals per cause' })
            .option('compression-level', { type: 'number', describe: 'gzip level, 1 (fastest) to 9 (smallest); default 6' })
            .option('json', { type: 'boolean', describe: 'Print a JSON result instead of the digest' }),
        (a) =>
          pick(async () => {
          const { buildCommand } = await import('./build.js');
          return buildCommand(
            {
              files: (a.files as string[] | undefined) ?? [],
              output: a.output,
              add: a.add,
              copy: a.copy,
              entrypoint: a.entrypoint,
              cmd: a.cmd,
              env: a.env,
              expose: a.expose?.map(String),
              workdir: a.workdir,
              user: a.user,
              label: a.label,
              annotation: a.annotation,
              stopSignal: a['stop-signal'],
              volume: a.volume,
              layers: a.layers,
              format: a.format,
              platform: a.platform,
              root: a.root,
              json: a.json,
              compressionLevel: a['compression-level'],
              from: a.from,
              file: a.file,
              noScaffold: a['no-scaffold'],
              scaffold: a.scaffold,
              tz: a.tz,
              withLib: a['with-lib'],
              maxSize: a['max-size'],
              explain: a.explain,
              noRules: a['no-rules'],
              noVerify: a['no-verify'],
              withGconv: a['with-gconv'],
              withIdn: a['with-idn'],
              buildArg: a['build-arg'],
              push: a.push,
              tag: a.tag,
              insecure: a.insecure,
              caFile: a['ca-file'],
              username: a.username,
              passwordStdin: a['password-stdin'],
            },
            out,
            err,
          );
        }),
      )
      .command(
        'inspect <image>',
        'Show an image: platform, config, layers; --files lists every file',
        (y) =>
          y
            .positional('image', { type: 'string', demandOption: true, describe: 'oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE' })
            .option('files', { type: 'boolean', describe: 'List every file of every layer with its size' })
            .option('explain', { type: 'boolean', describe: 'Unpack the image and attribute its files to the entrypoint\'s libraries' })
            .option('json', { type: 'boolean', describe: 'Print JSON' }),
        (a) =>
          pick(async () => {
          const { inspectCommand } = await import('./inspect.js');
          return inspectCommand({ image: a.image as string, files: a.files, json: a.json, explain: a.explain }, out);
        }),
      )
      .command(
        'push <source> <target>',
        'Push an image built earlier (oci:DIR, oci-archive:FILE, docker-archive:FILE or a registry REF) to a registry',
        (y) =>
          registryOptions(y)
            .positional('source', { type: 'string', demandOption: true })
            .positional('target', { type: 'string', demandOption: true })
            .option('tag', { type: 'string', array: true, describe: 'More tags in the same repository' }),
        (a) =>
          pick(async () => {
          const { pushCommand } = await import('./push.js');
          return pushCommand(
            { source: a.source as string, target: a.target as string, tag: a.tag, insecure: a.insecure, caFile: a['ca-file'], username: a.username, passwordStdin: a['password-stdin'] },
            out,
            err,
          );
        }),
      )
      .command(
        'pull <source>',
        'Copy an image from a registry (or another local location) to a local layout or archive',
        (y) =>
          registryOptions(y)
            .positional('source', { type: 'string', demandOption: true })
            .option('output', { alias: 'o', type: 'string', array: true, describe: 'oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]' })
            .option('platform', { type: 'string', describe: 'os/arch[/variant] to pick from a multi-platform image' }),
        (a) =>
          pick(async () => {
          const { pullCommand } = await import('./pull.js');
          return pullCommand(
            { source: a.source as string, output: a.output ?? [], platform: a.platform, insecure: a.insecure, caFile: a['ca-file'], username: a.username, passwordStdin: a['password-stdin'] },
            out,
            err,
          );
        }),
      )
      .command(
        'login <registry>',
        'Check credentials and store them in ~/.docker/config.json (or the configured credential helper)',
        (y) => registryOptions(y).positional('registry', { type: 'string', demandOption: true }),
        (a) =>
          pick(async () => {
          const { loginCommand } = await import('./login.js');
          return loginCommand(a.registry as string, { insecure: a.insecure, caFile: a['ca-file'], username: a.username, passwordStdin: a['password-stdin'] }, err);
        }),
      )
      .demandCommand(1, 'Name a command; see --help.')
      .strict()
      .version(VERSION)
      .help()
      .fail((msg, e) => {
        if (e) throw e;
        throw new UserError(msg, 2);
      })
      .parseAsync();
  } catch (e) {
    if (!(e instanceof Picked)) return report(e, debug);
    picked = e;
  }
  if (!picked) return 0; // --help, --version
  try {
    return await picked.run();
  } catch (e) {
    return report(e, debug);
  }
}
