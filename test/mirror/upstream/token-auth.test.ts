import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamClient } from '../../../src/mirror/upstream/client.ts';
import { UpstreamUnauthorizedError } from '../../../src/mirror/upstream/errors.ts';
import { computeDigest } from '../../../src/registry/digest.ts';
import { startSecuredSlipway } from '../../helpers/auth.ts';
import { startCountingProxy, type CountingProxy, type ProxiedRequest } from '../../helpers/counting-proxy.ts';
import { basicOf, IdentityFixtures, type Login } from '../../helpers/identity-fixtures.ts';
import { OciClient, type PushedImage } from '../../helpers/oci-client.ts';
import { rejectionOf } from '../../helpers/rejection.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

const isTokenRequest = (request: ProxiedRequest) => request.url.startsWith('/v2/auth');

/**
 * The upstream client against a Slipway with token authentication, through a proxy that counts the
 * requests (token requests included: the realm is derived from the Host the proxy passes on).
 */
describe('upstream client against a registry with Bearer tokens', () => {
  let slipway: TestSlipway;
  let proxy: CountingProxy;
  let alice: Login;
  let image: PushedImage;
  const layer = randomBytes(200 * 1024);
  const clients: UpstreamClient[] = [];
  const clientOf = (credentials?: Login) => {
    const client = new UpstreamClient({
      url: proxy.url,
      name: 'slipway',
      ...(credentials
        ? { credentials: { username: credentials.username, password: credentials.password } }
        : {}),
    });
    clients.push(client);
    return client;
  };
  const since = (mark: number) => requestsSince(proxy, mark);

  beforeAll(async () => {
    slipway = await startSecuredSlipway({ database: 'postgres' });
    const fixtures = await IdentityFixtures.of(slipway);
    alice = await fixtures.user('alice');
    const pusher = new OciClient(slipway.url, { Authorization: basicOf(alice) });
    image = await pusher.pushImage('alice/app', 'v1', { layers: [layer] });
    for (const tag of ['v2', 'v3', 'v4', 'v5']) {
      expect(
        (
          await pusher.putManifest(
            'alice/app',
            tag,
            image.manifest,
            'application/vnd.oci.image.manifest.v1+json',
          )
        ).status,
      ).toBe(201);
    }
    await fixtures.repository('alice/public', 'public');
    await pusher.pushImage('alice/public', 'latest');
    proxy = await startCountingProxy(slipway.url);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await proxy?.stop();
    await slipway?.stop();
  });

  it('fetches a token with the credentials and pulls with it; the credentials go only to the realm', async () => {
    const client = clientOf(alice);
    const mark = proxy.requests.length;
    expect(await client.ping()).toEqual({ auth: 'bearer', apiVersion: 'registry/2.0' });
    const head = await client.headManifest('alice/app', 'v1');
    expect(head).toEqual({
      digest: image.digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: image.size,
    });
    const manifest = await client.getManifest('alice/app', 'v1');
    expect(manifest.body.equals(image.manifest)).toBe(true);
    const blob = await client.getBlob('alice/app', computeDigest(layer));
    expect((await collect(blob.body)).equals(layer)).toBe(true);

    const requests = since(mark);
    const tokens = requests.filter(isTokenRequest);
    // One for /v2/ (no scope), one for the repository's pull scope, reused by the three pulls.
    expect(tokens.map((request) => new URL(request.url, proxy.url).searchParams.getAll('scope'))).toEqual([
      [],
      ['repository:alice/app:pull'],
    ]);
    expect(tokens.every((request) => request.headers.authorization === basicOf(alice))).toBe(true);
    const registry = requests.filter((request) => !isTokenRequest(request));
    expect(registry.filter((request) => request.headers.authorization?.startsWith('Basic '))).toEqual([]);
    expect(registry.filter((request) => request.status === 200).length).toBe(4);
  });

  it('follows Link pagination with the same token: n=2 over 5 tags is three pages', async () => {
    const client = clientOf(alice);
    const mark = proxy.requests.length;
    expect(await client.listTags('alice/app', { n: 2 })).toEqual(['v1', 'v2', 'v3', 'v4', 'v5']);
    const pages = since(mark).filter(
      (request) => request.url.startsWith('/v2/alice/app/tags/list') && request.status === 200,
    );
    expect(pages.map((request) => request.url)).toEqual([
      '/v2/alice/app/tags/list?n=2',
      '/v2/alice/app/tags/list?n=2&last=v2',
      '/v2/alice/app/tags/list?n=2&last=v4',
    ]);
    expect(since(mark).filter(isTokenRequest).length).toBe(1);
  });

  it('pulls a public repository with an anonymous token, and is refused a private one', async () => {
    const anonymous = clientOf();
    expect((await anonymous.getManifest('alice/public', 'latest')).mediaType).toBe(
      'application/vnd.oci.image.manifest.v1+json',
    );
    const error = await rejectionOf(anonymous.headManifest('alice/app', 'v1'));
    expect(error).toBeInstanceOf(UpstreamUnauthorizedError);
    expect(error).toMatchObject({
      code: 'SLW_ERR_UPSTREAM_UNAUTHORIZED',
      status: 401,
      operation: 'head manifest',
    });
    expect((error as Error).message).toMatch(
      /^upstream slipway: head manifest alice\/app:v1: answered 401 Unauthorized \(insufficient_scope\) to anonymous/,
    );
  });

  it('reports credentials the token endpoint refuses', async () => {
    const client = clientOf({ username: 'alice', password: 'not-her-password' });
    const error = await rejectionOf(client.getManifest('alice/app', 'v1'));
    expect(error).toBeInstanceOf(UpstreamUnauthorizedError);
    expect(error).toMatchObject({ operation: 'fetch token', status: 401 });
    expect((error as Error).message).toMatch(
      /token endpoint .*\/v2\/auth answered 401.*refused user "alice"/,
    );
  });

  it('fetches one token for many concurrent requests of one scope, and reuses it', async () => {
    const client = clientOf(alice);
    const mark = proxy.requests.length;
    const wave = () => Promise.all(Array.from({ length: 24 }, () => client.headManifest('alice/app', 'v1')));
    expect(new Set((await wave()).map((head) => head.digest))).toEqual(new Set([image.digest]));
    expect(since(mark).filter(isTokenRequest).length).toBe(1);
    await wave();
    expect(since(mark).filter(isTokenRequest).length).toBe(1);
    // Only the first wave met a challenge; the second carried the token from the start.
    expect(since(mark).filter((request) => request.status === 401).length).toBe(24);
    await client.headManifest('alice/public', 'latest');
    expect(since(mark).filter(isTokenRequest).length).toBe(2);
  });
});

describe('upstream client and token expiry', () => {
  let slipway: TestSlipway;
  let proxy: CountingProxy;
  let client: UpstreamClient;

  beforeAll(async () => {
    slipway = await startSecuredSlipway({ database: 'postgres', config: { auth: { tokenLifetime: 2 } } });
    const alice = await (await IdentityFixtures.of(slipway)).user('alice');
    await new OciClient(slipway.url, { Authorization: basicOf(alice) }).pushImage('alice/app', 'v1');
    proxy = await startCountingProxy(slipway.url);
    client = new UpstreamClient({ url: proxy.url, credentials: alice });
  });

  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await slipway?.stop();
  });

  it('fetches a new token once the one it has expires, before sending the request', async () => {
    await client.headManifest('alice/app', 'v1');
    await client.headManifest('alice/app', 'v1');
    expect(proxy.count(isTokenRequest)).toBe(1);
    // The client stops offering a 2 s token after 1.8 s. (The gateway counts expiry from the whole
    // second it was issued in, so a 1 s token could already be refused on its first use.)
    await new Promise((resolve) => setTimeout(resolve, 1900));
    const mark = proxy.requests.length;
    await client.headManifest('alice/app', 'v1');
    expect(proxy.count(isTokenRequest)).toBe(2);
    expect(requestsSince(proxy, mark).map((request) => request.status)).toEqual([200, 200]);
  });
});

/** The requests the proxy saw after `mark` (an earlier length of its log). */
function requestsSince(proxy: CountingProxy, mark: number): ProxiedRequest[] {
  return proxy.requests.slice(mark);
}

async function collect(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}
