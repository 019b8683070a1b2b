import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamClient, type UpstreamClientOptions } from '../../../src/mirror/upstream/client.ts';
import {
  UpstreamDigestMismatchError,
  UpstreamRateLimitedError,
  UpstreamUnauthorizedError,
  UpstreamUnavailableError,
} from '../../../src/mirror/upstream/errors.ts';
import type { RateLimitState } from '../../../src/mirror/upstream/rate-limit.ts';
import { computeDigest } from '../../../src/registry/digest.ts';
import { mediaTypes } from '../../../src/registry/media-types.ts';
import { freePort } from '../../helpers/gateway-process.ts';
import { rejectionOf } from '../../helpers/rejection.ts';
import { requireTool } from '../../helpers/tools.ts';

interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

interface TinyServer {
  url: string;
  requests: SeenRequest[];
  stop(): Promise<void>;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** Answers that real registries will not give on demand, from a loopback server the test scripts. */
describe('upstream client on the edges', () => {
  const servers: TinyServer[] = [];
  const clients: UpstreamClient[] = [];

  /** A loopback server answering with `handler`; over TLS with `tls`. */
  async function serve(handler: Handler, tls?: { key: Buffer; cert: Buffer }): Promise<TinyServer> {
    const requests: SeenRequest[] = [];
    const listener: Handler = (request, response) => {
      requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
      handler(request, response);
    };
    const server = tls ? createHttpsServer(tls, listener) : createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const tiny = {
      url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
      requests,
      stop: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
    servers.push(tiny);
    return tiny;
  }

  function clientOf(url: string, options: Partial<UpstreamClientOptions> = {}): UpstreamClient {
    const client = new UpstreamClient({ url, name: 'tiny', ...options });
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });

  it('turns a 429 into a rate-limit error with Retry-After in seconds, given as seconds or a date', async () => {
    let retryAfter = '7';
    const server = await serve((_request, response) => {
      response
        .writeHead(429, {
          'Retry-After': retryAfter,
          'RateLimit-Limit': '100;w=21600',
          'RateLimit-Remaining': '0;w=21600',
          'Content-Type': 'application/json',
        })
        .end('{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}');
    });
    const client = clientOf(server.url);
    const error = await rejectionOf(client.headManifest('library/nginx', '1.27'));
    expect(error).toBeInstanceOf(UpstreamRateLimitedError);
    expect(error).toMatchObject({ code: 'SLW_ERR_UPSTREAM_RATE_LIMITED', status: 429, retryAfterSeconds: 7 });
    expect((error as UpstreamRateLimitedError).rateLimit?.remaining).toEqual({
      value: 0,
      windowSeconds: 21600,
    });
    expect((error as Error).message).toBe(
      'upstream tiny: head manifest library/nginx:1.27: rate limited (429), retry after 7 s',
    );

    retryAfter = new Date(Date.now() + 120_000).toUTCString();
    const dated = (await rejectionOf(
      client.getManifest('library/nginx', '1.27'),
    )) as UpstreamRateLimitedError;
    expect(dated.retryAfterSeconds).toBeGreaterThanOrEqual(118);
    expect(dated.retryAfterSeconds).toBeLessThanOrEqual(120);
  });

  it('keeps the last rate-limit headers seen and reports each to the callback', async () => {
    let remaining = 76;
    const manifest = Buffer.from(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
    );
    const server = await serve((_request, response) => {
      response
        .writeHead(200, {
          'Content-Type': mediaTypes.ociManifest,
          'Docker-Content-Digest': computeDigest(manifest),
          'RateLimit-Limit': '100;w=21600',
          'RateLimit-Remaining': `${remaining--};w=21600`,
        })
        .end(manifest);
    });
    const seen: Array<[RateLimitState, string]> = [];
    const client = clientOf(server.url, { onRateLimit: (state, upstream) => seen.push([state, upstream]) });
    expect(client.rateLimit).toBeUndefined();
    await client.getManifest('library/nginx', 'latest');
    await client.getManifest('library/nginx', 'latest');
    expect(client.rateLimit).toMatchObject({
      limit: { value: 100, windowSeconds: 21600 },
      remaining: { value: 75, windowSeconds: 21600 },
      retryAfterSeconds: undefined,
    });
    expect(seen.map(([state, upstream]) => [state.remaining?.value, upstream])).toEqual([
      [76, 'tiny'],
      [75, 'tiny'],
    ]);
  });

  it('follows a blob redirect to another host without the registry Authorization, Range included', async () => {
    const blob = randomBytes(64 * 1024);
    const digest = computeDigest(blob);
    const cdn = await serve((request, response) => {
      const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? '')?.[1] ?? 0);
      const headers = {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(blob.length - from),
      };
      if (from === 0) return response.writeHead(200, headers).end(blob);
      response
        .writeHead(206, { ...headers, 'Content-Range': `bytes ${from}-${blob.length - 1}/${blob.length}` })
        .end(blob.subarray(from));
    });
    const credentials = { username: 'mirror', password: 'secret-1' };
    const expected = `Basic ${Buffer.from('mirror:secret-1').toString('base64')}`;
    const registry = await serve((request, response) => {
      if (request.headers.authorization !== expected) {
        return response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="tiny"' }).end();
      }
      response.writeHead(307, { Location: `${cdn.url}/blobs/${digest}?signature=abc` }).end();
    });
    const client = clientOf(registry.url, { credentials });

    const whole = await client.getBlob('library/nginx', digest);
    expect(whole).toMatchObject({ status: 200, servedBy: cdn.url, size: blob.length });
    expect((await collect(whole.body)).equals(blob)).toBe(true);
    const tail = await client.getBlob('library/nginx', digest, { range: 1000 });
    expect(tail).toMatchObject({ status: 206, offset: 1000, size: blob.length, length: blob.length - 1000 });
    expect((await collect(tail.body)).equals(blob.subarray(1000))).toBe(true);

    expect(registry.requests.map((request) => request.headers.authorization)).toEqual([
      undefined,
      expected,
      expected,
    ]);
    expect(
      cdn.requests.map((request) => [request.url, request.headers.authorization, request.headers.range]),
    ).toEqual([
      [`/blobs/${digest}?signature=abc`, undefined, undefined],
      [`/blobs/${digest}?signature=abc`, undefined, 'bytes=1000-'],
    ]);
  });

  it('skips to the offset itself when an upstream ignores Range', async () => {
    const blob = randomBytes(10_000);
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'Content-Length': String(blob.length) }).end(blob);
    });
    const got = await clientOf(server.url).getBlob('a/b', computeDigest(blob), { range: 4321 });
    expect(got).toMatchObject({ status: 200, offset: 4321, length: blob.length - 4321, size: blob.length });
    expect((await collect(got.body)).equals(blob.subarray(4321))).toBe(true);
    expect(server.requests[0]!.headers.range).toBe('bytes=4321-');
  });

  it('refuses manifest bytes that do not have the digest asked for or announced', async () => {
    const served = Buffer.from('{"schemaVersion":2}');
    const claimed = computeDigest(Buffer.from('{"schemaVersion":2} '));
    const server = await serve((_request, response) => {
      response
        .writeHead(200, { 'Content-Type': mediaTypes.ociManifest, 'Docker-Content-Digest': claimed })
        .end(served);
    });
    const client = clientOf(server.url);
    for (const reference of [claimed, 'latest']) {
      const error = await rejectionOf(client.getManifest('a/b', reference));
      expect(error).toBeInstanceOf(UpstreamDigestMismatchError);
      expect(error).toMatchObject({ expected: claimed, actual: computeDigest(served) });
    }
  });

  it('takes the digest from a HEAD answer, and computes it with a GET when the answer has none', async () => {
    const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}');
    let sendDigest = true;
    const server = await serve((_request, response) => {
      response
        .writeHead(200, {
          'Content-Type': mediaTypes.ociIndex,
          'Content-Length': manifest.length,
          ...(sendDigest ? { 'Docker-Content-Digest': computeDigest(manifest) } : {}),
        })
        .end(manifest);
    });
    const client = clientOf(server.url);
    const expected = {
      digest: computeDigest(manifest),
      mediaType: mediaTypes.ociIndex,
      size: manifest.length,
    };
    expect(await client.headManifest('a/b', 'latest')).toEqual(expected);
    expect(server.requests.map((request) => request.method)).toEqual(['HEAD']);
    sendDigest = false;
    expect(await client.headManifest('a/b', 'latest')).toEqual(expected);
    expect(server.requests.map((request) => request.method)).toEqual(['HEAD', 'HEAD', 'GET']);
  });

  it('says credentials are missing when the upstream asks for Basic and none are configured', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="private"' }).end();
    });
    const error = await rejectionOf(clientOf(server.url).listTags('a/b'));
    expect(error).toBeInstanceOf(UpstreamUnauthorizedError);
    expect((error as Error).message).toBe(
      'upstream tiny: list tags a/b: answered 401 Unauthorized to anonymous; no credentials are configured',
    );
    expect(server.requests).toHaveLength(1);
  });

  it('reports a refused connection, a 5xx and a timeout as the upstream being unavailable', async () => {
    const port = await freePort();
    const refused = await rejectionOf(clientOf(`http://127.0.0.1:${port}`).getManifest('a/b', 'latest'));
    expect(refused).toBeInstanceOf(UpstreamUnavailableError);
    expect(refused).toMatchObject({ code: 'SLW_ERR_UPSTREAM_UNAVAILABLE', status: undefined });
    expect((refused as Error).message).toMatch(
      new RegExp(
        `^upstream tiny: get manifest a/b:latest: no answer from http://127.0.0.1:${port}: .*ECONNREFUSED`,
      ),
    );

    const failing = await serve((_request, response) => {
      response
        .writeHead(503, { 'Content-Type': 'application/json' })
        .end('{"errors":[{"code":"UNAVAILABLE","message":"down"}]}');
    });
    const down = await rejectionOf(clientOf(failing.url).getBlob('a/b', computeDigest(Buffer.from('x'))));
    expect(down).toBeInstanceOf(UpstreamUnavailableError);
    expect(down).toMatchObject({ status: 503 });
    expect((down as Error).message).toMatch(
      /get blob a\/b@sha256:\w+: answered 503 Service Unavailable \(UNAVAILABLE: down\)$/,
    );

    const silent = await serve(() => {
      // Never answers.
    });
    const started = Date.now();
    const slow = await rejectionOf(clientOf(silent.url, { timeouts: { headersMs: 300 } }).ping());
    expect(slow).toBeInstanceOf(UpstreamUnavailableError);
    expect((slow as Error).message).toMatch(/^upstream tiny: ping: no answer from .*Headers Timeout/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('verifies TLS certificates unless tlsVerify is off', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
    }, selfSignedCertificate());
    const url = server.url;
    const refused = await rejectionOf(clientOf(url).ping());
    expect(refused).toBeInstanceOf(UpstreamUnavailableError);
    expect((refused as Error).message).toMatch(/self[- ]signed/i);
    expect(await clientOf(url, { tlsVerify: false }).ping()).toEqual({
      auth: 'none',
      apiVersion: 'registry/2.0',
    });
  });

  it("passes the caller's abort on as it is, not as an upstream failure", async () => {
    const silent = await serve(() => {
      // Never answers.
    });
    const controller = new AbortController();
    const pending = clientOf(silent.url).getManifest('a/b', 'latest', undefined, {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error('client went away')), 50);
    await expect(pending).rejects.toThrow('client went away');
  });
});

async function collect(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** A throwaway self-signed certificate for 127.0.0.1. */
function selfSignedCertificate(): { key: Buffer; cert: Buffer } {
  const openssl = requireTool('openssl', 'openssl');
  const dir = mkdtempSync(join(tmpdir(), 'slipway-tls-'));
  try {
    execFileSync(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
      ].concat(
        ['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
        ['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      ),
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
