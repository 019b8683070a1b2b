import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildLogKey, type BuildLogEntry } from '../../../src/builder/logs/entry.ts';
import { BuildLogReader } from '../../../src/builder/logs/reader.ts';
import { newBuildId, texts, useLogFixture } from './fixture.ts';

describe('archiving a build log', () => {
  const fx = useLogFixture({ blockMs: 100 });

  async function writeBuild(buildId: string, lines: number): Promise<void> {
    const writer = fx.writer(buildId, { secrets: ['pa55word'] });
    writer.phase('building');
    for (let i = 0; i < lines; i++) writer.line(i % 3 ? 'stdout' : 'stderr', `line ${i} pa55word`);
    await writer.end('complete');
  }

  async function readAll(
    reader: BuildLogReader,
    buildId: string,
    pageSize: number,
  ): Promise<BuildLogEntry[]> {
    const entries: BuildLogEntry[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await reader.read(buildId, cursor, pageSize);
      if (!page.entries.length) return entries;
      entries.push(...page.entries);
      cursor = page.cursor;
    }
  }

  it('stores the stream gzip-compressed under its digest, then lets the stream expire', async () => {
    const buildId = newBuildId();
    await writeBuild(buildId, 2500);
    const live = (await fx.reader.read(buildId, '0', 10_000)).entries;

    const archived = await fx.archive.archive(buildId);
    expect(archived.entries).toBe(2502);
    const bytes = await buffer(await fx.driver.read(archived.digest));
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(archived.digest);
    expect(archived.size).toBe(bytes.length);
    const ndjson = gunzipSync(bytes).toString('utf8').trimEnd().split('\n');
    expect(ndjson.map((line) => JSON.parse(line))).toEqual(live);
    expect(bytes.toString('latin1')).not.toContain('pa55word');

    const ttl = await fx.redis.ttl(buildLogKey(fx.keyPrefix, buildId));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);

    const fromArchive: BuildLogEntry[] = [];
    for await (const entry of fx.archive.readArchived(archived.digest)) fromArchive.push(entry);
    expect(fromArchive).toEqual(live);
  });

  it('archives the same stream to the same digest when archiving is retried', async () => {
    const buildId = newBuildId();
    await writeBuild(buildId, 10);
    const first = await fx.archive.archive(buildId);
    const second = await fx.archive.archive(buildId);
    expect(second).toEqual(first);
  });

  it('reads the same entries and cursors from the archive once the stream is gone, across the switch', async () => {
    const buildId = newBuildId();
    await writeBuild(buildId, 40);
    const live = await readAll(fx.reader, buildId, 7);
    const firstPage = await fx.reader.read(buildId, '0', 15);

    fx.archivedDigests.set(buildId, (await fx.archive.archive(buildId)).digest);
    await fx.redis.del(buildLogKey(fx.keyPrefix, buildId)); // as if the expiry had passed

    expect(await readAll(fx.reader, buildId, 7)).toEqual(live);
    // A client that read the first page from Redis carries on from the archive with its cursor.
    const rest = await fx.reader.read(buildId, firstPage.cursor, 1000);
    expect([...firstPage.entries, ...rest.entries]).toEqual(live);
    expect(await fx.reader.read(buildId, rest.cursor)).toEqual({ entries: [], cursor: rest.cursor });

    const followed: BuildLogEntry[] = [];
    for await (const entry of fx.reader.follow(buildId, live[9]!.id)) followed.push(entry);
    expect(followed).toEqual(live.slice(10));
  });

  it('lets a follower blocked on the stream finish from the archive when the stream expires under it', async () => {
    const buildId = newBuildId();
    const writer = fx.writer(buildId);
    writer.line('stdout', 'seen live');
    await writer.flush();
    const follow = fx.reader.follow(buildId);
    expect((await follow.next()).value).toMatchObject({ text: 'seen live' });
    const next = follow.next(); // blocks in XREAD

    // Simulates the rest being written, archived and expired while this follower was not woken: the
    // archive holds a copy of the stream (same ids) that goes on past what the follower saw.
    const key = buildLogKey(fx.keyPrefix, buildId);
    const copyId = `${buildId}-copy`;
    const [[firstId, firstFields]] = (await fx.redis.xrange(key, '-', '+')) as [[string, string[]]];
    await fx.redis.xadd(buildLogKey(fx.keyPrefix, copyId), firstId, ...firstFields);
    const continuation = fx.writer(copyId);
    continuation.line('stdout', 'after');
    await continuation.end('complete');
    fx.archivedDigests.set(buildId, (await fx.archive.archive(copyId)).digest);
    await fx.redis.del(key);

    expect(texts([(await next).value as BuildLogEntry])).toEqual(['after']);
    expect(texts([(await follow.next()).value as BuildLogEntry])).toEqual(['end:complete']);
    expect((await follow.next()).done).toBe(true);
  });

  it('fails clearly when there is no stream to archive', async () => {
    await expect(fx.archive.archive(newBuildId())).rejects.toThrow(/no log stream/);
  });
});
