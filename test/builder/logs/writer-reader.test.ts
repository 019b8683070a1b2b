import { describe, expect, it, vi } from 'vitest';
import { buildLogKey } from '../../../src/builder/logs/entry.ts';
import { endLogAsBuilder } from '../../../src/builder/logs/writer.ts';
import { newBuildId, texts, useLogFixture } from './fixture.ts';

describe('writing and reading a build log', () => {
  const fx = useLogFixture();

  it('keeps entries in order with their type, stream, phase and timestamp, and pages by cursor', async () => {
    const buildId = newBuildId();
    let clock = 1_000;
    const writer = fx.writer(buildId, { now: () => clock++ });
    writer.phase('cloning');
    writer.line('stdout', 'Cloning into repo...');
    writer.phase('building');
    for (let i = 0; i < 10; i++) writer.line(i % 2 ? 'stderr' : 'stdout', `step ${i}`);
    await writer.end('complete');

    const all = await fx.reader.read(buildId);
    expect(all.entries).toHaveLength(14);
    expect(all.entries[0]).toMatchObject({ type: 'phase', phase: 'cloning', at: 1_000 });
    expect(all.entries[1]).toMatchObject({ type: 'line', stream: 'stdout', text: 'Cloning into repo...' });
    expect(all.entries[4]).toMatchObject({ type: 'line', stream: 'stderr', text: 'step 1' });
    expect(all.entries.at(-1)).toMatchObject({ type: 'end', phase: 'complete', at: 1_013 });
    expect(all.cursor).toBe(all.entries.at(-1)!.id);

    const paged = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await fx.reader.read(buildId, cursor, 4);
      if (!page.entries.length) {
        expect(page.cursor).toBe(cursor);
        break;
      }
      paged.push(...page.entries);
      cursor = page.cursor;
    }
    expect(paged).toEqual(all.entries);
    expect(await fx.reader.read(buildId, all.entries[11]!.id)).toEqual({
      entries: all.entries.slice(12),
      cursor: all.cursor,
    });
  });

  it('returns nothing, at the same cursor, for a build that has not logged anything', async () => {
    expect(await fx.reader.read(newBuildId())).toEqual({ entries: [], cursor: '0' });
  });

  it('refuses malformed cursors and build ids', async () => {
    await expect(fx.reader.read(newBuildId(), 'abc')).rejects.toMatchObject({ code: 'SLW_ERR_INVALID' });
    await expect(fx.reader.read('../other', '0')).rejects.toMatchObject({ code: 'SLW_ERR_INVALID' });
  });

  it('sends lines written in quick succession in a few round trips, not one each', async () => {
    const buildId = newBuildId();
    const roundTrips = vi.spyOn(fx.redis, 'eval');
    const writer = fx.writer(buildId);
    for (let i = 0; i < 2000; i++) writer.line('stdout', `line ${i}`);
    await writer.end('complete');
    expect(roundTrips.mock.calls.length).toBeGreaterThan(0);
    expect(roundTrips.mock.calls.length).toBeLessThanOrEqual(6);
    roundTrips.mockRestore();
    const { entries } = await fx.reader.read(buildId, '0', 5000);
    expect(texts(entries)).toEqual([...Array.from({ length: 2000 }, (_, i) => `line ${i}`), 'end:complete']);
  });

  it('sends a lone line within a few milliseconds', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId);
    writer.line('stdout', 'hello');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(texts((await fx.reader.read(buildId)).entries)).toEqual(['hello']);
  });

  it('masks secrets in lines and phase names, also URL-encoded, before they reach Redis', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId, { secrets: ['s3cr3t/t0ken', 'hunter2', ''] });
    writer.line('stdout', 'git clone https://bot:s3cr3t%2Ft0ken@git.example/repo.git');
    writer.line('stderr', 'password hunter2 and again hunter2; token s3cr3t/t0ken');
    writer.phase('pushing with hunter2');
    await writer.end('complete');
    const raw = JSON.stringify(await fx.redis.xrange(buildLogKey(fx.keyPrefix, buildId), '-', '+'));
    expect(raw).not.toContain('hunter2');
    expect(raw).not.toContain('s3cr3t');
    expect(texts((await fx.reader.read(buildId)).entries)).toEqual([
      'git clone https://bot:***@git.example/repo.git',
      'password *** and again ***; token ***',
      'phase:pushing with ***',
      'end:complete',
    ]);
  });

  it('cuts very long lines with a marker', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId, { maxLineLength: 100 });
    writer.line('stdout', 'x'.repeat(250));
    writer.line('stdout', 'short');
    await writer.end('complete');
    const [long, short] = (await fx.reader.read(buildId)).entries;
    expect(long).toMatchObject({
      type: 'line',
      text: `${'x'.repeat(100)}… [line truncated: 150 more characters]`,
    });
    expect(short).toMatchObject({ type: 'line', text: 'short' });
  });

  it('after the size cap writes one truncation entry, drops later lines, and still writes phases and the end', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId, { maxLogBytes: 50 });
    for (let i = 0; i < 10; i++) writer.line('stdout', `0123456789-${i}`); // 12 bytes each: 4 fit
    writer.phase('pushing');
    writer.line('stdout', 'dropped too');
    await writer.end('failed');
    const { entries } = await fx.reader.read(buildId);
    expect(entries.map((e) => e.type)).toEqual(['line', 'line', 'line', 'line', 'truncated', 'phase', 'end']);
    expect(entries[4]).toMatchObject({ text: expect.stringContaining('log truncated') });
    expect(texts(entries).slice(5)).toEqual(['phase:pushing', 'end:failed']);
  });

  it('refuses writes after the end', async () => {
    const writer = fx.writer(newBuildId());
    await writer.end('complete');
    expect(() => writer.line('stdout', 'late')).toThrow(/ended/);
  });

  it('keeps two builds written at once apart', async () => {
    const [a, b] = [newBuildId(), newBuildId()];
    const writerA = fx.writer(a);
    const writerB = fx.writer(b);
    for (let i = 0; i < 100; i++) {
      writerA.line('stdout', `a${i}`);
      writerB.line('stdout', `b${i}`);
    }
    await Promise.all([writerA.end('complete'), writerB.end('failed')]);
    const logA = texts((await fx.reader.read(a)).entries);
    const logB = texts((await fx.reader.read(b)).entries);
    expect(logA).toEqual([...Array.from({ length: 100 }, (_, i) => `a${i}`), 'end:complete']);
    expect(logB).toEqual([...Array.from({ length: 100 }, (_, i) => `b${i}`), 'end:failed']);
  });

  it('lets a stream left by a builder that died expire on its own', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId, { abandonedAfterSeconds: 3600 });
    writer.line('stdout', 'then the builder died');
    await writer.flush();
    const ttl = await fx.redis.ttl(buildLogKey(fx.keyPrefix, buildId));
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3600);
  });

  it('keeps nothing written after the end: a second writer ending the same log writes no second end', async () => {
    const buildId = newBuildId();
    const builder = fx.writer(buildId);
    builder.line('stdout', 'built');
    await builder.end('complete');
    const late = fx.writer(buildId);
    late.line('stderr', 'too late');
    late.phase('error');
    await late.end('error');
    expect(texts((await fx.reader.read(buildId)).entries)).toEqual(['built', 'end:complete']);
  });

  it('ends the log of a build the gateway ended as its builder would: why, the phase, the end', async () => {
    const buildId = newBuildId();
    const end = { phase: 'internal_error', reason: 'builder b1 stopped answering during building' };
    await endLogAsBuilder({ redis: fx.redis, keyPrefix: fx.keyPrefix, buildId }, end);
    const { entries } = await fx.reader.read(buildId);
    expect(entries).toMatchObject([
      { type: 'line', stream: 'stderr', text: end.reason },
      { type: 'phase', phase: 'internal_error' },
      { type: 'end', phase: 'internal_error' },
    ]);
    expect(await fx.redis.ttl(buildLogKey(fx.keyPrefix, buildId))).toBeGreaterThan(0);
  });

  it('leaves the log of a build its builder ended alone when the gateway ends it too', async () => {
    const buildId = newBuildId();
    const builder = fx.writer(buildId);
    builder.phase('building');
    await builder.end('complete');
    const gateway = { redis: fx.redis, keyPrefix: fx.keyPrefix, buildId };
    await Promise.all([
      endLogAsBuilder(gateway, { phase: 'timeout', reason: 'overdue' }),
      endLogAsBuilder(gateway, { phase: 'internal_error', reason: 'vanished' }),
    ]);
    expect(texts((await fx.reader.read(buildId)).entries)).toEqual(['phase:building', 'end:complete']);
  });

  it('writes one end when two gateways end the same log at once', async () => {
    const buildId = newBuildId();
    const gateway = { redis: fx.redis, keyPrefix: fx.keyPrefix, buildId };
    await Promise.all([
      endLogAsBuilder(gateway, { phase: 'cancelled', reason: 'first' }),
      endLogAsBuilder(gateway, { phase: 'cancelled', reason: 'second' }),
    ]);
    const log = texts((await fx.reader.read(buildId)).entries);
    expect(log).toHaveLength(3);
    expect(log.filter((text) => text === 'end:cancelled')).toHaveLength(1);
  });
});
