import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, QueryResult } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { computeDigest } from '../../src/registry/digest.ts';
import { LocalRegistryStore } from '../../src/registry/local-store.ts';
import { mediaTypes } from '../../src/registry/media-types.ts';
import { MetadataCache } from '../../src/registry/metadata/cache.ts';
import { createRegistryMetrics } from '../../src/registry/metrics.ts';
import { parseRepositoryName, parseTag } from '../../src/registry/names.ts';
import { FsDriver } from '../../src/registry/storage/fs-driver.ts';
import { imageManifest } from '../helpers/oci-client.ts';

/**
 * A database whose tag lookups can be held back after they have read: the shape of a pull that read
 * a tag just before a push moved it, and answers just after.
 */
function withHeldTagReads(db: Database) {
  let held: Array<() => void> | null = null;
  let reads = 0;
  const wrapped: Database = {
    kind: db.kind,
    async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await db.query<R>(text, params);
      if (/^\s*SELECT\b[^;]*\bFROM tags\b/i.test(text)) {
        reads++;
        if (held) await new Promise<void>((resolve) => held!.push(resolve));
      }
      return result;
    },
    exec: (script) => db.exec(script),
    transaction: (work) => db.transaction(work),
    tryWithLock: (key, work) => db.tryWithLock(key, work),
    close: () => db.close(),
  };
  return {
    db: wrapped,
    reads: () => reads,
    hold: () => (held = []),
    release: () => {
      const waiting = held ?? [];
      held = null;
      for (const resume of waiting) resume();
    },
  };
}

describe('registry store metadata cache', () => {
  let dir: string;
  let database: Database;
  let gate: ReturnType<typeof withHeldTagReads>;
  let store: LocalRegistryStore;
  const repository = parseRepositoryName('team/app');
  const latest = { kind: 'tag', tag: parseTag('latest') } as const;
  const actor = { name: 'tester' };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-store-cache-'));
    database = await openPglite();
    await migrate(database);
    gate = withHeldTagReads(database);
    store = new LocalRegistryStore({
      db: gate.db,
      driver: new FsDriver(dir, { syncWrites: false }),
      cache: new MetadataCache({ maxManifestBytes: 1024 * 1024, ttlMs: 60_000 }),
      metrics: createRegistryMetrics(new Registry()),
      redirectSeconds: 0,
    });
  });
  afterAll(async () => {
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function pushImage(): Promise<string> {
    const config = randomBytes(64);
    const digest = computeDigest(config);
    await store.uploadMonolithic(repository, digest, Readable.from([config]));
    const manifest = imageManifest({ digest, size: config.length }, []);
    const pushed = await store.putManifest(repository, latest, manifest, mediaTypes.ociManifest, [], actor);
    return pushed.digest;
  }

  it('serves a moved tag to every pull that starts after the push, even when an older read ends later', async () => {
    const first = await pushImage();
    gate.hold();
    const pullDuringPush = store.getManifest(repository, latest);
    await new Promise((resolve) => setTimeout(resolve, 50)); // its tag read is done and held
    const second = await pushImage();
    gate.release();
    expect((await pullDuringPush).digest).toBe(first);
    expect((await store.getManifest(repository, latest)).digest).toBe(second);
  });

  it('answers concurrent pulls of an uncached tag with one database read', async () => {
    const pushed = await pushImage();
    const before = gate.reads();
    const pulls = await Promise.all(Array.from({ length: 20 }, () => store.getManifest(repository, latest)));
    expect(pulls.every((manifest) => manifest.digest === pushed)).toBe(true);
    expect(gate.reads() - before).toBe(1);
  });

  it('with a time to live of 0 trusts nothing it cached: every pull reads the database', async () => {
    const uncached = new LocalRegistryStore({
      db: gate.db,
      driver: new FsDriver(dir, { syncWrites: false }),
      cache: new MetadataCache({ maxManifestBytes: 1024 * 1024, ttlMs: 0 }),
      metrics: createRegistryMetrics(new Registry()),
      redirectSeconds: 0,
    });
    const pushed = await pushImage();
    expect((await uncached.getManifest(repository, latest)).digest).toBe(pushed);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const before = gate.reads();
    expect((await uncached.getManifest(repository, latest)).digest).toBe(pushed);
    expect(gate.reads() - before).toBe(1);
  });
});
