import { STATUS_CODES } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { guardedLookup, literalAddressProblem } from './destinations.ts';
import type { DeliveryAttempt } from './model.ts';
import type { OutgoingRequest } from './webhook.ts';

const excerptBytes = 1024;

export interface HttpSenderOptions {
  /** How long an endpoint has to connect, answer and send its body. */
  timeoutMs: number;
  allowPrivateDestinations: boolean;
}

/**
 * POSTs deliveries through one undici agent. Redirects are never followed (a 3xx is a failure), so a
 * redirect cannot lead past the destination check, which runs on every new connection.
 */
export class HttpSender {
  readonly #agent: Agent;
  readonly #options: HttpSenderOptions;

  constructor(options: HttpSenderOptions) {
    this.#options = options;
    this.#agent = new Agent({
      connect: {
        timeout: options.timeoutMs,
        ...(options.allowPrivateDestinations ? {} : { lookup: guardedLookup }),
      },
      // The attempt's own signal fires first, so a slow endpoint reads as "no answer within …".
      headersTimeout: options.timeoutMs + 1000,
      bodyTimeout: options.timeoutMs + 1000,
    });
  }

  /** Sends once and says how it went; never throws. */
  async send(url: string, request: OutgoingRequest): Promise<DeliveryAttempt> {
    const attemptedAt = new Date();
    const started = performance.now();
    const done = (fields: Pick<DeliveryAttempt, 'statusCode' | 'error' | 'responseExcerpt'>) => ({
      attemptedAt,
      latencyMs: Math.round(performance.now() - started),
      success: fields.statusCode !== null && fields.statusCode >= 200 && fields.statusCode < 300,
      ...fields,
    });
    const target = new URL(url);
    const refused = literalAddressProblem(target, this.#options.allowPrivateDestinations);
    if (refused) return done({ statusCode: null, error: `refused: ${refused}`, responseExcerpt: null });

    const signal = AbortSignal.timeout(this.#options.timeoutMs);
    try {
      const response = await this.#agent.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: { ...request.headers, ...basicAuthOf(target) },
        body: request.body,
        signal,
      });
      const excerpt = await readExcerpt(response.body);
      const location = response.headers.location;
      return done({
        statusCode: response.statusCode,
        error: statusProblem(response.statusCode, typeof location === 'string' ? location : undefined),
        responseExcerpt: excerpt,
      });
    } catch (error) {
      const message = signal.aborted
        ? `no answer within ${this.#options.timeoutMs / 1000} s`
        : (error as Error).message;
      return done({ statusCode: null, error: message, responseExcerpt: null });
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** Credentials in the URL (https://user:password@host/…) become Basic authentication. */
function basicAuthOf(url: URL): Record<string, string> {
  if (!url.username && !url.password) return {};
  const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` };
}

function statusProblem(status: number, location: string | undefined): string | null {
  if (status >= 200 && status < 300) return null;
  const answered = `the endpoint answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
  if (status >= 300 && status < 400) {
    return `${answered}${location ? ` (to ${location})` : ''}: redirects are not followed`;
  }
  return answered;
}

/** The first KiB of the body as text; the rest is dropped with the connection. */
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= excerptBytes) break;
    }
  } catch {
    // A body cut short or too slow: what arrived is excerpt enough.
  } finally {
    body.destroy();
  }
  // PostgreSQL text cannot hold NUL.
  const text = Buffer.concat(chunks).subarray(0, excerptBytes).toString('utf8').replaceAll('\u0000', '');
  return text === '' ? null : text;
}
