import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { freePort } from './container.js';
import { removeDir, tempDir } from './sh.js';

export interface RegistryOptions {
  /** htpasswd file (bcrypt) for Basic auth. */
  htpasswd?: string;
  /** TLS certificate and key (PEM). */
  tls?: { cert: string; key: string };
  /** Token auth: realm URL, service, issuer and the PEM bundle of the signing certificate. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

export interface TestRegistry {
  host: string;
  port: number;
  dir: string;
  stop: () => Promise<void>;
}

/** Starts the real CNCF distribution registry (Debian docker-registry) on 127.0.0.1 with its own storage. */
export async function startRegistry(dir: string, opts: RegistryOptions = {}): Promise<TestRegistry> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log: {level: error, accesslog: {disabled: true}}',
    'storage:',
    `  filesystem: {rootdirectory: ${join(dir, 'data')}}`,
    '  delete: {enabled: true}',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.cert}`, `    key: ${opts.tls.key}`);
  if (opts.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: ocislim-test', `    path: ${opts.htpasswd}`);
  if (opts.token) {
    lines.push('auth:', '  token:', `    realm: ${opts.token.realm}`, `    service: ${opts.token.service}`, `    issuer: ${opts.token.issuer}`, `    rootcertbundle: ${opts.token.rootCertBundle}`);
  }
  writeFileSync(join(dir, 'config.yml'), lines.join('\n') + '\n');
  // Its log goes to a file, not a pipe: a test blocked in spawnSync does not drain a pipe, and a registry whose log
  // fills the pipe (every 404 is an error line) stops answering.
  const logFile = join(dir, 'registry.log');
  const logFd = openSync(logFile, 'a');
  const proc: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', logFd] });
  closeSync(logFd);
  const stderr = () => readFileSync(logFile, 'utf8');
  const scheme = opts.tls ? 'https' : 'http';
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      import(scheme === 'https' ? 'node:https' : 'node:http').then((m) => {
        const req = m.request({ host: '127.0.0.1', port, path: '/v2/', rejectUnauthorized: false }, (res: { resume: () => void }) => {
          res.resume();
          resolve(true);
        });
        req.on('error', () => resolve(false));
        req.end();
      });
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/**
 * A temporary directory with a registry of its own for one test file: made before the file's tests, `ready` hears
 * them; stopped and removed after.
 */
export function fileRegistry(prefix: string, ready: (dir: string, reg: TestRegistry) => void): void {
  let dir = '';
  let reg: TestRegistry | null = null;
  before(async () => {
    dir = tempDir(prefix);
    reg = await startRegistry(join(dir, 'registry'));
    ready(dir, reg);
  });
  after(async () => {
    await reg?.stop();
    if (dir) removeDir(dir);
  });
}
