import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { BuildError } from './errors.js';
import { IgnoreRules, parseIgnore } from './copy.js';

/** A Docker build context: a directory, its .dockerignore, and the rule that nothing outside it is read. */
export interface BuildContext {
  dir: string;
  /** The .dockerignore rules (exceptions re-include entries inside excluded directories). */
  rules?: IgnoreRules;
  /** True when a path (relative to the context, "/"-separated) is excluded by .dockerignore. */
  ignored: (rel: string) => boolean;
}

function globToRegExp(p: string): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') {
      re += '.*';
      i++;
      if (p[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += '[' + p.slice(i + 1, end).replace(/^!/, '^') + ']';
        i = end;
      }
    } else if (c === '\\' && i + 1 < p.length) re += '\\' + p[++i];
    else re += c.replace(/[.+^${}()|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** .dockerignore: one pattern a line, "#" comments, "!" exceptions, the last matching pattern wins. */
export function parseDockerignore(text: string): (rel: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = (negate ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '').replace(/^\.\//, '');
      return { negate, re: globToRegExp(pat) };
    });
  return (rel: string) => {
    const parts = rel.split('/').filter(Boolean);
    let ignored = false;
    for (const r of rules) {
      // A pattern matching a parent directory excludes everything below it.
      for (let n = 1; n <= parts.length; n++) {
        if (r.re.test(parts.slice(0, n).join('/'))) {
          ignored = !r.negate;
          break;
        }
      }
    }
    return ignored;
  };
}

/** The context directory and its ignore file: `<Dockerfile>.dockerignore` when it exists (as BuildKit), else `.dockerignore`. */
export function loadContext(dir: string, dockerfile?: string): BuildContext {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new BuildError(`build context ${dir}: no such directory`);
  const ig = [dockerfile ? `${dockerfile}.dockerignore` : null, join(abs, '.dockerignore')].find((f): f is string => !!f && existsSync(f));
  const rules = parseIgnore(ig ? readFileSync(ig, 'utf8') : '');
  return { dir: realpathSync(abs), rules, ignored: (rel) => rules.ignored(rel) };
}

/** A source named in ADD/COPY, resolved inside the context; refuses anything that leaves it (by ".." or a symlink). */
export function contextSource(ctx: BuildContext, src: string, where: string): string {
  const lexical = resolve(ctx.dir, src.replace(/^\/+/, ''));
  if (lexical !== ctx.dir && !lexical.startsWith(ctx.dir + sep)) throw new BuildError(`${where}: ${src} is outside the build context`);
  if (!existsSync(lexical)) throw new BuildError(`${where}: ${src}: no such file or directory in the build context`);
  const real = realpathSync(lexical);
  if (real !== ctx.dir && !real.startsWith(ctx.dir + sep)) throw new BuildError(`${where}: ${src} is a symbolic link that leaves the build context`);
  const rel = relative(ctx.dir, lexical).split(sep).join('/');
  if (rel && ctx.ignored(rel)) throw new BuildError(`${where}: ${src} is excluded by .dockerignore`);
  return lexical;
}
