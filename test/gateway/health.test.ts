import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';

describe.each(['pglite', 'postgres'] as const)('health and metrics on %s', (database) => {
  let slipway: TestSlipway;
  beforeAll(async () => {
    slipway = await startSlipway({ database });
  });
  afterAll(() => slipway.stop());

  it('reports the instance up', async () => {
    const response = await fetch(`${slipway.url}/health/instance`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('checks database and storage end to end', async () => {
    const response = await fetch(`${slipway.url}/health/endtoend`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { services: Record<string, { ok: boolean; kind: string }> };
    expect(body.services.database).toEqual({ ok: true, kind: database === 'pglite' ? 'pglite' : 'postgres' });
    expect(body.services.storage).toEqual({ ok: true, kind: 'filesystem' });
  });

  it('reports unhealthy storage with the failing service named', async () => {
    const { join } = await import('node:path');
    const { rm, writeFile } = await import('node:fs/promises');
    // Root ignores permissions, so block the probe's folder with a file instead.
    const root = join(slipway.dataDir, 'storage');
    await rm(join(root, '_health'), { recursive: true, force: true });
    await writeFile(join(root, '_health'), 'not a directory');
    try {
      const response = await fetch(`${slipway.url}/health/endtoend`);
      expect(response.status).toBe(503);
      const body = (await response.json()) as { services: Record<string, { ok: boolean; error?: string }> };
      expect(body.services.storage?.ok).toBe(false);
      expect(body.services.database?.ok).toBe(true);
    } finally {
      await rm(join(root, '_health'), { force: true });
    }
  });

  it('exposes Prometheus metrics including request durations', async () => {
    await fetch(`${slipway.url}/v2/`);
    const response = await fetch(`${slipway.url}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('slipway_http_request_seconds_count{method="GET",route="/v2/",status="200"}');
    expect(text).toContain('slipway_process_resident_memory_bytes');
  });
});
