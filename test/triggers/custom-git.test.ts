import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  cloneUrlProblem,
  parseCustomPayload,
  postReceiveHookScript,
  signCustomPayload,
  verifyCustomSignature,
} from '../../src/triggers/custom-git.ts';
import { WebhookAuthError, WebhookPayloadError } from '../../src/triggers/errors.ts';

const secret = 'custom-trigger-secret';
const commit = '9fceb02d0ae598e95dc970b74767f19372d61af8';

const payload = {
  commit,
  ref: 'refs/heads/main',
  cloneUrl: 'git@git.internal.example:platform/billing.git',
  defaultBranch: 'main',
  author: { name: 'Sam Ortiz', email: 'sam@internal.example' },
  message: 'Bump base image',
  pushedAt: '2026-12-02T08:50:00Z',
};

async function refusal(promise: Promise<unknown>): Promise<WebhookAuthError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WebhookAuthError);
  return error as WebhookAuthError;
}

function payloadRefusal(input: unknown): string {
  try {
    parseCustomPayload(input);
  } catch (error) {
    expect(error).toBeInstanceOf(WebhookPayloadError);
    return (error as Error).message;
  }
  throw new Error('expected the payload to be refused');
}

describe('the custom git signature', () => {
  const body = JSON.stringify(payload);

  it('is GitHub-shaped: sha256= and the hex HMAC-SHA256 of the body', async () => {
    const signature = await signCustomPayload(secret, body);
    expect(signature).toBe(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
    await expect(verifyCustomSignature(secret, Buffer.from(body), signature)).resolves.toBeUndefined();
  });

  it('refuses a wrong signature or none, naming X-Slipway-Signature-256', async () => {
    const wrong = await refusal(verifyCustomSignature(secret, body, await signCustomPayload('other', body)));
    expect(wrong).toMatchObject({ status: 401, problem: 'mismatch', header: 'X-Slipway-Signature-256' });
    const missing = await refusal(verifyCustomSignature(secret, body, undefined));
    expect(missing.message).toBe(
      "the X-Slipway-Signature-256 header is missing: the delivery is unsigned; set the trigger's secret on the sender",
    );
    expect((await refusal(verifyCustomSignature(secret, body, 'sha256=xyz'))).problem).toBe('malformed');
  });
});

describe('a custom git payload', () => {
  it('becomes a push event; the repository defaults to the clone URL path', () => {
    expect(parseCustomPayload(payload)).toEqual({
      kind: 'push',
      event: {
        provider: 'custom',
        ref: { kind: 'branch', name: 'main', full: 'refs/heads/main' },
        commit,
        deleted: false,
        cloneUrl: {
          url: 'git@git.internal.example:platform/billing.git',
          ssh: 'git@git.internal.example:platform/billing.git',
        },
        repository: 'platform/billing',
        defaultBranch: 'main',
        author: { name: 'Sam Ortiz', email: 'sam@internal.example' },
        message: 'Bump base image',
        pushedAt: '2026-12-02T08:50:00.000Z',
      },
    });
  });

  it('reads an HTTPS clone URL as the http variant, and a tag ref as a tag', () => {
    const { event } = parseCustomPayload({
      commit,
      ref: 'refs/tags/v0.9.1',
      cloneUrl: 'https://git.internal.example/platform/billing.git',
    });
    expect(event.cloneUrl).toEqual({
      url: 'https://git.internal.example/platform/billing.git',
      http: 'https://git.internal.example/platform/billing.git',
    });
    expect(event.ref).toEqual({ kind: 'tag', name: 'v0.9.1', full: 'refs/tags/v0.9.1' });
    expect(event.repository).toBe('platform/billing');
  });

  it('is refused with a 400 when the commit, ref or clone URL is wrong', () => {
    const message = payloadRefusal({
      commit: 'abc123',
      ref: 'main',
      cloneUrl: 'ext::sh -c touch% /tmp/pwned',
    });
    expect(message).toMatch(/^invalid custom git payload: /);
    expect(message).toContain('commit: expected a commit SHA of 40 hex digits');
    expect(message).toContain('ref: expected a branch or tag ref');
    expect(message).toContain('cloneUrl: a clone URL cannot contain whitespace');
  });

  it('refuses clone URLs git would run a command for, or that hold a password', () => {
    expect(cloneUrlProblem('ext::ssh-evil')).toBe(
      'git remote-helper URLs ("transport::address") are not accepted',
    );
    expect(cloneUrlProblem('--upload-pack=touch')).toBe('a clone URL cannot start with "-"');
    expect(cloneUrlProblem('https://bot:hunter2@git.internal.example/app.git')).toMatch(/holds a password/);
    expect(cloneUrlProblem('ftp://git.internal.example/app.git')).toMatch(/not accepted/);
    for (const url of [
      'https://git.internal.example/app.git',
      'ssh://git@git.internal.example:2222/srv/app.git',
      'git@git.internal.example:app.git',
      'file:///srv/git/app.git',
    ]) {
      expect(cloneUrlProblem(url)).toBeNull();
    }
  });
});

describe('the post-receive hook script', () => {
  it('is generated only for a usable webhook URL, secret and clone URL', () => {
    const cloneUrl = 'ssh://git@git.internal.example/srv/git/app.git';
    expect(() =>
      postReceiveHookScript({ webhookUrl: 'ftp://x', secretEnvOrValue: { env: 'SECRET' }, cloneUrl }),
    ).toThrow(/http\(s\) URL/);
    expect(() =>
      postReceiveHookScript({
        webhookUrl: 'https://slipway.example/webhooks/custom/t1',
        secretEnvOrValue: { env: 'X; rm -rf /' },
        cloneUrl,
      }),
    ).toThrow(/not an environment variable name/);
  });

  it('quotes a secret written into it so the shell reads it back unchanged', () => {
    const script = postReceiveHookScript({
      webhookUrl: 'https://slipway.example/webhooks/custom/t1',
      secretEnvOrValue: { value: `it's $HOME` },
      cloneUrl: 'https://git.internal.example/app.git',
    });
    expect(script).toContain(`secret='it'\\''s $HOME'`);
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
  });
});
