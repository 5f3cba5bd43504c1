import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDockerfile } from '../../src/builder/dockerfile.js';

describe('builder/dockerfile.ts parseDockerfile', () => {
  it('instructions, continuations, comments, ARG and ENV substitution, build args', () => {
    const df = parseDockerfile(
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
      'Dockerfile',
      { PORT: '7000' },
    );
    assert.equal(df.from, undefined, 'scratch is no base image');
    assert.deepEqual(df.env, ['APP=/opt/app', 'MODE=prod']);
    assert.deepEqual(df.expose, ['7000', '53/udp']);
    assert.equal(df.workdir, '/opt/app');
    assert.equal(df.user, 'nonroot');
    assert.deepEqual(df.labels, { a: 'b', 'c d': 'e f' });
    assert.deepEqual(df.entrypoint, ['/usr/bin/redis-server']);
    assert.deepEqual(df.cmd, ['--port', '${PORT}'], 'exec form is not substituted, as in docker');
    assert.deepEqual(df.copies, [{ src: 'src/', dest: '/dst/', chown: { uid: 1, gid: 2 }, chmod: 0o755 }]);
  });

  it('shell form is noted for the /bin/sh check; the escape directive changes the continuation character', () => {
    const df = parseDockerfile('# escape=`\nFROM scratch\nCMD echo `\n  hi\n', 'D', {});
    assert.deepEqual(df.shellForm.map((s) => s.instruction), ['CMD']);
    assert.deepEqual(df.cmd?.slice(0, 2), ['/bin/sh', '-c']);
    assert.match(df.cmd![2], /^echo +hi$/);
  });

  it('errors name the file and line', () => {
    const cases: [string, RegExp][] = [
      ['FROM scratch\nRUN make\n', /^D:2: RUN is not supported/],
      ['FROM scratch\nFOO x\n', /^D:2: unknown instruction FOO/],
      ['ARG X\nCOPY a /b\nFROM scratch\n', /^D:2: COPY before FROM/],
      ['FROM a\nFROM b\n', /^D:2: multi-stage builds/],
      ['# only a comment\nCOPY a /b\n', /^D:\d+: no FROM instruction/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseDockerfile(text, 'D', {}), (e: Error) => re.test(e.message), text);
  });
});
