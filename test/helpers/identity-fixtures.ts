import type { Principal } from '../../src/identity/accounts.ts';
import type { RepositoryRole, Visibility } from '../../src/identity/permissions.ts';
import type { TeamRole } from '../../src/identity/teams.ts';
import { adminPassword, adminUser, basic, signIn } from './auth.ts';
import type { TestSlipway } from './slipway.ts';

/** What a registry client logs in with: a user's password, or a robot's name and token. */
export interface Login {
  username: string;
  password: string;
}

/** `user:password`, as skopeo's --creds and ctr's --user take it. */
export const credsOf = (login: Login): string => `${login.username}:${login.password}`;

export const basicOf = (login: Login): string => basic(login.username, login.password);

/**
 * Sets up users, organizations, teams, robots and repositories through the gateway's own
 * IdentityService, as the superuser: the same checked, audited operations the REST API runs.
 */
export class IdentityFixtures {
  readonly slipway: TestSlipway;
  readonly root: Principal;
  readonly rootLogin: Login = { username: adminUser, password: adminPassword };

  private constructor(slipway: TestSlipway, root: Principal) {
    this.slipway = slipway;
    this.root = root;
  }

  static async of(slipway: TestSlipway): Promise<IdentityFixtures> {
    return new IdentityFixtures(slipway, await signIn(slipway, adminUser, adminPassword));
  }

  get #identity() {
    return this.slipway.services.auth.identity;
  }

  async user(name: string, password = `${name}-password-1`): Promise<Login> {
    await this.#identity.createUser(this.root, { name, password });
    return { username: name, password };
  }

  /** An organization whose only administrator is the superuser (its `owners` team). */
  async organization(name: string): Promise<void> {
    await this.#identity.createOrganization(this.root, { name });
  }

  async team(organization: string, team: string, role: TeamRole, members: readonly string[]): Promise<void> {
    await this.#identity.putTeam(this.root, organization, team, { role });
    for (const member of members) await this.#identity.addTeamMember(this.root, organization, team, member);
  }

  /** A robot of a user's or an organization's namespace; logs in as `namespace+short` with its token. */
  async robot(namespace: string, short: string): Promise<Login> {
    const { robot, token } = await this.#identity.createRobot(this.root, namespace, short);
    return { username: robot.name, password: token };
  }

  async repository(name: string, visibility: Visibility = 'private'): Promise<void> {
    await this.#identity.createRepository(this.root, name, visibility);
  }

  async grant(repository: string, grantee: { user: string } | { team: string }, role: RepositoryRole) {
    await this.#identity.setPermission(
      this.root,
      repository,
      'user' in grantee ? { kind: 'account', name: grantee.user } : { kind: 'team', name: grantee.team },
      role,
    );
  }

  async setVisibility(repository: string, visibility: Visibility): Promise<void> {
    await this.#identity.setVisibility(this.root, repository, visibility);
  }

  /** Signs in as the login, for calling the IdentityService as that account. */
  principalOf(login: Login): Promise<Principal> {
    return signIn(this.slipway, login.username, login.password);
  }
}
