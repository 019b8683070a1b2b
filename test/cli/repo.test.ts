import { beforeAll, describe, expect, it } from 'vitest';
import type { RepositoryResource } from '../../src/cli/resources.ts';
import { accessOf, adminPassword, adminUser, basic, fetchToken } from '../helpers/auth.ts';
import { OciClient } from '../helpers/oci-client.ts';
import { recordFields, tableRows, useCliGateway, type CliUser } from './cli-user.ts';

describe('slipway repo', () => {
  const gateway = useCliGateway();
  let alice: CliUser;

  /** What an anonymous registry client may do on a repository. */
  const anonymousActions = async (repository: string) => {
    const answer = await fetchToken(gateway.slipway, [`repository:${repository}:pull`]);
    return accessOf(answer.body.token)[0]?.actions ?? [];
  };

  beforeAll(async () => {
    await gateway.root.ok(['org', 'create', 'acme']);
    alice = await gateway.signedUpUser('alice');
  });

  it('create makes a private repository that list and show describe', async () => {
    expect(await gateway.root.ok(['repo', 'create', 'acme/app'])).toBe(
      'created private repository acme/app\n',
    );
    expect(tableRows(await gateway.root.ok(['repo', 'list', '--namespace', 'acme']))).toContainEqual(
      expect.objectContaining({ repository: 'acme/app', visibility: 'private' }),
    );
    expect(recordFields(await gateway.root.ok(['repo', 'show', 'acme/app']))).toMatchObject({
      repository: 'acme/app',
      visibility: 'private',
      'your role': 'admin',
    });
    expect(await anonymousActions('acme/app')).toEqual([]);
  });

  it('visibility public lets anyone pull, and private takes it back', async () => {
    await gateway.root.ok(['repo', 'create', 'acme/site', '--visibility', 'public']);
    expect(await anonymousActions('acme/site')).toEqual(['pull']);
    expect(await gateway.root.ok(['repo', 'visibility', 'acme/site', 'private'])).toBe(
      'acme/site is private\n',
    );
    expect(await anonymousActions('acme/site')).toEqual([]);
    expect(await gateway.root.json<RepositoryResource[]>(['repo', 'list', '--public'])).not.toContainEqual(
      expect.objectContaining({ name: 'acme/site' }),
    );
  });

  it('permission set grants a user a role that shows in list and in what the user may do', async () => {
    await gateway.root.ok(['repo', 'create', 'acme/api']);
    const hidden = await alice.run(['repo', 'show', 'acme/api']);
    expect(hidden.code).toBe(2);
    expect(hidden.stderr).toBe('slipway: repository acme/api does not exist or you cannot see it\n');

    expect(await gateway.root.ok(['repo', 'permission', 'set', 'acme/api', 'user', 'alice', 'read'])).toBe(
      'user alice has role read on acme/api\n',
    );
    expect(tableRows(await gateway.root.ok(['repo', 'permission', 'list', 'acme/api']))).toContainEqual({
      kind: 'user',
      name: 'alice',
      role: 'read',
    });
    expect(recordFields(await alice.ok(['repo', 'show', 'acme/api']))['your role']).toBe('read');
    expect(tableRows(await alice.ok(['repo', 'list'])).map((row) => row.repository)).toContain('acme/api');

    await gateway.root.ok(['repo', 'permission', 'remove', 'acme/api', 'user', 'alice']);
    expect((await alice.run(['repo', 'show', 'acme/api'])).code).toBe(2);
  });

  it('a team granted write on a repository gives its members push', async () => {
    await gateway.root.ok(['repo', 'create', 'acme/worker']);
    await gateway.root.ok(['org', 'team', 'put', 'acme', 'devs', '--role', 'member']);
    await gateway.root.ok(['org', 'member', 'add', 'acme', 'devs', 'alice']);
    await gateway.root.ok(['repo', 'permission', 'set', 'acme/worker', 'team', 'devs', 'write']);
    const answer = await fetchToken(
      gateway.slipway,
      ['repository:acme/worker:pull,push'],
      basic('alice', 'alice-password-1'),
    );
    expect(accessOf(answer.body.token)[0]?.actions.sort()).toEqual(['pull', 'push']);
  });

  it('names with more than one slash work', async () => {
    await gateway.root.ok(['repo', 'create', 'acme/team/tool']);
    expect(recordFields(await gateway.root.ok(['repo', 'show', 'acme/team/tool'])).repository).toBe(
      'acme/team/tool',
    );
    const bare = await gateway.root.run(['repo', 'show', 'tool']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('"tool" is not a repository name');
  });

  it('tags lists tags; tag history shows each move and tag restore puts an earlier digest back', async () => {
    const registry = new OciClient(gateway.slipway.url, { Authorization: basic(adminUser, adminPassword) });
    const first = await registry.pushImage('acme/app', 'v1');
    const second = await registry.pushImage('acme/app', 'v1');
    await registry.pushImage('acme/app', 'v2');

    const tags = tableRows(await gateway.root.ok(['repo', 'tags', 'acme/app']));
    expect(tags.map((tag) => tag.tag).sort()).toEqual(['v1', 'v2']);
    expect(tags.find((tag) => tag.tag === 'v1')?.digest).toBe(second.digest);

    const history = tableRows(await gateway.root.ok(['repo', 'tag', 'history', 'acme/app', 'v1']));
    expect(history.slice(0, 2)).toEqual([
      expect.objectContaining({ digest: second.digest, previous: first.digest, actor: 'root' }),
      expect.objectContaining({ digest: first.digest, previous: '-', actor: 'root' }),
    ]);

    expect(await gateway.root.ok(['repo', 'tag', 'restore', 'acme/app', 'v1', first.digest])).toBe(
      `acme/app:v1 points at ${first.digest}\n`,
    );
    const manifest = await registry.fetch('/v2/acme/app/manifests/v1', {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    await manifest.arrayBuffer();
    expect(manifest.headers.get('docker-content-digest')).toBe(first.digest);
  });

  it('--limit cuts a listing and says there is more', async () => {
    const cut = await gateway.root.run(['repo', 'list', '--namespace', 'acme', '--limit', '2']);
    expect(cut.code).toBe(0);
    expect(tableRows(cut.stdout)).toHaveLength(2);
    expect(cut.stderr).toContain('showing the first 2; raise --limit to see more');
  });

  it('delete removes a repository', async () => {
    await gateway.root.ok(['repo', 'create', 'acme/old']);
    expect(await gateway.root.ok(['repo', 'delete', 'acme/old'])).toBe('deleted repository acme/old\n');
    const gone = await gateway.root.run(['repo', 'show', 'acme/old']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toBe('slipway: repository acme/old does not exist or you cannot see it\n');
  });
});
