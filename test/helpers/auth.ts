import type { Account, Principal } from '../../src/identity/accounts.ts';
import type { TestSlipway } from './slipway.ts';
import { startSlipway, type TestSlipwayOptions } from './slipway.ts';

export const adminUser = 'root';
export const adminPassword = 'root-password-1';

/** A gateway with authentication on and `root` as its first superuser. */
export function startSecuredSlipway(options: TestSlipwayOptions = {}): Promise<TestSlipway> {
  return startSlipway({
    ...options,
    config: {
      ...options.config,
      auth: { enabled: true, adminUser, adminPassword, ...options.config?.auth },
    },
  });
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Signs in through the gateway's own authenticator, as a request with these credentials would. */
export async function signIn(slipway: TestSlipway, username: string, password: string): Promise<Principal> {
  return slipway.services.auth.authenticator.authenticate(username, password);
}

export function asAccount(principal: Principal): Account {
  if (principal.kind !== 'account') throw new Error('expected an account');
  return principal.account;
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
}

/** GET /v2/auth as docker does: Basic credentials (or none) and scopes. */
export async function fetchToken(
  slipway: TestSlipway,
  scopes: string[],
  authorization?: string,
): Promise<{
  status: number;
  body: TokenResponse & { errors?: Array<{ code: string; message: string }> };
  headers: Headers;
}> {
  const query = new URLSearchParams({ service: 'slipway' });
  for (const scope of scopes) query.append('scope', scope);
  const response = await fetch(`${slipway.url}/v2/auth?${query}`, {
    headers: authorization ? { Authorization: authorization } : {},
  });
  return { status: response.status, body: (await response.json()) as never, headers: response.headers };
}

/** The `access` claim of a registry token (read without verifying: the test checks what was issued). */
export function accessOf(token: string): Array<{ type: string; name: string; actions: string[] }> {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as {
    access: Array<{ type: string; name: string; actions: string[] }>;
  };
  return payload.access;
}
