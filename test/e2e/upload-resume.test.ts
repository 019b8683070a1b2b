import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../helpers/oci-layout.ts';
import { startPartialRequest } from '../helpers/registry-http.ts';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';
import { waitFor } from '../helpers/tools.ts';

const MiB = 1024 * 1024;

/** The offset the next chunk must start at, from an upload status's `Range: 0-<last>` header. */
function nextOffset(response: Response): number {
  const range = response.headers.get('range');
  const match = /^0-(\d+)$/.exec(range ?? '');
  if (!match) throw new Error(`upload status has no usable Range header: ${range}`);
  return Number(match[1]) + 1;
}

/**
 * What a resuming client does after its connection dropped mid-PATCH: ask where the upload stands
 * (GET → 204 + Range), send the rest from there, complete with PUT ?digest=.
 */
describe('an upload interrupted midway resumes over the HTTP API', () => {
  let slipway: TestSlipway;
  beforeAll(async () => {
    slipway = await startSlipway();
  });
  afterAll(() => slipway?.stop());

  const absolute = (location: string) => new URL(location, slipway.url).toString();

  /** GET the upload status until it stops moving (the server may still be writing what it got). */
  async function settledOffset(location: string): Promise<number> {
    let last = -1;
    return waitFor('the upload status to settle after the interrupted PATCH', async () => {
      const status = await fetch(location);
      expect(status.status).toBe(204);
      const offset = nextOffset(status);
      if (offset === last) return offset;
      last = offset;
      await new Promise((resolve) => setTimeout(resolve, 150));
      return undefined;
    });
  }

  it('PATCH, an aborted PATCH, GET status, PATCH the rest from the offset, PUT: the blob is byte-exact', async () => {
    const first = randomBytes(1 * MiB);
    const second = randomBytes(3 * MiB);
    const whole = Buffer.concat([first, second]);
    const digest = sha256(whole);

    const started = await fetch(`${slipway.url}/v2/team/resume/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    const location = absolute(started.headers.get('location')!);
    expect(started.headers.get('docker-upload-uuid')).toBeTruthy();

    const patched = await fetch(location, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${first.length - 1}` },
      body: new Uint8Array(first),
    });
    expect(patched.status).toBe(202);
    expect(patched.headers.get('range')).toBe(`0-${first.length - 1}`);
    const next = absolute(patched.headers.get('location')!);

    // The second chunk: 1.5 of its 3 MiB reach the server, then the connection drops.
    const sentBeforeAbort = 1.5 * MiB;
    const interrupted = startPartialRequest(
      next,
      'PATCH',
      { 'Content-Type': 'application/octet-stream', 'Content-Range': `${first.length}-${whole.length - 1}` },
      second,
      sentBeforeAbort,
    );
    await interrupted.written;
    // Midway for real: part of the second chunk is stored before the client goes away.
    await waitFor('part of the second chunk to be stored', async () => {
      const status = await fetch(next);
      return nextOffset(status) > first.length ? true : undefined;
    });
    interrupted.abort();
    await interrupted.done;

    const offset = await settledOffset(next);
    expect(offset).toBeGreaterThan(first.length);
    expect(offset).toBeLessThanOrEqual(first.length + sentBeforeAbort);

    // A client that resends from its last acknowledged offset is told where the upload really stands.
    const stale = await fetch(next, {
      method: 'PATCH',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${first.length}-${whole.length - 1}`,
      },
      body: new Uint8Array(second),
    });
    expect(stale.status).toBe(416);
    expect(stale.headers.get('range')).toBe(`0-${offset - 1}`);
    expect(nextOffset(await fetch(next))).toBe(offset);

    const rest = whole.subarray(offset);
    const resumed = await fetch(next, {
      method: 'PATCH',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${offset}-${whole.length - 1}`,
      },
      body: new Uint8Array(rest),
    });
    expect(resumed.status).toBe(202);
    expect(resumed.headers.get('range')).toBe(`0-${whole.length - 1}`);

    const completed = await fetch(
      `${absolute(resumed.headers.get('location')!)}?digest=${encodeURIComponent(digest)}`,
      {
        method: 'PUT',
      },
    );
    expect(completed.status).toBe(201);
    expect(completed.headers.get('docker-content-digest')).toBe(digest);

    const blob = await fetch(`${slipway.url}/v2/team/resume/blobs/${digest}`);
    expect(blob.status).toBe(200);
    const body = Buffer.from(await blob.arrayBuffer());
    expect(body.length).toBe(whole.length);
    expect(sha256(body)).toBe(digest);

    // The session is finished: its status is gone.
    expect((await fetch(next)).status).toBe(404);
  });

  it('an interrupted single-request upload (POST ?digest=) stores nothing, and a retry succeeds', async () => {
    const content = randomBytes(4 * MiB);
    const digest = sha256(content);
    const url = `${slipway.url}/v2/team/resume-mono/blobs/uploads/?digest=${encodeURIComponent(digest)}`;
    const interrupted = startPartialRequest(
      url,
      'POST',
      { 'Content-Type': 'application/octet-stream' },
      content,
      2 * MiB,
    );
    await interrupted.written;
    await new Promise((resolve) => setTimeout(resolve, 100));
    interrupted.abort();
    await interrupted.done;

    const head = await fetch(`${slipway.url}/v2/team/resume-mono/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);

    const retried = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: new Uint8Array(content),
    });
    expect(retried.status).toBe(201);
    const blob = await fetch(`${slipway.url}/v2/team/resume-mono/blobs/${digest}`);
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(digest);
  });
});
