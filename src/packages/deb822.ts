/** deb822 (Debian control file) stanzas: the format of dpkg's status, status.d files and DEP-5 copyright files. */

/** A malformed control file: which file, which line (1-based), what is wrong; `where` holds the file (an image). */
export class ControlFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
    readonly where?: string,
  ) {
    super(`${where ? `${where}: ` : ''}${file}:${line}: ${reason}`);
    this.name = 'ControlFileError';
  }
}

export interface Stanza {
  /** Field name as written (first spelling) → value; continuation lines joined with "\n" (leading space kept off). */
  fields: Record<string, string>;
  /** The stanza's raw text, without the separating blank lines, ending in "\n". */
  text: string;
  /** 1-based line of the stanza's first field. */
  line: number;
}

export interface ParseOptions {
  /** Lines starting with "#" are comments (copyright files, not dpkg's status). */
  comments?: boolean;
  /** Line number of the text's first line in its file (default 1), for error messages. */
  firstLine?: number;
}

/**
 * Splits a control file into stanzas (deb822(5)): fields "Name: value", continuation lines starting with a space
 * or tab, stanzas separated by blank lines. Field names are case-insensitive and appear once per stanza; anything
 * else is a ControlFileError naming `file` and the line.
 */
export function parseStanzas(text: string, file: string, opts: ParseOptions = {}): Stanza[] {
  const out: Stanza[] = [];
  let cur: Stanza | null = null;
  let seen: string[] = [];
  let last: string | null = null;
  let start = 0;
  let pos = 0;
  let lineNo = (opts.firstLine ?? 1) - 1;
  const close = (end: number) => {
    if (cur) {
      cur.text = text.slice(start, end);
      out.push(cur);
    }
    cur = null;
    last = null;
  };
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    lineNo++;
    const lineStart = pos;
    let l = text.slice(pos, nl);
    pos = nl + 1;
    if (l.endsWith('\r')) l = l.slice(0, -1);
    const c0 = l.charCodeAt(0);
    if (opts.comments && c0 === 35 /* # */) continue;
    if (l.length === 0 || l.trim() === '') {
      close(lineStart);
      continue;
    }
    if (c0 === 32 || c0 === 9) {
      if (!cur || last === null) throw new ControlFileError(file, lineNo, 'continuation line outside a field');
      const c = l.slice(1);
      const s: Stanza = cur;
      const prev = s.fields[last];
      s.fields[last] = prev + (prev === '' ? '' : '\n') + (c.trim() === '.' ? '' : c);
      continue;
    }
    const colon = l.indexOf(':');
    const name = colon > 0 ? l.slice(0, colon) : '';
    if (!name || name.includes(' ') || name.includes('\t')) throw new ControlFileError(file, lineNo, `expected "Field: value", found ${JSON.stringify(l.slice(0, 60))}`);
    if (!cur) {
      cur = { fields: {}, text: '', line: lineNo };
      seen = [];
      start = lineStart;
    }
    const key = name.toLowerCase();
    if (seen.includes(key)) throw new ControlFileError(file, lineNo, `duplicate field ${name}`);
    seen.push(key);
    const s: Stanza = cur;
    s.fields[name] = l.slice(colon + 1).trim();
    last = name;
  }
  close(text.length);
  for (const s of out) if (!s.text.endsWith('\n')) s.text += '\n';
  return out;
}

/** A field by case-insensitive name. */
export function field(fields: Record<string, string>, name: string): string | undefined {
  if (name in fields) return fields[name];
  const k = name.toLowerCase();
  for (const f of Object.keys(fields)) if (f.toLowerCase() === k) return fields[f];
  return undefined;
}

/** A stanza found by scanStanzas: its text and first line, with only the requested fields read. */
export interface StanzaHead {
  text: string;
  line: number;
  head: Record<string, string>;
}

/**
 * A fast first pass over a large control file (dpkg's status): finds the stanzas and reads only the fields named
 * in `wanted` (lower case; their first line), checking every line's shape so that a malformed file fails here,
 * naming the line. parseStanzas reads a stanza's other fields later, when they are asked for.
 */
export function scanStanzas(text: string, file: string, wanted: string[], where?: string): StanzaHead[] {
  const out: StanzaHead[] = [];
  let head: Record<string, string> | null = null;
  let start = 0;
  let end = 0;
  let first = 0;
  let pos = 0;
  let lineNo = 0;
  const close = () => {
    if (head) out.push({ text: text.slice(start, end), line: first, head });
    head = null;
  };
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    lineNo++;
    const c0 = text.charCodeAt(pos);
    const blank = nl === pos || (c0 === 13 && nl === pos + 1) || ((c0 === 32 || c0 === 9) && !/\S/.test(text.slice(pos, nl)));
    if (blank) {
      close();
    } else if (c0 === 32 || c0 === 9) {
      if (!head) throw new ControlFileError(file, lineNo, 'continuation line outside a field', where);
    } else {
      const colon = text.indexOf(':', pos);
      const name = colon > pos && colon < nl ? text.slice(pos, colon) : '';
      if (!name || /\s/.test(name)) throw new ControlFileError(file, lineNo, `expected "Field: value", found ${JSON.stringify(text.slice(pos, Math.min(nl, pos + 60)))}`, where);
      if (!head) {
        head = {};
        start = pos;
        first = lineNo;
      }
      const key = name.toLowerCase();
      if (wanted.includes(key)) {
        if (key in head) throw new ControlFileError(file, lineNo, `duplicate field ${name}`, where);
        head[key] = text.slice(colon + 1, nl).trim();
      }
    }
    if (head) end = Math.min(nl + 1, text.length);
    pos = nl + 1;
  }
  close();
  for (const s of out) if (!s.text.endsWith('\n')) s.text += '\n';
  return out;
}

/** A stanza found by quickScan: its byte range in the file and the requested fields (first line, trimmed). */
export interface StanzaSpan {
  /** Byte offset of the stanza's first line. */
  start: number;
  /** Byte offset just past its last line's "\n" (or the end of the file). */
  end: number;
  head: Record<string, string>;
}

/** After a "\n": a line that is neither empty, nor a continuation, nor "Name:" with a name of printable ASCII; or a line of blanks. */
const ODD_LINE = /\n(?:[ \t]+(?:\n|$)|(?=[^ \t\n])(?![!-9;-~]+:))/;

/** A regular expression source matching `name` in any case ("[pP][aA]...": the engine scans this much faster than with the i flag). */
function anyCase(name: string): string {
  return [...name].map((c) => (c.toLowerCase() !== c.toUpperCase() ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[^A-Za-z0-9]/g, '\\$&'))).join('');
}

/** Bytes other than ASCII. */
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * scanStanzas for the common case, in a few passes of the regular expression engine instead of a loop over every
 * line: a file with LF line ends, blank lines that are empty, field names of printable ASCII, every stanza with one
 * of the requested fields and none twice. Returns null for anything else (CR line ends, odd lines, a malformed line):
 * scanStanzas then reads the file and names the line at fault. The bytes are read as latin1 (offsets are byte
 * offsets); when a requested value has other than ASCII in it, null too (scanStanzas reads UTF-8).
 */
export function quickScan(bytes: Buffer, wanted: string[]): StanzaSpan[] | null {
  const text = bytes.toString('latin1');
  const c0 = text.charCodeAt(0);
  // The first line has no "\n" before it: checked on its own (a continuation, a blank line of spaces, a bad field).
  if (c0 === 32 || c0 === 9 || ODD_LINE.test('\n' + text.slice(0, text.indexOf('\n') + 1 || text.length))) return null;
  if (text.includes('\r') || text.includes('\n\n ') || text.includes('\n\n\t') || ODD_LINE.test(text)) return null;
  const out: StanzaSpan[] = [];
  const n = text.length;
  let pos = 0;
  while (pos < n) {
    while (pos < n && text.charCodeAt(pos) === 10) pos++;
    if (pos >= n) break;
    const blank = text.indexOf('\n\n', pos);
    const end = blank < 0 ? n : blank + 1;
    out.push({ start: pos, end, head: {} });
    pos = end;
  }
  // The requested fields' lines (after a "\n", or the first line) and, as "\n", the ends of stanzas, in order: one
  // call into the engine.
  const fields = wanted.map(anyCase).join('|');
  const lines = text.match(new RegExp(`(?:^|\\n)(?:${fields}):.*|\\n(?=\\n|$)`, 'g')) ?? [];
  if (NON_ASCII.test(lines.join(''))) return null;
  const keys = new Map<string, string>();
  for (const w of wanted) {
    keys.set(w, w);
    keys.set(w[0].toUpperCase() + w.slice(1), w);
  }
  let k = 0;
  let head: Record<string, string> | null = null;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.length === 1) {
      if (head) {
        k++;
        head = null;
      }
      continue;
    }
    if (!head) {
      if (k >= out.length) return null;
      head = out[k].head;
    }
    const from = l.charCodeAt(0) === 10 ? 1 : 0;
    const colon = l.indexOf(':');
    const name = l.slice(from, colon);
    const key = keys.get(name) ?? name.toLowerCase();
    if (head[key] !== undefined) return null;
    head[key] = l.slice(colon + 1).trim();
  }
  if (head) k++;
  // A stanza without any requested field (it has no Package): scanStanzas and its reader say so.
  return k === out.length ? out : null;
}
