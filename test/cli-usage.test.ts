import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ocislim } from './helpers/cli.js';
import { removeDir, tempDir } from './helpers/sh.js';

let dir: string;
before(() => (dir = tempDir('ocislim-usage-')));
after(() => removeDir(dir));

/** Every command the top-level help lists (commands added later are held to the same rules). */
const COMMANDS = section(ocislim(['--help']).stdout, 'Commands:').flatMap((l) => /^ {2}ocislim (\w+)/.exec(l)?.[1] ?? []);

/** The lines of one help section ("Positionals:", "Examples:", ...), up to the next blank line. */
function section(help: string, title: string): string[] {
  const lines = help.split('\n');
  const i = lines.findIndex((l) => l.trim() === title);
  if (i < 0) return [];
  const end = lines.findIndex((l, j) => j > i && !l.trim());
  return lines.slice(i + 1, end < 0 ? undefined : end);
}

describe('help', () => {
  it('lists the commands', () => assert.ok(['build', 'push', 'pull', 'inspect', 'ldd', 'login'].every((c) => COMMANDS.includes(c)), COMMANDS.join(' ')));
  for (const c of COMMANDS) {
    it(`${c} --help has examples and describes every positional argument`, () => {
      const r = ocislim([c, '--help'], { env: { COLUMNS: '200' } });
      assert.equal(r.status, 0, r.stderr);
      const examples = section(r.stdout, 'Examples:');
      assert.ok(examples.some((l) => l.trimStart().startsWith(`ocislim ${c} `)) || examples.some((l) => l.includes(`| ocislim ${c} `)), r.stdout);
      const positionals = section(r.stdout, 'Positionals:');
      assert.ok(positionals.length >= 1, r.stdout);
      // "  name  description  [type]": a positional line without words between its name and its type has no description.
      for (const l of positionals.filter((x) => /^ {2}\S/.test(x))) assert.match(l, /^ {2}\S+ {2,}[^[\s]/, `undescribed positional: ${l}`);
    });
  }

  it('build --help groups its options: input, output, registry, runtime', () => {
    const r = ocislim(['build', '--help']);
    for (const g of ['Input:', 'Output:', 'Registry:', 'Runtime (image config and run-time files):']) {
      assert.ok(section(r.stdout, g).length > 1, `group ${g} in\n${r.stdout}`);
    }
    assert.ok(section(r.stdout, 'Input:').some((l) => l.includes('--from')));
    assert.ok(section(r.stdout, 'Output:').some((l) => l.includes('--push')));
    assert.ok(section(r.stdout, 'Registry:').some((l) => l.includes('--password-stdin')));
    assert.ok(section(r.stdout, 'Runtime (image config and run-time files):').some((l) => l.includes('--entrypoint')));
  });

  it('pull --help marks -o as required', () => {
    const r = ocislim(['pull', '--help'], { env: { COLUMNS: '200' } });
    assert.match(r.stdout, /-o, --output(?:(?!\n {2}-)[\s\S])*\[required\]/);
  });
});

describe('usage errors exit 2 with one line', () => {
  const usage = (args: string[], message: RegExp) => {
    const r = ocislim(args, { input: 'secret\n' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message);
    return r;
  };

  it('a mistyped command says what it probably was', () => {
    usage(['biuld', '/bin/true'], /^ocislim: unknown command "biuld"\. did you mean build\?/);
    usage(['inspcet', 'oci:x'], /did you mean inspect\?/);
  });
  it('no command, an unknown flag, a missing positional', () => {
    usage([], /Name a command/);
    usage(['build', '/bin/true', '-o', `oci:${dir}/a`, '--no-such-flag'], /Unknown argument/);
    usage(['push', 'oci:x'], /Not enough non-option arguments/);
  });
  it('build without an output', () => void usage(['build', '/bin/true'], /say where the image goes/));
  it('pull without -o', () => void usage(['pull', 'localhost:1/x'], /Missing required argument: output/));
  it('bad flag values', () => {
    usage(['build', '/bin/true', '-o', `oci:${dir}/a`, '--layers', '2'], /--layers 2/);
    usage(['build', '/bin/true', '-o', 'nope:x'], /^ocislim: -o /);
    usage(['build', '/bin/true', '-o', `oci:${dir}/a`, '--tag', 'x'], /--tag adds tags to a --push/);
    usage(['build', '-o', `oci:${dir}/a`], /nothing to build/);
    usage(['build', '/bin/true', '--push', 'Bad Ref'], /--push/);
  });
  it('a one-value flag given twice is refused, naming both values (yargs added a repeated 1 to a number)', () => {
    const out = join(dir, 'twice');
    usage(['build', '/bin/true', '-o', `oci:${out}`, '--compression-level', '3', '--compression-level', '1'], /^ocislim: --compression-level is given 2 times \(3, 1\); it takes one value$/m);
    usage(['build', '/bin/true', '-o', `oci:${out}`, '--workdir', '/a', '--workdir=/b'], /--workdir is given 2 times \(\/a, \/b\)/);
    usage(['pull', 'localhost:1/x', '-o', `oci:${out}`, '--timeout', '5', '--timeout', '1'], /--timeout is given 2 times/);
    usage(['ldd', '--root', '/', '/bin/true', '--root', '/'], /--root is given 2 times/);
    // (yargs takes camelCase names too: --compressionLevel 3 and --compression-level 1 made level 4)
    usage(['build', '/bin/true', '-o', `oci:${out}`, '--compressionLevel', '3', '--compression-level', '1'], /^ocislim: --compression-level is given 2 times \(3, 1\)/m);
    usage(['build', '/bin/true', '-o', `oci:${out}`, '--stopSignal', 'TERM', '--stop-signal=INT'], /--stop-signal is given 2 times \(TERM, INT\)/);
    assert.ok(!existsSync(out), 'nothing written');
    // Lists and switches may repeat; so may build's --root (one per platform), which says so itself.
    usage(['build', '/bin/true', '-o', `oci:${out}`, '--root', '/', '--root', '/'], /--root is given 2 times \(\/, \/\); for several platforms/);
  });
  it('--password-stdin without -u is refused, even when no registry is involved', () => {
    const out = join(dir, 'pw');
    usage(['build', '/bin/true', '-o', `oci:${out}`, '--password-stdin'], /--password-stdin needs --username/);
    assert.ok(!existsSync(out), 'nothing written');
    usage(['pull', 'localhost:1/x', '-o', `oci:${out}`, '--password-stdin'], /--password-stdin needs --username/);
  });
});

describe('repeatable flags take one value each, before or after the positionals', () => {
  it('build --expose 6379 PROGRAM -o oci:DIR --expose 80: two ports, one program', () => {
    const out = join(dir, 'flags-first');
    const r = ocislim(['build', '--expose', '6379', '/bin/true', '-o', `oci:${out}`, '--expose', '80/udp', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const cfg = JSON.parse(ocislim(['inspect', '--json', `oci:${out}`]).stdout);
    assert.deepEqual(Object.keys(cfg.runConfig.ExposedPorts).sort(), ['6379/tcp', '80/udp']);
    assert.deepEqual(cfg.runConfig.Entrypoint, ['/bin/true']);
  });
  it('ldd --library-path DIR FILE: the file is not taken for a second directory', () => {
    const r = ocislim(['ldd', '--library-path', '/lib', '/bin/true']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /libc\.so\.6 => /);
  });
});
