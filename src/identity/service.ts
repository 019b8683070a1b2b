import type { Database, Queryable } from '../db/database.ts';
import { conflict, forbidden, invalid, notFound, unauthenticated } from '../errors.ts';
import * as accounts from './accounts.ts';
import type { Account, Principal, TokenInfo } from './accounts.ts';
import type { AccessPolicy } from './access-policy.ts';
import type { AuditEntry, AuditLog, AuditQuery, AuditRecord } from './audit.ts';
import type { Authenticator } from './authenticator.ts';
import { namespaceOf, parseAccountName, parseTeamName, robotName, splitRobotName } from './names.ts';
import * as permissions from './permissions.ts';
import type { PermissionEntry, RepositoryInfo, RepositoryRole, Visibility } from './permissions.ts';
import { hashPassword, minimumPasswordLength, newToken, parseToken } from './secrets.ts';
import * as teams from './teams.ts';
import type { Team, TeamRole } from './teams.ts';

/** Where a request came from, for the audit log. */
export interface RequestContext {
  ip?: string | null;
}

export interface IssuedToken {
  token: string;
  info: TokenInfo;
}

/** What deleting a repository asks of the registry: its content and cached metadata go too. */
export type RepositoryRemover = (repository: string) => Promise<void>;

/**
 * Accounts, organizations, teams, robots, personal tokens, repositories and their permissions: each
 * operation checks that the principal may do it, makes the change and records it in the audit log in
 * the same transaction. The REST API and the CLI are thin over this.
 */
export class IdentityService {
  readonly #db: Database;
  readonly #audit: AuditLog;
  readonly #policy: AccessPolicy;
  readonly #authenticator: Authenticator;
  readonly #removeRepository: RepositoryRemover;

  constructor(options: {
    db: Database;
    audit: AuditLog;
    policy: AccessPolicy;
    authenticator: Authenticator;
    removeRepository: RepositoryRemover;
  }) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#policy = options.policy;
    this.#authenticator = options.authenticator;
    this.#removeRepository = options.removeRepository;
  }

  // ── users ──────────────────────────────────────────────────────────────────────────────────

  /** Creates the first superuser when no user exists yet; null when there are users already. */
  async bootstrapSuperuser(name: string, password: string): Promise<Account | null> {
    const hash = await hashPassword(checkPassword(password));
    return this.#db.transaction(async (tx) => {
      await tx.query('LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE');
      if ((await accounts.countUsers(tx)) > 0) return null;
      const account = await accounts.insertAccount(tx, {
        name: parseAccountName(name),
        kind: 'user',
        passwordHash: hash,
        superuser: true,
      });
      await this.#audit.write(tx, {
        kind: 'create_user',
        actor: null,
        target: account.name,
        metadata: { superuser: true, via: 'bootstrap' },
      });
      return account;
    });
  }

  async createUser(
    principal: Principal,
    input: { name: string; password: string; email?: string | null; superuser?: boolean },
    context: RequestContext = {},
  ): Promise<Account> {
    requireSuperuser(principal);
    const name = parseAccountName(input.name);
    const hash = await hashPassword(checkPassword(input.password));
    return this.#db.transaction(async (tx) => {
      const account = await accounts.insertAccount(tx, {
        name,
        kind: 'user',
        email: input.email ?? null,
        passwordHash: hash,
        superuser: input.superuser ?? false,
      });
      await this.#write(tx, principal, context, {
        kind: 'create_user',
        target: name,
        metadata: { superuser: account.superuser },
      });
      return account;
    });
  }

  async listUsers(principal: Principal): Promise<Account[]> {
    requireSuperuser(principal);
    return accounts.listAccounts(this.#db, 'user');
  }

  async getUser(principal: Principal, name: string): Promise<Account> {
    const self = requireAccount(principal);
    if (self.name !== name) requireSuperuser(principal);
    return accounts.requireAccount(this.#db, name, 'user');
  }

  async updateUser(
    principal: Principal,
    name: string,
    changes: { password?: string; email?: string | null; superuser?: boolean },
    context: RequestContext = {},
  ): Promise<Account> {
    const self = requireAccount(principal);
    if (self.name !== name || changes.superuser !== undefined) requireSuperuser(principal);
    if (self.kind !== 'user') throw forbidden('robot accounts cannot change users');
    const passwordHash =
      changes.password === undefined ? undefined : await hashPassword(checkPassword(changes.password));
    const account = await this.#db.transaction(async (tx) => {
      const target = await accounts.requireAccount(tx, name, 'user');
      await accounts.updateAccount(tx, target.id, {
        ...(passwordHash ? { passwordHash } : {}),
        ...(changes.superuser !== undefined ? { superuser: changes.superuser } : {}),
        ...(changes.email !== undefined ? { email: changes.email } : {}),
      });
      await this.#write(tx, principal, context, {
        kind: 'change_user',
        target: name,
        metadata: {
          password: passwordHash !== undefined,
          superuser: changes.superuser ?? null,
          email: changes.email !== undefined,
        },
      });
      return (await accounts.findAccountById(tx, target.id))!;
    });
    this.#authenticator.forget(account.id);
    return account;
  }

  async deleteUser(principal: Principal, name: string, context: RequestContext = {}): Promise<void> {
    requireSuperuser(principal);
    const target = await this.#db.transaction(async (tx) => {
      const account = await accounts.requireAccount(tx, name, 'user');
      if (principal.kind === 'account' && principal.account.id === account.id) {
        throw conflict('you cannot delete your own account; ask another superuser');
      }
      await this.#refuseWhileRepositories(tx, name);
      await accounts.deleteAccount(tx, account.id);
      await this.#write(tx, principal, context, { kind: 'delete_user', target: name });
      return account;
    });
    this.#authenticator.forget(target.id);
  }

  // ── organizations and teams ────────────────────────────────────────────────────────────────

  async createOrganization(
    principal: Principal,
    input: { name: string; email?: string | null },
    context: RequestContext = {},
  ): Promise<Account> {
    const creator = requireUser(principal);
    const name = parseAccountName(input.name);
    return this.#db.transaction(async (tx) => {
      const organization = await accounts.insertAccount(tx, {
        name,
        kind: 'organization',
        email: input.email ?? null,
      });
      const owners = await teams.upsertTeam(
        tx,
        organization.id,
        'owners',
        'admin',
        'administers the organization',
      );
      await teams.addTeamMember(tx, owners.id, creator.id);
      await this.#write(tx, principal, context, {
        kind: 'create_organization',
        namespace: name,
        target: name,
      });
      return organization;
    });
  }

  async listOrganizations(principal: Principal): Promise<Account[]> {
    const self = requireAccount(principal);
    if (self.superuser) return accounts.listAccounts(this.#db, 'organization');
    const { rows } = await this.#db.query<{ name: string }>(
      `SELECT DISTINCT o.name FROM teams t JOIN team_members m ON m.team_id = t.id
         JOIN accounts o ON o.id = t.organization_id WHERE m.account_id = $1 ORDER BY o.name`,
      [self.id],
    );
    return Promise.all(rows.map((row) => accounts.requireAccount(this.#db, row.name, 'organization')));
  }

  async getOrganization(principal: Principal, name: string): Promise<Account> {
    const { organization } = await this.#organizationFor(principal, name, 'member');
    return organization;
  }

  async deleteOrganization(principal: Principal, name: string, context: RequestContext = {}): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { organization } = await this.#organizationFor(principal, name, 'admin', tx);
      await this.#refuseWhileRepositories(tx, name);
      await accounts.deleteAccount(tx, organization.id);
      await this.#write(tx, principal, context, {
        kind: 'delete_organization',
        namespace: name,
        target: name,
      });
    });
  }

  async putTeam(
    principal: Principal,
    organizationName: string,
    teamName: string,
    input: { role: TeamRole; description?: string },
    context: RequestContext = {},
  ): Promise<Team> {
    const name = parseTeamName(teamName);
    return this.#db.transaction(async (tx) => {
      const { organization } = await this.#organizationFor(principal, organizationName, 'admin', tx);
      const before = await teams.findTeam(tx, organization.id, name);
      if (before?.role === 'admin' && input.role !== 'admin')
        await this.#keepAnAdmin(tx, organization.id, before.id);
      const team = await teams.upsertTeam(tx, organization.id, name, input.role, input.description);
      await this.#write(tx, principal, context, {
        kind: 'create_team',
        namespace: organization.name,
        target: name,
        metadata: { role: input.role, previousRole: before?.role ?? null },
      });
      return team;
    });
  }

  async listTeams(principal: Principal, organizationName: string) {
    const { organization } = await this.#organizationFor(principal, organizationName, 'member');
    return teams.listTeams(this.#db, organization.id);
  }

  async deleteTeam(
    principal: Principal,
    organizationName: string,
    teamName: string,
    context: RequestContext = {},
  ) {
    await this.#db.transaction(async (tx) => {
      const { organization } = await this.#organizationFor(principal, organizationName, 'admin', tx);
      const team = await teams.requireTeam(tx, organization.id, teamName);
      if (team.role === 'admin') await this.#keepAnAdmin(tx, organization.id, team.id);
      await teams.deleteTeam(tx, team.id);
      await this.#write(tx, principal, context, {
        kind: 'delete_team',
        namespace: organization.name,
        target: teamName,
      });
    });
  }

  async listTeamMembers(principal: Principal, organizationName: string, teamName: string) {
    const { organization } = await this.#organizationFor(principal, organizationName, 'member');
    const team = await teams.requireTeam(this.#db, organization.id, teamName);
    return teams.listTeamMembers(this.#db, team.id);
  }

  /** Adds a user, or a robot of this organization, to a team. */
  async addTeamMember(
    principal: Principal,
    organizationName: string,
    teamName: string,
    memberName: string,
    context: RequestContext = {},
  ): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { organization } = await this.#organizationFor(principal, organizationName, 'admin', tx);
      const team = await teams.requireTeam(tx, organization.id, teamName);
      const member = await accounts.requireAccount(tx, memberName);
      checkMemberBelongs(member, organization);
      await teams.addTeamMember(tx, team.id, member.id);
      await this.#write(tx, principal, context, {
        kind: 'add_team_member',
        namespace: organization.name,
        target: `${teamName}:${member.name}`,
      });
    });
  }

  async removeTeamMember(
    principal: Principal,
    organizationName: string,
    teamName: string,
    memberName: string,
    context: RequestContext = {},
  ): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { organization } = await this.#organizationFor(principal, organizationName, 'admin', tx);
      const team = await teams.requireTeam(tx, organization.id, teamName);
      const member = await accounts.requireAccount(tx, memberName);
      if (!(await teams.removeTeamMember(tx, team.id, member.id))) {
        throw notFound(`${memberName} is not a member of team ${teamName}`);
      }
      if (team.role === 'admin' && (await teams.countOrganizationAdmins(tx, organization.id)) === 0) {
        throw conflict(`${memberName} is the last administrator of ${organization.name}; add another first`);
      }
      await this.#write(tx, principal, context, {
        kind: 'remove_team_member',
        namespace: organization.name,
        target: `${teamName}:${member.name}`,
      });
    });
  }

  // ── robots ─────────────────────────────────────────────────────────────────────────────────

  async createRobot(
    principal: Principal,
    namespaceName: string,
    shortName: string,
    input: { description?: string } = {},
    context: RequestContext = {},
  ): Promise<{ robot: Account; token: string }> {
    return this.#db.transaction(async (tx) => {
      const namespace = await this.#namespaceAdministeredBy(principal, namespaceName, tx);
      const name = robotName(parseAccountName(namespace.name), shortName);
      const robot = await accounts.insertAccount(tx, {
        name,
        kind: 'robot',
        ownerId: namespace.id,
        description: input.description ?? '',
      });
      const secret = newToken();
      await accounts.insertToken(tx, robot.id, 'robot', 'robot token', secret, null);
      await this.#write(tx, principal, context, {
        kind: 'create_robot',
        namespace: namespace.name,
        target: name,
      });
      return { robot, token: secret.token };
    });
  }

  async listRobots(principal: Principal, namespaceName: string): Promise<Account[]> {
    const namespace = await this.#namespaceAdministeredBy(principal, namespaceName, this.#db);
    return accounts.listAccounts(this.#db, 'robot', namespace.id);
  }

  async getRobot(principal: Principal, fullName: string): Promise<Account> {
    const { namespace } = parseRobot(fullName);
    await this.#namespaceAdministeredBy(principal, namespace, this.#db);
    return accounts.requireAccount(this.#db, fullName, 'robot');
  }

  /** A new token for the robot; the old one stops working at once. */
  async regenerateRobotToken(
    principal: Principal,
    fullName: string,
    context: RequestContext = {},
  ): Promise<string> {
    const { namespace } = parseRobot(fullName);
    const { robot, token } = await this.#db.transaction(async (tx) => {
      await this.#namespaceAdministeredBy(principal, namespace, tx);
      const robot = await accounts.requireAccount(tx, fullName, 'robot');
      await accounts.deleteTokensOf(tx, robot.id);
      const secret = newToken();
      await accounts.insertToken(tx, robot.id, 'robot', 'robot token', secret, null);
      await this.#write(tx, principal, context, {
        kind: 'regenerate_robot_token',
        namespace,
        target: fullName,
      });
      return { robot, token: secret.token };
    });
    this.#authenticator.forget(robot.id);
    return token;
  }

  async deleteRobot(principal: Principal, fullName: string, context: RequestContext = {}): Promise<void> {
    const { namespace } = parseRobot(fullName);
    const robot = await this.#db.transaction(async (tx) => {
      await this.#namespaceAdministeredBy(principal, namespace, tx);
      const robot = await accounts.requireAccount(tx, fullName, 'robot');
      await accounts.deleteAccount(tx, robot.id);
      await this.#write(tx, principal, context, { kind: 'delete_robot', namespace, target: fullName });
      return robot;
    });
    this.#authenticator.forget(robot.id);
  }

  // ── personal access tokens ─────────────────────────────────────────────────────────────────

  async createPersonalToken(
    principal: Principal,
    input: { name: string; expiresAt?: Date | null },
    context: RequestContext = {},
  ): Promise<IssuedToken> {
    const user = requireUser(principal);
    if (input.expiresAt && input.expiresAt.getTime() <= Date.now())
      throw invalid('the expiry must be in the future');
    const name = input.name.trim();
    if (name.length === 0 || name.length > 100) throw invalid('a token needs a name of 1 to 100 characters');
    return this.#db.transaction(async (tx) => {
      const secret = newToken();
      const info = await accounts.insertToken(tx, user.id, 'personal', name, secret, input.expiresAt ?? null);
      await this.#write(tx, principal, context, {
        kind: 'create_personal_token',
        target: name,
        metadata: { tokenId: info.id, expiresAt: info.expiresAt?.toISOString() ?? null },
      });
      return { token: secret.token, info };
    });
  }

  async listPersonalTokens(principal: Principal): Promise<TokenInfo[]> {
    return accounts.listTokens(this.#db, requireUser(principal).id);
  }

  async revokePersonalToken(
    principal: Principal,
    tokenId: number,
    context: RequestContext = {},
  ): Promise<void> {
    const user = requireUser(principal);
    await this.#db.transaction(async (tx) => {
      if (!(await accounts.deleteToken(tx, user.id, tokenId))) throw notFound(`you have no token ${tokenId}`);
      await this.#write(tx, principal, context, { kind: 'revoke_personal_token', target: String(tokenId) });
    });
    this.#authenticator.forget(user.id);
  }

  // ── sessions ───────────────────────────────────────────────────────────────────────────────

  /**
   * Signs a user in with a password for a browser session: a token of kind `session` that expires
   * after `lifetimeSeconds`, listed and revocable with the user's other tokens.
   */
  async startSession(
    username: string,
    password: string,
    lifetimeSeconds: number,
    context: RequestContext = {},
  ): Promise<{ user: Account; token: string; expiresAt: Date }> {
    const principal = await this.#authenticator.authenticate(username, password, {
      via: 'session',
      ...(context.ip ? { ip: context.ip } : {}),
    });
    const user = requireUser(principal);
    if (principal.kind === 'account' && principal.via !== 'password')
      throw invalid('a session starts with a password; use a token as a Bearer credential instead');
    const expiresAt = new Date(Date.now() + lifetimeSeconds * 1000);
    const secret = newToken();
    await accounts.insertToken(this.#db, user.id, 'session', 'session', secret, expiresAt);
    return { user, token: secret.token, expiresAt };
  }

  /** Ends the session whose token this is; a token that is no session of the principal is ignored. */
  async endSession(principal: Principal, token: string): Promise<void> {
    const parsed = parseToken(token);
    if (principal.kind !== 'account' || !parsed) return;
    await accounts.deleteTokenBySelector(this.#db, principal.account.id, parsed.selector);
    this.#authenticator.forget(principal.account.id);
  }

  // ── repositories and permissions ───────────────────────────────────────────────────────────

  async createRepository(
    principal: Principal,
    name: string,
    visibility: Visibility = 'private',
    context: RequestContext = {},
  ): Promise<RepositoryInfo> {
    const actor = requireAccount(principal);
    if (!namespaceOf(name)) throw invalid(`repository names are <namespace>/<name>, not "${name}"`);
    if (!(await this.#policy.canCreate(principal, name))) {
      if (await permissions.findRepository(this.#db, name))
        throw conflict(`repository ${name} exists already`);
      throw forbidden(`you cannot create repositories in ${namespaceOf(name)}`);
    }
    return this.#db.transaction(async (tx) => {
      const { id, created } = await permissions.insertRepository(tx, name, visibility);
      if (!created) throw conflict(`repository ${name} exists already`);
      const after = permissions.resolveAccess(principal, await permissions.accessFacts(tx, principal, name));
      if (!permissions.roleAllows(after.role, 'admin')) {
        await permissions.grant(tx, id, { accountId: actor.id }, actor.kind === 'robot' ? 'write' : 'admin');
      }
      await this.#write(tx, principal, context, {
        kind: 'create_repo',
        repository: name,
        metadata: { visibility },
      });
      return (await permissions.findRepository(tx, name))!;
    });
  }

  listRepositories(
    principal: Principal,
    options: { namespace?: string; last?: string; limit: number; publicOnly?: boolean },
  ): Promise<RepositoryInfo[]> {
    return permissions.listReadableRepositories(this.#db, principal, options);
  }

  async getRepository(
    principal: Principal,
    name: string,
  ): Promise<RepositoryInfo & { role: RepositoryRole | null }> {
    await this.#policy.requireRole(principal, name, 'read');
    const role = await this.#policy.roleOn(principal, name);
    return { ...(await permissions.findRepository(this.#db, name))!, role };
  }

  async setVisibility(
    principal: Principal,
    name: string,
    visibility: Visibility,
    context: RequestContext = {},
  ) {
    const id = await this.#policy.requireRole(principal, name, 'admin');
    await this.#db.transaction(async (tx) => {
      await permissions.setVisibility(tx, id, visibility);
      await this.#write(tx, principal, context, {
        kind: 'change_repo_visibility',
        repository: name,
        metadata: { visibility },
      });
    });
  }

  async deleteRepository(principal: Principal, name: string, context: RequestContext = {}): Promise<void> {
    await this.#policy.requireRole(principal, name, 'admin');
    await this.#removeRepository(name);
    await this.#audit.write(this.#db, {
      ...this.#who(principal, context),
      kind: 'delete_repo',
      namespace: namespaceOf(name),
      repository: name,
    });
  }

  async listPermissions(principal: Principal, name: string): Promise<PermissionEntry[]> {
    const id = await this.#policy.requireRole(principal, name, 'admin');
    return permissions.listPermissions(this.#db, id);
  }

  /**
   * Grants a role to a user, a robot of the repository's namespace, or a team of its organization.
   * Robots and teams of other namespaces are refused: they must never reach in here.
   */
  async setPermission(
    principal: Principal,
    name: string,
    grantee: { kind: 'account' | 'team'; name: string },
    role: RepositoryRole | null,
    context: RequestContext = {},
  ): Promise<void> {
    const id = await this.#policy.requireRole(principal, name, 'admin');
    const namespace = namespaceOf(name)!;
    await this.#db.transaction(async (tx) => {
      const target = await this.#grantee(tx, namespace, grantee);
      if (role === null) {
        if (!(await permissions.revoke(tx, id, target))) {
          throw notFound(`${grantee.kind} ${grantee.name} has no permission on ${name}`);
        }
      } else {
        await permissions.grant(tx, id, target, role);
      }
      await this.#write(tx, principal, context, {
        kind: role === null ? 'delete_repo_permission' : 'change_repo_permission',
        repository: name,
        target: `${granteeKindOf(grantee)}:${grantee.name}`,
        metadata: { role },
      });
    });
  }

  /**
   * Throws unless the principal administers the namespace: its own user, an organization it
   * administers, or any as a superuser (used by namespace-wide notification routes).
   */
  async requireNamespaceAdmin(principal: Principal, name: string, what: string): Promise<void> {
    await this.#namespaceAdministeredBy(principal, name, this.#db, what);
  }

  /** Throws unless the principal holds `needed` on the repository (used by tag routes). */
  requireRole(principal: Principal, name: string, needed: RepositoryRole): Promise<number> {
    return this.#policy.requireRole(principal, name, needed);
  }

  /** Records a change made elsewhere (a tag restored through the registry) as the principal's. */
  recordChange(
    principal: Principal,
    context: RequestContext,
    entry: Omit<AuditEntry, 'actor'>,
  ): Promise<void> {
    return this.#write(this.#db, principal, context, entry);
  }

  // ── audit log ──────────────────────────────────────────────────────────────────────────────

  /**
   * Superusers read everything; others read what happened in namespaces they administer and in
   * repositories they administer, and must say which.
   */
  async queryAudit(
    principal: Principal,
    filter: AuditQuery,
  ): Promise<{ entries: AuditRecord[]; next?: number }> {
    const self = requireAccount(principal);
    if (!self.superuser) {
      if (filter.repository) {
        await this.#policy.requireRole(principal, filter.repository, 'admin');
      } else if (filter.namespace) {
        await this.#namespaceAdministeredBy(principal, filter.namespace, this.#db);
      } else if (filter.actor !== self.name) {
        throw forbidden(
          'only superusers read the whole audit log: filter by a repository or namespace you administer, or by yourself as actor',
        );
      }
    }
    return this.#audit.query(filter);
  }

  // ── helpers ────────────────────────────────────────────────────────────────────────────────

  async #grantee(
    tx: Queryable,
    namespace: string,
    grantee: { kind: 'account' | 'team'; name: string },
  ): Promise<permissions.Grantee> {
    if (grantee.kind === 'team') {
      const organization = await accounts.findAccount(tx, namespace);
      if (organization?.kind !== 'organization')
        throw invalid(`${namespace} is not an organization: it has no teams`);
      return { teamId: (await teams.requireTeam(tx, organization.id, grantee.name)).id };
    }
    const account = await accounts.requireAccount(tx, grantee.name);
    if (account.kind === 'organization')
      throw invalid(`${grantee.name} is an organization; grant to one of its teams`);
    if (account.kind === 'robot' && splitRobotName(account.name)?.namespace !== namespace) {
      throw invalid(
        `robot ${account.name} belongs to another namespace; only robots of ${namespace} can be granted access here`,
      );
    }
    return { accountId: account.id };
  }

  async #organizationFor(
    principal: Principal,
    name: string,
    needed: 'member' | 'admin',
    q: Queryable = this.#db,
  ) {
    const self = requireAccount(principal);
    const organization = await accounts.findAccount(q, name);
    if (organization?.kind !== 'organization') throw notFound(`organization ${name} does not exist`);
    if (self.superuser) return { organization };
    const { rows } = await q.query<{ role: TeamRole }>(
      `SELECT t.role FROM teams t JOIN team_members m ON m.team_id = t.id WHERE t.organization_id = $1 AND m.account_id = $2`,
      [organization.id, self.id],
    );
    if (rows.length === 0) throw notFound(`organization ${name} does not exist or you are not a member`);
    if (needed === 'admin' && !rows.some((row) => row.role === 'admin')) {
      throw forbidden(`only administrators of ${name} can do this`);
    }
    return { organization };
  }

  /** The user's own namespace, or an organization the principal administers. */
  async #namespaceAdministeredBy(
    principal: Principal,
    name: string,
    q: Queryable,
    what = 'robots',
  ): Promise<Account> {
    const self = requireAccount(principal);
    const namespace = await accounts.findAccount(q, name);
    if (!namespace || namespace.kind === 'robot') throw notFound(`namespace ${name} does not exist`);
    if (namespace.kind === 'user') {
      if (namespace.id !== self.id && !self.superuser)
        throw forbidden(`only ${name} can manage ${name}'s ${what}`);
      return namespace;
    }
    return (await this.#organizationFor(principal, name, 'admin', q)).organization;
  }

  async #keepAnAdmin(tx: Queryable, organizationId: number, leavingTeamId: number): Promise<void> {
    const { rows } = await tx.query<{ n: number }>(
      `SELECT count(DISTINCT m.account_id)::int AS n FROM teams t JOIN team_members m ON m.team_id = t.id
         JOIN accounts a ON a.id = m.account_id
        WHERE t.organization_id = $1 AND t.role = 'admin' AND t.id <> $2 AND a.kind = 'user'`,
      [organizationId, leavingTeamId],
    );
    if (Number(rows[0]!.n) === 0) {
      throw conflict(
        'this would leave the organization without administrators; make another team admin first',
      );
    }
  }

  async #refuseWhileRepositories(tx: Queryable, namespace: string): Promise<void> {
    const { rows } = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM repositories WHERE name LIKE $1 || '/%'`,
      [namespace],
    );
    if (Number(rows[0]!.n) > 0) {
      throw conflict(`${namespace} still has ${rows[0]!.n} repositories; delete them first`);
    }
  }

  #who(principal: Principal, context: RequestContext) {
    return {
      actor: accounts.principalName(principal),
      actorKind: principal.kind === 'anonymous' ? null : accounts.principalKind(principal),
      ip: context.ip ?? null,
    };
  }

  #write(tx: Queryable, principal: Principal, context: RequestContext, entry: Omit<AuditEntry, 'actor'>) {
    return this.#audit.write(tx, {
      ...this.#who(principal, context),
      namespace: entry.namespace ?? (entry.repository ? namespaceOf(entry.repository) : null),
      ...entry,
    });
  }
}

function requireAccount(principal: Principal): Account {
  if (principal.kind !== 'account') throw unauthenticated('sign in first: this needs an account');
  return principal.account;
}

function requireUser(principal: Principal): Account {
  const account = requireAccount(principal);
  if (account.kind !== 'user') throw forbidden('only users can do this, not robot accounts');
  return account;
}

export function requireSuperuser(principal: Principal): void {
  if (!requireAccount(principal).superuser) throw forbidden('only superusers can do this');
}

function checkPassword(password: string): string {
  if (password.length < minimumPasswordLength) {
    throw invalid(`a password needs at least ${minimumPasswordLength} characters`);
  }
  if (password.length > 1024) throw invalid('a password can have at most 1024 characters');
  return password;
}

function parseRobot(fullName: string): { namespace: string; short: string } {
  const parts = splitRobotName(fullName);
  if (!parts) throw invalid(`"${fullName.slice(0, 80)}" is not a robot name (<namespace>+<name>)`);
  return parts;
}

/** How the audit log names a grantee: `user:`, `robot:` or `team:` (robot names carry a `+`). */
function granteeKindOf(grantee: { kind: 'account' | 'team'; name: string }): 'user' | 'robot' | 'team' {
  if (grantee.kind === 'team') return 'team';
  return grantee.name.includes('+') ? 'robot' : 'user';
}

function checkMemberBelongs(member: Account, organization: Account): void {
  if (member.kind === 'organization')
    throw invalid(`${member.name} is an organization and cannot join a team`);
  if (member.kind === 'robot' && member.ownerId !== organization.id) {
    throw invalid(
      `robot ${member.name} belongs to another namespace; only robots of ${organization.name} can join its teams`,
    );
  }
}
