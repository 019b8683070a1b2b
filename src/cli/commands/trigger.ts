import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { path } from '../client.ts';
import { apiContext } from '../context.ts';
import { CliError, usageError } from '../errors.ts';
import { fingerprintLines, scanHostKeys } from '../host-key-scan.ts';
import { outputOf, time, type Column, type Output } from '../output.ts';
import type {
  DeletedTriggerResource,
  IssuedTriggerResource,
  SyncedTriggerResource,
  TriggerResource,
} from '../resources.ts';
import { parseKnownHosts } from '../../triggers/known-hosts.ts';
import { repositoryPath } from './repo.ts';

const triggerPath = (id: string) => path`/triggers/${id}`;

const gitlabText = (trigger: TriggerResource): string | null => {
  const link = trigger.gitlab;
  if (!link) return null;
  const key = link.deployKeyId !== null ? `, deploy key ${link.deployKeyId}` : '';
  const token = link.tokenStored ? 'API token kept' : 'no API token kept';
  const posting = link.hookUrl ? ` to ${link.hookUrl}` : '';
  return `${link.projectPath} on ${link.apiUrl}: webhook ${link.hookId}${posting}${key} (${token})`;
};

const repeatable = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** `--build-arg NAME=VALUE`, repeated. */
function buildArg(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('expected NAME=VALUE');
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

const providerText = { github: 'GitHub', gitlab: 'GitLab', custom: 'custom git' } as const;

const credentialsText = (trigger: TriggerResource): string | null => {
  const { credentials } = trigger;
  if (credentials === null) return null;
  if (credentials.kind === 'deploy-key') return 'SSH deploy key (never shown)';
  return `token${credentials.username ? ` of ${credentials.username}` : ''} (never shown)`;
};

/** The trigger's known hosts as their count, and each key's host and type. */
const knownHostsText = (trigger: TriggerResource): string => {
  if (!trigger.knownHosts) return 'none: SSH clones accept a new host key unchecked';
  const keys = parseKnownHosts(trigger.knownHosts).map(
    ({ marker, hosts, keyType }) =>
      `${marker ? `${marker} ` : ''}${hosts.startsWith('|') ? '(hashed host)' : hosts} ${keyType}`,
  );
  return `${keys.length} key${keys.length === 1 ? '' : 's'}: ${keys.join('; ')}`;
};

/** A few words for the list's column; `trigger show` and the notes below the list say the rest. */
const problemSummary = (trigger: TriggerResource): string | null => {
  if (!trigger.problem) return null;
  return trigger.gitlab?.syncProblem ? 'GitLab sync failed' : 'GitLab webhook posts elsewhere';
};

const triggerColumns: ReadonlyArray<Column<TriggerResource>> = [
  { header: 'id', value: (trigger) => trigger.id },
  { header: 'provider', value: (trigger) => trigger.provider },
  { header: 'clone url', value: (trigger) => trigger.cloneUrl },
  { header: 'refs', value: (trigger) => trigger.refFilter ?? 'all' },
  { header: 'tags', value: (trigger) => trigger.tagTemplates.join(',') },
  { header: 'enabled', value: (trigger) => trigger.enabled },
  { header: 'problem', value: (trigger) => problemSummary(trigger) },
];

const triggerFields: ReadonlyArray<Column<TriggerResource>> = [
  { header: 'id', value: (trigger) => trigger.id },
  { header: 'repository', value: (trigger) => trigger.repository },
  { header: 'provider', value: (trigger) => providerText[trigger.provider] },
  { header: 'webhook url', value: (trigger) => trigger.webhookUrl },
  { header: 'problem', value: (trigger) => trigger.problem ?? null },
  { header: 'clone url', value: (trigger) => trigger.cloneUrl },
  { header: 'credentials', value: credentialsText },
  { header: 'known hosts', value: knownHostsText },
  { header: 'set up on gitlab', value: gitlabText },
  { header: 'ref filter', value: (trigger) => trigger.refFilter ?? 'every branch and tag' },
  { header: 'dockerfile', value: (trigger) => trigger.dockerfile },
  { header: 'context', value: (trigger) => trigger.context },
  {
    header: 'build args',
    value: (trigger) =>
      Object.entries(trigger.buildArgs)
        .map(([name, value]) => `${name}=${value}`)
        .join(' '),
  },
  { header: 'tags', value: (trigger) => trigger.tagTemplates.join(', ') },
  { header: 'latest', value: (trigger) => (trigger.latestOnDefaultBranch ? 'on the default branch' : false) },
  { header: 'pull robot', value: (trigger) => trigger.pullRobot ?? 'none' },
  { header: 'enabled', value: (trigger) => trigger.enabled },
  { header: 'disabled because', value: (trigger) => trigger.disabledReason },
  { header: 'failures in a row', value: (trigger) => trigger.failuresInARow },
  { header: 'created by', value: (trigger) => trigger.createdBy },
  { header: 'created', value: (trigger) => time(trigger.createdAt) },
];

/** What to do with the URL and secret on the git provider's side. */
function setupNote(trigger: IssuedTriggerResource): string {
  if (trigger.gitlab) {
    return trigger.warnings?.length
      ? 'GitLab was not updated: see above.'
      : 'Slipway keeps the GitLab webhook up to date: nothing to do in GitLab.';
  }
  switch (trigger.provider) {
    case 'github':
      return 'In GitHub, add a webhook (Settings > Webhooks) with this Payload URL, content type application/json, this Secret, and the push event.';
    case 'gitlab':
      return 'In GitLab, add a webhook (Settings > Webhooks) with this URL, this Secret token, and push and tag push events.';
    case 'custom':
      return `Install the post-receive hook on the git server: slipway trigger hook-script ${trigger.id} --secret-env VAR`;
  }
}

/** The trigger with its secret, shown once, and what to do with them. */
function showIssued(out: Output, trigger: IssuedTriggerResource, heading: string): void {
  out.compose(trigger, () => {
    out.line(heading);
    out.line(`webhook url:    ${trigger.webhookUrl}`);
    out.line(`webhook secret: ${trigger.webhookSecret}`);
    const link = trigger.gitlab;
    if (link) {
      out.line(`gitlab project: ${link.projectPath} (${link.projectId}) on ${link.apiUrl}`);
      out.line(`gitlab webhook: ${link.hookId}${link.hookCreated ? '' : ' (was there; updated)'}`);
      if (trigger.deployKey && link.deployKeyId !== null) {
        out.line(`deploy key:     ${link.deployKeyId}, read-only, ${trigger.deployKey.fingerprint}`);
      }
      out.line(`clone url:      ${trigger.cloneUrl}`);
    }
  });
  for (const warning of trigger.warnings ?? []) out.note(`warning: ${warning}`);
  out.note(
    trigger.gitlab ? 'Nothing to do in GitLab: Slipway registered the webhook there.' : setupNote(trigger),
  );
  out.note(`The secret will not be shown again; slipway trigger rotate-secret ${trigger.id} replaces it.`);
}

interface CreateFlags {
  repo: string;
  github?: boolean;
  gitlab?: boolean;
  customGit?: boolean;
  cloneUrl?: string;
  gitlabUrl?: string;
  gitlabProject?: string;
  gitlabTokenStdin?: boolean;
  gitlabDeployKey?: boolean;
  gitlabTlsVerify: boolean;
  refFilter?: string;
  dockerfile?: string;
  context?: string;
  buildArg?: Record<string, string>;
  tag?: string[];
  latest: boolean;
  tokenStdin?: boolean;
  tokenUser?: string;
  deployKey?: string;
  knownHosts?: string;
  scanHostKeys?: boolean;
  pullRobot?: string;
  disabled?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The GitLab API token: from stdin with --gitlab-token-stdin, else GITLAB_TOKEN. */
async function gitlabTokenOf(flags: CreateFlags): Promise<string> {
  if (flags.gitlabTokenStdin) {
    if (flags.tokenStdin) throw usageError('--token-stdin and --gitlab-token-stdin cannot both read stdin');
    const token = (await readStdin()).trim();
    if (token === '') throw usageError('--gitlab-token-stdin read nothing: pipe the GitLab API token in');
    return token;
  }
  const token = process.env.GITLAB_TOKEN?.trim();
  if (!token) {
    throw usageError(
      'setting up GitLab needs an API token with the api scope: pipe it in with --gitlab-token-stdin, or set GITLAB_TOKEN',
    );
  }
  return token;
}

/** The `gitlab` part of the new trigger, when --gitlab-url asks Slipway to set the project up. */
async function gitlabSetupOf(flags: CreateFlags): Promise<Record<string, unknown> | undefined> {
  const given = [
    flags.gitlabProject !== undefined,
    flags.gitlabTokenStdin,
    flags.gitlabDeployKey !== undefined,
  ];
  if (flags.gitlabUrl === undefined) {
    if (given.some(Boolean) || !flags.gitlabTlsVerify) {
      throw usageError('the --gitlab-… options go with --gitlab-url, the GitLab instance to set up');
    }
    return undefined;
  }
  if (!flags.gitlab) throw usageError('--gitlab-url sets up a GitLab trigger: add --gitlab');
  if (flags.gitlabProject === undefined) {
    throw usageError('--gitlab-url needs --gitlab-project: the project path (group/app) or numeric ID');
  }
  return {
    apiUrl: flags.gitlabUrl,
    token: await gitlabTokenOf(flags),
    project: /^\d+$/.test(flags.gitlabProject) ? Number(flags.gitlabProject) : flags.gitlabProject,
    ...(flags.gitlabDeployKey !== undefined ? { deployKey: flags.gitlabDeployKey } : {}),
    ...(flags.gitlabTlsVerify ? {} : { tlsVerify: false }),
  };
}

/** The known hosts file's text, sent as it is: the gateway checks it. */
async function knownHostsOf(flags: Pick<CreateFlags, 'knownHosts'>): Promise<string | undefined> {
  if (flags.knownHosts === undefined) return undefined;
  try {
    return await readFile(flags.knownHosts, 'utf8');
  } catch (error) {
    throw new CliError('SLW_ERR_FILE', `cannot read ${flags.knownHosts}: ${(error as Error).message}`, 2);
  }
}

/**
 * The host keys of the clone URL's SSH server, scanned from this machine, with their fingerprints on
 * stderr: nothing vouches for a scanned key but the user comparing them with what the git host publishes.
 */
async function scannedKnownHosts(cloneUrl: string, out: Output): Promise<string> {
  const knownHosts = await scanHostKeys(cloneUrl);
  out.note(
    'Host keys scanned from this machine; compare them with the fingerprints your git host publishes:',
  );
  for (const line of fingerprintLines(knownHosts)) out.note(`  ${line}`);
  return knownHosts;
}

async function credentialsOf(flags: CreateFlags): Promise<Record<string, string> | undefined> {
  if (flags.tokenUser !== undefined && !flags.tokenStdin)
    throw usageError('--token-user goes with --token-stdin');
  if (flags.tokenStdin) {
    const token = (await readStdin()).trim();
    if (token === '') throw usageError('--token-stdin read nothing: pipe the access token in');
    return { token, ...(flags.tokenUser !== undefined ? { username: flags.tokenUser } : {}) };
  }
  if (flags.deployKey !== undefined) {
    try {
      return { deployKey: await readFile(flags.deployKey, 'utf8') };
    } catch (error) {
      throw new CliError('SLW_ERR_FILE', `cannot read ${flags.deployKey}: ${(error as Error).message}`, 2);
    }
  }
  return undefined;
}

function providerOf(flags: CreateFlags): 'github' | 'gitlab' | 'custom' {
  const chosen = [flags.github && 'github', flags.gitlab && 'gitlab', flags.customGit && 'custom'].filter(
    (provider): provider is 'github' | 'gitlab' | 'custom' => typeof provider === 'string',
  );
  if (chosen.length !== 1)
    throw usageError('say where pushes come from: one of --github, --gitlab, --custom-git');
  return chosen[0]!;
}

export function registerTrigger(program: Command): void {
  const trigger = program
    .command('trigger')
    .description('build triggers: turn pushes to GitHub, GitLab or any git server into image builds');

  trigger
    .command('create')
    .description(
      'create a build trigger for a repository you administer; prints its webhook URL and secret once',
    )
    .requiredOption('--repo <repository>', 'the repository its builds push to, e.g. acme/app')
    .option('--github', 'pushes come from a GitHub webhook')
    .option('--gitlab', 'pushes come from a GitLab webhook')
    .option('--custom-git', "pushes come from a git server's post-receive hook")
    .option(
      '--clone-url <url>',
      "what the builder clones, e.g. https://github.com/acme/app.git (with --gitlab-url: default the project's)",
    )
    .option('--gitlab-url <url>', 'with --gitlab: set up the webhook on this GitLab instance through its API')
    .option('--gitlab-project <project>', "with --gitlab-url: the project's path (group/app) or numeric ID")
    .option(
      '--gitlab-token-stdin',
      'with --gitlab-url: read the GitLab API token (api scope, Maintainer) from stdin (default: GITLAB_TOKEN)',
    )
    .option(
      '--gitlab-deploy-key',
      'with --gitlab-url: generate a read-only deploy key, add it to the project and clone with it over SSH (default when cloning over SSH without credentials)',
    )
    .option('--no-gitlab-deploy-key', 'with --gitlab-url: no deploy key; clone over HTTPS')
    .option(
      '--no-gitlab-tls-verify',
      "with --gitlab-url: GitLab does not check the webhook URL's certificate",
    )
    .option('--ref-filter <regex>', 'build only refs this matches, e.g. "heads/main|tags/v.*"')
    .option('--dockerfile <path>', 'the Dockerfile in the repository (default Dockerfile)')
    .option('--context <path>', 'the build context in the repository (default .)')
    .option('--build-arg <name=value>', 'a build argument (repeat for more; no secrets)', buildArg)
    .option(
      '--tag <template>',
      'a tag each build pushes: ${branch}, ${tag}, ${sha}, ${short_sha}, ${date} (repeat; default ${branch}, ${tag}, ${short_sha})',
      repeatable,
    )
    .option('--no-latest', 'do not also tag latest for the default branch')
    .addOption(
      new Option('--token-stdin', 'read an access token to clone over HTTPS from stdin').conflicts(
        'deployKey',
      ),
    )
    .option('--token-user <user>', "with --token-stdin: the user name to clone as (default: the provider's)")
    .addOption(
      new Option('--deploy-key <file>', 'an SSH private key with read access to clone with').conflicts(
        'tokenStdin',
      ),
    )
    .option(
      '--known-hosts <file>',
      "the SSH server's host keys in known_hosts format, e.g. from `ssh-keyscan -p PORT HOST`; SSH clones accept only these",
    )
    .addOption(
      new Option(
        '--scan-host-keys',
        "scan the SSH clone URL's host keys from this machine (ssh-keyscan), print their fingerprints and accept only these",
      ).conflicts('knownHosts'),
    )
    .option(
      '--pull-robot <namespace+name>',
      'builds also pull what this robot account may read, e.g. a private base image (a robot of a namespace you administer)',
    )
    .option('--disabled', 'create it without building until it is enabled')
    .action(async (flags: CreateFlags, command: Command) => {
      const provider = providerOf(flags);
      const gitlab = await gitlabSetupOf(flags);
      if (flags.cloneUrl === undefined && !gitlab) {
        throw usageError('give --clone-url (a GitLab trigger set up with --gitlab-url may leave it out)');
      }
      if (flags.scanHostKeys && flags.cloneUrl === undefined) {
        throw usageError('--scan-host-keys scans the host of --clone-url: give the SSH clone URL');
      }
      const credentials = await credentialsOf(flags);
      const knownHosts = flags.scanHostKeys
        ? await scannedKnownHosts(flags.cloneUrl!, outputOf(command))
        : await knownHostsOf(flags);
      const { api, out } = await apiContext(command);
      const created = await api.post<IssuedTriggerResource>(`${repositoryPath(flags.repo)}/triggers`, {
        provider,
        ...(flags.cloneUrl !== undefined ? { cloneUrl: flags.cloneUrl } : {}),
        ...(gitlab ? { gitlab } : {}),
        ...(credentials ? { credentials } : {}),
        ...(knownHosts !== undefined ? { knownHosts } : {}),
        ...(flags.refFilter !== undefined ? { refFilter: flags.refFilter } : {}),
        ...(flags.dockerfile !== undefined ? { dockerfile: flags.dockerfile } : {}),
        ...(flags.context !== undefined ? { context: flags.context } : {}),
        ...(flags.buildArg ? { buildArgs: flags.buildArg } : {}),
        ...(flags.tag ? { tagTemplates: flags.tag } : {}),
        ...(flags.latest ? {} : { latestOnDefaultBranch: false }),
        ...(flags.pullRobot !== undefined ? { pullRobot: flags.pullRobot } : {}),
        ...(flags.disabled ? { enabled: false } : {}),
      });
      showIssued(
        out,
        created,
        `created ${providerText[created.provider]} trigger ${created.id} for ${created.repository}`,
      );
    });

  trigger
    .command('list')
    .description("list a repository's build triggers")
    .requiredOption('--repo <repository>', 'a repository you administer')
    .action(async (flags: { repo: string }, command: Command) => {
      const { api, out } = await apiContext(command);
      const { triggers } = await api.get<{ triggers: TriggerResource[] }>(
        `${repositoryPath(flags.repo)}/triggers`,
      );
      out.list(triggers, triggerColumns, `${flags.repo} has no build triggers`);
      for (const { id, problem } of triggers) if (problem) out.note(`trigger ${id}: ${problem}`);
    });

  trigger
    .command('show')
    .description('show a build trigger (never its secret or clone credentials)')
    .argument('<id>', 'the trigger id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      out.record(await api.get<TriggerResource>(triggerPath(id)), triggerFields);
    });

  for (const [name, enabled, description] of [
    ['enable', true, 'build pushes again (and forget earlier failures)'],
    ['disable', false, 'stop building pushes until enabled again'],
  ] as const) {
    trigger
      .command(name)
      .description(description)
      .argument('<id>', 'the trigger id')
      .action(async (id: string, _flags: unknown, command: Command) => {
        const { api, out } = await apiContext(command);
        const changed = await api.patch<TriggerResource>(triggerPath(id), { enabled });
        out.done(`trigger ${changed.id} is ${changed.enabled ? 'enabled' : 'disabled'}`, changed);
      });
  }

  trigger
    .command('pull-robot')
    .description(
      "set the robot account whose read access the trigger's builds also pull with (private base images), or none",
    )
    .argument('<id>', 'the trigger id')
    .argument('<robot>', 'namespace+name of a robot of a namespace you administer, or none')
    .action(async (id: string, robot: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const pullRobot = robot === 'none' ? null : robot;
      const changed = await api.patch<TriggerResource>(triggerPath(id), { pullRobot });
      out.done(
        `trigger ${changed.id} ${changed.pullRobot ? `pulls with ${changed.pullRobot}` : 'has no pull robot'}`,
        changed,
      );
    });

  trigger
    .command('known-hosts')
    .description(
      "set the SSH server's host keys the trigger's clones accept, from a known_hosts file or scanned, or none to accept any",
    )
    .argument('<id>', 'the trigger id')
    .argument('[file]', 'known_hosts lines, e.g. from `ssh-keyscan -p PORT HOST`, or none')
    .option(
      '--scan',
      "instead of a file: scan the clone URL's host keys from this machine (ssh-keyscan) and print their fingerprints",
    )
    .action(async (id: string, file: string | undefined, flags: { scan?: boolean }, command: Command) => {
      if (Boolean(flags.scan) === (file !== undefined)) {
        throw usageError('give the known_hosts file, none, or --scan: one of them');
      }
      const { api, out } = await apiContext(command);
      const knownHosts =
        file === undefined
          ? await scannedKnownHosts((await api.get<TriggerResource>(triggerPath(id))).cloneUrl, out)
          : file === 'none'
            ? null
            : await knownHostsOf({ knownHosts: file });
      const changed = await api.patch<TriggerResource>(triggerPath(id), { knownHosts });
      out.done(`trigger ${changed.id} known hosts: ${knownHostsText(changed)}`, changed);
    });

  trigger
    .command('delete')
    .description('delete a build trigger: its webhook is refused from now on; its builds stay')
    .argument('<id>', 'the trigger id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      // 204 for most triggers; 200 with what was removed from GitLab for one Slipway set up there.
      const answer = await api.request<DeletedTriggerResource | undefined>('DELETE', triggerPath(id), {});
      const result = answer ?? { deleted: id, gitlab: null, warnings: [] };
      const removed = result.gitlab
        ? `; removed from GitLab: ${result.gitlab.hooksRemoved} webhook(s)${result.gitlab.deployKeyRemoved ? ' and the deploy key' : ''}`
        : '';
      out.done(`deleted trigger ${id}${removed}`, result);
      for (const warning of result.warnings) out.note(`warning: ${warning}`);
    });

  trigger
    .command('rotate-secret')
    .description('replace the webhook secret: deliveries signed with the old one are refused from now on')
    .argument('<id>', 'the trigger id')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const rotated = await api.post<IssuedTriggerResource>(`${triggerPath(id)}/secret`);
      showIssued(out, rotated, `replaced the webhook secret of trigger ${rotated.id}`);
    });

  trigger
    .command('gitlab-sync')
    .description(
      "update the GitLab webhook of a trigger Slipway set up there to the trigger's webhook URL (after a change of the public URL) and secret; add the webhook and deploy key again if they were deleted in GitLab",
    )
    .argument('<id>', 'the trigger id')
    .option(
      '--gitlab-token-stdin',
      'read a new GitLab API token (api scope, Maintainer) from stdin, to sync with and keep (default: the kept one)',
    )
    .action(async (id: string, flags: { gitlabTokenStdin?: boolean }, command: Command) => {
      const token = flags.gitlabTokenStdin ? (await readStdin()).trim() : undefined;
      if (token === '') throw usageError('--gitlab-token-stdin read nothing: pipe the GitLab API token in');
      const { api, out } = await apiContext(command);
      const synced = await api.post<SyncedTriggerResource>(
        `${triggerPath(id)}/gitlab/sync`,
        token !== undefined ? { token } : {},
      );
      const { gitlabSync } = synced;
      const recreated = [
        gitlabSync.hookRecreated && 'the webhook',
        gitlabSync.deployKeyRecreated && 'the deploy key',
      ].filter(Boolean);
      out.done(
        `synced trigger ${synced.id}: GitLab webhook ${gitlabSync.hookId} posts to ${synced.webhookUrl}` +
          (recreated.length > 0 ? `; added again: ${recreated.join(' and ')}` : ''),
        synced,
      );
      if (synced.problem) out.note(`warning: ${synced.problem}`);
    });

  trigger
    .command('hook-script')
    .description(
      'print a post-receive hook for a custom git trigger; without --secret-env the secret is written into it',
    )
    .argument('<id>', 'the trigger id')
    .option('--secret-env <name>', "the git server's environment variable the hook reads the secret from")
    .action(async (id: string, flags: { secretEnv?: string }, command: Command) => {
      const { api } = await apiContext(command);
      const response = await api.open(`${triggerPath(id)}/hook-script`, {
        query: { secretEnv: flags.secretEnv },
        headers: { Accept: 'text/plain' },
      });
      process.stdout.write(await response.text());
      if (flags.secretEnv === undefined) {
        process.stderr.write('The script holds the webhook secret: keep it readable only by the git user.\n');
      }
    });
}
