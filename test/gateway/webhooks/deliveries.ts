import { signCustomPayload } from '../../../src/triggers/custom-git.ts';
import { signGitHubDelivery } from '../../../src/triggers/github.ts';

/** Sends a webhook delivery as a git provider would: a POST with the raw body and its headers. */
export async function deliver(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers, body });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A GitHub delivery, JSON, signed with the secret exactly as GitHub signs it. */
export async function gitHubDelivery(event: string, payload: unknown, secret: string) {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': 'GitHub-Hookshot/8f2c3a1',
      'X-GitHub-Event': event,
      'X-GitHub-Delivery': crypto.randomUUID(),
      'X-Hub-Signature-256': await signGitHubDelivery(secret, body),
    },
  };
}

/** The same, as a webhook whose content type is left at application/x-www-form-urlencoded. */
export async function gitHubFormDelivery(event: string, payload: unknown, secret: string) {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  return {
    body,
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-GitHub-Event': event,
      'X-Hub-Signature-256': await signGitHubDelivery(secret, body),
    },
  };
}

export function gitLabDelivery(event: 'Push Hook' | 'Tag Push Hook', payload: unknown, token: string) {
  return {
    body: JSON.stringify(payload),
    headers: { 'Content-Type': 'application/json', 'X-Gitlab-Event': event, 'X-Gitlab-Token': token },
  };
}

export async function customDelivery(payload: unknown, secret: string) {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'X-Slipway-Signature-256': await signCustomPayload(secret, body),
    },
  };
}

export const zeros = '0000000000000000000000000000000000000000';

/** A push delivery as GitHub sends it (trimmed to the fields around the ones Slipway reads). */
export function gitHubPush(commit: string, overrides: Record<string, unknown> = {}) {
  const before = '89e6c98d92887913cadf06b2adb97f26cde4849b';
  return {
    ref: 'refs/heads/main',
    before,
    after: commit,
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: `https://github.com/acme/shop/compare/${before.slice(0, 12)}...${commit.slice(0, 12)}`,
    commits: [],
    head_commit: {
      id: commit,
      tree_id: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      distinct: true,
      message: 'Checkout: retry card payments once\n\nThe provider times out under load.',
      timestamp: '2026-12-02T09:14:03+01:00',
      url: `https://github.com/acme/shop/commit/${commit}`,
      author: { name: 'Dana Whit', email: 'dana@acme.example', username: 'danawhit' },
      committer: { name: 'GitHub', email: 'noreply@github.com', username: 'web-flow' },
      added: [],
      removed: [],
      modified: ['src/checkout.ts'],
    },
    repository: {
      id: 881234,
      name: 'shop',
      full_name: 'acme/shop',
      private: true,
      clone_url: 'https://github.com/acme/shop.git',
      ssh_url: 'git@github.com:acme/shop.git',
      git_url: 'git://github.com/acme/shop.git',
      default_branch: 'main',
      master_branch: 'main',
      pushed_at: 1796199250,
    },
    pusher: { name: 'danawhit', email: 'dana@acme.example' },
    sender: { login: 'danawhit', id: 4411 },
    ...overrides,
  };
}

export const gitHubPing = {
  zen: 'Keep it logically awesome.',
  hook_id: 4242,
  hook: { type: 'Repository', id: 4242, active: true, events: ['push'] },
  repository: { id: 881234, full_name: 'acme/shop' },
  sender: { login: 'danawhit', id: 4411 },
};

/** A GitLab "Push Hook" (or, with object_kind tag_push, "Tag Push Hook") delivery (trimmed). */
export function gitLabPush(commit: string, overrides: Record<string, unknown> = {}) {
  const web = 'https://gitlab.example.com/platform/payments-api';
  return {
    object_kind: 'push',
    event_name: 'push',
    before: '95790bf891e76fee5e1747ab589903a6a1f80f22',
    after: commit,
    ref: 'refs/heads/main',
    checkout_sha: commit,
    message: null,
    user_id: 4,
    user_name: 'Ada Park',
    user_username: 'apark',
    user_email: 'ada.park@example.com',
    project_id: 15,
    project: {
      id: 15,
      name: 'payments-api',
      web_url: web,
      git_ssh_url: 'git@gitlab.example.com:platform/payments-api.git',
      git_http_url: 'https://gitlab.example.com/platform/payments-api.git',
      path_with_namespace: 'platform/payments-api',
      default_branch: 'main',
    },
    commits: [{ id: commit, message: 'Validate refund amounts\n', url: `${web}/-/commit/${commit}` }],
    total_commits_count: 1,
    ...overrides,
  };
}
