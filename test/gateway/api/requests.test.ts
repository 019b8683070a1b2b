import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, fetchToken, startSecuredSlipway } from '../../helpers/auth.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
  components: { schemas: Record<string, unknown> };
}

describe('REST API: bad input, credentials it refuses, and its OpenAPI document', () => {
  let slipway: TestSlipway;
  let root: ApiCaller;
  const raw = (path: string, init: RequestInit) =>
    fetch(`${slipway.url}/api/v1${path}`, {
      ...init,
      headers: {
        Authorization: basic(adminUser, adminPassword),
        ...(init.headers as Record<string, string>),
      },
    });

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    await root.post('/organizations', { name: 'acme' });
  });
  afterAll(async () => {
    await slipway?.stop();
  });

  it('refuses malformed, oversized and unexpected bodies with a JSON error, changing nothing', async () => {
    const malformed = await raw('/organizations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"name": "half',
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe('SLW_ERR_INVALID');

    const oversized = await raw('/organizations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'bigcorp', email: `${'x'.repeat(100_000)}@example.com` }),
    });
    expect(oversized.status).toBe(413);
    expect((await root.get('/organizations/bigcorp')).status).toBe(404);

    const wrongType = await root.post('/users', { name: 'zed', password: 12345678 });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error?.message).toMatch(/body\/password/);

    const unknownField = await root.patch(`/users/${adminUser}`, { admin: true });
    expect(unknownField.status).toBe(400);
    const role = await root.put('/organizations/acme/teams/ops', { role: 'owner' });
    expect(role.status).toBe(400);
    expect((await root.get<{ teams: unknown[] }>('/organizations/acme/teams')).body.teams).toHaveLength(1);
  });

  it.each([
    ['a parent-directory step', '/repositories/acme/..%2Fescape'],
    ['an upper-case name', '/repositories/acme/App'],
    ['an empty component', '/repositories/acme/a%2F%2Fb'],
    ['a leading dot', '/repositories/acme/.hidden'],
  ])('refuses a repository path with %s', async (_what, path) => {
    const answer = await root.patch(path, { visibility: 'public' });
    expect(answer.status).toBe(400);
    expect(answer.body.error?.code).toBe('SLW_ERR_INVALID');
  });

  it.each([
    ['../etc', 'a path step'],
    ['Acme', 'upper case'],
    ['a', 'a single character'],
    ['x'.repeat(65), 'too long a name'],
  ])('refuses organization name %j (%s)', async (name) => {
    const answer = await root.post('/organizations', { name });
    expect(answer.status).toBe(400);
    expect(answer.body.error?.message).toMatch(/not a valid user or organization name/);
  });

  it('refuses registry tokens, garbage and unknown schemes as API credentials', async () => {
    const registryToken = (await fetchToken(slipway, [], basic(adminUser, adminPassword))).body.token;
    const withJwt = await ApiCaller.as(slipway, `Bearer ${registryToken}`).get('/user');
    expect(withJwt.status).toBe(401);
    expect(withJwt.body.error?.message).toMatch(/registry tokens from \/v2\/auth work only on \/v2/);

    const tampered = await root.post<{ token: string }>('/user/tokens', { name: 'tamper' });
    const flipped = tampered.body.token.slice(0, -1) + (tampered.body.token.endsWith('A') ? 'B' : 'A');
    expect((await ApiCaller.as(slipway, `Bearer ${flipped}`).get('/user')).status).toBe(401);
    expect((await ApiCaller.as(slipway, 'Digest username="root"').get('/user')).status).toBe(401);
    expect((await ApiCaller.as(slipway, undefined).get('/user')).status).toBe(401);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const answer = await root.get('/no/such/thing');
    expect(answer.status).toBe(404);
    expect(answer.body.error).toEqual({
      code: 'SLW_ERR_NOT_FOUND',
      message: 'no API route GET /api/v1/no/such/thing',
    });
  });

  it('serves an OpenAPI 3 document of every API route, without authentication', async () => {
    const response = await fetch(`${slipway.url}/api/v1/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as OpenApiDocument;
    expect(document.openapi).toMatch(/^3\./);
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations).toEqual(
      expect.arrayContaining([
        'POST /api/v1/session',
        'GET /api/v1/user/tokens',
        'PUT /api/v1/organizations/{org}/teams/{team}/members/{member}',
        'POST /api/v1/namespaces/{namespace}/robots/{robot}/regenerate',
        'PUT /api/v1/repositories/{namespace}/{name}/permissions/{kind}/{grantee}',
        'POST /api/v1/repositories/{namespace}/{name}/tags/{tag}/restore',
        'GET /api/v1/audit',
      ]),
    );
    expect(operations.some((operation) => operation.includes('/v2/'))).toBe(false);
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining(['Account', 'Repository', 'Permission', 'Token', 'AuditEntry', 'Error']),
    );
    expect(document.paths['/api/v1/users']!.post!.requestBody).toBeDefined();
  });
});
