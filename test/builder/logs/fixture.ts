import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, inject } from 'vitest';
import { BuildLogArchive } from '../../../src/builder/logs/archive.ts';
import type { BuildLogEntry } from '../../../src/builder/logs/entry.ts';
import { BuildLogReader } from '../../../src/builder/logs/reader.ts';
import { BuildLogWriter, type BuildLogWriterOptions } from '../../../src/builder/logs/writer.ts';
import { openRedis, type RedisConnection } from '../../../src/db/redis.ts';
import type { Digest } from '../../../src/registry/digest.ts';
import { FsDriver } from '../../../src/registry/storage/fs-driver.ts';

export interface LogFixture {
  connection: RedisConnection;
  redis: Redis;
  /** Unique per test file, so files sharing the test Redis never see each other's keys. */
  keyPrefix: string;
  driver: FsDriver;
  archive: BuildLogArchive;
  /** What the build record would hold: the archived log's digest per build. */
  archivedDigests: Map<string, Digest>;
  reader: BuildLogReader;
  writer(buildId: string, options?: Partial<BuildLogWriterOptions>): BuildLogWriter;
}

/** A Redis connection, a filesystem driver and the log classes wired to them, for one test file. */
export function useLogFixture(options: { blockMs?: number } = {}): LogFixture {
  const fixture = {} as LogFixture;
  let storageRoot: string;
  let dataDir: string;
  beforeAll(async () => {
    storageRoot = await mkdtemp(join(tmpdir(), 'slipway-build-logs-'));
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-build-logs-redis-'));
    fixture.connection = await openRedis({ url: inject('redisUrl'), dataDir });
    fixture.redis = fixture.connection.connect();
    fixture.keyPrefix = `test-${randomUUID()}`;
    fixture.driver = new FsDriver(storageRoot, { syncWrites: false });
    fixture.archive = new BuildLogArchive({
      redis: fixture.redis,
      keyPrefix: fixture.keyPrefix,
      driver: fixture.driver,
    });
    fixture.archivedDigests = new Map();
    fixture.reader = new BuildLogReader({
      redis: fixture.redis,
      connection: fixture.connection,
      keyPrefix: fixture.keyPrefix,
      archive: fixture.archive,
      archivedLogOf: async (buildId) => fixture.archivedDigests.get(buildId) ?? null,
      ...(options.blockMs ? { blockMs: options.blockMs } : {}),
    });
    fixture.writer = (buildId, writerOptions) =>
      new BuildLogWriter({ redis: fixture.redis, keyPrefix: fixture.keyPrefix, buildId, ...writerOptions });
  });
  afterAll(async () => {
    await fixture.connection?.close();
    await rm(storageRoot, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });
  return fixture;
}

export function newBuildId(): string {
  return randomUUID();
}

/** What a line entry says, for compact assertions. */
export function texts(entries: readonly BuildLogEntry[]): string[] {
  return entries.map((entry) => ('text' in entry ? entry.text : `${entry.type}:${entry.phase}`));
}

/** Reads entries from a follow until it ends or `count` arrived. */
export async function take(iterator: AsyncIterator<BuildLogEntry>, count: number): Promise<BuildLogEntry[]> {
  const entries: BuildLogEntry[] = [];
  while (entries.length < count) {
    const next = await iterator.next();
    if (next.done) break;
    entries.push(next.value);
  }
  return entries;
}
