import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { UsageError } from './errors.js';
import { exitOnClosedPipe, removeTempsOnStop, report } from './exit.js';
export { exitWhenFlushed } from './exit.js';
export { trustDeferredExtraCa } from '../registry/extra-ca.js';
// Command modules load on demand: undici, tar-stream and the builder cost start-up time that --help and ldd need not pay.
import { cliLog } from './log.js';
import type { BuildArgs, CacheArgs, IndexArgs, InspectArgs, PullArgs, PushArgs, RegistryArgs, SbomArgs } from './options.js';
import { commandShapes, globalOptions, lddOptions } from './options.js';
import { flagNames, ParsedArgs, plainArgs, yargsCamel } from './plain-args.js';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

type Command = keyof typeof commandShapes;

/**
 * The command yargs picked, with its arguments. Handlers only pick: the command runs once parsing is over, because
 * right after a handler returns, yargs renders and caches the whole help text (50–80 ms of string-width work for
 * build's options).
 */
class Picked {
  constructor(
    readonly command: Command,
    readonly args: ParsedArgs,
  ) {}
}
const pick =
  (command: Command) =>
  (args: ParsedArgs): never => {
    throw new Picked(command, args);
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

/**
 * A flag that takes one value must be given once. yargs collects a repeated one into a list, which the commands then
 * read as one odd value ("--workdir /a --workdir /b" failed with a TypeError), or, for a number, adds a repeated 1 to
 * it ("--compression-level 3 --compression-level 1" built at level 4, silently): so repeats are counted here, in the
 * words as typed, before yargs, under every name yargs takes for a flag (--compressionLevel too). build's --root is
 * repeatable (one per platform: targets.ts); flags that are lists and switches are not counted.
 */
function onceOnly(argv: string[]): void {
  if (!Object.hasOwn(commandShapes, argv[0])) return;
  const schema: Record<string, { type?: string; array?: boolean; alias?: string | readonly string[] }> = commandShapes[argv[0] as Command].options;
  const names = flagNames(schema);
  // yargs also takes a flag by its camelCase name (--compressionLevel, or --compression-Level, which it camel-cases)
  const camelNames = new Map(Object.keys(schema).map((k) => [yargsCamel(k), k]));
  const given = new Map<string, string[]>();
  for (let i = 1; i < argv.length; i++) {
    const t = argv[i];
    if (t === '--') break;
    if (t.charCodeAt(0) !== 45) continue;
    const eq = t.startsWith('--') ? t.indexOf('=') : -1;
    const flag = eq > 0 ? t.slice(0, eq) : t;
    const key = names.get(flag) ?? (flag.startsWith('--') && !flag.includes('_') ? camelNames.get(yargsCamel(flag.slice(2))) : undefined);
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

/** Checked for every command, whether or not it reaches a registry: a flag must never be silently ignored. */
function checkArgs(a: ParsedArgs): true {
  if (a['password-stdin'] && !a.username) throw new UsageError('--password-stdin needs --username (-u)');
  return true;
}

/** The command's positionals and options, as yargs takes them (commandShapes). */
function shaped(y: Argv, command: Command): Argv {
  for (const p of commandShapes[command].positionals) y = y.positional(p.name, p);
  return y.options(commandShapes[command].options);
}

/**
 * The command and arguments yargs reads from `argv`; null when it printed help or the version instead. A mistake in
 * the command line throws a UsageError.
 */
export async function yargsArgs(argv: string[]): Promise<Picked | null> {
  const { default: yargs } = await import('yargs');
  try {
    await yargs(argv)
      .scriptName('ocislim')
      .parserConfiguration({ 'boolean-negation': false })
      .usage('$0 <command> [options]\n\nBuild minimal OCI images from native binaries, without a Docker daemon.')
      .options(globalOptions)
      .command('ldd <files..>', 'Print the shared libraries a program needs, computed statically (nothing is executed)', (y) =>
        shaped(y, 'ldd')
          .example('$0 ldd /usr/bin/redis-server', 'like ldd, without running the loader')
          .example('$0 ldd --tree /usr/bin/curl', 'who needs what')
          .example('$0 ldd --root ./arm64-sysroot /usr/bin/openssl', 'inside a sysroot of another architecture'),
        pick('ldd'),
      )
      .command('build [files..]', 'Build an image from native binaries (with their libraries), files and directories', (y) =>
        shaped(y, 'build')
          .example('$0 build /usr/bin/redis-server --expose 6379 -o oci:redis', 'to an OCI layout (prints the digest)')
          .example('$0 build /usr/bin/redis-server --push registry.example.com/redis:slim', 'to a registry (prints REF@DIGEST)')
          .example('$0 build -f Dockerfile . -o oci-archive:app.tar', 'a Dockerfile (no RUN), without Docker')
          .example('$0 build ./app --from debian:12-slim --push registry.example.com/app:1', 'on top of a base image')
          .example('$0 build /usr/bin/redis-server --root linux/amd64=/ --root linux/arm64=./sysroot-arm64 --push registry.example.com/redis:1', 'one tag for two platforms (an index)'),
        pick('build'),
      )
      .command('inspect <image>', 'Show an image: platform, config, layers; --files lists every file', (y) =>
        shaped(y, 'inspect')
          .example('$0 inspect oci:redis', 'platform, config and layers')
          .example('$0 inspect --files --json oci-archive:redis.tar', 'every file, as JSON'),
        pick('inspect'),
      )
      .command('sbom <image>', 'Print the SBOM of an image: the attached one (OCI referrer), else one built from its package records', (y) =>
        shaped(y, 'sbom')
          .example('$0 sbom oci:redis', 'the SBOM attached by build --sbom, or one from /var/lib/dpkg/status.d')
          .example('$0 sbom registry.example.com/redis:slim --format cyclonedx', 'from a registry (referrers API or sha256-<hex> tag)'),
        pick('sbom'),
      )
      .command('push <source> <target>', 'Push an image built earlier (oci:DIR, oci-archive:FILE, docker-archive:FILE or a registry REF) to a registry', (y) =>
        shaped(y, 'push')
          .example('$0 push oci-archive:redis.tar registry.internal/redis:slim', 'prints REF@DIGEST')
          .example('$0 push oci:redis registry.example.com/redis:1 --tag latest', 'two tags, one upload'),
        pick('push'),
      )
      .command('pull <source>', 'Copy an image from a registry (or another local location) to a local layout or archive', (y) =>
        shaped(y, 'pull')
          .example('$0 pull debian:12-slim -o oci:debian', 'to an OCI layout')
          .example('$0 pull docker://registry.example.com/app:1 --platform linux/arm64 -o oci-archive:app.tar', 'one platform of a multi-platform image'),
        pick('pull'),
      )
      .command('index <action> <target> <sources..>', 'Put images built or pushed earlier into one multi-platform index: "create" a new one, or "append" to the one at TARGET', (y) =>
        shaped(y, 'index')
          .example('$0 index create registry.example.com/app:1 registry.example.com/app:1-amd64 registry.example.com/app:1-arm64', 'one tag for two platforms')
          .example('$0 index append registry.example.com/app:1 oci-archive:app-s390x.tar', 'add a platform'),
        pick('index'),
      )
      .command('login <registry>', 'Check credentials and store them in ~/.docker/config.json (or the configured credential helper)', (y) =>
        shaped(y, 'login').example('echo "$TOKEN" | $0 login registry.example.com -u ci --password-stdin', 'the password never appears on the command line'),
        pick('login'),
      )
      .command('cache <action>', 'The layer cache: "info" shows where it is and its size, "prune" empties it (or trims it to --max-size)', (y) =>
        shaped(y, 'cache').example('$0 cache prune --max-size 500M', 'keep the most recently used 500 MiB'),
        pick('cache'),
      )
      .example('$0 build /usr/bin/redis-server --expose 6379 -o oci:redis', 'build an image to an OCI layout')
      .example('$0 inspect oci:redis', 'look at it')
      .example('$0 push oci:redis registry.example.com/redis:slim', 'push it')
      .example('$0 ldd /usr/bin/redis-server', 'the libraries a program needs')
      .demandCommand(1, 'Name a command; see --help.')
      .recommendCommands()
      .check(checkArgs)
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
    if (e instanceof Picked) return e;
    throw e;
  }
  return null; // --help, --version
}

/** The command and arguments of a plain command line (plain-args.ts), checked as yargs checks them; null for any other line. */
export function plainCommand(argv: string[]): { command: Command; args: ParsedArgs } | null {
  const picked = plainArgs(argv, commandShapes) as { command: Command; args: ParsedArgs } | null;
  if (picked) checkArgs(picked.args);
  return picked;
}

/** Runs `command` with its arguments. `many`: ldd's files when lddManyFiles took them out of what yargs read. */
async function runCommand(command: Command, a: ParsedArgs, many: string[] | undefined): Promise<number> {
  switch (command) {
    case 'ldd': {
      const { lddCommand } = await import('./ldd.js');
      const l = a as { files: string[]; root: string; libraryPath?: string[]; json?: boolean; tree?: boolean };
      return lddCommand({ files: many ?? l.files, root: l.root, libraryPath: l.libraryPath?.flatMap((x) => x.split(':')), json: l.json, tree: l.tree }, out, err);
    }
    case 'build': {
      const { buildCommand } = await import('./build.js');
      return buildCommand({ ...(a as BuildArgs), files: (a.files as string[] | undefined) ?? [] }, out, logFor(a), err);
    }
    case 'inspect': {
      const { inspectCommand } = await import('./inspect.js');
      return inspectCommand(a as InspectArgs, out);
    }
    case 'sbom': {
      const { sbomCommand } = await import('./sbom.js');
      return sbomCommand(a as SbomArgs, out, logFor(a));
    }
    case 'push': {
      const { pushCommand } = await import('./push.js');
      return pushCommand(a as PushArgs, out, logFor(a));
    }
    case 'pull': {
      const { pullCommand } = await import('./pull.js');
      return pullCommand(a as PullArgs, out, logFor(a));
    }
    case 'index': {
      const { indexCommand } = await import('./index-command.js');
      return indexCommand({ ...(a as IndexArgs), sources: (a.sources as string[] | undefined) ?? [] }, out, logFor(a));
    }
    case 'login': {
      const { loginCommand } = await import('./login.js');
      return loginCommand(a.registry as string, a as RegistryArgs, logFor(a));
    }
    case 'cache': {
      const { cacheCommand } = await import('./cache.js');
      return cacheCommand(a as CacheArgs, out);
    }
  }
}

/**
 * Runs the CLI and returns the exit code. Errors print one line; --debug adds the stack. A plain command line is read
 * without yargs (plain-args.ts); any other goes to yargs.
 */
export async function run(argv: string[]): Promise<number> {
  exitOnClosedPipe();
  removeTempsOnStop();
  // `ocislim --version` alone, printed as yargs prints it, without loading yargs.
  if (argv.length === 1 && argv[0] === '--version') {
    out(VERSION);
    return 0;
  }
  const debug = argv.includes('--debug');
  const many = lddManyFiles(argv);
  let picked: { command: Command; args: ParsedArgs } | null;
  let files: string[] | undefined;
  try {
    onceOnly(argv);
    picked = plainCommand(argv);
    if (!picked) {
      picked = await yargsArgs(many?.argv ?? argv);
      files = many?.files;
    }
  } catch (e) {
    return report(e, debug);
  }
  if (!picked) return 0; // --help, --version
  try {
    return await runCommand(picked.command, picked.args, files);
  } catch (e) {
    return report(e, debug);
  }
}
