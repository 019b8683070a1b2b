import type { Database } from '../db/database.ts';
import { invalid, notFound } from '../errors.ts';
import { parseRepositoryName } from '../registry/names.ts';
import { findAccount } from './accounts.ts';
import type { AuditLog } from './audit.ts';
import {
  buildTokenIsLive,
  deleteBuildToken,
  deleteExpiredBuildTokens,
  upsertBuildToken,
} from './build-token-store.ts';
import { namespaceOf } from './names.ts';
import type { RegistryAction } from './permissions.ts';
import { newToken } from './secrets.ts';

/** All a build token may do, and only on its repository: deleting is never a build's business. */
export const buildTokenActions: readonly RegistryAction[] = ['pull', 'push'];

/** A build runs for hours at most; a token meant to outlive that is a mistake, not a build. */
export const maxBuildTokenLifetimeMs = 24 * 60 * 60 * 1000;

const buildIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The username of a build token, and the actor of everything the build does: `build@<buildId>`.
 * No account can be named so (account names have no `@`), and unlike `:` an `@` survives Basic
 * credentials and `--creds user:token`.
 */
export function buildUsername(buildId: string): string {
  return `build@${buildId}`;
}

export interface BuildTokenRequest {
  /** The build service's id of the build: letters, digits, `.`, `_` and `-`, up to 128. */
  buildId: string;
  /** The one repository the build pushes to, `<namespace>/<name>`; a push creates it when missing. */
  repository: string;
  expiresAt: Date;
  /** The account the build runs for (a trigger's creator), recorded with the token. */
  issuedBy?: string;
  /**
   * A robot account (`namespace+name`) whose read access the build may also pull with, such as its
   * trigger's pull robot for a private base image; never to push or delete. A robot that no longer
   * exists gives the token none: the build's pulls are then refused as they would be without one.
   */
  pullRobot?: string | null;
}

/** Basic credentials for the registry: `docker login -u <username>`, `--creds <username>:<token>`. */
export interface IssuedBuildToken {
  username: string;
  token: string;
  expiresAt: Date;
}

/**
 * Credentials for builders: a token per build that pulls and pushes its one repository until it
 * expires or is revoked, on the registry only (the REST API refuses it), and pulls what its pull
 * robot, if it has one, may read. The build service, not a user, calls this: it decides which build
 * may push where, and with which pull robot.
 */
export class BuildTokens {
  readonly #db: Database;
  readonly #audit: AuditLog;

  constructor(db: Database, audit: AuditLog) {
    this.#db = db;
    this.#audit = audit;
  }

  /**
   * Issues the build's token. Issuing again for the same build (a build claimed anew after its
   * builder vanished) replaces the token: the previous one is refused from then on.
   */
  async issueBuildToken(request: BuildTokenRequest): Promise<IssuedBuildToken> {
    const { buildId, repository, expiresAt } = checkRequest(request);
    return this.#db.transaction(async (tx) => {
      const namespace = await findAccount(tx, namespaceOf(repository)!);
      if (namespace?.kind !== 'user' && namespace?.kind !== 'organization') {
        throw notFound(`namespace ${namespaceOf(repository)} does not exist`);
      }
      const issuer = request.issuedBy === undefined ? null : await findAccount(tx, request.issuedBy);
      if (request.issuedBy !== undefined && !issuer)
        throw notFound(`account ${request.issuedBy} does not exist`);
      const pullRobot = request.pullRobot ? await findAccount(tx, request.pullRobot) : null;
      const pullRobotId = pullRobot?.kind === 'robot' ? pullRobot.id : null;
      const secret = newToken();
      const { replaced } = await upsertBuildToken(
        tx,
        { buildId, repository, expiresAt, issuedBy: issuer?.id ?? null, pullRobotId },
        secret,
      );
      const username = buildUsername(buildId);
      await this.#audit.write(tx, {
        kind: 'issue_build_token',
        actor: issuer?.name ?? null,
        actorKind: issuer?.kind ?? null,
        namespace: namespace.name,
        repository,
        target: username,
        metadata: {
          buildId,
          expiresAt: expiresAt.toISOString(),
          replaced,
          ...(request.pullRobot
            ? { pullRobot: request.pullRobot, pullRobotFound: pullRobotId !== null }
            : {}),
        },
      });
      return { username, token: secret.token, expiresAt };
    });
  }

  /**
   * Revokes the build's token at once, for Basic credentials and for registry tokens issued with it
   * alike; false when the build had none (never issued, or revoked already).
   */
  async revokeBuildToken(buildId: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const repository = await deleteBuildToken(tx, buildId);
      if (repository === null) return false;
      await this.#audit.write(tx, {
        kind: 'revoke_build_token',
        actor: null,
        namespace: namespaceOf(repository),
        repository,
        target: buildUsername(buildId),
        metadata: { buildId },
      });
      return true;
    });
  }

  /** Whether the build's token is neither revoked nor expired. */
  isLive(buildId: string): Promise<boolean> {
    return buildTokenIsLive(this.#db, buildId, new Date());
  }

  /** Deletes expired tokens (refused already) of builds that were never revoked; how many. */
  pruneExpired(now: Date = new Date()): Promise<number> {
    return deleteExpiredBuildTokens(this.#db, now);
  }
}

function checkRequest(request: BuildTokenRequest): BuildTokenRequest {
  if (!buildIdPattern.test(request.buildId)) {
    throw invalid(
      `"${request.buildId.slice(0, 80)}" is not a build id: 1 to 128 letters, digits, . _ or -, starting with a letter or digit`,
    );
  }
  try {
    parseRepositoryName(request.repository);
  } catch (error) {
    throw invalid((error as Error).message);
  }
  if (!namespaceOf(request.repository)) {
    throw invalid(`repository names are <namespace>/<name>, not "${request.repository}"`);
  }
  const lifetime = request.expiresAt.getTime() - Date.now();
  if (!(lifetime > 0)) throw invalid('a build token must expire in the future');
  if (lifetime > maxBuildTokenLifetimeMs) {
    throw invalid(`a build token lives at most ${maxBuildTokenLifetimeMs / 3_600_000} hours`);
  }
  return request;
}
