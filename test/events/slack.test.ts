import { describe, expect, it } from 'vitest';
import {
  eventKinds,
  eventPayloadSchemas,
  type EventFields,
  type EventKind,
  type EventPayload,
} from '../../src/events/catalog.ts';
import { Outbox, type EventSubject } from '../../src/events/outbox.ts';
import { sampleEventFields } from '../../src/events/samples.ts';
import { outcomeColors, outcomeOf, slackMessage, type SlackMessage } from '../../src/events/slack.ts';
import {
  blockKitProblems,
  buttonUrlsOf,
  mrkdwnProblem,
  slackMessageSchema,
  textsOf,
  type ValidMessage,
} from '../helpers/block-kit.ts';

const outbox = new Outbox({ registryHost: () => 'registry.example.com' });
const acmeApi: EventSubject = { namespace: 'acme', repository: 'acme/api' };

function payloadOf<K extends EventKind>(
  kind: K,
  fields: Partial<EventFields<K>> = {},
  extra: { test?: boolean; subject?: EventSubject } = {},
): EventPayload<K> {
  const all = { ...sampleEventFields(kind), ...fields } as EventFields<K>;
  return outbox.payload(kind, extra.subject ?? acmeApi, all, { test: extra.test ?? false });
}

/** The message for `payload`, which must be valid Block Kit (the problems are the failure message). */
function render(payload: EventPayload, options: { publicUrl?: string } = {}): ValidMessage {
  const message: SlackMessage = slackMessage(payload, options);
  expect(blockKitProblems(message)).toEqual([]);
  return slackMessageSchema.parse(message);
}

/** Everything a person reads, joined. */
function visible(message: ValidMessage): string {
  return textsOf(message)
    .map((t) => t.text)
    .join('\n');
}

function headerOf(message: ValidMessage): string {
  const header = message.blocks.find((b) => b.type === 'header');
  if (header?.type !== 'header') throw new Error('no header block');
  return header.text.text;
}

function colorOf(message: ValidMessage): string | undefined {
  return message.attachments?.[0]?.color;
}

const successKinds = ['repo_push', 'build_success', 'repo_mirror_sync_success'] as const;
const failureKinds = ['build_failure', 'repo_mirror_sync_failed', 'subscription_disabled'] as const;

describe('the Block Kit validator', () => {
  const valid = {
    text: 'hello',
    blocks: [{ type: 'header', block_id: 'h', text: { type: 'plain_text', text: 'Hi' } }],
    attachments: [
      {
        color: '#2eb67d',
        blocks: [
          { type: 'section', block_id: 's', text: { type: 'mrkdwn', text: '<https://x.example|x> &amp;' } },
        ],
      },
    ],
  };

  function withSection(section: Record<string, unknown>) {
    return { ...valid, blocks: [...valid.blocks, { type: 'section', block_id: 'x', ...section }] };
  }

  it('accepts a well-formed message', () => {
    expect(blockKitProblems(valid)).toEqual([]);
  });

  it.each([
    [
      'a header over 150 characters',
      { ...valid, blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] },
    ],
    ['a mrkdwn header', { ...valid, blocks: [{ type: 'header', text: { type: 'mrkdwn', text: 'h' } }] }],
    ['section text over 3000', withSection({ text: { type: 'mrkdwn', text: 's'.repeat(3001) } })],
    [
      'eleven fields',
      withSection({ fields: Array.from({ length: 11 }, () => ({ type: 'mrkdwn', text: 'f' })) }),
    ],
    ['a field over 2000', withSection({ fields: [{ type: 'mrkdwn', text: 'f'.repeat(2001) }] })],
    ['a section with neither text nor fields', withSection({})],
    ['a channel mention', withSection({ text: { type: 'mrkdwn', text: 'hey <!channel>' } })],
    ['a bare <', withSection({ text: { type: 'mrkdwn', text: 'a < b' } })],
    ['a bare &', withSection({ text: { type: 'mrkdwn', text: 'R&D' } })],
    [
      'an unescaped > in a link label',
      withSection({ text: { type: 'mrkdwn', text: '<https://x.example|a>b>' } }),
    ],
    [
      'a relative button URL',
      {
        ...valid,
        blocks: [
          {
            type: 'actions',
            elements: [
              {
                type: 'button',
                action_id: 'a',
                text: { type: 'plain_text', text: 'Log' },
                url: '/api/v1/builds/1/logs',
              },
            ],
          },
        ],
      },
    ],
    [
      'a button text over 75',
      {
        ...valid,
        blocks: [
          {
            type: 'actions',
            elements: [
              {
                type: 'button',
                action_id: 'a',
                text: { type: 'plain_text', text: 'b'.repeat(76) },
                url: 'https://x.example',
              },
            ],
          },
        ],
      },
    ],
    [
      'eleven context elements',
      {
        ...valid,
        blocks: [
          { type: 'context', elements: Array.from({ length: 11 }, () => ({ type: 'mrkdwn', text: 'c' })) },
        ],
      },
    ],
    ['a duplicate block_id', { ...valid, blocks: [...valid.blocks, { type: 'divider', block_id: 's' }] }],
    ['51 blocks', { ...valid, blocks: Array.from({ length: 51 }, () => ({ type: 'divider' })) }],
    ['an unknown block type', { ...valid, blocks: [{ type: 'video' }] }],
    ['a colour that is not one', { ...valid, attachments: [{ color: 'green', blocks: [] }] }],
  ])('rejects %s', (_name, message) => {
    expect(blockKitProblems(message)).not.toEqual([]);
  });
});

describe('Slack messages of the sample events', () => {
  it.each(eventKinds)('%s: the sample is a valid event and renders valid, escaped Block Kit', (kind) => {
    const payload = payloadOf(kind);
    expect(eventPayloadSchemas[kind].safeParse(payload).success).toBe(true);
    const message = render(payload);
    for (const t of textsOf(message).filter((t) => t.type === 'mrkdwn'))
      expect(mrkdwnProblem(t.text)).toBeNull();
    // Designed for people: no JSON dump of the payload.
    expect(JSON.stringify(message)).not.toContain('\\"kind\\"');
    expect(visible(message)).not.toContain(payload.kind);
  });

  it.each(eventKinds)('%s: colour and emoji follow the outcome', (kind) => {
    const message = render(payloadOf(kind));
    const outcome = outcomeOf(kind);
    expect(colorOf(message)).toBe(outcomeColors[outcome]);
    const emoji = headerOf(message).split(' ', 1)[0];
    if (outcome === 'success') expect(['📦', '✅']).toContain(emoji);
    if (outcome === 'failure') expect(['❌', '⚠️']).toContain(emoji);
    if (outcome === 'info') expect(['❌', '✅', '⚠️']).not.toContain(emoji);
    expect(message.text.startsWith(emoji ?? '?')).toBe(true);
  });

  it('gives successes green, failures red and the rest a neutral colour', () => {
    for (const kind of successKinds) expect(colorOf(render(payloadOf(kind)))).toBe('#2eb67d');
    for (const kind of failureKinds) expect(colorOf(render(payloadOf(kind)))).toBe('#e01e5a');
    for (const kind of ['build_queued', 'build_start', 'build_cancelled', 'repo_tag_deleted'] as const) {
      expect(colorOf(render(payloadOf(kind)))).toBe(outcomeColors.info);
    }
    expect(new Set(Object.values(outcomeColors)).size).toBe(3);
  });

  it('repo_push: repository, tags, short digest, pusher and a pull command', () => {
    const digest = 'sha256:' + 'ab12'.repeat(16);
    const message = render(payloadOf('repo_push', { updated_tags: ['latest', 'v1.4.2'], digest }));
    const text = visible(message);
    expect(headerOf(message)).toContain('acme/api');
    expect(text).toContain('`latest`');
    expect(text).toContain('`v1.4.2`');
    expect(text).toContain('`sha256:ab12ab12ab12`');
    expect(text).not.toContain(digest);
    expect(text).toContain('jdoe');
    expect(text).toContain('OCI image manifest');
    expect(text).toContain('docker pull registry.example.com/acme/api:latest');
  });

  it('repo_push without tags pulls by digest; an anonymous pusher is named so', () => {
    const message = render(payloadOf('repo_push', { updated_tags: [], pusher: null }));
    const text = visible(message);
    expect(text).toContain(
      `docker pull registry.example.com/acme/api@${sampleEventFields('repo_push').digest}`,
    );
    expect(text).toContain('_anonymous_');
  });

  it('repo_tag_deleted: the deleted tags, the digest and who', () => {
    const message = render(payloadOf('repo_tag_deleted', { deleted_tags: ['old', 'rc-1'] }));
    const text = visible(message);
    expect(headerOf(message)).toContain('2 tags deleted from acme/api');
    expect(text).toContain('`old`, `rc-1`');
    expect(text).toContain('`sha256:1a2b3c4d5e6f`');
    expect(text).toContain('acme+ci');
  });

  it.each(['build_queued', 'build_start', 'build_success', 'build_failure', 'build_cancelled'] as const)(
    '%s: short sha linked to the commit, branch, author, tags and a button to the log',
    (kind) => {
      const payload = payloadOf(kind);
      const message = render(payload);
      const text = visible(message);
      expect(headerOf(message)).toMatch(
        /^\S+ Build (queued|started|succeeded|failed|cancelled) for acme\/api \[1c002dd\]$/,
      );
      expect(text).toContain(
        '<https://github.com/acme/api/commit/1c002dd5e2b9a7f1d0c3b4a5e6f7a8b9c0d1e2f3|1c002dd>',
      );
      expect(text).toContain('*Branch*\n`main`');
      expect(text).toContain('<https://github.com/jdoe|jdoe>');
      expect(text).toContain('`main`, `latest`');
      expect(text).toContain('Bump dependencies and rebuild on Node 24');
      expect(buttonUrlsOf(message)).toEqual([`https://registry.example.com${payload.log_url}`]);
    },
  );

  it('build_success shows the digest; build_failure the error and a danger button', () => {
    expect(visible(render(payloadOf('build_success')))).toContain('`sha256:1a2b3c4d5e6f`');
    const failure = render(payloadOf('build_failure', { error_message: 'RUN make: exit status 2' }));
    expect(visible(failure)).toContain('```RUN make: exit status 2```');
    const button = failure.attachments?.[0]?.blocks.find((b) => b.type === 'actions');
    expect(button?.type === 'actions' && button.elements[0]?.style).toBe('danger');
  });

  it('a commit without a URL is shown unlinked; a git tag ref is named as such', () => {
    const fields = sampleEventFields('build_start');
    const meta = { commit: fields.trigger_metadata!.commit, ref: 'refs/tags/v2.0.0' };
    const text = visible(render(payloadOf('build_start', { trigger_metadata: meta })));
    expect(text).toContain('*Commit*\n`1c002dd`');
    expect(text).toContain('*Git tag*\n`v2.0.0`');
    expect(text).not.toContain('github.com');
  });

  it('a manual build without trigger metadata still renders', () => {
    const message = render(
      payloadOf('build_queued', { trigger_kind: 'manual', trigger_id: null, trigger_metadata: undefined }),
    );
    expect(visible(message)).toContain('*Trigger*\nManual');
    expect(visible(message)).not.toContain('*Commit*');
  });

  it('the log link uses the public URL when given, an absolute log URL as is, and text without a host', () => {
    const payload = payloadOf('build_start');
    const viaPublic = render(payload, { publicUrl: 'http://localhost:5000' });
    expect(buttonUrlsOf(viaPublic)).toEqual([`http://localhost:5000${payload.log_url}`]);
    const absolute = render(payloadOf('build_start', { log_url: 'https://ci.example.com/logs/1?a=1&b=2' }));
    expect(buttonUrlsOf(absolute)).toEqual(['https://ci.example.com/logs/1?a=1&b=2']);
    const noHost = render(payloadOf('build_start', {}, { subject: { namespace: 'acme', repository: null } }));
    expect(buttonUrlsOf(noHost)).toEqual([]);
    expect(visible(noHost)).toContain(`Build log: \`${payload.log_url}\``);
  });

  it('mirror syncs: upstream, tag filter, message, counts and the first failures', () => {
    const started = visible(render(payloadOf('repo_mirror_sync_started')));
    expect(started).toContain('`docker.io/library/nginx`');
    expect(started).toContain('`1.27*`, `stable`');
    expect(started).not.toContain('*Synced*');
    const failed = render(payloadOf('repo_mirror_sync_failed'));
    const text = visible(failed);
    expect(headerOf(failed)).toContain('Mirror sync failed for acme/api');
    expect(text).toContain('Partial sync of docker.io/library/nginx: 2 of 18 tags failed');
    expect(text).toContain('*Synced*\n4');
    expect(text).toContain('*Up to date*\n12');
    expect(text).toContain('*Failed*\n2');
    expect(text).toContain('• `1.27.1-alpine`: upstream answered 429 Too Many Requests');
    const many = Array.from({ length: 40 }, (_, i) => ({ tag: `t${i}`, error: `boom ${i}` }));
    const manyText = visible(render(payloadOf('repo_mirror_sync_failed', { failed: 40, failures: many })));
    expect(manyText).toContain('*Failures* (first 5 of 40)');
    expect(manyText).toContain('`t4`: boom 4');
    expect(manyText).not.toContain('`t5`');
  });

  it('subscription_disabled: title and reason, for a repository or a whole namespace', () => {
    const message = render(payloadOf('subscription_disabled'));
    expect(headerOf(message)).toContain('Event subscription disabled for acme/api');
    expect(visible(message)).toContain('*Deploy on push* no longer receives events.');
    expect(visible(message)).toContain('Disabled after 10 failed deliveries in a row');
    const ns = render(
      payloadOf('subscription_disabled', {}, { subject: { namespace: 'acme', repository: null } }),
    );
    expect(headerOf(ns)).toContain('disabled for acme');
  });

  it.each(eventKinds)('%s: a test event is visibly marked as a test, a real one is not', (kind) => {
    const test = render(payloadOf(kind, {}, { test: true }));
    expect(headerOf(test)).toContain('[Test]');
    expect(test.text).toContain('[Test]');
    expect(visible(test)).toContain('*This is a test event*');
    const real = render(payloadOf(kind));
    expect(visible(real)).not.toMatch(/test event|\[Test\]/);
  });
});

describe('Slack messages of hostile or oversized events', () => {
  const evil = '<!channel> <http://evil.example|click> & <@U123> <#C42> a > b';
  const longTag = 'x'.repeat(290) + '<!here>';

  /** No `<` that Slack would act on may come from user input (the validator also checks every text). */
  function expectNoInjection(message: ValidMessage): void {
    const json = JSON.stringify(textsOf(message).filter((t) => t.type === 'mrkdwn'));
    for (const bad of ['<!channel>', '<!here>', '<http://evil', '<@U123>', '<#C42>'])
      expect(json).not.toContain(bad);
    for (const t of textsOf(message)) if (t.type === 'mrkdwn') expect(mrkdwnProblem(t.text)).toBeNull();
  }

  it('a push of 500 tags of 300 characters stays within limits and says how many more', () => {
    const tags = Array.from({ length: 500 }, (_, i) => `${i}-${longTag}`);
    const message = render(payloadOf('repo_push', { updated_tags: tags, pusher: evil }));
    expectNoInjection(message);
    const text = visible(message);
    expect(text).toContain('and 490 more');
    expect(text).toContain('&lt;!channel&gt; &lt;http://evil.example|click&gt; &amp;');
    expect(text).toContain('…');
    // The pull command falls back to the digest when no tag is a plain one.
    expect(text).toContain('@sha256:');
  });

  it('commit messages, authors, refs and errors with mentions, links and & are escaped', () => {
    const meta = {
      commit: 'deadbeef'.repeat(5),
      ref: `refs/heads/${evil}`,
      commit_info: {
        url: 'https://github.com/acme/api/commit/x?q=<b>|y&z',
        message: `${evil}\nsecond line with <!everyone>`,
        author: { username: evil, url: 'javascript:alert(1)' },
      },
    };
    for (const kind of ['build_start', 'build_failure'] as const) {
      const message = render(
        payloadOf(kind, {
          trigger_metadata: meta,
          docker_tags: [evil],
          build_name: evil,
          error_message: evil.repeat(500),
        } as Partial<EventFields<typeof kind>>),
      );
      expectNoInjection(message);
      const text = visible(message);
      expect(text).toContain('&lt;!channel&gt;');
      expect(text).not.toContain('<!everyone>');
      expect(text).not.toContain('second line');
      expect(text).not.toContain('javascript:');
      expect(text).toContain('<https://github.com/acme/api/commit/x?q=%3Cb%3E%7Cy&amp;z|deadbee>');
    }
  });

  it('a log URL that is not http(s) gets no button', () => {
    const message = render(payloadOf('build_failure', { log_url: 'javascript:alert(1)' }));
    expect(buttonUrlsOf(message)).toEqual([]);
  });

  it('mirrors with a thousand hostile failures, and disabled subscriptions with hostile reasons', () => {
    const failures = Array.from({ length: 1000 }, (_, i) => ({
      tag: `${i}${longTag}`,
      error: evil.repeat(50),
    }));
    const mirror = render(
      payloadOf('repo_mirror_sync_failed', {
        failures,
        failed: 1000,
        upstream: evil,
        tag_filter: Array.from({ length: 100 }, () => evil),
        message: evil.repeat(100),
      }),
    );
    expectNoInjection(mirror);
    expect(visible(mirror)).toContain('(first 5 of 1000)');
    const disabled = render(
      payloadOf('subscription_disabled', { title: evil.repeat(20), reason: evil.repeat(200) }),
    );
    expectNoInjection(disabled);
  });

  it('random strings of markup characters, surrogate pairs and great lengths never break a message', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const alphabet = [
      '<',
      '>',
      '&',
      '|',
      '*',
      '_',
      '~',
      '`',
      '!',
      '@',
      '#',
      'a',
      ' ',
      '\n',
      '😀',
      'é',
      '&amp;',
      '<!channel>',
    ];
    const nasty = () =>
      Array.from(
        { length: Math.floor(random() * 4000) },
        () => alphabet[Math.floor(random() * alphabet.length)],
      ).join('');
    for (let round = 0; round < 30; round++) {
      for (const kind of eventKinds) {
        const fields = mutateStrings(sampleEventFields(kind), nasty);
        const message = render(
          outbox.payload(kind, acmeApi, fields as EventFields<typeof kind>, { test: round % 2 === 0 }),
        );
        expectNoInjection(message);
      }
    }
  });
});

/** A copy of `value` with every string replaced by `next()`, digests and ids included. */
function mutateStrings(value: unknown, next: () => string): unknown {
  if (typeof value === 'string') return next();
  if (Array.isArray(value)) return value.map((v) => mutateStrings(v, next));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, k === 'trigger_kind' ? v : mutateStrings(v, next)]),
    );
  }
  return value;
}
