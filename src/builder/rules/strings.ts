import { readFileSync } from 'node:fs';

/**
 * The NUL-terminated runs of printable ASCII in a file (what `strings` shows, without its minimum length): the words
 * and paths of a program's read-only data. Linkers merge a string into the tail of a longer one that ends with it
 * (GNU tar's "xz" is the end of "txz"), so a word may also show as a run's suffix; see `namesWord`.
 */
export function nulStrings(hostFile: string): string[] {
  const text = readFileSync(hostFile).toString('latin1');
  return text.match(/[\x20-\x7e]+(?=\x00)/g) ?? [];
}

/**
 * How the strings name each word of `names` they name: "whole" when a string is exactly the word, "part" when a
 * longer string ends with it after a character that is no letter, digit or underscore ("S.gpg-agent", "--lzma"),
 * "tail" when a longer string just ends with it ("txz": a merged string, or "invalid" ending in "id"). Names shorter
 * than two characters are never matched. An absolute path names a word only as its last component in one of
 * `pathDirs` (/usr/bin/xz): /etc/passwd is a file, not the passwd program.
 */
export type Naming = 'whole' | 'part' | 'tail';
const RANK: Record<Naming, number> = { whole: 3, part: 2, tail: 1 };

export function namedWords(strings: string[], names: Set<string>, pathDirs: Set<string> = new Set()): Map<string, Naming> {
  const lengths = [...new Set([...names].map((n) => n.length))].filter((n) => n >= 2);
  const found = new Map<string, Naming>();
  for (const s of strings) {
    if (s.startsWith('/')) {
      const slash = s.lastIndexOf('/');
      const dir = s.slice(0, slash);
      const w = s.slice(slash + 1);
      if (names.has(w) && w.length >= 2 && pathDirs.has(dir)) found.set(w, 'whole');
      continue;
    }
    for (const k of lengths) {
      if (k > s.length) continue;
      const w = k === s.length ? s : s.slice(s.length - k);
      if (!names.has(w)) continue;
      const how: Naming = k === s.length ? 'whole' : /[A-Za-z0-9_]/.test(s[s.length - k - 1]) ? 'tail' : 'part';
      const was = found.get(w);
      if (!was || RANK[how] > RANK[was]) found.set(w, how);
    }
  }
  return found;
}
