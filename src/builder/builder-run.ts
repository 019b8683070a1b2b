import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Redis } from 'ioredis';
import { messageOf } from '../errors.ts';
import type { BuildControl, BuilderAssignment } from './build-control.ts';
import type { BuildEnd, WorkPhase } from './build-store.ts';
import {
  BuildCancelledError,
  BuildFailedError,
  InvalidBuildRequestError,
  type Executor,
  type PullMirror,
} from './executors/index.ts';
import { CheckoutError, checkoutCommit } from './git-checkout.ts';
import { BuildLogWriter } from './logs/writer.ts';
import type { OutputStream } from './output/output-stream.ts';
import { credentialForms, SecretMasker } from './output/secret-masker.ts';
import { pullDeniedHint } from './pull-denied-hint.ts';

/** Why a running build was stopped from outside its own steps. */
export type StopReason = 'cancelled' | 'timeout' | 'lost' | 'shutdown';

export interface BuildRunContext {
  builder: string;
  control: BuildControl;
  executor: Executor;
  /** A client shared by the builds of this process, for their log streams. */
  logRedis: Redis;
  logKeyPrefix: string;
  /** Where checkouts are made, one temporary directory per build. */
  workDir: string;
  tlsVerify: boolean;
  pullMirrors: PullMirror[];
  git?: string;
  /** For what the build log cannot say: lost builds, failed reports. */
  warn: (fields: object, message: string) => void;
}

/**
 * One claimed build, from checkout to its end: phases go to the gateway and to the log stream, every
 * output line (masked) to the log, heartbeats keep the claim and bring cancellations; the end is
 * written to the log before it is reported, since the gateway archives the log when the build ends.
 */
export class BuildRun {
  readonly #context: BuildRunContext;
  readonly #assignment: BuilderAssignment;
  readonly #abort = new AbortController();
  readonly #log: BuildLogWriter;
  readonly #phaseMs: Partial<Record<WorkPhase, number>> = {};
  #phase: WorkPhase = 'cloning';
  #phaseStarted = performance.now();
  #stopReason: StopReason | undefined;
  /** Phase reports still on their way, awaited before the end is reported. */
  #reporting: Promise<void> = Promise.resolve();

  constructor(context: BuildRunContext, assignment: BuilderAssignment) {
    this.#context = context;
    this.#assignment = assignment;
    const { clone, push } = assignment;
    const secrets = [
      ...credentialForms(push.username, push.token),
      ...(clone.token ? credentialForms(clone.username ?? 'x-access-token', clone.token) : []),
      ...(clone.deployKey ? clone.deployKey.split('\n').filter((line) => line.length >= 16) : []),
    ];
    this.#log = new BuildLogWriter({
      redis: context.logRedis,
      keyPrefix: context.logKeyPrefix,
      buildId: assignment.build.id,
      secrets,
    });
  }

  get buildId(): string {
    return this.#assignment.build.id;
  }

  /** Stops the build's steps; it then ends as the reason says (a lost build is not reported at all). */
  stop(reason: StopReason): void {
    if (this.#stopReason) return;
    this.#stopReason = reason;
    this.#abort.abort();
  }

  async run(): Promise<void> {
    const { build } = this.#assignment;
    const heartbeats = this.#startHeartbeats();
    const deadline = setTimeout(
      () => this.stop('timeout'),
      Math.max(0, Date.parse(this.#assignment.deadline) - Date.now()),
    );
    const dir = await mkdtemp(join(this.#context.workDir, 'build-'));
    let end: BuildEnd;
    try {
      this.#log.phase('cloning');
      const source = join(dir, 'source');
      await mkdir(source);
      const commit = await checkoutCommit({
        dir: source,
        url: build.cloneUrl,
        ref: build.ref,
        commit: build.commit,
        credentials: this.#assignment.clone,
        masker: new SecretMasker(this.#secretsOfClone()),
        onLine: this.#onLine,
        signal: this.#abort.signal,
        ...(this.#context.git && { git: this.#context.git }),
      });
      await this.#enter('building');
      const { contextDir, dockerfile } = buildPaths(source, build.context, build.dockerfile);
      const result = await this.#context.executor.build(
        {
          contextDir,
          dockerfile,
          buildArgs: build.buildArgs,
          source: { revision: commit, url: build.cloneUrl },
          destinations: this.#assignment.destinations,
          credentials: this.#assignment.push,
          tlsVerify: this.#context.tlsVerify,
          pullMirrors: this.#context.pullMirrors,
          secrets: this.#secretsOfClone(),
        },
        {
          signal: this.#abort.signal,
          onLine: this.#onLine,
          onPhase: (phase) => {
            if (phase === 'push') this.#reporting = this.#enter('pushing');
          },
        },
      );
      end = {
        phase: 'complete',
        digest: result.digest,
        ...(result.sizeBytes !== undefined && { imageBytes: result.sizeBytes }),
        commit,
      };
    } catch (error) {
      end = this.#endOf(error);
    } finally {
      clearInterval(heartbeats);
      clearTimeout(deadline);
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
    await this.#end(end);
  }

  readonly #onLine = (stream: OutputStream, text: string): void => {
    if (this.#stopReason !== 'lost') this.#log.line(stream, text);
  };

  #secretsOfClone(): string[] {
    const { token, deployKey } = this.#assignment.clone;
    return [token, deployKey].filter((secret): secret is string => Boolean(secret));
  }

  /** Moves to the next phase: the time the last one took goes with it. */
  async #enter(phase: WorkPhase): Promise<void> {
    const now = performance.now();
    this.#phaseMs[this.#phase] = Math.round(now - this.#phaseStarted);
    const previous = this.#phase;
    this.#phase = phase;
    this.#phaseStarted = now;
    if (this.#stopReason === 'lost') return;
    this.#log.phase(phase);
    const held = await this.#context.control
      .phase(this.buildId, this.#context.builder, phase, { [previous]: this.#phaseMs[previous] })
      .catch((error: unknown) => {
        this.#context.warn({ err: error, build: this.buildId }, 'could not report a build phase');
        return true;
      });
    if (!held) this.stop('lost');
  }

  #startHeartbeats(): NodeJS.Timeout {
    let beating = false;
    return setInterval(() => {
      if (beating) return;
      beating = true;
      this.#context.control
        .heartbeat(this.buildId, this.#context.builder)
        .then(
          (answer) => {
            if (answer === null) this.stop('lost');
            else if (answer.cancel) this.stop('cancelled');
          },
          // The claim outlives a few missed heartbeats; a gateway gone for longer ends it.
          (error: unknown) =>
            this.#context.warn({ err: error, build: this.buildId }, 'a build heartbeat failed'),
        )
        .finally(() => (beating = false));
    }, this.#assignment.heartbeatSeconds * 1000);
  }

  #endOf(error: unknown): BuildEnd {
    const phaseMs = this.#closePhase();
    switch (this.#stopReason) {
      case 'cancelled':
        return { phase: 'cancelled', phaseMs };
      case 'timeout':
        return {
          phase: 'timeout',
          error: `the build did not end by its deadline ${this.#assignment.deadline}`,
          phaseMs,
        };
      case 'shutdown':
        return {
          phase: 'internal_error',
          error: `builder ${this.#context.builder} shut down during ${this.#phase}; start the build again`,
          phaseMs,
        };
      case 'lost':
        return { phase: 'internal_error', error: 'the builder lost its claim', phaseMs };
    }
    if (error instanceof BuildFailedError) {
      const { registry, build } = this.#assignment;
      const hint = pullDeniedHint(error, registry, build);
      return { phase: 'error', error: hint ? `${error.message}\n${hint}` : error.message, phaseMs };
    }
    if (
      error instanceof InvalidBuildRequestError ||
      error instanceof CheckoutError ||
      error instanceof BuildCancelledError
    ) {
      return { phase: 'error', error: error.message, phaseMs };
    }
    return { phase: 'internal_error', error: `the builder failed: ${messageOf(error)}`, phaseMs };
  }

  #closePhase(): Partial<Record<WorkPhase, number>> {
    this.#phaseMs[this.#phase] = Math.round(performance.now() - this.#phaseStarted);
    this.#phaseStarted = performance.now();
    return { ...this.#phaseMs };
  }

  async #end(end: BuildEnd): Promise<void> {
    await this.#reporting;
    if (end.phase === 'complete') end.phaseMs = this.#closePhase();
    if (this.#stopReason === 'lost') {
      // The gateway ended the build already, and archived its log: nothing more goes there.
      this.#context.warn({ build: this.buildId }, 'the builder lost its claim on a build and stopped it');
      await this.#log.flush().catch(() => {});
      return;
    }
    if (end.error) this.#log.line('stderr', end.error);
    await this.#log.end(end.phase).catch((error: unknown) => {
      this.#context.warn({ err: error, build: this.buildId }, 'could not write the end of a build log');
    });
    const held = await this.#context.control
      .finish(this.buildId, this.#context.builder, end)
      .catch((error: unknown) => {
        this.#context.warn({ err: error, build: this.buildId }, 'could not report the end of a build');
        return true;
      });
    if (!held) this.#context.warn({ build: this.buildId }, 'the build had ended on the gateway already');
  }
}

/**
 * The build context and the Dockerfile relative to it. Both are paths in the repository (as triggers
 * take them); the context must stay inside the checkout, the executor checks the Dockerfile.
 */
export function buildPaths(
  source: string,
  context: string,
  dockerfile: string,
): { contextDir: string; dockerfile: string } {
  const contextDir = resolve(source, context.replace(/^\/+/, '') || '.');
  const rel = relative(source, contextDir);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new InvalidBuildRequestError(`the build context "${context}" is not inside the repository`);
  }
  const dockerfilePath = resolve(source, dockerfile.replace(/^\/+/, ''));
  return { contextDir, dockerfile: relative(contextDir, dockerfilePath).split(sep).join('/') };
}
