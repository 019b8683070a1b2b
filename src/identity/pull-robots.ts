import { ApiError, forbidden, invalid } from '../errors.ts';
import type { Principal } from './accounts.ts';
import { splitRobotName } from './names.ts';
import type { IdentityService } from './service.ts';

/**
 * Throws unless the principal may name `robot` as a pull robot (of a build trigger, or of a build): a
 * robot account of a namespace it administers, as in Quay, so nobody borrows the read access of another
 * namespace's robot. 400 for a name that is no robot's, 403 for a namespace the principal does not
 * administer (whether or not it exists, so that it does not leak), 404 for an unknown robot.
 */
export async function requirePullRobot(
  identity: IdentityService,
  principal: Principal,
  robot: string,
): Promise<void> {
  const parts = splitRobotName(robot);
  if (!parts)
    throw invalid(`"${robot.slice(0, 80)}" is not a robot account: a pull robot is <namespace>+<name>`);
  try {
    await identity.requireNamespaceAdmin(principal, parts.namespace, 'robots');
  } catch (error) {
    const superuser = principal.kind === 'account' && principal.account.superuser;
    if (error instanceof ApiError && (error.status === 403 || (error.status === 404 && !superuser))) {
      throw forbidden(
        `${robot} cannot be a pull robot here: only administrators of ${parts.namespace} may lend its robots' access to builds, and you are not one`,
      );
    }
    throw error;
  }
  await identity.getRobot(principal, robot);
}
