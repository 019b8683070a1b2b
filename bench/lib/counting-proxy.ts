/**
 * The pull-through bench's counting reverse proxy: `node bench/lib/counting-proxy.ts <registry URL>`
 * forwards every request to that registry unchanged and records method, path, status and body bytes
 * of each response, so the bench can tell how often a cache went upstream. Prints its port on stdout.
 *
 *   GET    /-/requests   the record, as JSON
 *   DELETE /-/requests   clears it
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ProxiedRequest {
  method: string;
  path: string;
  /** 0 when the upstream could not be reached or the exchange broke off. */
  status: number;
  /** Response body bytes passed on. */
  bytes: number;
  /** The response was passed on to its end. */
  complete: boolean;
}

const controlPath = '/-/requests';

function control(req: IncomingMessage, res: ServerResponse, record: ProxiedRequest[]): void {
  if (req.method === 'DELETE') record.length = 0;
  const body = Buffer.from(req.method === 'DELETE' ? '[]' : JSON.stringify(record));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function main(): void {
  const target = new URL(process.argv[2] ?? '');
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const record: ProxiedRequest[] = [];

  const server = createServer((req, res) => {
    if (req.url === controlPath) return control(req, res, record);
    const entry: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      status: 0,
      bytes: 0,
      complete: false,
    };
    record.push(entry);
    const forward = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upstream) => {
        entry.status = upstream.statusCode ?? 0;
        res.writeHead(entry.status, upstream.statusMessage, upstream.rawHeaders);
        upstream.on('data', (chunk: Buffer) => (entry.bytes += chunk.length));
        upstream.once('end', () => (entry.complete = true));
        upstream.pipe(res);
        res.once('close', () => {
          if (!upstream.complete) upstream.destroy();
        });
      },
    );
    forward.once('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(forward);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
  });
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (import.meta.main) main();
