import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { pino } from 'pino';
import { apiContext } from '../context.ts';
import { usageError } from '../errors.ts';
import { logLevelOption } from '../local-config.ts';
import { time, type Column } from '../output.ts';
import { positiveInteger } from '../parse.ts';

interface BuilderFlags {
  gateway?: string;
  name?: string;
  concurrency: number;
  executor: 'buildah' | 'docker';
  dockerHost?: string;
  isolation?: string;
  storageDriver?: string;
  root?: string;
  runroot?: string;
  signaturePolicy?: string;
  workDir?: string;
  tlsVerify?: boolean;
  pullMirror?: Array<{ registry: string; mirror: string }>;
  logLevel?: string;
}

/** `--pull-mirror docker.io=registry.example.com/dockerhub`, repeatable. */
function pullMirror(
  value: string,
  previous: Array<{ registry: string; mirror: string }> | undefined,
): Array<{ registry: string; mirror: string }> {
  const match = /^([^=\s]+)=([^=\s]+)$/.exec(value);
  if (!match)
    throw new InvalidArgumentError('expected REGISTRY=MIRROR, e.g. docker.io=registry.example.com/dockerhub');
  return [...(previous ?? []), { registry: match[1]!, mirror: match[2]! }];
}

/** A build a builder holds, as GET /builders answers. */
export interface BuilderBuildResource {
  id: string;
  repository: string;
  phase: 'cloning' | 'building' | 'pushing';
  phaseSince: string;
  startedAt: string | null;
  claimExpiresAt: string | null;
  logUrl: string;
}

/** A builder, as GET /builders answers: live, or gone but still holding builds. */
export interface BuilderResource {
  name: string;
  state: 'live' | 'gone';
  executor: string | null;
  concurrency: number | null;
  host: string | null;
  pid: number | null;
  version: string | null;
  startedAt: string | null;
  heartbeatAt: string | null;
  builds: BuilderBuildResource[];
}

const builderColumns: ReadonlyArray<Column<BuilderResource>> = [
  { header: 'name', value: (builder) => builder.name },
  { header: 'state', value: (builder) => builder.state },
  { header: 'executor', value: (builder) => builder.executor },
  {
    header: 'builds',
    value: (builder) =>
      builder.concurrency === null
        ? builder.builds.length
        : `${builder.builds.length}/${builder.concurrency}`,
  },
  { header: 'host', value: (builder) => builder.host },
  { header: 'version', value: (builder) => builder.version },
  { header: 'started', value: (builder) => time(builder.startedAt) },
  { header: 'heartbeat', value: (builder) => time(builder.heartbeatAt) },
];

type HeldBuildRow = BuilderBuildResource & { builder: string };

const heldBuildColumns: ReadonlyArray<Column<HeldBuildRow>> = [
  { header: 'builder', value: (build) => build.builder },
  { header: 'build', value: (build) => build.id },
  { header: 'repository', value: (build) => build.repository },
  { header: 'phase', value: (build) => build.phase },
  { header: 'since', value: (build) => time(build.phaseSince) },
  { header: 'claim expires', value: (build) => time(build.claimExpiresAt) },
];

/** `slipway builder list`: the builders, then the builds they hold. */
function registerBuilderList(builder: Command): void {
  builder
    .command('list')
    .description(
      'the builders taking builds and what each is doing, and those gone that still hold builds (superusers)',
    )
    .action(async (_flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { builders } = await api.get<{ builders: BuilderResource[] }>('/builders');
      const held = builders.flatMap((builder) =>
        builder.builds.map((build) => ({ ...build, builder: builder.name })),
      );
      out.compose(builders, () => {
        out.list(builders, builderColumns, 'no builders are taking builds');
        if (held.length === 0) return;
        out.line('');
        out.list(held, heldBuildColumns, '');
      });
      for (const gone of builders.filter((builder) => builder.state === 'gone')) {
        out.note(
          `${gone.name} announces itself no more: its builds end once their claim expires, when the build sweeper finds them`,
        );
      }
    });
}

export function registerBuilder(program: Command): void {
  const builder = program
    .command('builder')
    .description(
      'run builds off the cluster: take build jobs from Redis, clone, build with buildah (or a Docker/Podman engine) and push to the gateway',
    )
    // Not a required option: commander would ask for it of `builder list` too.
    .option('--gateway <url>', "the gateway's URL (env SLIPWAY_GATEWAY_URL)", process.env.SLIPWAY_GATEWAY_URL)
    .option(
      '--name <name>',
      'this builder’s name, unique per installation (default: host name and a random suffix)',
    )
    .option('--concurrency <n>', 'builds at once', positiveInteger, 1)
    .addOption(
      new Option('--executor <executor>', 'what builds: buildah, or a Docker/Podman engine through its API')
        .choices(['buildah', 'docker'])
        .default('buildah'),
    )
    .option('--docker-host <url>', 'the engine with --executor docker, e.g. unix:///run/podman/podman.sock')
    .option(
      '--isolation <isolation>',
      'buildah --isolation (oci, chroot, rootless), or the engine build isolation',
    )
    .option('--storage-driver <driver>', 'buildah --storage-driver, e.g. overlay or vfs')
    .option('--root <dir>', 'buildah --root: images and the layer cache')
    .option('--runroot <dir>', 'buildah --runroot: state while it runs')
    .option('--signature-policy <file>', "buildah --signature-policy, when not the machine's policy.json")
    .option('--work-dir <dir>', 'where sources are checked out (default: the temporary directory)')
    .option(
      '--tls-verify',
      "verify the registry's TLS certificate (default: when the gateway's public URL is https)",
    )
    .option('--no-tls-verify', 'talk to the registry without TLS verification, or over plain HTTP')
    .option(
      '--pull-mirror <registry=mirror>',
      'pull FROM images of REGISTRY through MIRROR, e.g. docker.io=registry.example.com/dockerhub (repeatable)',
      pullMirror,
    )
    .addOption(logLevelOption())
    .addHelpText(
      'after',
      '\nThe builder secret comes from SLIPWAY_BUILDER_SECRET (builds.builderSecret of the gateway), Redis from REDIS_URL.\n' +
        'On SIGTERM the builder takes no more builds; those running stop and end internal_error, to be started again.',
    )
    .action(async (flags: BuilderFlags) => {
      if (!flags.gateway) throw usageError("required option '--gateway <url>' not specified");
      const secret = process.env.SLIPWAY_BUILDER_SECRET;
      if (!secret) throw usageError('set SLIPWAY_BUILDER_SECRET to the gateway’s builds.builderSecret');
      if (flags.dockerHost && flags.executor !== 'docker')
        throw usageError('--docker-host goes with --executor docker');
      const logger = pino({ level: flags.logLevel ?? 'info' });
      // Loaded here, not at start, so the commands that only call the API start fast.
      const { startBuilder } = await import('../../builder/builder-process.ts');
      const builder = await startBuilder({
        gateway: flags.gateway,
        secret,
        redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        name: flags.name ?? `${hostname()}-${randomBytes(3).toString('hex')}`,
        concurrency: flags.concurrency,
        executor:
          flags.executor === 'docker'
            ? {
                kind: 'docker',
                ...(flags.dockerHost && { dockerHost: flags.dockerHost }),
                ...(flags.isolation && { isolation: flags.isolation }),
              }
            : {
                kind: 'buildah',
                ...(flags.isolation && { isolation: flags.isolation }),
                ...(flags.storageDriver && { storageDriver: flags.storageDriver }),
                ...(flags.root && { root: flags.root }),
                ...(flags.runroot && { runroot: flags.runroot }),
                ...(flags.signaturePolicy && { signaturePolicy: flags.signaturePolicy }),
              },
        ...(flags.workDir && { workDir: flags.workDir }),
        ...(flags.tlsVerify !== undefined && { tlsVerify: flags.tlsVerify }),
        pullMirrors: flags.pullMirror ?? [],
        logger,
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal, running: builder.running }, 'shutting down: stopping the builds running here');
        builder.stop().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
  registerBuilderList(builder);
}
