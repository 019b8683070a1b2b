/**
 * The pull-through bench's counting reverse proxy: `node bench/lib/counting-proxy.ts <registry URL>
 * [link rate, bytes/s]` forwards every request to that registry unchanged and records method, path,
 * status and body bytes of each response, so the bench can tell how often a cache went upstream.
 * Prints its port on stdout.
 *
 * With a link rate, the upstream's response bodies are paced to that rate, as if the upstream sat
 * behind a link of that bandwidth: all responses in flight share it. Request bodies and headers are
 * not paced, and no latency is added.
 *
 *   GET    /-/requests    the record, as JSON
 *   DELETE /-/requests    clears it
 *   GET    /-/link-rate   the link rate in bytes/s, as JSON (0: not paced)
 *   PUT    /-/link-rate   sets it (body: bytes/s, 0 for none), for the responses that start after it
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Transform } from 'node:stream';

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

const requestsPath = '/-/requests';
const linkRatePath = '/-/link-rate';

/**
 * The link between upstream and proxy: a token bucket shared by every response body passed on while
 * a rate is set. It holds 10 ms worth of bytes (at least 64 KiB), so that timer resolution costs no
 * throughput, and starts full.
 */
class Link {
  bytesPerSec = 0;
  /** When (performance.now(), ms) the bytes handed to the link so far will have crossed it. */
  private doneAt = 0;

  /** How long (ms) to hold back `bytes` before passing them on; 0 when not paced. */
  delay(bytes: number): number {
    if (this.bytesPerSec <= 0) return 0;
    const now = performance.now();
    const burstMs = Math.max(10, ((64 * 1024) / this.bytesPerSec) * 1000);
    this.doneAt = Math.max(this.doneAt, now - burstMs) + (bytes / this.bytesPerSec) * 1000;
    return this.doneAt - now;
  }
}

/**
 * Passes each chunk on once the link has carried it. While a chunk waits, pipe()'s backpressure
 * pauses the upstream response, so at most a chunk and the streams' buffers are held per response.
 */
function pacer(link: Link): Transform {
  let timer: NodeJS.Timeout | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const wait = link.delay(chunk.length);
      if (wait < 1) return done(null, chunk);
      timer = setTimeout(() => {
        timer = undefined;
        done(null, chunk);
      }, wait);
    },
    destroy(error, callback) {
      clearTimeout(timer);
      callback(error);
    },
  });
}

function reply(res: ServerResponse, value: unknown, status = 200): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function control(req: IncomingMessage, res: ServerResponse, record: ProxiedRequest[], link: Link): void {
  if (req.url === requestsPath) {
    if (req.method === 'DELETE') record.length = 0;
    return reply(res, req.method === 'DELETE' ? [] : record);
  }
  if (req.method !== 'PUT') return reply(res, link.bytesPerSec);
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.once('end', () => {
    const rate = Number(body.trim());
    if (!Number.isFinite(rate) || rate < 0) return reply(res, `bad link rate "${body}"`, 400);
    link.bytesPerSec = rate;
    reply(res, link.bytesPerSec);
  });
}

function main(): void {
  const target = new URL(process.argv[2] ?? '');
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const record: ProxiedRequest[] = [];
  const link = new Link();
  link.bytesPerSec = Number(process.argv[3] ?? 0);
  if (!Number.isFinite(link.bytesPerSec) || link.bytesPerSec < 0)
    throw new Error(`bad link rate "${process.argv[3]}"`);

  const server = createServer((req, res) => {
    if (req.url === requestsPath || req.url === linkRatePath) return control(req, res, record, link);
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
        const paced = link.bytesPerSec > 0 ? pacer(link) : undefined;
        (paced ? upstream.pipe(paced) : upstream).pipe(res);
        res.once('close', () => {
          if (!upstream.complete) upstream.destroy();
          paced?.destroy();
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
