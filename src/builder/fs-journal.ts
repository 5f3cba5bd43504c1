import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { isAbsolute, resolve, sep } from 'node:path';
import { createHash } from 'node:crypto';

/**
 * A journal of what a piece of work learnt from the file system: every path it stat'ed, read, listed or followed,
 * with a fingerprint of the answer. Replaying the journal (asking the same questions again) tells whether the work
 * would see the same world, and so give the same result: the build memo (build-memo.ts) serves a whole build from the
 * cache only when every answer is unchanged.
 *
 * The journal hooks node:fs itself while the work runs, so every reader is covered, including ones written later:
 * stat, lstat, exists, access, open and read (sync, callback and promise forms), readFile, readdir, readlink,
 * realpath and read streams. A reading call it does not model (opendir, watch) marks the journal unusable.
 *
 * Fingerprints:
 *   s/l  stat / lstat (exists and access too): device, inode, mode, owner, size, mtime and ctime (directories: no times and no size,
 *        their listing is asked separately); ENOENT and other errors by code. A file's content is covered by its
 *        stat, as in git's index: ctime changes on every write, rename, chmod, chown and xattr change, and cannot be
 *        set by a user.
 *   t/m  stat / lstat of a directory asked for as bigint: a stamp (what an index of the directory's files is keyed
 *        on, packages/dpkg.ts), so its size and times are kept too; they change whenever an entry is added, removed
 *        or renamed in it. (Such a stat of anything else is an s/l.)
 *   d    readdir with file types: a hash of the names and entry types, in the order the kernel gives them
 *   n    readdir of names only: a hash of the names, in that order (the work learnt no types from it)
 *   k    readlink, r realpath: the string
 *   c    content of a kernel file (/proc, /sys): its hash (their stat says nothing of it); stat questions there get
 *        type, mode and owner only. A read below /dev makes the journal unusable.
 * A file changed within the last two seconds makes the journal "racy" (a second write in the same clock tick would
 * not show in its stat): such a journal is not kept.
 */

export type Observation = [kind: Kind, path: string, fingerprint: string];
type Kind = 's' | 'l' | 't' | 'm' | 'd' | 'n' | 'k' | 'r' | 'c';

/** Kernel file systems (/proc, /sys): their stat says nothing of their content (and their times are made up on each look). */
function isVirtual(path: string): boolean {
  return path.startsWith('/proc/') || path.startsWith('/sys/');
}

const RACY_MS = 2000;

/** Changed within the last two seconds (mtime or ctime, in ms): a second write in the same clock tick would not show. */
function isRacy(mtimeMs: number, ctimeMs: number): boolean {
  const now = Date.now();
  return !(now - mtimeMs >= RACY_MS && now - ctimeMs >= RACY_MS);
}

const O_ACCMODE = 3;

/** The stamp kind of a stat kind (a bigint stat: see 't'/'m'). */
function stampKind(kind: Kind): Kind {
  return kind === 'l' ? 'm' : 't';
}

/** The original functions, for fingerprints and replays (never the hooked ones). */
const real = {
  statSync: fs.statSync,
  lstatSync: fs.lstatSync,
  fstatSync: fs.fstatSync,
  readdirSync: fs.readdirSync,
  readlinkSync: fs.readlinkSync,
  realpathSync: fs.realpathSync,
  readFileSync: fs.readFileSync,
};

function errCode(e: unknown): string {
  return 'E:' + ((e as NodeJS.ErrnoException)?.code ?? 'unknown');
}

/**
 * Times in ms as doubles (a quarter of a microsecond apart at today's dates): exact enough, since a journal is only
 * kept when every file it saw is two seconds old, so any later change moves a time by more than that. (Number
 * stats are several times cheaper than bigint ones, and a replay makes thousands.)
 */
function statPrint(st: fs.Stats, virtual = false, stamp = false): string {
  if (virtual) return `v:${st.mode}:${st.uid}:${st.gid}`;
  const base = `${st.dev}:${st.ino}:${st.mode}:${st.uid}:${st.gid}`;
  if (!st.isDirectory()) return `${base}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  return stamp ? `D:${base}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : `d:${base}`;
}

const NS_PER_S = 1_000_000_000n;

/**
 * A time in ms as a number stat gives it, from a bigint stat's ns: Node computes it from the same seconds and
 * nanoseconds (sec * 1e3 + nsec / 1e6), so the print is the same. Null for a time before 1970, where the bigint
 * division would not split it as the kernel's timespec does.
 */
function msOf(ns: bigint): number | null {
  return ns < 0n ? null : Number(ns / NS_PER_S) * 1e3 + Number(ns % NS_PER_S) / 1e6;
}

/**
 * The stamp print (statPrint with `stamp`) of a bigint stat: the string statPrint gives for a number stat of the same
 * file (so the work's own bigint stat need not be asked again as a number); null where the two could differ (a device or inode number
 * beyond 2^53, which a number stat rounds, or a time before 1970): then the file is stat'ed again.
 */
function stampPrintBig(st: fs.BigIntStats): string | null {
  if (st.dev > MAX_EXACT || st.ino > MAX_EXACT || st.size > MAX_EXACT) return null;
  const base = `${st.dev}:${st.ino}:${st.mode}:${st.uid}:${st.gid}`;
  const m = msOf(st.mtimeNs);
  const c = msOf(st.ctimeNs);
  if (m === null || c === null) return null;
  return `${st.isDirectory() ? 'D:' : ''}${base}:${st.size}:${m}:${c}`;
}
const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

function listPrint(path: string): string {
  return direntsPrint(real.readdirSync(path, { withFileTypes: true }));
}

function direntsPrint(list: fs.Dirent[]): string {
  const h = createHash('sha256');
  for (const d of list) {
    const t = d.isFile() ? 'f' : d.isDirectory() ? 'd' : d.isSymbolicLink() ? 'l' : 'o';
    h.update(`${t}${d.name}\0`);
  }
  return h.digest('base64');
}

function namesPrint(names: string[]): string {
  return createHash('sha256').update(names.join('\0')).digest('base64');
}

/** The current answer to one question. */
export function fingerprint(kind: Kind, path: string): string {
  try {
    switch (kind) {
      case 's':
      case 'l':
      case 't':
      case 'm': {
        // No exception for the common absent path (an exception costs more than the stat).
        const st = (kind === 's' || kind === 't' ? real.statSync : real.lstatSync)(path, { throwIfNoEntry: false });
        return st ? statPrint(st, isVirtual(path), kind === 't' || kind === 'm') : 'E:ENOENT';
      }
      case 'c':
        return createHash('sha256').update(real.readFileSync(path)).digest('base64');
      case 'd':
        return listPrint(path);
      case 'n':
        return namesPrint(real.readdirSync(path));
      case 'k':
        return real.readlinkSync(path, 'utf8');
      case 'r':
        return real.realpathSync(path);
    }
  } catch (e) {
    return errCode(e);
  }
}

/** True when every observation still holds (stops at the first that does not). */
export function stillHolds(obs: Observation[]): boolean {
  // An indexed loop: a replay runs once per process, mostly before V8 optimises it, and destructuring each entry
  // through the iterator protocol cost a third of the replay there.
  for (let i = 0; i < obs.length; i++) {
    const o = obs[i];
    if (fingerprint(o[0], o[1]) !== o[2]) return false;
  }
  return true;
}

export class FsJournal {
  /**
   * Each question once: a map per kind, keyed by the path itself (a key of kind + path was a new string to hash for
   * every file system call), and the questions in the order they were asked.
   */
  private readonly seen: Record<Kind, Map<string, Observation>> = { s: new Map(), l: new Map(), t: new Map(), m: new Map(), d: new Map(), n: new Map(), k: new Map(), r: new Map(), c: new Map() };
  private readonly asked: Observation[] = [];
  /** A file changed within the last two seconds was observed. */
  racy = false;
  /** Why the journal cannot stand for the work (an unmodelled reading call), or null. */
  unusable: string | null = null;
  private readonly skip: string[];

  /**
   * `exclude`: path prefixes of what is the work's own (its scratch directory, the cache's bookkeeping); a prefix that
   * ends in a separator is a directory, which it also names.
   */
  constructor(exclude: string[]) {
    this.skip = exclude.map((d) => (d.endsWith(sep) ? resolve(d) + sep : resolve(d)));
  }

  /**
   * What the work asked, once per question. A stat whose answer equals the lstat of the same path is left out: equal
   * answers mean the path is no symbolic link, so replaying the lstat answers both.
   */
  get observations(): Observation[] {
    const out: Observation[] = [];
    const lstats = this.seen.l;
    for (const o of this.asked) if (!(o[0] === 's' && lstats.get(o[1])?.[2] === o[2])) out.push(o);
    return out;
  }

  private wanted(p: unknown): string | null {
    let abs: string;
    if (typeof p === 'string' && p.charCodeAt(0) === 47) abs = p;
    else if (typeof p === 'string' || p instanceof URL || Buffer.isBuffer(p)) {
      const s = p instanceof URL ? p.pathname : p.toString();
      abs = isAbsolute(s) ? s : resolve(s);
    } else return null;
    // `abs + sep === d` without building the string (this runs for every file system call of a build).
    for (const d of this.skip) if (abs.startsWith(d) || (d.length === abs.length + 1 && d.endsWith(sep) && d.startsWith(abs))) return null;
    return abs;
  }

  /** `answer`: the answer the work itself got (a stat, or an error code), when it is the one the replay will see. */
  note(kind: Kind, p: unknown, answer?: string | fs.Stats | fs.BigIntStats): void {
    // A journal that will not be kept need not be written on (a build of a just-compiled program stops here early).
    if (this.racy || this.unusable || this.busy) return;
    const path = this.wanted(p);
    if (path === null) return;
    if (kind === 'c') {
      // Content read: files have their stat stand for it; kernel files are read and hashed; devices are not modelled.
      if (path.startsWith('/dev/')) {
        this.unusable ??= `read of ${path}`;
        return;
      }
      if (!isVirtual(path)) kind = 's';
    }
    const seen = this.seen[kind];
    if (seen.has(path)) return;
    if (kind === 't' || kind === 'm') {
      // A stamp: kept as one only for a directory (anything else's stat has its times anyway). The work's own bigint
      // stat answers it when it prints as a number stat would (not below /proc and /sys: their print differs).
      let f: string | fs.Stats | undefined;
      if (typeof answer === 'object' && typeof answer.mtimeMs === 'bigint') {
        if (!isVirtual(path)) f = stampPrintBig(answer as fs.BigIntStats) ?? undefined;
      } else f = answer as string | fs.Stats | undefined;
      f ??= this.print(kind, path);
      if (!(typeof f === 'string' ? f.startsWith('D:') : f.isDirectory())) {
        this.note(kind === 't' ? 's' : 'l', path, f);
        return;
      }
      const print = typeof f === 'string' ? f : statPrint(f, false, true);
      this.add(seen, [kind, path, print]);
      this.checkRacy(print);
      return;
    }
    if (answer !== undefined && typeof answer !== 'string') {
      answer = answer as fs.Stats; // (a bigint stat is always a stamp's answer, above)
      // The work's own stat: its times are checked as numbers (the same numbers the fingerprint prints).
      const virtual = isVirtual(path);
      this.add(seen, [kind, path, statPrint(answer, virtual)]);
      if ((kind === 's' || kind === 'l') && !virtual && !answer.isDirectory() && isRacy(answer.mtimeMs, answer.ctimeMs)) this.racy = true;
      return;
    }
    const f = answer === undefined ? this.print(kind, path) : answer;
    this.add(seen, [kind, path, f]);
    if ((kind === 's' || kind === 'l') && !f.startsWith('d:') && !f.startsWith('E:') && !f.startsWith('v:')) this.checkRacy(f);
  }

  /**
   * The journal's own look at a path. What it reads meanwhile is not the work's: Node's readFileSync opens a file
   * through fs.openSync, the hooked one, which noted the same content read again, and again, until the stack
   * overflowed (a kernel file's content print).
   */
  private print(kind: Kind, path: string): string {
    this.busy = true;
    try {
      return fingerprint(kind, path);
    } finally {
      this.busy = false;
    }
  }

  private busy = false;

  private add(seen: Map<string, Observation>, o: Observation): void {
    seen.set(o[1], o);
    this.asked.push(o);
  }

  /** An open file descriptor's stat stands for the path it was opened from. */
  noteFd(p: unknown, fd: number): void {
    if (this.racy || this.unusable || this.busy) return;
    const path = this.wanted(p);
    if (path === null) return;
    if (path.startsWith('/dev/') || isVirtual(path)) return this.note('c', path);
    let f: string | fs.Stats;
    try {
      f = real.fstatSync(fd);
    } catch (e) {
      f = errCode(e);
    }
    this.note('s', path, f);
  }

  /** `f`: a file's stat fingerprint, which ends in `:mtime:ctime`. */
  private checkRacy(f: string): void {
    const c = f.lastIndexOf(':');
    const m = f.lastIndexOf(':', c - 1);
    if (isRacy(Number(f.slice(m + 1, c)), Number(f.slice(c + 1)))) this.racy = true;
  }
}

let active: FsJournal | null = null;

function readOnly(flags: unknown): boolean {
  if (flags === undefined || flags === null) return true;
  if (typeof flags === 'number') return (flags & O_ACCMODE) === fs.constants.O_RDONLY;
  return flags === 'r' || flags === 'rs' || flags === 'sr';
}

type AnyFn = (...a: any[]) => any;

/** Wraps fs (and fs.promises) functions; returns the function that undoes it. */
function hook(j: FsJournal): () => void {
  const undo: (() => void)[] = [];
  const wrap = (obj: any, name: string, make: (orig: AnyFn) => AnyFn) => {
    const orig = obj[name] as AnyFn | undefined;
    if (typeof orig !== 'function') return;
    const w = make(orig);
    for (const k of Object.keys(orig)) (w as any)[k] = (orig as any)[k];
    obj[name] = w;
    undo.push(() => (obj[name] = orig));
  };
  const before = (kind: Kind) => (orig: AnyFn) =>
    function (this: unknown, p: unknown, ...rest: unknown[]) {
      j.note(kind, p);
      return orig.call(this, p, ...rest);
    };
  const statKind = (name: string): Kind => (name.startsWith('l') ? 'l' : 's');
  const P = fs.promises as any;
  // The answer the work got is the journal's too (one syscall, not two): `noteAnswer` notes it; an error is noted by
  // its code.
  const answered = (kind: Kind, noteAnswer: (p: unknown, r: any, opts: unknown) => void) => (orig: AnyFn) =>
    function (this: unknown, p: unknown, ...rest: unknown[]) {
      let r: unknown;
      try {
        r = orig.call(this, p, ...rest);
      } catch (e) {
        j.note(kind, p, errCode(e));
        throw e;
      }
      noteAnswer(p, r, rest[0]);
      return r;
    };
  /** Whether a call's options ask for strings in UTF-8 (what the prints are made of). */
  const utf8 = (opts: unknown) => opts === undefined || opts === null || opts === 'utf8' || (typeof opts === 'object' && ((opts as { encoding?: unknown }).encoding === undefined || (opts as { encoding?: unknown }).encoding === 'utf8'));
  // A stat: a bigint one is a stamp (see Kind 't'/'m').
  const statSync = (kind: Kind) =>
    answered(kind, (p, r: fs.Stats | fs.BigIntStats | undefined) => {
      if (r === undefined) j.note(kind, p, 'E:ENOENT');
      else if (typeof r.mtimeMs === 'number') j.note(kind, p, r as fs.Stats);
      else j.note(stampKind(kind), p, r as fs.BigIntStats);
    });
  for (const name of ['statSync', 'lstatSync']) wrap(fs, name, statSync(statKind(name)));
  const stat = (kind: Kind) => (orig: AnyFn) =>
    function (this: unknown, p: unknown, ...rest: unknown[]) {
      const o = rest[0] as { bigint?: boolean } | undefined;
      j.note(typeof o === 'object' && o !== null && o.bigint ? stampKind(kind) : kind, p);
      return orig.call(this, p, ...rest);
    };
  for (const name of ['stat', 'lstat']) {
    wrap(fs, name, stat(statKind(name)));
    wrap(P, name, stat(statKind(name)));
  }
  // exists and access answer from the stat (type, mode and owner decide access).
  for (const name of ['existsSync', 'accessSync', 'exists', 'access']) wrap(fs, name, before('s'));
  wrap(P, 'access', before('s'));
  // A listing's fingerprint is made from the listing the work got (no second readdir): with file types, or of the
  // names alone when that is all the work asked for.
  wrap(
    fs,
    'readdirSync',
    answered('d', (p, r, opts) => {
      const o = typeof opts === 'object' && opts !== null ? (opts as { withFileTypes?: boolean; recursive?: boolean }) : null;
      if (!utf8(opts) || o?.recursive) j.note('d', p);
      else if (o?.withFileTypes) j.note('d', p, direntsPrint(r as fs.Dirent[]));
      else j.note('n', p, namesPrint(r as string[]));
    }),
  );
  wrap(fs, 'readdir', before('d'));
  wrap(P, 'readdir', before('d'));
  // A link's target is the one the work got (no second readlink), when it asked for it as a string.
  wrap(
    fs,
    'readlinkSync',
    answered('k', (p, r, opts) => j.note('k', p, typeof r === 'string' && utf8(opts) ? r : undefined)),
  );
  wrap(fs, 'readlink', before('k'));
  wrap(P, 'readlink', before('k'));
  for (const name of ['realpathSync', 'realpath']) wrap(fs, name, before('r'));
  wrap(P, 'realpath', before('r'));
  wrap(fs.realpathSync, 'native', before('r'));
  wrap(fs.realpath, 'native', before('r'));
  // Content: the stat taken before the read (a change afterwards only makes the next replay miss).
  const content = (orig: AnyFn) =>
    function (this: unknown, p: unknown, ...rest: unknown[]) {
      if (typeof p !== 'number') j.note('c', p);
      return orig.call(this, p, ...rest);
    };
  wrap(fs, 'readFileSync', content);
  wrap(fs, 'readFile', content);
  wrap(P, 'readFile', content);
  wrap(fs, 'createReadStream', (orig) =>
    function (this: unknown, p: unknown, opts?: { fd?: unknown }) {
      if (!(opts && typeof opts === 'object' && opts.fd !== undefined)) j.note('c', p);
      return orig.call(this, p, opts);
    },
  );
  wrap(fs, 'openSync', (orig) =>
    function (this: unknown, p: unknown, flags?: unknown, ...rest: unknown[]) {
      const fd = orig.call(this, p, flags, ...rest) as number;
      if (readOnly(flags)) j.noteFd(p, fd);
      return fd;
    },
  );
  wrap(fs, 'open', (orig) =>
    function (this: unknown, p: unknown, ...rest: unknown[]) {
      const flags = typeof rest[0] === 'function' ? undefined : rest[0];
      if (readOnly(flags)) j.note('c', p);
      return orig.call(this, p, ...rest);
    },
  );
  wrap(P, 'open', (orig) =>
    function (this: unknown, p: unknown, flags?: unknown, ...rest: unknown[]) {
      if (readOnly(flags)) j.note('c', p);
      return orig.call(this, p, flags, ...rest);
    },
  );
  const refuse = (what: string) => (orig: AnyFn) =>
    function (this: unknown, ...a: unknown[]) {
      j.unusable ??= what;
      return orig.apply(this, a);
    };
  for (const name of ['opendirSync', 'opendir', 'watch', 'watchFile']) wrap(fs, name, refuse(`fs.${name}`));
  wrap(P, 'opendir', refuse('fs.promises.opendir'));
  wrap(P, 'watch', refuse('fs.promises.watch'));
  // ES modules that imported these by name see the change only after this call.
  syncBuiltinESMExports();
  return () => {
    for (const u of undo.reverse()) u();
    syncBuiltinESMExports();
  };
}

/**
 * Runs `fn` while journaling what it reads from the file system. One journal at a time: work started while another
 * runs gets an unusable journal (its reads may be mixed with the other's).
 */
export async function journaled<T>(exclude: string[], fn: () => Promise<T>): Promise<{ value: T; journal: FsJournal }> {
  const j = new FsJournal(exclude);
  if (active) {
    j.unusable = 'another journal is active';
    return { value: await fn(), journal: j };
  }
  active = j;
  const unhook = hook(j);
  try {
    return { value: await fn(), journal: j };
  } finally {
    unhook();
    active = null;
  }
}
