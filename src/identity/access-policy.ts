import type { Database } from '../db/database.ts';
import type { PullPolicy } from '../mirror/cache/upstreams.ts';
import { forbidden, notFound } from '../errors.ts';
import { anonymous, type BuildIdentity, type Principal } from './accounts.ts';
import type { AuditLog } from './audit.ts';
import { buildTokenActions } from './build-tokens.ts';
import {
  accessFacts,
  actionsOf,
  grant,
  insertRepository,
  isOrganizationMember,
  resolveAccess,
  roleAllows,
  type RegistryAction,
  type RepositoryRole,
} from './permissions.ts';
import { namespaceOf } from './names.ts';

/**
 * Answers "may this principal do that to this repository?" for the token service, the registry and
 * the REST API alike, from one reading of the permission model (`resolveAccess`).
 */
export class AccessPolicy {
  readonly #db: Database;
  readonly #audit: AuditLog;
  readonly #pullPolicyOf: (namespace: string) => PullPolicy | undefined;

  /**
   * `pullPolicyOf`: for a namespace that is a pull-through cache of an upstream registry, who may
   * pull through it; undefined for every other namespace.
   */
  constructor(
    db: Database,
    audit: AuditLog,
    options: { pullPolicyOf?: (namespace: string) => PullPolicy | undefined } = {},
  ) {
    this.#db = db;
    this.#audit = audit;
    this.#pullPolicyOf = options.pullPolicyOf ?? (() => undefined);
  }

  /** The principal's role on an existing repository, or null. */
  async roleOn(principal: Principal, repository: string): Promise<RepositoryRole | null> {
    return resolveAccess(principal, await accessFacts(this.#db, principal, repository)).role;
  }

  /**
   * The subset of `requested` the principal may do. Asking to push to a repository that does not
   * exist yet creates it (private) when the principal may create repositories in its namespace, as
   * a first `docker push` expects; the creator is given admin on it unless they administer the
   * namespace anyway. A build gets at most pull and push on its own repository, and pull of public
   * repositories, of pull-through caches open to every user, and of what its pull robot may read (its
   * base images).
   */
  async grantedActions(
    principal: Principal,
    repository: string,
    requested: readonly RegistryAction[],
  ): Promise<RegistryAction[]> {
    const namespace = namespaceOf(repository);
    const pullPolicy = namespace === null ? undefined : this.#pullPolicyOf(namespace);
    if (principal.kind === 'build' && principal.build.repository !== repository) {
      return (await this.#buildMayPull(principal.build, repository, pullPolicy))
        ? requested.filter((action) => action === 'pull')
        : [];
    }
    if (pullPolicy !== undefined) {
      // A pull-through cache: pulled by whom its policy lets; nobody pushes or deletes there.
      return (await this.#mayPullThrough(principal, pullPolicy))
        ? requested.filter((action) => action === 'pull')
        : [];
    }
    if (principal.kind === 'build') return this.#grantToBuild(principal.build, requested);
    const facts = await accessFacts(this.#db, principal, repository);
    const { role, canCreate } = resolveAccess(principal, facts);
    let allowed = actionsOf(role);
    if (canCreate && requested.includes('push') && principal.kind === 'account') {
      allowed = actionsOf(await this.#createOnPush(principal, repository));
    } else if (canCreate) {
      // Not yet created: reading it answers NAME_UNKNOWN rather than a denial the caller cannot explain.
      allowed = ['pull'];
    }
    return requested.filter((action) => allowed.includes(action));
  }

  /**
   * Base images of a build: what anyone may pull, pull-through caches open to signed-in callers, and
   * whatever its pull robot may read, resolved as for the robot itself (one query). Only ever pull.
   */
  async #buildMayPull(
    build: BuildIdentity,
    repository: string,
    pullPolicy: PullPolicy | undefined,
  ): Promise<boolean> {
    const robot: Principal | null = build.pullRobot
      ? { kind: 'account', account: build.pullRobot, via: 'robot-token' }
      : null;
    if (pullPolicy === 'anonymous' || pullPolicy === 'users') return true;
    if (pullPolicy !== undefined) return robot !== null && this.#mayPullThrough(robot, pullPolicy);
    return (await this.roleOn(robot ?? anonymous, repository)) !== null;
  }

  async #mayPullThrough(principal: Principal, policy: PullPolicy): Promise<boolean> {
    if (policy === 'anonymous') return true;
    if (principal.kind !== 'account') return false;
    if (policy === 'users' || principal.account.superuser) return true;
    return isOrganizationMember(this.#db, principal.account.id, policy.slice('org:'.length));
  }

  async #grantToBuild(build: BuildIdentity, requested: readonly RegistryAction[]) {
    const granted = requested.filter((action) => buildTokenActions.includes(action));
    if (granted.includes('push')) await this.#createForBuild(build);
    return granted;
  }

  /** A build's first push creates its repository, private, administered by the namespace's owners. */
  async #createForBuild(build: BuildIdentity): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { created } = await insertRepository(tx, build.repository, 'private');
      if (!created) return;
      await this.#audit.write(tx, {
        kind: 'create_repo',
        actor: build.name,
        actorKind: 'build',
        namespace: namespaceOf(build.repository),
        repository: build.repository,
        metadata: { visibility: 'private', via: 'push' },
      });
    });
  }

  async #createOnPush(principal: Extract<Principal, { kind: 'account' }>, repository: string) {
    return this.#db.transaction(async (tx) => {
      const { id, created } = await insertRepository(tx, repository, 'private');
      const after = resolveAccess(principal, await accessFacts(tx, principal, repository));
      if (created && !roleAllows(after.role, 'admin')) {
        await grant(
          tx,
          id,
          { accountId: principal.account.id },
          principal.account.kind === 'robot' ? 'write' : 'admin',
        );
      }
      if (created) {
        await this.#audit.write(tx, {
          kind: 'create_repo',
          actor: principal.account.name,
          actorKind: principal.account.kind,
          namespace: namespaceOf(repository),
          repository,
          metadata: { visibility: 'private', via: 'push' },
        });
      }
      return resolveAccess(principal, await accessFacts(tx, principal, repository)).role;
    });
  }

  /**
   * Throws unless the principal holds at least `needed` on the repository. A repository the
   * principal cannot even read answers 404, so its existence does not leak.
   */
  async requireRole(principal: Principal, repository: string, needed: RepositoryRole): Promise<number> {
    const facts = await accessFacts(this.#db, principal, repository);
    const { role } = resolveAccess(principal, facts);
    if (facts.repositoryId === null || role === null) {
      throw notFound(`repository ${repository} does not exist or you cannot see it`);
    }
    if (!roleAllows(role, needed)) {
      throw forbidden(`this needs ${needed} permission on ${repository}; you have ${role}`);
    }
    return facts.repositoryId;
  }

  /** Whether the principal may create a repository of that name (it does not exist yet). */
  async canCreate(principal: Principal, repository: string): Promise<boolean> {
    return resolveAccess(principal, await accessFacts(this.#db, principal, repository)).canCreate;
  }
}
