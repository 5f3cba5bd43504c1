import { posix } from 'node:path';
import { isLocalRef } from '../oci/location.js';
import type { RunConfig } from '../oci/image.js';
import type { Platform } from '../oci/platform.js';
import { dockerfileError, extractFlags, Instruction, lexDockerfile, LexedDockerfile, rawWords } from './dockerfile-lex.js';
import { BuildError, NoSuchStageError } from './errors.js';
import { ExpandError, expandWord, expandWords } from './shell-expand.js';
import { BuildStep, CopySpec, DEFAULT_PATH, SourceStage } from './spec.js';

/** What the Dockerfile front end hands the builder (the rest of a BuildSpec comes from the command line). */
export interface DockerfileSpec {
  /** Base image of the target stage's chain (a registry reference or a local layout); scratch when absent. */
  from?: string;
  /** Platform to load that base for (FROM --platform, else the target platform). */
  fromPlatform?: Platform;
  /** ADD, COPY and WORKDIR in the order to apply them (the whole chain of stages the target is built FROM). */
  steps: BuildStep[];
  /** Earlier stages that COPY --from reads, by index (undefined where unused). */
  stages: (SourceStage | undefined)[];
  /** The run config of the target: the base image's, changed by every instruction. */
  config: RunConfig;
  author?: string;
  /** Where CMD/ENTRYPOINT used the shell form (the image needs /bin/sh). */
  shellForm: string[];
  /** Warnings and notes for stderr. */
  warnings: string[];
}

export interface DockerfileOptions {
  /** Name for messages (the path given with -f). */
  file: string;
  buildArgs: Record<string, string>;
  /** --target: the stage to build (default the last). */
  target?: string;
  /** The platform the image is built for (TARGETPLATFORM...). */
  platform: Platform;
  /** The platform ocislim runs on (BUILDPLATFORM...). */
  buildPlatform: Platform;
  /** The run config of a base image (FROM); loaded by the caller (registry or local layout). */
  imageConfig: (ref: string, platform: Platform) => Promise<RunConfig>;
}

interface Stage {
  index: number;
  name?: string;
  /** FROM image as written (expanded later with the global ARGs). */
  fromRaw: string;
  platformRaw?: string;
  line: number;
  instructions: Instruction[];
}

/** The state of a stage while its instructions are read. */
interface StageState {
  /** Variables for substitution: the environment, and ARGs with a value (which shadow it). */
  vars: Map<string, string>;
  config: RunConfig;
  author?: string;
  steps: BuildStep[];
  shellForm: string[];
  /** Whether CMD was given in this stage (ENTRYPOINT then keeps it). */
  cmdInStage: boolean;
  from?: string;
  fromPlatform?: Platform;
}

interface Context {
  file: string;
  lexed: LexedDockerfile;
  opts: DockerfileOptions;
  stages: Stage[];
  /** Global ARGs (and the automatic platform ARGs) with their values. */
  meta: Map<string, string>;
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** BuildKit's automatic ARGs of the global scope. */
function automaticArgs(target: Platform, build: Platform, targetStage: string): Map<string, string> {
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', targetStage],
  ]);
}

function expand(ctx: Context, ins: Instruction, s: string, vars: ReadonlyMap<string, string>): string {
  try {
    return expandWord(s, vars, ctx.lexed.escape);
  } catch (e) {
    if (e instanceof ExpandError) dockerfileError(ctx.file, ins.line, `${ins.name} ${s}: ${e.message}`);
    throw e;
  }
}

function fail(ctx: Context, ins: Instruction, msg: string): never {
  dockerfileError(ctx.file, ins.line, msg);
}

/** Flags an instruction allows, by name; anything else is an error naming it. */
function flagsOf(ctx: Context, ins: Instruction, allowed: string[]): { flags: Map<string, string | null>; rest: string } {
  const { flags, rest } = extractFlags(ins.args, ctx.lexed.escape, `${ctx.file}:${ins.line}: ${ins.name}`);
  const out = new Map<string, string | null>();
  for (const f of flags) {
    if (!allowed.includes(f.name)) fail(ctx, ins, `${ins.name} --${f.name} is not supported${ins.name === 'COPY' || ins.name === 'ADD' ? ` (ocislim takes ${allowed.map((a) => `--${a}`).join(', ')})` : ''}`);
    if (out.has(f.name)) fail(ctx, ins, `${ins.name} --${f.name} is given twice`);
    out.set(f.name, f.value);
  }
  return { flags: out, rest };
}

/** JSON array of strings, the plain form (null), or an error for a JSON array holding something else. */
function jsonForm(ctx: Context, ins: Instruction, s: string): string[] | null {
  if (!s.startsWith('[')) return null;
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  if (!v.every((x) => typeof x === 'string')) fail(ctx, ins, `${ins.name}: the JSON array must hold only strings`);
  return v as string[];
}

/** `k=v k2="v 2"` or the legacy `k v` form (ENV, LABEL): raw key and value, not yet expanded. */
function keyValues(ctx: Context, ins: Instruction): [string, string][] {
  const words = rawWords(ins.args, ctx.lexed.escape);
  if (!words.length) fail(ctx, ins, `${ins.name} needs KEY=VALUE`);
  if (!words[0].includes('=')) {
    const m = /^(\S+)[ \t]+([\s\S]+)$/.exec(ins.args);
    if (!m) fail(ctx, ins, `${ins.name} ${ins.args}: needs a value (KEY=VALUE)`);
    return [[m[1], m[2]]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i < 0) fail(ctx, ins, `${ins.name}: "${w}" is not KEY=VALUE`);
    if (i === 0) fail(ctx, ins, `${ins.name}: "${w}" has an empty key`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

function setEnv(env: string[], k: string, v: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')) === k);
  if (i >= 0) out[i] = `${k}=${v}`;
  else out.push(`${k}=${v}`);
  return out;
}

function varsFromEnv(env: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

/** Go's time.ParseDuration, in nanoseconds. */
function parseDuration(ctx: Context, ins: Instruction, flag: string, s: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  // (\u00b5: µ, escaped: esbuild leaves a regular expression's characters as they are, and one non-ASCII character
  // makes the whole bundled CLI a two-byte string to decode and compile at every start)
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m;
  if (s === '0') return 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * units[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== s.length || !s) fail(ctx, ins, `HEALTHCHECK --${flag}=${s}: not a duration (30s, 1m30s, 500ms)`);
  if (total !== 0 && total < 1e6) fail(ctx, ins, `HEALTHCHECK --${flag}=${s}: must be at least 1ms`);
  return Math.round(total);
}

const SIGNALS = new Set(
  'ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV STKFLT STOP SYS TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ'.split(' '),
);

function checkSignal(ctx: Context, ins: Instruction, s: string): void {
  if (/^\d+$/.test(s) && Number(s) > 0) return;
  const n = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.has(n) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(n)) return;
  fail(ctx, ins, `STOPSIGNAL ${s}: not a signal name (SIGTERM) or number`);
}

/** EXPOSE words: `80`, `80/tcp`, `53/UDP`, a range `8000-8002` (one key per port). */
function ports(ctx: Context, ins: Instruction, word: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/.exec(word);
  const proto = (m?.[3] ?? 'tcp').toLowerCase();
  if (!m || !['tcp', 'udp', 'sctp'].includes(proto)) fail(ctx, ins, `EXPOSE ${word}: use PORT[/tcp|/udp|/sctp] or a range START-END`);
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  if (lo < 1 || hi > 65535 || hi < lo) fail(ctx, ins, `EXPOSE ${word}: ports go from 1 to 65535`);
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}

function sorted<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A copy of a run config deep enough that changing a stage never changes its parent. */
function cloneConfig(c: RunConfig): RunConfig {
  return JSON.parse(JSON.stringify(c)) as RunConfig;
}

type Handler = (ctx: Context, st: StageState, ins: Instruction, stage: Stage) => void;

function copyHandler(ctx: Context, st: StageState, ins: Instruction, stage: Stage): void {
  const kind = ins.name as 'ADD' | 'COPY';
  const allowed = kind === 'COPY' ? ['from', 'chown', 'chmod', 'link'] : ['chown', 'chmod', 'link'];
  const { flags, rest } = flagsOf(ctx, ins, allowed);
  const vars = st.vars;
  const json = jsonForm(ctx, ins, rest);
  const words = (json ?? rest.split(/[ \t]+/).filter(Boolean)).map((w) => expand(ctx, ins, w, vars));
  if (words.length < 2) fail(ctx, ins, `${kind} needs a source and a destination`);
  const link = flags.get('link');
  if (link !== undefined && link !== null && link !== 'true' && link !== 'false') fail(ctx, ins, `${kind} --link=${link}: use --link, --link=true or --link=false`);
  let chmod: number | undefined;
  const chmodRaw = flags.get('chmod');
  if (chmodRaw !== undefined) {
    const v = expand(ctx, ins, chmodRaw ?? '', vars);
    if (!/^[0-7]{1,4}$/.test(v)) fail(ctx, ins, `${kind} --chmod=${v}: use an octal mode such as 755`);
    chmod = parseInt(v, 8);
  }
  const chownRaw = flags.get('chown');
  const chown = chownRaw !== undefined ? expand(ctx, ins, chownRaw ?? '', vars) : undefined;
  if (chown !== undefined && !/^[^:\s]+(:[^:\s]*)?$/.test(chown)) fail(ctx, ins, `${kind} --chown=${chown}: use USER[:GROUP] (names or numbers)`);
  let from: CopySpec['from'];
  const fromRaw = flags.get('from');
  if (fromRaw !== undefined) {
    if (!fromRaw) fail(ctx, ins, `${kind} --from needs a stage name, a stage index or an image`);
    if (fromRaw.includes('$')) fail(ctx, ins, `${kind} --from=${fromRaw}: variables are not allowed in --from`);
    from = resolveFrom(ctx, ins, fromRaw, stage);
  }
  const wd = st.config.WorkingDir || '/';
  let dest = words[words.length - 1];
  if (!dest.startsWith('/')) {
    const dirLike = dest === '' || dest === '.' || dest.endsWith('/') || dest.endsWith('/.');
    dest = posix.join('/', wd, dest);
    if (dirLike && !dest.endsWith('/')) dest += '/';
  }
  for (const src of words.slice(0, -1)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src)) {
      fail(ctx, ins, kind === 'ADD' ? `ADD ${src}: URLs are not supported (download the file into the build context first: ocislim reads nothing from the network but images)` : `COPY ${src}: COPY takes no URLs`);
    }
    if (/^git@/.test(src)) fail(ctx, ins, `${kind} ${src}: git sources are not supported`);
    const spec: CopySpec = { src, dest, ...(chown !== undefined ? { chownName: chown } : {}), ...(chmod !== undefined ? { chmod } : {}), ...(from ? { from } : {}) };
    st.steps.push({ kind, spec, where: `${ctx.file}:${ins.line}: ${kind}`, ...(from ? {} : {}) });
  }
}

/** `--from=`: an earlier stage by name (any case) or index, else an image reference. */
function resolveFrom(ctx: Context, ins: Instruction, v: string, stage: Stage): { stage: number } | { image: string } {
  const lower = v.toLowerCase();
  const byName = ctx.stages.find((s) => s.name === lower);
  if (byName) {
    if (byName.index >= stage.index) fail(ctx, ins, `COPY --from=${v}: stage ${v} needs to be defined before the current stage`);
    return { stage: byName.index };
  }
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n >= stage.index) fail(ctx, ins, `COPY --from=${v}: stage ${n} needs to be defined before the current stage`);
    return { stage: n };
  }
  return { image: v };
}

const HANDLERS: Record<string, Handler> = {
  COPY: copyHandler,
  ADD: copyHandler,
  ENV(ctx, st, ins) {
    const before = new Map(st.vars);
    for (const [rk, rv] of keyValues(ctx, ins)) {
      const k = expand(ctx, ins, rk, before);
      const v = expand(ctx, ins, rv, before);
      st.vars.set(k, v);
      st.config.Env = setEnv(st.config.Env ?? [], k, v);
    }
  },
  LABEL(ctx, st, ins) {
    const labels = { ...(st.config.Labels ?? {}) };
    for (const [rk, rv] of keyValues(ctx, ins)) labels[expand(ctx, ins, rk, st.vars)] = expand(ctx, ins, rv, st.vars);
    st.config.Labels = sorted(labels);
  },
  ARG(ctx, st, ins) {
    const before = new Map(st.vars);
    for (const w of argWords(ctx, ins)) {
      const v = ctx.opts.buildArgs[w.name] ?? (w.value !== undefined ? expand(ctx, ins, w.value, before) : ctx.meta.get(w.name));
      if (v !== undefined) st.vars.set(w.name, v);
    }
  },
  MAINTAINER(_ctx, st, ins) {
    st.author = ins.args;
  },
  USER(ctx, st, ins) {
    const u = expand(ctx, ins, ins.args, st.vars);
    if (!u) fail(ctx, ins, 'USER needs a user');
    st.config.User = u;
  },
  WORKDIR(ctx, st, ins) {
    const w = expand(ctx, ins, ins.args, st.vars);
    if (!w) fail(ctx, ins, 'WORKDIR needs a path');
    const path = w.startsWith('/') ? w : posix.join('/', st.config.WorkingDir || '/', w);
    st.config.WorkingDir = path;
    const clean = posix.normalize(path);
    if (clean !== '/') st.steps.push({ kind: 'WORKDIR', path: clean.replace(/\/$/, ''), user: st.config.User, where: `${ctx.file}:${ins.line}: WORKDIR` });
  },
  EXPOSE(ctx, st, ins) {
    let words: string[];
    try {
      words = expandWords(ins.args, st.vars, ctx.lexed.escape);
    } catch (e) {
      if (e instanceof ExpandError) fail(ctx, ins, `EXPOSE: ${e.message}`);
      throw e;
    }
    if (!words.length) fail(ctx, ins, 'EXPOSE needs a port');
    const exposed = { ...(st.config.ExposedPorts ?? {}) };
    for (const w of words) for (const p of ports(ctx, ins, w)) exposed[p] = {};
    st.config.ExposedPorts = sorted(exposed);
  },
  VOLUME(ctx, st, ins) {
    const list = jsonForm(ctx, ins, ins.args) ?? ins.args.split(/[ \t]+/).filter(Boolean);
    if (!list.length) fail(ctx, ins, 'VOLUME needs a path');
    const vols = { ...(st.config.Volumes ?? {}) };
    for (const raw of list) {
      const v = expand(ctx, ins, raw, st.vars).trim();
      if (!v) fail(ctx, ins, 'VOLUME: a path is empty');
      if (!v.startsWith('/')) fail(ctx, ins, `VOLUME ${v}: must be an absolute path`);
      vols[v] = {};
    }
    st.config.Volumes = sorted(vols);
  },
  STOPSIGNAL(ctx, st, ins) {
    const s = expand(ctx, ins, ins.args, st.vars);
    checkSignal(ctx, ins, s);
    st.config.StopSignal = s;
  },
  CMD(ctx, st, ins) {
    st.config.Cmd = command(ctx, st, ins);
    st.cmdInStage = true;
  },
  ENTRYPOINT(ctx, st, ins) {
    const argv = command(ctx, st, ins);
    if (argv.length) st.config.Entrypoint = argv;
    else delete st.config.Entrypoint;
    if (!st.cmdInStage) delete st.config.Cmd;
  },
  HEALTHCHECK(ctx, st, ins) {
    if (/^NONE$/i.test(ins.args)) {
      st.config.Healthcheck = { Test: ['NONE'] };
      return;
    }
    if (/^NONE\s/i.test(ins.args)) fail(ctx, ins, 'HEALTHCHECK NONE takes no arguments');
    const { flags, rest } = flagsOf(ctx, ins, ['interval', 'timeout', 'start-period', 'start-interval', 'retries']);
    const m = /^CMD(?:[ \t]+([\s\S]*))?$/i.exec(rest);
    if (!m || !m[1]?.trim()) fail(ctx, ins, 'HEALTHCHECK must be NONE or [OPTIONS] CMD command');
    const cmd = m[1].trim();
    const json = jsonForm(ctx, ins, cmd);
    const hc: NonNullable<RunConfig['Healthcheck']> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', cmd] };
    const durations: [string, 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval'][] = [
      ['interval', 'Interval'],
      ['timeout', 'Timeout'],
      ['start-period', 'StartPeriod'],
      ['start-interval', 'StartInterval'],
    ];
    for (const [flag, key] of durations) {
      const v = flags.get(flag);
      if (v === undefined) continue;
      const ns = parseDuration(ctx, ins, flag, v ?? '');
      if (ns) hc[key] = ns;
    }
    const r = flags.get('retries');
    if (r !== undefined) {
      if (!/^\d+$/.test(r ?? '')) fail(ctx, ins, `HEALTHCHECK --retries=${r}: a whole number`);
      if (Number(r)) hc.Retries = Number(r);
    }
    st.config.Healthcheck = hc;
  },
  RUN(ctx, _st, ins) {
    fail(ctx, ins, 'RUN is not supported: ocislim never runs commands (no container, no daemon), so the image is the same wherever it is built; build the files first, then COPY them');
  },
  SHELL(ctx, _st, ins) {
    fail(ctx, ins, 'SHELL is not supported: it only matters to RUN, which ocislim never runs (write CMD and ENTRYPOINT in the exec form)');
  },
  ONBUILD(ctx, _st, ins) {
    fail(ctx, ins, 'ONBUILD is not supported: its triggers would run in a later build, and ocislim stores none');
  },
};

/** CMD/ENTRYPOINT: the exec form as given, the shell form as docker stores it (`/bin/sh -c` + the raw text). */
function command(ctx: Context, st: StageState, ins: Instruction): string[] {
  const json = jsonForm(ctx, ins, ins.args);
  if (json) return json;
  if (!ins.args) fail(ctx, ins, `${ins.name} needs a command`);
  st.shellForm.push(`${ctx.file}:${ins.line}: ${ins.name}`);
  return ['/bin/sh', '-c', ins.args];
}

function argWords(ctx: Context, ins: Instruction): { name: string; value?: string }[] {
  const words = rawWords(ins.args, ctx.lexed.escape);
  if (!words.length) fail(ctx, ins, 'ARG needs a name');
  return words.map((w) => {
    const eq = w.indexOf('=');
    const name = eq < 0 ? w : w.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(ctx, ins, `ARG "${name}" is not a valid name`);
    return eq < 0 ? { name } : { name, value: w.slice(eq + 1) };
  });
}

function splitStages(ctx: Omit<Context, 'stages' | 'meta'>): { globals: Instruction[]; stages: Stage[] } {
  const globals: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of ctx.lexed.instructions) {
    if (ins.name === 'FROM') {
      const { flags, rest } = extractFlags(ins.args, ctx.lexed.escape, `${ctx.file}:${ins.line}: FROM`);
      for (const f of flags) if (f.name !== 'platform') dockerfileError(ctx.file, ins.line, `FROM --${f.name} is not supported`);
      const words = rest.split(/[ \t]+/).filter(Boolean);
      let name: string | undefined;
      if (words.length === 3 && words[1].toUpperCase() === 'AS') {
        name = words[2].toLowerCase();
        if (!STAGE_NAME.test(name)) dockerfileError(ctx.file, ins.line, `FROM ... AS ${words[2]}: a stage name starts with a letter and holds letters, digits, "-", "_" and "."`);
      } else if (words.length !== 1) dockerfileError(ctx.file, ins.line, 'FROM takes one image, optionally followed by AS name');
      const platform = flags.find((f) => f.name === 'platform')?.value ?? undefined;
      stages.push({ index: stages.length, name, fromRaw: words[0], platformRaw: platform, line: ins.line, instructions: [] });
      continue;
    }
    if (!stages.length) {
      if (ins.name !== 'ARG') dockerfileError(ctx.file, ins.line, HANDLERS[ins.name] || ins.name === 'FROM' ? `${ins.name} before FROM` : `unknown instruction ${ins.name}`);
      globals.push(ins);
      continue;
    }
    if (!HANDLERS[ins.name]) dockerfileError(ctx.file, ins.line, `unknown instruction ${ins.name}`);
    stages[stages.length - 1].instructions.push(ins);
  }
  if (!stages.length) dockerfileError(ctx.file, ctx.lexed.instructions[0]?.line ?? 1, 'no FROM instruction');
  return { globals, stages };
}

function parsePlatformString(ctx: Context, line: number, s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture || s.split('/').length > 3) dockerfileError(ctx.file, line, `FROM --platform=${s}: use os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * A Dockerfile → what the builder needs: BuildKit's semantics (docker build) for every instruction that does not
 * run anything. Stages are built only when the target reaches them; a RUN in such a stage is an error naming its
 * line. Base images' configs come from `opts.imageConfig` (their Env and WorkingDir matter while reading).
 */
export async function parseDockerfile(text: string, opts: DockerfileOptions): Promise<DockerfileSpec> {
  const file = opts.file;
  const lexed = lexDockerfile(text, file);
  const warnings = [...lexed.warnings];
  if (lexed.directives.syntax) warnings.push(`${file}:${lexed.directives.syntax.line}: the syntax directive (${lexed.directives.syntax.value}) is ignored: ocislim reads the Dockerfile itself`);
  const base = { file, lexed, opts };
  const { globals, stages } = splitStages(base);
  let target = stages[stages.length - 1];
  if (opts.target !== undefined) {
    const t = stages.find((s) => s.name === opts.target!.toLowerCase());
    if (!t) throw new NoSuchStageError(file, opts.target, stages.map((s) => s.name ?? String(s.index)));
    target = t;
  }
  const meta = automaticArgs(opts.platform, opts.buildPlatform, target.name ?? 'default');
  const ctx: Context = { ...base, stages, meta };
  for (const ins of globals) {
    const before = new Map(meta);
    for (const w of argWords(ctx, ins)) {
      const v = opts.buildArgs[w.name] ?? (w.value !== undefined ? expand(ctx, ins, w.value, before) : meta.get(w.name));
      if (v !== undefined) meta.set(w.name, v);
      else meta.delete(w.name);
    }
  }
  const states = new Map<number, StageState>();
  const evaluate = async (stage: Stage, chain: Set<number>): Promise<StageState> => {
    const done = states.get(stage.index);
    if (done) return done;
    const fromIns: Instruction = { line: stage.line, name: 'FROM', args: stage.fromRaw, original: `FROM ${stage.fromRaw}` };
    const image = expand(ctx, fromIns, stage.fromRaw, meta);
    if (!image) fail(ctx, fromIns, 'FROM needs an image');
    const platform = stage.platformRaw ? parsePlatformString(ctx, stage.line, expand(ctx, fromIns, stage.platformRaw, meta)) : opts.platform;
    const parent = stages.find((s) => s.name === image && s.index < stage.index);
    let st: StageState;
    if (parent) {
      if (chain.has(parent.index)) fail(ctx, fromIns, `FROM ${image}: a stage cannot build on itself`);
      const p = await evaluate(parent, new Set([...chain, stage.index]));
      st = { vars: new Map(p.vars), config: cloneConfig(p.config), author: p.author, steps: [...p.steps], shellForm: [...p.shellForm], cmdInStage: false, from: p.from, fromPlatform: p.fromPlatform };
    } else if (image === 'scratch') {
      st = { vars: new Map([['PATH', DEFAULT_PATH]]), config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' }, steps: [], shellForm: [], cmdInStage: false };
    } else {
      if (!isLocalRef(image) && /^[a-z]+:\/\//.test(image)) fail(ctx, fromIns, `FROM ${image}: not an image reference`);
      let config: RunConfig;
      try {
        config = cloneConfig(await opts.imageConfig(image, platform));
      } catch (e) {
        if (e instanceof BuildError) fail(ctx, fromIns, `FROM ${image}: ${e.message}`);
        throw e;
      }
      if (!(config.Env ?? []).some((e) => e.startsWith('PATH='))) config.Env = [...(config.Env ?? []), `PATH=${DEFAULT_PATH}`];
      st = { vars: varsFromEnv(config.Env), config, steps: [], shellForm: [], cmdInStage: false, from: image, fromPlatform: platform };
    }
    for (const ins of stage.instructions) {
      HANDLERS[ins.name](ctx, st, ins, stage);
      // An ARG or ENV of the base name of a later stage changes nothing here: FROM sees only global ARGs.
    }
    states.set(stage.index, st);
    return st;
  };
  const result = await evaluate(target, new Set());
  // Stages COPY --from reads (at any depth), each evaluated once.
  const sources: (SourceStage | undefined)[] = [];
  const pending = [...result.steps];
  while (pending.length) {
    const s = pending.pop()!;
    if (s.kind === 'WORKDIR' || !s.spec.from || !('stage' in s.spec.from)) continue;
    const n = s.spec.from.stage;
    if (sources[n]) continue;
    const st = await evaluate(stages[n], new Set());
    sources[n] = { name: stages[n].name, from: st.from, fromPlatform: st.fromPlatform, steps: st.steps, user: st.config.User };
    pending.push(...st.steps);
  }
  return {
    ...(result.from ? { from: result.from, fromPlatform: result.fromPlatform } : {}),
    steps: result.steps,
    stages: sources,
    config: result.config,
    ...(result.author !== undefined ? { author: result.author } : {}),
    shellForm: result.shellForm,
    warnings,
  };
}
