import { mkdir } from 'node:fs/promises';
import { BuildahExecutor, type BuildRequest, type Executor } from '../../src/builder/executors/index.ts';
import type { ContainersWorkspace } from '../helpers/containers.ts';
import { credsOf, IdentityFixtures, type Login } from '../helpers/identity-fixtures.ts';
import { OciLayout, sha256, tarFiles } from '../helpers/oci-layout.ts';
import type { TestSlipway } from '../helpers/slipway.ts';
import { hostShellRootfs, writeContext } from './fixtures.ts';

/** buildah (chroot, vfs) with its storage in the workspace, giving a cancelled build 2 s to stop. */
export function workspaceBuildah(workspace: ContainersWorkspace): BuildahExecutor {
  return new BuildahExecutor({
    isolation: 'chroot',
    storageDriver: 'vfs',
    root: workspace.path('builder', 'root'),
    runroot: workspace.path('builder', 'run'),
    signaturePolicy: workspace.policy,
    env: workspace.env,
    killGraceMs: 2_000,
  });
}

/** A build context in the workspace for an image with a shell (see `hostShellRootfs`); its directory. */
export async function shellBaseContext(workspace: ContainersWorkspace): Promise<string> {
  const base = workspace.path('contexts', 'base');
  await hostShellRootfs(`${base}/rootfs`);
  await writeContext(base, { Dockerfile: 'FROM scratch\nCOPY rootfs/ /\n' });
  return base;
}

/** What an executor's tests share, once `setUpExecutorTests` set it up. */
export interface ExecutorTestSetup {
  fixtures: IdentityFixtures;
  /** The robot `acme+builder`, which may push to `acme/app` and `acme/base`. */
  builder: Login;
  /** A pushed image with a shell, for RUN steps: `acme/base:1`. */
  shellBase: string;
  /** A new build context in the workspace with these files; its directory. */
  newContext(files: Record<string, string>): Promise<string>;
  /** A request to build `contextDir` at `revision` into `acme/app:latest` as the builder robot. */
  request(contextDir: string, overrides?: Partial<BuildRequest>): BuildRequest;
  /** The digest of a pushed image's manifest and its labels, as the builder robot reads them. */
  inspect(reference: string): Promise<{ digest: string; labels: Record<string, string> }>;
  /** The regular files of a pushed image's layers, by path (without the leading /), later layers winning. */
  imageFiles(reference: string): Promise<Map<string, Buffer>>;
}

/**
 * Sets up a secured Slipway for an executor's tests: the organization `acme` with the repositories
 * `acme/app` and `acme/base` and a robot that may write to both, and a base image with a shell that
 * `executor` builds and pushes as `acme/base:1`.
 */
export async function setUpExecutorTests(
  workspace: ContainersWorkspace,
  slipway: TestSlipway,
  executor: Executor,
  revision: string,
): Promise<ExecutorTestSetup> {
  const fixtures = await IdentityFixtures.of(slipway);
  await fixtures.organization('acme');
  await fixtures.repository('acme/app');
  await fixtures.repository('acme/base');
  const builder = await fixtures.robot('acme', 'builder');
  await fixtures.grant('acme/app', { user: builder.username }, 'write');
  await fixtures.grant('acme/base', { user: builder.username }, 'write');

  let contexts = 0;
  const newContext = async (files: Record<string, string>) => {
    const dir = workspace.path('contexts', `ctx-${++contexts}`);
    await mkdir(dir, { recursive: true });
    return writeContext(dir, files);
  };
  const request = (contextDir: string, overrides: Partial<BuildRequest> = {}): BuildRequest => ({
    contextDir,
    source: { revision, url: 'https://git.example.com/acme/app.git' },
    destinations: [`${slipway.host}/acme/app:latest`],
    credentials: { username: builder.username, token: builder.password },
    tlsVerify: false,
    ...overrides,
  });
  const inspect = async (reference: string) => {
    const creds = ['--tls-verify=false', '--creds', credsOf(builder)];
    const raw = (await workspace.skopeo(['inspect', '--raw', ...creds, `docker://${reference}`])).stdoutBytes;
    const config = JSON.parse(
      (await workspace.skopeo(['inspect', ...creds, `docker://${reference}`])).stdout,
    ) as {
      Labels: Record<string, string>;
    };
    return { digest: sha256(raw), labels: config.Labels };
  };

  let layouts = 0;
  const imageFiles = async (reference: string) => {
    const layout = new OciLayout(workspace.path('out', `image-${++layouts}`));
    await workspace.skopeo([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      credsOf(builder),
      `docker://${reference}`,
      `oci:${layout.dir}:pulled`,
    ]);
    const manifest = await layout.manifest((await layout.descriptor('pulled')).digest);
    const files = new Map<string, Buffer>();
    for (const layer of manifest.layers ?? []) {
      for (const [path, content] of tarFiles(await layout.blob(layer.digest))) files.set(path, content);
    }
    return files;
  };

  const shellBase = `${slipway.host}/acme/base:1`;
  await executor.build(request(await shellBaseContext(workspace), { destinations: [shellBase] }), {
    onLine: () => {},
  });
  return { fixtures, builder, shellBase, newContext, request, inspect, imageFiles };
}
