import { readdir, readFile } from 'node:fs/promises';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventKinds, eventPayloadSchemas, type EventKind } from '../../src/events/catalog.ts';
import { Outbox } from '../../src/events/outbox.ts';
import { sampleEventFields } from '../../src/events/samples.ts';
import { eventDocFiles, eventDocsDir, schemaFileName } from '../../scripts/generate-event-schemas.ts';

// ajv-formats is CommonJS: its default export arrives as the module object or the plugin itself.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  addFormatsModule) as FormatsPlugin;

const outbox = new Outbox({ registryHost: () => 'registry.example.com' });

function samplePayload(kind: EventKind): Record<string, unknown> {
  const subject = { namespace: 'acme', repository: 'acme/api' };
  return { ...outbox.payload(kind, subject, sampleEventFields(kind)) };
}

async function committedSchema(kind: EventKind): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(eventDocsDir + schemaFileName(kind), 'utf8')) as Record<string, unknown>;
}

describe('docs/events', () => {
  let generated: Map<string, string>;

  beforeAll(async () => {
    generated = await eventDocFiles();
  });

  it('holds exactly the files the generator writes, so none is stale or missing', async () => {
    const committed = (await readdir(eventDocsDir)).sort();
    expect(committed, 'docs/events/ differs from the generator: run `npm run schemas`').toEqual(
      [...generated.keys()].sort(),
    );
    expect(committed).toContain('README.md');
    for (const kind of eventKinds) expect(committed).toContain(`${kind}.v1.schema.json`);
  });

  it('each committed file equals what `npm run schemas` generates from the catalog and samples', async () => {
    for (const [file, text] of generated) {
      const committed = await readFile(eventDocsDir + file, 'utf8').catch(() => '(missing)');
      expect(committed, `docs/events/${file} is out of date: run \`npm run schemas\``).toBe(text);
    }
  });

  it.each(eventKinds)('%s: the schema is draft 2020-12 with $id, title and description', async (kind) => {
    const schema = await committedSchema(kind);
    expect(schema).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: `https://slipway.dev/schemas/events/${kind}.v1.schema.json`,
      type: 'object',
      title: expect.any(String),
      description: expect.stringMatching(/^Sent when /),
    });
    expect(schema).not.toHaveProperty('$ref');
    expect(schema).not.toHaveProperty('additionalProperties');
  });

  it('the README documents the envelope, headers, signature verification and every kind with an example', () => {
    const readme = generated.get('README.md') ?? '';
    for (const header of [
      'webhook-id',
      'webhook-timestamp',
      'webhook-signature',
      'x-slipway-event',
      'x-slipway-event-id',
    ]) {
      expect(readme).toContain(`\`${header}\``);
    }
    expect(readme).toContain('dev.slipway.<kind>');
    expect(readme).toContain("import { Webhook } from 'standardwebhooks';");
    for (const kind of eventKinds) {
      expect(readme).toContain(`\`${kind}\``);
      expect(readme).toContain(`"kind": "${kind}"`);
      expect(readme).toContain(`(${schemaFileName(kind)})`);
    }
  });
});

describe('the committed schemas, checked with ajv', () => {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  const validators = new Map<EventKind, ValidateFunction>();
  const required = new Map<EventKind, string[]>();

  beforeAll(async () => {
    for (const kind of eventKinds) {
      const schema = await committedSchema(kind);
      validators.set(kind, ajv.compile(schema));
      required.set(kind, schema.required as string[]);
    }
  });

  function check(kind: EventKind, payload: unknown): { ajv: boolean; zod: boolean; errors: string } {
    const validate = validators.get(kind)!;
    const ok = validate(payload);
    return {
      ajv: ok,
      zod: eventPayloadSchemas[kind].safeParse(payload).success,
      errors: ajv.errorsText(validate.errors),
    };
  }

  it.each(eventKinds)('%s: the sample payload (and its test-event form) is valid', (kind) => {
    const payload = samplePayload(kind);
    const result = check(kind, payload);
    expect(result.errors).toBe('No errors');
    expect(result).toMatchObject({ ajv: true, zod: true });
    expect(check(kind, { ...payload, test: true })).toMatchObject({ ajv: true, zod: true });
    // A reader of v1 must accept the fields a later v1 adds.
    expect(check(kind, { ...payload, added_later: { any: 'thing' } }).ajv).toBe(true);
  });

  it.each(eventKinds)(
    '%s: a payload missing a field, or with a field of the wrong type, is invalid',
    (kind) => {
      const payload = samplePayload(kind);
      const own = Object.keys(sampleEventFields(kind));
      const mandatory = required.get(kind) ?? [];
      expect(mandatory).toEqual(
        expect.arrayContaining(['id', 'kind', 'version', 'time', 'namespace', 'repository']),
      );
      expect(mandatory.length).toBeGreaterThan(8);
      for (const field of mandatory) {
        const { [field]: _dropped, ...missing } = payload;
        expect(check(kind, missing), `without ${field}`).toMatchObject({ ajv: false, zod: false });
      }
      for (const field of own) {
        const wrong = { ...payload, [field]: typeof payload[field] === 'number' ? 'seven' : 42 };
        expect(check(kind, wrong), `${field}: wrong type`).toMatchObject({ ajv: false, zod: false });
      }
      const other = eventKinds.find((k) => k !== kind)!;
      expect(check(kind, { ...payload, kind: other })).toMatchObject({ ajv: false, zod: false });
      expect(check(kind, { ...payload, id: 'not-a-uuid' })).toMatchObject({ ajv: false, zod: false });
      expect(check(kind, { ...payload, time: 'yesterday' })).toMatchObject({ ajv: false, zod: false });
      expect(check(kind, { ...payload, version: 2 })).toMatchObject({ ajv: false, zod: false });
    },
  );

  it('nested and numeric constraints hold: commit required in trigger metadata, counts non-negative integers', () => {
    const build = samplePayload('build_start');
    const meta = { ...(build.trigger_metadata as Record<string, unknown>) };
    delete meta.commit;
    expect(check('build_start', { ...build, trigger_metadata: meta }).ajv).toBe(false);
    expect(check('build_start', { ...build, trigger_kind: 'bitbucket' }).ajv).toBe(false);
    const mirror = samplePayload('repo_mirror_sync_failed');
    expect(check('repo_mirror_sync_failed', { ...mirror, synced: -1 }).ajv).toBe(false);
    expect(check('repo_mirror_sync_failed', { ...mirror, synced: 1.5 }).ajv).toBe(false);
    expect(check('repo_mirror_sync_failed', { ...mirror, failures: [{ tag: 'x' }] }).ajv).toBe(false);
    expect(check('repo_push', { ...samplePayload('repo_push'), digest: 'not a digest' }).ajv).toBe(false);
  });
});
