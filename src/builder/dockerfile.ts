import { isLocalRef } from '../oci/location.js';
import { BuildError, SpecError } from './errors.js';
import { CopySpec, parseSignal, splitWords } from './spec.js';

/** What a Dockerfile asks for, in terms the builder understands. */
export interface DockerfilePlan {
  from?: string;
  adds: CopySpec[];
  copies: CopySpec[];
  /** ADD and COPY in file order (the builder applies them in this order). */
  steps: { kind: 'ADD' | 'COPY'; spec: CopySpec; line: number }[];
  entrypoint?: string[];
  cmd?: string[];
  /** Whether ENTRYPOINT or CMD used the shell form (needs /bin/sh in the image). */
  shellForm: { instruction: string; line: number }[];
  env: string[];
  expose: string[];
  workdir?: string;
  user?: string;
  labels: Record<string, string>;
  volumes: string[];
  stopSignal?: string;
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
}

interface Instruction {
  line: number;
  name: string;
  args: string;
}

const SUPPORTED = new Set(['FROM', 'ADD', 'COPY', 'EXPOSE', 'CMD', 'ENTRYPOINT', 'ENV', 'ARG', 'WORKDIR', 'USER', 'LABEL', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK']);
const KNOWN = new Set([...SUPPORTED, 'RUN', 'SHELL', 'ONBUILD', 'MAINTAINER']);

function fail(file: string, line: number, msg: string): never {
  throw new BuildError(`${file}:${line}: ${msg}`);
}

/** Splits a Dockerfile into instructions: comments, the escape directive and line continuations. */
export function tokenize(text: string, file: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  let escape = '\\';
  // Parser directives: only at the very top, before any other line.
  for (const l of lines) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(l);
    if (!m) break;
    if (m[1].toLowerCase() === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') fail(file, lines.indexOf(l) + 1, `escape directive must be \\ or \` (got ${m[2]})`);
      escape = m[2];
    }
  }
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (!buf && (t === '' || t.startsWith('#'))) continue;
    if (buf && t.startsWith('#')) continue; // comments inside a continuation are dropped
    if (!buf) start = i + 1;
    const trimmedEnd = raw.replace(/\s+$/, '');
    if (trimmedEnd.endsWith(escape)) {
      buf += trimmedEnd.slice(0, -1) + ' ';
      continue;
    }
    buf += raw;
    const m = /^\s*(\S+)\s*(.*)$/s.exec(buf)!;
    out.push({ line: start, name: m[1].toUpperCase(), args: m[2].trim() });
    buf = '';
  }
  if (buf.trim()) fail(file, start, 'the file ends inside a line continuation');
  return out;
}

/** ${VAR}, $VAR, ${VAR:-default}, ${VAR:+alt}; escaped \$ stays literal. */
function substitute(s: string, vars: Map<string, string>, file: string, line: number): string {
  return s.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{[^}]*\}?/g, (m, name, op, word, bare) => {
    if (m === '\\$') return '$';
    const n = name ?? bare;
    if (!n) fail(file, line, `bad variable reference ${m}`);
    const v = vars.get(n);
    if (op === '-') return v ? v : word;
    if (op === '+') return v ? word : '';
    return v ?? '';
  });
}

function parseJsonArray(s: string): string[] | null {
  if (!s.startsWith('[')) return null;
  try {
    const v = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* not JSON: shell form */
  }
  return null;
}

function parseDuration(s: string, file: string, line: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (!m) fail(file, line, `"${s}" is not a duration (30s, 1m, 500ms)`);
  const mult = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * mult);
}

/** key=value pairs (quotes allowed), or the legacy "KEY value" form. */
function pairs(args: string, file: string, line: number, what: string): [string, string][] {
  const words = splitWords(args, `${file}:${line}: ${what}`);
  if (words.length && !words[0].includes('=')) {
    if (what !== 'ENV' && what !== 'LABEL') fail(file, line, `${what} needs KEY=VALUE`);
    const sp = args.search(/\s/);
    if (sp < 0) fail(file, line, `${what} ${args}: needs a value`);
    return [[args.slice(0, sp), splitWords(args.slice(sp).trim(), what).join(' ')]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) fail(file, line, `${what}: "${w}" is not KEY=VALUE`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/**
 * Reads the Dockerfile subset ocislim builds without a daemon. Everything is checked before any work: RUN, other
 * unsupported instructions and multi-stage builds are errors naming the line.
 */
export function parseDockerfile(text: string, file: string, buildArgs: Record<string, string>): DockerfilePlan {
  const ins = tokenize(text, file);
  for (const i of ins) {
    if (!KNOWN.has(i.name)) fail(file, i.line, `unknown instruction ${i.name}`);
    if (i.name === 'RUN') fail(file, i.line, 'RUN is not supported: ocislim builds without running anything (build the files first, then COPY them)');
    if (!SUPPORTED.has(i.name)) fail(file, i.line, `${i.name} is not supported by ocislim`);
  }
  const froms = ins.filter((i) => i.name === 'FROM');
  if (!froms.length) fail(file, ins[0]?.line ?? 1, 'no FROM instruction');
  if (froms.length > 1) fail(file, froms[1].line, 'multi-stage builds (a second FROM) are not supported');
  const plan: DockerfilePlan = { adds: [], copies: [], steps: [], shellForm: [], env: [], expose: [], labels: {}, volumes: [] };
  const vars = new Map<string, string>();
  const declared = new Set<string>();
  let seenFrom = false;
  for (const i of ins) {
    const sub = (s: string) => substitute(s, vars, file, i.line);
    if (!seenFrom && i.name !== 'ARG' && i.name !== 'FROM') fail(file, i.line, `${i.name} before FROM`);
    switch (i.name) {
      case 'ARG': {
        for (const w of splitWords(i.args, `${file}:${i.line}: ARG`)) {
          const eq = w.indexOf('=');
          const name = eq < 0 ? w : w.slice(0, eq);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(file, i.line, `ARG "${name}" is not a valid name`);
          declared.add(name);
          const v = buildArgs[name] ?? (eq < 0 ? undefined : sub(w.slice(eq + 1)));
          if (v !== undefined) vars.set(name, v);
        }
        break;
      }
      case 'FROM': {
        const words = i.args.split(/\s+/).filter(Boolean);
        if (words.some((w) => w.startsWith('--'))) fail(file, i.line, `FROM flags (${words.find((w) => w.startsWith('--'))}) are not supported`);
        if (words.length === 3 && words[1].toUpperCase() === 'AS') fail(file, i.line, 'named stages (FROM ... AS name) are multi-stage builds, which are not supported');
        if (words.length !== 1) fail(file, i.line, 'FROM takes one image');
        const img = sub(words[0]);
        if (img !== 'scratch') plan.from = img;
        if (img !== 'scratch' && !isLocalRef(img) && /^[a-z]+:\/\//.test(img)) fail(file, i.line, `FROM ${img}: not an image reference`);
        seenFrom = true;
        break;
      }
      case 'ADD':
      case 'COPY': {
        let words = splitWords(i.args, `${file}:${i.line}: ${i.name}`);
        const json = parseJsonArray(i.args);
        let chown: { uid: number; gid: number } | undefined;
        let chmod: number | undefined;
        const flags = json ? [] : words.filter((w) => w.startsWith('--'));
        if (json) words = json;
        else words = words.filter((w) => !w.startsWith('--'));
        for (const f of flags) {
          const m = /^--([a-z-]+)(?:=(.*))?$/.exec(f)!;
          if (m[1] === 'chown') {
            const c = /^(\d+)(?::(\d+))?$/.exec(sub(m[2] ?? ''));
            if (!c) fail(file, i.line, `${i.name} --chown=${m[2]}: use numeric UID[:GID] (there is no /etc/passwd to look names up in)`);
            chown = { uid: Number(c[1]), gid: Number(c[2] ?? c[1]) };
          } else if (m[1] === 'chmod') {
            if (!/^[0-7]{3,4}$/.test(m[2] ?? '')) fail(file, i.line, `${i.name} --chmod=${m[2]}: use an octal mode such as 755`);
            chmod = parseInt(m[2]!, 8);
          } else if (m[1] === 'from') {
            fail(file, i.line, `${i.name} --from is a multi-stage build, which is not supported`);
          } else fail(file, i.line, `${i.name} --${m[1]} is not supported`);
        }
        words = words.map(sub);
        if (words.length < 2) fail(file, i.line, `${i.name} needs a source and a destination`);
        let dest = words[words.length - 1];
        const srcs = words.slice(0, -1);
        if (!dest.startsWith('/')) dest = `${plan.workdir ?? '/'}${(plan.workdir ?? '/').endsWith('/') ? '' : '/'}${dest}`;
        if (srcs.length > 1 && !dest.endsWith('/')) fail(file, i.line, `${i.name} with several sources needs a destination directory ending in "/"`);
        for (const src of srcs) {
          if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src)) fail(file, i.line, `${i.name} ${src}: URLs are not supported (download the file into the build context first)`);
          if (/^git@/.test(src)) fail(file, i.line, `${i.name} ${src}: git sources are not supported`);
          const spec: CopySpec = { src, dest, ...(chown ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}) };
          plan.steps.push({ kind: i.name, spec, line: i.line });
          (i.name === 'ADD' ? plan.adds : plan.copies).push(spec);
        }
        break;
      }
      case 'EXPOSE':
        for (const p of splitWords(sub(i.args), 'EXPOSE')) {
          if (!/^\d{1,5}(\/(tcp|udp|sctp))?$/i.test(p) || Number(p.split('/')[0]) > 65535 || Number(p.split('/')[0]) < 1) fail(file, i.line, `EXPOSE ${p}: use PORT[/tcp|/udp]`);
          plan.expose.push(p);
        }
        break;
      case 'CMD':
      case 'ENTRYPOINT': {
        const json = parseJsonArray(i.args);
        let argv: string[];
        if (json) argv = json;
        else {
          if (i.args.startsWith('[')) fail(file, i.line, `${i.name} looks like JSON but is not a valid JSON array of strings`);
          argv = ['/bin/sh', '-c', i.args];
          plan.shellForm.push({ instruction: i.name, line: i.line });
        }
        if (i.name === 'CMD') plan.cmd = argv;
        else plan.entrypoint = argv;
        break;
      }
      case 'ENV':
        for (const [k, v] of pairs(i.args, file, i.line, 'ENV')) {
          const val = sub(v);
          vars.set(k, val);
          plan.env = plan.env.filter((e) => !e.startsWith(k + '=')).concat(`${k}=${val}`);
        }
        break;
      case 'WORKDIR': {
        const w = sub(i.args);
        plan.workdir = w.startsWith('/') ? w : `${plan.workdir ?? ''}/${w}`.replace(/\/+/g, '/');
        break;
      }
      case 'USER':
        if (!i.args) fail(file, i.line, 'USER needs a user');
        plan.user = sub(i.args);
        break;
      case 'LABEL':
        for (const [k, v] of pairs(i.args, file, i.line, 'LABEL')) plan.labels[sub(k)] = sub(v);
        break;
      case 'VOLUME': {
        const vs = parseJsonArray(i.args) ?? splitWords(i.args, 'VOLUME');
        for (const v of vs.map(sub)) {
          if (!v.startsWith('/')) fail(file, i.line, `VOLUME ${v}: must be an absolute path`);
          plan.volumes.push(v);
        }
        break;
      }
      case 'STOPSIGNAL':
        try {
          plan.stopSignal = parseSignal(sub(i.args));
        } catch (e) {
          if (e instanceof SpecError) fail(file, i.line, `STOPSIGNAL "${e.value}" ${e.reason}`);
          throw e;
        }
        break;
      case 'HEALTHCHECK': {
        if (/^NONE$/i.test(i.args)) {
          plan.healthcheck = { Test: ['NONE'] };
          break;
        }
        const m = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/is.exec(i.args);
        if (!m) fail(file, i.line, 'HEALTHCHECK must be NONE or [OPTIONS] CMD ["exec", "form"]');
        const argv = parseJsonArray(m[2].trim());
        if (!argv) fail(file, i.line, 'HEALTHCHECK CMD must use the exec form (a JSON array): a scratch image has no shell');
        const hc: NonNullable<DockerfilePlan['healthcheck']> = { Test: ['CMD', ...argv] };
        for (const opt of m[1].trim().split(/\s+/).filter(Boolean)) {
          const [k, v] = opt.slice(2).split('=');
          if (k === 'interval') hc.Interval = parseDuration(v, file, i.line);
          else if (k === 'timeout') hc.Timeout = parseDuration(v, file, i.line);
          else if (k === 'start-period') hc.StartPeriod = parseDuration(v, file, i.line);
          else if (k === 'retries') {
            if (!/^\d+$/.test(v)) fail(file, i.line, `HEALTHCHECK --retries=${v}: a whole number`);
            hc.Retries = Number(v);
          } else fail(file, i.line, `HEALTHCHECK --${k} is not supported`);
        }
        plan.healthcheck = hc;
        break;
      }
    }
  }
  return plan;
}
