import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/gateway/config.ts';
import { ConfigError } from '../../src/errors.ts';

async function yamlFile(text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'slipway-config-')), 'slipway.yaml');
  await writeFile(file, text);
  return file;
}

describe('configuration', () => {
  it('has embedded defaults', async () => {
    const config = await loadConfig({ env: {} });
    expect(config.listen).toBe('0.0.0.0:5000');
    expect(config.dataDir).toMatch(/\/data$/);
    expect(config.database.url).toBeUndefined();
    expect(config.storage.driver).toBe('filesystem');
    expect(config.registry.maxManifestBytes).toBe(4 * 1024 * 1024);
  });

  it('layers file < environment < flags', async () => {
    const file = await yamlFile('listen: 127.0.0.1:6000\ndataDir: /srv/file\ngc:\n  interval: 15m\n');
    const fromFile = await loadConfig({ file, env: {} });
    expect(fromFile.listen).toBe('127.0.0.1:6000');
    expect(fromFile.gc.interval).toBe(900);

    const fromEnv = await loadConfig({
      file,
      env: { SLIPWAY_LISTEN: '127.0.0.1:7000', DATABASE_URL: 'postgres://db/x' },
    });
    expect(fromEnv.listen).toBe('127.0.0.1:7000');
    expect(fromEnv.dataDir).toBe('/srv/file');
    expect(fromEnv.database.url).toBe('postgres://db/x');

    const fromFlags = await loadConfig({
      file,
      env: { SLIPWAY_LISTEN: '127.0.0.1:7000' },
      overrides: { listen: '127.0.0.1:8000' },
    });
    expect(fromFlags.listen).toBe('127.0.0.1:8000');
  });

  it('names the key and what is expected when a value is wrong', async () => {
    const file = await yamlFile('listen: nowhere\ngc:\n  interval: soon\nstorage:\n  driver: s3\n');
    const error = await loadConfig({ file, env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(file);
    expect(message).toMatch(/listen: expected HOST:PORT/);
    expect(message).toMatch(/gc\.interval: expected a duration/);
    expect(message).toMatch(/storage: storage\.driver is s3 but storage\.s3/);
  });

  it('refuses unknown keys, so a typo does not pass silently', async () => {
    const file = await yamlFile('listne: 127.0.0.1:5000\n');
    await expect(loadConfig({ file, env: {} })).rejects.toThrow(/listne|Unrecognized key/);
  });

  it('says which file could not be read', async () => {
    await expect(loadConfig({ file: '/nonexistent/slipway.yaml', env: {} })).rejects.toThrow(
      /cannot read config file \/nonexistent/,
    );
  });
});
