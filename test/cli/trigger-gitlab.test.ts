import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitLab, fakeGitLabToken } from '../helpers/fake-gitlab.ts';
import { recordFields, useCliGateway } from './cli-user.ts';

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

  afterAll(async () => {
    await gitlab.stop();
  });

  it('registers the webhook and a deploy key, prints them, never the API token; delete removes them', async () => {
    const created = await gateway.root.run(
      [
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
      ],
      { stdin: `${fakeGitLabToken}\n` },
    );
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
});
