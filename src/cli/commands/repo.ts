import { Argument, Option, type Command } from 'commander';
import { collect, path } from '../client.ts';
import { apiContext } from '../context.ts';
import { time, type Column } from '../output.ts';
import { limitOption, splitName } from '../parse.ts';
import type { PermissionResource, RepositoryResource, TagChangeResource, TagResource } from '../resources.ts';

const repositoryColumns: ReadonlyArray<Column<RepositoryResource>> = [
  { header: 'repository', value: (repository) => repository.name },
  { header: 'visibility', value: (repository) => repository.visibility },
  { header: 'created', value: (repository) => time(repository.createdAt) },
];

const permissionColumns: ReadonlyArray<Column<PermissionResource>> = [
  { header: 'kind', value: (permission) => permission.kind },
  { header: 'name', value: (permission) => permission.name },
  { header: 'role', value: (permission) => permission.role },
];

const tagColumns: ReadonlyArray<Column<TagResource>> = [
  { header: 'tag', value: (tag) => tag.name },
  { header: 'digest', value: (tag) => tag.digest },
  { header: 'updated', value: (tag) => time(tag.updatedAt) },
];

const tagChangeColumns: ReadonlyArray<Column<TagChangeResource>> = [
  { header: 'when', value: (change) => time(change.occurredAt) },
  { header: 'digest', value: (change) => change.digest ?? '(deleted)' },
  { header: 'previous', value: (change) => change.previousDigest },
  { header: 'actor', value: (change) => change.actor },
];

const repositoryArgument = ['<repository>', 'namespace/name, e.g. acme/app'] as const;

/** `acme/team/app` is /repositories/acme/team%2Fapp: the namespace, then the rest as one segment. */
export function repositoryPath(name: string): string {
  const [namespace, rest] = splitName(name, '/', 'is not a repository name: repositories are namespace/name');
  return path`/repositories/${namespace}/${rest}`;
}

export function registerRepo(program: Command): void {
  const repo = program.command('repo').description('manage repositories, their permissions and tags');
  registerRepository(repo);
  registerPermission(repo);
  registerTags(repo);
}

function registerRepository(repo: Command): void {
  repo
    .command('create')
    .description('create an empty repository (a push by someone allowed to creates one too)')
    .argument(...repositoryArgument)
    .addOption(
      new Option('--visibility <visibility>', 'who may pull')
        .choices(['private', 'public'])
        .default('private'),
    )
    .action(async (name: string, flags: { visibility: string }, command: Command) => {
      const { api, out } = await apiContext(command);
      const created = await api.post<RepositoryResource>('/repositories', {
        name,
        visibility: flags.visibility,
      });
      out.done(`created ${created.visibility} repository ${created.name}`, created);
    });

  repo
    .command('list')
    .description('list the repositories you can read')
    .option('--namespace <namespace>', 'only those of this user or organization')
    .option('--public', 'only public repositories')
    .addOption(limitOption('repositories', 1000))
    .action(async (flags: { namespace?: string; public?: boolean; limit: number }, command: Command) => {
      const { api, out } = await apiContext(command);
      const page = await collect(flags.limit, async (last: string | undefined, limit) => {
        const query = { namespace: flags.namespace, public: flags.public, last, limit };
        const { repositories, next } = await api.get<{ repositories: RepositoryResource[]; next?: string }>(
          '/repositories',
          query,
        );
        return { items: repositories, next };
      });
      out.page(page, repositoryColumns, 'no repositories');
    });

  repo
    .command('show')
    .description('show a repository and your role on it')
    .argument(...repositoryArgument)
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const repository = await api.get<RepositoryResource>(repositoryPath(name));
      out.record(repository, [
        ...repositoryColumns,
        { header: 'your role', value: (shown) => shown.role ?? 'none' },
      ]);
    });

  repo
    .command('visibility')
    .description('make a repository private or public')
    .argument(...repositoryArgument)
    .addArgument(new Argument('<visibility>', 'who may pull').choices(['private', 'public']))
    .action(async (name: string, visibility: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const changed = await api.patch<RepositoryResource>(repositoryPath(name), { visibility });
      out.done(`${changed.name} is ${changed.visibility}`, changed);
    });

  repo
    .command('delete')
    .description('delete a repository with its tags and manifests')
    .argument(...repositoryArgument)
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      await api.delete(repositoryPath(name));
      out.done(`deleted repository ${name}`, { deleted: name });
    });
}

/** `<repository> <kind> <grantee>`: whose role a permission command changes. */
function granteeArguments(command: Command): Command {
  return command
    .argument(...repositoryArgument)
    .addArgument(new Argument('<kind>', 'what the grantee is').choices(['user', 'robot', 'team']))
    .argument('<grantee>', "a username, a robot (namespace+name) or a team of the repository's organization");
}

function registerPermission(repo: Command): void {
  const permission = repo
    .command('permission')
    .description('manage who may read, write or administer a repository');

  permission
    .command('list')
    .description('list the users, robots and teams granted a role on a repository')
    .argument(...repositoryArgument)
    .action(async (name: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const { permissions } = await api.get<{ permissions: PermissionResource[] }>(
        `${repositoryPath(name)}/permissions`,
      );
      out.list(permissions, permissionColumns, `no one is granted a role on ${name}`);
    });

  granteeArguments(
    permission
      .command('set')
      .description('grant a user, robot or team a role on a repository, replacing the one it had'),
  )
    .addArgument(
      new Argument('<role>', 'read, write (also push) or admin').choices(['read', 'write', 'admin']),
    )
    .action(
      async (
        name: string,
        kind: string,
        grantee: string,
        role: string,
        _flags: unknown,
        command: Command,
      ) => {
        const { api, out } = await apiContext(command);
        const granted = await api.put<PermissionResource>(
          repositoryPath(name) + path`/permissions/${kind}/${grantee}`,
          { role },
        );
        out.done(`${granted.kind} ${granted.name} has role ${granted.role} on ${name}`, granted);
      },
    );

  granteeArguments(
    permission.command('remove').description("remove a user's, robot's or team's role on a repository"),
  ).action(async (name: string, kind: string, grantee: string, _flags: unknown, command: Command) => {
    const { api, out } = await apiContext(command);
    await api.delete(repositoryPath(name) + path`/permissions/${kind}/${grantee}`);
    out.done(`${kind} ${grantee} has no role on ${name} any more`, {
      repository: name,
      kind,
      removed: grantee,
    });
  });
}

function registerTags(repo: Command): void {
  repo
    .command('tags')
    .description("list a repository's tags")
    .argument(...repositoryArgument)
    .addOption(limitOption('tags', 1000))
    .action(async (name: string, flags: { limit: number }, command: Command) => {
      const { api, out } = await apiContext(command);
      const page = await collect(flags.limit, async (last: string | undefined, limit) => {
        const { tags, next } = await api.get<{ tags: TagResource[]; next?: string }>(
          `${repositoryPath(name)}/tags`,
          { last, limit },
        );
        return { items: tags, next };
      });
      out.page(page, tagColumns, `${name} has no tags`);
    });

  const tag = repo.command('tag').description("a tag's history, and restoring it to an earlier digest");

  tag
    .command('history')
    .description('list where a tag pointed over time, newest first')
    .argument(...repositoryArgument)
    .argument('<tag>', 'tag name')
    .addOption(limitOption('changes', 50))
    .action(async (name: string, tagName: string, flags: { limit: number }, command: Command) => {
      const { api, out } = await apiContext(command);
      const { history } = await api.get<{ history: TagChangeResource[] }>(
        repositoryPath(name) + path`/tags/${tagName}/history`,
        { limit: flags.limit },
      );
      out.list(history, tagChangeColumns, `${name}:${tagName} has no history`);
    });

  tag
    .command('restore')
    .description('point a tag at a digest it had before (while garbage collection has not removed it)')
    .argument(...repositoryArgument)
    .argument('<tag>', 'tag name')
    .argument('<digest>', 'a digest from the tag history, e.g. sha256:…')
    .action(async (name: string, tagName: string, digest: string, _flags: unknown, command: Command) => {
      const { api, out } = await apiContext(command);
      const restored = await api.post<TagResource>(repositoryPath(name) + path`/tags/${tagName}/restore`, {
        digest,
      });
      out.done(`${name}:${restored.name} points at ${restored.digest}`, restored);
    });
}
