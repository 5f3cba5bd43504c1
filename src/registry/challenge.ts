/** One WWW-Authenticate challenge (RFC 7235): scheme and parameters, names lower-cased. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses WWW-Authenticate header values with a tokenizer: quoted strings (with \" escapes) may hold commas, and one
 * header line may hold several challenges ("Basic realm=x, Bearer realm=y,service=z").
 */
export function parseChallenges(values: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const v of Array.isArray(values) ? values : values ? [values] : []) out.push(...parseOne(v));
  return out;
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const ws = () => {
    while (i < s.length && /[ \t]/.test(s[i])) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  let cur: Challenge | null = null;
  while (i < s.length) {
    ws();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const t = token();
    if (!t) {
      i++;
      continue;
    }
    ws();
    if (s[i] === '=' && cur) {
      // name=value (token68 values like "abc==" end with '=' too: only treat as param when a value follows)
      i++;
      ws();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        const m = /^[^,\s]*/.exec(s.slice(i))!;
        value = m[0];
        i += m[0].length;
      }
      cur.params[t.toLowerCase()] = value;
    } else {
      i = start + t.length;
      cur = { scheme: t.toLowerCase(), params: {} };
      out.push(cur);
    }
  }
  return out;
}

/** A scope "repository:NAME:ACTIONS"; the name may hold a ":port", so actions follow the last colon. */
export function parseScope(scope: string): { type: string; name: string; actions: string[] } | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return null;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}
