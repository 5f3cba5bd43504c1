import yargs from 'yargs';
import { ElfError } from '../elf/errors.js';
import { UserError } from './errors.js';
import { lddCommand } from './ldd.js';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

/** Runs the CLI and returns the exit code. Errors print one line; --debug adds the stack. */
export async function run(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  let code = 0;
  try {
    await yargs(argv)
      .scriptName('ocislim')
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
        (a) => {
          code = lddCommand(
            { files: a.files as string[], root: a.root, libraryPath: a['library-path']?.flatMap((x) => x.split(':')), json: a.json, tree: a.tree },
            out,
            err,
          );
        },
      )
      .demandCommand(1, 'Name a command; see --help.')
      .strict()
      .version(false)
      .help()
      .fail((msg, e) => {
        if (e) throw e;
        throw new UserError(msg, 2);
      })
      .parseAsync();
  } catch (e) {
    if (e instanceof UserError || e instanceof ElfError) {
      err(`ocislim: ${e.message}`);
      if (debug) err(e.stack ?? '');
      return e instanceof UserError ? e.exitCode : 1;
    }
    err(`ocislim: ${(e as Error)?.message ?? e}`);
    if (debug) err((e as Error)?.stack ?? '');
    return 1;
  }
  return code;
}
