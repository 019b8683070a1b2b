import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildLogWriter } from '../../../src/builder/logs/writer.ts';
import type { Digest } from '../../../src/registry/digest.ts';
import type { BuildLogEntryResource, BuildResource } from '../../../src/cli/resources.ts';
import { readServerSentEvents } from '../../../src/cli/server-sent-events.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

/**
 * Followers of builds the gateway ends itself: the log ends with the reason and the final phase as
 * soon as the build ends, not at the stream's keep-alive check (15 s, far beyond what is waited here).
 */
describe('following the log of a build the gateway ends', () => {
  const rootAuth = basic(adminUser, adminPassword);
  let slipway: TestSlipway;
  let redis: Redis;
  let root: ApiCaller;

  beforeAll(async () => {
    slipway = await startSecuredSlipway({ config: { builds: { claim: 1, queueTimeout: 3600 } } });
    redis = slipway.services.redis.connect();
    root = ApiCaller.as(slipway, rootAuth);
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
  });

  afterAll(async () => {
    redis?.disconnect();
    await slipway?.stop();
  });

  async function startBuild(ref: string): Promise<BuildResource> {
    const started = await root.post<BuildResource>('/repositories/acme/app/builds', {
      cloneUrl: 'https://git.example.com/acme/app.git',
      ref,
    });
    expect(started.status).toBe(202);
    return started.body;
  }

  const describeEntry = (entry: BuildLogEntryResource) =>
    entry.type === 'line' ? entry.text : `${entry.type}:${'phase' in entry ? entry.phase : ''}`;

  /** Follows the log over SSE from now on; its entries once the stream closes, and when that was. */
  async function follow(buildId: string) {
    const response = await fetch(`${slipway.url}/api/v1/builds/${buildId}/logs`, {
      headers: { Authorization: rootAuth, Accept: 'text/event-stream' },
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const closed = (async () => {
      const entries: string[] = [];
      for await (const event of readServerSentEvents(response.body!)) {
        entries.push(describeEntry(JSON.parse(event.data) as BuildLogEntryResource));
      }
      return { entries, closedAt: performance.now() };
    })();
    await sleep(200); // the follower now waits for entries
    return { closed };
  }

  async function archivedLog(buildId: string): Promise<string[]> {
    const { logDigest } = (await slipway.services.builds.get(buildId))!;
    expect(logDigest).not.toBeNull();
    const entries: string[] = [];
    for await (const entry of slipway.services.buildLogs.archive.readArchived(logDigest as Digest)) {
      entries.push(describeEntry(entry));
    }
    return entries;
  }

  it('ends the stream of a waiting build at once when it is cancelled, with phase cancelled', async () => {
    const build = await startBuild('cancel-me');
    const { closed } = await follow(build.id);
    const cancelledAt = performance.now();
    expect((await root.post(`/builds/${build.id}/cancel`)).status).toBe(202);
    const { entries, closedAt } = await closed;
    const expected = ['the build was cancelled before a builder took it', 'phase:cancelled', 'end:cancelled'];
    expect(entries).toEqual(expected);
    expect(closedAt - cancelledAt).toBeLessThan(2000);
    expect(await archivedLog(build.id)).toEqual(expected);
  });

  it('ends the stream of a build whose builder vanished at the sweep, saying why', async () => {
    const build = await startBuild('vanish');
    const { buildService, buildLogs } = slipway.services;
    await buildService.claim(build.id, 'builder-gone');
    const log = new BuildLogWriter({ redis, keyPrefix: buildLogs.keyPrefix, buildId: build.id });
    log.phase('cloning');
    log.line('stdout', 'Cloning into source...');
    await log.flush();
    const { closed } = await follow(build.id);
    await sleep(1500); // the builder's claim (1 s) runs out
    const sweptAt = performance.now();
    await buildService.sweep();
    const { entries, closedAt } = await closed;
    const expected = [
      'phase:cloning',
      'Cloning into source...',
      'builder builder-gone stopped answering during cloning; start the build again',
      'phase:internal_error',
      'end:internal_error',
    ];
    expect(entries).toEqual(expected);
    expect(closedAt - sweptAt).toBeLessThan(2000);
    expect(await archivedLog(build.id)).toEqual(expected);
  });
});
