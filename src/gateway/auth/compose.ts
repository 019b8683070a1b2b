import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from '../../db/database.ts';
import { AccessPolicy } from '../../identity/access-policy.ts';
import { AuditLog } from '../../identity/audit.ts';
import { Authenticator } from '../../identity/authenticator.ts';
import { BuildTokens } from '../../identity/build-tokens.ts';
import { LoginThrottle } from '../../identity/login-throttle.ts';
import { IdentityService } from '../../identity/service.ts';
import type { ProxyUpstreams } from '../../mirror/cache/upstreams.ts';
import type { LocalRegistryStore } from '../../registry/local-store.ts';
import { parseRepositoryName } from '../../registry/names.ts';
import { openAccess, type RegistryAccess } from '../../registry/http/access.ts';
import type { Config } from '../config.ts';
import { checkWrite, TokenRegistryAccess, type WriteRefusal } from './registry-access.ts';
import { loadSigningKeys } from './signing-keys.ts';
import { TokenService } from './token-service.ts';

export interface Auth {
  audit: AuditLog;
  policy: AccessPolicy;
  authenticator: Authenticator;
  identity: IdentityService;
  tokens: TokenService;
  /** Credentials for builders: one repository, pull and push, until the build ends. */
  buildTokens: BuildTokens;
  /** What /v2 asks before acting: token authentication, or open access when auth is off. */
  registryAccess: RegistryAccess;
  /** Set when this start created the first superuser with a generated password. */
  firstAdmin?: { name: string; passwordFile: string };
}

export const initialPasswordFile = 'initial-admin-password';

export async function createAuth(
  config: Config,
  db: Database,
  store: LocalRegistryStore,
  upstreams: ProxyUpstreams,
  options: { writeRefusal?: WriteRefusal } = {},
): Promise<Auth> {
  const audit = new AuditLog(db);
  const policy = new AccessPolicy(db, audit, {
    pullPolicyOf: (namespace) => upstreams.get(namespace)?.pull,
  });
  const { loginThrottle } = config.auth;
  const authenticator = new Authenticator(
    db,
    audit,
    new LoginThrottle({
      freeFailures: loginThrottle.freeFailures,
      baseDelaySeconds: loginThrottle.baseDelay,
      maxDelaySeconds: loginThrottle.maxDelay,
    }),
  );
  const identity = new IdentityService({
    db,
    audit,
    policy,
    authenticator,
    removeRepository: (name) => store.deleteRepository(parseRepositoryName(name)),
  });
  const buildTokens = new BuildTokens(db, audit);
  const tokens = new TokenService(
    {
      keys: await loadSigningKeys(config.dataDir, config.auth.signingKeys),
      service: config.auth.service,
      issuer: config.auth.issuer,
      lifetimeSeconds: config.auth.tokenLifetime,
    },
    policy,
  );
  const registryAccess = config.auth.enabled
    ? new TokenRegistryAccess({
        tokens,
        authenticator,
        policy,
        db,
        buildTokenIsLive: (buildId) => buildTokens.isLive(buildId),
        ...(config.auth.realm ? { realm: config.auth.realm } : {}),
        ...(options.writeRefusal ? { writeRefusal: options.writeRefusal } : {}),
      })
    : openAccessBut(options.writeRefusal);
  const auth: Auth = { audit, policy, authenticator, identity, tokens, buildTokens, registryAccess };
  const firstAdmin = await bootstrapSuperuser(config, identity);
  if (firstAdmin) auth.firstAdmin = firstAdmin;
  return auth;
}

/**
 * Without authentication everyone may do everything, except write where `writeRefusal` says no one
 * identified may (a mirror, written by its robot only, so by no anonymous caller).
 */
function openAccessBut(writeRefusal: WriteRefusal | undefined): RegistryAccess {
  if (!writeRefusal) return openAccess;
  return {
    async authorize(request, access) {
      checkWrite(writeRefusal, access, null);
      return openAccess.authorize(request, access);
    },
  };
}

/**
 * The first superuser: from SLIPWAY_ADMIN_USER / SLIPWAY_ADMIN_PASSWORD when no user exists, or,
 * with authentication on and nothing configured, `admin` with a generated password written to a file
 * in the data directory that only the owner can read.
 */
async function bootstrapSuperuser(config: Config, identity: IdentityService): Promise<Auth['firstAdmin']> {
  const { adminUser, adminPassword } = config.auth;
  if (adminUser && adminPassword) {
    await identity.bootstrapSuperuser(adminUser, adminPassword);
    return undefined;
  }
  if (!config.auth.enabled) return undefined;
  const password = randomBytes(18).toString('base64url');
  const created = await identity.bootstrapSuperuser(adminUser ?? 'admin', password);
  if (!created) return undefined;
  const passwordFile = join(config.dataDir, initialPasswordFile);
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  return { name: created.name, passwordFile };
}
