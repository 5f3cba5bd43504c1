import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';

export function elfFilesIn(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = `${dir}/${e.name}`;
    const fd = openSync(p, 'r');
    const b = Buffer.alloc(4);
    const n = readSync(fd, b, 0, 4, 0);
    closeSync(fd);
    if (n === 4 && b.toString('latin1') === '\x7fELF') out.push(p);
  }
  return out.sort();
}

export function time<T>(fn: () => T): { ms: number; value: T } {
  const t0 = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

export async function timeAsync<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

export function runQuiet(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'ignore'], cwd: opts.cwd, env: { ...process.env, ...opts.env } });
  return r.status ?? -1;
}

export function has(cmd: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Prints a Markdown table: the first row is the reference (ocislim), others get a "× slower than ocislim" ratio. */
export function table(title: string, rows: { name: string; ms: number; note?: string }[]): string {
  const base = rows[0].ms;
  const lines = [`### ${title}`, '', '| tool | time | ratio to ocislim |', '| --- | ---: | ---: |'];
  for (const r of rows) lines.push(`| ${r.name}${r.note ? ` (${r.note})` : ''} | ${(r.ms / 1000).toFixed(2)} s | ${(r.ms / base).toFixed(1)}× |`);
  return lines.join('\n');
}

/** Wall and CPU (user + sys of the whole process tree, by /usr/bin/time) of a bash script run in `cwd`, in seconds. */
export function timedScript(script: string, cwd: string, env: NodeJS.ProcessEnv = {}, why: () => string = () => ''): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', 'bash', '-ec', script], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}\n${why()}`);
  const [wall, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: user + sys };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The Markdown rows of interleaved jobs: medians of wall and CPU, and the ratio to each job's peer. */
export function ratioRows(jobs: { name: string; peer?: string }[], results: Map<string, { wall: number[]; cpu: number[] }>): string {
  const lines = ['| work | wall | CPU | wall ÷ peer | CPU ÷ peer |', '| --- | ---: | ---: | ---: | ---: |'];
  const ratio = (a: number[], b?: number[]) => (b ? (median(a) / median(b)).toFixed(2) : '');
  for (const j of jobs) {
    const r = results.get(j.name)!;
    const p = j.peer ? results.get(j.peer) : undefined;
    lines.push(`| ${j.name} | ${median(r.wall).toFixed(2)} s | ${median(r.cpu).toFixed(2)} s | ${ratio(r.wall, p?.wall)} | ${ratio(r.cpu, p?.cpu)} |`);
  }
  return lines.join('\n');
}
