import type { PullPolicy } from '../mirror/cache/upstreams.ts';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';

const durationUnits: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds, given as a number or as "90s", "15m", "24h", "7d". */
export const duration = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value;
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
    if (!match) return value;
    return Number(match[1]) * durationUnits[match[2] ?? 's']!;
  },
  z.number({ error: 'expected a duration such as 30, "90s", "15m", "24h" or "7d"' }).nonnegative(),
);

const byteUnits: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Bytes, given as a number or as "500MiB", "50GiB", "2TB" (KB, MB, GB, TB are powers of 1000). */
export const byteSize = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value;
    const match = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i.exec(value.trim());
    const unit = byteUnits[(match?.[2] ?? 'b').toLowerCase()];
    if (!match || unit === undefined) return value;
    return Math.round(Number(match[1]) * unit);
  },
  z.number({ error: 'expected bytes, e.g. 1073741824, "500MiB", "50GiB" or "2TB"' }).int().nonnegative(),
);

const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:5000');

const s3Schema = z.strictObject({
  bucket: z.string().min(1),
  region: z.string().default('us-east-1'),
  endpoint: z.url().optional(),
  /** Where clients reach the bucket, when the gateway reaches it elsewhere: used for pre-signed URLs. */
  publicEndpoint: z.url().optional(),
  forcePathStyle: z.boolean().default(false),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  prefix: z.string().default(''),
  /** Multipart part size in MiB (S3 requires at least 5). */
  partSizeMiB: z.number().int().min(5).max(5120).default(16),
  /** Seconds a pre-signed blob GET URL stays valid; 0 streams blobs through the gateway. */
  redirectSeconds: z.number().int().nonnegative().default(0),
});

const defaultRetrySchedule = [5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600];

const eventsSchema = z.strictObject({
  /** Deliver events from this process; turn off when `slipway worker` processes deliver them. */
  worker: z.boolean().default(true),
  /** Let subscriptions send to loopback, private and link-local addresses (off: refused, against SSRF). */
  allowPrivateDestinations: z.boolean().default(false),
  /** How long a webhook or Slack endpoint has to answer. */
  timeout: duration.default(10),
  /** The wait before each retry of a failed delivery; as many retries as entries (default: ~1 day in all). */
  retrySchedule: z.array(duration).min(1).default(defaultRetrySchedule),
  /** Each wait is randomly shortened or lengthened by up to this fraction, so retries do not stampede. */
  retryJitter: z.number().min(0).max(1).default(0.2),
  /** A subscription whose deliveries have all failed this many times in a row is disabled. */
  disableAfterDeadDeliveries: z.number().int().positive().default(3),
  /** Deliveries in flight at once, per process. */
  concurrency: z.number().int().positive().default(16),
  /** A delivery whose worker stopped answering (crashed, killed) this long ago is taken over by another. */
  stalledAfter: duration.default(30),
});

const mirrorsSchema = z.strictObject({
  /** Run mirror syncs in this process; turn off when `slipway worker` processes run them. */
  worker: z.boolean().default(true),
  /** Mirror syncs at once, per process. */
  concurrency: z.number().int().positive().default(2),
  /** A run whose worker stopped renewing its lease this long ago is marked failed, and the next run goes ahead. */
  lease: duration.default(60),
  /** A sync asked for that no worker started within this time is marked failed. */
  queueTimeout: duration.default(600),
});

const buildsSchema = z.strictObject({
  /** The longest a build may take from the moment a builder takes it; it then ends `timeout`. */
  timeout: duration
    .refine((seconds) => seconds <= 86400, { error: 'a build may take at most a day (86400s)' })
    .default(3600),
  /** A builder that sends no heartbeat for this long is gone: its build ends `internal_error`. */
  claim: duration.default(60),
  /** A build no builder takes within this time ends `internal_error`, saying to start a builder. */
  queueTimeout: duration.default(3600),
  /** What remote builders (`slipway builder`) authenticate with; without it only the built-in builder runs builds. */
  builderSecret: z.string().min(32).optional(),
  /** Run a builder inside `slipway serve` with buildah and git from the PATH; `auto`: when both are there. */
  localBuilder: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** The local builder's buildah `--isolation` (`oci`, `chroot`, `rootless`) and `--storage-driver`. */
  isolation: z.string().min(1).optional(),
  storageDriver: z.string().min(1).optional(),
  /** Ended builds kept per repository, with their logs: the newest `keep`, none ended more than `maxAge` ago; 0 lifts either limit. */
  retention: z
    .strictObject({ keep: z.number().int().nonnegative().default(100), maxAge: duration.default(90 * 86400) })
    .default({ keep: 100, maxAge: 90 * 86400 }),
});

/** One path component, as a namespace: the upstream's name is where clients find it (`dockerhub/…`). */
const namespaceName = z
  .string()
  .max(64)
  .regex(
    /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/,
    'expected a namespace name: lowercase letters and digits, with . _ or - between them',
  );

export const pullPolicy = z
  .string()
  .regex(/^(anonymous|users|org:[a-z0-9]+(?:[._-][a-z0-9]+)*)$/, {
    error: 'expected anonymous, users or org:<organization>',
  })
  .transform((value) => value as PullPolicy);

/** `tag-glob`, or `repository-glob:tag-glob` with the repository as named on the upstream or under the namespace. */
export const pinPattern = z
  .string()
  .regex(
    /^(?:[^\s:]+:)?[^\s:]+$/,
    'expected a tag glob such as "v*", or "repository:tag" such as "library/nginx:1.*"',
  );

const upstreamSchema = z
  .strictObject({
    /** The namespace clients pull through, e.g. `dockerhub` for `dockerhub/library/nginx`. */
    name: namespaceName,
    /** The registry's origin, e.g. https://registry-1.docker.io. */
    url: z.url({
      protocol: /^https?$/,
      error: 'expected the registry origin, e.g. https://registry-1.docker.io',
    }),
    /** Registry host names routed here by containerd's `?ns=`, e.g. docker.io. */
    hosts: z.array(z.string().min(1).toLowerCase()).default([]),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    tlsVerify: z.boolean().default(true),
    /** How long a tag is trusted before it is revalidated upstream. */
    freshness: duration.default(300),
    /** Serve the cached copy when the upstream is down or rate-limited. */
    staleIfError: z.boolean().default(true),
    /** Serve the cached copy of a tag the upstream no longer has, rather than MANIFEST_UNKNOWN. */
    staleIfDeleted: z.boolean().default(false),
    /** How long an upstream "not found" is remembered. */
    negativeTtl: duration.default(60),
    /** Connections at most to the upstream (and to its token realm and CDN). */
    maxConnections: z.number().int().positive().default(16),
    /** How long to wait for the upstream to start answering a request. */
    timeout: duration.default(30),
    /** Who may pull through it: `anonymous`, `users` (any signed-in account) or `org:<organization>`. */
    pull: pullPolicy.default('users'),
    /** After `failures` failed requests in a row, stop asking for `cooldown`, then try one request. */
    circuitBreaker: z
      .strictObject({
        failures: z.number().int().nonnegative().default(5),
        cooldown: duration.default(30),
      })
      .default({ failures: 5, cooldown: 30 }),
    /** What the cached repositories may hold; beyond it the least recently pulled tags are evicted. */
    storageBudget: byteSize.optional(),
    /** Tags never evicted: tag globs (`v*`), or `repository:tag` globs (`library/nginx:1.*`). */
    pinned: z.array(pinPattern).default([]),
  })
  .refine((u) => (u.username === undefined) === (u.password === undefined), {
    message: 'give both username and password, or neither',
  });

export type UpstreamConfig = z.infer<typeof upstreamSchema>;

const proxySchema = z.strictObject({
  /** How often upstreams over their storage budget are brought back under it; 0 turns eviction off. */
  evictionInterval: duration.default(300),
  /** How long a replica's claim on fetching a blob outlives the replica; renewed every third of it. */
  fillLease: duration.refine((seconds) => seconds > 0, 'expected a duration above 0').default(30),
  upstreams: z
    .array(upstreamSchema)
    .default([])
    .superRefine((upstreams, ctx) => {
      const names = new Set<string>();
      const hosts = new Set<string>();
      upstreams.forEach((upstream, index) => {
        if (names.has(upstream.name)) {
          ctx.addIssue({
            code: 'custom',
            path: [index, 'name'],
            message: `upstream name "${upstream.name}" is used twice`,
          });
        }
        names.add(upstream.name);
        for (const host of upstream.hosts) {
          if (hosts.has(host)) {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'hosts'],
              message: `host "${host}" is routed to two upstreams`,
            });
          }
          hosts.add(host);
        }
      });
    }),
});

export const configSchema = z.strictObject({
  listen: listen.default('0.0.0.0:5000'),
  /** Where clients reach this registry (events' pull URLs, links); by default http://<listen address>. */
  publicUrl: z.url().optional(),
  /** Base64 of 32 random bytes that seals stored secrets; by default a key generated in the data directory. */
  secretKey: z.string().optional(),
  dataDir: z.string().default('./data'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One info line per request (method, URL, status, duration, bytes, client). */
  accessLog: z.boolean().default(false),
  database: z
    .strictObject({
      /** PostgreSQL connection string; without it, PGlite is embedded under the data directory. */
      url: z.string().optional(),
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]*$/, 'expected a lowercase SQL identifier')
        .optional(),
      maxConnections: z.number().int().positive().default(10),
    })
    .default({ maxConnections: 10 }),
  redis: z.strictObject({ url: z.string().optional() }).default({}),
  storage: z
    .strictObject({
      driver: z.enum(['filesystem', 's3']).default('filesystem'),
      /** Filesystem root; defaults to <dataDir>/storage. */
      root: z.string().optional(),
      /**
       * Flush every blob to disk before it becomes visible. Defaults to on with PostgreSQL and off with
       * the embedded database, which itself runs without fsync: durability is only worth its cost when
       * the metadata is durable too.
       */
      syncWrites: z.boolean().optional(),
      s3: s3Schema.optional(),
    })
    .default({ driver: 'filesystem' })
    .refine((s) => s.driver !== 's3' || s.s3 !== undefined, {
      message: 'storage.driver is s3 but storage.s3 (bucket, region, …) is missing',
    }),
  registry: z
    .strictObject({
      maxManifestBytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
      /** How long cached tags, manifests and blob links are trusted before asking the database again. */
      cacheTtl: duration.default(5),
      cacheManifestMiB: z.number().int().positive().default(64),
    })
    .default({ maxManifestBytes: 4 * 1024 * 1024, cacheTtl: 5, cacheManifestMiB: 64 }),
  gc: z
    .strictObject({
      enabled: z.boolean().default(true),
      interval: duration.default(3600),
      untaggedGrace: duration.default(86400),
      blobGrace: duration.default(3600),
      uploadExpiry: duration.default(86400),
    })
    .default({ enabled: true, interval: 3600, untaggedGrace: 86400, blobGrace: 3600, uploadExpiry: 86400 }),
  auth: z
    .strictObject({
      /** Off: no authentication at all on /v2 (a registry on a trusted network, or tests). */
      enabled: z.boolean().default(true),
      /** The `service` of token challenges and the audience of registry tokens. */
      service: z.string().min(1).default('slipway'),
      issuer: z.string().min(1).default('slipway'),
      /** The token endpoint's public URL; by default derived from each request's host. */
      realm: z.url().optional(),
      /** How long a registry token is valid. */
      tokenLifetime: duration.default(300),
      /** PKCS#8 PEM files (EC P-256 or RSA); the first signs, all verify. Default: keys in the data directory. */
      signingKeys: z.array(z.string()).default([]),
      /** The first superuser, created at start when no user exists. */
      adminUser: z.string().optional(),
      adminPassword: z.string().optional(),
      loginThrottle: z
        .strictObject({
          freeFailures: z.number().int().positive().default(5),
          baseDelay: duration.default(1),
          maxDelay: duration.default(300),
        })
        .default({ freeFailures: 5, baseDelay: 1, maxDelay: 300 }),
      /** How long a REST API session (the cookie from POST /api/v1/session) lasts. */
      sessionLifetime: duration.default(12 * 3600),
    })
    .default({
      enabled: true,
      service: 'slipway',
      issuer: 'slipway',
      tokenLifetime: 300,
      signingKeys: [],
      loginThrottle: { freeFailures: 5, baseDelay: 1, maxDelay: 300 },
      sessionLifetime: 12 * 3600,
    }),
  events: eventsSchema.default(eventsSchema.parse({})),
  /** Pull-through caches of upstream registries. */
  proxy: proxySchema.default(proxySchema.parse({})),
  /** Repository mirroring: where and how syncs run. */
  mirrors: mirrorsSchema.default(mirrorsSchema.parse({})),
  /** Git-triggered builds. */
  builds: buildsSchema.default(buildsSchema.parse({})),
  shutdownGrace: duration.default(30),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** A boolean environment variable: `1` or `true`. */
const yes = (value: string): boolean => value === '1' || value === 'true';

/** Environment variables and the config keys they set. */
const environmentKeys: Array<[string, string[], (v: string) => unknown]> = [
  ['SLIPWAY_LISTEN', ['listen'], String],
  ['SLIPWAY_DATA', ['dataDir'], String],
  ['SLIPWAY_LOG_LEVEL', ['logLevel'], String],
  ['SLIPWAY_ACCESS_LOG', ['accessLog'], yes],
  ['DATABASE_URL', ['database', 'url'], String],
  ['SLIPWAY_DATABASE_SCHEMA', ['database', 'schema'], String],
  ['REDIS_URL', ['redis', 'url'], String],
  ['SLIPWAY_PUBLIC_URL', ['publicUrl'], String],
  ['SLIPWAY_SECRET_KEY', ['secretKey'], String],
  ['SLIPWAY_EVENTS_WORKER', ['events', 'worker'], yes],
  ['SLIPWAY_MIRRORS_WORKER', ['mirrors', 'worker'], yes],
  ['SLIPWAY_BUILDER_SECRET', ['builds', 'builderSecret'], String],
  ['SLIPWAY_LOCAL_BUILDER', ['builds', 'localBuilder'], (value) => (value === 'auto' ? value : yes(value))],
  ['SLIPWAY_EVENTS_ALLOW_PRIVATE', ['events', 'allowPrivateDestinations'], yes],
  ['SLIPWAY_STORAGE_DRIVER', ['storage', 'driver'], String],
  ['SLIPWAY_STORAGE_ROOT', ['storage', 'root'], String],
  ['SLIPWAY_STORAGE_SYNC_WRITES', ['storage', 'syncWrites'], yes],
  ['SLIPWAY_S3_BUCKET', ['storage', 's3', 'bucket'], String],
  ['SLIPWAY_S3_REGION', ['storage', 's3', 'region'], String],
  ['SLIPWAY_S3_ENDPOINT', ['storage', 's3', 'endpoint'], String],
  ['SLIPWAY_S3_PUBLIC_ENDPOINT', ['storage', 's3', 'publicEndpoint'], String],
  ['SLIPWAY_S3_FORCE_PATH_STYLE', ['storage', 's3', 'forcePathStyle'], yes],
  ['SLIPWAY_S3_PREFIX', ['storage', 's3', 'prefix'], String],
  ['SLIPWAY_S3_PART_SIZE_MIB', ['storage', 's3', 'partSizeMiB'], Number],
  ['SLIPWAY_S3_REDIRECT_SECONDS', ['storage', 's3', 'redirectSeconds'], Number],
  ['SLIPWAY_GC_ENABLED', ['gc', 'enabled'], yes],
  ['SLIPWAY_AUTH_ENABLED', ['auth', 'enabled'], yes],
  ['SLIPWAY_AUTH_REALM', ['auth', 'realm'], String],
  ['SLIPWAY_AUTH_SERVICE', ['auth', 'service'], String],
  ['SLIPWAY_ADMIN_USER', ['auth', 'adminUser'], String],
  ['SLIPWAY_ADMIN_PASSWORD', ['auth', 'adminPassword'], String],
];

export interface LoadConfigOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Highest precedence: command-line flags. */
  overrides?: ConfigInput;
}

/** Defaults < YAML file < environment < flags. A wrong value fails with the key and what is expected. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  const file = options.file ?? env.SLIPWAY_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
    }
    const parsed: unknown = parseYaml(text);
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`config file ${file} must hold a YAML mapping of settings`);
    }
    fromFile = (parsed ?? {}) as Record<string, unknown>;
  }
  const merged = deepMerge(
    deepMerge(fromFile, fromEnvironment(env)),
    (options.overrides ?? {}) as Record<string, unknown>,
  );
  return parseConfig(merged, file);
}

export function parseConfig(input: unknown, source?: string): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(top level)';
      return `  ${key}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration${source ? ` in ${source}` : ''}:\n${lines.join('\n')}`);
  }
  const config = result.data;
  config.dataDir = resolve(config.dataDir);
  return Object.freeze(config);
}

function fromEnvironment(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, path, convert] of environmentKeys) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let target = out;
    for (const key of path.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
    target[path[path.length - 1]!] = convert(value);
  }
  return out;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      isPlainObject(current) && isPlainObject(value)
        ? deepMerge(current, value)
        : value === undefined
          ? current
          : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
