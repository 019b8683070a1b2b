import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, Transform, type Readable } from 'node:stream';

export interface ProxiedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  status: number;
  headers: IncomingHttpHeaders;
}

/**
 * A loopback reverse proxy that forwards every request to `target` unchanged (its Host header too, so
 * a registry that derives its token realm from Host names the proxy, and token requests come through
 * here as well) and records each one with the status it got.
 */
export interface CountingProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  requests: ProxiedRequest[];
  /** How many recorded requests match. */
  count(match: (request: ProxiedRequest) => boolean): number;
  stop(): Promise<void>;
}

/** What to change in the head of an answer. */
export interface AnswerHead {
  /** Instead of the upstream's status; the body still goes through. */
  status?: number;
  /** Added to the upstream's headers. */
  headers?: Record<string, string>;
}

export interface CountingProxyOptions {
  /**
   * Changes the status of the answer to a request, or adds headers to it (a 429 with Retry-After,
   * rate-limit headers). Undefined leaves the head as it is.
   */
  shapeHead?: (request: ProxiedRequest) => AnswerHead | undefined;
  /**
   * Reshapes the body of the answer to a request (hold it part way, cut it short, corrupt it); the
   * status and headers go through as `shapeHead` leaves them. Undefined leaves the body as it is.
   */
  shapeBody?: (request: ProxiedRequest) => ((body: Readable) => Readable) | undefined;
}

export async function startCountingProxy(
  target: string,
  options: CountingProxyOptions = {},
): Promise<CountingProxy> {
  const upstream = new URL(target);
  const requests: ProxiedRequest[] = [];
  const server = createServer((incoming, outgoing) => {
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        const recorded: ProxiedRequest = {
          method: incoming.method ?? '',
          url: incoming.url ?? '',
          status: answer.statusCode ?? 0,
          headers: incoming.headers,
        };
        requests.push(recorded);
        // The client went away before the upstream answered: nothing to send the answer to.
        if (outgoing.destroyed) {
          answer.resume();
          return;
        }
        const head = options.shapeHead?.(recorded);
        recorded.status = head?.status ?? recorded.status;
        const added = Object.entries(head?.headers ?? {}).flat();
        outgoing.writeHead(head?.status ?? answer.statusCode ?? 502, [...answer.rawHeaders, ...added]);
        const shape = options.shapeBody?.(recorded);
        pipeline(shape ? shape(answer) : answer, outgoing, (error) => {
          if (error) outgoing.destroy();
        });
      },
    );
    forwarded.once('error', () => {
      if (outgoing.headersSent || outgoing.destroyed) outgoing.destroy();
      else outgoing.writeHead(502).end();
    });
    pipeline(incoming, forwarded, () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count: (match) => requests.filter(match).length,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Passes the first `bytes` bytes, then holds the rest until `release` settles. */
export function holdAfter(bytes: number, release: Promise<unknown>): (body: Readable) => Readable {
  return (body) => {
    let passed = 0;
    return body.pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          const room = Math.max(0, bytes - passed);
          passed += chunk.length;
          if (chunk.length <= room) return done(null, chunk);
          if (room > 0) this.push(chunk.subarray(0, room));
          void release.then(() => done(null, chunk.subarray(room)));
        },
      }),
    );
  };
}

/** Passes the first `bytes` bytes, then breaks the connection. */
export function cutAfter(bytes: number): (body: Readable) => Readable {
  return (body) => {
    let passed = 0;
    const cut = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        const room = bytes - passed;
        passed += chunk.length;
        if (chunk.length < room) return done(null, chunk);
        this.push(chunk.subarray(0, room));
        done(new Error('connection cut by the test'));
      },
    });
    return body.pipe(cut);
  };
}

/** Changes the value of the body's last byte, keeping its length. */
export function corruptLastByte(): (body: Readable) => Readable {
  return (body) => {
    let held: Buffer | undefined;
    return body.pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          const previous = held;
          held = chunk;
          done(null, previous);
        },
        flush(done) {
          if (held && held.length > 0) {
            const last = Buffer.from(held);
            last[last.length - 1] = last[last.length - 1]! ^ 0xff;
            this.push(last);
          }
          done();
        },
      }),
    );
  };
}
