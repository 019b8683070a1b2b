import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from '../../../src/registry/digest.ts';
import type { LocalRegistryStore } from '../../../src/registry/local-store.ts';
import { parseRepositoryName, parseTag } from '../../../src/registry/names.ts';
import type { MirrorDefinition } from '../../../src/mirror/sync/skopeo-sync-file.ts';
import {
  runMirrorSync,
  type MirrorSyncOptions,
  type MirrorSyncResult,
  type TagResult,
} from '../../../src/mirror/sync/sync-engine.ts';
import { parseTagFilter, type TagFilterInput } from '../../../src/mirror/sync/tag-filter.ts';
import { UpstreamClient } from '../../../src/mirror/upstream/client.ts';
import type { CountingProxy } from '../../helpers/counting-proxy.ts';
import type { DistributionOciClient } from '../../helpers/distribution.ts';
import { OciClient, type PushedImage } from '../../helpers/oci-client.ts';
import { startProxiedUpstream, type ProxiedUpstream } from '../../helpers/proxied-upstream.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';
import { waitFor } from '../../helpers/tools.ts';

/**
 * The sync engine against a Distribution upstream on loopback, reached through a proxy that counts
 * requests (and can fail or hold answers), copying into the local store of a gateway. The tests of the
 * `mirrors/app` mirror run in order, each starting from what the previous one left.
 */
describe('mirror sync engine', () => {
  const remote = 'team/app';
  const versions = ['1.0', '1.1', '1.2', '1.3', '1.4', '1.5'];
  const baseLayer = randomBytes(64 * 1024);
  let upstream: ProxiedUpstream;
  let counter: CountingProxy;
  let slipway: TestSlipway;
  let local: LocalRegistryStore;
  let client: UpstreamClient;
  let pusher: DistributionOciClient;
  const images = new Map<string, PushedImage>();
  let amd64: PushedImage;
  let arm64: PushedImage;
  let index: { digest: Digest; body: Buffer };

  beforeAll(async () => {
    upstream = await startProxiedUpstream();
    ({ counter, pusher } = upstream);
    for (const version of versions) {
      images.set(version, await pusher.pushImage(remote, version, { layers: [baseLayer, randomBytes(900)] }));
    }
    amd64 = await pusher.pushImage(remote, 'build-amd64', { platform: 'amd64' });
    arm64 = await pusher.pushImage(remote, 'build-arm64', { platform: 'arm64' });
    index = await pusher.pushIndex(remote, 'multi', [
      { digest: amd64.digest, size: amd64.size, arch: 'amd64' },
      { digest: arm64.digest, size: arm64.size, arch: 'arm64' },
    ]);
    slipway = await startSlipway();
    local = slipway.services.store;
    client = new UpstreamClient({ url: counter.url });
  });

  afterAll(async () => {
    await client?.close();
    await slipway?.stop();
    await upstream?.stop();
  });

  function mirror(
    name: string,
    changes: { remote?: string; filter?: TagFilterInput } = {},
  ): MirrorDefinition {
    return {
      name,
      upstream: { url: counter.url, repository: changes.remote ?? remote, tlsVerify: true },
      filter: parseTagFilter(changes.filter ?? { exclude: ['build-*'] }),
      platforms: ['linux/amd64'],
    };
  }

  function sync(definition: MirrorDefinition, options: MirrorSyncOptions = {}): Promise<MirrorSyncResult> {
    return runMirrorSync(definition, { upstream: client, local }, { retry: { baseDelayMs: 10 }, ...options });
  }

  const outcomes = (result: MirrorSyncResult) =>
    Object.fromEntries(result.tags.map((t) => [t.tag, t.outcome])) as Record<string, TagResult['outcome']>;

  const tagsWith = (result: MirrorSyncResult, outcome: TagResult['outcome']) =>
    result.tags.filter((t) => t.outcome === outcome).map((t) => t.tag);

  async function localDigest(repository: string, tag: string): Promise<Digest | undefined> {
    return local
      .getManifest(parseRepositoryName(repository), { kind: 'tag', tag: parseTag(tag) })
      .then((m) => m.digest)
      .catch(() => undefined);
  }

  async function hasManifest(repository: string, digest: Digest): Promise<boolean> {
    return local
      .getManifest(parseRepositoryName(repository), { kind: 'digest', digest })
      .then(() => true)
      .catch(() => false);
  }

  async function hasBlob(repository: string, digest: Digest): Promise<boolean> {
    return local
      .statBlob(parseRepositoryName(repository), digest)
      .then(() => true)
      .catch(() => false);
  }

  async function events(
    kind: string,
    repository: string,
  ): Promise<Array<{ tags: string[]; digest: string }>> {
    const { rows } = await slipway.services.db.query<{ tags: string[]; digest: string }>(
      `SELECT coalesce(payload->'updated_tags', payload->'deleted_tags') AS tags, payload->>'digest' AS digest
         FROM events WHERE kind = $1 AND repository = $2 ORDER BY seq`,
      [kind, repository],
    );
    return rows;
  }

  const upstreamGets = (part: string) => counter.count((r) => r.method === 'GET' && r.url.includes(part));

  async function deleteUpstream(repository: string, what: 'manifests' | 'blobs', digest: Digest) {
    const response = await fetch(`${upstream.url}/v2/${repository}/${what}/${digest}`, { method: 'DELETE' });
    await response.arrayBuffer();
    expect(response.status).toBe(202);
  }

  it('copies every selected tag byte-exact, an index with only the selected platforms, and reports skipped tags', async () => {
    const progress: TagResult[] = [];
    counter.requests.length = 0;
    const result = await sync(mirror('mirrors/app'), {
      tagPageSize: 4,
      onProgress: (r) => progress.push(r),
    });

    expect(result.cancelled).toBe(false);
    expect(tagsWith(result, 'copied').sort()).toEqual([...versions, 'multi'].sort());
    const skipped = result.tags.filter((t) => t.outcome === 'skipped');
    expect(skipped.sort((x, y) => x.tag.localeCompare(y.tag))).toEqual([
      { tag: 'build-amd64', outcome: 'skipped', reason: 'excluded by "build-*"' },
      { tag: 'build-arm64', outcome: 'skipped', reason: 'excluded by "build-*"' },
    ]);
    expect(result.totals).toMatchObject({ copied: 7, skipped: 2, failed: 0, unchanged: 0 });
    expect(progress).toHaveLength(9);
    // The page size is asked for (this Distribution ignores it and sends one page); no _catalog.
    expect(upstreamGets(`/v2/${remote}/tags/list?n=4`)).toBe(1);
    expect(upstreamGets('/_catalog')).toBe(0);
    expect(result.bytesCopied).toBe(result.tags.reduce((sum, t) => sum + (t.bytes ?? 0), 0));
    expect(result.bytesCopied).toBeGreaterThan(baseLayer.length);

    for (const version of versions) {
      const image = images.get(version)!;
      const stored = await local.getManifest(parseRepositoryName('mirrors/app'), {
        kind: 'tag',
        tag: parseTag(version),
      });
      expect(stored.content.equals(image.manifest)).toBe(true);
      expect(stored.digest).toBe(image.digest);
      for (const blob of [image.configDigest, ...image.layerDigests]) {
        expect(await hasBlob('mirrors/app', blob)).toBe(true);
      }
    }
    // The shared base layer is downloaded once, whichever tag got to it first.
    expect(upstreamGets(`/blobs/${computeDigest(baseLayer)}`)).toBe(1);

    const stored = await local.getManifest(parseRepositoryName('mirrors/app'), {
      kind: 'tag',
      tag: parseTag('multi'),
    });
    expect(stored.content.equals(index.body)).toBe(true);
    expect(stored.digest).toBe(index.digest);
    expect(await hasManifest('mirrors/app', amd64.digest)).toBe(true);
    expect(await hasBlob('mirrors/app', amd64.configDigest)).toBe(true);
    expect(await hasManifest('mirrors/app', arm64.digest)).toBe(false);
    expect(await hasBlob('mirrors/app', arm64.configDigest)).toBe(false);
    expect(upstreamGets(`/manifests/${arm64.digest}`)).toBe(0);

    const pushes = await events('repo_push', 'mirrors/app');
    expect(pushes.map((e) => e.tags).sort()).toEqual([...versions, 'multi'].sort().map((t) => [t]));
  });

  it('copies nothing the second time: every tag unchanged, no tag moved, only HEADs upstream', async () => {
    const pushesBefore = (await events('repo_push', 'mirrors/app')).length;
    counter.requests.length = 0;
    const result = await sync(mirror('mirrors/app'));

    expect(result.totals).toMatchObject({ unchanged: 7, copied: 0, skipped: 2, failed: 0 });
    expect(result.bytesCopied).toBe(0);
    expect(result.tags.find((t) => t.tag === 'multi')).toEqual({
      tag: 'multi',
      outcome: 'unchanged',
      digest: index.digest,
    });
    expect(await events('repo_push', 'mirrors/app')).toHaveLength(pushesBefore);
    expect(upstreamGets('/manifests/')).toBe(0);
    expect(upstreamGets('/blobs/')).toBe(0);
    expect(counter.count((r) => r.method === 'HEAD' && r.url.includes('/manifests/'))).toBe(7);
  });

  it('copies the newly selected platforms of an index already synced once the selection is widened', async () => {
    const narrow = mirror('mirrors/widened', { filter: { include: ['multi'] } });
    expect(outcomes(await sync(narrow))).toMatchObject({ multi: 'copied' });
    expect(await hasManifest('mirrors/widened', arm64.digest)).toBe(false);
    const pushesBefore = (await events('repo_push', 'mirrors/widened')).length;

    const widened = await sync({ ...narrow, platforms: 'all' });
    expect(outcomes(widened)).toMatchObject({ multi: 'copied' });
    expect(await hasManifest('mirrors/widened', arm64.digest)).toBe(true);
    expect(await hasBlob('mirrors/widened', arm64.configDigest)).toBe(true);
    expect(await localDigest('mirrors/widened', 'multi')).toBe(index.digest);
    // The tag did not move: no push event for filling in the index.
    expect(await events('repo_push', 'mirrors/widened')).toHaveLength(pushesBefore);

    expect(outcomes(await sync({ ...narrow, platforms: 'all' }))).toMatchObject({ multi: 'unchanged' });
  });

  it('copies a tag again when it moved upstream, and only that tag', async () => {
    const pushesBefore = (await events('repo_push', 'mirrors/app')).length;
    const moved = await pusher.pushImage(remote, '1.0', { layers: [baseLayer, randomBytes(700)] });
    counter.requests.length = 0;
    const result = await sync(mirror('mirrors/app'));

    expect(tagsWith(result, 'copied')).toEqual(['1.0']);
    expect(result.totals).toMatchObject({ copied: 1, unchanged: 6 });
    expect(await localDigest('mirrors/app', '1.0')).toBe(moved.digest);
    expect(upstreamGets(`/blobs/${computeDigest(baseLayer)}`)).toBe(0);
    const pushes = await events('repo_push', 'mirrors/app');
    expect(pushes).toHaveLength(pushesBefore + 1);
    expect(pushes.at(-1)).toEqual({ tags: ['1.0'], digest: moved.digest });
    images.set('1.0', moved);
  });

  it('keeps a tag deleted upstream unless deleteMissing is on, then deletes it', async () => {
    const doomed = await pusher.pushImage(remote, 'doomed');
    await sync(mirror('mirrors/app'));
    expect(await localDigest('mirrors/app', 'doomed')).toBe(doomed.digest);
    await deleteUpstream(remote, 'manifests', doomed.digest);

    const kept = await sync(mirror('mirrors/app'));
    expect(kept.deletions).toEqual({ status: 'off' });
    expect(kept.totals.deleted).toBe(0);
    expect(await localDigest('mirrors/app', 'doomed')).toBe(doomed.digest);

    const deleteMissing = { enabled: true, maxDeletions: 3 };
    const dry = await sync(mirror('mirrors/app'), { deleteMissing, dryRun: true });
    expect(dry.tags.at(-1)).toEqual({ tag: 'doomed', outcome: 'would-delete', digest: doomed.digest });
    expect(await localDigest('mirrors/app', 'doomed')).toBe(doomed.digest);

    const pruned = await sync(mirror('mirrors/app'), { deleteMissing });
    expect(pruned.deletions).toEqual({ status: 'allowed', tags: ['doomed'] });
    expect(pruned.tags.at(-1)).toEqual({ tag: 'doomed', outcome: 'deleted', digest: doomed.digest });
    expect(pruned.totals).toMatchObject({ deleted: 1, unchanged: 7 });
    expect(await localDigest('mirrors/app', 'doomed')).toBeUndefined();
    expect((await events('repo_tag_deleted', 'mirrors/app')).at(-1)).toEqual({
      tags: ['doomed'],
      digest: doomed.digest,
    });
  });

  it('deletes nothing when more tags would go than maxDeletions allows, and says why', async () => {
    // A narrowed filter: multi and 1.0 are no longer selected.
    const narrowed = mirror('mirrors/app', { filter: { include: ['1.*'], exclude: ['1.0'] } });
    const result = await sync(narrowed, { deleteMissing: { enabled: true, maxDeletions: 1 } });

    expect(result.deletions).toMatchObject({ status: 'refused', tags: ['1.0', 'multi'] });
    expect(result.deletions.status === 'refused' && result.deletions.reason).toMatch(
      /safety check failed: 2 local tags .* more than the 1 allowed .* none was deleted/,
    );
    expect(result.totals).toMatchObject({ deleted: 0, unchanged: 5 });
    expect(await localDigest('mirrors/app', 'multi')).toBe(index.digest);
    expect(await localDigest('mirrors/app', '1.0')).toBe(images.get('1.0')!.digest);
  });

  it('links a blob Slipway already stores elsewhere instead of downloading it', async () => {
    const shared = randomBytes(32 * 1024);
    const fresh = randomBytes(32 * 1024);
    await new OciClient(slipway.url).pushBlob('elsewhere/thing', shared);
    const image = await pusher.pushImage('team/linked', '1', { layers: [shared, fresh] });
    counter.requests.length = 0;

    const result = await sync(mirror('mirrors/linked', { remote: 'team/linked' }));
    expect(result.tags).toEqual([
      { tag: '1', outcome: 'copied', digest: image.digest, bytes: expect.any(Number) },
    ]);
    expect(upstreamGets(`/blobs/${computeDigest(shared)}`)).toBe(0);
    expect(upstreamGets(`/blobs/${computeDigest(fresh)}`)).toBe(1);
    expect(await hasBlob('mirrors/linked', computeDigest(shared))).toBe(true);
    expect(result.bytesCopied).toBeLessThan(shared.length + fresh.length);

    // A second mirror of the same repository downloads no blob at all.
    counter.requests.length = 0;
    const again = await sync(mirror('mirrors/app-again'));
    expect(again.totals).toMatchObject({ copied: 7, failed: 0 });
    expect(upstreamGets('/blobs/')).toBe(0);
  });

  it('only reports in a dry run: would-copy, unchanged and skipped, with nothing written or downloaded', async () => {
    counter.requests.length = 0;
    const fresh = await sync(mirror('mirrors/dry'), { dryRun: true });
    expect(fresh.dryRun).toBe(true);
    expect(fresh.totals).toMatchObject({ 'would-copy': 7, skipped: 2, copied: 0 });
    expect(fresh.tags.find((t) => t.tag === 'multi')).toEqual({
      tag: 'multi',
      outcome: 'would-copy',
      digest: index.digest,
    });
    expect(upstreamGets('/manifests/')).toBe(0);
    expect(upstreamGets('/blobs/')).toBe(0);
    await expect(local.listTags(parseRepositoryName('mirrors/dry'), {})).rejects.toMatchObject({
      code: 'NAME_UNKNOWN',
    });
    expect(await events('repo_push', 'mirrors/dry')).toHaveLength(0);

    const moved = await pusher.pushImage(remote, '1.1', { layers: [randomBytes(300)] });
    const existing = await sync(mirror('mirrors/app'), { dryRun: true });
    expect(outcomes(existing)).toMatchObject({ '1.1': 'would-copy', '1.2': 'unchanged', multi: 'unchanged' });
    expect(await localDigest('mirrors/app', '1.1')).toBe(images.get('1.1')!.digest);
    expect(existing.tags.find((t) => t.tag === '1.1')?.digest).toBe(moved.digest);
  });

  it('retries a tag after a passing failure, but not after a 404', async () => {
    const flaky = await pusher.pushImage('team/flaky', '1');
    const broken = await pusher.pushImage('team/flaky', '2', { layers: [randomBytes(400)] });
    await deleteUpstream('team/flaky', 'blobs', broken.layerDigests[0]!);
    let failed = false;
    upstream.shapeHead = (request) => {
      if (failed || request.method !== 'GET' || !request.url.endsWith(`/manifests/${flaky.digest}`)) return;
      failed = true;
      return { status: 503 };
    };
    counter.requests.length = 0;
    try {
      const result = await sync(mirror('mirrors/flaky', { remote: 'team/flaky' }));
      expect(outcomes(result)).toEqual({ '1': 'copied', '2': 'failed' });
      expect(result.tags.find((t) => t.tag === '2')?.reason).toMatch(/blob not found/);
      expect(upstreamGets(`/manifests/${flaky.digest}`)).toBe(2);
      expect(upstreamGets(`/blobs/${broken.layerDigests[0]}`)).toBe(1);
      // The failed tag did not move: its manifest is not there and no tag points anywhere.
      expect(await localDigest('mirrors/flaky', '2')).toBeUndefined();
      expect(await hasManifest('mirrors/flaky', broken.digest)).toBe(false);
    } finally {
      upstream.shapeHead = undefined;
    }
  });

  it('stops on cancel: no new tag starts, the copy in flight is aborted and its tag not moved', async () => {
    const layers = new Map<string, Buffer>();
    for (const tag of ['a', 'b', 'c', 'd']) {
      layers.set(tag, randomBytes(256 * 1024));
      await pusher.pushImage('team/slow', tag, { layers: [layers.get(tag)!] });
    }
    // One tag at a time, in the upstream's order: the second one's layer download is held.
    const [first, held, ...rest] = await client.listTags('team/slow');
    const heldDigest = computeDigest(layers.get(held!)!);
    const release = upstream.hold(
      (request) => request.method === 'GET' && request.url.endsWith(`/blobs/${heldDigest}`),
      1024,
    );
    counter.requests.length = 0;
    const controller = new AbortController();
    try {
      const running = sync(mirror('mirrors/slow', { remote: 'team/slow' }), {
        concurrency: 1,
        signal: controller.signal,
      });
      // Aborted as soon as the answer comes: often before the store started reading the body.
      await waitFor('the held layer download', () => (upstreamGets(heldDigest) > 0 ? true : undefined), {
        intervalMs: 1,
      });
      controller.abort();
      const result = await running;

      expect(result.cancelled).toBe(true);
      expect(result.tags).toEqual([
        { tag: first, outcome: 'copied', digest: expect.any(String), bytes: expect.any(Number) },
        { tag: held, outcome: 'failed', reason: 'cancelled before the copy finished' },
      ]);
      expect(result.notStarted).toEqual(rest);
      expect(result.deletions).toEqual({ status: 'not-run', reason: 'cancelled' });
      expect(await localDigest('mirrors/slow', first!)).toBeDefined();
      expect(await localDigest('mirrors/slow', held!)).toBeUndefined();
      expect(await hasBlob('mirrors/slow', heldDigest)).toBe(false);
      expect(upstreamGets(heldDigest)).toBe(1);
      for (const tag of rest) {
        expect(counter.count((r) => r.url.endsWith(`/manifests/${tag}`))).toBe(0);
        expect(await localDigest('mirrors/slow', tag)).toBeUndefined();
      }
    } finally {
      release();
    }
  });
});
