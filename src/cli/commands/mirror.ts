import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { path } from '../client.ts';
import { apiContext } from '../context.ts';
import { CliError, usageError } from '../errors.ts';
import { time, type Column } from '../output.ts';
import { isoTime, positiveInteger, splitName } from '../parse.ts';
import { secretFrom, secretOptions, type SecretFlags } from '../prompt.ts';
import type {
  MirrorImportResource,
  MirrorResource,
  MirrorRunDetailsResource,
  MirrorRunResource,
} from '../resources.ts';

/** `/mirrors/{namespace}/{name}`, the name's slashes encoded as the API's repository paths are. */
function mirrorPath(name: string): string {
  const [namespace, rest] = splitName(name, '/', 'is not a repository name: repositories are namespace/name');
  return path`/mirrors/${namespace}/${rest}`;
}

const dockerHubHosts = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * `--from`: a registry and a repository there, `quay.io/coreos/etcd` or with a scheme
 * (`http://registry.local:5000/team/app`); Docker Hub's official images may leave out `library/`.
 */
export function parseUpstream(value: string): { url: string; repository: string } {
  const withScheme = /^https?:\/\//.test(value) ? value : `https://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidArgumentError('expected REGISTRY/REPOSITORY, e.g. docker.io/library/nginx');
  }
  const repository = url.pathname.replace(/^\/+|\/+$/g, '');
  if (repository === '' || url.search || url.hash) {
    throw new InvalidArgumentError('expected REGISTRY/REPOSITORY, e.g. docker.io/library/nginx');
  }
  if (dockerHubHosts.has(url.hostname)) {
    return {
      url: 'https://registry-1.docker.io',
      repository: repository.includes('/') ? repository : `library/${repository}`,
    };
  }
  return { url: url.origin, repository };
}

/** 21600 as "6h", 5400 as "90m". */
export function durationText(seconds: number): string {
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

const scheduleText = (mirror: MirrorResource): string =>
  mirror.schedule.cron !== undefined
    ? `cron "${mirror.schedule.cron}" (UTC)`
    : `every ${durationText(mirror.schedule.interval ?? 0)}`;

const upstreamText = (mirror: MirrorResource): string =>
  `${new URL(mirror.upstream.url).host}/${mirror.upstream.repository}`;

/** The filter as one line: what is left out when empty. */
function filterText(filter: MirrorResource['filter']): string {
  const parts = [
    filter.include.length > 0 ? `include ${filter.include.join(',')}` : '',
    filter.exclude.length > 0 ? `exclude ${filter.exclude.join(',')}` : '',
    ...filter.regex.map((regex) => `regex ${regex}`),
    filter.semver !== undefined ? `semver "${filter.semver}"` : '',
    filter.includePrerelease ? 'with pre-releases' : '',
    filter.newest !== undefined ? `newest ${filter.newest}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : 'every tag';
}

const mirrorColumns: ReadonlyArray<Column<MirrorResource>> = [
  { header: 'repository', value: (mirror) => mirror.repository },
  { header: 'upstream', value: upstreamText },
  { header: 'schedule', value: scheduleText },
  { header: 'robot', value: (mirror) => mirror.robot },
  { header: 'enabled', value: (mirror) => mirror.enabled },
  { header: 'state', value: (mirror) => mirror.state },
  { header: 'next run', value: (mirror) => time(mirror.nextRunAt) },
];

const mirrorFields: ReadonlyArray<Column<MirrorResource>> = [
  { header: 'repository', value: (mirror) => mirror.repository },
  { header: 'upstream', value: upstreamText },
  { header: 'username', value: (mirror) => mirror.upstream.username },
  { header: 'password', value: (mirror) => (mirror.upstream.hasPassword ? 'set (never shown)' : null) },
  { header: 'tls verify', value: (mirror) => mirror.upstream.tlsVerify },
  { header: 'tags', value: (mirror) => filterText(mirror.filter) },
  {
    header: 'platforms',
    value: (mirror) => (mirror.platforms === 'all' ? 'all' : mirror.platforms.join(', ')),
  },
  { header: 'schedule', value: scheduleText },
  { header: 'starts', value: (mirror) => time(mirror.startAt) },
  { header: 'enabled', value: (mirror) => mirror.enabled },
  {
    header: 'delete missing',
    value: (mirror) => (mirror.deleteMissing ? `yes, at most ${mirror.maxDeletions} tags a run` : false),
  },
  { header: 'robot', value: (mirror) => mirror.robot },
  { header: 'concurrency', value: (mirror) => mirror.concurrency },
  {
    header: 'bandwidth limit',
    value: (mirror) => (mirror.bandwidthLimit === null ? 'none' : `${mirror.bandwidthLimit} bytes/s`),
  },
  { header: 'state', value: (mirror) => mirror.state },
  { header: 'last run', value: (mirror) => time(mirror.lastRunAt) },
  { header: 'next run', value: (mirror) => time(mirror.nextRunAt) },
  { header: 'created by', value: (mirror) => mirror.createdBy },
  { header: 'created', value: (mirror) => time(mirror.createdAt) },
];

const runColumns: ReadonlyArray<Column<MirrorRunResource>> = [
  { header: 'run', value: (run) => run.id },
  { header: 'trigger', value: (run) => (run.dryRun ? `${run.trigger} (dry run)` : run.trigger) },
  { header: 'state', value: (run) => run.state },
  { header: 'started', value: (run) => time(run.startedAt) },
  { header: 'finished', value: (run) => time(run.finishedAt) },
  { header: 'tags', value: (run) => totalsText(run) },
  { header: 'copied', value: (run) => bytesText(run.bytesCopied) },
  { header: 'error', value: (run) => run.error },
];

const finished = (run: MirrorRunResource) => run.state !== 'queued' && run.state !== 'syncing';

/** "3 copied, 5 unchanged, 1 failed": the outcomes that happened. */
function totalsText(run: MirrorRunResource): string {
  const parts = Object.entries(run.totals)
    .filter(([, count]) => count > 0)
    .map(([outcome, count]) => `${count} ${outcome}`);
  return parts.length > 0 ? parts.join(', ') : 'none yet';
}

function bytesText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** One tag's result as a line: outcome, tag, then digest, size or reason. */
function tagLine(tag: MirrorRunDetailsResource['tags'][number]): string {
  const details = [
    tag.digest ? tag.digest.slice(0, 19) : '',
    tag.bytes ? bytesText(tag.bytes) : '',
    tag.reason ?? '',
  ].filter(Boolean);
  return `${tag.outcome.padEnd(12)} ${tag.tag}${details.length > 0 ? `  ${details.join('  ')}` : ''}`;
}

function runSummary(run: MirrorRunResource): string {
  const seconds =
    run.finishedAt === null
      ? ''
      : ` in ${Math.round((Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 100) / 10}s`;
  const error = run.error ? `: ${run.error}` : '';
  return `run ${run.id} of ${run.repository} ${run.state}${error} (${totalsText(run)}; ${bytesText(run.bytesCopied)} copied${seconds})`;
}

/**
 * Follows a run until it ends, printing each tag's result as the run records it; the run as it ended.
 * A run that failed or was cancelled makes the command exit 1.
 */
async function followRun(
  api: Awaited<ReturnType<typeof apiContext>>['api'],
  out: Awaited<ReturnType<typeof apiContext>>['out'],
  repository: string,
  runId: number,
  pollMs: number,
): Promise<MirrorRunDetailsResource> {
  let shown = 0;
  let state = '';
  for (;;) {
    const run = await api.get<MirrorRunDetailsResource>(`${mirrorPath(repository)}/runs/${runId}`);
    if (run.state !== state && !finished(run)) out.note(`run ${run.id} is ${run.state}`);
    state = run.state;
    for (const tag of run.tags.slice(shown)) out.line(tagLine(tag));
    shown = run.tags.length;
    if (finished(run)) return run;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Ends the command as the run ended: exit status 1 when it did not succeed. */
function endWith(out: Awaited<ReturnType<typeof apiContext>>['out'], run: MirrorRunDetailsResource): void {
  out.compose(run, () => out.line(runSummary(run)));
  if (run.state !== 'success') {
    throw new CliError(
      'SLW_ERR_MIRROR_SYNC',
      `the sync ${run.state === 'cancelled' ? 'was cancelled' : 'failed'}`,
      1,
    );
  }
}

interface CreateFlags extends SecretFlags {
  from: { url: string; repository: string };
  username?: string;
  tlsVerify: boolean;
  include?: string[];
  exclude?: string[];
  regex?: string[];
  semver?: string;
  includePrerelease?: boolean;
  newest?: number;
  platforms?: string;
  interval?: string;
  cron?: string;
  start?: string;
  deleteMissing?: boolean;
  maxDeletions?: number;
  robot: string;
  concurrency?: number;
  bandwidthLimit?: string;
  disabled?: boolean;
}

const repeatable = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

const nonNegativeInteger = (value: string): number => {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) throw new InvalidArgumentError('expected a whole number');
  return number;
};

/** `--platforms linux/amd64,linux/arm64` or `all`. */
const platformsOf = (text: string): 'all' | string[] =>
  text.trim() === 'all'
    ? 'all'
    : text
        .split(',')
        .map((platform) => platform.trim())
        .filter(Boolean);

async function settingsOf(flags: CreateFlags): Promise<Record<string, unknown>> {
  if (flags.maxDeletions !== undefined && !flags.deleteMissing) {
    throw usageError('--max-deletions applies with --delete-missing');
  }
  const password =
    flags.username === undefined
      ? undefined
      : await secretFrom(flags, `Password of ${flags.username} at ${new URL(flags.from.url).host}: `);
  if (flags.username === undefined && (flags.password !== undefined || flags.passwordStdin)) {
    throw usageError('a password goes with --username');
  }
  const filter = {
    ...(flags.include ? { include: flags.include } : {}),
    ...(flags.exclude ? { exclude: flags.exclude } : {}),
    ...(flags.regex ? { regex: flags.regex } : {}),
    ...(flags.semver !== undefined ? { semver: flags.semver } : {}),
    ...(flags.includePrerelease ? { includePrerelease: true } : {}),
    ...(flags.newest !== undefined ? { newest: flags.newest } : {}),
  };
  return {
    upstream: {
      ...flags.from,
      tlsVerify: flags.tlsVerify,
      ...(flags.username !== undefined ? { username: flags.username, password } : {}),
    },
    filter,
    ...(flags.platforms !== undefined ? { platforms: platformsOf(flags.platforms) } : {}),
    ...(flags.interval !== undefined ? { schedule: { interval: flags.interval } } : {}),
    ...(flags.cron !== undefined ? { schedule: { cron: flags.cron } } : {}),
    ...(flags.start !== undefined ? { startAt: flags.start } : {}),
    ...(flags.deleteMissing ? { deleteMissing: true } : {}),
    ...(flags.maxDeletions !== undefined ? { maxDeletions: flags.maxDeletions } : {}),
    robot: flags.robot,
    ...(flags.concurrency !== undefined ? { concurrency: flags.concurrency } : {}),
    ...(flags.bandwidthLimit !== undefined ? { bandwidthLimit: flags.bandwidthLimit } : {}),
    ...(flags.disabled ? { enabled: false } : {}),
  };
}

export function registerMirror(program: Command): void {
  const mirror = program
    .command('mirror')
    .description('mirror repositories of other registries into repositories here, on a schedule');

  secretOptions(
    mirror
      .command('create')
      .description(
        'mirror an upstream repository into a repository of a namespace you administer (created when missing)',
      )
      .argument('<repository>', 'the repository here, e.g. acme/nginx')
      .requiredOption(
        '--from <registry/repository>',
        'what to mirror, e.g. docker.io/library/nginx or https://quay.io/coreos/etcd',
        parseUpstream,
      )
      .requiredOption('--robot <robot>', 'the robot of the namespace it writes as, e.g. acme+mirror')
      .option(
        '--username <name>',
        'the upstream user; the password is asked for, or read with --password-stdin',
      )
      .option('--no-tls-verify', 'accept an upstream whose TLS certificate does not verify')
      .option('--include <globs>', 'tag globs to copy, e.g. "1.27.*,stable" (repeat for more)', repeatable)
      .option('--exclude <globs>', 'tag globs to leave out; they win over --include (repeat)', repeatable)
      .option('--regex <regex>', 'copy tags this regular expression matches (repeat for more)', repeatable)
      .option('--semver <range>', 'copy versions in this range, e.g. ">=1.24 <2"')
      .option(
        '--include-prerelease',
        'let pre-releases (1.28.0-rc.1, 1.27-alpine) into --semver and --newest',
      )
      .option('--newest <n>', 'of the selected versions, copy the n highest only', positiveInteger)
      .option('--platforms <platforms>', 'linux/amd64,linux/arm64, or all (the default)')
      .addOption(
        new Option('--interval <duration>', 'sync every so long, e.g. 6h (the default) or 30m').conflicts(
          'cron',
        ),
      )
      .addOption(
        new Option('--cron <expression>', 'sync at these times (UTC), e.g. "0 3 * * *"').conflicts(
          'interval',
        ),
      )
      .option('--start <time>', 'no sync before this time, e.g. 2025-07-01T03:00:00Z', isoTime)
      .option('--delete-missing', 'delete tags here that are gone upstream or no longer selected')
      .option(
        '--max-deletions <n>',
        'with --delete-missing: a run that would delete more deletes none (default 20)',
        nonNegativeInteger,
      )
      .option('--concurrency <n>', 'tags copied at the same time (default 4)', positiveInteger)
      .option('--bandwidth-limit <bytes>', 'bytes per second at most, e.g. 10MiB')
      .option('--disabled', 'create it without syncing until it is enabled'),
    'the upstream password',
  ).action(async (repository: string, flags: CreateFlags, command: Command) => {
    splitName(repository, '/', 'is not a repository name: repositories are namespace/name');
    const settings = await settingsOf(flags);
    const { api, out } = await apiContext(command);
    const created = await api.post<MirrorResource>('/mirrors', { repository, ...settings });
    out.compose(created, () => {
      out.line(`created mirror ${created.repository} of ${upstreamText(created)}`);
      out.record(created, mirrorFields);
    });
  });

  mirror
    .command('list')
    .description('list the mirrors of the namespaces you administer')
    .option('--namespace <namespace>', 'only the mirrors of this namespace')
    .action(async (flags: { namespace?: string }, command: Command) => {
      const { api, out } = await apiContext(command);
      const { mirrors } = await api.get<{ mirrors: MirrorResource[] }>('/mirrors', {
        namespace: flags.namespace,
      });
      out.list(mirrors, mirrorColumns, flags.namespace ? `${flags.namespace} has no mirrors` : 'no mirrors');
    });

  mirror
    .command('show')
    .description("show a mirror's settings and status (never its password)")
    .argument('<repository>', 'the mirrored repository, e.g. acme/nginx')
    .action(async (repository: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      out.record(await api.get<MirrorResource>(mirrorPath(repository)), mirrorFields);
    });

  for (const [name, enabled, description] of [
    ['enable', true, 'sync a mirror on its schedule again'],
    ['disable', false, 'stop syncing a mirror until it is enabled again (it stays read-only)'],
  ] as const) {
    mirror
      .command(name)
      .description(description)
      .argument('<repository>', 'the mirrored repository')
      .action(async (repository: string, _flags: unknown, command: Command) => {
        const { api, out } = await apiContext(command);
        const changed = await api.patch<MirrorResource>(mirrorPath(repository), { enabled });
        out.done(`mirror ${changed.repository} is ${changed.enabled ? 'enabled' : 'disabled'}`, changed);
      });
  }

  mirror
    .command('sync')
    .description('sync a mirror now (a worker runs it); with --wait, follow it and print each tag')
    .argument('<repository>', 'the mirrored repository')
    .option('--wait', 'follow the run until it ends; exit 1 if it failed or was cancelled')
    .action(async (repository: string, flags: { wait?: boolean }, command: Command) => {
      const { api, out } = await apiContext(command);
      const run = await api.post<MirrorRunResource>(`${mirrorPath(repository)}/sync`, {});
      if (!flags.wait) {
        out.done(
          `run ${run.id} of ${run.repository} is ${run.state}; follow it with slipway mirror runs ${repository}`,
          run,
        );
        return;
      }
      out.note(`run ${run.id} of ${run.repository} is ${run.state}`);
      endWith(out, await followRun(api, out, repository, run.id, 500));
    });

  mirror
    .command('dry-run')
    .description('show which tags a sync would copy, skip and delete, changing nothing')
    .argument('<repository>', 'the mirrored repository')
    .action(async (repository: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const run = await api.post<MirrorRunResource>(`${mirrorPath(repository)}/sync`, { dryRun: true });
      out.note(`dry run ${run.id} of ${run.repository} is ${run.state}`);
      endWith(out, await followRun(api, out, repository, run.id, 500));
    });

  mirror
    .command('cancel')
    .description('cancel the sync under way')
    .argument('<repository>', 'the mirrored repository')
    .action(async (repository: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const run = await api.post<MirrorRunResource>(`${mirrorPath(repository)}/cancel`, {});
      out.done(
        run.state === 'cancelled'
          ? `run ${run.id} is cancelled`
          : `run ${run.id} will stop within a second or so`,
        run,
      );
    });

  mirror
    .command('runs')
    .description("a mirror's latest runs, newest first; with --run, what one run did with each tag")
    .argument('<repository>', 'the mirrored repository')
    .option('--limit <n>', 'how many runs (default 20)', positiveInteger)
    .option('--run <id>', 'show this run, tag by tag', positiveInteger)
    .action(async (repository: string, flags: { limit?: number; run?: number }, command: Command) => {
      const { api, out } = await apiContext(command);
      if (flags.run !== undefined) {
        const run = await api.get<MirrorRunDetailsResource>(`${mirrorPath(repository)}/runs/${flags.run}`);
        out.compose(run, () => {
          for (const tag of run.tags) out.line(tagLine(tag));
          out.line(runSummary(run));
        });
        return;
      }
      const { runs } = await api.get<{ runs: MirrorRunResource[] }>(`${mirrorPath(repository)}/runs`, {
        limit: flags.limit,
      });
      out.list(runs, runColumns, `${repository} has not synced yet`);
    });

  mirror
    .command('delete')
    .description('stop mirroring: the repository keeps its tags and becomes writable again')
    .argument('<repository>', 'the mirrored repository')
    .action(async (repository: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(mirrorPath(repository));
      out.done(`${repository} is no longer a mirror`, { deleted: repository });
    });

  mirror
    .command('import')
    .description(
      'turn a skopeo sync YAML file into mirrors NAMESPACE/<upstream repository>: all of them, or none when any exists',
    )
    .argument('<file>', 'the YAML file of skopeo sync --src yaml')
    .requiredOption('--into <namespace>', 'the namespace the mirrors go into')
    .requiredOption('--robot <robot>', 'the robot of the namespace every mirror writes as')
    .option('--platforms <platforms>', 'linux/amd64,linux/arm64, or all (the default)')
    .addOption(new Option('--interval <duration>', 'sync every so long (default 6h)').conflicts('cron'))
    .addOption(new Option('--cron <expression>', 'sync at these times (UTC)').conflicts('interval'))
    .action(
      async (
        file: string,
        flags: { into: string; robot: string; platforms?: string; interval?: string; cron?: string },
        command: Command,
      ) => {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (error) {
          throw new CliError('SLW_ERR_FILE', `cannot read ${file}: ${(error as Error).message}`, 2);
        }
        const { api, out } = await apiContext(command);
        const imported = await api.post<MirrorImportResource>('/mirrors/import', {
          namespace: flags.into,
          file: text,
          robot: flags.robot,
          ...(flags.platforms !== undefined ? { platforms: platformsOf(flags.platforms) } : {}),
          ...(flags.interval !== undefined ? { schedule: { interval: flags.interval } } : {}),
          ...(flags.cron !== undefined ? { schedule: { cron: flags.cron } } : {}),
        });
        out.compose(imported, () => {
          out.list(imported.mirrors, mirrorColumns, `${file} has no images to mirror`);
        });
        for (const warning of imported.warnings) out.note(`warning: ${warning.path}: ${warning.message}`);
      },
    );
}
