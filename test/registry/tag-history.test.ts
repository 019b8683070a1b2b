import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RepositoryName, TagName } from '../../src/registry/names.ts';
import { OciClient } from '../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

describe('tag history', () => {
  let slipway: TestSlipway;
  let client: OciClient;
  const repository = 'team/history' as RepositoryName;
  const tag = 'stable' as TagName;

  beforeAll(async () => {
    slipway = await startSlipway();
    client = new OciClient(slipway.url);
  });
  afterAll(() => slipway.stop());

  it('records every move and deletion of a tag, newest first', async () => {
    const first = await client.pushImage(repository, tag);
    const second = await client.pushImage(repository, tag);
    await client.pushImage(repository, tag); // same tag again: a third move
    expect(await client.status(`/v2/${repository}/manifests/${tag}`, { method: 'DELETE' })).toBe(202);

    const history = await slipway.services.tagHistory.list(repository, tag);
    expect(history).toHaveLength(4);
    expect(history[0]).toMatchObject({ digest: null, tag });
    expect(history[2]).toMatchObject({ digest: second.digest, previousDigest: first.digest });
    expect(history[3]).toMatchObject({ digest: first.digest, previousDigest: null });
    expect(history[0]!.occurredAt.getTime()).toBeGreaterThanOrEqual(history[3]!.occurredAt.getTime());
  });

  it('restores a tag to an earlier digest, and pulls see it at once', async () => {
    const history = await slipway.services.tagHistory.list(repository, tag);
    const earlier = history[history.length - 1]!.digest!;
    await slipway.services.tagHistory.restore(repository, tag, earlier, { name: 'admin' });

    const response = await client.fetch(`/v2/${repository}/manifests/${tag}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-content-digest')).toBe(earlier);
    const [latest] = await slipway.services.tagHistory.list(repository, tag, 1);
    expect(latest).toMatchObject({ digest: earlier, actor: 'admin' });
  });

  it('refuses to restore to a manifest that no longer exists', async () => {
    const image = await client.pushImage(repository, 'gone');
    await client.fetch(`/v2/${repository}/manifests/${image.digest}`, { method: 'DELETE' });
    await expect(
      slipway.services.tagHistory.restore(repository, 'gone' as TagName, image.digest, { name: null }),
    ).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
    expect(await client.status(`/v2/${repository}/manifests/gone`)).toBe(404);
  });
});
