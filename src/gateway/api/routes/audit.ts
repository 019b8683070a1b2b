import { z } from 'zod';
import { auditEntryResource, toAuditEntryResource } from '../resources.ts';
import { answers, type ApiRoutes } from '../routes.ts';

/** The audit log, newest first, filtered and paged with `before` (the `next` of the previous page). */
export const auditRoutes: ApiRoutes = async (app, { identity }) => {
  app.get(
    '/audit',
    {
      schema: {
        tags: ['audit'],
        summary:
          'Audit entries, newest first. Superusers read all; others filter by a repository or namespace they administer, or by themselves as actor',
        querystring: z.object({
          repository: z.string().max(255).optional(),
          namespace: z.string().max(255).optional(),
          actor: z.string().max(255).optional(),
          kind: z.string().max(1000).optional().describe('comma-separated kinds, e.g. push_repo,delete_tag'),
          since: z.iso.datetime({ offset: true }).optional(),
          until: z.iso.datetime({ offset: true }).optional(),
          before: z.coerce.number().int().positive().optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: answers({
          200: z.object({ entries: z.array(auditEntryResource), next: z.number().int().optional() }),
        }),
      },
    },
    async (request) => {
      const { repository, namespace, actor, kind, since, until, before, limit } = request.query;
      const page = await identity.queryAudit(request.principal, {
        limit,
        ...(repository ? { repository } : {}),
        ...(namespace ? { namespace } : {}),
        ...(actor ? { actor } : {}),
        ...(kind
          ? {
              kinds: kind
                .split(',')
                .map((k) => k.trim())
                .filter(Boolean),
            }
          : {}),
        ...(since ? { since: new Date(since) } : {}),
        ...(until ? { until: new Date(until) } : {}),
        ...(before ? { before } : {}),
      });
      return {
        entries: page.entries.map(toAuditEntryResource),
        ...(page.next !== undefined ? { next: page.next } : {}),
      };
    },
  );
};
