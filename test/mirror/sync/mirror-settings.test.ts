import { describe, expect, it } from 'vitest';
import { MirrorGuard } from '../../../src/mirror/sync/mirror-guard.ts';
import {
  cronProblem,
  mirrorChangesSchema,
  mirrorSettingsSchema,
  nextRunAt,
} from '../../../src/mirror/sync/mirror-settings.ts';
import type { MirrorWriter } from '../../../src/mirror/sync/mirror-store.ts';

describe('mirror settings', () => {
  it('fill in the defaults: every tag and platform, every 6h, no deletions, 4 at a time', () => {
    const settings = mirrorSettingsSchema.parse({
      upstream: { url: 'https://quay.io/v2/', repository: 'coreos/etcd' },
      robot: 'mirror',
    });
    expect(settings).toEqual({
      upstream: { url: 'https://quay.io', repository: 'coreos/etcd', tlsVerify: true },
      filter: { include: [], exclude: [], regex: [], includePrerelease: false },
      platforms: 'all',
      schedule: { interval: 21600 },
      startAt: null,
      enabled: true,
      deleteMissing: false,
      maxDeletions: 20,
      robot: 'mirror',
      concurrency: 4,
      bandwidthLimit: null,
    });
  });

  it('read durations, cron expressions, start times and byte sizes', () => {
    const settings = mirrorSettingsSchema.parse({
      upstream: { url: 'https://quay.io', repository: 'coreos/etcd', username: 'u', password: 'p' },
      robot: 'acme+mirror',
      schedule: { cron: ' 0 3 * * 1-5 ' },
      startAt: '2030-01-01T00:00:00+02:00',
      bandwidthLimit: '10MiB',
    });
    expect(settings.schedule).toEqual({ cron: '0 3 * * 1-5' });
    expect(settings.startAt).toEqual(new Date('2029-12-31T22:00:00Z'));
    expect(settings.bandwidthLimit).toBe(10 * 1024 * 1024);
    expect(mirrorChangesSchema.parse({ schedule: { interval: '90m' } }).schedule).toEqual({ interval: 5400 });
  });

  it.each([
    ['0 3 * * *', null],
    ['*/15 * * * *', null],
    ['@daily', null],
    ['@reboot', 'is not a cron macro'],
    ['0 0 3 * * *', 'has 6 fields'],
    ['0 3 * *', 'has 4 fields'],
    ['0 25 * * *', 'is not a valid cron expression'],
    ['0 3 * * funday', 'is not a valid cron expression'],
  ])('cron %s', (expression, problem) => {
    if (problem === null) expect(cronProblem(expression)).toBeNull();
    else expect(cronProblem(expression)).toContain(problem);
  });

  it('schedule the next run: an interval at once or from its start, a cron at its next time', () => {
    const now = new Date('2026-03-01T10:20:00Z');
    expect(nextRunAt({ interval: 3600 }, null, now)).toEqual(now);
    const later = new Date('2026-03-02T00:00:00Z');
    expect(nextRunAt({ interval: 3600 }, later, now)).toEqual(later);
    expect(nextRunAt({ interval: 3600 }, new Date('2026-03-01T08:00:00Z'), now)).toEqual(
      new Date('2026-03-01T11:00:00Z'),
    );
    expect(nextRunAt({ cron: '0 3 * * *' }, null, now)).toEqual(new Date('2026-03-02T03:00:00Z'));
    expect(nextRunAt({ cron: '0 3 * * *' }, new Date('2026-03-05T03:00:00Z'), now)).toEqual(
      new Date('2026-03-05T03:00:00Z'),
    );
  });
});

describe('MirrorGuard', () => {
  function storeWith(writers: MirrorWriter[]) {
    const store = { revision: 1, writers, reads: 0 };
    return {
      state: store,
      store: {
        revision: async () => store.revision,
        writers: async () => {
          store.reads++;
          return store.writers;
        },
      },
    };
  }

  it('lets only the robot write to a mirror, and reloads only when the revision moved', async () => {
    const { state, store } = storeWith([
      { repository: 'acme/nginx', robot: 'acme+mirror', upstream: 'registry-1.docker.io/library/nginx' },
      { repository: 'acme/orphan', robot: null, upstream: 'quay.io/coreos/etcd' },
    ]);
    const guard = new MirrorGuard({ store });
    await guard.refresh();
    expect(guard.writeRefusal('acme/nginx', 'acme+mirror')).toBeNull();
    expect(guard.writeRefusal('acme/app', 'alice')).toBeNull();
    expect(guard.writeRefusal('acme/nginx', 'alice')).toBe(
      'acme/nginx is a mirror of registry-1.docker.io/library/nginx; only its robot acme+mirror may write',
    );
    expect(guard.writeRefusal('acme/nginx', null)).toContain('only its robot acme+mirror may write');
    expect(guard.writeRefusal('acme/orphan', 'acme+mirror')).toContain('it has none');

    await guard.refresh();
    expect(state.reads).toBe(1);
    state.writers = [];
    state.revision = 2;
    await guard.refresh();
    expect(state.reads).toBe(2);
    expect(guard.writeRefusal('acme/nginx', 'alice')).toBeNull();
  });
});
