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
