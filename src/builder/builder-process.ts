import { openRedis, type RedisConnection } from '../db/redis.ts';
import type { EventsLogger } from '../events/logger.ts';
import { SlipwayError } from '../errors.ts';
import { BuilderProtocolError, HttpBuildControl } from './builder-http-control.ts';
import { BuilderWorker } from './builder-worker.ts';
import { BuildahExecutor, type BuildahExecutorOptions } from './executors/buildah.ts';
import { DockerApiExecutor } from './executors/docker-api.ts';
import type { Executor, PullMirror } from './executors/index.ts';

export type ExecutorSettings =
  | ({ kind: 'buildah' } & Pick<
      BuildahExecutorOptions,
      'isolation' | 'storageDriver' | 'root' | 'runroot' | 'signaturePolicy'
    >)
  | { kind: 'docker'; dockerHost?: string; isolation?: string };

export interface BuilderProcessOptions {
  gateway: string;
  secret: string;
  redisUrl: string;
  name: string;
  concurrency: number;
  executor: ExecutorSettings;
  workDir?: string;
  tlsVerify?: boolean;
  pullMirrors: PullMirror[];
  logger: EventsLogger;
}

export interface RunningBuilder {
  running: string[];
  stop(): Promise<void>;
}

/** `slipway builder`: a BuilderWorker talking to a gateway over HTTP, with Redis shared with it. */
export async function startBuilder(options: BuilderProcessOptions): Promise<RunningBuilder> {
  const control = new HttpBuildControl({ gateway: options.gateway, secret: options.secret });
  let redis: RedisConnection | undefined;
  try {
    const hello = await control.hello().catch((error: unknown) => {
      if (error instanceof BuilderProtocolError) throw new SlipwayError('SLW_ERR_BUILDER', error.message);
      throw new SlipwayError(
        'SLW_ERR_BUILDER',
        `cannot reach the gateway at ${options.gateway}: ${(error as Error).message || String(error)}`,
      );
    });
    redis = await openRedis({ url: options.redisUrl, dataDir: '.' });
    const worker = new BuilderWorker({
      name: options.name,
      control,
      redis,
      executor: createExecutor(options.executor),
      executorName: options.executor.kind,
      concurrency: options.concurrency,
      logger: options.logger,
      ...(options.tlsVerify !== undefined && { tlsVerify: options.tlsVerify }),
      pullMirrors: options.pullMirrors,
      ...(options.workDir && { workDir: options.workDir }),
    });
    await worker.start();
    options.logger.info(
      {
        name: options.name,
        gateway: options.gateway,
        registry: hello.registry,
        redis: redis.location,
        executor: options.executor.kind,
        concurrency: options.concurrency,
      },
      'slipway builder is taking builds',
    );
    const connection = redis;
    return {
      get running() {
        return worker.running;
      },
      async stop() {
        await worker.stop();
        await connection.close();
        await control.close();
      },
    };
  } catch (error) {
    await redis?.close().catch(() => {});
    await control.close().catch(() => {});
    throw error;
  }
}

function createExecutor(settings: ExecutorSettings): Executor {
  if (settings.kind === 'docker') {
    return new DockerApiExecutor({
      ...(settings.dockerHost && { docker: dockerOptions(settings.dockerHost) }),
      ...(settings.isolation && { isolation: settings.isolation }),
    });
  }
  const { kind: _kind, ...buildah } = settings;
  return new BuildahExecutor(buildah);
}

/** `unix:///run/podman/podman.sock` or `tcp://host:2375` as dockerode takes it. */
function dockerOptions(
  host: string,
): { socketPath: string } | { host: string; port: number; protocol: 'http' | 'https' } {
  const url = new URL(host);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  return {
    host: url.hostname,
    port: Number(url.port || 2375),
    protocol: url.protocol === 'https:' ? 'https' : 'http',
  };
}
