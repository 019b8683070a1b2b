import { randomBytes } from 'node:crypto';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { digestHex, type Digest } from '../../../src/registry/digest.ts';
import { holdAfter, startCountingProxy, type CountingProxy } from '../../helpers/counting-proxy.ts';
import {
  DistributionOciClient,
  startDistribution,
  type TestDistribution,
} from '../../helpers/distribution.ts';
import { spawnGateway, type GatewayProcess } from '../../helpers/gateway-process.ts';
import { openDownload } from '../../helpers/registry-http.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';
import { waitFor } from '../../helpers/tools.ts';

const MiB = 1024 * 1024;
/** Seconds: short, so that the lease of the replica killed runs out soon. */
const fillLease = 3;

interface LeaseRow {
  holder: string;
  expires_at: Date;
}

/**
 * A gateway replica killed while it fetches a blob for the pull-through cache: its lease on the fill
 * runs out, the replica that was waiting for it takes over, fetches the blob again from the start
 * and serves it whole. Replica A runs as its own process, so that it can be SIGKILLed; replica B runs
 * in this one. Both share the PostgreSQL schema, the blob storage and the data directory (so the
 * spool directory, where A's partial download stays behind).
 */
describe('pull-through cache: a replica killed while it fetches a blob', () => {
  let upstream: TestDistribution;
  let counter: CountingProxy;
  let replicaB: TestSlipway;
  let replicaA: GatewayProcess;
  /** Lets the upstream's held answers go on, at the end. */
  let releaseHeld!: () => void;
  const held = new Promise<void>((resolve) => (releaseHeld = resolve));
  /** Digests whose next upstream GET the counting proxy holds part-way; taken once each. */
  const holdNext = new Map<string, number>();

  beforeAll(async () => {
    upstream = await startDistribution();
    counter = await startCountingProxy(upstream.url, {
      shapeBody: (request) => {
        const digest = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(request.url)?.[1];
        const bytes = request.method === 'GET' && digest ? holdNext.get(digest) : undefined;
        if (bytes === undefined) return undefined;
        holdNext.delete(digest!);
        return holdAfter(bytes, held);
      },
    });
    const proxy = { fillLease: `${fillLease}s`, upstreams: [{ name: 'hub', url: counter.url }] };
    replicaB = await startSlipway({ database: 'postgres', config: { proxy } });
    const { config } = replicaB.services;
    const configFile = join(config.dataDir, 'replica-a.yaml');
    // JSON is YAML too.
    await writeFile(
      configFile,
      JSON.stringify({
        database: { url: inject('databaseUrl'), schema: config.database.schema },
        redis: { url: inject('redisUrl') },
        storage: { driver: 'filesystem', root: config.storage.root },
        proxy,
      }),
    );
    replicaA = await spawnGateway(config.dataDir, { configFile });
  });

  afterAll(async () => {
    releaseHeld();
    await replicaA?.kill();
    await replicaB?.stop();
    await counter?.stop();
    await upstream?.stop();
  });

  const blobUrl = (base: string, digest: Digest) => `${base}/v2/hub/team/app/blobs/${digest}`;
  const blobGets = (digest: Digest) =>
    counter.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${digest}`));
  /** The Range of each upstream GET of the blob so far; `whole` for none. */
  const ranges = (digest: Digest) => blobGets(digest).map((get) => get.headers.range ?? 'whole');
  const lease = async (digest: Digest): Promise<LeaseRow | undefined> =>
    (
      await replicaB.services.db.query<LeaseRow>(
        'SELECT holder, expires_at FROM proxy_blob_fills WHERE digest = $1',
        [digest],
      )
    ).rows[0];
  const spoolFiles = async (digest: Digest): Promise<Map<string, number>> => {
    const spoolDir = join(replicaB.services.config.dataDir, 'proxy-spool');
    const names = (await readdir(spoolDir)).filter((name) => name.startsWith(`${digestHex(digest)}.`));
    return new Map(
      await Promise.all(names.map(async (name) => [name, (await stat(join(spoolDir, name))).size] as const)),
    );
  };

  it('lets the waiting replica take the fill over once the lease runs out, and serves the blob whole', async () => {
    const size = 12 * MiB;
    const holdAt = 4 * MiB;
    const content = randomBytes(size);
    const digest = await new DistributionOciClient(upstream.url).pushBlob('team/app', content);
    holdNext.set(digest, holdAt);

    // A fetches; the upstream sends 4 MiB and holds the rest. A's client gets bytes meanwhile.
    const throughA = await openDownload(blobUrl(replicaA.url, digest));
    expect(throughA.status).toBe(200);
    await throughA.readAtLeast(1 * MiB);
    const leaseOfA = await waitFor('A to hold the lease on the fill', () => lease(digest));
    // The spool file A writes, with the 4 MiB received: it stays behind when A dies.
    const [spoolOfA] = await waitFor('A to spool the 4 MiB', async () => {
      const files = [...(await spoolFiles(digest))];
      return files.length === 1 && files[0]![1] === holdAt ? files[0] : undefined;
    });

    // B is asked for the same blob: it waits for A's fill rather than fetch the blob too, as long as A
    // keeps renewing its lease.
    let doneThroughB = false;
    const throughB = fetch(blobUrl(replicaB.url, digest)).then(async (response) => ({
      status: response.status,
      body: Buffer.from(await response.arrayBuffer()),
    }));
    void throughB.finally(() => (doneThroughB = true));
    await waitFor('A to renew its lease', async () => {
      const now = await lease(digest);
      if (now?.holder === leaseOfA.holder && now.expires_at > leaseOfA.expires_at) return now;
      // Told when it times out.
      throw new Error(
        `lease ${JSON.stringify(now)}, A's ${JSON.stringify(leaseOfA)}; GETs ${ranges(digest)}`,
      );
    });
    expect(doneThroughB).toBe(false);
    expect(ranges(digest), 'the Range of each upstream GET before A was killed').toEqual(['whole']);

    await replicaA.kill();
    const killedAt = Date.now();
    // A's client is cut off short of the blob.
    await expect(throughA.rest()).rejects.toThrow();
    expect(throughA.received).toBeLessThan(size);

    const pulled = await throughB;
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(content)).toBe(true);
    expect(Date.now() - killedAt).toBeLessThan((fillLease + 5) * 1000);
    // B asked the upstream again, for the whole blob: it resumed nothing from A's partial spool.
    expect(ranges(digest), 'the Range of each upstream GET').toEqual(['whole', 'whole']);

    // Stored, and the lease let go: nothing is left for a later pull to wait on.
    await waitFor('B to release the lease', async () => ((await lease(digest)) ? undefined : true), {
      timeoutMs: 5000,
    });
    const again = await fetch(blobUrl(replicaB.url, digest));
    expect(Buffer.from(await again.arrayBuffer()).equals(content)).toBe(true);
    expect(blobGets(digest)).toHaveLength(2);
    // A's partial spool is still as A left it: B wrote its own.
    expect((await spoolFiles(digest)).get(spoolOfA)).toBe(holdAt);
  });
});
