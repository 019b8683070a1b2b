import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import type { Queryable } from '../db/database.ts';
import type { WorkPhase } from './build-store.ts';
import { liveBuilders, type BuilderAnnouncement } from './builder-presence.ts';

/** A build a builder claimed and has not ended. */
export interface HeldBuild {
  id: string;
  repository: string;
  phase: WorkPhase;
  /** When it entered its phase. */
  phaseSince: Date;
  startedAt: Date | null;
  /** Unless a heartbeat renews the claim first, the build sweeper ends the build after this. */
  claimExpiresAt: Date | null;
}

export interface BuilderOnRoster {
  name: string;
  /** What it announces; null for a builder that holds builds but announces itself no more. */
  announcement: BuilderAnnouncement | null;
  builds: HeldBuild[];
}

/**
 * Who builds: the builders announcing themselves in Redis, each with the builds the database says it
 * holds, and the builders gone silent that still hold builds (until the sweeper ends them).
 */
export class BuilderRoster {
  readonly #db: Queryable;
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: { db: Queryable; redis: Redis; prefix: string }) {
    this.#db = options.db;
    this.#redis = options.redis;
    this.#prefix = options.prefix;
  }

  /** Live builders first, then those gone; each by name. */
  async list(): Promise<BuilderOnRoster[]> {
    const [announcements, held] = await Promise.all([
      liveBuilders(this.#redis, this.#prefix),
      heldBuilds(this.#db),
    ]);
    const live = announcements.map((announcement) => ({
      name: announcement.name,
      announcement,
      builds: held.get(announcement.name) ?? [],
    }));
    const liveNames = new Set(live.map((builder) => builder.name));
    const gone = [...held]
      .filter(([name]) => !liveNames.has(name))
      .map(([name, builds]) => ({ name, announcement: null, builds }))
      .sort((a, b) => a.name.localeCompare(b.name));
    return [...live, ...gone];
  }

  /** `slipway_builders_live` and `slipway_builds_running{builder}`, read when Prometheus scrapes. */
  registerMetrics(registry: Registry): void {
    const redis = this.#redis;
    const prefix = this.#prefix;
    const db = this.#db;
    new Gauge({
      name: 'slipway_builders_live',
      help: 'Builders announcing themselves now',
      registers: [registry],
      // A scrape while Redis is away keeps the last value rather than failing all of /metrics.
      async collect() {
        const builders = await liveBuilders(redis, prefix).catch(() => null);
        if (builders) this.set(builders.length);
      },
    });
    new Gauge({
      name: 'slipway_builds_running',
      help: 'Builds claimed and not ended, by the builder holding them (live or gone)',
      labelNames: ['builder'],
      registers: [registry],
      async collect() {
        const held = await heldBuilds(db).catch(() => null);
        if (!held) return;
        this.reset();
        for (const [builder, builds] of held) this.set({ builder }, builds.length);
      },
    });
  }
}

/** The builds under way that a builder holds, by builder, oldest claim first. */
async function heldBuilds(db: Queryable): Promise<Map<string, HeldBuild[]>> {
  const { rows } = await db.query<{
    id: string;
    repository: string;
    phase: WorkPhase;
    builder: string;
    phase_changed_at: Date;
    started_at: Date | null;
    claim_expires_at: Date | null;
  }>(
    `SELECT b.id, r.name AS repository, b.phase, b.builder, b.phase_changed_at, b.started_at, b.claim_expires_at
       FROM builds b JOIN repositories r ON r.id = b.repository_id
      WHERE b.phase IN ('cloning', 'building', 'pushing') AND b.builder IS NOT NULL
      ORDER BY b.started_at, b.id`,
  );
  const byBuilder = new Map<string, HeldBuild[]>();
  for (const row of rows) {
    const builds = byBuilder.get(row.builder) ?? [];
    builds.push({
      id: row.id,
      repository: row.repository,
      phase: row.phase,
      phaseSince: row.phase_changed_at,
      startedAt: row.started_at,
      claimExpiresAt: row.claim_expires_at,
    });
    byBuilder.set(row.builder, builds);
  }
  return byBuilder;
}
