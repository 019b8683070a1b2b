import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningDelivery } from '../../src/events/service.ts';
import {
  organizationWith,
  settledDeliveries,
  startEventGateway,
  subscribe,
  type EventGateway,
} from '../helpers/events.ts';
import { waitFor } from '../helpers/tools.ts';
import { startReceiver, verified, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.ts';

const quiet = { info() {}, warn() {}, error() {} };

/**
 * At-least-once delivery: a `slipway worker` process is killed while its request hangs, and another
 * worker of the same installation takes the delivery over once the first one's lock lapses.
 */
describe('a worker killed in the middle of a delivery', () => {
  let gateway: EventGateway;
  let receiver: WebhookReceiver;
  let worker: WorkerProcess | undefined;
  let survivor: RunningDelivery | undefined;

  beforeAll(async () => {
    [gateway, receiver] = await Promise.all([
      // This gateway writes events but delivers none until the test starts its worker.
      startEventGateway({
        database: 'postgres',
        config: { events: { worker: false, stalledAfter: 1, retrySchedule: [0.2] } },
      }),
      startReceiver((n) => (n === 0 ? 'hang' : { status: 200, body: 'ok' })),
    ]);
  });
  afterAll(async () => {
    await worker?.kill();
    await survivor?.stop();
    await receiver?.close();
    await gateway?.slipway.stop();
  });

  it('is redelivered by another worker with the same webhook-id', async () => {
    await organizationWith(gateway, 'crash/app');
    const subscription = await subscribe(gateway.slipway, { namespace: 'crash', url: receiver.url });
    const { config } = gateway.slipway.services;
    const configFile = join(gateway.slipway.dataDir, 'worker.yaml');
    await writeFile(
      configFile,
      'events:\n  allowPrivateDestinations: true\n  stalledAfter: 1\n  timeout: 120\n  retrySchedule: [0.2]\n',
    );
    worker = spawnWorker(
      {
        DATABASE_URL: inject('databaseUrl'),
        SLIPWAY_DATABASE_SCHEMA: config.database.schema!,
        REDIS_URL: inject('redisUrl'),
        SLIPWAY_DATA: gateway.slipway.dataDir,
        SLIPWAY_AUTH_ENABLED: 'false',
        SLIPWAY_LOG_LEVEL: 'warn',
      },
      ['--config', configFile],
    );

    await gateway.client.pushImage('crash/app', 'v1');
    const first = await waitFor('the worker process to send the delivery', () => receiver.received[0], {
      timeoutMs: 30_000,
    }).catch((error: Error) => {
      throw new Error(`${error.message}\nworker output:\n${worker!.output()}`);
    });
    await worker.kill();
    const [pending] = (
      await gateway.slipway.services.deliveries.listDeliveries(subscription.id, { limit: 5 })
    ).items;
    expect(pending).toMatchObject({ status: 'pending', attempts: 0 });

    survivor = gateway.slipway.services.eventDelivery.start({ logger: quiet, stalledIntervalMs: 200 });
    const second = await waitFor('another worker to take the delivery over', () => receiver.received[1]);
    expect(second.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expect(verified(subscription.secret!, second)).toEqual(verified(subscription.secret!, first));
    const [delivered] = await settledDeliveries(gateway.slipway, subscription.id, 1);
    expect(delivered).toMatchObject({ id: first.headers['webhook-id'], status: 'delivered', attempts: 1 });
    expect(receiver.received).toHaveLength(2);
  });

  it('refuses to run on the embedded database, which belongs to one process', async () => {
    const embedded = spawnWorker({ SLIPWAY_DATA: gateway.slipway.dataDir });
    await embedded.exited;
    expect(embedded.child.exitCode).toBe(2);
    expect(embedded.output()).toContain('slipway worker needs PostgreSQL');
  });
});
