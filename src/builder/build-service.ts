import type { Database, Queryable } from '../db/database.ts';
import { conflict, invalid, notFound } from '../errors.ts';
import type { EventFields } from '../events/catalog.ts';
import { subjectOfRepository, type Outbox } from '../events/outbox.ts';
import type { PushEvent } from '../triggers/push-event.ts';
import { refSelected, compileRefFilter } from '../triggers/ref-filter.ts';
import { expandTagTemplates, parseTagTemplates, sanitizeTag } from '../triggers/tag-templates.ts';
import type { CloneSecrets, Trigger, TriggerStore } from '../triggers/trigger-store.ts';
import type { BuildQueue } from './build-queue.ts';
import {
  type Build,
  type BuildEnd,
  type BuildRetention,
  type BuildStore,
  type EndPhase,
  type NewBuild,
  type WorkPhase,
} from './build-store.ts';

/**
 * The credential a build pushes with: for its repository only, until the build's deadline; it also
 * pulls what the build's pull robot (namespace+name, or null) may read.
 */
export interface BuildCredentials {
  issue(
    buildId: string,
    repository: string,
    expiresAt: Date,
    pullRobot: string | null,
  ): Promise<{ username: string; token: string }>;
  revoke(buildId: string): Promise<void>;
}

/** Stores a build's log once it ended; the archive's digest, or null when there was no log. */
export type LogArchiver = (buildId: string) => Promise<string | null>;

/**
 * Ends the log of a build the gateway ended itself as its builder would have (why, the final phase,
 * the end), unless the log has ended already.
 */
export type LogEnder = (buildId: string, end: { phase: EndPhase; reason: string }) => Promise<void>;

export interface BuildServiceOptions {
  db: Database;
  builds: BuildStore;
  triggers: TriggerStore;
  outbox: Outbox;
  queue: BuildQueue;
  credentials: BuildCredentials;
  archiveLog: LogArchiver;
  endLog: LogEnder;
  /** host[:port] builders push to and pull base images from. */
  registryHost: () => string;
  /** The longest a build may take from its claim; it then ends `timeout`. */
  timeoutSeconds: number;
  /** How long a builder's claim holds without a heartbeat. */
  claimSeconds: number;
  /** How long a build may wait for a builder before it ends `internal_error`. */
  queueTimeoutSeconds: number;
  /** Ended builds kept per repository; older ones are deleted with their logs' holds. */
  retention: BuildRetention;
}

/** What a builder needs to run a build it claimed. */
export interface BuildAssignment {
  build: Build;
  clone: CloneSecrets;
  /** Where to push: host[:port]/repository:tag, one per tag. */
  destinations: string[];
  registry: string;
  push: { username: string; token: string };
  /** When the build must have ended (ISO 8601). */
  deadline: string;
  heartbeatSeconds: number;
}

/** A manual build: of a trigger's settings at a ref or commit, or of a clone URL given outright. */
export interface ManualBuildRequest {
  repository: string;
  triggerId?: string;
  cloneUrl?: string;
  /** A branch (main, heads/main, refs/heads/main) or tag (tags/v1, refs/tags/v1). */
  ref?: string;
  commit?: string;
  dockerfile?: string;
  context?: string;
  buildArgs?: Record<string, string>;
  tags?: string[];
  /** The robot (namespace+name) whose read access it also pulls with; default: the trigger's; null: none. */
  pullRobot?: string | null;
}

export type PushOutcome = { build: Build; created: boolean } | { skipped: string };

/**
 * Builds from their request to their end: pushes and manual requests become a build record, a queue
 * job and `build_queued`; builders claim, report phases and heartbeats, and finish; cancelled,
 * vanished and overdue builds end honestly. Events are written in the same transaction as the change.
 */
export class BuildService {
  readonly #options: BuildServiceOptions;

  constructor(options: BuildServiceOptions) {
    this.#options = options;
  }

  /** The build a push asks for, or why the trigger builds nothing for it. */
  async fromPush(trigger: Trigger, event: PushEvent): Promise<PushOutcome> {
    if (!trigger.enabled)
      return { skipped: `the trigger is disabled: ${trigger.disabledReason ?? 'disabled'}` };
    if (event.deleted) return { skipped: `${event.ref.full} was deleted: nothing to build` };
    const filter = trigger.refFilter === null ? undefined : compileRefFilter(trigger.refFilter);
    if (!refSelected(filter, event.ref)) {
      return { skipped: `${event.ref.full} does not match the trigger's ref filter ${trigger.refFilter}` };
    }
    const tags = expandTagTemplates(
      {
        templates: parseTagTemplates(trigger.tagTemplates),
        latestOnDefaultBranch: trigger.latestOnDefaultBranch,
      },
      event,
    );
    if (tags.length === 0)
      return { skipped: `the trigger's tag templates give no tag for ${event.ref.full}` };
    return this.#request({
      repository: trigger.repository,
      triggerId: trigger.id,
      triggerKind: event.provider === 'custom' ? 'git' : event.provider,
      cloneUrl: trigger.cloneUrl,
      ref: event.ref.full,
      commit: event.commit,
      push: {
        author: event.author,
        ...(event.message !== undefined && { message: event.message }),
        ...(event.compareUrl !== undefined && { compareUrl: event.compareUrl }),
        ...(event.defaultBranch !== undefined && { defaultBranch: event.defaultBranch }),
        ...(event.pushedAt !== undefined && { pushedAt: event.pushedAt }),
      },
      dockerfile: trigger.dockerfile,
      context: trigger.context,
      buildArgs: trigger.buildArgs,
      tags,
      requestedBy: null,
      pullRobot: trigger.pullRobot,
    });
  }

  /** A build someone asked for through the API. */
  async manual(request: ManualBuildRequest, requestedBy: string | null): Promise<Build> {
    const trigger = request.triggerId ? await this.#options.triggers.get(request.triggerId) : null;
    if (request.triggerId && (!trigger || trigger.repository !== request.repository)) {
      throw notFound(`${request.repository} has no build trigger ${request.triggerId}`);
    }
    if (trigger && request.cloneUrl !== undefined && request.cloneUrl !== trigger.cloneUrl) {
      // The trigger's clone credentials must never be sent anywhere but its own repository.
      throw invalid("a build with a trigger clones the trigger's repository: leave out cloneUrl");
    }
    const cloneUrl = request.cloneUrl ?? trigger?.cloneUrl;
    if (!cloneUrl) throw invalid('give a trigger to build with, or a clone URL');
    if (!request.ref && !request.commit) throw invalid('give a ref (a branch or tag) or a commit to build');
    const ref = request.ref === undefined ? null : fullRef(request.ref);
    const shortName = request.commit?.slice(0, 7) ?? ref!.replace(/^refs\/(heads|tags)\//, '');
    const tags = request.tags ?? [sanitizeTag(shortName) || 'latest'];
    const outcome = await this.#request({
      repository: request.repository,
      triggerId: trigger?.id ?? null,
      triggerKind: 'manual',
      cloneUrl,
      ref,
      commit: request.commit?.toLowerCase() ?? null,
      dockerfile: request.dockerfile ?? trigger?.dockerfile ?? 'Dockerfile',
      context: request.context ?? trigger?.context ?? '.',
      buildArgs: request.buildArgs ?? trigger?.buildArgs ?? {},
      tags,
      requestedBy,
      pullRobot: request.pullRobot !== undefined ? request.pullRobot : (trigger?.pullRobot ?? null),
    });
    return outcome.build;
  }

  /**
   * Stops a build: a waiting one ends `cancelled` at once; a running one is told with its builder's
   * next heartbeat. The build as it now is; not found when there is none; 409 once it has ended.
   */
  async cancel(id: string): Promise<Build> {
    const { builds, queue } = this.#options;
    const phase = await builds.requestCancel(id);
    if (phase === null) {
      const build = await builds.get(id);
      if (!build) throw notFound(`no build ${id}`);
      throw conflict(`build ${id} has ended already (${build.phase})`);
    }
    if (phase === 'waiting') {
      await this.#end(id, null, { phase: 'cancelled' });
      await queue.discard(id);
    }
    return (await builds.get(id))!;
  }

  /** A builder takes a waiting build: the build moves to `cloning`, and `build_start` is sent. */
  async claim(id: string, builder: string): Promise<BuildAssignment | null> {
    const { db, builds, triggers, credentials, registryHost, timeoutSeconds, claimSeconds, outbox } =
      this.#options;
    const build = await builds.claim(id, builder, claimSeconds);
    if (!build) return null;
    await db.transaction((tx) =>
      outbox.write(tx, 'build_start', subjectOfRepository(build.repository), this.#fields(build)),
    );
    const deadline = new Date(Date.now() + timeoutSeconds * 1000);
    const push = await credentials.issue(id, build.repository, deadline, build.pullRobot);
    const registry = registryHost();
    return {
      build,
      clone: build.triggerId ? await triggers.cloneSecrets(build.triggerId) : {},
      destinations: build.tags.map((tag) => `${registry}/${build.repository}:${tag}`),
      registry,
      push,
      deadline: deadline.toISOString(),
      heartbeatSeconds: Math.max(1, Math.floor(claimSeconds / 3)),
    };
  }

  /** The builder is alive; whether it should stop, or null when it no longer holds the build. */
  heartbeat(id: string, builder: string): Promise<{ cancel: boolean } | null> {
    return this.#options.builds.heartbeat(id, builder, this.#options.claimSeconds);
  }

  /** The builder moved on to `phase`; false when it no longer holds the build. */
  async phase(
    id: string,
    builder: string,
    phase: WorkPhase,
    phaseMs: Partial<Record<WorkPhase, number>>,
  ): Promise<boolean> {
    return this.#options.builds.setPhase(this.#options.db, id, builder, phase, phaseMs);
  }

  /** The builder ended the build; the build as recorded, or null when it no longer held it. */
  finish(id: string, builder: string, end: BuildEnd): Promise<Build | null> {
    return this.#end(id, builder, end);
  }

  /**
   * Ends builds nobody will finish: those whose builder stopped sending heartbeats, those past their
   * deadline, and those no builder claimed in time. How many it ended.
   */
  async sweep(): Promise<number> {
    const { builds, queueTimeoutSeconds } = this.#options;
    const stalled = await builds.stalled(new Date(Date.now() - queueTimeoutSeconds * 1000));
    let ended = 0;
    for (const build of stalled) {
      const end: BuildEnd =
        build.phase === 'waiting'
          ? {
              phase: 'internal_error',
              error: `no builder took the build within ${queueTimeoutSeconds}s: is a builder running (slipway builder)?`,
            }
          : {
              phase: 'internal_error',
              error: `builder ${build.builder} stopped answering during ${build.phase}; start the build again`,
            };
      if (await this.#end(build.id, null, end)) ended++;
    }
    return ended + (await this.#endOverdue());
  }

  /**
   * Deletes ended builds past retention; their archived logs are then collected by the next garbage
   * collection. How many were deleted.
   */
  async applyRetention(): Promise<number> {
    const batchSize = 500;
    let deleted = 0;
    for (;;) {
      const batch = await this.#options.builds.deleteExpired(this.#options.retention, batchSize);
      deleted += batch;
      if (batch < batchSize) return deleted;
    }
  }

  async #endOverdue(): Promise<number> {
    const { db, timeoutSeconds } = this.#options;
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM builds WHERE phase IN ('cloning', 'building', 'pushing')
         AND started_at < now() - make_interval(secs => $1)`,
      [timeoutSeconds],
    );
    let ended = 0;
    for (const { id } of rows) {
      const end: BuildEnd = { phase: 'timeout', error: `the build took longer than ${timeoutSeconds}s` };
      if (await this.#end(id, null, end)) ended++;
    }
    return ended;
  }

  async #request(build: NewBuild): Promise<{ build: Build; created: boolean }> {
    const { db, builds, outbox, queue } = this.#options;
    const outcome = await db.transaction(async (tx) => {
      const created = await builds.create(tx, build);
      if (created.created) {
        await outbox.write(
          tx,
          'build_queued',
          subjectOfRepository(build.repository),
          this.#fields(created.build),
        );
      }
      return created;
    });
    if (outcome.created) await queue.enqueue(outcome.build.id);
    return outcome;
  }

  /**
   * Ends the build with its event and the trigger's count of failures; then archives its log. With no
   * builder, the gateway ends it: only the gateway whose update ended it ends its log, before archiving.
   */
  async #end(id: string, builder: string | null, end: BuildEnd): Promise<Build | null> {
    const { db, builds, triggers, credentials } = this.#options;
    const ended = await db.transaction(async (tx) => {
      const build = await builds.finish(tx, id, builder, end);
      if (!build) return null;
      await this.#announceEnd(tx, build);
      if (build.triggerId && build.triggerKind !== 'manual' && build.phase !== 'cancelled') {
        await triggers.recordOutcome(
          tx,
          build.triggerId,
          build.phase === 'complete',
          build.error ?? undefined,
        );
      }
      return build;
    });
    if (!ended) return null;
    await credentials.revoke(id).catch(() => {});
    if (builder === null) {
      const reason = end.error ?? 'the build was cancelled before a builder took it';
      // Should this fail, followers still notice the end at their next keep-alive.
      await this.#options.endLog(id, { phase: end.phase, reason }).catch(() => {});
    }
    const logDigest = await this.#options.archiveLog(id).catch(() => null);
    if (logDigest) await builds.setLogDigest(id, logDigest);
    return (await builds.get(id))!;
  }

  async #announceEnd(tx: Queryable, build: Build): Promise<void> {
    const subject = subjectOfRepository(build.repository);
    const fields = this.#fields(build);
    if (build.phase === 'complete' && build.digest) {
      await this.#options.outbox.write(tx, 'build_success', subject, { ...fields, digest: build.digest });
    } else if (build.phase === 'cancelled') {
      await this.#options.outbox.write(tx, 'build_cancelled', subject, fields);
    } else {
      await this.#options.outbox.write(tx, 'build_failure', subject, {
        ...fields,
        error_message: build.error ?? `the build ended ${build.phase}`,
      });
    }
  }

  #fields(build: Build): EventFields<'build_queued'> {
    const push = build.push;
    return {
      build_id: build.id,
      build_name: build.commit?.slice(0, 7) ?? build.ref?.replace(/^refs\/(heads|tags)\//, '') ?? build.id,
      docker_tags: build.tags,
      trigger_id: build.triggerId,
      trigger_kind: build.triggerKind,
      ...(build.commit &&
        build.ref && {
          trigger_metadata: {
            commit: build.commit,
            ref: build.ref,
            git_url: build.cloneUrl,
            ...(push?.defaultBranch !== undefined && { default_branch: push.defaultBranch }),
            ...(push && {
              commit_info: {
                ...(push.compareUrl !== undefined && { url: push.compareUrl }),
                ...(push.message !== undefined && { message: push.message }),
                ...(push.pushedAt !== undefined && { date: push.pushedAt }),
                ...(push.author && {
                  author: {
                    ...(push.author.username !== undefined && { username: push.author.username }),
                    ...(push.author.name !== undefined && { name: push.author.name }),
                  },
                }),
              },
            }),
          },
        }),
      log_url: `/api/v1/builds/${build.id}/logs`,
    };
  }
}

/** A branch or tag as a full ref: main → refs/heads/main, tags/v1 → refs/tags/v1. */
export function fullRef(ref: string): string {
  if (ref.startsWith('refs/')) return ref;
  if (ref.startsWith('heads/') || ref.startsWith('tags/')) return `refs/${ref}`;
  return `refs/heads/${ref}`;
}
