import { Closure } from '../../elf/resolve.js';
import { LayerGroup, Plan } from '../plan.js';
import { fieldNames, OptionNamer } from '../spec.js';

/** Scaffolding items, each on by default where the program needs it. */
export interface ScaffoldOptions {
  passwd: boolean;
  tmp: boolean;
  certs: boolean;
  tz: boolean;
  locale: boolean;
}

export interface RuleOptions {
  /** Turn off the dlopen rules (libgcc_s); scaffolding has its own switches. */
  noRules?: boolean;
  scaffold: ScaffoldOptions;
  /** Scaffolding items wanted even when no trigger fires (--scaffold certs). */
  force?: Partial<ScaffoldOptions>;
  /** Time zones to ship (--tz; "all" for the whole database). */
  tz: string[];
  /** TZ from the image's environment: its zone is shipped when the program uses the time-zone functions. */
  envTz?: string;
  /** Extra libraries (names searched as dlopen would, or paths), each with its closure. */
  withLibs: string[];
  /** gconv modules for iconv (file names such as ISO8859-1 or EUC-JP, or "all"); opt-in. */
  gconv?: string[];
  /** The library glibc loads for IDN names in getaddrinfo/getnameinfo (AI_IDN, NI_IDN); opt-in. */
  idn?: boolean;
  /** LANG, LC_ALL or LC_CTYPE from the image's environment: that locale is shipped when the program sets locales. */
  envLocale?: string;
  /** USER of the image, to make sure a named user exists. */
  user?: string;
  /** Whether a base image provides the system files (then scaffolding is not needed). */
  hasBase: boolean;
  /** Ship the root's /bin/sh (its target, with its closure) for programs that run commands through the shell. */
  withShell?: boolean;
  /** Turn off the runtime rule (the program's own runtime files found through the package database). */
  noRuntime?: boolean;
  /** Turn off the helpers rule (executables of related packages the program runs by name). */
  noHelpers?: boolean;
  /** How notes, warnings and reasons name these options (BuildSpec.optionNames). */
  names?: OptionNamer;
}

/** What a rule sees and how it reports: the plan, the options, and the lines said on stderr. */
export class RuleContext {
  readonly added: string[] = [];
  constructor(
    readonly plan: Plan,
    readonly opts: RuleOptions,
  ) {}

  get closures(): Closure[] {
    return this.plan.closures;
  }

  /** glibc programs (closures with an interpreter): the first is the program the user named first. */
  get glibc(): Closure[] {
    return this.plan.closures.filter((c) => c.flavour === 'glibc' && c.elf.interp);
  }

  /** An executable of the image (not a shared object that came with a package or a directory). */
  isProgram(path: string): boolean {
    return this.plan.closures.some((c) => c.file.path === path && c.elf.kind !== 'shared-object');
  }

  /** An option as the front end names it: opt('gconv', 'NAME') is "--with-gconv NAME" on the command line. */
  opt(option: string, value?: string): string {
    return (this.opts.names ?? fieldNames)(option, value);
  }

  say(what: string): void {
    this.added.push(`added ${what}`);
  }

  note(what: string): void {
    this.added.push(`note: ${what}`);
  }

  warn(what: string): void {
    this.plan.warnings.push(what);
  }

  /** A generated file. Scaffolding goes with the libraries: the loader-and-libc layer stays identical for every program of a system. */
  gen(path: string, content: string, mode: number, reason: string, group: LayerGroup = 'libs'): void {
    this.plan.add({ path, type: 'file', mode, uid: 0, gid: 0, content: Buffer.from(content), group, reason });
  }
}

/** One run-time rule: what it is called, whether it has anything to do for this plan, and what it adds. */
export interface Rule {
  name: string;
  applies(ctx: RuleContext): boolean;
  apply(ctx: RuleContext): void;
}
