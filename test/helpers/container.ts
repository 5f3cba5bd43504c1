import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { run, sh } from './sh.js';

/** Unpacks an OCI layout image (DIR:TAG) into a runtime bundle with the real umoci. */
export function umociUnpack(layoutWithTag: string, bundle: string): void {
  const r = run('umoci', ['unpack', '--image', layoutWithTag, bundle]);
  if (r.status !== 0) throw new Error(`umoci unpack ${layoutWithTag} failed: ${r.stderr}`);
}

let counter = 0;

/** Prepares a bundle's config.json for a test: no TTY, given args, the host network (no network namespace). */
export interface RunOptions {
  /** Run as this uid/gid instead of root. */
  user?: { uid: number; gid: number };
  /** Capabilities added to the bounding set only (so only file capabilities can raise them). */
  bounding?: string[];
}

function prepare(bundle: string, args?: string[], env?: string[], opts: RunOptions = {}): void {
  const p = join(bundle, 'config.json');
  const c = JSON.parse(readFileSync(p, 'utf8'));
  c.process.terminal = false;
  if (opts.user) c.process.user = { uid: opts.user.uid, gid: opts.user.gid };
  if (opts.bounding) {
    c.process.capabilities.bounding.push(...opts.bounding);
    // no_new_privs would stop exec from honouring file capabilities.
    c.process.noNewPrivileges = false;
  }
  if (args) c.process.args = args;
  if (env) c.process.env = [...c.process.env, ...env];
  c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
  writeFileSync(p, JSON.stringify(c));
}

/** Runs the bundle's process to completion with runc and returns its output. */
export function runcRun(bundle: string, args?: string[], env?: string[], opts: RunOptions = {}): { status: number | null; stdout: string; stderr: string } {
  prepare(bundle, args, env, opts);
  const id = `ocislim-test-${process.pid}-${counter++}`;
  const r = spawnSync('runc', ['run', id], { cwd: bundle, encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
  spawnSync('runc', ['delete', '-f', id], { stdio: 'ignore' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** runcRun without blocking the event loop (when the test process also serves the container). */
export function runcRunAsync(bundle: string, args?: string[], env?: string[], opts: RunOptions = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  prepare(bundle, args, env, opts);
  const id = `ocislim-test-${process.pid}-${counter++}`;
  return new Promise((resolve) => {
    const child = spawn('runc', ['run', id], { cwd: bundle, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.on('close', (status) => {
      clearTimeout(timer);
      spawnSync('runc', ['delete', '-f', id], { stdio: 'ignore' });
      resolve({ status, stdout, stderr });
    });
  });
}

/** Starts the bundle's process in the background; returns a stop function. */
export function runcStart(bundle: string, args?: string[]): { id: string; stop: () => void } {
  prepare(bundle, args);
  const id = `ocislim-test-${process.pid}-${counter++}`;
  sh(`runc run -d ${id} > runc.log 2>&1 < /dev/null`, bundle);
  return {
    id,
    stop: () => {
      spawnSync('runc', ['kill', id, 'KILL'], { stdio: 'ignore' });
      spawnSync('runc', ['delete', '-f', id], { stdio: 'ignore' });
    },
  };
}

/** Waits until `redis-cli -p PORT PING` answers (or gives up after ~10 s). */
export async function waitForRedis(port: number): Promise<string> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    const r = run('redis-cli', ['-p', String(port), 'PING']);
    last = r.stdout.trim() || r.stderr.trim();
    if (last === 'PONG') return last;
    await new Promise((res) => setTimeout(res, 100));
  }
  return last;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export function skopeo(args: string[]): string {
  return execFileSync('skopeo', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
