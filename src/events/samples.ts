import type { EventFields, EventKind } from './catalog.ts';

/**
 * Realistic sample fields for every event kind: what "send a test event" delivers (marked `test: true`),
 * and the examples in `docs/events/`. Each sample validates against its kind's schema.
 */

const commit = '1c002dd5e2b9a7f1d0c3b4a5e6f7a8b9c0d1e2f3';
const buildId = '3f0c2a1e-9a0b-4d51-8c33-5e6f1b2c7d90';
const imageDigest = 'sha256:1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809';
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const mirrorId = '7d2e4b10-5c3a-4e8f-9b21-0a6c8d4f3e57';
const upstream = 'docker.io/library/nginx';
const tagFilter = ['1.27*', 'stable'];

const buildFields = {
  build_id: buildId,
  build_name: commit.slice(0, 7),
  docker_tags: ['main', 'latest'],
  trigger_id: 'b7e1c9d4-22aa-4f0e-9d7e-0c1f6a3b8e21',
  trigger_kind: 'github',
  trigger_metadata: {
    commit,
    ref: 'refs/heads/main',
    default_branch: 'main',
    git_url: 'git@github.com:acme/api.git',
    commit_info: {
      url: `https://github.com/acme/api/commit/${commit}`,
      message: 'Bump dependencies and rebuild on Node 24',
      date: '2026-08-01T10:00:00Z',
      author: {
        username: 'jdoe',
        name: 'Jane Doe',
        url: 'https://github.com/jdoe',
        avatar_url: 'https://avatars.githubusercontent.com/u/1024?v=4',
      },
    },
  },
  log_url: `/api/v1/builds/${buildId}/logs`,
} satisfies EventFields<'build_start'>;

const mirrorFields = { mirror_id: mirrorId, upstream, tag_filter: tagFilter };

const samples: { [K in EventKind]: EventFields<K> } = {
  repo_push: {
    updated_tags: ['latest'],
    digest: imageDigest,
    media_type: ociManifest,
    pusher: 'jdoe',
  },
  repo_tag_deleted: {
    deleted_tags: ['1.4.0-rc.1'],
    digest: imageDigest,
    deleted_by: 'acme+ci',
  },
  build_queued: buildFields,
  build_start: buildFields,
  build_success: { ...buildFields, digest: imageDigest },
  build_failure: {
    ...buildFields,
    error_message: 'Step 4/9 RUN npm ci: exit status 1 (npm ERR! code ERESOLVE)',
  },
  build_cancelled: buildFields,
  repo_mirror_sync_started: {
    ...mirrorFields,
    message: `Syncing ${upstream} with tag patterns ${tagFilter.join(', ')}`,
  },
  repo_mirror_sync_success: {
    ...mirrorFields,
    message: `Synced ${upstream}: 4 tags copied or moved, 12 already up to date`,
    synced: 4,
    skipped: 12,
    failed: 0,
    failures: [],
  },
  repo_mirror_sync_failed: {
    ...mirrorFields,
    message: `Partial sync of ${upstream}: 2 of 18 tags failed`,
    synced: 4,
    skipped: 12,
    failed: 2,
    failures: [
      { tag: '1.27.1-alpine', error: 'upstream answered 429 Too Many Requests' },
      { tag: '1.27.0-perl', error: 'blob sha256:9f86d081884c… failed digest verification' },
    ],
  },
  subscription_disabled: {
    subscription_id: '0b9c6f3e-1d2a-4c5b-8e7f-6a5b4c3d2e1f',
    title: 'Deploy on push',
    reason:
      'Disabled after 10 failed deliveries in a row (last: connection refused). Fix the endpoint, then re-enable the subscription.',
  },
};

/** Sample fields of `kind`: a fresh copy each call, so a caller may change it. */
export function sampleEventFields<K extends EventKind>(kind: K): EventFields<K> {
  return structuredClone(samples[kind]);
}
