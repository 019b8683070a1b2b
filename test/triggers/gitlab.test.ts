import { describe, expect, it } from 'vitest';
import { WebhookAuthError, WebhookPayloadError } from '../../src/triggers/errors.ts';
import { parseGitLabEvent, verifyGitLabToken } from '../../src/triggers/gitlab.ts';

const token = 'glwt-7f3c1d2a-trigger';
const head = 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7';
const parent = '95790bf891e76fee5e1747ab589903a6a1f80f22';
const zeros = '0000000000000000000000000000000000000000';

const project = {
  id: 15,
  name: 'payments-api',
  web_url: 'https://gitlab.example.com/platform/payments/payments-api',
  git_ssh_url: 'git@gitlab.example.com:platform/payments/payments-api.git',
  git_http_url: 'https://gitlab.example.com/platform/payments/payments-api.git',
  namespace: 'payments',
  visibility_level: 0,
  path_with_namespace: 'platform/payments/payments-api',
  default_branch: 'main',
};

/** A "Push Hook" delivery as GitLab sends it (trimmed). */
function pushHook(overrides: Record<string, unknown> = {}) {
  return {
    object_kind: 'push',
    event_name: 'push',
    before: parent,
    after: head,
    ref: 'refs/heads/main',
    ref_protected: true,
    checkout_sha: head,
    message: null,
    user_id: 4,
    user_name: 'Ada Park',
    user_username: 'apark',
    user_email: 'ada.park@example.com',
    project_id: 15,
    project,
    commits: [
      {
        id: parent,
        message: 'Add refund endpoint\n',
        title: 'Add refund endpoint',
        timestamp: '2026-12-01T17:02:11+00:00',
        url: `${project.web_url}/-/commit/${parent}`,
        author: { name: 'Ada Park', email: 'ada.park@example.com' },
      },
      {
        id: head,
        message: 'Validate refund amounts\n',
        title: 'Validate refund amounts',
        timestamp: '2026-12-02T08:40:00+00:00',
        url: `${project.web_url}/-/commit/${head}`,
        author: { name: 'Ada Park', email: 'ada.park@example.com' },
      },
    ],
    total_commits_count: 2,
    repository: { name: 'payments-api', url: project.git_ssh_url },
    ...overrides,
  };
}

/** A "Tag Push Hook" for an annotated tag: `after` is the tag object, `checkout_sha` the commit. */
function tagPushHook(overrides: Record<string, unknown> = {}) {
  return pushHook({
    object_kind: 'tag_push',
    event_name: 'tag_push',
    ref: 'refs/tags/v3.1.0',
    ref_protected: false,
    before: zeros,
    after: '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7',
    checkout_sha: head,
    message: 'Release 3.1.0',
    commits: [],
    total_commits_count: 0,
    ...overrides,
  });
}

function thrown(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('verifying a GitLab token', () => {
  it('accepts the token the webhook was configured with', () => {
    expect(() => verifyGitLabToken(token, token)).not.toThrow();
  });

  it('refuses a wrong token with a 401, whatever its length', () => {
    for (const wrong of ['glwt-7f3c1d2a-triggeR', 'x', `${token}${token}`]) {
      const error = thrown(() => verifyGitLabToken(token, wrong));
      expect(error).toBeInstanceOf(WebhookAuthError);
      expect(error).toMatchObject({ status: 401, problem: 'mismatch', header: 'X-Gitlab-Token' });
      expect(error.message).not.toContain(token);
    }
  });

  it('refuses a delivery without the token, saying where to set it', () => {
    const error = thrown(() => verifyGitLabToken(token, undefined));
    expect(error).toMatchObject({ status: 401, problem: 'missing' });
    expect(error.message).toContain('"Secret token"');
  });
});

describe('reading a GitLab delivery', () => {
  it('turns a Push Hook into a push event with the head commit message', () => {
    expect(parseGitLabEvent('Push Hook', pushHook())).toEqual({
      kind: 'push',
      event: {
        provider: 'gitlab',
        ref: { kind: 'branch', name: 'main', full: 'refs/heads/main' },
        commit: head,
        before: parent,
        deleted: false,
        cloneUrl: {
          url: project.git_http_url,
          http: project.git_http_url,
          ssh: project.git_ssh_url,
        },
        repository: 'platform/payments/payments-api',
        defaultBranch: 'main',
        author: { name: 'Ada Park', email: 'ada.park@example.com', username: 'apark' },
        message: 'Validate refund amounts\n',
        compareUrl: `${project.web_url}/-/compare/${parent}...${head}`,
      },
    });
  });

  it('builds the tagged commit of a Tag Push Hook, with the tag message', () => {
    const delivery = parseGitLabEvent('Tag Push Hook', tagPushHook());
    expect(delivery.kind === 'push' && delivery.event).toMatchObject({
      ref: { kind: 'tag', name: 'v3.1.0', full: 'refs/tags/v3.1.0' },
      commit: head,
      deleted: false,
      message: 'Release 3.1.0',
    });
    expect(delivery.kind === 'push' && delivery.event.before).toBeUndefined();
  });

  it('marks a branch deletion as deleted, with nothing to build', () => {
    const delivery = parseGitLabEvent(
      'Push Hook',
      pushHook({ ref: 'refs/heads/feature/refunds', after: zeros, checkout_sha: null, commits: [] }),
    );
    expect(delivery.kind === 'push' && delivery.event).toMatchObject({
      deleted: true,
      commit: zeros,
      ref: { kind: 'branch', name: 'feature/refunds' },
    });
  });

  it('leaves out an email GitLab redacts', () => {
    const delivery = parseGitLabEvent('Push Hook', pushHook({ user_email: '[REDACTED]' }));
    expect(delivery.kind === 'push' && delivery.event.author).toEqual({
      name: 'Ada Park',
      username: 'apark',
    });
  });

  it('ignores other events with a reason', () => {
    expect(parseGitLabEvent('Merge Request Hook', { object_kind: 'merge_request' })).toEqual({
      kind: 'ignored',
      reason:
        'GitLab "Merge Request Hook" events do not trigger builds; only "Push Hook" and "Tag Push Hook" do',
    });
  });

  it('refuses a payload that does not match its event header, or lacks fields, with a 400', () => {
    const mismatch = thrown(() => parseGitLabEvent('Push Hook', tagPushHook()));
    expect(mismatch).toBeInstanceOf(WebhookPayloadError);
    expect(mismatch.message).toContain('object_kind "push"');

    const broken = thrown(() => parseGitLabEvent('Push Hook', pushHook({ project: { id: 15 } })));
    expect(broken).toMatchObject({ status: 400 });
    expect(broken.message).toMatch(/^invalid GitLab Push Hook payload: project\.path_with_namespace/);
  });
});
