import { createHmac } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  parseCustomPayload,
  postReceiveHookScript,
  verifyCustomSignature,
  type HookSecret,
} from '../../src/triggers/custom-git.ts';
import { WebhookRefusedError } from '../../src/triggers/errors.ts';
import { watchCommandLines } from '../helpers/command-lines.ts';
import { requireTool, run } from '../helpers/tools.ts';

/*
 * The generated hook, for real: a bare repository with the hook installed, a clone pushing to it, and an
 * HTTP server standing in for Slipway's custom git endpoint, verifying each request as the gateway will.
 */

const secret = 'post-receive-secret-2c9e';
const cloneUrl = 'ssh://git@git.internal.example/srv/git/inventory.git';
const author = { name: `Zoë "Zed" O'Brien`, email: 'zoe@internal.example' };

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

let git: string;
let dir: string;
let server: Server;
let webhookUrl: string;
let received: Received[] = [];
/** The secret the stand-in for Slipway verifies with. */
let serverSecret = secret;
/** How long the stand-in for Slipway takes to answer. */
let answerDelayMs = 0;

/** git with no user or system configuration, committing as `author`. */
const gitEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: dir,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: join(dir, 'no-gitconfig'),
  GIT_AUTHOR_NAME: author.name,
  GIT_AUTHOR_EMAIL: author.email,
  GIT_COMMITTER_NAME: author.name,
  GIT_COMMITTER_EMAIL: author.email,
  LANG: 'C.UTF-8',
  ...extra,
});

async function gitIn(cwd: string, args: string[], extra: NodeJS.ProcessEnv = {}) {
  return run(git, args, { cwd, env: gitEnv(extra) });
}

/** A bare repository with the hook installed, and a clone of it with one commit on main. */
async function repositoryWithHook(name: string, hookSecret: HookSecret, url = webhookUrl) {
  const bare = join(dir, `${name}.git`);
  const work = join(dir, name);
  await gitIn(dir, ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  const hook = join(bare, 'hooks', 'post-receive');
  await writeFile(hook, postReceiveHookScript({ webhookUrl: url, secretEnvOrValue: hookSecret, cloneUrl }));
  await chmod(hook, 0o755);
  await gitIn(dir, ['clone', '--quiet', bare, work]);
  await writeFile(join(work, 'Containerfile'), 'FROM alpine:3.20\n');
  await gitIn(work, ['add', 'Containerfile']);
  return { bare, work };
}

beforeAll(async () => {
  git = requireTool('git', 'git');
  requireTool('openssl', 'openssl');
  requireTool('curl', 'curl');
  dir = await mkdtemp(join(tmpdir(), 'slipway-post-receive-'));
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ headers: request.headers, body: body.toString('utf8') });
      verifyCustomSignature(serverSecret, body, request.headers['x-slipway-signature-256']).then(
        async () => {
          const { event } = parseCustomPayload(JSON.parse(body.toString('utf8')));
          await delay(answerDelayMs);
          response.writeHead(202, { 'content-type': 'application/json' });
          response.end(
            JSON.stringify({ queued: `build of ${event.ref.name} at ${event.commit.slice(0, 7)}` }),
          );
        },
        (error: unknown) => {
          response.writeHead(error instanceof WebhookRefusedError ? error.status : 500);
          response.end((error as Error).message);
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/custom/trg_inventory`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  received = [];
  serverSecret = secret;
  answerDelayMs = 0;
});

describe('the post-receive hook in a bare repository', () => {
  it('sends a signed payload for a pushed commit and shows Slipway’s answer to the pusher', async () => {
    const { work } = await repositoryWithHook('inventory', { env: 'SLIPWAY_TRIGGER_SECRET' });
    const message = 'Ship "v2" schema\n\n\tTabs, back\\slashes and ünïcode survive.';
    await gitIn(work, ['commit', '--quiet', '-m', message]);
    const pushed = (await gitIn(work, ['rev-parse', 'HEAD'])).stdout.trim();

    const push = await gitIn(work, ['push', 'origin', 'main'], { SLIPWAY_TRIGGER_SECRET: secret });

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request!.headers['content-type']).toBe('application/json');
    const signature = request!.headers['x-slipway-signature-256'];
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    await expect(verifyCustomSignature(secret, request!.body, signature)).resolves.toBeUndefined();

    const { event } = parseCustomPayload(JSON.parse(request!.body));
    expect(event).toMatchObject({
      provider: 'custom',
      commit: pushed,
      ref: { kind: 'branch', name: 'main', full: 'refs/heads/main' },
      deleted: false,
      cloneUrl: { url: cloneUrl, ssh: cloneUrl },
      repository: 'srv/git/inventory',
      defaultBranch: 'main',
      author,
      message,
    });
    expect(event.before).toBeUndefined();
    expect(Date.now() - Date.parse(event.pushedAt!)).toBeLessThan(60_000);
    expect(push.stderr).toContain(
      `remote: slipway: refs/heads/main: {"queued":"build of main at ${pushed.slice(0, 7)}"}`,
    );
  });

  it('sends the tagged commit for an annotated tag, the previous commit for a branch update, and skips deletions', async () => {
    const { work } = await repositoryWithHook('billing', { value: secret });
    await gitIn(work, ['commit', '--quiet', '-m', 'First']);
    const first = (await gitIn(work, ['rev-parse', 'HEAD'])).stdout.trim();
    await gitIn(work, ['push', '--quiet', 'origin', 'main', 'main:refs/heads/old']);
    received = [];

    await gitIn(work, ['commit', '--quiet', '--allow-empty', '-m', 'Second']);
    const second = (await gitIn(work, ['rev-parse', 'HEAD'])).stdout.trim();
    await gitIn(work, ['tag', '-a', 'v1.0.0', '-m', 'Release 1.0.0']);
    const push = await gitIn(work, ['push', 'origin', 'main', 'v1.0.0', ':refs/heads/old']);

    const events = received.map((request) => parseCustomPayload(JSON.parse(request.body)).event);
    expect(events.map((e) => [e.ref.full, e.commit, e.before])).toEqual(
      expect.arrayContaining([
        ['refs/heads/main', second, first],
        ['refs/tags/v1.0.0', second, undefined],
      ]),
    );
    expect(events).toHaveLength(2);
    expect(push.stderr).toContain('remote: slipway: refs/heads/old was deleted; nothing to build');
  });

  it('reports a refused request to the pusher without failing the push', async () => {
    const { work, bare } = await repositoryWithHook('wrong-secret', { value: 'not-the-trigger-secret' });
    await gitIn(work, ['commit', '--quiet', '-m', 'Signed with the wrong secret']);
    const pushed = (await gitIn(work, ['rev-parse', 'HEAD'])).stdout.trim();

    const push = await gitIn(work, ['push', 'origin', 'main']);

    expect(received).toHaveLength(1);
    expect(push.stderr).toContain(
      'remote: slipway: refs/heads/main: Slipway answered HTTP 401: the X-Slipway-Signature-256 signature does not match',
    );
    expect((await gitIn(bare, ['rev-parse', 'main'])).stdout.trim()).toBe(pushed);
  });

  it('tells the pusher when Slipway cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = `http://127.0.0.1:${port}/webhooks/custom/trg_gone`;
    const { work } = await repositoryWithHook('unreachable', { value: secret }, unreachable);
    await gitIn(work, ['commit', '--quiet', '-m', 'Nobody listening']);

    const push = await gitIn(work, ['push', 'origin', 'main']);

    expect(push.stderr).toContain(
      `remote: slipway: refs/heads/main: could not reach Slipway at ${unreachable}; no build requested`,
    );
    expect(push.stderr).toMatch(/remote: curl: \(7\)/);
  });

  it('says so, and sends nothing, when the secret variable is not set', async () => {
    const { work } = await repositoryWithHook('no-secret', { env: 'SLIPWAY_TRIGGER_SECRET' });
    await gitIn(work, ['commit', '--quiet', '-m', 'No secret around']);
    const push = await gitIn(work, ['push', 'origin', 'main']);
    expect(received).toHaveLength(0);
    expect(push.stderr).toContain(
      'remote: slipway: no webhook secret (the SLIPWAY_TRIGGER_SECRET environment variable); no build requested',
    );
  });
});

describe('the post-receive hook’s signature', () => {
  const signatureOf = (key: string, body: string) =>
    `sha256=${createHmac('sha256', key).update(body, 'utf8').digest('hex')}`;

  it('is the HMAC-SHA256 Node computes, for any secret and payload', async () => {
    const { work } = await repositoryWithHook('hmac', { env: 'SLIPWAY_TRIGGER_SECRET' });
    const cases = [
      { secret: 's3cr3t', message: 'Plain ASCII' },
      // '6' and '\\' are the bytes the pads turn into NUL.
      { secret: `66\\6\\ it's "$HOME" %s`, message: 'Quotes "double" and \'single\', 100% %s %d' },
      { secret: 'k'.repeat(64), message: 'A secret of exactly one block\n\nsecond paragraph' },
      { secret: 'k'.repeat(65), message: 'A secret one byte longer than a block, hashed first' },
      // 40 characters but 80 bytes: longer than a block.
      { secret: 'ü'.repeat(40), message: 'Ünïcödé, emoji 🚢 and\ttabs\r\nand CRLF' },
      { secret: `line one\nline two ${'ключ'.repeat(20)}`, message: 'Back\\slashes \\n \\\\ stay' },
    ];
    for (const { secret: key, message } of cases) {
      received = [];
      serverSecret = key;
      await gitIn(work, ['commit', '--quiet', '--allow-empty', '--cleanup=verbatim', '-m', message]);
      const push = await gitIn(work, ['push', 'origin', 'main'], { SLIPWAY_TRIGGER_SECRET: key });

      expect(received, push.stderr).toHaveLength(1);
      const [request] = received;
      expect(parseCustomPayload(JSON.parse(request!.body)).event.message).toBe(message);
      expect(request!.headers['x-slipway-signature-256'], JSON.stringify(key)).toBe(
        signatureOf(key, request!.body),
      );
      expect(push.stderr).toContain('remote: slipway: refs/heads/main: {"queued":');
    }
  });

  it('is computed without the secret on any command line', async () => {
    const longSecret = `hook-secret-${'x'.repeat(80)}`;
    const { work } = await repositoryWithHook('ps', { env: 'SLIPWAY_TRIGGER_SECRET' });
    await gitIn(work, ['commit', '--quiet', '-m', 'Watched']);
    const branches = ['main', 'one', 'two', 'three', 'four'];
    serverSecret = longSecret;
    answerDelayMs = 200;

    const watch = watchCommandLines();
    const push = await gitIn(
      work,
      ['push', 'origin', ...branches.map((branch) => `HEAD:refs/heads/${branch}`)],
      { SLIPWAY_TRIGGER_SECRET: longSecret },
    ).finally(() => watch.stop());
    const seen = await watch.stop();

    expect(received, push.stderr).toHaveLength(branches.length);
    // The watch did see the hook's short-lived openssl and its curl, whose arguments hold no secret.
    expect(seen.some((args) => args.includes('dgst'))).toBe(true);
    expect(seen.some((args) => args.some((arg) => arg.startsWith('X-Slipway-Signature-256:')))).toBe(true);
    expect(seen.filter((args) => args.some((arg) => arg.includes(longSecret)))).toEqual([]);
  });
});
