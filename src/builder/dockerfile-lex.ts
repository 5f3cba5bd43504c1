import { BuildError } from './errors.js';

/** One instruction as the Dockerfile wrote it: keyword, flags and the rest of the (joined) line. */
export interface Instruction {
  line: number;
  /** Upper-cased keyword. */
  name: string;
  /** Everything after the keyword, continuations joined, trimmed at both ends. */
  args: string;
  /** The instruction as written (for history and messages). */
  original: string;
}

export interface LexedDockerfile {
  escape: string;
  instructions: Instruction[];
  /** Parser directives found at the top (lower-cased keys). */
  directives: Record<string, { value: string; line: number }>;
  /** Things worth telling the user (blank lines inside continuations...). */
  warnings: string[];
}

export function dockerfileError(file: string, line: number, msg: string): never {
  throw new BuildError(`${file}:${line}: ${msg}`);
}

const DIRECTIVE = /^#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$/;

/**
 * Splits a Dockerfile into instructions as BuildKit's parser does: directives only at the very top, comment lines
 * dropped (also inside a continuation), a line continues when it ends with the escape character (blanks after it
 * allowed), the escape character is deleted and nothing is inserted, the next line keeps its leading blanks, and a
 * blank line inside a continuation is dropped with a warning.
 */
export function lexDockerfile(text: string, file: string): LexedDockerfile {
  const lines = text.replace(/^\uFEFF/, '').split('\n').map((l) => l.replace(/\r$/, ''));
  const directives: LexedDockerfile['directives'] = {};
  let i = 0;
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]);
    if (!m) break;
    const key = m[1].toLowerCase();
    if (!['syntax', 'escape', 'check'].includes(key)) break;
    if (directives[key]) dockerfileError(file, i + 1, `the ${key} directive is given twice`);
    directives[key] = { value: m[2], line: i + 1 };
  }
  const escape = directives.escape?.value ?? '\\';
  if (escape !== '\\' && escape !== '`') dockerfileError(file, directives.escape!.line, `escape directive must be \\ or \` (got ${escape})`);
  const warnings: string[] = [];
  const isComment = (l: string) => /^[ \t]*#/.test(l);
  const isBlank = (l: string) => /^[ \t]*$/.test(l);
  // Ends with the escape character (blanks after it allowed) that is not itself escaped.
  const continues = (l: string): string | null => {
    const t = l.replace(/[ \t]+$/, '');
    if (!t.endsWith(escape)) return null;
    let n = 0;
    for (let k = t.length - 1; k >= 0 && t[k] === escape; k--) n++;
    return n % 2 === 1 ? t.slice(0, -1) : null;
  };
  const instructions: Instruction[] = [];
  for (; i < lines.length; i++) {
    const first = lines[i];
    if (isBlank(first) || isComment(first)) continue;
    const start = i + 1;
    let joined = first.replace(/^[ \t]+/, '');
    let rest = continues(joined);
    let blankInside = false;
    while (rest !== null) {
      joined = rest;
      i++;
      if (i >= lines.length) break;
      const next = lines[i];
      if (isComment(next)) {
        rest = joined;
        continue;
      }
      if (isBlank(next)) {
        blankInside = true;
        rest = joined;
        continue;
      }
      const c = continues(next);
      if (c === null) {
        joined += next;
        rest = null;
      } else rest = joined + c;
    }
    if (blankInside) warnings.push(`${file}:${start}: empty continuation line (docker warns that this will become an error)`);
    const m = /^(\S+)(?:[ \t]+([\s\S]*))?$/.exec(joined.trim())!;
    instructions.push({ line: start, name: m[1].toUpperCase(), args: (m[2] ?? '').trim(), original: joined.trim() });
  }
  return { escape, instructions, directives, warnings };
}

/** Leading `--name=value` flags (values may be quoted), as BuildKit's extractBuilderFlags reads them. */
export function extractFlags(args: string, escape: string, where: string): { flags: { name: string; value: string | null }[]; rest: string } {
  const flags: { name: string; value: string | null }[] = [];
  let s = args;
  for (;;) {
    s = s.replace(/^[ \t]+/, '');
    if (!s.startsWith('--')) break;
    let j = 2;
    let word = '';
    let quote = '';
    for (; j < s.length; j++) {
      const c = s[j];
      if (quote) {
        if (c === quote) quote = '';
        else if (c === escape && quote === '"' && j + 1 < s.length) word += s[++j];
        else word += c;
      } else if (c === "'" || c === '"') quote = c;
      else if (c === ' ' || c === '\t') break;
      else if (c === escape && j + 1 < s.length) word += s[++j];
      else word += c;
    }
    if (quote) throw new BuildError(`${where}: unterminated quote in a flag`);
    s = s.slice(j);
    if (word === '') break; // a bare "--" ends the flags
    const eq = word.indexOf('=');
    flags.push(eq < 0 ? { name: word, value: null } : { name: word.slice(0, eq), value: word.slice(eq + 1) });
  }
  return { flags, rest: s.trim() };
}

/**
 * Quote-aware words for ENV, LABEL and ARG (BuildKit parseWords): split at blanks outside quotes, quotes and
 * escapes kept in the words (the expander removes them).
 */
export function rawWords(s: string, escape: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (!quote && (c === ' ' || c === '\t')) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === escape && i + 1 < s.length && quote !== "'") {
      cur += c + s[++i];
      continue;
    }
    if (quote && c === quote) quote = '';
    else if (!quote && (c === '"' || c === "'")) quote = c;
    cur += c;
  }
  if (inWord) words.push(cur);
  return words;
}
