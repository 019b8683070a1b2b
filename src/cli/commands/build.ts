import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { path, type ApiClient } from '../client.ts';
import { apiContext } from '../context.ts';
import { CliError, usageError } from '../errors.ts';
import { time, type Column, type Output } from '../output.ts';
import { positiveInteger } from '../parse.ts';
import type { BuildLogEntryResource, BuildLogPageResource, BuildResource } from '../resources.ts';
import { readServerSentEvents } from '../server-sent-events.ts';
import { repositoryPath } from './repo.ts';

const buildPath = (id: string) => path`/builds/${id}`;

const repeatable = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function buildArg(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('expected NAME=VALUE');
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** main, v1.2 or a short commit: what the build is of, in a few characters. */
const sourceText = (build: BuildResource): string =>
  [build.ref?.replace(/^refs\/(heads|tags)\//, ''), build.commit?.slice(0, 7)].filter(Boolean).join(' @ ');

const durationText = (build: BuildResource): string | null => {
  if (!build.startedAt) return null;
  const end = build.finishedAt ? Date.parse(build.finishedAt) : Date.now();
  return `${Math.round((end - Date.parse(build.startedAt)) / 100) / 10}s`;
};

const buildColumns: ReadonlyArray<Column<BuildResource>> = [
  { header: 'id', value: (build) => build.id },
  { header: 'phase', value: (build) => build.phase },
  { header: 'source', value: sourceText },
  { header: 'trigger', value: (build) => build.triggerKind },
  { header: 'tags', value: (build) => build.tags.join(',') },
  { header: 'queued', value: (build) => time(build.queuedAt) },
  { header: 'took', value: durationText },
];

const buildFields: ReadonlyArray<Column<BuildResource>> = [
  { header: 'id', value: (build) => build.id },
  { header: 'repository', value: (build) => build.repository },
  {
    header: 'phase',
    value: (build) =>
      build.cancelRequested && !build.finishedAt ? `${build.phase} (cancelling)` : build.phase,
  },
  {
    header: 'trigger',
    value: (build) => (build.triggerId ? `${build.triggerKind} ${build.triggerId}` : build.triggerKind),
  },
  { header: 'clone url', value: (build) => build.cloneUrl },
  { header: 'ref', value: (build) => build.ref },
  { header: 'commit', value: (build) => build.commit },
  { header: 'dockerfile', value: (build) => `${build.dockerfile} (context ${build.context})` },
  { header: 'tags', value: (build) => build.tags.join(', ') },
  { header: 'digest', value: (build) => build.digest },
  { header: 'error', value: (build) => build.error },
  { header: 'requested by', value: (build) => build.requestedBy },
  { header: 'pull robot', value: (build) => build.pullRobot },
  { header: 'queued', value: (build) => time(build.queuedAt) },
  { header: 'started', value: (build) => time(build.startedAt) },
  { header: 'finished', value: (build) => time(build.finishedAt) },
  {
    header: 'phases',
    value: (build) =>
      Object.entries(build.phaseMs)
        .map(([phase, ms]) => `${phase} ${Math.round(ms / 100) / 10}s`)
        .join(', '),
  },
  { header: 'log', value: (build) => build.logUrl },
];

/** A log entry as people read it: output lines as they are, phases and the end marked. */
function entryText(entry: BuildLogEntryResource): string {
  switch (entry.type) {
    case 'line':
      return entry.text;
    case 'phase':
      return `==> ${entry.phase}`;
    case 'end':
      return `==> build ended: ${entry.phase}`;
    case 'truncated':
      return `==> ${entry.text}`;
  }
}

function printEntry(out: Output, entry: BuildLogEntryResource): void {
  if (out.json) process.stdout.write(`${JSON.stringify(entry)}\n`);
  else out.line(entryText(entry));
}

/** Prints the log so far, page by page; the entries read. */
async function printLog(api: ApiClient, out: Output, id: string): Promise<BuildLogEntryResource[]> {
  const entries: BuildLogEntryResource[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await api.get<BuildLogPageResource>(`${buildPath(id)}/logs`, { cursor });
    entries.push(...page.entries);
    if (!out.json) for (const entry of page.entries) printEntry(out, entry);
    cursor = page.cursor;
    if (page.ended || page.entries.length === 0) break;
  }
  if (out.json) process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
  return entries;
}

const reconnectAttempts = 5;

/**
 * Follows the log as the gateway streams it, until its end entry; a dropped connection is resumed after
 * the last entry seen. The phase the build ended in.
 */
async function followLog(api: ApiClient, out: Output, id: string): Promise<string> {
  let lastId: string | undefined;
  let failures = 0;
  for (;;) {
    let problem = 'the stream closed before the build ended';
    try {
      const response = await api.open(`${buildPath(id)}/logs`, {
        headers: lastId === undefined ? {} : { 'Last-Event-ID': lastId },
      });
      if (!response.body) throw new Error('the gateway answered without a body');
      for await (const event of readServerSentEvents(response.body)) {
        const entry = JSON.parse(event.data) as BuildLogEntryResource;
        lastId = event.id ?? lastId;
        failures = 0;
        printEntry(out, entry);
        if (entry.type === 'end') return entry.phase;
      }
    } catch (error) {
      if (error instanceof CliError) throw error;
      problem = (error as Error).message;
    }
    if (++failures > reconnectAttempts) {
      throw new CliError('SLW_ERR_UNREACHABLE', `lost the log stream of build ${id}: ${problem}`, 1);
    }
    await sleep(1000);
  }
}

interface StartFlags {
  repo: string;
  trigger?: string;
  cloneUrl?: string;
  ref?: string;
  commit?: string;
  tag?: string[];
  dockerfile?: string;
  context?: string;
  buildArg?: Record<string, string>;
  pullRobot?: string;
}

export function registerBuild(program: Command): void {
  const build = program
    .command('build')
    .description('image builds: start, list, cancel, and read their logs');

  build
    .command('list')
    .description("a repository's builds, newest first")
    .requiredOption('--repo <repository>', 'a repository you can read, e.g. acme/app')
    .option('--limit <n>', 'how many builds (default 20)', positiveInteger)
    .action(async (flags: { repo: string; limit?: number }, command: Command) => {
      const { api, out } = await apiContext(command);
      const { builds } = await api.get<{ builds: BuildResource[] }>(`${repositoryPath(flags.repo)}/builds`, {
        limit: flags.limit ?? 20,
      });
      out.list(builds, buildColumns, `${flags.repo} has no builds`);
    });

  build
    .command('show')
    .description('show a build: its phase, source, tags and outcome')
    .argument('<id>', 'the build id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      out.record(await api.get<BuildResource>(buildPath(id)), buildFields);
    });

  build
    .command('start')
    .description("start a build: with a trigger's settings, or of a clone URL, at a ref or commit")
    .requiredOption('--repo <repository>', 'the repository it pushes to (write permission)')
    .addOption(
      new Option('--trigger <id>', "build with this trigger's settings and credentials").conflicts(
        'cloneUrl',
      ),
    )
    .addOption(new Option('--clone-url <url>', 'clone this repository').conflicts('trigger'))
    .option('--ref <ref>', 'a branch or tag: main, tags/v1.2')
    .option('--commit <sha>', 'the full commit SHA to build')
    .option('--tag <tag>', 'a tag to push (repeat; default the branch, tag or short commit)', repeatable)
    .option('--dockerfile <path>', 'the Dockerfile in the repository')
    .option('--context <path>', 'the build context in the repository')
    .option('--build-arg <name=value>', 'a build argument (repeat)', buildArg)
    .option(
      '--pull-robot <namespace+name>',
      "also pull what this robot may read (default: the trigger's pull robot; none for none)",
    )
    .action(async (flags: StartFlags, command: Command) => {
      if (flags.trigger === undefined && flags.cloneUrl === undefined) {
        throw usageError('say what to build: --trigger ID or --clone-url URL');
      }
      if (flags.ref === undefined && flags.commit === undefined) {
        throw usageError('say which version: --ref REF or --commit SHA');
      }
      const { api, out } = await apiContext(command);
      const started = await api.post<BuildResource>(`${repositoryPath(flags.repo)}/builds`, {
        ...(flags.trigger !== undefined ? { triggerId: flags.trigger } : {}),
        ...(flags.cloneUrl !== undefined ? { cloneUrl: flags.cloneUrl } : {}),
        ...(flags.ref !== undefined ? { ref: flags.ref } : {}),
        ...(flags.commit !== undefined ? { commit: flags.commit } : {}),
        ...(flags.tag ? { tags: flags.tag } : {}),
        ...(flags.dockerfile !== undefined ? { dockerfile: flags.dockerfile } : {}),
        ...(flags.context !== undefined ? { context: flags.context } : {}),
        ...(flags.buildArg ? { buildArgs: flags.buildArg } : {}),
        ...(flags.pullRobot !== undefined
          ? { pullRobot: flags.pullRobot === 'none' ? null : flags.pullRobot }
          : {}),
      });
      out.done(
        `build ${started.id} of ${started.repository} is ${started.phase}; follow it with slipway build logs ${started.id} -f`,
        started,
      );
    });

  build
    .command('cancel')
    .description('cancel a build: a waiting one at once, a running one within a heartbeat')
    .argument('<id>', 'the build id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const cancelled = await api.post<BuildResource>(`${buildPath(id)}/cancel`, {});
      out.done(
        cancelled.phase === 'cancelled'
          ? `build ${id} is cancelled`
          : `build ${id} will stop at its next heartbeat`,
        cancelled,
      );
    });

  build
    .command('logs')
    .description("print a build's log; with -f, follow it live until the build ends")
    .argument('<id>', 'the build id')
    .option('-f, --follow', 'follow the log until the build ends; exit 1 unless it completed')
    .action(async (id: string, flags: { follow?: boolean }, command: Command) => {
      const { api, out } = await apiContext(command);
      if (!flags.follow) {
        await printLog(api, out, id);
        return;
      }
      const phase = await followLog(api, out, id);
      if (phase !== 'complete') {
        throw new CliError('SLW_ERR_BUILD_FAILED', `build ${id} ended ${phase}`, 1);
      }
    });
}
