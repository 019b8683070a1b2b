import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { InvalidBuildRequestError, type BuildRequest } from './executor.ts';
import { credentialForms, SecretMasker } from '../output/secret-masker.ts';

export const revisionLabel = 'org.opencontainers.image.revision';
export const sourceLabel = 'org.opencontainers.image.source';

export interface Destination {
  /** `host[:port]/repository:tag` as given. */
  reference: string;
  host: string;
  repository: string;
  tag: string;
}

/** A request checked and resolved, as the executors use it. */
export interface PreparedBuild {
  /** The context directory with symbolic links resolved. */
  contextDir: string;
  /** The Dockerfile's absolute path, inside `contextDir`. */
  dockerfilePath: string;
  /** The Dockerfile's path relative to the context, with `/` separators. */
  dockerfile: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  destinations: Destination[];
  /** The hosts of the destinations, each once: the credentials apply to these. */
  registryHosts: string[];
  masker: SecretMasker;
}

const repositoryPattern =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^\w[\w.-]{0,127}$/;
const hostPattern = /^(?:[\w-]+(?:\.[\w-]+)*|\[[0-9a-f:]+\])(?::\d+)?$/i;

/** As Docker tells a registry host from the first path component: a dot, a port, or `localhost`. */
const isRegistryHost = (host: string) =>
  hostPattern.test(host) && (host.includes('.') || host.includes(':') || host === 'localhost');

export function parseDestination(reference: string): Destination {
  const slash = reference.indexOf('/');
  const colon = reference.lastIndexOf(':');
  const host = slash > 0 ? reference.slice(0, slash) : '';
  if (!isRegistryHost(host) || colon < slash) {
    throw new InvalidBuildRequestError(
      `destination "${reference}" must be host[:port]/repository:tag, with the registry host and a tag`,
    );
  }
  const repository = reference.slice(slash + 1, colon);
  const tag = reference.slice(colon + 1);
  if (!repositoryPattern.test(repository)) {
    throw new InvalidBuildRequestError(`destination "${reference}" has an invalid repository name`);
  }
  if (!tagPattern.test(tag))
    throw new InvalidBuildRequestError(`destination "${reference}" has an invalid tag`);
  return { reference, host, repository, tag };
}

/** The clone URL as it goes into the source label: without a user or password. */
export function sourceUrlForLabel(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // scp-like `git@host:owner/repo.git` carries no password
  }
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

function passwordInUrl(url: string): string[] {
  try {
    const { password } = new URL(url);
    return password ? [password, decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}

/**
 * Checks a request and resolves what the executors need. Rejects a Dockerfile outside the context, also
 * through a symbolic link, since the builder would read it from the builder machine.
 */
export async function prepareBuild(request: BuildRequest): Promise<PreparedBuild> {
  if (request.destinations.length === 0) {
    throw new InvalidBuildRequestError('a build needs at least one destination to push to');
  }
  if (!request.source.revision || !request.source.url) {
    throw new InvalidBuildRequestError('a build needs the source revision and URL for its labels');
  }
  const destinations = request.destinations.map(parseDestination);

  const contextDir = await realpath(request.contextDir).catch(() => {
    throw new InvalidBuildRequestError(`the build context ${request.contextDir} does not exist`);
  });
  const dockerfile = request.dockerfile ?? 'Dockerfile';
  if (isAbsolute(dockerfile) || escapes(contextDir, resolve(contextDir, dockerfile))) {
    throw new InvalidBuildRequestError(`the Dockerfile "${dockerfile}" is not inside the build context`);
  }
  const dockerfilePath = await realpath(resolve(contextDir, dockerfile)).catch(() => {
    throw new InvalidBuildRequestError(`the Dockerfile "${dockerfile}" does not exist in the build context`);
  });
  if (escapes(contextDir, dockerfilePath)) {
    throw new InvalidBuildRequestError(`the Dockerfile "${dockerfile}" leads outside the build context`);
  }

  const secrets = [...(request.secrets ?? []), ...passwordInUrl(request.source.url)];
  if (request.credentials)
    secrets.push(...credentialForms(request.credentials.username, request.credentials.token));

  return {
    contextDir,
    dockerfilePath,
    dockerfile: relative(contextDir, dockerfilePath).split(sep).join('/'),
    buildArgs: { ...request.buildArgs },
    labels: {
      ...request.labels,
      [revisionLabel]: request.source.revision,
      [sourceLabel]: sourceUrlForLabel(request.source.url),
    },
    destinations,
    registryHosts: [...new Set(destinations.map((destination) => destination.host))],
    masker: new SecretMasker(secrets),
  };
}

function escapes(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
}
