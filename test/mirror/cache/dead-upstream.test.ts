import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DistributionOciClient,
  startDistribution,
  type TestDistribution,
} from '../../helpers/distribution.ts';
import { OciClient } from '../../helpers/oci-client.ts';
import { startSlipway, type TestSlipway } from '../../helpers/slipway.ts';

/**
 * An upstream that stops answering (connections accepted, nothing ever said back): after a couple of
 * timeouts the circuit opens, and pulls no longer wait on it: cached tags come STALE and uncached
 * content fails, both without another connection to the upstream.
 */
describe('pull-through cache with an upstream that hangs', () => {
  let upstream: TestDistribution;
  let gate: SwitchableUpstream;
  let slipway: TestSlipway;
  let client: OciClient;

  beforeAll(async () => {
    upstream = await startDistribution();
    await new DistributionOciClient(upstream.url).pushImage('team/app', '1');
    gate = await startSwitchableUpstream(new URL(upstream.url));
    slipway = await startSlipway({
      config: {
        proxy: {
          upstreams: [
            {
              name: 'hub',
              url: gate.url,
              freshness: 0,
              timeout: '500ms',
              circuitBreaker: { failures: 2, cooldown: '1h' },
            },
          ],
        },
      },
    });
    client = new OciClient(slipway.url);
  });

  afterAll(async () => {
    await slipway?.stop();
    await gate?.stop();
    await upstream?.stop();
  });

  it('stops asking after failures in a row, serving cached tags STALE and failing the rest at once', async () => {
    const fresh = await client.fetch('/v2/hub/team/app/manifests/1');
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('x-cache')).toBe('MISS');

    gate.startHanging();
    for (let i = 0; i < 2; i++) {
      const stale = await client.fetch('/v2/hub/team/app/manifests/1');
      expect(stale.status).toBe(200);
      expect(stale.headers.get('x-cache')).toBe('STALE');
    }
    const hungConnections = gate.hungConnections;
    expect(hungConnections).toBeGreaterThan(0);

    // The circuit is open: nothing more reaches the upstream.
    const stale = await client.fetch('/v2/hub/team/app/manifests/1');
    expect(stale.headers.get('x-cache')).toBe('STALE');
    const uncached = await client.fetch('/v2/hub/team/other/manifests/1');
    expect(uncached.status).toBe(503);
    const body = (await uncached.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]!.code).toBe('UNAVAILABLE');
    expect(body.errors[0]!.message).toContain('failed 2 times in a row');
    expect(gate.hungConnections).toBe(hungConnections);
  });
});

interface SwitchableUpstream {
  url: string;
  /** From now on, connections are accepted and then left without an answer (open ones are cut). */
  startHanging(): void;
  hungConnections: number;
  stop(): Promise<void>;
}

/** A TCP relay to `target` that can be switched to swallowing every connection. */
async function startSwitchableUpstream(target: URL): Promise<SwitchableUpstream> {
  const sockets = new Set<Socket>();
  let hang = false;
  const state: SwitchableUpstream = {
    url: '',
    hungConnections: 0,
    startHanging() {
      hang = true;
      for (const socket of sockets) socket.destroy();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (hang) {
      state.hungConnections++;
      socket.resume();
      return;
    }
    const relay = connect(Number(target.port), target.hostname);
    sockets.add(relay);
    relay.on('error', () => socket.destroy());
    socket.pipe(relay).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
