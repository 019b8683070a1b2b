import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '../errors.ts';

/** Where the queues, live build logs and cross-replica signals live. */
export interface RedisConnection {
  /** Where it is, for logs: a redis:// URL or the unix socket path. */
  readonly location: string;
  /** How it was found: REDIS_URL, the default local server, or one this process started. */
  readonly origin: 'configured' | 'local' | 'embedded';
  /** A new client on the same server; BullMQ wants its own for blocking commands. */
  connect(): Redis;
  close(): Promise<void>;
}

export interface RedisSetup {
  /** REDIS_URL: used as given; unreachable is an error, not a reason to look elsewhere. */
  url?: string | undefined;
  /** Tried when no URL is configured. */
  defaultUrl?: string;
  /** Where an embedded redis-server keeps its socket and append-only file. */
  dataDir: string;
  /** The redis-server executable to start when nothing answers. */
  serverCommand?: string;
}

/** BullMQ needs commands to wait for a reconnect rather than fail after a few retries. */
const clientOptions: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true };

/**
 * REDIS_URL, else a Redis on 127.0.0.1:6379, else a redis-server started here on a unix socket in the
 * data directory (reused if one is still running there from an earlier start), else a clear error.
 */
export async function openRedis(setup: RedisSetup): Promise<RedisConnection> {
  if (setup.url) {
    const url = setup.url;
    await ping({ ...parseRedisUrl(url) }, `REDIS_URL ${redactUrl(url)}`);
    return connection(redactUrl(url), 'configured', () => new Redis(url, clientOptions));
  }
  const defaultUrl = setup.defaultUrl ?? 'redis://127.0.0.1:6379';
  if (await answers(parseRedisUrl(defaultUrl))) {
    return connection(defaultUrl, 'local', () => new Redis(defaultUrl, clientOptions));
  }
  return startEmbeddedRedis(setup.dataDir, setup.serverCommand ?? 'redis-server');
}

function connection(
  location: string,
  origin: RedisConnection['origin'],
  create: () => Redis,
  stop?: () => Promise<void>,
): RedisConnection {
  const clients = new Set<Redis>();
  return {
    location,
    origin,
    connect() {
      const client = create();
      clients.add(client);
      client.once('end', () => clients.delete(client));
      return client;
    },
    async close() {
      await Promise.all([...clients].map((c) => c.quit().catch(() => c.disconnect())));
      await stop?.();
    },
  };
}

async function startEmbeddedRedis(dataDir: string, command: string): Promise<RedisConnection> {
  const dir = join(dataDir, 'redis');
  const socket = join(dir, 'redis.sock');
  if (Buffer.byteLength(socket) > 100) {
    throw new ConfigError(
      `the data directory's path is too long for Redis's unix socket (${socket}); set REDIS_URL or use a shorter data directory`,
    );
  }
  const create = () => new Redis({ ...clientOptions, path: socket });
  if (await answers({ path: socket })) return connection(socket, 'embedded', create);

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const child = spawn(
    command,
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--daemonize',
      'no',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<Error>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      resolve(
        error.code === 'ENOENT'
          ? new ConfigError(
              `Slipway needs Redis and none answers: set REDIS_URL, start one on 127.0.0.1:6379, or install redis-server (apt-get install redis-server) so Slipway starts its own`,
            )
          : error,
      ),
    );
    child.once('exit', (code) => resolve(new ConfigError(`redis-server exited with code ${code} at start`)));
  });
  const ready = await Promise.race([waitForSocket(socket), exited]);
  if (ready instanceof Error) throw ready;
  return connection(socket, 'embedded', create, () => stopChild(child));
}

async function waitForSocket(path: string): Promise<true | Error> {
  for (let i = 0; i < 100; i++) {
    if (await answers({ path })) return true;
    await sleep(50);
  }
  return new ConfigError(`redis-server started but did not answer on ${path} within 5 s`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function ping(options: RedisOptions, what: string): Promise<void> {
  const client = new Redis({
    ...options,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new ConfigError(`cannot reach Redis at ${what}: ${(error as Error).message}`);
  } finally {
    client.disconnect();
  }
}

async function answers(options: RedisOptions): Promise<boolean> {
  try {
    await ping({ ...options, connectTimeout: 1000 }, '');
    return true;
  } catch {
    return false;
  }
}

function parseRedisUrl(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `REDIS_URL ${redactUrl(url)} is not a URL; expected redis://[user:password@]host:port[/db]`,
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`REDIS_URL must start with redis:// or rediss://, not ${parsed.protocol}`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || 6379),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
