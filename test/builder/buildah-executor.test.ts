import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BuildahExecutor,
  BuildCancelledError,
  BuildFailedError,
  type BuildRequest,
} from '../../src/builder/executors/index.ts';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { watchCommandLines } from '../helpers/command-lines.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { credsOf, type IdentityFixtures, type Login } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { setUpExecutorTests, workspaceBuildah, type ExecutorTestSetup } from './executor-fixtures.ts';
import { LineRecorder, processWithArgumentExists } from './fixtures.ts';

const revision = '4f1c0d2e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d';

describe('BuildahExecutor with buildah and a Slipway under test', () => {
  let workspace: ContainersWorkspace;
  let slipway: TestSlipway;
  let fixtures: IdentityFixtures;
  let builder: Login;
  let executor: BuildahExecutor;
  /** A pushed image with a shell, for RUN steps. */
  let shellBase: string;
  let setup: ExecutorTestSetup;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-builder-buildah-');
    slipway = await startSecuredSlipway();
    executor = workspaceBuildah(workspace);
    setup = await setUpExecutorTests(workspace, slipway, executor, revision);
    ({ fixtures, builder, shellBase } = setup);
  });
  afterAll(async () => {
    await slipway?.stop();
    await workspace?.remove();
  });

  const newContext = (files: Record<string, string>) => setup.newContext(files);
  const request = (contextDir: string, overrides?: Partial<BuildRequest>) =>
    setup.request(contextDir, overrides);
  const inspect = (reference: string) => setup.inspect(reference);

  it('builds FROM scratch, pushes every tag with the revision and source labels, and reports the digest', async () => {
    const context = await newContext({
      'docker/app.Dockerfile': 'FROM scratch\nCOPY hello.txt /hello.txt\nLABEL org.example.team=platform\n',
      'hello.txt': 'hello\n',
    });
    const lines = new LineRecorder();
    const destinations = [`${slipway.host}/acme/app:1.0`, `${slipway.host}/acme/app:latest`];
    const result = await executor.build(
      request(context, {
        dockerfile: 'docker/app.Dockerfile',
        destinations,
        labels: { 'org.example.built-by': 'slipway', 'org.opencontainers.image.revision': 'not-this-one' },
        source: { revision, url: 'https://builder:clone-secret@git.example.com/acme/app.git' },
      }),
      { onLine: lines.onLine },
    );

    expect(result.pushed.map((pushed) => pushed.reference)).toEqual(destinations);
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.sizeBytes).toBeGreaterThan(0);
    expect(result.durations.build).toBeGreaterThan(0);
    expect(result.durations.push).toBeGreaterThan(0);
    for (const pushed of result.pushed) {
      const image = await inspect(pushed.reference);
      expect(image.digest).toBe(pushed.digest);
      expect(image.digest).toBe(result.digest);
      expect(image.labels).toMatchObject({
        'org.opencontainers.image.revision': revision,
        'org.opencontainers.image.source': 'https://git.example.com/acme/app.git',
        'org.example.team': 'platform',
        'org.example.built-by': 'slipway',
      });
    }
    expect(lines.texts.some((text) => text.includes('COPY hello.txt'))).toBe(true);
    expect(lines.texts.join('\n')).not.toContain('clone-secret');

    // The built image does not stay behind in the builder's storage; the layer cache does.
    const images = await workspace.buildah([
      '--root',
      workspace.path('builder', 'root'),
      '--runroot',
      workspace.path('builder', 'run'),
      'images',
      '--format',
      '{{.Name}}',
    ]);
    expect(images.stdout).not.toContain('slipway-build-');
  });

  it('runs RUN steps on a base image pulled from the registry, with the build arguments', async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nARG GREETING\nRUN echo "greeting is $GREETING"\n`,
    });
    const lines = new LineRecorder();
    const result = await executor.build(request(context, { buildArgs: { GREETING: 'ahoy' } }), {
      onLine: lines.onLine,
    });
    expect(lines.texts).toContain('greeting is ahoy');
    expect((await inspect(`${slipway.host}/acme/app:latest`)).digest).toBe(result.digest);
  });

  it('gives build arguments their exact values without putting them on any command line', async () => {
    const token = `tok en=${randomUUID()} "quoted" 'and' \\ back\nnext line=ünï\n`;
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nARG TOKEN\nARG EMPTY\nRUN printf '%s' "$TOKEN" > /token && printf '[%s]' "$EMPTY" > /empty\n`,
    });
    const watch = watchCommandLines();
    const result = await executor
      .build(request(context, { buildArgs: { TOKEN: token, EMPTY: '' } }), { onLine: () => {} })
      .finally(() => watch.stop());
    const seen = await watch.stop();

    expect((await inspect(`${slipway.host}/acme/app:latest`)).digest).toBe(result.digest);
    const files = await setup.imageFiles(`${slipway.host}/acme/app:latest`);
    expect(files.get('token')?.toString('utf8')).toBe(token);
    expect(files.get('empty')?.toString('utf8')).toBe('[]');

    expect(seen.some((args) => args.includes('bud'))).toBe(true);
    const tokenPart = token.split('\n')[0]!;
    expect(seen.filter((args) => args.some((arg) => arg.includes(tokenPart)))).toEqual([]);
  });

  it("passes build arguments named like buildah's own settings (HTTPS_PROXY) without changing how buildah runs", async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nARG HTTPS_PROXY\nARG TMPDIR\nRUN printf '%s|%s' "$HTTPS_PROXY" "$TMPDIR" > /proxy\n`,
    });
    const proxy = 'http://proxy.invalid:3128';
    const result = await executor.build(
      request(context, { buildArgs: { HTTPS_PROXY: proxy, TMPDIR: '/nonexistent/tmp' } }),
      { onLine: () => {} },
    );
    expect((await inspect(`${slipway.host}/acme/app:latest`)).digest).toBe(result.digest);
    const files = await setup.imageFiles(`${slipway.host}/acme/app:latest`);
    expect(files.get('proxy')?.toString('utf8')).toBe(`${proxy}|/nonexistent/tmp`);
  });

  it('leaves out what the ignore file beside the Dockerfile excludes, in place of .dockerignore', async () => {
    const context = await newContext({
      'docker/app.Dockerfile': 'FROM scratch\nCOPY . /ctx\n',
      'docker/app.Dockerfile.dockerignore': 'secret.txt\nlogs/**\n!logs/keep.log\n',
      '.dockerignore': 'app.txt\n',
      'app.txt': 'app\n',
      'secret.txt': 'secret\n',
      'logs/a.log': 'a\n',
      'logs/keep.log': 'keep\n',
    });
    const destination = `${slipway.host}/acme/app:ignored`;
    await executor.build(
      request(context, { dockerfile: 'docker/app.Dockerfile', destinations: [destination] }),
      {
        onLine: () => {},
      },
    );
    const files = [...(await setup.imageFiles(destination)).keys()].filter((path) => !path.endsWith('/'));
    expect(files.sort()).toEqual([
      'ctx/.dockerignore',
      'ctx/app.txt',
      'ctx/docker/app.Dockerfile',
      'ctx/docker/app.Dockerfile.dockerignore',
      'ctx/logs/keep.log',
    ]);
  });

  it('pulls FROM images through a pull mirror', async () => {
    const context = await newContext({
      Dockerfile: 'FROM mirrored.example/base:1\nRUN cat /etc/hostname || true\n',
    });
    const lines = new LineRecorder();
    await executor.build(
      request(context, { pullMirrors: [{ registry: 'mirrored.example', mirror: `${slipway.host}/acme` }] }),
      { onLine: lines.onLine },
    );
    expect(lines.texts.some((text) => text.includes('mirrored.example/base:1'))).toBe(true);
  });

  it('masks the credentials and the given secrets in every line', async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nARG TOKEN\nARG OTHER\nRUN echo "token=$TOKEN other=$OTHER"\n`,
    });
    const lines = new LineRecorder();
    await executor.build(
      request(context, {
        buildArgs: { TOKEN: builder.password, OTHER: 'sesame-42' },
        secrets: ['sesame-42'],
      }),
      { onLine: lines.onLine },
    );
    expect(lines.texts, lines.texts.join('\n')).toContain('token=*** other=***');
    const all = lines.texts.join('\n');
    expect(all).not.toContain(builder.password);
    expect(all).not.toContain(Buffer.from(credsOf(builder)).toString('base64'));
    expect(all).not.toContain('sesame-42');
  });

  it('rejects a failing build with its last lines of output', async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nRUN echo "about to fail" && exit 3\n`,
    });
    const lines = new LineRecorder();
    const error = await executor.build(request(context), { onLine: lines.onLine }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildFailedError);
    expect((error as BuildFailedError).phase).toBe('build');
    expect((error as Error).message).toContain('about to fail');
    expect((error as BuildFailedError).outputTail.join('\n')).toMatch(/exit status 3/);
    expect(lines.lines.some((line) => line.stream === 'stderr')).toBe(true);
  });

  it('rejects a push the credentials do not allow', async () => {
    await fixtures.repository('acme/other');
    const context = await newContext({ Dockerfile: 'FROM scratch\nCOPY . /\n', 'a.txt': 'a' });
    const error = await executor
      .build(request(context, { destinations: [`${slipway.host}/acme/other:1`] }), { onLine: () => {} })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildFailedError);
    expect((error as BuildFailedError).phase).toBe(`push to ${slipway.host}/acme/other:1`);
    expect((error as Error).message).toMatch(/denied|unauthorized|authentication required/i);
  });

  it('stops a running build promptly when cancelled, RUN step included', async () => {
    const marker = '29.4817';
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nRUN echo "slow step started" && sleep ${marker}\n`,
    });
    const lines = new LineRecorder();
    const controller = new AbortController();
    const building = executor.build(request(context), { signal: controller.signal, onLine: lines.onLine });
    building.catch(() => {});
    await lines.waitFor(/^slow step started$/);
    expect(await processWithArgumentExists(marker)).toBe(true);
    const cancelledAt = Date.now();
    controller.abort();
    await expect(building).rejects.toBeInstanceOf(BuildCancelledError);
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);
    expect(await processWithArgumentExists(marker)).toBe(false);
  });
});
