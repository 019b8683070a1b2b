import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StallingServer {
  url: string;
  /** The requests taken so far (and never answered). */
  requests: IncomingMessage[];
  close(): Promise<void>;
}

/**
 * An HTTP server on loopback that takes every request and never answers: a git remote whose clone
 * hangs, so that a build stays in its `cloning` phase for as long as a test needs it to run.
 */
export async function startStallingServer(): Promise<StallingServer> {
  const requests: IncomingMessage[] = [];
  const server = createServer((request) => requests.push(request));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
