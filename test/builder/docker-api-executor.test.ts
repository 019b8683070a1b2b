import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BuildCancelledError,
  BuildFailedError,
  DockerApiExecutor,
  type BuildRequest,
} from '../../src/builder/executors/index.ts';
import { startSecuredSlipway } from '../helpers/auth.ts';
import { ContainersWorkspace } from '../helpers/containers.ts';
import { credsOf, type Login } from '../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { setUpExecutorTests, type ExecutorTestSetup } from './executor-fixtures.ts';
import { LineRecorder, startPodmanService, type PodmanService } from './fixtures.ts';

const revision = '0123456789abcdef0123456789abcdef01234567';

describe('DockerApiExecutor against podman system service and a Slipway under test', () => {
  let workspace: ContainersWorkspace;
  let podman: PodmanService;
  let slipway: TestSlipway;
  let builder: Login;
  let executor: DockerApiExecutor;
  let shellBase: string;
  let setup: ExecutorTestSetup;

  beforeAll(async () => {
    workspace = await ContainersWorkspace.create('slipway-builder-podman-');
    [podman, slipway] = await Promise.all([
      startPodmanService(workspace.path('podman'), workspace.env),
      startSecuredSlipway(),
    ]);
    executor = new DockerApiExecutor({ docker: { socketPath: podman.socketPath }, isolation: 'chroot' });
    setup = await setUpExecutorTests(workspace, slipway, executor, revision);
    ({ builder, shellBase } = setup);
  });
  afterAll(async () => {
    await podman?.stop();
    await slipway?.stop();
    await workspace?.remove();
  });

  const newContext = (files: Record<string, string>) => setup.newContext(files);
  const request = (contextDir: string, overrides?: Partial<BuildRequest>) =>
    setup.request(contextDir, overrides);
  const inspect = (reference: string) => setup.inspect(reference);
  /** The paths of a pushed image's files, sorted. */
  const imageFiles = async (reference: string) => [...(await setup.imageFiles(reference)).keys()].sort();

  /** Builds through a socket that counts what goes to the engine; the bytes sent. */
  const buildCounted = async (buildRequest: BuildRequest): Promise<number> => {
    const proxy = await countingSocket(podman.socketPath, workspace.path('podman', 'counted.sock'));
    try {
      const counted = new DockerApiExecutor({ docker: { socketPath: proxy.socketPath } });
      await counted.build(buildRequest, { onLine: () => {} });
      return proxy.sentBytes();
    } finally {
      await proxy.close();
    }
  };
  const bigFile = 'x'.repeat(8 << 20);

  it('builds, pushes every tag with the revision and source labels, and reports the digest', async () => {
    const context = await newContext({
      'build/Dockerfile': 'FROM scratch\nCOPY hello.txt /hello.txt\n',
      'hello.txt': 'hello\n',
    });
    const lines = new LineRecorder();
    const destinations = [`${slipway.host}/acme/app:2.0`, `${slipway.host}/acme/app:latest`];
    const result = await executor.build(
      request(context, {
        dockerfile: 'build/Dockerfile',
        destinations,
        labels: { 'org.example.team': 'platform' },
      }),
      { onLine: lines.onLine },
    );
    expect(result.pushed.map((pushed) => pushed.reference)).toEqual(destinations);
    expect(result.sizeBytes).toBeGreaterThan(0);
    for (const pushed of result.pushed) {
      const image = await inspect(pushed.reference);
      expect(image.digest).toBe(pushed.digest);
      expect(image.labels).toMatchObject({
        'org.opencontainers.image.revision': revision,
        'org.opencontainers.image.source': 'https://git.example.com/acme/app.git',
        'org.example.team': 'platform',
      });
    }
    expect(result.digest).toBe(result.pushed[0]!.digest);
    expect(lines.texts.some((text) => text.includes('COPY hello.txt'))).toBe(true);
  });

  it('leaves what .dockerignore excludes out of the context it sends and of the image', async () => {
    const context = await newContext({
      Dockerfile: 'FROM scratch\nCOPY . /ctx\n',
      '.dockerignore': '# not for the image\nsecret.txt\nlogs/**\n!logs/keep.log\n/big.bin\n',
      'app.txt': 'app\n',
      'secret.txt': 'token\n',
      'logs/today.log': 'noise\n',
      'logs/keep.log': 'kept\n',
      'big.bin': bigFile,
    });
    const destination = `${slipway.host}/acme/app:ignored`;
    const sent = await buildCounted(request(context, { destinations: [destination] }));
    expect(await imageFiles(destination)).toEqual([
      'ctx/.dockerignore',
      'ctx/Dockerfile',
      'ctx/app.txt',
      'ctx/logs/keep.log',
    ]);
    // Podman would apply .dockerignore itself; what matters is that excluded files never leave this machine.
    expect(sent).toBeLessThan(1 << 20);
  });

  it('applies the ignore file beside the Dockerfile in place of .dockerignore', async () => {
    const context = await newContext({
      Dockerfile: 'FROM scratch\nCOPY . /ctx\n',
      'Dockerfile.dockerignore': '*.key\nnotes/\nbig.bin\n',
      '.dockerignore': 'app.txt\n',
      'app.txt': 'app\n',
      'deploy.key': 'secret\n',
      'notes/todo.md': 'notes\n',
      'big.bin': bigFile,
    });
    const destination = `${slipway.host}/acme/app:beside`;
    const sent = await buildCounted(request(context, { destinations: [destination] }));
    expect(await imageFiles(destination)).toEqual([
      'ctx/.dockerignore',
      'ctx/Dockerfile',
      'ctx/Dockerfile.dockerignore',
      'ctx/app.txt',
    ]);
    expect(sent).toBeLessThan(1 << 20);
  });

  it('runs RUN steps with the build arguments and masks the credentials', async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nARG GREETING\nARG TOKEN\nRUN echo "greeting is $GREETING, token=$TOKEN"\n`,
    });
    const lines = new LineRecorder();
    await executor.build(request(context, { buildArgs: { GREETING: 'ahoy', TOKEN: builder.password } }), {
      onLine: lines.onLine,
    });
    expect(lines.texts).toContain('greeting is ahoy, token=***');
    expect(lines.texts.join('\n')).not.toContain(builder.password);
  });

  /** The process ID a RUN step's shell printed as `step pid <pid>`: 1 in a runtime container. */
  const stepPid = (lines: LineRecorder): number | undefined => {
    const printed = lines.texts.map((text) => /^step pid (\d+)$/.exec(text)).find(Boolean);
    return printed ? Number(printed[1]) : undefined;
  };

  it('runs RUN steps with the isolation it was given, not the engine’s runtime', async () => {
    // Under chroot isolation the step shares the engine's PID namespace; a runtime container starts its own.
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nRUN echo "chroot build" && echo "step pid $$"\n`,
    });
    const destination = `${slipway.host}/acme/app:chroot`;
    const lines = new LineRecorder();
    const result = await executor.build(request(context, { destinations: [destination] }), {
      onLine: lines.onLine,
    });
    expect(stepPid(lines)).toBeGreaterThan(1);
    expect((await inspect(destination)).digest).toBe(result.digest);
  });

  it('runs RUN steps with the engine’s runtime when no isolation is set', async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nRUN echo "runtime build" && echo "step pid $$"\n`,
    });
    const destination = `${slipway.host}/acme/app:runtime`;
    const lines = new LineRecorder();
    const engineDefault = new DockerApiExecutor({ docker: { socketPath: podman.socketPath } });
    const result = await engineDefault.build(request(context, { destinations: [destination] }), {
      onLine: lines.onLine,
    });
    expect(stepPid(lines)).toBe(1);
    expect((await inspect(destination)).digest).toBe(result.digest);
  });

  it('rejects a failing build with the engine’s error and the last lines', async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nRUN echo "about to fail" && exit 3\n`,
    });
    const error = await executor.build(request(context), { onLine: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildFailedError);
    expect((error as BuildFailedError).phase).toBe('build');
    expect((error as Error).message).toContain('about to fail');
  });

  it('stops following a build when cancelled and pushes nothing', async () => {
    const context = await newContext({
      Dockerfile: `FROM ${shellBase}\nRUN echo "slow step started" && sleep 6\n`,
    });
    const destination = `${slipway.host}/acme/app:cancelled`;
    const lines = new LineRecorder();
    const controller = new AbortController();
    const building = executor.build(request(context, { destinations: [destination] }), {
      signal: controller.signal,
      onLine: lines.onLine,
    });
    building.catch(() => {});
    await lines.waitFor(/^slow step started$/);
    const cancelledAt = Date.now();
    controller.abort();
    await expect(building).rejects.toBeInstanceOf(BuildCancelledError);
    expect(Date.now() - cancelledAt).toBeLessThan(2_000);
    // Docker stops a build whose connection closes; Podman 4 lets the step run to its end, unpushed.
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    const inspected = await workspace.skopeoRaw([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      credsOf(builder),
      `docker://${destination}`,
    ]);
    expect(inspected.code).not.toBe(0);
  });
});

/** A unix socket that forwards to `target` and counts the bytes clients send through it. */
async function countingSocket(
  target: string,
  socketPath: string,
): Promise<{ socketPath: string; sentBytes(): number; close(): Promise<void> }> {
  let sent = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const engine = connect(target);
    open.add(client).add(engine);
    client.once('close', () => open.delete(client));
    engine.once('close', () => open.delete(engine));
    client.on('data', (chunk: Buffer) => (sent += chunk.length));
    client.pipe(engine).pipe(client);
    client.on('error', () => engine.destroy());
    engine.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    sentBytes: () => sent,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}
