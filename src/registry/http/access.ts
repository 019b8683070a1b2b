import type { FastifyRequest } from 'fastify';
import type { RepositoryName } from '../names.ts';
import type { Actor } from '../store.ts';

export type RegistryAction = 'pull' | 'push' | 'delete';

export type AccessRequest =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'repository'; repository: RepositoryName; actions: RegistryAction[] };

/**
 * The seam for authentication and authorisation: every /v2 handler asks it before acting, once the
 * path told it what is addressed. It returns who acts, or throws UNAUTHORIZED / DENIED.
 */
export interface RegistryAccess {
  authorize(request: FastifyRequest, access: AccessRequest): Promise<Actor>;
}

/** No authentication: everyone may do everything. */
export const openAccess: RegistryAccess = {
  async authorize() {
    return { name: null };
  },
};
