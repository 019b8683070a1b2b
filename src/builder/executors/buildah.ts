import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { readBuildIgnore } from './build-ignore.ts';
import { ExecutorOutput } from './executor-output.ts';
import type { BuildOptions, BuildRequest, BuildResult, Executor, PushedReference } from './executor.ts';
import { RegistryFiles } from './registry-files.ts';
import { prepareBuild } from './request.ts';
import { runStreamed } from './run-process.ts';

export interface BuildahExecutorOptions {
  /** The buildah binary; default `buildah` from PATH. */
  buildah?: string;
  /** `--isolation`: `oci` (buildah's default), `chroot` or `rootless`. */
  isolation?: string;
  /** `--storage-driver`, e.g. `overlay` or `vfs`. */
  storageDriver?: string;
  /** `--root`: where images and the layer cache are stored. */
  root?: string;
  /** `--runroot`: buildah's state while it runs. */
  runroot?: string;
  /** Cache each step's layer (`--layers`) so that later builds reuse them. Default true. */
  layers?: boolean;
  /** `--format` of the built image: `oci` (default) or `docker`. */
  format?: 'oci' | 'docker';
  /** `--signature-policy` for pulls and pushes, when not the machine's policy.json. */
  signaturePolicy?: string;
  /** The environment buildah runs in; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** After cancelling, how long buildah gets to stop its steps before it is killed. Default 10 s. */
  killGraceMs?: number;
}

/**
 * Environment variables that buildah, its libraries, the Go runtime or the C library read. A build
 * argument of one of these names (HTTP_PROXY and the like are Docker's predefined ones) would change how
 * buildah itself runs if it came through the environment.
 */
const variablesBuildahReads = new Set([
  ...['PATH', 'HOME', 'TMPDIR', 'USER', 'LOGNAME', 'SHELL', 'TZ', 'LANG', 'LANGUAGE', 'NOTIFY_SOCKET'],
  ...['REGISTRY_AUTH_FILE', 'STORAGE_DRIVER', 'STORAGE_OPTS'],
  ...['GODEBUG', 'GOGC', 'GOMAXPROCS', 'GOMEMLIMIT', 'GOTRACEBACK'],
  ...['HTTP', 'HTTPS', 'FTP', 'ALL', 'NO'].flatMap((proxy) => [
    `${proxy}_PROXY`,
    `${proxy.toLowerCase()}_proxy`,
  ]),
]);
const prefixesBuildahReads = /^(?:_?BUILDAH|_?CONTAINERS|XDG|LD|LC|DOCKER|SSL|DBUS|SYSTEMD)_/;

/** Whether buildah reads this variable itself, so that a build argument of this name must not come through its environment. */
export function buildahReadsVariable(name: string): boolean {
  return variablesBuildahReads.has(name) || prefixesBuildahReads.test(name);
}

/**
 * `--build-arg` options and the environment that carries their values. A build argument may be a token:
 * only its name goes on the command line, which every user of the machine can read, and buildah takes the
 * value of `--build-arg NAME` from its environment. Names buildah reads itself go on the command line
 * whole, as they always did.
 */
function buildArgOptions(buildArgs: Record<string, string>): { args: string[]; env: Record<string, string> } {
  const args: string[] = [];
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(buildArgs)) {
    if (buildahReadsVariable(name)) {
      args.push('--build-arg', `${name}=${value}`);
    } else {
      args.push('--build-arg', name);
      env[name] = value;
    }
  }
  return { args, env };
}

/**
 * Builds with `buildah bud` and pushes with `buildah push`. The image is built under a name of its own in
 * local storage and removed after the push; the step layers stay as the layer cache.
 */
export class BuildahExecutor implements Executor {
  readonly #options: BuildahExecutorOptions;

  constructor(options: BuildahExecutorOptions = {}) {
    this.#options = options;
  }

  async build(request: BuildRequest, { signal, onLine, onPhase }: BuildOptions): Promise<BuildResult> {
    const prepared = await prepareBuild(request);
    const output = new ExecutorOutput(prepared.masker, onLine);
    const tlsVerify = `--tls-verify=${request.tlsVerify ?? true}`;
    const files = await RegistryFiles.create();
    const localName = `localhost/slipway-build-${randomUUID()}`;
    try {
      const env: NodeJS.ProcessEnv = { ...(this.#options.env ?? process.env) };
      const registryArgs: string[] = [tlsVerify];
      if (this.#options.signaturePolicy)
        registryArgs.push('--signature-policy', this.#options.signaturePolicy);
      if (request.credentials) {
        const authFile = await files.writeAuthFile(prepared.registryHosts, request.credentials);
        registryArgs.push('--authfile', authFile);
        env.REGISTRY_AUTH_FILE = authFile;
      }
      if (request.pullMirrors?.length) {
        env.CONTAINERS_REGISTRIES_CONF = await files.writeRegistriesConf(
          request.pullMirrors,
          request.tlsVerify === false,
        );
      }
      const run = (phase: string, args: string[], runEnv = env) =>
        runStreamed({
          command: this.#options.buildah ?? 'buildah',
          args: [...this.#globalArgs(), ...args],
          env: runEnv,
          output,
          phase,
          killGraceMs: this.#options.killGraceMs ?? 10_000,
          ...(signal ? { signal } : {}),
        });

      onPhase?.('build');
      const buildStarted = performance.now();
      // FROM images are pulled with this build's credentials every time: a private base image another
      // build pulled into this builder's storage (with its pull robot) must not serve a build that may
      // not pull it. Layers already stored are not downloaded again.
      const budArgs = [
        'bud',
        '--force-rm',
        '--pull=always',
        '-f',
        prepared.dockerfilePath,
        '-t',
        localName,
        ...registryArgs,
      ];
      // The same ignore file as the Docker API executor applies: buildah 1.28 itself knows only those at
      // the context root, not the one beside the Dockerfile.
      const ignore = await readBuildIgnore(prepared.contextDir, prepared.dockerfile);
      if (ignore.file) budArgs.push('--ignorefile', join(prepared.contextDir, ignore.file));
      if (this.#options.layers ?? true) budArgs.push('--layers');
      if (this.#options.isolation) budArgs.push('--isolation', this.#options.isolation);
      if (this.#options.format) budArgs.push('--format', this.#options.format);
      const buildArgs = buildArgOptions(prepared.buildArgs);
      budArgs.push(...buildArgs.args);
      for (const [name, value] of Object.entries(prepared.labels))
        budArgs.push('--label', `${name}=${value}`);
      await run('build', [...budArgs, prepared.contextDir], { ...env, ...buildArgs.env });
      const build = performance.now() - buildStarted;
      const sizeBytes = await this.#imageSize(localName, env);

      onPhase?.('push');
      const pushStarted = performance.now();
      const pushed: PushedReference[] = [];
      for (const [index, destination] of prepared.destinations.entries()) {
        const digestFile = join(files.dir, `digest-${index}`);
        const pushArgs = ['push', ...registryArgs, '--digestfile', digestFile];
        if (this.#options.format) pushArgs.push('--format', this.#options.format);
        await run(`push to ${destination.reference}`, [
          ...pushArgs,
          localName,
          `docker://${destination.reference}`,
        ]);
        pushed.push({
          reference: destination.reference,
          digest: (await readFile(digestFile, 'utf8')).trim(),
        });
      }
      const push = performance.now() - pushStarted;

      return {
        digest: pushed[0]!.digest,
        pushed,
        ...(sizeBytes !== undefined ? { sizeBytes } : {}),
        durations: { build: Math.round(build), push: Math.round(push) },
      };
    } finally {
      await this.#removeImage(localName);
      await files.remove();
    }
  }

  #globalArgs(): string[] {
    const args: string[] = [];
    if (this.#options.root) args.push('--root', this.#options.root);
    if (this.#options.runroot) args.push('--runroot', this.#options.runroot);
    if (this.#options.storageDriver) args.push('--storage-driver', this.#options.storageDriver);
    return args;
  }

  /** The config and layer sizes of the local (uncompressed) manifest; undefined when buildah cannot tell. */
  async #imageSize(image: string, env: NodeJS.ProcessEnv): Promise<number | undefined> {
    const inspected = await execa(
      this.#options.buildah ?? 'buildah',
      [...this.#globalArgs(), 'inspect', '--type', 'image', '--format', '{{.Manifest}}', image],
      { env, extendEnv: false, reject: false, stdin: 'ignore' },
    );
    if (inspected.failed) return undefined;
    try {
      const manifest = JSON.parse(inspected.stdout) as {
        config?: { size?: number };
        layers?: { size?: number }[];
      };
      return (
        (manifest.config?.size ?? 0) +
        (manifest.layers ?? []).reduce((sum, layer) => sum + (layer.size ?? 0), 0)
      );
    } catch {
      return undefined;
    }
  }

  async #removeImage(image: string): Promise<void> {
    await execa(this.#options.buildah ?? 'buildah', [...this.#globalArgs(), 'rmi', image], {
      env: this.#options.env ?? process.env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
    });
  }
}
