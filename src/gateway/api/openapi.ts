import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

export const apiPrefix = '/api/v1';

/**
 * Collects the API routes' zod schemas into an OpenAPI 3 document (served at /api/v1/openapi.json).
 * Registered before the routes; the registry's /v2 routes follow the OCI spec and are left out.
 */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Slipway API',
        description:
          'Users, organizations, teams, robots, tokens, repositories, permissions, tags, event notifications and the audit log. Authenticate with `Authorization: Bearer slw_…` (a personal or robot token), Basic credentials, or the session cookie from POST /session.',
        version,
      },
      components: {
        securitySchemes: {
          token: { type: 'http', scheme: 'bearer', description: 'a personal or robot token (slw_…)' },
          basic: { type: 'http', scheme: 'basic' },
          session: { type: 'apiKey', in: 'cookie', name: 'slipway_session' },
        },
      },
      security: [{ token: [] }, { basic: [] }, { session: [] }],
    },
    transform: (input) =>
      input.url.startsWith(`${apiPrefix}/`)
        ? jsonSchemaTransform(input)
        : { schema: { ...input.schema, hide: true }, url: input.url },
    transformObject: jsonSchemaTransformObject,
  });
}
