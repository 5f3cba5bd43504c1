import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plainCommand, yargsArgs } from '../../src/cli/main.js';
import { commandShapes, globalOptions } from '../../src/cli/options.js';
import { plainArgs } from '../../src/cli/plain-args.js';
import { ocislim } from '../helpers/cli.js';

// plain-args.ts reads plain command lines without yargs: whatever it takes, it must read exactly as yargs does (the
// same command, the same value under every name), and it must take the common lines (or nothing would be gained).

type Read = { command: string; args: Record<string, unknown> } | 'error' | null;

/** What yargs makes of `argv`: its command and arguments, or 'error' for a usage error. */
async function viaYargs(argv: string[]): Promise<Read> {
  try {
    return await yargsArgs(argv);
  } catch {
    return 'error';
  }
}

/** What the CLI makes of `argv` without yargs: null when it leaves the line to yargs. */
function viaPlain(argv: string[]): Read {
  try {
    return plainCommand(argv);
  } catch {
    return 'error';
  }
}

async function agree(argv: string[]): Promise<boolean> {
  const plain = viaPlain(argv);
  if (!plain) return false;
  const y = await viaYargs(argv);
  if (plain === 'error') {
    assert.equal(y, 'error', `plain-args refuses what yargs takes: ${JSON.stringify(argv)}`);
    return true;
  }
  if (y === 'error') assert.fail(`yargs refuses what plain-args took: ${JSON.stringify(argv)}`);
  if (!y) assert.fail(`yargs printed help for ${JSON.stringify(argv)}`);
  assert.equal(plain.command, y.command, JSON.stringify(argv));
  const keys = new Set([...Object.keys(plain.args), ...Object.keys(y.args)]);
  keys.delete('_');
  keys.delete('$0');
  for (const k of keys) assert.deepEqual(plain.args[k], y.args[k], `${JSON.stringify(argv)}: "${k}" is ${JSON.stringify(plain.args[k])}, yargs says ${JSON.stringify(y.args[k])}`);
  return true;
}

/** A small deterministic generator (xorshift32), so that a failing line can be found again. */
function random(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  return { below: (n: number) => Math.floor(next() * n), pick: <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)] };
}

const WORDS = ['/usr/bin/redis-server', './app', 'oci:o', 'oci:dir:tag', 'registry.example.com/r:1', 'create', 'append', 'info', 'prune', '123', 'a=b', 'true', 'x y', 'ä'];
const STRINGS = ['x', 'oci:o', '6379', '6379/udp', 'KEY=VALUE', '/usr/bin/redis-server', 'true', 'false', '', '-x', '--', 'ä', 'a b', '0', '1.5', '010', '1e3', 'NaN', 'all', 'gzip', 'zstd', 'oci', 'docker', 'spdx', 'cyclonedx', 'linux/arm64', '"x"', "'/a'", '""', "'", '"6379'];
const NUMBERS = ['1', '4', '0', '9', '10', '1.5', '010', '-1', 'abc', '1e3', '0x10', '', '.5', '5.'];

function randomLine(r: ReturnType<typeof random>): string[] {
  const command = r.pick(Object.keys(commandShapes)) as keyof typeof commandShapes;
  const options = { ...globalOptions, ...commandShapes[command].options } as Record<string, { type: string; alias?: string; choices?: readonly string[] }>;
  const keys = Object.keys(options);
  const argv: string[] = [command];
  const n = r.below(6);
  for (let i = 0; i < n; i++) {
    if (r.below(4) === 0) {
      argv.push(r.pick(WORDS));
      continue;
    }
    if (r.below(25) === 0) {
      argv.push(r.pick(['--', '--bogus', '-qo', '-z', '--no-such', '--exp']));
      continue;
    }
    const key = r.pick(keys);
    const o = options[key];
    const name = o.alias && r.below(3) === 0 ? (o.alias.length === 1 ? `-${o.alias}` : `--${o.alias}`) : `--${key}`;
    const value = o.type === 'boolean' ? r.pick(['true', 'false', 'x']) : o.type === 'number' ? r.pick(NUMBERS) : o.choices && r.below(3) ? r.pick(o.choices) : r.pick(STRINGS);
    const form = r.below(8);
    if (o.type === 'boolean') {
      if (form === 0) argv.push(`${name}=${value}`);
      else if (form === 1) argv.push(name, value);
      else argv.push(name);
    } else if (form === 0 && name.startsWith('--')) argv.push(`${name}=${value}`);
    else if (form === 1) argv.push(name);
    else argv.push(name, value);
  }
  const words = r.below(4);
  for (let i = 0; i < words; i++) argv.splice(1 + r.below(argv.length), 0, r.pick(WORDS));
  return argv;
}

describe('plain command lines, read without yargs', () => {
  it('takes the common lines, and reads them as yargs does', async () => {
    const common = [
      ['build', '/usr/bin/redis-server', '--expose', '6379', '-o', 'oci:redis'],
      ['build', '/usr/bin/redis-server', '--expose', '6379', '--push', 'registry.example.com/redis:slim'],
      ['build', '-f', 'Dockerfile', '.', '-o', 'oci-archive:app.tar', '--build-arg', 'A=1', '--build-arg', 'B=2'],
      ['build', './app', '--from', 'debian:12-slim', '--push', 'r.example.com/app:1', '--json', '--quiet', '--layers', '1', '--compression-level=9'],
      ['build', '/usr/bin/python3', '--package', 'python3.11-minimal', '--no-cache', '--sbom', 'sbom.json', '--sbom-format', 'cyclonedx', '--insecure'],
      ['push', 'oci:redis', 'registry.example.com/redis:1', '--tag', 'latest', '-q'],
      ['pull', 'debian:12-slim', '-o', 'oci:debian', '--platform', 'linux/arm64', '--timeout', '30'],
      ['inspect', '--files', '--json', 'oci-archive:redis.tar'],
      ['index', 'create', 'r.example.com/app:1', 'r.example.com/app:1-amd64', 'r.example.com/app:1-arm64'],
      ['cache', 'prune', '--max-size', '500M'],
      ['login', 'registry.example.com', '-u', 'ci', '--password-stdin'],
      ['sbom', 'oci:redis', '--format', 'spdx'],
      ['ldd', '--library-path', '/opt/lib', '/usr/bin/true', '/usr/bin/ls'],
    ];
    for (const argv of common) assert.ok(await agree(argv), `not taken: ${argv.join(' ')}`);
  });

  it('leaves to yargs what takes judgement', () => {
    for (const argv of [
      ['build', '--help'],
      ['--version'],
      ['build', 'x', '--', '--expose'],
      ['build', 'x', '--workdir', '/a', '--workdir', '/b'],
      ['build', 'x', '--json', 'false'],
      ['build', 'x', '--json=true'],
      // (yargs strips the quotes around a value after "=": --workdir='"/a"' is /a to it)
      ['build', 'x', '--workdir="/a"'],
      ['build', 'x', "--env='A=1'"],
      ['build', 'x', '--cmd=""'],
      ['build', 'x', '-qo', 'oci:o'],
      ['build', 'x', '--expo', '80'],
      ['build', 'x', '--entrypoint', '-x'],
      ['build', 'x', '--layers', '0x10'],
      ['build', 'x', '--format', 'tar'],
      ['build', 'x', '--no-scaffold', 'tz'],
      ['build', 'x', '--root', 'linux/amd64=/', '--root', 'linux/arm64=/a'],
      ['push', 'oci:o'],
      ['push', 'oci:o', 'r/x', 'extra'],
      ['pull', 'debian'],
      ['cache', 'flush'],
      ['bulid', 'x'],
    ])
      assert.equal(plainArgs(argv, commandShapes), null, argv.join(' '));
  });

  it('agrees with yargs on 3000 generated lines, and takes a fair share of them', async () => {
    const r = random(Number(process.env.SEED ?? 20261129));
    let taken = 0;
    const total = Number(process.env.LINES ?? 3000);
    for (let i = 0; i < total; i++) if (await agree(randomLine(r))) taken++;
    if (process.env.LINES) console.log(`taken ${taken} of ${total}`);
    assert.ok(taken > total / 10, `only ${taken} of ${total} lines taken`);
  });

  it('runs the same check as yargs: --password-stdin needs a user', async () => {
    const argv = ['push', 'oci:o', 'r.example.com/x:1', '--password-stdin'];
    assert.equal(await viaYargs(argv), 'error');
    const { run } = await import('../../src/cli/main.js');
    const err = process.stderr.write;
    let said = '';
    process.stderr.write = ((s: string) => ((said += s), true)) as typeof process.stderr.write;
    try {
      assert.equal(await run(argv), 2);
    } finally {
      process.stderr.write = err;
    }
    assert.match(said, /--password-stdin needs --username/);
  });

  it('prints --version alone as yargs prints it (with another flag, yargs prints it)', () => {
    // (in child processes: yargs ends the process once it has printed the version)
    const plain = ocislim(['--version']);
    const viaYargs = ocislim(['--version', '--quiet']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(viaYargs.status, 0, viaYargs.stderr);
    assert.match(plain.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal(plain.stdout, viaYargs.stdout);
  });
});

describe("ldd's own reader (ldd-entry.ts, the ldd bundle's)", () => {
  it('reads what it takes as yargs does, or leaves it', async () => {
    const { plainLddArgs } = await import('../../src/cli/ldd-entry.js');
    const lines = [
      ['ldd', '/bin/true'],
      ['ldd', '--root=/', '/bin/true', '--json'],
      ['ldd', '--root', '/', '-q', '/bin/true', '--tree'],
      ['ldd', '--root="/"', '/bin/true'],
      ['ldd', "--root='/r'", '/bin/true'],
      ['ldd', '--root', '"/"', '/bin/true'],
      ['ldd', '"/bin/true"', "'/bin/sh'"],
    ];
    for (const argv of lines) {
      const plain = plainLddArgs(argv);
      if (!plain) continue;
      const y = await yargsArgs(argv);
      assert.ok(y, argv.join(' '));
      const { files, root, json, tree } = y.args as { files: string[]; root: string; json?: boolean; tree?: boolean };
      assert.deepEqual({ files: plain.files, root: plain.root, json: plain.json, tree: plain.tree }, { files, root, json, tree }, JSON.stringify(argv));
    }
  });
});
