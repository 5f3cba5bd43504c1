import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { UsageError } from './errors.js';
import { exitOnClosedPipe, removeTempsOnStop, report } from './exit.js';
export { exitWhenFlushed } from './exit.js';
export { trustDeferredExtraCa } from '../registry/extra-ca.js';
// Command modules load on demand: undici, tar-stream and the builder cost start-up time that --help and ldd need not pay.
import { cliLog } from './log.js';
import { buildOptions, indexOptions, cacheOptions, inspectOptions, lddOptions, pullOptions, pushOptions, registryOptions, sbomOptions } from './options.js';

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

/** The one sink for every layer's notes, warnings and progress, on stderr. */
const logFor = (a: { quiet?: boolean }) => cliLog(process.stderr, { quiet: a.quiet, tty: process.stderr.isTTY });

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * yargs reads a variadic positional twice, the second time as "--files F" pairs through its whole option machinery:
 * 16 ms of CPU for the 700 programs of /usr/bin. So for `ldd` with several files, the files after the first are taken
 * out of what yargs parses and handed to the command as typed: only when every option word is one of ldd's own (or
 * --debug, --quiet, -q) in a plain form whose arity is known, so that what yargs parses means the same. Anything
 * else (--help, "--", an unknown or abbreviated option, a value that looks like an option) is left to yargs whole.
 */
function lddManyFiles(argv: string[]): { argv: string[]; files: string[] } | null {
  if (argv[0] !== 'ldd') return null;
  const arity = new Map<string, 'flag' | 'one' | 'many'>([
    ['--debug', 'flag'],
    ['--quiet', 'flag'],
    ['-q', 'flag'],
  ]);
  for (const [name, o] of Object.entries(lddOptions) as [string, { type: string; array?: boolean }][]) arity.set(`--${name}`, o.type === 'boolean' ? 'flag' : o.array ? 'many' : 'one');
  const kept = ['ldd'];
  const files: string[] = [];
  const value = (t: string | undefined) => t !== undefined && !t.startsWith('-');
  for (let i = 1; i < argv.length; i++) {
    const t = argv[i];
    if (!t.startsWith('-')) {
      if (files.push(t) === 1) kept.push(t);
      continue;
    }
    const eq = t.startsWith('--') ? t.indexOf('=') : -1;
    const n = arity.get(eq > 0 ? t.slice(0, eq) : t);
    if (n === undefined) return null;
    kept.push(t);
    if (eq > 0) continue;
    // As yargs-parser takes values: a boolean only "true" or "false", a string the next word, an array every next word.
    if (n === 'flag') {
      if (argv[i + 1] === 'true' || argv[i + 1] === 'false') kept.push(argv[++i]);
    } else if (n === 'one') {
      if (value(argv[i + 1])) kept.push(argv[++i]);
    } else {
      while (value(argv[i + 1])) kept.push(argv[++i]);
    }
  }
  return files.length > 1 ? { argv: kept, files } : null;
}

/** Each command's options (what onceOnly checks). */
const commandOptions: Record<string, Record<string, { type?: string; array?: boolean; alias?: string | readonly string[] }>> = {
  ldd: lddOptions,
  build: { ...buildOptions, ...registryOptions },
  inspect: inspectOptions,
  sbom: { ...sbomOptions, ...registryOptions },
  push: { ...pushOptions, ...registryOptions },
  pull: { ...pullOptions, ...registryOptions },
  index: { ...indexOptions, ...registryOptions },
  login: registryOptions,
  cache: cacheOptions,
};

/**
 * A flag that takes one value must be given once. yargs collects a repeated one into a list, which the commands then
 * read as one odd value ("--workdir /a --workdir /b" failed with a TypeError), or, for a number, adds a repeated 1 to
 * it ("--compression-level 3 --compression-level 1" built at level 4, silently): so repeats are counted here, in the
 * words as typed, before yargs. build's --root is repeatable (one per platform: targets.ts); flags that are lists
 * and switches are not counted.
 */
function onceOnly(argv: string[]): void {
  const schema = commandOptions[argv[0]];
  if (!schema) return;
  const names = new Map<string, string>();
  for (const [k, o] of Object.entries(schema)) {
    names.set(`--${k}`, k);
    for (const a of ([] as string[]).concat(o.alias ?? [])) names.set(a.length === 1 ? `-${a}` : `--${a}`, k);
  }
  const given = new Map<string, string[]>();
  for (let i = 1; i < argv.length; i++) {
    const t = argv[i];
    if (t === '--') break;
    if (t.charCodeAt(0) !== 45) continue;
    const eq = t.startsWith('--') ? t.indexOf('=') : -1;
    const key = names.get(eq > 0 ? t.slice(0, eq) : t);
    if (key === undefined) continue;
    const o = schema[key];
    if (o.type === 'boolean') continue;
    const value = eq > 0 ? t.slice(eq + 1) : (argv[++i] ?? '');
    if (o.array || (argv[0] === 'build' && key === 'root')) continue;
    const list = given.get(key);
    if (list) list.push(value);
    else given.set(key, [value]);
  }
  for (const [k, values] of given) if (values.length > 1) throw new UsageError(`--${k} is given ${values.length} times (${values.join(', ')}); it takes one value`);
}

/** Runs the CLI and returns the exit code. Errors print one line; --debug adds the stack. */
export async function run(argv: string[]): Promise<number> {
  exitOnClosedPipe();
  removeTempsOnStop();
  const debug = argv.includes('--debug');
  const many = lddManyFiles(argv);
  let picked: Picked | null = null;
  try {
    onceOnly(argv);
    await yargs(many?.argv ?? argv)
      .scriptName('ocislim')
      .parserConfiguration({ 'boolean-negation': false })
      .usage('$0 <command> [options]\n\nBuild minimal OCI images from native binaries, without a Docker daemon.')
      .option('debug', { type: 'boolean', describe: 'Print stack traces on errors' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'No notes or progress on stderr (warnings and errors still show)' })
      .command(
        'ldd <files..>',
        'Print the shared libraries a program needs, computed statically (nothing is executed)',
        (y) =>
          y
            .positional('files', { type: 'string', array: true, demandOption: true, describe: 'ELF programs or libraries (paths inside --root when it is given)' })
            .options(lddOptions)
            .example('$0 ldd /usr/bin/redis-server', 'like ldd, without running the loader')
            .example('$0 ldd --tree /usr/bin/curl', 'who needs what')
            .example('$0 ldd --root ./arm64-sysroot /usr/bin/openssl', 'inside a sysroot of another architecture'),
        (a) =>
          pick(async () => {
            const { lddCommand } = await import('./ldd.js');
            return lddCommand({ files: many?.files ?? (a.files as string[]), root: a.root, libraryPath: a.libraryPath?.flatMap((x) => x.split(':')), json: a.json, tree: a.tree }, out, err);
          }),
      )
      .command(
        'build [files..]',
        'Build an image from native binaries (with their libraries), files and directories',
        (y) =>
          y
            .positional('files', {
              type: 'string',
              array: true,
              describe: 'Programs (each brings its libraries), files and directories: an absolute path lands at that path, a relative one under / (./app -> /app), SRC:DEST at DEST; with -f, the build context directory',
            })
            .options(buildOptions)
            .options(registryOptions)
            .example('$0 build /usr/bin/redis-server --expose 6379 -o oci:redis', 'to an OCI layout (prints the digest)')
            .example('$0 build /usr/bin/redis-server --push registry.example.com/redis:slim', 'to a registry (prints REF@DIGEST)')
            .example('$0 build -f Dockerfile . -o oci-archive:app.tar', 'a Dockerfile (no RUN), without Docker')
            .example('$0 build ./app --from debian:12-slim --push registry.example.com/app:1', 'on top of a base image')
            .example('$0 build /usr/bin/redis-server --root linux/amd64=/ --root linux/arm64=./sysroot-arm64 --push registry.example.com/redis:1', 'one tag for two platforms (an index)'),
        (a) =>
          pick(async () => {
            const { buildCommand } = await import('./build.js');
            return buildCommand({ ...a, files: (a.files as string[] | undefined) ?? [] }, out, logFor(a), err);
          }),
      )
      .command(
        'inspect <image>',
        'Show an image: platform, config, layers; --files lists every file',
        (y) =>
          y
            .positional('image', { type: 'string', demandOption: true, describe: 'oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE' })
            .options(inspectOptions)
            .example('$0 inspect oci:redis', 'platform, config and layers')
            .example('$0 inspect --files --json oci-archive:redis.tar', 'every file, as JSON'),
        (a) =>
          pick(async () => {
            const { inspectCommand } = await import('./inspect.js');
            return inspectCommand({ ...a, image: a.image as string }, out);
          }),
      )
      .command(
        'sbom <image>',
        'Print the SBOM of an image: the attached one (OCI referrer), else one built from its package records',
        (y) =>
          y
            .positional('image', { type: 'string', demandOption: true, describe: 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or a registry REF' })
            .options(sbomOptions)
            .options(registryOptions)
            .example('$0 sbom oci:redis', 'the SBOM attached by build --sbom, or one from /var/lib/dpkg/status.d')
            .example('$0 sbom registry.example.com/redis:slim --format cyclonedx', 'from a registry (referrers API or sha256-<hex> tag)'),
        (a) =>
          pick(async () => {
            const { sbomCommand } = await import('./sbom.js');
            return sbomCommand({ ...a, image: a.image as string }, out, logFor(a));
          }),
      )
      .command(
        'push <source> <target>',
        'Push an image built earlier (oci:DIR, oci-archive:FILE, docker-archive:FILE or a registry REF) to a registry',
        (y) =>
          y
            .positional('source', { type: 'string', demandOption: true, describe: 'The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, or a registry REF' })
            .positional('target', { type: 'string', demandOption: true, describe: 'Registry reference to push to (REF or docker://REF)' })
            .options(pushOptions)
            .options(registryOptions)
            .example('$0 push oci-archive:redis.tar registry.internal/redis:slim', 'prints REF@DIGEST')
            .example('$0 push oci:redis registry.example.com/redis:1 --tag latest', 'two tags, one upload'),
        (a) =>
          pick(async () => {
            const { pushCommand } = await import('./push.js');
            return pushCommand({ ...a, source: a.source as string, target: a.target as string }, out, logFor(a));
          }),
      )
      .command(
        'pull <source>',
        'Copy an image from a registry (or another local location) to a local layout or archive',
        (y) =>
          y
            .positional('source', { type: 'string', demandOption: true, describe: 'Registry reference (REF or docker://REF), or a local image' })
            .options(pullOptions)
            .options(registryOptions)
            .example('$0 pull debian:12-slim -o oci:debian', 'to an OCI layout')
            .example('$0 pull docker://registry.example.com/app:1 --platform linux/arm64 -o oci-archive:app.tar', 'one platform of a multi-platform image'),
        (a) =>
          pick(async () => {
            const { pullCommand } = await import('./pull.js');
            return pullCommand({ ...a, source: a.source as string }, out, logFor(a));
          }),
      )
      .command(
        'index <action> <target> <sources..>',
        'Put images built or pushed earlier into one multi-platform index: "create" a new one, or "append" to the one at TARGET',
        (y) =>
          y
            .positional('action', { type: 'string', choices: ['create', 'append'], demandOption: true, describe: 'create or append' })
            .positional('target', { type: 'string', demandOption: true, describe: 'Where the index goes: a registry REF, oci:DIR[:TAG] or oci-archive:FILE[:TAG]' })
            .positional('sources', { type: 'string', array: true, demandOption: true, describe: 'Images (or indexes, for all their images): registry REFs, oci:, oci-archive:, docker-archive:' })
            .options(indexOptions)
            .options(registryOptions)
            .example('$0 index create registry.example.com/app:1 registry.example.com/app:1-amd64 registry.example.com/app:1-arm64', 'one tag for two platforms')
            .example('$0 index append registry.example.com/app:1 oci-archive:app-s390x.tar', 'add a platform'),
        (a) =>
          pick(async () => {
            const { indexCommand } = await import('./index-command.js');
            return indexCommand({ ...a, action: a.action as string, target: a.target as string, sources: (a.sources as string[] | undefined) ?? [] }, out, logFor(a));
          }),
      )
      .command(
        'login <registry>',
        'Check credentials and store them in ~/.docker/config.json (or the configured credential helper)',
        (y) =>
          y
            .positional('registry', { type: 'string', demandOption: true, describe: 'Registry host[:port]' })
            .options(registryOptions)
            .example('echo "$TOKEN" | $0 login registry.example.com -u ci --password-stdin', 'the password never appears on the command line'),
        (a) =>
          pick(async () => {
            const { loginCommand } = await import('./login.js');
            return loginCommand(a.registry as string, a, logFor(a));
          }),
      )
      .command(
        'cache <action>',
        'The layer cache: "info" shows where it is and its size, "prune" empties it (or trims it to --max-size)',
        (y) =>
          y
            .positional('action', { type: 'string', choices: ['info', 'prune'], demandOption: true, describe: 'info or prune' })
            .options(cacheOptions)
            .example('$0 cache prune --max-size 500M', 'keep the most recently used 500 MiB'),
        (a) =>
          pick(async () => {
            const { cacheCommand } = await import('./cache.js');
            return cacheCommand({ ...a, action: a.action as 'info' | 'prune' }, out);
          }),
      )
      .example('$0 build /usr/bin/redis-server --expose 6379 -o oci:redis', 'build an image to an OCI layout')
      .example('$0 inspect oci:redis', 'look at it')
      .example('$0 push oci:redis registry.example.com/redis:slim', 'push it')
      .example('$0 ldd /usr/bin/redis-server', 'the libraries a program needs')
      .demandCommand(1, 'Name a command; see --help.')
      .recommendCommands()
      // Checked for every command, whether or not it reaches a registry: a flag must never be silently ignored.
      .check((a) => {
        if (a['password-stdin'] && !a.username) throw new UsageError('--password-stdin needs --username (-u)');
        return true;
      })
      .strict()
      .version(VERSION)
      .help()
      .wrap(Math.min(120, process.stdout.columns || 100))
      .fail((msg, e) => {
        if (e) throw e;
        // recommendCommands says only "Did you mean build?": name what was typed.
        if (/^Did you mean/.test(msg)) throw new UsageError(`unknown command "${argv.find((x) => !x.startsWith('-'))}". ${msg.replace(/^Did/, 'did')}`);
        throw new UsageError(msg);
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
