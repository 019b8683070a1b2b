import { request } from 'node:http';

/** The value of one Prometheus series from `/metrics`, e.g. `metric(url, 'x_total', { method: 'mount' })`; 0 when absent. */
export async function metric(
  baseUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const text = await response.text();
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(',').filter(Boolean).sort();
    if (have.length === wanted.length && have.every((label, i) => label === wanted[i]))
      return Number(match[3]);
  }
  return 0;
}

/** Several series at once, so a before/after comparison reads them at one moment. */
export async function metrics<K extends string>(
  baseUrl: string,
  series: Record<K, [name: string, labels?: Record<string, string>]>,
): Promise<Record<K, number>> {
  const out = {} as Record<K, number>;
  for (const [key, [name, labels]] of Object.entries(series) as Array<
    [K, [string, Record<string, string>?]]
  >) {
    out[key] = await metric(baseUrl, name, labels ?? {});
  }
  return out;
}

export interface PartialRequest {
  /** Resolves once `bytes` of the body have been handed to the socket. */
  written: Promise<void>;
  /** Destroys the request mid-body, as a client whose connection dropped. */
  abort(): void;
  /** Settles when the request ends one way or the other (the response, if any, is not awaited). */
  done: Promise<void>;
}

/**
 * Starts `method url` declaring `body.length` bytes but writes only the first `bytes` of them, then
 * keeps the request open until `abort()`: an upload interrupted midway.
 */
export function startPartialRequest(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  body: Buffer,
  bytes: number,
): PartialRequest {
  const req = request(url, { method, headers: { ...headers, 'Content-Length': body.length } });
  const done = new Promise<void>((resolve) => {
    req.once('close', () => resolve());
    req.once('error', () => resolve());
    req.once('response', (response) => {
      response.resume();
      response.once('end', () => resolve());
    });
  });
  const written = new Promise<void>((resolve, reject) => {
    req.once('error', reject);
    const piece = 64 * 1024;
    let sent = 0;
    const writeMore = () => {
      while (sent < bytes) {
        const end = Math.min(sent + piece, bytes);
        const ok = req.write(body.subarray(sent, end));
        sent = end;
        if (!ok) {
          req.once('drain', writeMore);
          return;
        }
      }
      resolve();
    };
    writeMore();
  });
  written.catch(() => {});
  return { written, abort: () => req.destroy(), done };
}

/** A GET whose body is read as the test asks, so it can look at a download part-way. */
export interface Download {
  status: number;
  headers: Headers;
  /** The bytes of the body that arrived so far. */
  readonly received: number;
  /** Waits until at least `bytes` bytes arrived. */
  readAtLeast(bytes: number): Promise<void>;
  /** Everything, once the download ends; rejects if it breaks off. */
  rest(): Promise<Buffer>;
}

export async function openDownload(url: string): Promise<Download> {
  const response = await fetch(url);
  const reader = response.body!.getReader();
  const chunks: Buffer[] = [];
  let received = 0;
  const readOne = async (): Promise<boolean> => {
    const { done, value } = await reader.read();
    if (done) return false;
    chunks.push(Buffer.from(value));
    received += value.length;
    return true;
  };
  return {
    status: response.status,
    headers: response.headers,
    get received() {
      return received;
    },
    async readAtLeast(bytes) {
      while (received < bytes) {
        if (!(await readOne())) throw new Error(`download ended after ${received} bytes`);
      }
    },
    async rest() {
      while (await readOne());
      return Buffer.concat(chunks);
    },
  };
}

export interface StartingServer {
  /** Names it in errors, e.g. `docker-registry`. */
  name: string;
  /** Whether its process has exited: then it never will answer. */
  exited(): boolean;
  /** What it logged, for the error. */
  output(): string;
  /** Default 30 s. */
  timeoutMs?: number;
}

/** Waits until `GET <url>/v2/` answers 200: a registry that has started, or a proxy in front of one. */
export async function waitForRegistry(url: string, server: StartingServer): Promise<void> {
  const timeoutMs = server.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.exited()) throw new Error(`${server.name} exited during start-up:\n${server.output()}`);
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`${server.name} at ${url} not ready after ${timeoutMs} ms:\n${server.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
