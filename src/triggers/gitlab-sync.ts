import type { EventsLogger } from '../events/logger.ts';
import {
  GitLabSetupError,
  sshPublicKeyOf,
  syncGitLabProject,
  type GitLabProjectSync,
} from './gitlab-setup.ts';
import type { GitLabLink, Trigger, TriggerStore } from './trigger-store.ts';

/*
 * Keeping what Slipway registered on a GitLab project in step with the gateway: the hook posts to the
 * trigger's webhook URL as it is now (the public URL may have changed since setup), with the trigger's
 * secret, and the hook and the deploy key are there again when someone deleted them in GitLab.
 */

export interface GitLabSyncOutcome {
  trigger: Trigger;
  sync: GitLabProjectSync;
}

export class GitLabTriggerSync {
  readonly #triggers: TriggerStore;
  readonly #webhookUrlOf: (trigger: Trigger) => string;

  constructor(options: { triggers: TriggerStore; webhookUrlOf: (trigger: Trigger) => string }) {
    this.#triggers = options.triggers;
    this.#webhookUrlOf = options.webhookUrlOf;
  }

  webhookUrlOf(trigger: Trigger): string {
    return this.#webhookUrlOf(trigger);
  }

  /**
   * Syncs the trigger's hook and deploy key with the kept API token, or with `token`, which is kept when
   * GitLab accepts it. A failure is recorded on the trigger as its problem, and thrown (GitLabSetupError).
   */
  async sync(trigger: Trigger, token?: string): Promise<GitLabSyncOutcome> {
    const link = trigger.gitlab;
    if (!link) {
      throw new GitLabSetupError(
        `build trigger ${trigger.id} was not set up on GitLab by Slipway: change its webhook in GitLab by hand`,
      );
    }
    const apiToken = token ?? (await this.#triggers.gitlabToken(trigger.id));
    if (apiToken === null) {
      throw new GitLabSetupError(
        `Slipway keeps no GitLab API token for build trigger ${trigger.id}: give one (api scope, Maintainer role on ${link.projectPath}) to sync with.`,
      );
    }
    const webhookUrl = this.#webhookUrlOf(trigger);
    try {
      const sync = await syncGitLabProject({
        apiUrl: link.apiUrl,
        token: apiToken,
        project: link.projectId,
        hookId: link.hookId,
        webhookUrl,
        webhookSecret: (await this.#triggers.webhookSecret(trigger.id)) ?? '',
        tlsVerify: link.tlsVerify,
        ...(await this.#deployKeyToKeep(trigger, link)),
      });
      const updated = await this.#triggers.recordGitLabSync(
        trigger.id,
        {
          hookId: sync.hookId,
          hookUrl: webhookUrl,
          ...(sync.hookRecreated ? { hookCreated: true } : {}),
          ...(sync.deployKeyId !== undefined ? { deployKeyId: sync.deployKeyId } : {}),
          ...(sync.deployKeyRecreated ? { deployKeyCreated: true } : {}),
        },
        token,
      );
      return { trigger: updated ?? trigger, sync };
    } catch (error) {
      if (error instanceof GitLabSetupError) {
        await this.#triggers.recordGitLabSyncProblem(trigger.id, error.message);
      }
      throw error;
    }
  }

  /** The deploy key Slipway added, as long as the builder still clones with it (its public half). */
  async #deployKeyToKeep(trigger: Trigger, link: GitLabLink) {
    if (link.deployKeyId === null || !link.deployKeyCreated || trigger.credentials?.kind !== 'deploy-key') {
      return {};
    }
    const { deployKey } = await this.#triggers.cloneSecrets(trigger.id);
    const publicKey = deployKey ? sshPublicKeyOf(deployKey) : null;
    if (!publicKey) return {};
    return {
      deployKey: { title: `Slipway build trigger ${trigger.id} (${trigger.repository})`, publicKey },
    };
  }

  /**
   * Syncs, one after the other, the triggers whose hook was registered with another URL than their webhook
   * URL now has, and that have a token to do it with. Each failure is logged and recorded on its trigger.
   */
  async syncOutdated(logger: EventsLogger, stopped: () => boolean = () => false): Promise<void> {
    const outdated = (await this.#triggers.listSetUpOnGitLab()).filter(
      (trigger) => trigger.gitlab?.tokenStored && trigger.gitlab.hookUrl !== this.#webhookUrlOf(trigger),
    );
    for (const trigger of outdated) {
      if (stopped()) return;
      const fields = {
        trigger: trigger.id,
        repository: trigger.repository,
        project: trigger.gitlab?.projectPath,
        from: trigger.gitlab?.hookUrl,
        to: this.#webhookUrlOf(trigger),
      };
      try {
        const { sync } = await this.sync(trigger);
        logger.info(
          { ...fields, hookId: sync.hookId, hookRecreated: sync.hookRecreated },
          "updated the GitLab webhook of a build trigger to the gateway's public URL",
        );
      } catch (error) {
        if (stopped()) return;
        logger.warn(
          { ...fields, reason: error instanceof Error ? error.message : String(error) },
          "could not update the GitLab webhook of a build trigger to the gateway's public URL; the trigger shows why",
        );
      }
    }
  }
}

/**
 * What is wrong with the trigger's GitLab hook, and what to do about it: the last sync failed, or the hook
 * posts somewhere else than the trigger's webhook URL (the public URL changed); null when nothing is.
 */
export function gitlabProblem(trigger: Trigger, webhookUrl: string): string | null {
  const link = trigger.gitlab;
  if (!link) return null;
  const sync = `slipway trigger gitlab-sync ${trigger.id}`;
  if (link.syncProblem !== null) {
    return `syncing the GitLab webhook failed: ${link.syncProblem} Then sync again (${sync}; give a new API token with --gitlab-token-stdin).`;
  }
  if (link.hookUrl === webhookUrl) return null;
  const where =
    link.hookUrl === null
      ? `Slipway did not record where GitLab webhook ${link.hookId} of ${link.projectPath} posts; it may not be`
      : `GitLab webhook ${link.hookId} of ${link.projectPath} posts to ${link.hookUrl}, not`;
  const fix = link.tokenStored
    ? `sync it (${sync})`
    : `sync it with a GitLab API token (${sync} --gitlab-token-stdin), or change the URL in GitLab (Settings > Webhooks)`;
  return `${where} to this trigger's webhook URL ${webhookUrl}, so pushes build nothing: ${fix}.`;
}

/**
 * At a gateway's start: syncs in the background the GitLab triggers whose hook posts to another URL, once
 * each. Never fails the start; `stop` returns without waiting for GitLab.
 */
export function syncGitLabHooksInBackground(
  sync: GitLabTriggerSync,
  logger: EventsLogger,
): { done: Promise<void>; stop(): void } {
  let stopped = false;
  const done = sync
    .syncOutdated(logger, () => stopped)
    .catch((error: unknown) => {
      if (!stopped) logger.error({ err: error }, 'syncing the GitLab webhooks of build triggers failed');
    });
  return {
    done,
    stop() {
      stopped = true;
    },
  };
}
