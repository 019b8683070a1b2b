import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keyDirectoryName, rotateSigningKey } from '../../../src/gateway/auth/signing-keys.ts';
import { parseConfig } from '../../../src/gateway/config.ts';
import { startServer, type RunningServer } from '../../../src/gateway/server.ts';
import { adminPassword, adminUser, basic } from '../../helpers/auth.ts';

/** A gateway on a data directory the test keeps across restarts. */
async function start(dataDir: string, auth: Record<string, unknown> = {}): Promise<RunningServer> {
  return startServer(
    parseConfig({
      listen: '127.0.0.1:0',
      dataDir,
      logLevel: 'warn',
      gc: { enabled: false },
      auth: { enabled: true, adminUser, adminPassword, ...auth },
    }),
  );
}

async function token(server: RunningServer, scope = 'repository:root/app:pull,push'): Promise<string> {
  const response = await fetch(`${server.url}/v2/auth?service=slipway&scope=${encodeURIComponent(scope)}`, {
    headers: { Authorization: basic(adminUser, adminPassword) },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

const kidOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string; alg: string };

async function tagsStatus(server: RunningServer, jwt: string): Promise<number> {
  return (await fetch(`${server.url}/v2/root/app/tags/list`, { headers: { Authorization: `Bearer ${jwt}` } }))
    .status;
}

describe('registry token signing keys', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-keys-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  it('generates an ES256 key on first start, keeps it across restarts, and old tokens survive a rotation until they expire', async () => {
    const dir = await dataDir();
    let server = await start(dir);
    const before = await token(server);
    expect(kidOf(before).alg).toBe('ES256');
    expect(await readdir(join(dir, keyDirectoryName))).toHaveLength(1);
    await server.close();

    server = await start(dir);
    expect(kidOf(await token(server)).kid).toBe(kidOf(before).kid);
    // Asking for push created root/app (empty): a valid token lists its tags.
    expect(await tagsStatus(server, before)).toBe(200);
    await server.close();

    await rotateSigningKey(dir);
    server = await start(dir);
    cleanup.push(() => server.close());
    const after = await token(server);
    expect(kidOf(after).kid).not.toBe(kidOf(before).kid);
    expect(await tagsStatus(server, before)).toBe(200);
    expect(await tagsStatus(server, after)).toBe(200);
  });

  it('signs with a configured RSA key (RS256) and refuses tokens of a key it was not given', async () => {
    const dir = await dataDir();
    const keyFile = join(dir, 'rsa.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));

    const defaultKeys = await start(dir);
    const fromDefault = await token(defaultKeys);
    await defaultKeys.close();

    const server = await start(dir, { signingKeys: [keyFile] });
    cleanup.push(() => server.close());
    const jwt = await token(server);
    expect(kidOf(jwt).alg).toBe('RS256');
    expect(await tagsStatus(server, jwt)).toBe(200);
    const refused = await fetch(`${server.url}/v2/root/app/tags/list`, {
      headers: { Authorization: `Bearer ${fromDefault}` },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('refuses a token once its lifetime has passed', async () => {
    const dir = await dataDir();
    const server = await start(dir, { tokenLifetime: 1 });
    cleanup.push(() => server.close());
    const jwt = await token(server);
    expect(await tagsStatus(server, jwt)).toBe(200);
    // nbf/iat are whole seconds: wait past the expiry second.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const expired = await fetch(`${server.url}/v2/root/app/tags/list`, {
      headers: { Authorization: `Bearer ${jwt}` },
    });
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { errors: Array<{ message: string }> }).errors[0]!.message).toMatch(
      /expired/,
    );
  });
});
