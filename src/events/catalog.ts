import { z } from 'zod';

/**
 * The events Slipway tells subscribers of, with Quay's names so its users feel at home. Each payload
 * is versioned: fields are only ever added within a version; a change that breaks readers makes v2.
 * `docs/events/<kind>.v1.schema.json` is generated from these schemas (`npm run schemas`).
 */
export const eventKinds = [
  'repo_push',
  'repo_tag_deleted',
  'build_queued',
  'build_start',
  'build_success',
  'build_failure',
  'build_cancelled',
  'repo_mirror_sync_started',
  'repo_mirror_sync_success',
  'repo_mirror_sync_failed',
  'subscription_disabled',
] as const;

export type EventKind = (typeof eventKinds)[number];

export const payloadVersion = 1;

const digest = z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/);

/** What every event carries: which event, when, and the repository (or namespace) it is about. */
const envelope = {
  id: z.uuid().describe('Unique per event; every delivery and retry of it carries the same id.'),
  kind: z.enum(eventKinds),
  version: z.literal(payloadVersion).describe('The payload version; fields are only added within one.'),
  time: z.iso.datetime({ offset: true }).describe('When the change happened (RFC 3339).'),
  namespace: z.string().describe('The organization or user the repository belongs to.'),
  repository: z
    .string()
    .nullable()
    .describe('The full repository name, e.g. acme/api; null for an event of a whole namespace.'),
  name: z.string().nullable().describe('The repository name within the namespace, e.g. api.'),
  docker_url: z
    .string()
    .nullable()
    .describe('Where to pull the repository from, e.g. registry.example.com/acme/api.'),
  test: z.boolean().optional().describe('True on a sample sent by "send a test event".'),
};

const actor = z.string().nullable().describe('Who did it: a user or robot name; null when anonymous.');

const repoPush = z
  .object({
    ...envelope,
    kind: z.literal('repo_push'),
    updated_tags: z.array(z.string()).describe('The tags that now point at the pushed manifest.'),
    digest: digest.describe('The digest of the manifest the tags point at.'),
    media_type: z.string().describe('The media type of that manifest.'),
    pusher: actor,
  })
  .meta({ id: 'repo_push', title: 'A manifest was pushed and tags moved to it' });

const repoTagDeleted = z
  .object({
    ...envelope,
    kind: z.literal('repo_tag_deleted'),
    deleted_tags: z.array(z.string()).describe('The tags removed.'),
    digest: digest.describe('The digest the tags pointed at.'),
    deleted_by: actor,
  })
  .meta({ id: 'repo_tag_deleted', title: 'Tags were deleted' });

const commitAuthor = z.object({
  username: z.string().optional().describe('The account name at the git host.'),
  name: z.string().optional().describe('The name in the commit.'),
  url: z.string().optional().describe("The account's page at the git host."),
  avatar_url: z.string().optional(),
});

const triggerMetadata = z
  .object({
    commit: z.string().describe('The commit SHA built.'),
    ref: z.string().describe('The full git ref, e.g. refs/heads/main.'),
    default_branch: z.string().optional().describe('The default branch of the git repository.'),
    git_url: z.string().optional().describe('Where the source was cloned from.'),
    commit_info: z
      .object({
        url: z.string().optional().describe("The commit's page at the git host."),
        message: z.string().optional().describe('The commit message.'),
        date: z.string().optional().describe('When the commit was made (RFC 3339).'),
        author: commitAuthor.optional().describe('Who wrote the commit.'),
        committer: commitAuthor.optional().describe('Who committed it.'),
      })
      .optional()
      .describe('The commit, as the git provider told of it.'),
  })
  .describe('The git push that triggered the build; absent for a manual build.');

const buildFields = {
  build_id: z.string().describe('The build, as the builds API names it.'),
  build_name: z.string().describe('A short name for the build, such as the short commit SHA.'),
  docker_tags: z.array(z.string()).describe('The tags the build pushes.'),
  trigger_id: z.string().nullable().describe('The build trigger that started it; null for a manual build.'),
  trigger_kind: z.enum(['github', 'gitlab', 'git', 'manual']).describe('What started the build.'),
  trigger_metadata: triggerMetadata.optional(),
  log_url: z.string().describe('Where to read the build log through the API.'),
};

const buildQueued = z
  .object({ ...envelope, ...buildFields, kind: z.literal('build_queued') })
  .meta({ id: 'build_queued', title: 'A build was queued' });
const buildStart = z
  .object({ ...envelope, ...buildFields, kind: z.literal('build_start') })
  .meta({ id: 'build_start', title: 'A build started' });
const buildSuccess = z
  .object({
    ...envelope,
    ...buildFields,
    kind: z.literal('build_success'),
    digest: digest.describe('The digest of the pushed image.'),
  })
  .meta({ id: 'build_success', title: 'A build pushed its image' });
const buildFailure = z
  .object({
    ...envelope,
    ...buildFields,
    kind: z.literal('build_failure'),
    error_message: z.string().describe('Why the build failed.'),
  })
  .meta({ id: 'build_failure', title: 'A build failed' });
const buildCancelled = z
  .object({ ...envelope, ...buildFields, kind: z.literal('build_cancelled') })
  .meta({ id: 'build_cancelled', title: 'A build was cancelled' });

const mirrorFields = {
  mirror_id: z.string().describe('The mirror configuration, as the mirrors API names it.'),
  upstream: z.string().describe('The upstream repository, e.g. docker.io/library/nginx.'),
  tag_filter: z.array(z.string()).describe('The tag patterns synced.'),
  message: z.string().describe('One line on the sync, for people.'),
};
const mirrorCounts = {
  synced: z.number().int().nonnegative().describe('Tags copied or moved.'),
  skipped: z.number().int().nonnegative().describe('Tags already up to date.'),
  failed: z.number().int().nonnegative().describe('Tags that could not be synced.'),
  failures: z
    .array(
      z.object({
        tag: z.string().describe('A tag that could not be synced.'),
        error: z.string().describe('Why.'),
      }),
    )
    .describe('What failed and why.'),
};

const mirrorStarted = z
  .object({ ...envelope, ...mirrorFields, kind: z.literal('repo_mirror_sync_started') })
  .meta({ id: 'repo_mirror_sync_started', title: 'A mirror sync started' });
const mirrorSuccess = z
  .object({ ...envelope, ...mirrorFields, ...mirrorCounts, kind: z.literal('repo_mirror_sync_success') })
  .meta({ id: 'repo_mirror_sync_success', title: 'A mirror sync finished' });
const mirrorFailed = z
  .object({ ...envelope, ...mirrorFields, ...mirrorCounts, kind: z.literal('repo_mirror_sync_failed') })
  .meta({ id: 'repo_mirror_sync_failed', title: 'A mirror sync failed, wholly or for some tags' });

const subscriptionDisabled = z
  .object({
    ...envelope,
    kind: z.literal('subscription_disabled'),
    subscription_id: z.uuid().describe('The subscription that was disabled.'),
    title: z.string().describe("The subscription's title."),
    reason: z.string().describe('Why Slipway stopped delivering to it, and what to do.'),
  })
  .meta({ id: 'subscription_disabled', title: 'A subscription was disabled after failing deliveries' });

export const eventPayloadSchemas = {
  repo_push: repoPush,
  repo_tag_deleted: repoTagDeleted,
  build_queued: buildQueued,
  build_start: buildStart,
  build_success: buildSuccess,
  build_failure: buildFailure,
  build_cancelled: buildCancelled,
  repo_mirror_sync_started: mirrorStarted,
  repo_mirror_sync_success: mirrorSuccess,
  repo_mirror_sync_failed: mirrorFailed,
  subscription_disabled: subscriptionDisabled,
} satisfies Record<EventKind, z.ZodType>;

export type EventPayload<K extends EventKind = EventKind> = K extends EventKind
  ? z.infer<(typeof eventPayloadSchemas)[K]>
  : never;

/** The fields of an event that its producer supplies: the envelope is filled in by the outbox. */
export type EventFields<K extends EventKind> = Omit<
  EventPayload<K>,
  'id' | 'kind' | 'version' | 'time' | 'namespace' | 'repository' | 'name' | 'docker_url' | 'test'
>;

/** Which filter a subscription's `filter` is for an event kind: tags for pushes, refs for builds. */
export function filterTargetOf(kind: EventKind): 'tag' | 'ref' | null {
  if (kind === 'repo_push' || kind === 'repo_tag_deleted') return 'tag';
  if (kind.startsWith('build_')) return 'ref';
  return null;
}

export function isEventKind(value: string): value is EventKind {
  return (eventKinds as readonly string[]).includes(value);
}
