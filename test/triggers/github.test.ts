import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookAuthError, WebhookPayloadError } from '../../src/triggers/errors.ts';
import {
  decodeGitHubBody,
  parseGitHubEvent,
  signGitHubDelivery,
  verifyGitHubDelivery,
} from '../../src/triggers/github.ts';
import { gitHubPush, zeros } from '../gateway/webhooks/deliveries.ts';

const secret = 'It8sq-trigger-secret';
const mainHead = '3f786850e387550fdab836ed7e6dc881de23001b';
const previous = '89e6c98d92887913cadf06b2adb97f26cde4849b';

/** GitHub's signature: HMAC-SHA256 of the raw body keyed with the secret, hex, behind "sha256=". */
function githubSignature(body: string, key = secret): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

/** A push of `mainHead` to main, as GitHub sends it. */
const pushPayload = (overrides: Record<string, unknown> = {}) => gitHubPush(mainHead, overrides);

async function refusal(promise: Promise<unknown>): Promise<WebhookAuthError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WebhookAuthError);
  return error as WebhookAuthError;
}

describe('verifying a GitHub delivery', () => {
  const body = JSON.stringify(pushPayload());

  it('accepts a body signed the way GitHub signs it, as a Buffer or as text', async () => {
    await expect(
      verifyGitHubDelivery(secret, Buffer.from(body), githubSignature(body)),
    ).resolves.toBeUndefined();
    await expect(verifyGitHubDelivery(secret, body, githubSignature(body))).resolves.toBeUndefined();
  });

  it('checks the signature over the exact bytes received, a leading byte-order mark included', async () => {
    const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]);
    const signature = `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
    await expect(verifyGitHubDelivery(secret, raw, signature)).resolves.toBeUndefined();
  });

  it('signs exactly as GitHub does', async () => {
    expect(await signGitHubDelivery(secret, body)).toBe(githubSignature(body));
  });

  it('refuses a signature made with another secret, with a 401 that says the secrets differ', async () => {
    const error = await refusal(verifyGitHubDelivery(secret, body, githubSignature(body, 'old-secret')));
    expect(error).toMatchObject({
      status: 401,
      code: 'SLW_ERR_WEBHOOK_UNAUTHENTICATED',
      problem: 'mismatch',
    });
    expect(error.message).toContain('X-Hub-Signature-256');
    expect(error.message).toContain('secret');
  });

  it('refuses a body changed after signing', async () => {
    const tampered = body.replace('acme/shop', 'acme/sh0p');
    const error = await refusal(verifyGitHubDelivery(secret, tampered, githubSignature(body)));
    expect(error.problem).toBe('mismatch');
  });

  it('refuses an unsigned delivery, naming the missing header', async () => {
    const error = await refusal(verifyGitHubDelivery(secret, body, undefined));
    expect(error).toMatchObject({ status: 401, problem: 'missing', header: 'X-Hub-Signature-256' });
    expect(error.message).toMatch(/X-Hub-Signature-256 header is missing/);
  });

  it('refuses a header that is not sha256=<64 hex digits>, such as the legacy SHA-1 one', async () => {
    const sha1 = `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`;
    const error = await refusal(verifyGitHubDelivery(secret, body, sha1));
    expect(error.problem).toBe('malformed');
    expect(error.message).toContain('"sha256=" followed by 64 hex digits');
    expect((await refusal(verifyGitHubDelivery(secret, body, ['a', 'b']))).problem).toBe('malformed');
  });

  it('does not echo the expected signature in its message', async () => {
    const error = await refusal(verifyGitHubDelivery(secret, body, githubSignature(body, 'other')));
    expect(error.message).not.toContain(githubSignature(body).slice(7));
  });
});

describe('reading a GitHub delivery', () => {
  it('answers ping with the zen, the hook and the events it is subscribed to', () => {
    const ping = {
      zen: 'Design for failure.',
      hook_id: 502211,
      hook: { type: 'Repository', id: 502211, name: 'web', active: true, events: ['push'], config: {} },
      repository: { full_name: 'acme/shop' },
    };
    expect(parseGitHubEvent('ping', ping)).toEqual({
      kind: 'ping',
      zen: 'Design for failure.',
      hookId: 502211,
      events: ['push'],
    });
  });

  it('turns a push to a branch into a push event', () => {
    const delivery = parseGitHubEvent('push', pushPayload());
    expect(delivery).toEqual({
      kind: 'push',
      event: {
        provider: 'github',
        ref: { kind: 'branch', name: 'main', full: 'refs/heads/main' },
        commit: mainHead,
        before: previous,
        deleted: false,
        cloneUrl: {
          url: 'https://github.com/acme/shop.git',
          http: 'https://github.com/acme/shop.git',
          ssh: 'git@github.com:acme/shop.git',
        },
        repository: 'acme/shop',
        defaultBranch: 'main',
        author: { name: 'danawhit', email: 'dana@acme.example', username: 'danawhit' },
        message: 'Checkout: retry card payments once\n\nThe provider times out under load.',
        compareUrl: 'https://github.com/acme/shop/compare/89e6c98d9288...3f786850e387',
        pushedAt: '2026-12-02T08:14:10.000Z',
      },
    });
  });

  it('keeps the slashes of a branch such as feature/login in its name', () => {
    const delivery = parseGitHubEvent('push', pushPayload({ ref: 'refs/heads/feature/login' }));
    expect(delivery.kind === 'push' && delivery.event.ref).toEqual({
      kind: 'branch',
      name: 'feature/login',
      full: 'refs/heads/feature/login',
    });
  });

  it('builds the tagged commit, not the annotated tag object, for a tag push', () => {
    const tagObject = 'b7e23ec29af22b0b4e41da31e868d57226121c84';
    const delivery = parseGitHubEvent(
      'push',
      pushPayload({ ref: 'refs/tags/v2.3.0', before: zeros, after: tagObject, created: true }),
    );
    expect(delivery.kind).toBe('push');
    if (delivery.kind !== 'push') return;
    expect(delivery.event.ref).toEqual({ kind: 'tag', name: 'v2.3.0', full: 'refs/tags/v2.3.0' });
    expect(delivery.event.commit).toBe(mainHead);
    expect(delivery.event.before).toBeUndefined();
    expect(delivery.event.deleted).toBe(false);
  });

  it('marks a branch deletion as deleted, with nothing to build', () => {
    const delivery = parseGitHubEvent(
      'push',
      pushPayload({ ref: 'refs/heads/feature/login', after: zeros, deleted: true, head_commit: null }),
    );
    expect(delivery.kind === 'push' && delivery.event).toMatchObject({
      deleted: true,
      commit: zeros,
      before: previous,
      ref: { kind: 'branch', name: 'feature/login' },
    });
    expect(delivery.kind === 'push' && delivery.event.message).toBeUndefined();
  });

  it('accepts upper-case SHAs and reports them in lower case', () => {
    const delivery = parseGitHubEvent(
      'push',
      pushPayload({ after: mainHead.toUpperCase(), head_commit: null }),
    );
    expect(delivery.kind === 'push' && delivery.event.commit).toBe(mainHead);
  });

  it('ignores other events, and pushes to refs that are neither branches nor tags, with a reason', () => {
    expect(parseGitHubEvent('pull_request', { action: 'opened' })).toEqual({
      kind: 'ignored',
      reason: 'GitHub "pull_request" events do not trigger builds; only "push" (to branches and tags) does',
    });
    expect(parseGitHubEvent('push', pushPayload({ ref: 'refs/notes/commits' }))).toEqual({
      kind: 'ignored',
      reason: 'refs/notes/commits is neither a branch nor a tag',
    });
  });

  it('refuses a malformed push payload with a 400 naming the fields that are wrong', () => {
    const payload = pushPayload({ after: 'not-a-sha' });
    (payload.repository as Record<string, unknown>).clone_url = undefined;
    let error: unknown;
    try {
      parseGitHubEvent('push', payload);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WebhookPayloadError);
    expect(error).toMatchObject({ status: 400, code: 'SLW_ERR_WEBHOOK_PAYLOAD' });
    expect((error as Error).message).toMatch(/^invalid GitHub push payload: /);
    expect((error as Error).message).toContain('after: expected a commit SHA of 40 hex digits');
    expect((error as Error).message).toContain('repository.clone_url');
  });

  it('refuses a delivery without an event name', () => {
    expect(() => parseGitHubEvent(undefined, pushPayload())).toThrow(/X-GitHub-Event header is missing/);
  });
});

describe('decoding a GitHub body', () => {
  const payload = pushPayload();

  it('reads JSON and the form encoding GitHub uses when the content type is left at its default', () => {
    const json = JSON.stringify(payload);
    expect(decodeGitHubBody(Buffer.from(json), 'application/json')).toEqual(payload);
    const form = `payload=${encodeURIComponent(json)}`;
    expect(decodeGitHubBody(Buffer.from(form), 'application/x-www-form-urlencoded; charset=utf-8')).toEqual(
      payload,
    );
  });

  it('refuses a body that is not JSON, or a form without a payload field, with a 400', () => {
    expect(() => decodeGitHubBody('{"ref":', 'application/json')).toThrow(WebhookPayloadError);
    expect(() => decodeGitHubBody('{"ref":', 'application/json')).toThrow(/not JSON/);
    expect(() => decodeGitHubBody('', 'application/json')).toThrow(/empty/);
    expect(() => decodeGitHubBody('ref=main', 'application/x-www-form-urlencoded')).toThrow(
      /no "payload" field/,
    );
    expect(() => decodeGitHubBody(Buffer.from([0x7b, 0xff, 0x7d]), 'application/json')).toThrow(/UTF-8/);
  });
});
