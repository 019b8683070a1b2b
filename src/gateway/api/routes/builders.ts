import { z } from 'zod';
import type { BuilderOnRoster, HeldBuild } from '../../../builder/builder-roster.ts';
import { requireSuperuser } from '../../../identity/service.ts';
import { answers, type ApiRoutes } from '../routes.ts';
import { buildLogUrl } from './builds.ts';

const timestamp = z.iso.datetime();

const heldBuildResource = z
  .object({
    id: z.string(),
    repository: z.string(),
    phase: z.enum(['cloning', 'building', 'pushing']),
    phaseSince: timestamp.describe('when the build entered its phase'),
    startedAt: timestamp.nullable(),
    claimExpiresAt: timestamp
      .nullable()
      .describe("unless the builder's heartbeat renews the claim first, the build ends after this"),
    logUrl: z.string(),
  })
  .meta({ id: 'BuilderBuild' });

const builderResource = z
  .object({
    name: z.string(),
    state: z
      .enum(['live', 'gone'])
      .describe(
        'gone: it announces itself no more but still holds builds, which end once their claim runs out',
      ),
    executor: z.string().nullable().describe('buildah or docker; null once gone'),
    concurrency: z.number().int().nullable(),
    host: z.string().nullable().describe('the machine it runs on, when it says'),
    pid: z.number().int().nullable(),
    version: z.string().nullable().describe('the Slipway version it runs, when it says'),
    startedAt: timestamp.nullable().describe('when it started taking builds'),
    heartbeatAt: timestamp.nullable().describe('when it last announced itself, when it says'),
    builds: z.array(heldBuildResource).describe('the builds it holds now'),
  })
  .meta({ id: 'Builder' });

/** The builders of the installation and what each is doing: for superusers, who run them. */
export const builderRoutes: ApiRoutes = async (app, { builders, publicUrl }) => {
  const toHeldBuildResource = (build: HeldBuild): z.infer<typeof heldBuildResource> => ({
    id: build.id,
    repository: build.repository,
    phase: build.phase,
    phaseSince: build.phaseSince.toISOString(),
    startedAt: build.startedAt?.toISOString() ?? null,
    claimExpiresAt: build.claimExpiresAt?.toISOString() ?? null,
    logUrl: buildLogUrl(publicUrl(), build.id),
  });

  const toBuilderResource = ({ name, announcement, builds }: BuilderOnRoster) => ({
    name,
    state: announcement ? ('live' as const) : ('gone' as const),
    executor: announcement?.executor ?? null,
    concurrency: announcement?.concurrency ?? null,
    host: announcement?.host ?? null,
    pid: announcement?.pid ?? null,
    version: announcement?.version ?? null,
    startedAt: announcement?.startedAt ?? null,
    heartbeatAt: announcement?.heartbeatAt ?? null,
    builds: builds.map(toHeldBuildResource),
  });

  app.get(
    '/builders',
    {
      schema: {
        tags: ['builds'],
        summary:
          'The builders taking builds now, each with the builds it runs, and the builders gone silent that still hold builds (superusers)',
        response: answers({ 200: z.object({ builders: z.array(builderResource) }) }),
      },
    },
    async (request) => {
      requireSuperuser(request.principal);
      return { builders: (await builders.list()).map(toBuilderResource) };
    },
  );
};
