import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { computeDigest } from '../../src/registry/digest.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.ts';

describe('graceful shutdown', () => {
  let gateway: GatewayProcess | undefined;
  let dataDir: string | undefined;
  afterEach(async () => {
    await gateway?.kill().catch(() => {});
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('lets an upload in flight finish after SIGTERM, then exits cleanly', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-shutdown-'));
    gateway = await spawnGateway(dataDir);
    const start = await fetch(`${gateway.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const content = randomBytes(4 * 1024 * 1024);

    const { hostname, port } = new URL(gateway.url);
    const finished = new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: hostname,
          port,
          path: location,
          method: 'PATCH',
          headers: { 'Content-Length': content.length, 'Content-Range': `0-${content.length - 1}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write(content.subarray(0, 1024 * 1024));
      setTimeout(() => {
        gateway!.child.kill('SIGTERM');
        setTimeout(() => req.end(content.subarray(1024 * 1024)), 500);
      }, 300);
    });

    expect(await finished).toBe(202);
    await gateway.exited;
    expect(gateway.child.exitCode).toBe(0);

    // The bytes were kept: after a restart the upload completes with the right digest.
    gateway = await spawnGateway(dataDir);
    const status = await fetch(`${gateway.url}${location}`);
    expect(status.headers.get('range')).toBe(`0-${content.length - 1}`);
    const done = await fetch(`${gateway.url}${location}?digest=${computeDigest(content)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
  });
});
