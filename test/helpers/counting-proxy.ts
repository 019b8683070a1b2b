import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';

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

export async function startCountingProxy(target: string): Promise<CountingProxy> {
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
        requests.push({
          method: incoming.method ?? '',
          url: incoming.url ?? '',
          status: answer.statusCode ?? 0,
          headers: incoming.headers,
        });
        outgoing.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        pipeline(answer, outgoing, () => {});
      },
    );
    forwarded.once('error', () => {
      outgoing.writeHead(502).end();
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
