/**
 * Variable substitution in Dockerfile words, as BuildKit's shell lexer does it: `$V`, `${V}` and the modifiers
 * (`:-` `-` `:+` `+` `:?` `?` `#` `##` `%` `%%` `/` `//`); single quotes are literal; in double quotes the escape
 * character escapes only `"`, `$` and itself; outside quotes it escapes any character; quotes are removed. An unset
 * variable expands to "". Errors are thrown as plain strings for the caller to place.
 */
export class ExpandError extends Error {}

type Env = ReadonlyMap<string, string>;

class Lexer {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly env: Env,
    private readonly escape: string,
  ) {}

  /** Reads up to `stop` (outside quotes) or the end; with `split`, blanks outside quotes separate words. */
  read(stop: string | null, split: boolean): string[] {
    const words: string[] = [];
    let cur = '';
    let inWord = false;
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i];
      if (stop !== null && c === stop) break;
      if (split && (c === ' ' || c === '\t' || c === '\n')) {
        if (inWord) words.push(cur);
        cur = '';
        inWord = false;
        this.i++;
        continue;
      }
      inWord = true;
      if (c === "'") {
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) throw new ExpandError('unexpected end of statement while looking for matching single-quote');
        cur += s.slice(this.i + 1, end);
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        cur += this.doubleQuoted();
      } else if (c === '$') {
        this.i++;
        cur += this.dollar();
      } else if (c === this.escape) {
        this.i++;
        if (this.i < s.length) cur += s[this.i++];
      } else {
        cur += c;
        this.i++;
      }
    }
    if (inWord || !split) words.push(cur);
    return words;
  }

  private doubleQuoted(): string {
    const s = this.s;
    let out = '';
    while (this.i < s.length) {
      const c = s[this.i];
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === '$') {
        this.i++;
        out += this.dollar();
      } else if (c === this.escape && this.i + 1 < s.length) {
        const n = s[this.i + 1];
        out += n === '"' || n === '$' || n === this.escape ? n : c + n;
        this.i += 2;
      } else {
        out += c;
        this.i++;
      }
    }
    throw new ExpandError('unexpected end of statement while looking for matching double-quote');
  }

  private name(): string {
    const s = this.s;
    const c = s[this.i];
    if (c !== undefined && /[0-9]/.test(c)) {
      let n = '';
      while (this.i < s.length && /[0-9]/.test(s[this.i])) n += s[this.i++];
      return n;
    }
    if (c !== undefined && '@*#?-$!'.includes(c)) {
      this.i++;
      return c;
    }
    let n = '';
    while (this.i < s.length && /[\p{L}\p{N}_]/u.test(s[this.i])) n += s[this.i++];
    return n;
  }

  private dollar(): string {
    const s = this.s;
    if (s[this.i] !== '{') {
      const n = this.name();
      if (!n) return '$';
      return this.env.get(n) ?? '';
    }
    this.i++;
    if (s[this.i] === '{' || s[this.i] === '}' || s[this.i] === ':') throw new ExpandError('bad substitution');
    const name = this.name();
    if (!name) throw new ExpandError('bad substitution');
    const value = this.env.get(name);
    const c = s[this.i];
    if (c === '}') {
      this.i++;
      return value ?? '';
    }
    if (c === undefined) throw new ExpandError(`missing '}'`);
    let op = c;
    this.i++;
    if ((op === ':' || op === '#' || op === '%' || op === '/') && ['-', '+', '?', '#', '%', '/'].includes(s[this.i]) && (op === ':' || s[this.i] === op)) {
      op += s[this.i++];
    }
    if (op === '/' || op === '//') {
      const pattern = this.word('/}');
      let repl = '';
      if (s[this.i] === '/') {
        this.i++;
        repl = this.word('}');
      }
      this.close();
      return replace(value ?? '', pattern, repl, op === '//');
    }
    const word = this.word('}');
    this.close();
    switch (op) {
      case ':-':
        return value ? value : word;
      case '-':
        return value !== undefined ? value : word;
      case ':+':
        return value ? word : '';
      case '+':
        return value !== undefined ? word : '';
      case ':?':
        if (!value) throw new ExpandError(`${name}: ${word || 'is not allowed to be unset or empty'}`);
        return value;
      case '?':
        if (value === undefined) throw new ExpandError(`${name}: ${word || 'is not allowed to be unset'}`);
        return value;
      case '#':
      case '##':
        return trimPrefix(value ?? '', word, op === '##');
      case '%':
      case '%%':
        return trimSuffix(value ?? '', word, op === '%%');
      default:
        throw new ExpandError(`unsupported modifier (${op}) in substitution`);
    }
  }

  /** A nested word up to one of `stops` (expanded, quotes removed), for modifiers. */
  private word(stops: string): string {
    let out = '';
    const s = this.s;
    while (this.i < s.length && !stops.includes(s[this.i])) {
      const c = s[this.i];
      if (c === '$') {
        this.i++;
        out += this.dollar();
      } else if (c === "'") {
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) throw new ExpandError('unexpected end of statement while looking for matching single-quote');
        out += s.slice(this.i + 1, end);
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        out += this.doubleQuoted();
      } else if (c === this.escape && this.i + 1 < s.length) {
        out += s[this.i + 1];
        this.i += 2;
      } else {
        out += c;
        this.i++;
      }
    }
    return out;
  }

  private close(): void {
    if (this.s[this.i] !== '}') throw new ExpandError(`missing '}'`);
    this.i++;
  }
}

/** Shell pattern (`*`, `?`, `\` escapes) to a regular expression body. */
function patternRe(p: string): string {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '\\' && i + 1 < p.length) re += p[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return re;
}

function trimPrefix(v: string, p: string, longest: boolean): string {
  const re = new RegExp(`^${patternRe(p)}$`);
  if (longest) {
    for (let n = v.length; n >= 0; n--) if (re.test(v.slice(0, n))) return v.slice(n);
  } else for (let n = 0; n <= v.length; n++) if (re.test(v.slice(0, n))) return v.slice(n);
  return v;
}

function trimSuffix(v: string, p: string, longest: boolean): string {
  const re = new RegExp(`^${patternRe(p)}$`);
  if (longest) {
    for (let n = 0; n <= v.length; n++) if (re.test(v.slice(n))) return v.slice(0, n);
  } else for (let n = v.length; n >= 0; n--) if (re.test(v.slice(n))) return v.slice(0, n);
  return v;
}

function replace(v: string, p: string, r: string, all: boolean): string {
  if (!p) return v;
  const re = new RegExp(`^${patternRe(p)}`);
  let out = '';
  let i = 0;
  while (i <= v.length) {
    let matched = -1;
    for (let n = v.length; n > i; n--) {
      if (re.test(v.slice(i, n)) && new RegExp(`^${patternRe(p)}$`).test(v.slice(i, n))) {
        matched = n;
        break;
      }
    }
    if (matched > 0) {
      out += r;
      i = matched;
      if (!all) return out + v.slice(i);
    } else {
      if (i < v.length) out += v[i];
      i++;
    }
  }
  return out;
}

/** One word: substituted, quotes removed, inner blanks kept. */
export function expandWord(s: string, env: Env, escape = '\\'): string {
  return new Lexer(s, env, escape).read(null, false)[0];
}

/** Several words: substituted, then split at blanks outside quotes (EXPOSE). */
export function expandWords(s: string, env: Env, escape = '\\'): string[] {
  return new Lexer(s, env, escape).read(null, true);
}
