import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPayload } from '../../src/events/catalog.ts';
import { parseRepositoryName, parseTag } from '../../src/registry/names.ts';
import { mediaTypes } from '../../src/registry/media-types.ts';
import { OciClient } from '../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

/**
 * Every tag move and deletion writes its event in the same transaction: the outbox holds exactly the
 * changes that happened, whatever the delivery side does. Delivery is off here, so nothing drains it.
 */
describe('the event outbox', () => {
  let slipway: TestSlipway;
  let client: OciClient;

  beforeAll(async () => {
    slipway = await startSlipway({ config: { events: { worker: false } } });
    client = new OciClient(slipway.url);
  });
  afterAll(() => slipway?.stop());

  async function eventsOf(repository: string): Promise<EventPayload[]> {
    const { rows } = await slipway.services.db.query<{ payload: EventPayload }>(
      'SELECT payload FROM events WHERE repository = $1 ORDER BY seq',
      [repository],
    );
    return rows.map((r) => r.payload);
  }

  it('writes one repo_push for a tagged push, with the tags, digest, media type and pull URL', async () => {
    const image = await client.pushImage('acme/api', 'v1');
    const [event, ...rest] = await eventsOf('acme/api');
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      kind: 'repo_push',
      version: 1,
      namespace: 'acme',
      repository: 'acme/api',
      name: 'api',
      docker_url: `${slipway.host}/acme/api`,
      updated_tags: ['v1'],
      digest: image.digest,
      media_type: mediaTypes.ociManifest,
      pusher: null,
    });
    expect(Date.parse(event!.time)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('writes nothing for a push by digest or for a re-push that moves no tag', async () => {
    const image = await client.pushImage('acme/quiet', 'v1');
    expect(await eventsOf('acme/quiet')).toHaveLength(1);
    const again = await client.putManifest('acme/quiet', 'v1', image.manifest, mediaTypes.ociManifest);
    const byDigest = await client.putManifest(
      'acme/quiet',
      image.digest,
      image.manifest,
      mediaTypes.ociManifest,
    );
    expect([again.status, byDigest.status]).toEqual([201, 201]);
    expect(await eventsOf('acme/quiet')).toHaveLength(1);
  });

  it('writes no event when the manifest is refused', async () => {
    const refused = await client.putManifest(
      'acme/refused',
      'v1',
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociManifest,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: 'sha256:' + 'a'.repeat(64),
          size: 2,
        },
        layers: [],
      }),
      mediaTypes.ociManifest,
    );
    expect(refused.status).toBe(400);
    expect(await eventsOf('acme/refused')).toEqual([]);
  });

  it('writes repo_tag_deleted for a tag deletion and for a manifest deletion that takes tags with it', async () => {
    const first = await client.pushImage('acme/gone', 'a');
    await client.putManifest('acme/gone', 'b', first.manifest, mediaTypes.ociManifest);
    const second = await client.pushImage('acme/gone', 'c');
    expect(await client.status(`/v2/acme/gone/manifests/c`, { method: 'DELETE' })).toBe(202);
    expect(await client.status(`/v2/acme/gone/manifests/${first.digest}`, { method: 'DELETE' })).toBe(202);
    const deletions = (await eventsOf('acme/gone')).filter((e) => e.kind === 'repo_tag_deleted');
    expect(deletions).toMatchObject([
      { deleted_tags: ['c'], digest: second.digest },
      { deleted_tags: expect.arrayContaining(['a', 'b']), digest: first.digest },
    ]);
  });

  it('writes repo_push when a tag is restored to an earlier digest', async () => {
    const old = await client.pushImage('acme/restore', 'v1');
    await client.pushImage('acme/restore', 'v1');
    await slipway.services.tagHistory.restore(
      parseRepositoryName('acme/restore'),
      parseTag('v1'),
      old.digest,
      {
        name: 'someone',
      },
    );
    const pushes = (await eventsOf('acme/restore')).filter((e) => e.kind === 'repo_push');
    expect(pushes).toHaveLength(3);
    expect(pushes[2]).toMatchObject({ updated_tags: ['v1'], digest: old.digest, pusher: 'someone' });
  });
});
