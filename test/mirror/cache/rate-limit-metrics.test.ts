import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { startCountingProxy, type AnswerHead, type CountingProxy } from '../../helpers/counting-proxy.ts';
import {
  DistributionOciClient,
  startDistribution,
  type TestDistribution,
} from '../../helpers/distribution.ts';
import { errorCode, OciClient } from '../../helpers/oci-client.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

/**
 * Upstream rate limits on /metrics. A Distribution registry sends no rate-limit headers, so proxies in
 * front of it add them, as Docker Hub sends them: `hub` (from the config file) says 100 pulls per six
 * hours with what remains set by the test, and answers 429 with Retry-After for the tag `limited`;
 * `corp` (added through the API) says 200 an hour, 150 left.
 */
describe('upstream rate-limit metrics', () => {
  let upstream: TestDistribution;
  let hubProxy: CountingProxy;
  let corpProxy: CountingProxy;
  let slipway: TestSlipway;
  let client: OciClient;
  let root: ApiCaller;
  let hubRemaining = 76;

  beforeAll(async () => {
    upstream = await startDistribution();
    const pusher = new DistributionOciClient(upstream.url);
    await pusher.pushImage('team/app', '1');
    await pusher.pushImage('team/app', '2');
    hubProxy = await startCountingProxy(upstream.url, {
      shapeHead: (request): AnswerHead =>
        request.url === '/v2/team/app/manifests/limited'
          ? { status: 429, headers: { 'Retry-After': '120' } }
          : {
              headers: {
                'RateLimit-Limit': '100;w=21600',
                'RateLimit-Remaining': `${hubRemaining};w=21600`,
              },
            },
    });
    corpProxy = await startCountingProxy(upstream.url, {
      shapeHead: () => ({ headers: { 'RateLimit-Limit': '200;w=3600', 'RateLimit-Remaining': '150' } }),
    });
    slipway = await startSecuredSlipway({
      config: { proxy: { upstreams: [{ name: 'hub', url: hubProxy.url }] } },
    });
    client = new OciClient(slipway.url, { Authorization: basic(adminUser, adminPassword) });
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
  });

  afterAll(async () => {
    await slipway?.stop();
    await Promise.all([hubProxy?.stop(), corpProxy?.stop()]);
    await upstream?.stop();
  });

  /** The samples of the upstream rate-limit metrics, as `name{labels} value` lines. */
  async function samples(): Promise<string[]> {
    const text = await (await fetch(`${slipway.url}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => /^slipway_upstream_(ratelimit|retry_after|rate_limited)/.test(line));
  }

  it("exports each upstream's latest RateLimit-Limit and RateLimit-Remaining, config and API ones alike", async () => {
    expect(await client.status('/v2/hub/team/app/manifests/1')).toBe(200);
    expect(await samples()).toEqual(
      expect.arrayContaining([
        'slipway_upstream_ratelimit_limit{upstream="hub"} 100',
        'slipway_upstream_ratelimit_remaining{upstream="hub"} 76',
        'slipway_upstream_ratelimit_window_seconds{upstream="hub"} 21600',
      ]),
    );
    hubRemaining = 75;
    expect(await client.status('/v2/hub/team/app/manifests/2')).toBe(200);
    expect(await samples()).toContain('slipway_upstream_ratelimit_remaining{upstream="hub"} 75');

    const created = await root.post('/proxy/upstreams', { name: 'corp', url: corpProxy.url });
    expect(created.status).toBe(201);
    expect(await client.status('/v2/corp/team/app/manifests/1')).toBe(200);
    expect(await samples()).toEqual(
      expect.arrayContaining([
        'slipway_upstream_ratelimit_limit{upstream="corp"} 200',
        'slipway_upstream_ratelimit_remaining{upstream="corp"} 150',
        'slipway_upstream_ratelimit_window_seconds{upstream="corp"} 3600',
        'slipway_upstream_ratelimit_remaining{upstream="hub"} 75',
      ]),
    );
  });

  it('counts 429 answers and keeps the last Retry-After', async () => {
    const limited = await client.fetch('/v2/hub/team/app/manifests/limited');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('120');
    expect(await errorCode(limited)).toBe('TOOMANYREQUESTS');
    expect(await samples()).toEqual(
      expect.arrayContaining([
        'slipway_upstream_rate_limited_total{upstream="hub"} 1',
        'slipway_upstream_retry_after_seconds{upstream="hub"} 120',
      ]),
    );
    expect(await client.status('/v2/hub/team/app/manifests/limited')).toBe(429);
    expect(await samples()).toContain('slipway_upstream_rate_limited_total{upstream="hub"} 2');
  });

  it('drops the series of an upstream that was removed', async () => {
    expect((await root.delete('/proxy/upstreams/corp')).status).toBe(204);
    const left = await samples();
    expect(left.filter((line) => line.includes('upstream="corp"'))).toEqual([]);
    expect(left).toContain('slipway_upstream_ratelimit_limit{upstream="hub"} 100');
  });
});
