import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DockerfileOptions, parseDockerfile } from '../../src/builder/dockerfile.js';
import { lexDockerfile } from '../../src/builder/dockerfile-lex.js';
import { expandWord, expandWords } from '../../src/builder/shell-expand.js';
import type { RunConfig } from '../../src/oci/image.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm = { os: 'linux', architecture: 'arm', variant: 'v7' };

function opts(o: Partial<DockerfileOptions> = {}, bases: Record<string, RunConfig> = {}): DockerfileOptions {
  return {
    file: 'D',
    buildArgs: {},
    platform: amd64,
    buildPlatform: amd64,
    imageConfig: async (ref) => {
      if (!bases[ref]) throw new Error(`no image ${ref} in this test`);
      return bases[ref];
    },
    ...o,
  };
}

describe('builder/dockerfile.ts parseDockerfile', () => {
  it('instructions, continuations, comments, ARG and ENV substitution, build args', async () => {
    const df = await parseDockerfile(
      [
        '# syntax comment',
        'ARG BASE=scratch',
        'FROM ${BASE}',
        'ARG PORT=6379',
        'ENV APP=/opt/app \\',
        '    MODE=prod',
        'EXPOSE $PORT 53/udp',
        'WORKDIR ${APP}',
        'USER nonroot',
        'LABEL a=b "c d"="e f"',
        'ENTRYPOINT ["/usr/bin/redis-server"]',
        'CMD ["--port", "${PORT}"]',
        'COPY --chown=1:2 --chmod=0755 src/ /dst/',
      ].join('\n'),
      opts({ buildArgs: { PORT: '7000' } }),
    );
    assert.equal(df.from, undefined, 'scratch is no base image');
    const c = df.config;
    assert.deepEqual(c.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'APP=/opt/app', 'MODE=prod']);
    assert.deepEqual(c.ExposedPorts, { '53/udp': {}, '7000/tcp': {} });
    assert.equal(c.WorkingDir, '/opt/app');
    assert.equal(c.User, 'nonroot');
    assert.deepEqual(c.Labels, { a: 'b', 'c d': 'e f' });
    assert.deepEqual(c.Entrypoint, ['/usr/bin/redis-server']);
    assert.deepEqual(c.Cmd, ['--port', '${PORT}'], 'exec form is not substituted, as in docker');
    assert.deepEqual(
      df.steps.map((s) => (s.kind === 'WORKDIR' ? s : s.spec)),
      [{ kind: 'WORKDIR', path: '/opt/app', user: undefined, where: 'D:8: WORKDIR' }, { src: 'src/', dest: '/dst/', chownName: '1:2', chmod: 0o755 }],
    );
  });

  it('the shell form is stored as docker stores it; the escape directive changes the continuation character', async () => {
    const df = await parseDockerfile('# escape=`\nFROM scratch\nCMD echo `\n  hi\nHEALTHCHECK --interval=1m30s --retries=2 CMD curl -f http://x/ || exit 1\n', opts());
    assert.deepEqual(df.shellForm, ['D:3: CMD']);
    assert.deepEqual(df.config.Cmd, ['/bin/sh', '-c', 'echo   hi'], 'nothing inserted at the continuation, leading blanks kept');
    assert.deepEqual(df.config.Healthcheck, { Test: ['CMD-SHELL', 'curl -f http://x/ || exit 1'], Interval: 90e9, Retries: 2 });
  });

  it("HEALTHCHECK durations take Go's units, the micro sign too (µs)", async () => {
    const df = await parseDockerfile('FROM scratch\nHEALTHCHECK --interval=1.5ms --timeout=2500\u00b5s --start-period=3000us CMD true\n', opts());
    assert.deepEqual(df.config.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 1.5e6, Timeout: 2.5e6, StartPeriod: 3e6 });
  });

  it('ENV sees the values from before the instruction; single quotes and \\$ are literal; legacy ENV K V keeps spaces', async () => {
    const df = await parseDockerfile('FROM scratch\nENV A=1 B=$A C=\'$A\' D=\\$A E="x\\"y"\nENV F=$A$B\nENV LEG  a   b  "c d"  \nMAINTAINER Jane <j@x>\n', opts());
    assert.deepEqual(df.config.Env?.slice(1), ['A=1', 'B=', 'C=$A', 'D=$A', 'E=x"y', 'F=1', 'LEG=a   b  c d']);
    assert.equal(df.author, 'Jane <j@x>');
  });

  it('ARG scoping: a global ARG is for FROM only until redeclared; automatic platform ARGs; the base image config is inherited', async () => {
    const base: RunConfig = { Env: ['PATH=/usr/bin:/bin', 'HOME=/root'], WorkingDir: '/srv', Cmd: ['sh'] };
    const df = await parseDockerfile(
      'ARG IMG=base\nARG V=global\nFROM ${IMG}\nENV X=${V}-\nARG V\nARG TARGETARCH\nARG TARGETPLATFORM\nENV Y=${V} T=$TARGETARCH P=$TARGETPLATFORM PATH=$PATH:/opt/bin\nWORKDIR sub\nENTRYPOINT ["/x"]\n',
      opts({ platform: arm }, { base }),
    );
    assert.equal(df.from, 'base');
    assert.deepEqual(df.config.Env, ['PATH=/usr/bin:/bin:/opt/bin', 'HOME=/root', 'X=-', 'Y=global', 'T=arm', 'P=linux/arm/v7']);
    assert.equal(df.config.WorkingDir, '/srv/sub');
    assert.equal(df.config.Cmd, undefined, 'ENTRYPOINT drops an inherited CMD');
  });

  it('multi-stage: stages are sources, --target picks one, unreached stages may hold RUN', async () => {
    const text = 'FROM scratch AS build\nRUN make\nFROM scratch AS files\nCOPY a /a\nFROM files AS final\nCOPY --from=files /a /b\nCOPY --from=alpine:3.19 /etc/os-release /\n';
    const df = await parseDockerfile(text, opts());
    assert.deepEqual(
      df.steps.map((s) => s.kind !== 'WORKDIR' && s.spec.from),
      [undefined, { stage: 1 }, { image: 'alpine:3.19' }],
    );
    assert.equal(df.stages[1]?.name, 'files');
    assert.equal(df.stages[0], undefined);
    const t = await parseDockerfile(text, opts({ target: 'FILES' }));
    assert.equal(t.steps.length, 1);
    await assert.rejects(parseDockerfile(text, opts({ target: 'build' })), /^BuildError: D:2: RUN is not supported: ocislim never runs commands/);
  });

  it('errors name the file and line', async () => {
    const cases: [string, RegExp][] = [
      ['FROM scratch\nRUN make\n', /^D:2: RUN is not supported/],
      ['FROM scratch\nFOO x\n', /^D:2: unknown instruction FOO/],
      ['ARG X\nCOPY a /b\nFROM scratch\n', /^D:2: COPY before FROM/],
      ['FROM scratch\nSHELL ["/bin/bash", "-c"]\n', /^D:2: SHELL is not supported: it only matters to RUN/],
      ['FROM scratch\nONBUILD COPY a /\n', /^D:2: ONBUILD is not supported/],
      ['FROM scratch AS first\nCOPY --from=later /a /b\nFROM scratch AS later\nCOPY --from=first /a /b\n', /^D:2: COPY --from=later: stage later needs to be defined before/],
      ['# only a comment\n', /^D:1: no FROM instruction/],
    ];
    for (const [text, re] of cases) await assert.rejects(parseDockerfile(text, opts()), (e: Error) => re.test(e.message), text);
  });
});

describe('builder/dockerfile-lex.ts and shell-expand.ts', () => {
  it('continuations: the escape and the blanks after it go, nothing is inserted; comments and blank lines inside are dropped (blank: a warning)', () => {
    const l = lexDockerfile('FROM scratch\nLABEL b="x \\\n   y"\nENV A=foo\\\nbar\nENV C="x\\\n  # c\n\n  y"\nENV D=a\\\\\n', 'D');
    assert.deepEqual(
      l.instructions.map((i) => i.args),
      ['scratch', 'b="x    y"', 'A=foobar', 'C="x  y"', 'D=a\\\\'],
    );
    assert.deepEqual(l.warnings, ['D:6: empty continuation line (docker warns that this will become an error)']);
  });

  it('substitution as BuildKit does it', () => {
    const env = new Map([
      ['A', 'a'],
      ['E', ''],
      ['P', 'dir/sub/file.tar.gz'],
    ]);
    const cases: [string, string][] = [
      ['$A${A}', 'aa'],
      ["'$A'", '$A'],
      ['"$A \\$A \\"q\\" \\x"', 'a $A "q" \\x'],
      ['\\$A', '$A'],
      ['esc\\ aped', 'esc aped'],
      ['${E:-d} ${E-d} ${U-d} ${A:+alt} ${U:+alt} ${E+set}', 'd  d alt  set'],
      ['${P#*/} ${P##*/} ${P%.*} ${P%%.*} ${P/sub/x} ${P//[.]/_}', 'sub/file.tar.gz file.tar.gz dir/sub/file.tar dir/sub/file dir/x/file.tar.gz dir/sub/file.tar.gz'],
      ['$1 $@ $ x$', '  $ x$'],
      ['${U}end', 'end'],
    ];
    for (const [word, want] of cases) assert.equal(expandWord(word, env), want, word);
    assert.deepEqual(expandWords('80 "$A b" 53/udp', env), ['80', 'a b', '53/udp']);
    assert.throws(() => expandWord('${A', env), /missing '}'/);
    assert.throws(() => expandWord('${U:?is required}', env), /U: is required/);
  });
});
