import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';
import {
  customDelivery,
  deliver,
  gitHubDelivery,
  gitHubFormDelivery,
  gitHubPing,
  gitHubPush,
  gitLabDelivery,
  gitLabPush,
  zeros,
} from './deliveries.ts';

interface IssuedTrigger {
  id: string;
  webhookUrl: string;
  webhookSecret: string;
}

const sha = (digit: string) => digit.repeat(40);

/** Git providers delivering to /webhooks on a gateway with authentication on; no builder runs. */
describe('/webhooks', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  let github: IssuedTrigger;
  let mainOnly: IssuedTrigger;
  let gitlab: IssuedTrigger;
  let custom: IssuedTrigger;

  const buildsOf = async (repository: string) =>
    (
      await slipway.services.db.query<{
        id: string;
        commit_sha: string;
        phase: string;
        tags: string[];
        ref: string;
      }>(
        `SELECT b.id, b.commit_sha, b.phase, b.tags, b.ref FROM builds b JOIN repositories r ON r.id = b.repository_id
          WHERE r.name = $1 ORDER BY b.queued_at`,
        [repository],
      )
    ).rows;
  const queuedEvents = async (repository: string) =>
    (
      await slipway.services.db.query<{
        payload: { build_id: string; docker_tags: string[]; trigger_kind: string };
      }>(`SELECT payload FROM events WHERE kind = 'build_queued' AND repository = $1 ORDER BY seq`, [
        repository,
      ])
    ).rows.map((row) => row.payload);

  async function createTrigger(
    repository: string,
    settings: Record<string, unknown>,
  ): Promise<IssuedTrigger> {
    const created = await root.post<IssuedTrigger>(`/repositories/${repository}/triggers`, settings);
    expect(created.status).toBe(201);
    return created.body;
  }

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    for (const name of ['acme/shop', 'acme/site', 'acme/payments', 'acme/tools'])
      await fixtures.repository(name);
    github = await createTrigger('acme/shop', {
      provider: 'github',
      cloneUrl: 'https://github.com/acme/shop.git',
    });
    mainOnly = await createTrigger('acme/site', {
      provider: 'github',
      cloneUrl: 'https://github.com/acme/site.git',
      refFilter: 'heads/main|tags/v.*',
    });
    gitlab = await createTrigger('acme/payments', {
      provider: 'gitlab',
      cloneUrl: 'https://gitlab.example.com/platform/payments-api.git',
      tagTemplates: ['${tag}', '${branch}-${short_sha}'],
      latestOnDefaultBranch: false,
    });
    custom = await createTrigger('acme/tools', {
      provider: 'custom',
      cloneUrl: 'git@git.example.com:team/tools.git',
    });
  });

  afterAll(async () => {
    await slipway?.stop();
  });

  it('answers a GitHub ping once its signature checks out', async () => {
    const { body, headers } = await gitHubDelivery('ping', gitHubPing, github.webhookSecret);
    const answer = await deliver(github.webhookUrl, body, headers);
    expect(answer).toMatchObject({ status: 200, body: { ping: 'ok', trigger: github.id } });
  });

  it('queues a build for a GitHub push, with its tags and a build_queued event', async () => {
    const commit = sha('a');
    const { body, headers } = await gitHubDelivery('push', gitHubPush(commit), github.webhookSecret);
    const answer = await deliver(github.webhookUrl, body, headers);
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({
      repository: 'acme/shop',
      phase: 'waiting',
      ref: 'refs/heads/main',
      commit,
      tags: expect.arrayContaining(['main', 'aaaaaaa', 'latest']),
    });
    expect(answer.body.logUrl).toBe(`${slipway.url}/api/v1/builds/${String(answer.body.id)}/logs`);

    const builds = await buildsOf('acme/shop');
    expect(builds).toEqual([
      expect.objectContaining({
        id: answer.body.id,
        commit_sha: commit,
        phase: 'waiting',
        ref: 'refs/heads/main',
      }),
    ]);
    const events = await queuedEvents('acme/shop');
    expect(events).toEqual([
      expect.objectContaining({
        build_id: answer.body.id,
        trigger_kind: 'github',
        docker_tags: builds[0]!.tags,
      }),
    ]);
  });

  it('does not build the same commit twice while it is under way: it answers 200 with that build', async () => {
    const { body, headers } = await gitHubDelivery('push', gitHubPush(sha('a')), github.webhookSecret);
    const again = await deliver(github.webhookUrl, body, headers);
    expect(again.status).toBe(200);
    expect(again.body.skipped).toContain('already being built');
    const [first] = await buildsOf('acme/shop');
    expect(again.body.build).toMatchObject({ id: first!.id, phase: 'waiting' });
    expect(await buildsOf('acme/shop')).toHaveLength(1);
    expect(await queuedEvents('acme/shop')).toHaveLength(1);
  });

  it('reads GitHub form-encoded deliveries too', async () => {
    const { body, headers } = await gitHubFormDelivery('push', gitHubPush(sha('b')), github.webhookSecret);
    const answer = await deliver(github.webhookUrl, body, headers);
    expect(answer.status).toBe(202);
    expect(answer.body.commit).toBe(sha('b'));
  });

  it('skips with 200 what the trigger builds nothing for: a filtered ref, a deleted ref, other events', async () => {
    const feature = await gitHubDelivery(
      'push',
      gitHubPush(sha('c'), { ref: 'refs/heads/feature/login' }),
      mainOnly.webhookSecret,
    );
    const filtered = await deliver(mainOnly.webhookUrl, feature.body, feature.headers);
    expect(filtered.status).toBe(200);
    expect(filtered.body.skipped).toContain('ref filter');

    const removal = await gitHubDelivery(
      'push',
      gitHubPush(zeros, { ref: 'refs/heads/main', deleted: true, head_commit: null }),
      mainOnly.webhookSecret,
    );
    const deleted = await deliver(mainOnly.webhookUrl, removal.body, removal.headers);
    expect(deleted.status).toBe(200);
    expect(deleted.body.skipped).toContain('deleted');

    const issue = await gitHubDelivery('issues', { action: 'opened' }, mainOnly.webhookSecret);
    const ignored = await deliver(mainOnly.webhookUrl, issue.body, issue.headers);
    expect(ignored.status).toBe(200);
    expect(ignored.body.skipped).toContain('"issues"');
    expect(await buildsOf('acme/site')).toEqual([]);
  });

  it('refuses a missing or wrong signature with 401 and queues nothing', async () => {
    const { body, headers } = await gitHubDelivery('push', gitHubPush(sha('d')), 'not-the-secret');
    const wrong = await deliver(github.webhookUrl, body, headers);
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ error: { code: 'SLW_ERR_WEBHOOK_UNAUTHENTICATED' } });
    expect(JSON.stringify(wrong.body)).not.toContain(github.webhookSecret);

    const { 'X-Hub-Signature-256': _signature, ...unsigned } = headers;
    const missing = await deliver(github.webhookUrl, body, unsigned);
    expect(missing.status).toBe(401);

    // A signature of another body: the body was changed on the way.
    const signed = await gitHubDelivery('push', gitHubPush(sha('d')), github.webhookSecret);
    const tampered = await deliver(github.webhookUrl, signed.body.replace('retry', 'RETRY'), signed.headers);
    expect(tampered.status).toBe(401);
    expect((await buildsOf('acme/shop')).map((build) => build.commit_sha)).not.toContain(sha('d'));
  });

  it('answers 404 for an unknown trigger, and for a trigger of another provider', async () => {
    const { body, headers } = await gitHubDelivery('push', gitHubPush(sha('e')), github.webhookSecret);
    const unknown = await deliver(`${slipway.url}/webhooks/github/${crypto.randomUUID()}`, body, headers);
    expect(unknown.status).toBe(404);
    const notAnId = await deliver(`${slipway.url}/webhooks/github/nope`, body, headers);
    expect(notAnId.status).toBe(404);
    const wrongProvider = await deliver(`${slipway.url}/webhooks/gitlab/${github.id}`, body, {
      ...headers,
      'X-Gitlab-Event': 'Push Hook',
      'X-Gitlab-Token': github.webhookSecret,
    });
    expect(wrongProvider.status).toBe(404);
    expect((await buildsOf('acme/shop')).map((build) => build.commit_sha)).not.toContain(sha('e'));
  });

  it('answers 400 for a signed payload it cannot read', async () => {
    const { body, headers } = await gitHubDelivery('push', { ref: 'refs/heads/main' }, github.webhookSecret);
    const answer = await deliver(github.webhookUrl, body, headers);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: { code: 'SLW_ERR_WEBHOOK_PAYLOAD' } });
  });

  it('answers 413 over 25 MB', async () => {
    const body = Buffer.alloc(25 * 1024 * 1024 + 1, 0x20);
    const answer = await deliver(github.webhookUrl, body, {
      'Content-Type': 'application/json',
      'X-GitHub-Event': 'push',
      'X-Hub-Signature-256': `sha256=${'0'.repeat(64)}`,
    });
    expect(answer.status).toBe(413);
  });

  it('builds nothing for a disabled trigger', async () => {
    expect((await root.patch(`/triggers/${mainOnly.id}`, { enabled: false })).status).toBe(200);
    const { body, headers } = await gitHubDelivery('push', gitHubPush(sha('f')), mainOnly.webhookSecret);
    const answer = await deliver(mainOnly.webhookUrl, body, headers);
    expect(answer.status).toBe(200);
    expect(answer.body.skipped).toContain('disabled');
    expect(await buildsOf('acme/site')).toEqual([]);
  });

  it('takes GitLab pushes and tag pushes with the trigger token, and refuses a wrong one', async () => {
    const push = gitLabDelivery('Push Hook', gitLabPush(sha('1')), gitlab.webhookSecret);
    const pushed = await deliver(gitlab.webhookUrl, push.body, push.headers);
    expect(pushed.status).toBe(202);
    expect(pushed.body.tags).toEqual(['main-1111111']);

    const tag = gitLabDelivery(
      'Tag Push Hook',
      gitLabPush(sha('2'), { object_kind: 'tag_push', ref: 'refs/tags/v3.1.0', before: zeros, commits: [] }),
      gitlab.webhookSecret,
    );
    const tagged = await deliver(gitlab.webhookUrl, tag.body, tag.headers);
    expect(tagged.status).toBe(202);
    expect(tagged.body).toMatchObject({ ref: 'refs/tags/v3.1.0', tags: ['v3.1.0'] });

    const wrong = gitLabDelivery('Push Hook', gitLabPush(sha('3')), 'guessed-token');
    expect((await deliver(gitlab.webhookUrl, wrong.body, wrong.headers)).status).toBe(401);
    expect((await buildsOf('acme/payments')).map((build) => build.commit_sha)).toEqual([sha('1'), sha('2')]);
    const events = await queuedEvents('acme/payments');
    expect(events.map((event) => event.trigger_kind)).toEqual(['gitlab', 'gitlab']);
  });

  it('takes custom git pushes signed with X-Slipway-Signature-256', async () => {
    const payload = {
      commit: sha('4'),
      ref: 'refs/heads/main',
      cloneUrl: 'git@git.example.com:team/tools.git',
      defaultBranch: 'main',
      author: { name: 'Lee Moss', email: 'lee@example.com' },
      message: 'Add lint step',
    };
    const signed = await customDelivery(payload, custom.webhookSecret);
    const answer = await deliver(custom.webhookUrl, signed.body, signed.headers);
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ repository: 'acme/tools', commit: sha('4') });

    const forged = await customDelivery({ ...payload, commit: sha('5') }, 'someone-elses-secret');
    expect((await deliver(custom.webhookUrl, forged.body, forged.headers)).status).toBe(401);
    const events = await queuedEvents('acme/tools');
    expect(events).toEqual([expect.objectContaining({ build_id: answer.body.id, trigger_kind: 'git' })]);
  });

  it('refuses deliveries signed with a secret that was replaced', async () => {
    const rotated = await root.post<IssuedTrigger>(`/triggers/${custom.id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.webhookSecret).not.toBe(custom.webhookSecret);
    const payload = {
      commit: sha('6'),
      ref: 'refs/heads/main',
      cloneUrl: 'git@git.example.com:team/tools.git',
    };
    const old = await customDelivery(payload, custom.webhookSecret);
    expect((await deliver(custom.webhookUrl, old.body, old.headers)).status).toBe(401);
    const fresh = await customDelivery(payload, rotated.body.webhookSecret);
    expect((await deliver(custom.webhookUrl, fresh.body, fresh.headers)).status).toBe(202);
  });
});
