import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildLogWriter } from '../../../src/builder/logs/writer.ts';
import type {
  BuildLogEntryResource,
  BuildLogPageResource,
  BuildResource,
} from '../../../src/cli/resources.ts';
import { readServerSentEvents, type ServerSentEvent } from '../../../src/cli/server-sent-events.ts';
import { ApiCaller } from '../../helpers/api.ts';
import { adminPassword, adminUser, basic, startSecuredSlipway } from '../../helpers/auth.ts';
import { basicOf, IdentityFixtures } from '../../helpers/identity-fixtures.ts';
import type { TestSlipway } from '../../helpers/slipway.ts';

const commit = '3f786850e387550fdab836ed7e6dc881de23001b';

/** Builds through /api/v1: no builder runs here, so builds stay waiting unless cancelled. */
describe('/api/v1 builds', () => {
  let slipway: TestSlipway;
  let redis: Redis;
  let root: ApiCaller;
  let asWriter: ApiCaller;
  let asReader: ApiCaller;
  let asOutsider: ApiCaller;
  let triggerId: string;
  let readerAuth: string;

  const eventsOf = async (kind: string, buildId: string) =>
    (
      await slipway.services.db.query<{ payload: { build_id: string; docker_tags: string[] } }>(
        `SELECT payload FROM events WHERE kind = $1 AND payload->>'build_id' = $2`,
        [kind, buildId],
      )
    ).rows.map((row) => row.payload);

  const writerFor = (buildId: string) =>
    new BuildLogWriter({ redis, keyPrefix: slipway.services.buildLogs.keyPrefix, buildId });

  async function start(body: Record<string, unknown>): Promise<BuildResource> {
    const started = await asWriter.post<BuildResource>('/repositories/acme/app/builds', body);
    expect(started.status).toBe(202);
    return started.body;
  }

  /** Opens the log as an EventSource would; the events as they come. */
  async function follow(buildId: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${slipway.url}/api/v1/builds/${buildId}/logs`, {
      headers: { Authorization: readerAuth, Accept: 'text/event-stream', ...headers },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    return readServerSentEvents(response.body!);
  }

  async function take(
    events: AsyncGenerator<ServerSentEvent>,
    count: number,
  ): Promise<BuildLogEntryResource[]> {
    const taken: BuildLogEntryResource[] = [];
    while (taken.length < count) {
      const next = await events.next();
      if (next.done) break;
      taken.push(JSON.parse(next.value.data) as BuildLogEntryResource);
    }
    return taken;
  }

  const texts = (entries: BuildLogEntryResource[]) =>
    entries.map((entry) =>
      entry.type === 'line' ? entry.text : `${entry.type}:${'phase' in entry ? entry.phase : ''}`,
    );

  beforeAll(async () => {
    slipway = await startSecuredSlipway();
    redis = slipway.services.redis.connect();
    root = ApiCaller.as(slipway, basic(adminUser, adminPassword));
    const fixtures = await IdentityFixtures.of(slipway);
    await fixtures.organization('acme');
    await fixtures.repository('acme/app');
    const writer = await fixtures.user('wendy');
    const reader = await fixtures.user('rita');
    const outsider = await fixtures.user('otto');
    await fixtures.grant('acme/app', { user: 'wendy' }, 'write');
    await fixtures.grant('acme/app', { user: 'rita' }, 'read');
    asWriter = ApiCaller.as(slipway, basicOf(writer));
    readerAuth = basicOf(reader);
    asReader = ApiCaller.as(slipway, readerAuth);
    asOutsider = ApiCaller.as(slipway, basicOf(outsider));
    const trigger = await root.post<{ id: string }>('/repositories/acme/app/triggers', {
      provider: 'github',
      cloneUrl: 'https://github.com/acme/app.git',
      credentials: { token: 'ghp_clone-token' },
    });
    triggerId = trigger.body.id;
  });

  afterAll(async () => {
    redis?.disconnect();
    await slipway?.stop();
  });

  it("starts a build with a trigger's settings for a writer, queued with build_queued", async () => {
    const build = await start({ triggerId, ref: 'main' });
    expect(build).toMatchObject({
      repository: 'acme/app',
      triggerId,
      triggerKind: 'manual',
      phase: 'waiting',
      cloneUrl: 'https://github.com/acme/app.git',
      ref: 'refs/heads/main',
      commit: null,
      tags: ['main'],
      requestedBy: 'wendy',
      cancelRequested: false,
      logUrl: `${slipway.url}/api/v1/builds/${build.id}/logs`,
    });
    expect(JSON.stringify(build)).not.toContain('ghp_clone-token');
    expect(await eventsOf('build_queued', build.id)).toEqual([
      expect.objectContaining({ docker_tags: ['main'] }),
    ]);
    const audit = await root.get<{ entries: Array<{ kind: string; target: string }> }>(
      '/audit?repository=acme/app&kind=start_build',
    );
    expect(audit.body.entries.map((entry) => entry.target)).toContain(build.id);
  });

  it('builds a clone URL at a commit, tagged with the short commit unless told', async () => {
    const build = await start({ cloneUrl: 'https://git.example.com/acme/app.git', commit });
    expect(build).toMatchObject({ triggerId: null, commit, ref: null, tags: ['3f78685'] });
    const tagged = await start({ cloneUrl: 'https://git.example.com/acme/app.git', commit, tags: ['edge'] });
    expect(tagged.tags).toEqual(['edge']);
  });

  it("never sends a trigger's credentials to another clone URL", async () => {
    const answer = await asWriter.post('/repositories/acme/app/builds', {
      triggerId,
      cloneUrl: 'https://attacker.example/collect.git',
      ref: 'main',
    });
    expect(answer.status).toBe(400);
  });

  it('refuses what it cannot build, and readers and outsiders', async () => {
    expect((await asWriter.post('/repositories/acme/app/builds', { triggerId })).status).toBe(400);
    expect((await asWriter.post('/repositories/acme/app/builds', { ref: 'main' })).status).toBe(400);
    expect((await asWriter.post('/repositories/acme/app/builds', { triggerId, ref: '-x' })).status).toBe(400);
    expect((await asReader.post('/repositories/acme/app/builds', { triggerId, ref: 'main' })).status).toBe(
      403,
    );
    expect((await asOutsider.post('/repositories/acme/app/builds', { triggerId, ref: 'main' })).status).toBe(
      404,
    );
  });

  it('lists and shows builds to readers, newest first and paged; outsiders get 404', async () => {
    const listed = await asReader.get<{ builds: BuildResource[]; next?: string }>(
      '/repositories/acme/app/builds',
    );
    expect(listed.status).toBe(200);
    expect(listed.body.builds.length).toBeGreaterThanOrEqual(3);
    const queued = listed.body.builds.map((build) => Date.parse(build.queuedAt));
    expect(queued).toEqual([...queued].sort((a, b) => b - a));

    const first = await asReader.get<{ builds: BuildResource[]; next?: string }>(
      '/repositories/acme/app/builds?limit=1',
    );
    expect(first.body.builds).toHaveLength(1);
    const second = await asReader.get<{ builds: BuildResource[] }>(
      `/repositories/acme/app/builds?limit=1&before=${encodeURIComponent(first.body.next!)}`,
    );
    expect(second.body.builds[0]!.id).toBe(listed.body.builds[1]!.id);

    const id = listed.body.builds[0]!.id;
    expect((await asReader.get<BuildResource>(`/builds/${id}`)).body.id).toBe(id);
    expect((await asOutsider.get(`/builds/${id}`)).status).toBe(404);
    expect((await asOutsider.get('/repositories/acme/app/builds')).status).toBe(404);
    expect((await asReader.get(`/builds/${crypto.randomUUID()}`)).status).toBe(404);
  });

  it('cancels a waiting build at once for a writer (build_cancelled), refusing readers and a second time', async () => {
    const build = await start({ triggerId, ref: 'tags/v1.0' });
    expect((await asReader.post(`/builds/${build.id}/cancel`)).status).toBe(403);
    expect((await asOutsider.post(`/builds/${build.id}/cancel`)).status).toBe(404);
    const cancelled = await asWriter.post<BuildResource>(`/builds/${build.id}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(cancelled.body).toMatchObject({ phase: 'cancelled', cancelRequested: true });
    expect(cancelled.body.finishedAt).not.toBeNull();
    expect(await eventsOf('build_cancelled', build.id)).toHaveLength(1);
    const again = await asWriter.post(`/builds/${build.id}/cancel`);
    expect(again.status).toBe(409);
  });

  it('reads the log as JSON pages with a cursor', async () => {
    const build = await start({ triggerId, ref: 'logs-json' });
    const writer = writerFor(build.id);
    writer.phase('cloning');
    for (let i = 0; i < 4; i++) writer.line('stdout', `step ${i}`);
    await writer.flush();

    const first = await asReader.get<BuildLogPageResource>(`/builds/${build.id}/logs?limit=3`);
    expect(first.status).toBe(200);
    expect(texts(first.body.entries)).toEqual(['phase:cloning', 'step 0', 'step 1']);
    expect(first.body.ended).toBe(false);
    const rest = await asReader.get<BuildLogPageResource>(
      `/builds/${build.id}/logs?cursor=${first.body.cursor}`,
    );
    expect(texts(rest.body.entries)).toEqual(['step 2', 'step 3']);
    expect(rest.body.ended).toBe(false);

    await writer.end('complete');
    const last = await asReader.get<BuildLogPageResource>(
      `/builds/${build.id}/logs?cursor=${rest.body.cursor}`,
    );
    expect(texts(last.body.entries)).toEqual(['end:complete']);
    expect(last.body.ended).toBe(true);
    expect((await asOutsider.get(`/builds/${build.id}/logs`)).status).toBe(404);
    expect((await asReader.get(`/builds/${build.id}/logs?cursor=nope`)).status).toBe(400);
  });

  it('streams the log as Server-Sent Events: a late joiner gets it all, then live lines, until the end', async () => {
    const build = await start({ triggerId, ref: 'logs-live' });
    const writer = writerFor(build.id);
    writer.phase('building');
    for (let i = 0; i < 3; i++) writer.line('stdout', `early ${i}`);
    await writer.flush();

    const events = await follow(build.id);
    expect(texts(await take(events, 4))).toEqual(['phase:building', 'early 0', 'early 1', 'early 2']);
    const live = take(events, 2);
    writer.line('stderr', 'live 0');
    writer.line('stdout', 'live 1');
    expect(texts(await live)).toEqual(['live 0', 'live 1']);
    const ending = take(events, 10);
    await writer.end('complete');
    expect(texts(await ending)).toEqual(['end:complete']);
  });

  it('resumes after Last-Event-ID, and also streams with ?follow=true', async () => {
    const build = await start({ triggerId, ref: 'logs-resume' });
    const writer = writerFor(build.id);
    for (let i = 0; i < 4; i++) writer.line('stdout', `line ${i}`);
    await writer.end('error');

    const all = await take(await follow(build.id), 10);
    expect(texts(all)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'end:error']);
    const resumed = await take(await follow(build.id, { 'Last-Event-ID': all[1]!.id }), 10);
    expect(texts(resumed)).toEqual(['line 2', 'line 3', 'end:error']);

    const response = await fetch(
      `${slipway.url}/api/v1/builds/${build.id}/logs?follow=true&cursor=${all[2]!.id}`,
      {
        headers: { Authorization: readerAuth },
      },
    );
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await response.text()).toMatch(/^id: .*\nevent: line\ndata: .*"line 3".*\n\nid: .*\nevent: end\n/);
  });

  it('ends the stream of a build cancelled before it started with why and its final phase', async () => {
    const build = await start({ triggerId, ref: 'never-built' });
    await asWriter.post(`/builds/${build.id}/cancel`);
    const entries = await take(await follow(build.id), 10);
    expect(texts(entries)).toEqual([
      'the build was cancelled before a builder took it',
      'phase:cancelled',
      'end:cancelled',
    ]);
  });
});
