import { STATUS_CODES } from 'node:http';
import { pipeline, Transform, type Readable } from 'node:stream';
import {
  UpstreamNotFoundError,
  UpstreamProtocolError,
  UpstreamRateLimitedError,
  UpstreamUnavailableError,
  type UpstreamError,
  type UpstreamErrorContext,
} from './errors.ts';
import { parseRetryAfter } from './rate-limit.ts';
import { contentLength, single } from './headers.ts';
import { discard, type ResponseHeaders, type UpstreamResponse, type UpstreamTransport } from './transport.ts';

/** A blob being received: read `body` to the end, or destroy it. */
export interface UpstreamBlob {
  /** 200, or 206 for a range. */
  status: number;
  /** The headers of the answer that carries the bytes (a CDN's, after a redirect). */
  headers: ResponseHeaders;
  body: Readable;
  /** Where in the blob `body` starts: always the offset asked for. */
  offset: number;
  /** The bytes `body` will carry, when the answer says. */
  length: number | undefined;
  /** The whole blob's size, when the answer says. */
  size: number | undefined;
  /** The origin the bytes come from: the registry's, or the storage it redirected to. */
  servedBy: string;
}

const maxRedirects = 5;

/**
 * GETs (or HEADs) a blob from the registry and follows redirects to wherever it keeps the bytes (a CDN, S3). The
 * registry's Authorization goes only to the registry's own origin; a redirect elsewhere is followed
 * with no credentials (the URL itself is the permission). `offset` > 0 asks for `bytes=offset-`; an
 * answer that ignores the range has its first `offset` bytes skipped here.
 */
export async function fetchBlob(
  transport: UpstreamTransport,
  context: UpstreamErrorContext,
  path: string,
  options: { offset: number; scope: string; signal?: AbortSignal | undefined; method?: 'GET' | 'HEAD' },
): Promise<UpstreamBlob> {
  const { offset, scope, signal, method = 'GET' } = options;
  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  let url = new URL(path, transport.origin);
  let response = await transport.exchange(context, path, { method, headers, scope, signal });
  for (let hops = 0; isRedirect(response.statusCode); hops++) {
    const location = single(response.headers.location);
    const status = response.statusCode;
    await discard(response);
    if (!location)
      throw new UpstreamProtocolError(context, `redirect (${status}) without a Location`, { status });
    if (hops === maxRedirects)
      throw new UpstreamProtocolError(context, `more than ${maxRedirects} redirects`);
    url = resolveRedirect(context, url, location);
    response =
      url.origin === transport.origin
        ? await transport.exchange(context, `${url.pathname}${url.search}`, {
            method,
            headers,
            scope,
            signal,
          })
        : await transport.send(context, url, { method, headers, signal });
  }
  const servedBy = url.origin;
  const status = response.statusCode;
  if (status !== 200 && status !== 206) {
    throw servedBy === transport.origin
      ? await transport.failure(context, response, 'blob')
      : await storageFailure(context, response, servedBy);
  }
  if (status === 206) return partial(context, response, offset, servedBy);
  const size = contentLength(response.headers);
  if (offset === 0)
    return { status, headers: response.headers, body: response.body, offset, length: size, size, servedBy };
  if (size !== undefined && offset > size) {
    response.body.destroy();
    throw new UpstreamProtocolError(context, `asked for bytes from ${offset} of a ${size}-byte blob`);
  }
  return {
    status,
    headers: response.headers,
    body: skipBytes(response.body, offset),
    offset,
    length: size === undefined ? undefined : size - offset,
    size,
    servedBy,
  };
}

function partial(
  context: UpstreamErrorContext,
  response: UpstreamResponse,
  offset: number,
  servedBy: string,
): UpstreamBlob {
  const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(single(response.headers['content-range'])?.trim() ?? '');
  const start = Number(range?.[1]);
  if (!range || start !== offset) {
    response.body.destroy();
    throw new UpstreamProtocolError(
      context,
      `206 with Content-Range "${single(response.headers['content-range']) ?? ''}" for bytes from ${offset}`,
      { status: 206 },
    );
  }
  return {
    status: 206,
    headers: response.headers,
    body: response.body,
    offset,
    length: Number(range[2]) - start + 1,
    size: range[3] === '*' ? undefined : Number(range[3]),
    servedBy,
  };
}

/** What a failed answer from blob storage means; never "unauthorized", since no credentials went there. */
async function storageFailure(
  context: UpstreamErrorContext,
  response: UpstreamResponse,
  origin: string,
): Promise<UpstreamError> {
  const status = response.statusCode;
  await discard(response);
  if (status === 404) return new UpstreamNotFoundError(context, 'blob');
  if (status === 429) {
    return new UpstreamRateLimitedError(context, parseRetryAfter(response.headers['retry-after']), undefined);
  }
  // An expired signed URL (403) or a storage outage: asking the registry again may well work.
  const answered = `blob storage ${origin} answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
  return new UpstreamUnavailableError(context, answered, { status });
}

function resolveRedirect(context: UpstreamErrorContext, from: URL, location: string): URL {
  let target: URL;
  try {
    target = new URL(location, from);
  } catch {
    throw new UpstreamProtocolError(context, 'redirect to an unreadable Location');
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    throw new UpstreamProtocolError(context, `redirect to a ${target.protocol} URL`);
  }
  return target;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** `source` without its first `count` bytes; destroying the result destroys `source`. */
function skipBytes(source: Readable, count: number): Readable {
  let left = count;
  const rest = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return done();
      }
      const tail = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      done(null, tail);
    },
  });
  pipeline(source, rest, () => {
    // Errors reach the consumer through `rest`.
  });
  return rest;
}
