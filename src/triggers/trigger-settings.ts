import { posix } from 'node:path';
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { splitRobotName } from '../identity/names.ts';
import { cloneUrlProblem } from './custom-git.ts';
import { maxKnownHostsLength, parseKnownHosts } from './known-hosts.ts';
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
  .describe(
    'ARG values, passed to buildah through its environment rather than its command line; like any ARG they are kept in the image history, so use no secrets here',
  );

const tagTemplates = z
  .array(z.string().min(1).max(200).superRefine(refineWith(parseTagTemplate)))
  .min(1)
  .max(maxTagTemplates)
  .describe('tags each build pushes: ${branch}, ${tag}, ${sha}, ${short_sha}, ${date} (UTC yyyymmdd)');

const refFilter = z
  .string()
  .superRefine(refineWith(compileRefFilter))
  .describe('a regular expression over heads/<branch> or tags/<tag>, e.g. "heads/main|tags/v.*"');

const knownHosts = z
  .string()
  .max(maxKnownHostsLength)
  .superRefine(refineWith(parseKnownHosts))
  .transform((text) => text.replace(/\r\n?/g, '\n').trim())
  .describe(
    "the SSH server's host keys, in OpenSSH known_hosts format (as `ssh-keyscan -p PORT HOST` prints them): SSH clones accept only these; without them a new host key is accepted unchecked",
  );

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

const pullRobot = z
  .string()
  .max(200)
  .refine((name) => splitRobotName(name) !== null, {
    error: 'a pull robot is a robot account, named <namespace>+<name>',
  })
  .describe(
    'a robot account (namespace+name) whose read access builds may also pull with, e.g. private base images; never to push. Only administrators of its namespace may name it',
  );

/** Whether a clone URL is cloned over SSH: ssh://… or the scp-like user@host:path. */
export function isSshCloneUrl(url: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  return scheme === undefined ? /^(?:[^@/:]+@)?[^/:]+:.+$/.test(url) : scheme.toLowerCase() === 'ssh';
}

/**
 * Setting up the GitLab project with the user's GitLab API token: the webhook (the trigger's URL, its
 * secret as the secret token, push and tag push events) and, when asked, a read-only deploy key Slipway
 * generates and clones with.
 */
export const gitlabSetupSchema = z
  .strictObject({
    apiUrl: z
      .string()
      .min(1)
      .max(2000)
      .describe('the GitLab instance, e.g. https://gitlab.example.com (a trailing /api/v4 is accepted)'),
    token: z
      .string()
      .min(1)
      .max(1000)
      .describe(
        'a personal, group or project access token with the api scope and the Maintainer role on the project; stored sealed, never shown',
      ),
    project: z
      .union([z.number().int().positive(), z.string().min(1).max(1000)])
      .describe("the project's full path (group/subgroup/app) or numeric ID"),
    deployKey: z
      .boolean()
      .optional()
      .describe(
        'generate a read-only SSH deploy key, add it to the project and clone with it; default: when the trigger clones over SSH (an SSH clone URL, or none) and has no credentials of its own',
      ),
    tlsVerify: z
      .boolean()
      .default(true)
      .describe("whether GitLab checks the TLS certificate of the trigger's webhook URL"),
  })
  .describe('register the webhook (and a deploy key) on the GitLab project with a GitLab API token');

/** A new trigger's settings, defaults filled in. */
export const triggerSettingsSchema = z
  .strictObject({
    provider: z.enum(triggerProviders),
    cloneUrl: cloneUrl
      .optional()
      .describe(
        "what the builder clones; with gitlab it may be left out and is the project's (SSH with a deploy key, else HTTPS)",
      ),
    credentials: cloneCredentials.optional(),
    knownHosts: knownHosts.optional(),
    gitlab: gitlabSetupSchema.optional(),
    refFilter: refFilter.optional(),
    dockerfile: pathInRepository('Dockerfile').default('Dockerfile'),
    context: pathInRepository('build context').default('.'),
    buildArgs: buildArgs.default({}),
    tagTemplates: tagTemplates.default(defaultTagTemplates),
    latestOnDefaultBranch: z.boolean().default(true).describe('also tag latest for the default branch'),
    enabled: z.boolean().default(true),
    pullRobot: pullRobot.nullable().optional(),
  })
  .superRefine((settings, ctx) => {
    const { gitlab } = settings;
    if (!gitlab) {
      if (settings.cloneUrl === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['cloneUrl'],
          message:
            "give the URL to clone (a gitlab trigger set up with gitlab.token may leave it out: it is the project's)",
        });
      }
      return;
    }
    if (settings.provider !== 'gitlab') {
      ctx.addIssue({
        code: 'custom',
        path: ['gitlab'],
        message: `GitLab setup is for gitlab triggers, not ${settings.provider} ones`,
      });
    }
    if (gitlab.deployKey === true && settings.credentials) {
      ctx.addIssue({
        code: 'custom',
        path: ['gitlab', 'deployKey'],
        message:
          'the generated deploy key is what the trigger clones with: leave out credentials, or deployKey',
      });
    }
    if (gitlab.deployKey === true && settings.cloneUrl !== undefined && !isSshCloneUrl(settings.cloneUrl)) {
      ctx.addIssue({
        code: 'custom',
        path: ['gitlab', 'deployKey'],
        message:
          "a deploy key clones over SSH: give the project's SSH clone URL (git@host:group/app.git), or leave cloneUrl out",
      });
    }
  });

export type TriggerSettingsInput = z.input<typeof triggerSettingsSchema>;
export type TriggerSettings = z.output<typeof triggerSettingsSchema>;
export type GitLabSetupSettings = z.output<typeof gitlabSetupSchema>;

/** Whether creating the trigger generates a deploy key for the GitLab project (see gitlabSetupSchema). */
export function wantsGeneratedDeployKey(settings: TriggerSettings): boolean {
  const { gitlab } = settings;
  if (!gitlab) return false;
  if (gitlab.deployKey !== undefined) return gitlab.deployKey;
  if (settings.credentials) return false;
  return settings.cloneUrl === undefined || isSshCloneUrl(settings.cloneUrl);
}

/**
 * A change to a trigger: only what is given changes; `credentials: null`, `knownHosts: null` and
 * `refFilter: null` remove them, `gitlabToken: null` forgets the GitLab API token of a trigger Slipway
 * set up on GitLab.
 */
export const triggerChangesSchema = z.strictObject({
  cloneUrl: cloneUrl.optional(),
  credentials: cloneCredentials.nullable().optional(),
  knownHosts: knownHosts.nullable().optional(),
  refFilter: refFilter.nullable().optional(),
  dockerfile: pathInRepository('Dockerfile').optional(),
  context: pathInRepository('build context').optional(),
  buildArgs: buildArgs.optional(),
  tagTemplates: tagTemplates.optional(),
  latestOnDefaultBranch: z.boolean().optional(),
  enabled: z.boolean().optional(),
  pullRobot: pullRobot.nullable().optional().describe('a robot account (namespace+name), or null for none'),
  gitlabToken: z
    .string()
    .min(1)
    .max(1000)
    .nullable()
    .optional()
    .describe(
      'for a trigger set up on GitLab: a new GitLab API token (stored sealed, never shown), or null to forget it; without one Slipway leaves the project alone when the secret is replaced or the trigger deleted',
    ),
});

export type TriggerChanges = z.output<typeof triggerChangesSchema>;
