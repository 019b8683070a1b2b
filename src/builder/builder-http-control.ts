import { Agent, request, type Dispatcher } from 'undici';
import type { BuildEnd, WorkPhase } from './build-store.ts';
import type { BuildControl, BuilderAssignment, BuilderHello } from './build-control.ts';

export const builderProtocolPath = '/api/v1/builder';

/** The gateway refused or failed a builder's request for another reason than a lost build. */
export class BuilderProtocolError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface HttpBuildControlOptions {
  /** The gateway's base URL, e.g. https://registry.example.com. */
  gateway: string;
  /** The shared builder secret (builds.builderSecret). */
  secret: string;
  /** How long one request may take. Default 30 s. */
  timeoutMs?: number;
}

/**
 * A remote builder's side of the builder protocol (`/api/v1/builder/…`): 409 means the builder no
 * longer holds the build, which the `BuildControl` contract answers as null or false.
 */
export class HttpBuildControl implements BuildControl {
  readonly #base: string;
  readonly #secret: string;
  readonly #dispatcher: Dispatcher;

  constructor(options: HttpBuildControlOptions) {
    this.#base = options.gateway.replace(/\/+$/, '') + builderProtocolPath;
    this.#secret = options.secret;
    const timeout = options.timeoutMs ?? 30_000;
    this.#dispatcher = new Agent({ headersTimeout: timeout, bodyTimeout: timeout, connectTimeout: timeout });
  }

  async hello(): Promise<BuilderHello> {
    return (await this.#call<BuilderHello>('GET', '/hello'))!;
  }

  claim(buildId: string, builder: string): Promise<BuilderAssignment | null> {
    return this.#call<BuilderAssignment>('POST', `/builds/${encodeURIComponent(buildId)}/claim`, { builder });
  }

  heartbeat(buildId: string, builder: string): Promise<{ cancel: boolean } | null> {
    return this.#call<{ cancel: boolean }>('POST', `/builds/${encodeURIComponent(buildId)}/heartbeat`, {
      builder,
    });
  }

  async phase(
    buildId: string,
    builder: string,
    phase: WorkPhase,
    phaseMs: Partial<Record<WorkPhase, number>>,
  ): Promise<boolean> {
    const path = `/builds/${encodeURIComponent(buildId)}/phase`;
    return (await this.#call('POST', path, { builder, phase, phaseMs })) !== null;
  }

  async finish(buildId: string, builder: string, end: BuildEnd): Promise<boolean> {
    const path = `/builds/${encodeURIComponent(buildId)}/finish`;
    return (await this.#call('POST', path, { builder, end })) !== null;
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }

  /** The answer's JSON (`{}` for 204), or null on 409. */
  async #call<T>(method: 'GET' | 'POST', path: string, body?: object): Promise<T | null> {
    const response = await request(this.#base + path, {
      method,
      dispatcher: this.#dispatcher,
      headers: {
        authorization: `Bearer ${this.#secret}`,
        ...(body && { 'content-type': 'application/json' }),
      },
      ...(body && { body: JSON.stringify(body) }),
    });
    const text = await response.body.text();
    if (response.statusCode === 409) return null;
    if (response.statusCode >= 300) {
      throw new BuilderProtocolError(
        response.statusCode,
        `the gateway answered ${method} ${builderProtocolPath}${path} with HTTP ${response.statusCode}: ${errorMessage(text)}`,
      );
    }
    return (text === '' ? {} : JSON.parse(text)) as T;
  }
}

function errorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } };
    return parsed.error?.message ?? body.slice(0, 500);
  } catch {
    return body.slice(0, 500);
  }
}
