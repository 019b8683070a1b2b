import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { byteSize, duration } from '../../gateway/config.ts';
import { platformSelectionSchema } from './platform-selector.ts';
import { tagFilterSchema } from './tag-filter.ts';

/*
 * What a mirror is told to do, as the API and `slipway mirror` give it: the upstream repository and
 * how to reach it, which tags and platforms to copy, when, and as which robot. Validated here, at the
 * boundary, so the store only ever holds settings a sync can run with.
 */

/** Every `interval` seconds, or at the times of a five-field cron expression (UTC). */
export type MirrorSchedule = { interval: number } | { cron: string };

export type MirrorState = 'never_run' | 'syncing' | 'success' | 'failed' | 'cancelled';
export const mirrorStates: readonly MirrorState[] = [
  'never_run',
  'syncing',
  'success',
  'failed',
  'cancelled',
];

/** Seconds between syncs when no schedule is given. */
export const defaultIntervalSeconds = 6 * 3600;
export const defaultMaxDeletions = 20;
export const defaultMirrorConcurrency = 4;
const minimumIntervalSeconds = 60;
const maximumConcurrency = 32;

const cronMacros = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/** Why a cron expression cannot schedule a mirror, or null when it can. */
export function cronProblem(expression: string): string | null {
  const text = expression.trim();
  if (text.startsWith('@')) {
    return cronMacros.has(text.toLowerCase())
      ? null
      : `"${text}" is not a cron macro; use one of ${[...cronMacros].join(', ')}`;
  }
  const fields = text.split(/\s+/).filter(Boolean);
  if (fields.length !== 5) {
    return `"${text}" has ${fields.length} ${fields.length === 1 ? 'field' : 'fields'}; a cron expression has 5 (minute hour day-of-month month day-of-week), e.g. "0 3 * * *"`;
  }
  try {
    CronExpressionParser.parse(text, { tz: 'UTC' }).next();
    return null;
  } catch (error) {
    return `"${text}" is not a valid cron expression: ${(error as Error).message}`;
  }
}

const cronExpression = z
  .string({ error: 'expected a cron expression such as "0 3 * * *"' })
  .trim()
  .max(200)
  .superRefine((expression, ctx) => {
    const problem = cronProblem(expression);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const interval = duration.refine((seconds) => seconds >= minimumIntervalSeconds, {
  error: `a mirror syncs at most once a minute: give an interval of at least ${minimumIntervalSeconds}s`,
});

export const mirrorScheduleSchema = z
  .strictObject({
    interval: interval.optional().describe('seconds, or "30m", "6h", "1d"'),
    cron: cronExpression.optional().describe('five fields, in UTC, e.g. "0 3 * * *"'),
  })
  .superRefine((schedule, ctx) => {
    if ((schedule.interval === undefined) === (schedule.cron === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'give either an interval (e.g. "6h") or a cron expression (e.g. "0 3 * * *"), not both',
      });
    }
  })
  .transform((schedule): MirrorSchedule =>
    schedule.cron !== undefined ? { cron: schedule.cron } : { interval: schedule.interval! },
  );

/** The registry's origin: https://registry-1.docker.io/v2/ becomes https://registry-1.docker.io. */
export const upstreamOrigin = z
  .url({ protocol: /^https?$/, error: 'expected the registry origin, e.g. https://registry-1.docker.io' })
  .max(2048)
  .transform((url) => new URL(url).origin);

export const upstreamRepository = z
  .string()
  .max(255)
  .regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/, {
    error: 'expected the repository on the upstream, e.g. library/nginx',
  });

const username = z.string().min(1).max(255);
const password = z.string().min(1).max(4096);
const startAt = z.iso
  .datetime({ offset: true, error: 'expected an ISO 8601 time such as 2025-07-01T03:00:00Z' })
  .transform((text) => new Date(text));
const maxDeletions = z
  .number()
  .int()
  .min(0)
  .max(100_000)
  .describe('the most tags one run may delete; a run that would delete more deletes none');
const concurrency = z.number().int().min(1).max(maximumConcurrency).describe('tags copied at the same time');
const bandwidthLimit = byteSize
  .refine((bytes) => bytes > 0, { error: 'expected a positive number of bytes per second' })
  .describe('bytes per second, e.g. 10485760 or "10MiB"');
const robot = z
  .string()
  .min(1)
  .max(200)
  .describe("a robot of the repository's namespace, as acme+mirror or just mirror");

const upstreamInput = z
  .strictObject({
    url: upstreamOrigin,
    repository: upstreamRepository,
    username: username.optional(),
    password: password.optional().describe('stored sealed; never shown again'),
    tlsVerify: z.boolean().default(true),
  })
  .refine((u) => (u.username === undefined) === (u.password === undefined), {
    error: 'give both username and password, or neither',
  });

/** A new mirror's settings, with every default filled in. */
export const mirrorSettingsSchema = z.strictObject({
  upstream: upstreamInput,
  filter: tagFilterSchema.prefault({}).describe('which tags to copy; every tag when left out'),
  platforms: platformSelectionSchema.default('all'),
  schedule: mirrorScheduleSchema.prefault({ interval: defaultIntervalSeconds }),
  startAt: startAt.nullable().default(null).describe('no sync before this time'),
  enabled: z.boolean().default(true),
  deleteMissing: z
    .boolean()
    .default(false)
    .describe('delete local tags that are gone upstream or no longer selected'),
  maxDeletions: maxDeletions.default(defaultMaxDeletions),
  robot,
  concurrency: concurrency.default(defaultMirrorConcurrency),
  bandwidthLimit: bandwidthLimit.nullable().default(null),
});

export type MirrorSettingsInput = z.input<typeof mirrorSettingsSchema>;

/**
 * A mirror's settings with every default filled in. `robot` is as given: the robot's full name, or
 * its short name within the repository's namespace; `bandwidthLimit` is bytes per second.
 */
export type MirrorSettings = z.output<typeof mirrorSettingsSchema>;

/**
 * A change to a mirror: only what is given changes. `upstream.password: null` removes the
 * credentials (with the username); `startAt: null` and `bandwidthLimit: null` remove those.
 */
export const mirrorChangesSchema = z.strictObject({
  upstream: z
    .strictObject({
      url: upstreamOrigin.optional(),
      repository: upstreamRepository.optional(),
      username: username.nullable().optional(),
      password: password.nullable().optional().describe('null removes the credentials'),
      tlsVerify: z.boolean().optional(),
    })
    .optional(),
  filter: tagFilterSchema.optional(),
  platforms: platformSelectionSchema.optional(),
  schedule: mirrorScheduleSchema.optional(),
  startAt: startAt.nullable().optional(),
  enabled: z.boolean().optional(),
  deleteMissing: z.boolean().optional(),
  maxDeletions: maxDeletions.optional(),
  robot: robot.optional(),
  concurrency: concurrency.optional(),
  bandwidthLimit: bandwidthLimit.nullable().optional(),
});

export type MirrorChanges = z.output<typeof mirrorChangesSchema>;

/**
 * When a mirror should next sync, seen at `now`: an interval runs at once (or at its start time, and
 * every interval after it); a cron expression at its next time after now and after the start time.
 */
export function nextRunAt(schedule: MirrorSchedule, startAt: Date | null, now: Date): Date {
  if ('cron' in schedule) {
    const from = startAt && startAt > now ? new Date(startAt.getTime() - 1) : now;
    return CronExpressionParser.parse(schedule.cron, { tz: 'UTC', currentDate: from }).next().toDate();
  }
  if (!startAt) return now;
  if (startAt >= now) return startAt;
  const periodMs = schedule.interval * 1000;
  const periods = Math.ceil((now.getTime() - startAt.getTime()) / periodMs);
  return new Date(startAt.getTime() + periods * periodMs);
}
