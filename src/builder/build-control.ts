import type { CloneSecrets } from '../triggers/trigger-store.ts';
import type { BuildAssignment, BuildService } from './build-service.ts';
import type { BuildEnd, WorkPhase } from './build-store.ts';

/** Where a builder finds its work: the queue and log keys in Redis, and the registry it pushes to. */
export interface BuilderHello {
  /** The BullMQ prefix of the `builds` queue. */
  queuePrefix: string;
  /** The prefix of the builds' log streams in Redis. */
  logKeyPrefix: string;
  /** host[:port] of the registry builds push to. */
  registry: string;
  /** Whether the registry is served over https; builders talk plain HTTP to it otherwise. */
  registryTls: boolean;
}

/** The part of a build a builder needs to run it. */
export interface AssignedBuild {
  id: string;
  repository: string;
  /** The trigger it was started from; null for a manual build without one. */
  triggerId: string | null;
  cloneUrl: string;
  ref: string | null;
  commit: string | null;
  dockerfile: string;
  context: string;
  buildArgs: Record<string, string>;
  tags: string[];
}

/** A claimed build, as a builder receives it (in process or over HTTP). */
export interface BuilderAssignment {
  build: AssignedBuild;
  clone: CloneSecrets;
  destinations: string[];
  registry: string;
  push: { username: string; token: string };
  /** ISO 8601. */
  deadline: string;
  heartbeatSeconds: number;
}

/**
 * How a builder talks to the gateway about its builds. Every call but `hello` names the builder, and
 * answers null or false once the builder no longer holds the build (it was swept, or another took it).
 */
export interface BuildControl {
  hello(): Promise<BuilderHello>;
  claim(buildId: string, builder: string): Promise<BuilderAssignment | null>;
  heartbeat(buildId: string, builder: string): Promise<{ cancel: boolean } | null>;
  phase(
    buildId: string,
    builder: string,
    phase: WorkPhase,
    phaseMs: Partial<Record<WorkPhase, number>>,
  ): Promise<boolean>;
  finish(buildId: string, builder: string, end: BuildEnd): Promise<boolean>;
}

export function toBuilderAssignment(assignment: BuildAssignment): BuilderAssignment {
  const { build } = assignment;
  return {
    build: {
      id: build.id,
      repository: build.repository,
      triggerId: build.triggerId,
      cloneUrl: build.cloneUrl,
      ref: build.ref,
      commit: build.commit,
      dockerfile: build.dockerfile,
      context: build.context,
      buildArgs: build.buildArgs,
      tags: build.tags,
    },
    clone: assignment.clone,
    destinations: assignment.destinations,
    registry: assignment.registry,
    push: assignment.push,
    deadline: assignment.deadline,
    heartbeatSeconds: assignment.heartbeatSeconds,
  };
}

/** The builder inside `slipway serve`: it calls the build service directly. */
export class InProcessBuildControl implements BuildControl {
  readonly #service: BuildService;
  readonly #hello: () => BuilderHello;

  constructor(service: BuildService, hello: () => BuilderHello) {
    this.#service = service;
    this.#hello = hello;
  }

  hello(): Promise<BuilderHello> {
    return Promise.resolve(this.#hello());
  }

  async claim(buildId: string, builder: string): Promise<BuilderAssignment | null> {
    const assignment = await this.#service.claim(buildId, builder);
    return assignment && toBuilderAssignment(assignment);
  }

  heartbeat(buildId: string, builder: string): Promise<{ cancel: boolean } | null> {
    return this.#service.heartbeat(buildId, builder);
  }

  phase(
    buildId: string,
    builder: string,
    phase: WorkPhase,
    phaseMs: Partial<Record<WorkPhase, number>>,
  ): Promise<boolean> {
    return this.#service.phase(buildId, builder, phase, phaseMs);
  }

  async finish(buildId: string, builder: string, end: BuildEnd): Promise<boolean> {
    return (await this.#service.finish(buildId, builder, end)) !== null;
  }
}

/** What a gateway tells its builders, from its public URL and its Redis prefixes. */
export function builderHello(publicUrl: string, prefixes: { queue: string; logKey: string }): BuilderHello {
  const url = new URL(publicUrl);
  return {
    queuePrefix: prefixes.queue,
    logKeyPrefix: prefixes.logKey,
    registry: url.host,
    registryTls: url.protocol === 'https:',
  };
}
