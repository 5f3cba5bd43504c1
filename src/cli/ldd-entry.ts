/**
 * `ocislim ldd` in its plain forms, without yargs: the entry bin/ocislim.js tries first for an `ldd` command line
 * (bundled apart from the rest of the CLI by scripts/bundle.mjs, so that loading it brings in no more than ldd).
 * Loading and running yargs, and the rest of the CLI with it, was a twelfth of the CPU of `ocislim ldd` over
 * /usr/bin and /usr/sbin. Only command lines whose meaning is plain are taken: files, --json, --tree, --root DIR
 * (or --root=DIR), --debug, --quiet/-q, each option at most once and no file that looks like an option. Anything
 * else (--help, --library-path, "--", a boolean given a value, a quoted --root=, an unknown option, no file)
 * returns null and goes to the full CLI, which says what yargs says about it.
 */
import { exitOnClosedPipe, report } from './exit.js';
import { LddArgs, lddCommand } from './ldd.js';
export { exitWhenFlushed } from './exit.js';

/** ldd's arguments when `argv` (after the program name) is a plain ldd command line, else null. */
export function plainLddArgs(argv: readonly string[]): (LddArgs & { debug: boolean }) | null {
  if (argv[0] !== 'ldd') return null;
  const files: string[] = [];
  const seen = new Set<string>();
  let root: string | undefined;
  for (let i = 1; i < argv.length; i++) {
    const t = argv[i];
    if (t[0] !== '-') {
      files.push(t);
      continue;
    }
    let name = t;
    let value: string | undefined;
    if (t.startsWith('--root=')) {
      name = '--root';
      value = t.slice(7);
    }
    // -q and --quiet are one option to yargs (an alias).
    const key = name === '-q' ? '--quiet' : name;
    if (seen.has(key)) return null;
    seen.add(key);
    switch (name) {
      case '--json':
      case '--tree':
      case '--debug':
      case '--quiet':
      case '-q': {
        // yargs takes a following "true" or "false" as the flag's value.
        const next = argv[i + 1];
        if (next === 'true' || next === 'false') return null;
        break;
      }
      case '--root':
        if (value === undefined) {
          value = argv[++i];
          if (value === undefined || value[0] === '-') return null;
        }
        if (value === '') return null;
        // yargs takes the quotes off a value given after "=" (--root='"/"' is / to it): left to it.
        if (t !== name && (value[0] === '"' || value[0] === "'")) return null;
        root = value;
        break;
      default:
        return null;
    }
  }
  if (!files.length) return null;
  return { files, root: root ?? '/', json: seen.has('--json') || undefined, tree: seen.has('--tree') || undefined, debug: seen.has('--debug') };
}

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

/** Runs a plain ldd command line and returns its exit code; null (having done nothing) for any other command line. */
export function runPlainLdd(argv: readonly string[]): number | null {
  const a = plainLddArgs(argv);
  if (!a) return null;
  exitOnClosedPipe();
  try {
    return lddCommand(a, out, err);
  } catch (e) {
    return report(e, a.debug);
  }
}
