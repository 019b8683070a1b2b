import type Docker from 'dockerode';

/** What the Docker API executor asks of a build, in the names of the Docker Engine API's `/build`. */
export interface EngineBuildOptions {
  dockerfile: string;
  t: string;
  buildargs: Record<string, string>;
  labels: Record<string, string>;
  rm: boolean;
  forcerm: boolean;
  /** Pull every FROM image, even one the engine holds. */
  pull: boolean;
  isolation?: string;
  tlsVerify?: boolean;
  /** Credentials by registry host, sent as the `X-Registry-Config` header. */
  registryconfig?: Record<string, { username: string; password: string }>;
  abortSignal?: AbortSignal;
}

/** The engine component by which Podman names itself in `GET /version`. */
const podmanComponent = 'Podman Engine';

/** The libpod API version of the engine behind `docker` when it is Podman (as `4.3.1`), else undefined. */
export async function podmanApiVersion(docker: Docker): Promise<string | undefined> {
  const version = await docker.version();
  const podman = (version.Components ?? []).find((component) => component.Name === podmanComponent);
  if (podman === undefined) return undefined;
  const details = podman.Details as { APIVersion?: unknown } | undefined;
  return typeof details?.APIVersion === 'string' ? details.APIVersion : podman.Version;
}

/**
 * Builds through Podman's own `/libpod/build`, which reads `isolation` (its Docker-compatible `/build`
 * ignores it). It names some parameters differently (`pullpolicy` for `pull`) and has other defaults, so
 * this asks for what `/build` does: cache layers and write a Docker manifest. It streams the same
 * JSON progress messages, without `/build`'s closing image ID and "Successfully built" lines.
 */
export function libpodBuild(
  docker: Docker,
  apiVersion: string,
  context: NodeJS.ReadableStream,
  options: EngineBuildOptions,
): Promise<NodeJS.ReadableStream> {
  const { registryconfig, abortSignal, pull, ...query } = options;
  // dockerode's typings leave out the API version its modem prefixes to every path, when given one.
  const clientVersion = (docker.modem as { version?: string }).version;
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        // Podman serves libpod paths only under a version (any, in 4.x): add one if dockerode has none.
        path: `${clientVersion ? '' : `/v${apiVersion}`}/libpod/build?`,
        method: 'POST',
        file: context,
        options: {
          ...query,
          ...(pull ? { pullpolicy: 'always' } : {}),
          layers: true,
          outputformat: 'application/vnd.docker.distribution.manifest.v2+json',
        },
        ...(registryconfig ? { registryconfig } : {}),
        ...(abortSignal ? { abortSignal } : {}),
        isStream: true,
        statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' },
      },
      (error, response) => (error ? reject(error) : resolve(response as NodeJS.ReadableStream)),
    );
  });
}
