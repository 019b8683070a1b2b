/**
 * A minimal OCI Distribution client over node:http, for seeding and for the push rows. Both servers are
 * spoken to in exactly the same way; the only branch is the monolithic-upload fallback the spec
 * itself prescribes (a registry that answers a single-request POST with 202 gets a PUT).
 */
import { createHash } from 'node:crypto';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export const mediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** What docker/containerd send when pulling. */
export const manifestAccept = [
  mediaTypes.ociManifest,
  mediaTypes.ociIndex,
  mediaTypes.dockerManifest,
  mediaTypes.dockerList,
].join(', ');

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export class HttpError extends Error {
  readonly status: number;

  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/**
 * node:http rather than fetch: on this 2-core machine the client's own cost matters, and fetch's
 * WHATWG streams cost several times more CPU per byte sent or received than node:http does.
 */
export const agent = new Agent({ keepAlive: true, maxSockets: 256 });

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Uint8Array } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers['content-length'] = String(options.body.byteLength);
    else if (options.method && options.method !== 'GET' && options.method !== 'HEAD')
      headers['content-length'] ??= '0';
    const req = httpRequest(url, { method: options.method ?? 'GET', headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.once('error', reject);
    req.end(options.body);
  });
}

/** GETs `url` and throws the body away as it arrives; resolves with the byte count. */
export function sinkHttp(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
      }
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.once('error', reject);
      res.once('end', () => resolve(bytes));
    });
    req.once('error', reject);
    req.end();
  });
}

/** The same through fetch (undici's WHATWG streams), for comparison: `--stream-client fetch`. */
export async function sinkFetch(url: string): Promise<number> {
  const response = await fetch(url);
  if (response.status !== 200 || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  let bytes = 0;
  for await (const chunk of response.body) bytes += (chunk as Uint8Array).byteLength;
  return bytes;
}

function expect(response: SimpleResponse, statuses: number[], what: string): SimpleResponse {
  if (!statuses.includes(response.status)) {
    throw new HttpError(
      `${what}: HTTP ${response.status} ${response.body.toString('utf8').slice(0, 300)}`,
      response.status,
    );
  }
  return response;
}

function locationOf(base: string, response: SimpleResponse): string {
  const location = response.headers.location;
  if (!location) throw new Error(`no Location header on HTTP ${response.status}`);
  return new URL(location, base).toString();
}

function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}

export type MonolithicFlow = 'single-post' | 'post-put';

/**
 * Does the registry take a blob in one `POST ?digest=` request (201)? Distribution 2.8 answers 202,
 * ignoring the body, so clients must fall back to POST then `PUT ?digest=` with the body.
 */
export async function probeMonolithicFlow(base: string, repository: string): Promise<MonolithicFlow> {
  const probe = Buffer.from(`monolithic-probe-${Date.now()}-${Math.random()}`);
  const response = await send(`${base}/v2/${repository}/blobs/uploads/?digest=${sha256(probe)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: probe,
  });
  if (response.status === 201) return 'single-post';
  if (response.status === 202) {
    await send(locationOf(base, response), { method: 'DELETE' }).catch(() => {});
    return 'post-put';
  }
  throw new HttpError(`monolithic probe: HTTP ${response.status}`, response.status);
}

/** The whole blob in one request body: single POST where supported, else POST + PUT ?digest=. */
export async function pushBlobMonolithic(
  base: string,
  repository: string,
  data: Uint8Array,
  digest: string,
  flow: MonolithicFlow,
): Promise<void> {
  const start = `${base}/v2/${repository}/blobs/uploads/`;
  if (flow === 'single-post') {
    const response = await send(`${start}?digest=${digest}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    expect(response, [201], `monolithic POST ${digest}`);
    return;
  }
  const opened = expect(await send(start, { method: 'POST' }), [202], 'POST upload');
  const put = await send(withQuery(locationOf(base, opened), 'digest', digest), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(put, [201], `monolithic PUT ${digest}`);
}

/** POST, then PATCHes of `chunkSize` bytes with Content-Range, then an empty PUT ?digest=. */
export async function pushBlobChunked(
  base: string,
  repository: string,
  data: Uint8Array,
  digest: string,
  chunkSize: number,
): Promise<void> {
  const opened = expect(
    await send(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' }),
    [202],
    'POST upload',
  );
  let location = locationOf(base, opened);
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    const chunk = data.subarray(offset, Math.min(offset + chunkSize, data.length));
    const patched = await send(location, {
      method: 'PATCH',
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      },
      body: chunk,
    });
    expect(patched, [202], `PATCH ${offset}`);
    location = locationOf(base, patched);
  }
  const done = await send(withQuery(location, 'digest', digest), { method: 'PUT' });
  expect(done, [201], `PUT ?digest=${digest}`);
}

export async function putManifest(
  base: string,
  repository: string,
  reference: string,
  body: Uint8Array,
  mediaType: string,
) {
  const response = await send(`${base}/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body,
  });
  expect(response, [201], `PUT manifest ${repository}:${reference}`);
}

export async function getJson<T>(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ body: T; response: SimpleResponse }> {
  const response = expect(await send(url, { headers }), [200], `GET ${url}`);
  return { body: JSON.parse(response.body.toString('utf8')) as T, response };
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}
