import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { BuildLogEntry } from '../../../src/builder/logs/entry.ts';
import { newBuildId, take, texts, useLogFixture } from './fixture.ts';

describe('following a build log', () => {
  const fx = useLogFixture();

  async function followerConnections(buildId: string): Promise<number> {
    const list = (await fx.redis.client('LIST')) as string;
    return list.split('\n').filter((line) => line.includes(`name=slipway-log-follow:${buildId} `)).length;
  }

  it('sees each line as it is written when it started before the build wrote anything', async () => {
    const buildId = newBuildId();
    const follow = fx.reader.follow(buildId);
    const writer = fx.writer(buildId);
    const first = follow.next();
    await sleep(50); // the follower is now blocked in XREAD on a stream that does not exist yet
    writer.phase('building');
    expect((await first).value).toMatchObject({ type: 'phase', phase: 'building' });
    for (let i = 0; i < 5; i++) {
      const next = follow.next();
      writer.line('stdout', `live ${i}`);
      expect((await next).value).toMatchObject({ type: 'line', text: `live ${i}` });
    }
    const end = take(follow, 10);
    await writer.end('complete');
    expect(texts(await end)).toEqual(['end:complete']);
    expect(await follow.next()).toEqual({ done: true, value: undefined });
    await expect.poll(() => followerConnections(buildId)).toBe(0);
  });

  it('gives a late joiner the whole log so far, then live lines, without gaps or duplicates', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId);
    for (let i = 0; i < 1500; i++) writer.line('stdout', `early ${i}`); // more than one backlog page
    await writer.flush();

    const follow = fx.reader.follow(buildId);
    const received: BuildLogEntry[] = [];
    const draining = (async () => {
      for await (const entry of follow) received.push(entry);
    })();
    // Lines keep coming while the joiner is catching up.
    for (let i = 0; i < 300; i++) {
      writer.line('stderr', `late ${i}`);
      if (i % 50 === 0) await sleep(1);
    }
    await writer.end('complete');
    await draining;

    expect(texts(received)).toEqual([
      ...Array.from({ length: 1500 }, (_, i) => `early ${i}`),
      ...Array.from({ length: 300 }, (_, i) => `late ${i}`),
      'end:complete',
    ]);
    expect(new Set(received.map((e) => e.id)).size).toBe(received.length);
  });

  it('resumes after a cursor, and ends at once for a build that has already ended', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId);
    for (let i = 0; i < 5; i++) writer.line('stdout', `line ${i}`);
    await writer.end('failed');
    const { entries } = await fx.reader.read(buildId);

    const resumed: BuildLogEntry[] = [];
    for await (const entry of fx.reader.follow(buildId, entries[2]!.id)) resumed.push(entry);
    expect(resumed).toEqual(entries.slice(3));
    await expect.poll(() => followerConnections(buildId)).toBe(0);
  });

  it('stops promptly and closes its blocking connection when the signal aborts', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId);
    writer.line('stdout', 'one');
    await writer.flush();

    const controller = new AbortController();
    const follow = fx.reader.follow(buildId, undefined, controller.signal);
    expect((await follow.next()).value).toMatchObject({ text: 'one' });
    const waiting = follow.next();
    await sleep(50);
    await expect.poll(() => followerConnections(buildId)).toBe(1);

    const abortedAt = performance.now();
    controller.abort();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(performance.now() - abortedAt).toBeLessThan(100);
    await expect.poll(() => followerConnections(buildId)).toBe(0);
  });

  it('closes its blocking connection when the consumer stops iterating', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId);
    const follow = fx.reader.follow(buildId);
    const first = follow.next();
    writer.line('stdout', 'only this one');
    expect((await first).value).toMatchObject({ text: 'only this one' });
    await follow.return(undefined);
    await expect.poll(() => followerConnections(buildId)).toBe(0);
    await writer.end('cancelled');
  });

  it('does not end early when aborted before it starts', async () => {
    const controller = new AbortController();
    controller.abort();
    const follow = fx.reader.follow(newBuildId(), undefined, controller.signal);
    expect(await follow.next()).toEqual({ done: true, value: undefined });
  });

  it('gives each follower only its own build', async () => {
    const [a, b] = [newBuildId(), newBuildId()];
    const followA = take(fx.reader.follow(a), 100);
    const followB = take(fx.reader.follow(b), 100);
    const writerA = fx.writer(a);
    const writerB = fx.writer(b);
    await sleep(20);
    writerA.line('stdout', 'for a');
    writerB.line('stdout', 'for b');
    await Promise.all([writerA.end('complete'), writerB.end('complete')]);
    expect(texts(await followA)).toEqual(['for a', 'end:complete']);
    expect(texts(await followB)).toEqual(['for b', 'end:complete']);
  });
});
