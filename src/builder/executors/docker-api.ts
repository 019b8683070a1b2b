import Docker from 'dockerode';
import { packContext } from './build-ignore.ts';
import { ExecutorOutput } from './executor-output.ts';
import {
  BuildCancelledError,
  BuildFailedError,
  type BuildOptions,
  type BuildRequest,
  type BuildResult,
  type Executor,
  type PushedReference,
} from './executor.ts';
import { followProgress, type ProgressOutcome } from './json-progress.ts';
import { libpodBuild, podmanApiVersion, type EngineBuildOptions } from './libpod-build.ts';
import { prepareBuild, type Destination } from './request.ts';

export interface DockerApiExecutorOptions {
  /** The engine: a dockerode client or how to reach one; default dockerode's (DOCKER_HOST or the local socket). */
  docker?: Docker | Docker.DockerOptions;
  /** How RUN steps run: `chroot`, `oci` or `rootless` on Podman; `process` or `hyperv` on Windows. */
  isolation?: string;
}

/**
 * Builds and pushes through the Docker Engine API: Docker, or Podman's `podman system service`. The context
 * goes to the engine as a tar stream, without what the build's ignore file excludes (see `build-ignore.ts`),
 * as the Docker CLI sends it. With an isolation set, a build on Podman goes to its own `/libpod/build`, as
 * its Docker-compatible `/build` ignores `isolation` and runs RUN steps with the OCI runtime (whether the
 * engine is Podman, `GET /version` tells once per executor). Pull mirrors are the engine's own
 * configuration (Docker's `registry-mirrors`, Podman's registries.conf), so a request's `pullMirrors` are
 * not applied here. With `tlsVerify: false`, Podman pulls and pushes over plain HTTP; Docker needs the
 * registry in its `insecure-registries` (loopback addresses are already). Cancelling closes the engine
 * connection: Docker stops the build then, while Podman (4.x) lets the running step finish and pushes
 * nothing.
 */
export class DockerApiExecutor implements Executor {
  readonly #docker: Docker;
  readonly #isolation: string | undefined;
  #podmanApiVersion: Promise<string | undefined> | undefined;

  constructor(options: DockerApiExecutorOptions = {}) {
    this.#docker = options.docker instanceof Docker ? options.docker : new Docker(options.docker);
    this.#isolation = options.isolation;
  }

  async build(request: BuildRequest, { signal, onLine, onPhase }: BuildOptions): Promise<BuildResult> {
    const prepared = await prepareBuild(request);
    const output = new ExecutorOutput(prepared.masker, onLine);
    if (request.pullMirrors?.length) {
      output.line(
        'stderr',
        'Pull mirrors are set on the engine; this build uses the engine’s configuration.',
      );
    }
    const [first, ...others] = prepared.destinations as [Destination, ...Destination[]];
    const tlsVerify = request.tlsVerify ?? true;
    const credentials = request.credentials;
    const createdTags: string[] = [];
    try {
      onPhase?.('build');
      const buildStarted = performance.now();
      const buildOptions: EngineBuildOptions = {
        dockerfile: prepared.dockerfile,
        t: first.reference,
        buildargs: prepared.buildArgs,
        labels: prepared.labels,
        rm: true,
        forcerm: true,
        // FROM images are pulled with this build's credentials every time, as with buildah: an image the
        // engine holds from another build must not serve a build that may not pull it.
        pull: true,
        ...(signal ? { abortSignal: signal } : {}),
        ...(this.#isolation ? { isolation: this.#isolation } : {}),
        ...(tlsVerify ? {} : { tlsVerify: false }),
        ...(credentials
          ? {
              registryconfig: Object.fromEntries(
                prepared.registryHosts.map((host) => [
                  host,
                  { username: credentials.username, password: credentials.token },
                ]),
              ),
            }
          : {}),
      };
      const context = await packContext(prepared.contextDir, prepared.dockerfile);
      createdTags.push(first.reference);
      const built = await this.#follow('build', output, signal, () =>
        this.#startBuild(context, buildOptions),
      );
      if (built.error !== undefined) throw new BuildFailedError('build', built.error, output.tail());
      for (const destination of others) {
        await this.#docker
          .getImage(first.reference)
          .tag({ repo: `${destination.host}/${destination.repository}`, tag: destination.tag });
        createdTags.push(destination.reference);
      }
      const build = performance.now() - buildStarted;
      const inspected = await this.#docker.getImage(first.reference).inspect();

      onPhase?.('push');
      const pushStarted = performance.now();
      const pushed: PushedReference[] = [];
      for (const destination of prepared.destinations) {
        const phase = `push to ${destination.reference}`;
        const pushOptions = {
          tag: destination.tag,
          ...(signal ? { abortSignal: signal } : {}),
          ...(tlsVerify ? {} : { tlsVerify: false }),
          ...(credentials
            ? {
                authconfig: {
                  username: credentials.username,
                  password: credentials.token,
                  serveraddress: destination.host,
                },
              }
            : {}),
        };
        const image = this.#docker.getImage(`${destination.host}/${destination.repository}`);
        const outcome = await this.#follow(phase, output, signal, () => image.push(pushOptions));
        if (outcome.error !== undefined) throw new BuildFailedError(phase, outcome.error, output.tail());
        const digest = pushedDigest(outcome);
        if (digest === undefined) {
          throw new BuildFailedError(phase, 'the engine did not report the pushed digest', output.tail());
        }
        pushed.push({ reference: destination.reference, digest });
      }
      const push = performance.now() - pushStarted;

      return {
        digest: pushed[0]!.digest,
        pushed,
        ...(typeof inspected.Size === 'number' ? { sizeBytes: inspected.Size } : {}),
        durations: { build: Math.round(build), push: Math.round(push) },
      };
    } finally {
      for (const reference of createdTags.reverse()) {
        await this.#docker
          .getImage(reference)
          .remove()
          .catch(() => undefined);
      }
    }
  }

  /** Starts the build: through `/libpod/build` on Podman when an isolation is set, as only that reads it. */
  async #startBuild(
    context: NodeJS.ReadableStream,
    options: EngineBuildOptions,
  ): Promise<NodeJS.ReadableStream> {
    const podmanApi = options.isolation === undefined ? undefined : await this.#podmanApi();
    if (podmanApi !== undefined) return libpodBuild(this.#docker, podmanApi, context, options);
    return this.#docker.buildImage(context, options);
  }

  /** The engine's libpod API version if it is Podman, asked once (again after a failed answer). */
  #podmanApi(): Promise<string | undefined> {
    this.#podmanApiVersion ??= podmanApiVersion(this.#docker).catch((error: unknown) => {
      this.#podmanApiVersion = undefined;
      throw error;
    });
    return this.#podmanApiVersion;
  }

  /** Starts a streamed engine request and follows its progress, turning an abort into `BuildCancelledError`. */
  async #follow(
    phase: string,
    output: ExecutorOutput,
    signal: AbortSignal | undefined,
    start: () => Promise<NodeJS.ReadableStream>,
  ): Promise<ProgressOutcome> {
    if (signal?.aborted) throw new BuildCancelledError(phase);
    try {
      return await followProgress(await start(), output);
    } catch (error) {
      if (signal?.aborted) throw new BuildCancelledError(phase);
      throw new BuildFailedError(phase, output.mask((error as Error).message), output.tail(), {
        cause: error,
      });
    }
  }
}

/**
 * The manifest digest a push reports: Docker sends it in `aux`, Podman only in the closing status line
 * (`<tag>: digest: sha256:… size: N`), which Docker sends too.
 */
function pushedDigest(outcome: ProgressOutcome): string | undefined {
  const fromAux = outcome.aux.map((aux) => aux.Digest).find((value) => typeof value === 'string');
  if (fromAux !== undefined) return fromAux;
  for (const status of outcome.statuses) {
    const match = /\bdigest: (sha256:[0-9a-f]{64})\b/.exec(status);
    if (match) return match[1];
  }
  return undefined;
}
