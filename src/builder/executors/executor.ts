import { SlipwayError } from '../../errors.ts';
import type { OutputStream } from '../output/output-stream.ts';

export type { OutputStream } from '../output/output-stream.ts';

/** Push credentials for the registry the image goes to: a user (or robot) and its short-lived token. */
export interface RegistryCredentials {
  username: string;
  token: string;
}

/** A registry that FROM images are pulled through instead of the one they name. */
export interface PullMirror {
  /** The registry named in FROM, e.g. `docker.io`. */
  registry: string;
  /** Where to pull it from instead: host[:port] and an optional path prefix, e.g. `slipway.example/dockerhub`. */
  mirror: string;
}

export interface BuildRequest {
  /** The cloned source tree, used as the build context. */
  contextDir: string;
  /** The Dockerfile, relative to the context; it must not lead outside it. Default `Dockerfile`. */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  /**
   * Labels to set on the image. The executor adds `org.opencontainers.image.revision` and
   * `org.opencontainers.image.source` from `source` itself, and those two win over any given here.
   */
  labels?: Record<string, string>;
  /** What the image was built from. A user or password in the URL is left out of the label. */
  source: { revision: string; url: string };
  /** Where to push the image: `host[:port]/repository:tag`, at least one. */
  destinations: string[];
  /** Credentials for the destination registries (also used for FROM images pulled from them). */
  credentials?: RegistryCredentials;
  /** Verify the registries' TLS certificates; false allows plain HTTP too. Default true. */
  tlsVerify?: boolean;
  /** Registries that FROM images are pulled through. Not every executor can apply them per build. */
  pullMirrors?: PullMirror[];
  /** Values masked in the output besides the credentials, e.g. secret build arguments. */
  secrets?: string[];
}

/** Receives each line of output, masked, without its newline. It must not throw. */
export type LineListener = (stream: OutputStream, text: string) => void;

/** The steps of `Executor.build`, announced to `onPhase` as each starts. */
export type ExecutorPhase = 'build' | 'push';

export interface BuildOptions {
  /** Aborting it stops the build (or the push) and the build rejects with `BuildCancelledError`. */
  signal?: AbortSignal;
  onLine: LineListener;
  /** Told as the build and then the push start. It must not throw. */
  onPhase?: (phase: ExecutorPhase) => void;
}

export interface PushedReference {
  reference: string;
  /** The manifest digest the registry received. */
  digest: string;
}

export interface BuildResult {
  /** The manifest digest of the image (as pushed to the first destination). */
  digest: string;
  pushed: PushedReference[];
  /** Uncompressed size of the image (config and layers) when the executor can tell it. */
  sizeBytes?: number;
  /** How long each phase took, in milliseconds. */
  durations: { build: number; push: number };
}

export interface Executor {
  /** Builds the request's image and pushes it to every destination. */
  build(request: BuildRequest, options: BuildOptions): Promise<BuildResult>;
}

export class InvalidBuildRequestError extends SlipwayError {
  constructor(message: string) {
    super('SLW_ERR_BUILD_REQUEST', message);
  }
}

export class BuildCancelledError extends SlipwayError {
  constructor(phase: string) {
    super('SLW_ERR_BUILD_CANCELLED', `the build was cancelled during ${phase}`);
  }
}

export class BuildFailedError extends SlipwayError {
  readonly phase: string;
  /** The last lines of output (masked) before the failure. */
  readonly outputTail: string[];

  constructor(phase: string, reason: string, outputTail: string[], options?: ErrorOptions) {
    super(
      'SLW_ERR_BUILD_FAILED',
      `${phase} failed: ${reason}${outputTail.length ? `\n${outputTail.join('\n')}` : ''}`,
      options,
    );
    this.phase = phase;
    this.outputTail = outputTail;
  }
}
