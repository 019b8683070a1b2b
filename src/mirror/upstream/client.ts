import { Agent } from 'undici';
import { ConfigError } from '../../errors.ts';
import { computeDigest, digestAlgorithm, parseDigest, type Digest } from '../../registry/digest.ts';
import { baseMediaType, mediaTypes } from '../../registry/media-types.ts';
import { parseReference, parseRepositoryName, type Reference } from '../../registry/names.ts';
import type { AuthScheme, UpstreamCredentials } from './auth.ts';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.ts';
import { fetchBlob, type UpstreamBlob } from './blobs.ts';
import { UpstreamDigestMismatchError, UpstreamProtocolError, type UpstreamErrorContext } from './errors.ts';
import { nextLink } from './link.ts';
import type { RateLimitState } from './rate-limit.ts';
import { contentLength, single, type ResponseHeaders } from './headers.ts';
import { discard, UpstreamTransport } from './transport.ts';

export interface UpstreamTimeouts {
  /** To establish a connection (TCP and TLS). Default 5 s. */
  connectMs?: number;
  /** From sending a request to receiving the answer's headers. Default 30 s. */
  headersMs?: number;
  /** Between two chunks of a body (not for the whole body: blobs take as long as they take). Default 30 s. */
  bodyMs?: number;
}

export interface UpstreamClientOptions {
  /** The registry's origin, e.g. `https://registry-1.docker.io`. */
  url: string;
  /** How the upstream is named in errors and rate-limit reports; by default the URL's host. */
  name?: string;
  /** Without them, requests are anonymous (anonymous tokens where the upstream uses tokens). */
  credentials?: UpstreamCredentials;
  /** Off: accept any certificate (a self-signed upstream). Also applies to its token realm and CDN. */
  tlsVerify?: boolean;
  /** Connections at most to each origin (the registry, its token realm, its CDN). Default 16. */
  maxConnections?: number;
  timeouts?: UpstreamTimeouts;
  /** Larger manifests are refused. Default 4 MiB, as the local registry's limit. */
  maxManifestBytes?: number;
  /** When to stop asking an upstream that keeps failing, and for how long. */
  circuitBreaker?: CircuitBreakerOptions;
  /** Called with every answer of the registry that carries rate-limit headers. */
  onRateLimit?: (state: RateLimitState, upstream: string) => void;
  /** Called with every 429 answer: of the registry, its token realm or its CDN. */
  onRateLimited?: (upstream: string) => void;
  userAgent?: string;
}

export interface RequestOptions {
  /** Aborts the request, or the body being read; the abort error is thrown as it is. */
  signal?: AbortSignal;
}

export interface BlobRequestOptions extends RequestOptions {
  /** Start at this byte (`Range: bytes=N-`), to resume an interrupted download. */
  range?: number;
}

export interface ListTagsOptions extends RequestOptions {
  /** Page size asked for (`n`); every page is fetched. */
  n?: number;
  /** Start after this tag (`last`). */
  last?: string;
  /** Refuse to follow more pages than this. Default 10,000. */
  maxPages?: number;
}

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface UpstreamManifest {
  /** Exactly the bytes the upstream sent. */
  body: Buffer;
  digest: Digest;
  mediaType: string;
}

export interface PingResult {
  /** How the upstream authenticates requests: `none`, `basic` or `bearer` (tokens). */
  auth: AuthScheme;
  /** `Docker-Distribution-API-Version`, e.g. `registry/2.0`. */
  apiVersion: string | undefined;
}

/** What a manifest request accepts unless told otherwise: images and indexes, OCI and Docker. */
export const defaultManifestAccept: readonly string[] = [
  mediaTypes.ociIndex,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifestList,
  mediaTypes.dockerManifest,
];

const defaults = {
  maxConnections: 16,
  connectMs: 5_000,
  headersMs: 30_000,
  bodyMs: 30_000,
  maxManifestBytes: 4 * 1024 * 1024,
  maxTagPageBytes: 16 * 1024 * 1024,
  maxTagPages: 10_000,
};

/**
 * A client of one OCI/Docker v2 registry: manifests (HEAD and byte-exact GET), blobs (streamed,
 * resumable, through CDN redirects) and tag lists, authenticated with Basic credentials or Bearer
 * tokens as the upstream asks, over its own connection pool. Every failure is an `UpstreamError`.
 */
export class UpstreamClient {
  /** The upstream's name in errors and rate-limit reports. */
  readonly name: string;
  readonly origin: string;
  /** Whether requests go out, or pause because the upstream keeps failing. */
  readonly circuit: CircuitBreaker;
  readonly #agent: Agent;
  readonly #transport: UpstreamTransport;
  readonly #maxManifestBytes: number;

  constructor(options: UpstreamClientOptions) {
    const url = parseRegistryUrl(options.url);
    this.name = options.name ?? url.host;
    this.origin = url.origin;
    this.#maxManifestBytes = options.maxManifestBytes ?? defaults.maxManifestBytes;
    this.circuit = new CircuitBreaker(options.circuitBreaker);
    const timeouts = options.timeouts ?? {};
    this.#agent = new Agent({
      connections: options.maxConnections ?? defaults.maxConnections,
      connect: {
        timeout: timeouts.connectMs ?? defaults.connectMs,
        ...(options.tlsVerify === false ? { rejectUnauthorized: false } : {}),
      },
      headersTimeout: timeouts.headersMs ?? defaults.headersMs,
      bodyTimeout: timeouts.bodyMs ?? defaults.bodyMs,
    });
    this.#transport = new UpstreamTransport({
      origin: this.origin,
      label: this.name,
      dispatcher: this.#agent,
      credentials: options.credentials,
      userAgent: options.userAgent ?? 'slipway',
      onRateLimit: options.onRateLimit,
      onRateLimited: options.onRateLimited,
      breaker: this.circuit,
    });
  }

  /** The rate-limit headers of the upstream's latest answer that had any. */
  get rateLimit(): RateLimitState | undefined {
    return this.#transport.rateLimit;
  }

  /** GET /v2/: whether the upstream is there and takes our credentials (or anonymous access). */
  async ping(options: RequestOptions = {}): Promise<PingResult> {
    const context = this.#context('ping');
    const response = await this.#transport.exchange(context, '/v2/', {
      method: 'GET',
      signal: options.signal,
    });
    if (response.statusCode === 404) {
      await discard(response);
      throw new UpstreamProtocolError(context, '/v2/ answered 404: not a registry', { status: 404 });
    }
    if (response.statusCode !== 200) throw await this.#transport.failure(context, response, 'repository');
    await discard(response);
    return {
      auth: this.#transport.auth.scheme,
      apiVersion: single(response.headers['docker-distribution-api-version']),
    };
  }

  /**
   * HEAD a manifest: its digest (`Docker-Content-Digest`, else computed by a GET when the upstream
   * does not send it), media type and size. Against Docker Hub a HEAD does not count as a pull.
   */
  async headManifest(
    repository: string,
    reference: string,
    accept: readonly string[] = defaultManifestAccept,
    options: RequestOptions = {},
  ): Promise<ManifestHead> {
    const ref = parseReference(reference);
    const context = this.#context('head manifest', manifestTarget(repository, reference));
    const response = await this.#transport.exchange(context, manifestPath(repository, reference), {
      method: 'HEAD',
      headers: { accept: accept.join(', ') },
      scope: pullScope(repository),
      signal: options.signal,
    });
    if (response.statusCode !== 200) throw await this.#transport.failure(context, response, 'manifest');
    await discard(response);
    const digest = digestHeader(response.headers) ?? (ref.kind === 'digest' ? ref.digest : undefined);
    const size = contentLength(response.headers);
    const mediaType = baseMediaType(single(response.headers['content-type']));
    if (digest && size !== undefined && mediaType) return { digest, mediaType, size };
    const manifest = await this.getManifest(repository, reference, accept, options);
    return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.body.length };
  }

  /**
   * GET a manifest, exactly as sent. Fetched by digest, the bytes must have that digest; fetched by
   * tag, they must have the `Docker-Content-Digest` the upstream sent, if any. Either mismatch is an
   * `UpstreamDigestMismatchError`.
   */
  async getManifest(
    repository: string,
    reference: string,
    accept: readonly string[] = defaultManifestAccept,
    options: RequestOptions = {},
  ): Promise<UpstreamManifest> {
    const ref = parseReference(reference);
    const context = this.#context('get manifest', manifestTarget(repository, reference));
    const response = await this.#transport.exchange(context, manifestPath(repository, reference), {
      method: 'GET',
      headers: { accept: accept.join(', ') },
      scope: pullScope(repository),
      signal: options.signal,
    });
    if (response.statusCode !== 200) throw await this.#transport.failure(context, response, 'manifest');
    const body = await this.#transport.readBody(context, response, this.#maxManifestBytes, options.signal);
    const expected = expectedDigest(ref, response.headers);
    const digest = computeDigest(body, expected ? digestAlgorithm(expected) : 'sha256');
    if (expected && digest !== expected) throw new UpstreamDigestMismatchError(context, expected, digest);
    return { body, digest, mediaType: manifestMediaType(single(response.headers['content-type']), body) };
  }

  /** HEAD a blob (following redirects to blob storage, as a GET would): its size, without its bytes. */
  async headBlob(
    repository: string,
    digest: string,
    options: RequestOptions = {},
  ): Promise<{ size: number }> {
    const parsed = parseDigest(digest);
    const context = this.#context('head blob', `${repository}@${parsed}`);
    const head = await fetchBlob(
      this.#transport,
      context,
      `/v2/${parseRepositoryName(repository)}/blobs/${parsed}`,
      {
        method: 'HEAD',
        offset: 0,
        scope: pullScope(repository),
        signal: options.signal,
      },
    );
    head.body.resume();
    if (head.size === undefined)
      throw new UpstreamProtocolError(context, 'blob HEAD without a Content-Length');
    return { size: head.size };
  }

  /**
   * GET a blob as a stream, following redirects to blob storage (without the registry's credentials).
   * With `range`, the body starts at that byte. The bytes are not verified here: whoever stores them
   * hashes them on the way.
   */
  async getBlob(repository: string, digest: string, options: BlobRequestOptions = {}): Promise<UpstreamBlob> {
    const parsed = parseDigest(digest);
    const offset = options.range ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`blob range must start at a byte offset ≥ 0, got ${offset}`);
    }
    const context = this.#context('get blob', `${repository}@${parsed}`);
    return fetchBlob(this.#transport, context, `/v2/${parseRepositoryName(repository)}/blobs/${parsed}`, {
      offset,
      scope: pullScope(repository),
      signal: options.signal,
    });
  }

  /** Every tag of a repository, page after page as the upstream's `Link` headers lead. */
  async listTags(repository: string, options: ListTagsOptions = {}): Promise<string[]> {
    const context = this.#context('list tags', repository);
    const query = new URLSearchParams();
    if (options.n !== undefined) query.set('n', String(options.n));
    if (options.last !== undefined) query.set('last', options.last);
    let path = `/v2/${parseRepositoryName(repository)}/tags/list${query.size ? `?${query}` : ''}`;
    const visited = new Set([path]);
    const maxPages = options.maxPages ?? defaults.maxTagPages;
    const tags: string[] = [];
    for (let page = 1; ; page++) {
      const response = await this.#transport.exchange(context, path, {
        method: 'GET',
        headers: { accept: 'application/json' },
        scope: pullScope(repository),
        signal: options.signal,
      });
      if (response.statusCode !== 200) throw await this.#transport.failure(context, response, 'repository');
      const link = response.headers.link;
      const body = await this.#transport.readBody(
        context,
        response,
        defaults.maxTagPageBytes,
        options.signal,
      );
      tags.push(...tagsOf(context, body));
      const next = nextLink(link);
      if (next === undefined) return tags;
      if (page === maxPages) throw new UpstreamProtocolError(context, `more than ${maxPages} pages of tags`);
      const url = new URL(next, new URL(path, this.origin));
      if (url.origin !== this.origin) {
        throw new UpstreamProtocolError(context, `the next page of tags is on another host (${url.origin})`);
      }
      path = `${url.pathname}${url.search}`;
      if (visited.has(path))
        throw new UpstreamProtocolError(context, `the next page of tags repeats ${path}`);
      visited.add(path);
    }
  }

  /** Closes the connections once the requests in flight are done. */
  close(): Promise<void> {
    return this.#agent.close();
  }

  #context(operation: string, target?: string): UpstreamErrorContext {
    return { upstream: this.name, operation, ...(target ? { target } : {}) };
  }
}

function parseRegistryUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`upstream url "${value}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`upstream url "${value}": expected http:// or https://`);
  }
  if (
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search ||
    url.hash ||
    url.username ||
    url.password
  ) {
    throw new ConfigError(
      `upstream url "${url.origin}${url.pathname}": expected only the registry's origin, e.g. https://registry-1.docker.io`,
    );
  }
  return url;
}

function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

function manifestPath(repository: string, reference: string): string {
  return `/v2/${parseRepositoryName(repository)}/manifests/${reference}`;
}

function manifestTarget(repository: string, reference: string): string {
  return `${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
}

/** The digest the bytes must have: the one asked for, else the one the upstream says they have. */
function expectedDigest(reference: Reference, headers: ResponseHeaders): Digest | undefined {
  return reference.kind === 'digest' ? reference.digest : digestHeader(headers);
}

/** `Docker-Content-Digest` when it is a digest we can compute (sha256 or sha512). */
function digestHeader(headers: ResponseHeaders): Digest | undefined {
  const value = single(headers['docker-content-digest'])?.trim();
  if (!value) return undefined;
  try {
    return parseDigest(value);
  } catch {
    return undefined;
  }
}

const genericTypes = new Set(['', 'application/json', 'text/plain', 'application/octet-stream']);

/** The Content-Type, unless it is missing or generic: then the manifest's own `mediaType` field. */
function manifestMediaType(contentType: string | undefined, body: Buffer): string {
  const declared = baseMediaType(contentType);
  if (!genericTypes.has(declared)) return declared;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { mediaType?: unknown; schemaVersion?: unknown };
    if (typeof parsed.mediaType === 'string' && parsed.mediaType) return parsed.mediaType;
    if (parsed.schemaVersion === 1) return mediaTypes.dockerSchema1Signed;
  } catch {
    // Not JSON: keep what was declared.
  }
  return declared || 'application/octet-stream';
}

function tagsOf(context: UpstreamErrorContext, body: Buffer): string[] {
  let parsed: { tags?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as { tags?: unknown };
  } catch {
    throw new UpstreamProtocolError(context, 'the tag list is not JSON');
  }
  // Distribution answers `"tags": null` for a repository without tags.
  if (parsed.tags === null || parsed.tags === undefined) return [];
  if (!Array.isArray(parsed.tags) || !parsed.tags.every((tag) => typeof tag === 'string')) {
    throw new UpstreamProtocolError(context, 'the tag list has no "tags" array of strings');
  }
  return parsed.tags as string[];
}
