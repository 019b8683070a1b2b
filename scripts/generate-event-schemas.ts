/**
 * Writes `docs/events/`: a JSON Schema (draft 2020-12) per event kind, generated from the zod schemas
 * in `src/events/catalog.ts`, and a README with the envelope, each kind's fields, delivery headers,
 * signature verification and an example payload per kind. Run with `npm run schemas`; a test fails
 * when the committed files differ from what this writes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { z } from 'zod';
import { eventKinds, eventPayloadSchemas, payloadVersion, type EventKind } from '../src/events/catalog.ts';
import { Outbox, type EventSubject } from '../src/events/outbox.ts';
import { sampleEventFields } from '../src/events/samples.ts';

export const eventDocsDir = fileURLToPath(new URL('../docs/events/', import.meta.url));

const schemaBase = 'https://slipway.dev/schemas/events/';

export function schemaFileName(kind: EventKind): string {
  return `${kind}.v${payloadVersion}.schema.json`;
}

/** When each event is sent, for the schema's description and the README. */
const kindDescriptions: Record<EventKind, string> = {
  repo_push:
    'Sent when tags move to a manifest: a push by tag, or a tag moved to a manifest already stored. ' +
    'One event per change, listing every tag that now points at the manifest.',
  repo_tag_deleted:
    'Sent when tags are deleted from a repository, listing the tags and the digest they pointed at.',
  build_queued: 'Sent when a build is queued, by a git push that matched a trigger or by hand.',
  build_start: 'Sent when a builder picks the build up and starts it.',
  build_success: 'Sent when a build has pushed its image, with the digest pushed.',
  build_failure: 'Sent when a build fails, with why.',
  build_cancelled: 'Sent when a build is cancelled before it finished.',
  repo_mirror_sync_started: 'Sent when a scheduled or requested mirror sync starts.',
  repo_mirror_sync_success: 'Sent when a mirror sync has synced every tag that matched its filter.',
  repo_mirror_sync_failed:
    'Sent when a mirror sync failed as a whole, or for some tags (`failures` lists which and why).',
  subscription_disabled:
    'Sent when Slipway stops delivering to a subscription because its deliveries kept failing; ' +
    'subscribe to it to hear of a broken endpoint.',
};

type JsonSchema = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  format?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  $defs?: Record<string, JsonSchema>;
  [key: string]: unknown;
};

/** The JSON Schema of one kind: the zod schema, as a root object with `$id`, title and description. */
export function eventJsonSchema(kind: EventKind): JsonSchema {
  // `input`: no `additionalProperties: false`, so a reader of v1 accepts the fields a later v1 adds.
  const generated = z.toJSONSchema(eventPayloadSchemas[kind], { target: 'draft-2020-12', io: 'input' });
  const { $schema, $ref, $defs = {}, ...inline } = generated as JsonSchema;
  const { [kind]: body, ...otherDefs } = $defs;
  if ($ref !== `#/$defs/${kind}` || !body) throw new Error(`unexpected JSON Schema shape for ${kind}`);
  const { title, ...rest } = body;
  return {
    $schema,
    $id: `${schemaBase}${schemaFileName(kind)}`,
    title,
    description: kindDescriptions[kind],
    ...rest,
    ...inline,
    ...(Object.keys(otherDefs).length > 0 ? { $defs: otherDefs } : {}),
  };
}

/** A realistic, fixed payload of `kind` for the README: the sample fields in a full envelope. */
export function examplePayload(kind: EventKind): unknown {
  const outbox = new Outbox({ registryHost: () => 'registry.example.com' });
  const subject: EventSubject = kind.startsWith('repo_mirror_')
    ? { namespace: 'acme', repository: 'acme/nginx' }
    : { namespace: 'acme', repository: 'acme/api' };
  const payload = outbox.payload(kind, subject, sampleEventFields(kind));
  return { ...payload, id: '5b3e1c0a-7d4f-4e2a-9c8b-1f2e3d4c5b6a', time: '2026-08-01T10:00:00Z' };
}

const envelopeFields = [
  'id',
  'kind',
  'version',
  'time',
  'namespace',
  'repository',
  'name',
  'docker_url',
  'test',
];

function typeOf(schema: JsonSchema): string {
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum) return schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? 'any'];
  const named = types.map((t) =>
    t === 'array'
      ? `${schema.items ? typeOf(schema.items) : 'any'}[]`
      : t === 'string' && schema.format
        ? `string (${schema.format})`
        : t,
  );
  return named.join(' \\| ');
}

interface FieldRow {
  path: string;
  type: string;
  required: boolean;
  description: string;
}

/** The fields of an object schema, nested objects and arrays of objects flattened to dotted paths. */
function fieldRows(schema: JsonSchema, prefix = ''): FieldRow[] {
  return Object.entries(schema.properties ?? {}).flatMap(([name, field]) => {
    const path = prefix + name;
    const row = {
      path,
      type: typeOf(field),
      required: schema.required?.includes(name) ?? false,
      description: field.description ?? '',
    };
    const nested =
      field.type === 'array' && field.items?.properties ? fieldRows(field.items, `${path}[].`) : [];
    const inner = field.properties && path.split('.').length < 3 ? fieldRows(field, `${path}.`) : [];
    return [row, ...inner, ...nested];
  });
}

function fieldTable(rows: FieldRow[]): string {
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
  return [
    '| field | type | required | meaning |',
    '| --- | --- | --- | --- |',
    ...rows.map(
      (r) => `| \`${r.path}\` | ${r.type} | ${r.required ? 'yes' : 'no'} | ${cell(r.description)} |`,
    ),
  ].join('\n');
}

function rowsOf(kind: EventKind): FieldRow[] {
  return fieldRows(eventJsonSchema(kind)).filter(
    (r) => !envelopeFields.includes(r.path.split(/[.[]/)[0] ?? ''),
  );
}

/** Kinds documented together, with the fields they all share in one table. */
const families: { title: string; kinds: readonly EventKind[] }[] = [
  { title: 'Builds', kinds: eventKinds.filter((k) => k.startsWith('build_')) },
  { title: 'Mirror syncs', kinds: eventKinds.filter((k) => k.startsWith('repo_mirror_')) },
];

function sameRow(a: FieldRow, b: FieldRow): boolean {
  return (
    a.path === b.path && a.type === b.type && a.required === b.required && a.description === b.description
  );
}

function kindSection(kind: EventKind, shared: FieldRow[] = []): string {
  const schema = eventJsonSchema(kind);
  const own = rowsOf(kind).filter((r) => !shared.some((s) => sameRow(s, r)));
  const intro = `${schema.title}. ${kindDescriptions[kind]} Schema: [\`${schemaFileName(kind)}\`](${schemaFileName(kind)}).`;
  const fields =
    own.length === 0
      ? []
      : [shared.length > 0 ? `Besides those, it carries:\n\n${fieldTable(own)}` : fieldTable(own)];
  const example = '```json\n' + JSON.stringify(examplePayload(kind), null, 2) + '\n```';
  return [`### \`${kind}\``, intro, ...fields, example].join('\n\n');
}

function familySection(title: string, kinds: readonly EventKind[]): string {
  const [first, ...others] = kinds.map(rowsOf);
  const shared = (first ?? []).filter((row) => others.every((rows) => rows.some((r) => sameRow(r, row))));
  const names = kinds.map((k) => `\`${k}\``).join(', ');
  return [
    `### ${title}`,
    `Every one of ${names} carries these fields:`,
    fieldTable(shared),
    ...kinds.map((kind) => kindSection(kind, shared).replace(/^### /, '#### ')),
  ].join('\n\n');
}

function kindSections(): string[] {
  const grouped = new Set(families.flatMap((f) => f.kinds));
  const sections: string[] = [];
  for (const kind of eventKinds) {
    const family = families.find((f) => f.kinds[0] === kind);
    if (family) sections.push(familySection(family.title, family.kinds));
    else if (!grouped.has(kind)) sections.push(kindSection(kind));
  }
  return sections;
}

function readme(): string {
  const envelope = fieldRows(eventJsonSchema('repo_push'))
    .filter((r) => envelopeFields.includes(r.path))
    .map((r) =>
      r.path === 'kind' ? { ...r, type: 'string', description: 'The event kind: one of those below.' } : r,
    );
  const kindRows = eventKinds.map(
    (kind) => `| [\`${kind}\`](#${kind}) | ${kindDescriptions[kind]} | [schema](${schemaFileName(kind)}) |`,
  );
  return [
    '# Events',
    '<!-- Generated by `npm run schemas` from src/events/catalog.ts and src/events/samples.ts: do not edit. -->',
    'Slipway tells subscribers of a namespace or repository what happened in it: pushes, tag deletions, ' +
      'builds and mirror syncs. A webhook subscription receives each event as a JSON body, signed; a Slack ' +
      'subscription receives a message written for people. This page describes the JSON: the envelope every ' +
      `event shares, each kind's fields, the headers of a delivery and how to check its signature. Each kind ` +
      'has a JSON Schema (draft 2020-12) beside this file.',
    '| kind | description | schema |\n| --- | --- | --- |\n' + kindRows.join('\n'),
    '## The envelope',
    'Every event carries these fields, then the fields of its kind.',
    fieldTable(envelope),
    '## Versions',
    `Payloads are at version ${payloadVersion} (the \`version\` field, and the \`.v${payloadVersion}\` in each ` +
      'schema file name). Within a version fields are only ever added, never removed, renamed or given another ' +
      'type, so ignore fields you do not know (the schemas allow them). A change that would break a reader ' +
      'makes a new version, published beside the old one.',
    '## Delivery',
    'Each event goes to each matching subscription as one delivery: a `POST` with `Content-Type: ' +
      'application/json` whose body is the event. A delivery is retried with backoff until the endpoint ' +
      "answers 2xx or its attempts run out; it may arrive more than once, so use `webhook-id` to ignore a repeat, or the event id (the body's `id`, " +
      'also in `x-slipway-event-id`) to ignore an event several of your subscriptions were sent. The headers follow ' +
      '[Standard Webhooks](https://www.standardwebhooks.com/):',
    [
      '| header | value |',
      '| --- | --- |',
      '| `webhook-id` | The delivery id: the same on every retry and replay of the delivery. |',
      '| `webhook-timestamp` | When this attempt was sent, in Unix seconds. |',
      '| `webhook-signature` | `v1,` and the base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64-decoded part of the subscription secret after `whsec_`. A space-separated list when there are several; one match is enough. |',
      '| `x-slipway-event` | The event kind, e.g. `repo_push`. |',
      '| `x-slipway-event-id` | The event id, the same for every subscription the event went to. |',
    ].join('\n'),
    'A subscription in CloudEvents format is sent a structured-mode [CloudEvent](https://cloudevents.io/) ' +
      'instead (`Content-Type: application/cloudevents+json`, signed with the same headers): `specversion` ' +
      '`1.0`, `type` `dev.slipway.<kind>` (e.g. `dev.slipway.repo_push`), `id` and `time` of the event, and ' +
      'the event itself as `data`.',
    '## Verifying a signature',
    'Check the signature over the raw body, before parsing it, and refuse stale timestamps; the ' +
      '[`standardwebhooks`](https://www.npmjs.com/package/standardwebhooks) package does both (it allows five ' +
      "minutes' clock skew):",
    '```js\n' +
      [
        "import { Webhook } from 'standardwebhooks';",
        '',
        '// The subscription secret, whsec_…, as shown when the subscription was created.',
        'const webhook = new Webhook(process.env.SLIPWAY_WEBHOOK_SECRET);',
        '',
        '// rawBody: the request body as received (a string or Buffer); headers: the request headers.',
        'const event = webhook.verify(rawBody, headers); // throws WebhookVerificationError when forged or stale',
        "if (event.kind === 'repo_push') console.log(event.repository, event.updated_tags);",
      ].join('\n') +
      '\n```',
    'Without a library, compute the same HMAC with `node:crypto` and compare it in constant time:',
    '```js\n' +
      [
        "import { createHmac, timingSafeEqual } from 'node:crypto';",
        '',
        'function verify(secret, id, timestamp, rawBody, signatureHeader) {',
        "  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');",
        "  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest();",
        "  return signatureHeader.split(' ').some((s) => {",
        "    const given = Buffer.from(s.replace(/^v1,/, ''), 'base64');",
        "    return s.startsWith('v1,') && given.length === expected.length && timingSafeEqual(given, expected);",
        '  });',
        '}',
      ].join('\n') +
      '\n```',
    '## Kinds',
    'The example payloads are the samples "send a test event" delivers (those also carry `"test": true`).',
    ...kindSections(),
  ].join('\n\n');
}

async function formatted(file: string, text: string): Promise<string> {
  const path = eventDocsDir + file;
  const options = (await prettier.resolveConfig(path)) ?? {};
  return prettier.format(text, { ...options, filepath: path });
}

/** Every file of `docs/events/` by name, formatted as the repository's Prettier settings format it. */
export async function eventDocFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const kind of eventKinds) {
    const file = schemaFileName(kind);
    files.set(file, await formatted(file, JSON.stringify(eventJsonSchema(kind), null, 2)));
  }
  files.set('README.md', await formatted('README.md', readme()));
  return files;
}

async function main(): Promise<void> {
  await mkdir(eventDocsDir, { recursive: true });
  for (const [file, text] of await eventDocFiles()) await writeFile(eventDocsDir + file, text);
  console.log(`wrote ${eventKinds.length} schemas and README.md to docs/events/`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
