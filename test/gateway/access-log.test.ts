import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/gateway/app.ts';
import { parseConfig } from '../../src/gateway/config.ts';
import { createServices, type Services } from '../../src/gateway/services.ts';
import { computeDigest } from '../../src/registry/digest.ts';

describe('access log', () => {
  let services: Services | undefined;
  let app: FastifyInstance | undefined;
  let dataDir: string | undefined;
  afterEach(async () => {
    await app?.close();
    await services?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function start(accessLog: boolean): Promise<Array<Record<string, unknown>>> {
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-access-log-'));
    services = await createServices(
      parseConfig({ dataDir, accessLog, gc: { enabled: false }, auth: { enabled: false } }),
    );
    const lines: Array<Record<string, unknown>> = [];
    app = await buildApp(services, {
      logger: { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
    });
    return lines;
  }

  it('writes one line per request with method, URL, status, duration, size and client', async () => {
    const lines = await start(true);
    const content = randomBytes(3000);
    const digest = computeDigest(content);
    const pushed = await app!.inject({
      method: 'POST',
      url: `/v2/team/app/blobs/uploads/?digest=${digest}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: content,
    });
    expect(pushed.statusCode).toBe(201);
    const pulled = await app!.inject({
      method: 'GET',
      url: `/v2/team/app/blobs/${digest}`,
      headers: { 'user-agent': 'containerd/2.0' },
    });
    expect(pulled.statusCode).toBe(200);
    const missing = await app!.inject({ method: 'GET', url: '/v2/team/app/manifests/nope' });
    expect(missing.statusCode).toBe(404);

    const requests = lines.filter((line) => line.msg === 'request');
    expect(requests).toHaveLength(3);
    expect(requests[1]).toMatchObject({
      method: 'GET',
      url: `/v2/team/app/blobs/${digest}`,
      status: 200,
      bytes: content.length,
      agent: 'containerd/2.0',
    });
    expect(requests[1]!.ms).toEqual(expect.any(Number));
    expect(requests[1]!.remote).toEqual(expect.any(String));
    expect(requests[2]).toMatchObject({ url: '/v2/team/app/manifests/nope', status: 404 });
  });

  it('writes none when it is off', async () => {
    const lines = await start(false);
    expect((await app!.inject({ method: 'GET', url: '/v2/' })).statusCode).toBe(200);
    expect(lines.filter((line) => line.msg === 'request')).toHaveLength(0);
  });
});
