import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** How the receiver answers its n-th request (0-based): a status and body, or never. */
export type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

export interface WebhookReceiver {
  url: string;
  port: number;
  received: ReceivedRequest[];
  /** Changes how later requests are answered. */
  answerWith(answer: (index: number) => Answer): void;
  close(): Promise<void>;
}

/** An HTTP endpoint on loopback that records every request and answers as told (200 "ok" by default). */
export async function startReceiver(
  answer: (index: number) => Answer = () => ({ status: 200, body: 'ok' }),
  port = 0,
): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  let answerOf = answer;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const index = received.length;
      received.push({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const reply = answerOf(index);
      if (reply === 'hang') {
        hanging.add(response);
        return;
      }
      response.writeHead(reply.status, reply.headers ?? {}).end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${bound}/hook`,
    port: bound,
    received,
    answerWith(next) {
      answerOf = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The payload of a Standard Webhooks request, after the `standardwebhooks` library verified it. */
export function verified<T = Record<string, unknown>>(secret: string, request: ReceivedRequest): T {
  return new Webhook(secret).verify(request.body, request.headers as Record<string, string>) as T;
}
