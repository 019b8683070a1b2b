import { posix } from 'node:path';
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { cloneUrlProblem } from './custom-git.ts';
import { compileRefFilter } from './ref-filter.ts';
import { maxTagTemplates, parseTagTemplate } from './tag-templates.ts';

export const triggerProviders = ['github', 'gitlab', 'custom'] as const;
export type TriggerProvider = (typeof triggerProviders)[number];

/** Tags a build pushes when the trigger names none: the branch or tag, and the short commit SHA. */
export const defaultTagTemplates = ['${branch}', '${tag}', '${short_sha}'];

/** A problem an ApiError-throwing parser found, as a zod issue on the field. */
function refineWith<T>(check: (value: T) => unknown) {
  return (value: T, ctx: z.RefinementCtx) => {
    try {
      check(value);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
    }
  };
}

const cloneUrl = z
  .string()
  .max(2000)
  .superRefine((url, ctx) => {
    const problem = cloneUrlProblem(url);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('what the builder clones: https://, ssh://, git://, file:// or user@host:path');

/** A path inside the cloned repository: relative, and never climbing out of it. */
const pathInRepository = (what: string) =>
  z
    .string()
    .min(1)
    .max(1000)
    .refine((path) => !path.startsWith('/') && !posix.normalize(path).split('/').includes('..'), {
      error: `the ${what} is a path inside the repository, without ".." or a leading "/"`,
    })
    .transform((path) => posix.normalize(path));

const buildArgs = z
  .record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'build argument names are letters, digits and _'),
    z.string().max(10_000),
  )
  .refine((args) => Object.keys(args).length <= 100, { error: 'at most 100 build arguments' })
  .describe("ARG values; they show in the builder's process list, so no secrets here");

const tagTemplates = z
  .array(z.string().min(1).max(200).superRefine(refineWith(parseTagTemplate)))
  .min(1)
  .max(maxTagTemplates)
  .describe('tags each build pushes: ${branch}, ${tag}, ${sha}, ${short_sha}, ${date} (UTC yyyymmdd)');

const refFilter = z
  .string()
  .superRefine(refineWith(compileRefFilter))
  .describe('a regular expression over heads/<branch> or tags/<tag>, e.g. "heads/main|tags/v.*"');

const cloneCredentials = z.union([
  z.strictObject({
    token: z.string().min(1).max(10_000).describe('an access token for HTTPS clones; stored sealed'),
    username: z.string().min(1).max(200).optional().describe("default: the provider's convention"),
  }),
  z.strictObject({
    deployKey: z
      .string()
      .min(1)
      .max(20_000)
      .refine((key) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key), {
        error: 'expected an SSH private key (-----BEGIN OPENSSH PRIVATE KEY----- …)',
      })
      .describe('an SSH private key with read access; stored sealed'),
  }),
]);

/** A new trigger's settings, defaults filled in. */
export const triggerSettingsSchema = z.strictObject({
  provider: z.enum(triggerProviders),
  cloneUrl,
  credentials: cloneCredentials.optional(),
  refFilter: refFilter.optional(),
  dockerfile: pathInRepository('Dockerfile').default('Dockerfile'),
  context: pathInRepository('build context').default('.'),
  buildArgs: buildArgs.default({}),
  tagTemplates: tagTemplates.default(defaultTagTemplates),
  latestOnDefaultBranch: z.boolean().default(true).describe('also tag latest for the default branch'),
  enabled: z.boolean().default(true),
});

export type TriggerSettingsInput = z.input<typeof triggerSettingsSchema>;
export type TriggerSettings = z.output<typeof triggerSettingsSchema>;

/** A change to a trigger: only what is given changes; `credentials: null` and `refFilter: null` remove them. */
export const triggerChangesSchema = z.strictObject({
  cloneUrl: cloneUrl.optional(),
  credentials: cloneCredentials.nullable().optional(),
  refFilter: refFilter.nullable().optional(),
  dockerfile: pathInRepository('Dockerfile').optional(),
  context: pathInRepository('build context').optional(),
  buildArgs: buildArgs.optional(),
  tagTemplates: tagTemplates.optional(),
  latestOnDefaultBranch: z.boolean().optional(),
  enabled: z.boolean().optional(),
});

export type TriggerChanges = z.output<typeof triggerChangesSchema>;
