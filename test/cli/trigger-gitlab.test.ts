import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitLab, fakeGitLabToken } from '../helpers/fake-gitlab.ts';
import type { IssuedTriggerResource } from '../../src/cli/resources.ts';
import { recordFields, tableRows, useCliGateway } from './cli-user.ts';

/** `slipway trigger create --gitlab-url …` sets the GitLab project up; FakeGitLab stands in for GitLab. */
describe('slipway trigger with a GitLab project set up through its API', () => {
  const gateway = useCliGateway();
  const gitlab = new FakeGitLab();

  beforeAll(async () => {
    await gitlab.start();
    gitlab.addProject({ id: 7, path_with_namespace: 'team/app', default_branch: 'main', role: 'maintainer' });
    await gateway.root.ok(['org', 'create', 'acme']);
    await gateway.root.ok(['repo', 'create', 'acme/app']);
  });

  /** `trigger create` of a GitLab trigger for acme/app that sets up the project team/app, token on stdin. */
  const createArgs = () => [
    'trigger',
    'create',
    '--repo',
    'acme/app',
    '--gitlab',
    '--gitlab-url',
    gitlab.url,
    '--gitlab-project',
    'team/app',
    '--gitlab-token-stdin',
  ];

  afterAll(async () => {
    await gitlab.stop();
  });

  it('registers the webhook and a deploy key, prints them, never the API token; delete removes them', async () => {
    const created = await gateway.root.run(createArgs(), { stdin: `${fakeGitLabToken}\n` });
    expect(created.code, created.stderr).toBe(0);
    expect(`${created.stdout}${created.stderr}`).not.toContain(fakeGitLabToken);
    const fields = recordFields(created.stdout);
    expect(fields['gitlab project']).toBe(`team/app (7) on ${gitlab.url}`);
    const [hook] = gitlab.hooksOf(7);
    expect(fields['gitlab webhook']).toBe(String(hook!.id));
    expect(hook).toMatchObject({ url: fields['webhook url'], push_events: true, tag_push_events: true });
    const [key] = gitlab.deployKeysOf(7);
    expect(fields['deploy key']).toMatch(new RegExp(`^${key!.id}, read-only, SHA256:`));
    expect(fields['clone url']).toMatch(/^git@|^ssh:\/\//);
    expect(created.stderr).toContain('Nothing to do in GitLab');

    const id = fields['webhook url']!.split('/').at(-1)!;
    const deleted = await gateway.root.run(['trigger', 'delete', id]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(gitlab.hooksOf(7)).toEqual([]);
    expect(gitlab.deployKeysOf(7)).toEqual([]);
  });

  it('show and list say when the hook posts to an old public URL; gitlab-sync moves it, with a new token if need be', async () => {
    const { id, gitlab: link } = await gateway.root.json<IssuedTriggerResource>(createArgs(), {
      stdin: fakeGitLabToken,
    });
    const hookId = link!.hookId;
    const { publicUrl } = gateway.slipway.services;
    const oldUrl = publicUrl.value;
    // The operator moved the gateway: it now runs with another public URL.
    publicUrl.value = gateway.slipway.url.replace('127.0.0.1', 'localhost');
    try {
      const shown = recordFields(await gateway.root.ok(['trigger', 'show', id]));
      expect(shown['webhook url']).toBe(`${publicUrl.value}/webhooks/gitlab/${id}`);
      expect(shown.problem).toContain(`posts to ${oldUrl}/webhooks/gitlab/${id}, not to this trigger's`);
      expect(shown.problem).toContain(`slipway trigger gitlab-sync ${id}`);
      const listed = await gateway.root.run(['trigger', 'list', '--repo', 'acme/app']);
      const row = tableRows(listed.stdout).find((r) => r.id === id);
      expect(row?.problem).toBe('GitLab webhook posts elsewhere');
      expect(listed.stderr).toContain(
        `trigger ${id}: GitLab webhook ${hookId} of team/app posts to ${oldUrl}`,
      );

      // The token was revoked in GitLab: the sync says to give a new one, which it then keeps.
      const newToken = 'glpat-new-for-the-sync-7Rk2';
      gitlab.token = newToken;
      const refused = await gateway.root.run(['trigger', 'gitlab-sync', id]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('refused the API token (401 Unauthorized)');
      expect(refused.stderr).toContain(`slipway trigger gitlab-sync ${id} --gitlab-token-stdin`);
      expect(recordFields(await gateway.root.ok(['trigger', 'show', id])).problem).toContain(
        'syncing the GitLab webhook failed',
      );

      const synced = await gateway.root.run(['trigger', 'gitlab-sync', id, '--gitlab-token-stdin'], {
        stdin: `${newToken}\n`,
      });
      expect(synced.code, synced.stderr).toBe(0);
      expect(synced.stdout).toContain(
        `synced trigger ${id}: GitLab webhook ${hookId} posts to ${publicUrl.value}/webhooks/gitlab/${id}`,
      );
      expect(`${synced.stdout}${synced.stderr}`).not.toContain(newToken);
      expect(gitlab.hooksOf(7).find((hook) => hook.id === hookId)?.url).toBe(
        `${publicUrl.value}/webhooks/gitlab/${id}`,
      );
      const after = recordFields(await gateway.root.ok(['trigger', 'show', id]));
      expect(after.problem).toBe('-');
      expect(after['set up on gitlab']).toContain(
        `webhook ${hookId} to ${publicUrl.value}/webhooks/gitlab/${id}`,
      );
    } finally {
      publicUrl.value = oldUrl;
      gitlab.token = fakeGitLabToken;
    }
  });
});
