/**
 * Command lines whose meaning is plain, read without yargs. Loading, configuring and running yargs was about 11 ms of
 * CPU in every build (2% of a cold redis build, a tenth of a warm one): most command lines are a command, a few
 * `--flag value` pairs and some words. Such a line is read here from the same option tables yargs reads
 * (options.ts), into the same arguments yargs would give the command (a test compares the two on thousands of
 * lines). Anything whose reading takes judgement is left to yargs, which says what is wrong or prints help:
 * --help, --version, "--", an unknown, abbreviated or bundled option (-qo), a flag given twice that takes one
 * value (onceOnly words that error), a boolean given a value (`--json=true`, `--json false`), a value that looks
 * like an option or is empty (or is quoted after "="), a number that is not plain decimal, a value outside its
 * choices, a list flag with no fixed count (`--no-scaffold`), too many or too few words, a missing required flag.
 */
import type { Options } from 'yargs';
import { CommandShape, globalOptions } from './options.js';

/** What yargs would hand the command: both spellings of each flag given (kebab-case and camelCase), its aliases, the positionals, and the defaults. */
export type ParsedArgs = Record<string, unknown>;

/** A flag's name as yargs-parser camel-cases it: lower-cased unless it mixes cases, each "-x" made "X". */
export function yargsCamel(name: string): string {
  const mixed = name !== name.toLowerCase() && name !== name.toUpperCase();
  return (mixed ? name : name.toLowerCase()).replace(/-+(.?)/g, (_, c: string) => c.toUpperCase());
}
const NUMBER = /^(?:0|[1-9]\d*)(?:\.\d+)?$/;

/** Each way to write each flag of `options` on a command line ("--name", "--long-alias", "-a") → the flag's name. */
export function flagNames(options: Readonly<Record<string, { alias?: string | readonly string[] }>>): Map<string, string> {
  const names = new Map<string, string>();
  for (const [key, o] of Object.entries(options)) {
    names.set(`--${key}`, key);
    for (const a of ([] as string[]).concat(o.alias ?? [])) names.set(a.length === 1 ? `-${a}` : `--${a}`, key);
  }
  return names;
}

/** The arguments of `argv` (after the program name) for its command, when the line is plain; else null. */
export function plainArgs(argv: readonly string[], shapes: Readonly<Record<string, CommandShape>>): { command: string; args: ParsedArgs } | null {
  const command = argv[0];
  if (!command || !Object.hasOwn(shapes, command)) return null;
  const shape = shapes[command];
  const options: Record<string, Options> = { ...globalOptions, ...shape.options };
  const names = flagNames(options);
  const given = new Map<string, unknown>();
  const words: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const t = argv[i];
    if (t === '') return null;
    if (t[0] !== '-') {
      words.push(t);
      continue;
    }
    const eq = t.startsWith('--') ? t.indexOf('=') : -1;
    const key = names.get(eq > 0 ? t.slice(0, eq) : t);
    if (key === undefined) return null;
    const o = options[key];
    if (o.array ? o.nargs !== 1 : given.has(key)) return null;
    if (o.type === 'boolean') {
      const next = argv[i + 1];
      if (eq > 0 || next === 'true' || next === 'false') return null;
      given.set(key, true);
      continue;
    }
    const value = eq > 0 ? t.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || value[0] === '-') return null;
    // yargs takes the quotes off a value given after "=" (--workdir='"/a"' is /a to it): such a value is its to read.
    if (eq > 0 && (value[0] === '"' || value[0] === "'")) return null;
    if (o.choices && !(o.choices as readonly unknown[]).includes(value)) return null;
    let v: string | number = value;
    if (o.type === 'number') {
      if (!NUMBER.test(value)) return null;
      v = Number(value);
    } else if (o.type !== 'string') return null;
    if (o.array) ((given.get(key) as unknown[] | undefined) ?? given.set(key, []).get(key) as unknown[]).push(v);
    else given.set(key, v);
  }
  const args: ParsedArgs = {};
  for (const [key, o] of Object.entries(options)) {
    const v = given.has(key) ? given.get(key) : o.default;
    if (v === undefined) {
      if (o.demandOption) return null;
      continue;
    }
    for (const name of [key, yargsCamel(key), ...([] as string[]).concat(o.alias ?? [])]) args[name] = v;
  }
  let w = 0;
  for (const p of shape.positionals) {
    if (p.choices && words.slice(w, p.array ? undefined : w + 1).some((x) => !p.choices!.includes(x))) return null;
    if (p.array) {
      if (p.demandOption && w >= words.length) return null;
      args[p.name] = args[yargsCamel(p.name)] = words.slice(w);
      w = words.length;
    } else if (w < words.length) args[p.name] = args[yargsCamel(p.name)] = words[w++];
    else if (p.demandOption) return null;
  }
  if (w < words.length) return null;
  return { command, args };
}
