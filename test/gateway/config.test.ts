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

  it('reads pull-through upstreams with their defaults', async () => {
    const file = await yamlFile(
      'proxy:\n  upstreams:\n    - name: dockerhub\n      url: https://registry-1.docker.io\n      hosts: [Docker.io]\n      freshness: 10m\n',
    );
    const config = await loadConfig({ file, env: {} });
    expect(config.proxy.upstreams).toEqual([
      {
        name: 'dockerhub',
        url: 'https://registry-1.docker.io',
        hosts: ['docker.io'],
        tlsVerify: true,
        freshness: 600,
        staleIfError: true,
        staleIfDeleted: false,
        negativeTtl: 60,
        maxConnections: 16,
        timeout: 30,
        circuitBreaker: { failures: 5, cooldown: 30 },
        pull: 'users',
        pinned: [],
      },
    ]);
    expect(config.proxy.upstreams[0]?.storageBudget).toBeUndefined();
    const defaults = await loadConfig({ env: {} });
    expect(defaults.proxy.upstreams).toEqual([]);
    expect(defaults.proxy.evictionInterval).toBe(300);
    expect(defaults.proxy.fillLease).toBe(30);
  });

  it('reads storage budgets in bytes or with units, and pinned tag globs', async () => {
    const upstreams = ['1048576', '"500MiB"', '"50GiB"', '"2TB"', '"1.5 kB"'].map(
      (budget, i) => `    - { name: u${i}, url: "https://r${i}.example", storageBudget: ${budget} }`,
    );
    const file = await yamlFile(
      [
        'proxy:',
        '  evictionInterval: 1m',
        '  upstreams:',
        ...upstreams,
        '    - { name: pins, url: "https://p.example", pinned: ["1.27", "v*", "library/nginx:stable"] }',
        '',
      ].join('\n'),
    );
    const config = await loadConfig({ file, env: {} });
    expect(config.proxy.evictionInterval).toBe(60);
    expect(config.proxy.upstreams.map((u) => u.storageBudget)).toEqual([
      1048576,
      500 * 2 ** 20,
      50 * 2 ** 30,
      2e12,
      1500,
      undefined,
    ]);
    expect(config.proxy.upstreams[5]?.pinned).toEqual(['1.27', 'v*', 'library/nginx:stable']);

    const bad = await yamlFile(
      'proxy:\n  upstreams:\n    - { name: a, url: "https://a.example", storageBudget: "5 parsecs", pinned: ["a:b:c"] }\n',
    );
    const error = await loadConfig({ file: bad, env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/proxy\.upstreams\.0\.storageBudget: expected bytes/);
    expect((error as Error).message).toMatch(/proxy\.upstreams\.0\.pinned\.0: expected a tag glob/);
  });

  it('reads the fill lease as a duration above 0', async () => {
    const config = await loadConfig({ file: await yamlFile('proxy:\n  fillLease: 5s\n'), env: {} });
    expect(config.proxy.fillLease).toBe(5);
    const error = await loadConfig({ file: await yamlFile('proxy:\n  fillLease: 0\n'), env: {} }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/proxy\.fillLease: expected a duration above 0/);
  });

  it('refuses upstreams with bad or repeated names, repeated hosts, or half credentials', async () => {
    const file = await yamlFile(
      [
        'proxy:',
        '  upstreams:',
        '    - { name: hub, url: "https://a.example", hosts: [docker.io] }',
        '    - { name: hub, url: "https://b.example", hosts: [docker.io], username: u }',
        '    - { name: "Quay/io", url: "ftp://c.example" }',
        '',
      ].join('\n'),
    );
    const error = await loadConfig({ file, env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/proxy\.upstreams\.1\.name: upstream name "hub" is used twice/);
    expect(message).toMatch(/proxy\.upstreams\.1\.hosts: host "docker\.io" is routed to two upstreams/);
    expect(message).toMatch(/proxy\.upstreams\.1: give both username and password, or neither/);
    expect(message).toMatch(/proxy\.upstreams\.2\.name: expected a namespace name/);
    expect(message).toMatch(/proxy\.upstreams\.2\.url: expected the registry origin/);
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
