/**
 * The legacy (ginkgo) conformance workflows, ported from `01_pull_test.go`, `02_push_test.go`,
 * `03_discovery_test.go` and `04_management_test.go` with the data of `setup.go`: each `g.Specify` is one
 * check, run in the same order against one namespace, sharing state the way the Go closures do.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe } from 'vitest';
import {
  errorCodes,
  expectHeader,
  expectStatus,
  fail,
  unsupported,
  type Expectation,
  type HttpRequest,
  type HttpResponse,
} from './api.ts';
import type { ConformanceOptions } from './config.ts';
import { SkipCheck, type Check, type Runner } from './runner.ts';
import { mt } from './testdata.ts';

/** The spec's error codes, as the legacy suite lists them. */
const legacyErrorCodes = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
];

/** A simple gzip'd tarball (`layerBase64String` in setup.go). */
const layerBase64 =
  'H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0' +
  'WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD' +
  'jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA';

const testTagName = 'tagtest0';
const emptyLayerTestTag = 'emptylayer';
const nonexistentManifest = '.INVALID_MANIFEST_NAME';
const testAnnotationKey = 'org.opencontainers.conformance.test';

interface TestBlob {
  content: Buffer;
  digest: string;
}

function sha256(content: Uint8Array): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** `json.MarshalIndent(v, "", "\t")`. */
function marshalIndent(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, '\t'));
}

/** setup.go's `descriptor`: `newUnspecifiedField` is not omitempty, so it is null when unset. */
function legacyDescriptor(d: {
  mediaType: string;
  digest: string;
  size: number;
  data?: Buffer;
  unspecified?: Buffer;
}) {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.data ? { data: d.data.toString('base64') } : {}),
    newUnspecifiedField: d.unspecified ? d.unspecified.toString('base64') : null,
  };
}

function randomString(n: number): string {
  const letters = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-';
  return [...randomBytes(n)].map((b) => letters[b % letters.length]).join('');
}

/** The data of setup.go's `init`. */
function legacyData() {
  const configs: TestBlob[] = [];
  for (let i = 0; i < 5; i++) {
    const content = marshalIndent({
      author: randomString(16),
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
    });
    configs.push({ content, digest: sha256(content) });
  }
  const layer = Buffer.from(layerBase64, 'base64');
  const layerDigest = sha256(layer);
  const layerDescriptor = legacyDescriptor({
    mediaType: mt.ociLayerGzip,
    size: layer.length,
    digest: layerDigest,
  });
  const configDescriptor = (c: TestBlob) =>
    legacyDescriptor({
      mediaType: mt.ociConfig,
      digest: c.digest,
      size: c.content.length,
      data: c.content,
      unspecified: Buffer.from('hello world'),
    });
  const manifests: TestBlob[] = configs.map((c) => {
    const content = marshalIndent({
      schemaVersion: 2,
      mediaType: mt.ociImage,
      config: configDescriptor(c),
      layers: [layerDescriptor],
    });
    return { content, digest: sha256(content) };
  });
  const emptyLayerManifest = marshalIndent({
    schemaVersion: 2,
    config: configDescriptor(configs[1]!),
    layers: [],
  });

  const testBlobA = randomBytes(42);
  const testBlobB = randomBytes(42);
  const emptyJsonBlob = Buffer.from('{}');
  const emptyJsonDescriptor = legacyDescriptor({
    mediaType: mt.ociEmptyJson,
    size: 2,
    digest: sha256(emptyJsonBlob),
  });
  const refBlobA = Buffer.from('NHL Peanut Butter on my NHL bagel');
  const refBlobB = Buffer.from('NBA Strawberry Jam on my NBA croissant');
  const typeA = 'application/vnd.nhl.peanut.butter.bagel';
  const typeB = 'application/vnd.nba.strawberry.jam.croissant';
  const typeIndex = 'application/vnd.food.stand';
  const subjectOf = (m: TestBlob) =>
    legacyDescriptor({ mediaType: mt.ociImage, size: m.content.length, digest: m.digest });
  const annotationValues = new Map<string, string>();
  const refManifest = (value: Record<string, unknown>, annotation?: string): TestBlob => {
    const content = marshalIndent({
      ...value,
      ...(annotation ? { annotations: { [testAnnotationKey]: annotation } } : {}),
    });
    const digest = sha256(content);
    if (annotation) annotationValues.set(digest, annotation);
    return { content, digest };
  };
  const refsAConfig = refManifest(
    {
      schemaVersion: 2,
      mediaType: mt.ociImage,
      config: legacyDescriptor({ mediaType: typeA, size: refBlobA.length, digest: sha256(refBlobA) }),
      layers: [emptyJsonDescriptor],
      subject: subjectOf(manifests[4]!),
    },
    'test config a',
  );
  const refsBConfig = refManifest(
    {
      schemaVersion: 2,
      mediaType: mt.ociImage,
      config: legacyDescriptor({ mediaType: typeB, size: refBlobB.length, digest: sha256(refBlobB) }),
      layers: [emptyJsonDescriptor],
      subject: subjectOf(manifests[4]!),
    },
    'test config b',
  );
  const refsALayer = refManifest(
    {
      schemaVersion: 2,
      mediaType: mt.ociImage,
      artifactType: typeA,
      config: emptyJsonDescriptor,
      layers: [legacyDescriptor({ mediaType: typeA, size: refBlobA.length, digest: sha256(refBlobA) })],
      subject: subjectOf(manifests[4]!),
    },
    'test layer a',
  );
  const refsBLayer = refManifest(
    {
      schemaVersion: 2,
      mediaType: mt.ociImage,
      artifactType: typeB,
      config: emptyJsonDescriptor,
      layers: [legacyDescriptor({ mediaType: typeB, size: refBlobB.length, digest: sha256(refBlobB) })],
      subject: subjectOf(manifests[4]!),
    },
    'test layer b',
  );
  // the same as B, with a subject that is never pushed
  const refsCLayer = refManifest({
    schemaVersion: 2,
    mediaType: mt.ociImage,
    artifactType: typeB,
    config: emptyJsonDescriptor,
    layers: [legacyDescriptor({ mediaType: typeB, size: refBlobB.length, digest: sha256(refBlobB) })],
    subject: subjectOf(manifests[3]!),
  });
  const refsIndex = refManifest(
    {
      schemaVersion: 2,
      mediaType: mt.ociIndex,
      artifactType: typeIndex,
      manifests: [
        legacyDescriptor({
          mediaType: mt.ociImage,
          size: refsAConfig.content.length,
          digest: refsAConfig.digest,
        }),
        legacyDescriptor({
          mediaType: mt.ociImage,
          size: refsALayer.content.length,
          digest: refsALayer.digest,
        }),
      ],
      subject: subjectOf(manifests[4]!),
    },
    'test index',
  );
  return {
    configs,
    manifests,
    layer,
    layerDigest,
    emptyLayerManifest,
    emptyLayerManifestDigest: sha256(emptyLayerManifest),
    testBlobA,
    testBlobB,
    emptyJsonBlob,
    refBlobA,
    refBlobB,
    typeA,
    refsAConfig,
    refsBConfig,
    refsALayer,
    refsBLayer,
    refsCLayer,
    refsIndex,
    annotationValues,
    dummyDigest: sha256(Buffer.from('hello world')),
  };
}

const is2xx: Expectation = (r) =>
  r.status >= 200 && r.status < 300 ? undefined : `expected a 2xx status, received ${r.status}`;

function statusIn(...codes: number[]): Expectation {
  return (r) =>
    codes.includes(r.status) ? undefined : `expected status ${codes.join(' or ')}, received ${r.status}`;
}

function anyOfStatus(...checks: Expectation[]): Expectation {
  return (r) => {
    const errors = checks.map((c) => c(r));
    return errors.some((e) => e === undefined) ? undefined : errors.join(' and ');
  };
}

/** reggie's `GetRelativeLocation`: the Location's path and query. */
function relativeLocation(response: HttpResponse): string {
  const location = response.headers.get('Location') ?? '';
  if (location === '') return '';
  const u = new URL(location, 'http://registry.invalid');
  return `${u.pathname}${u.search}`;
}

function tagsOf(response: HttpResponse): string[] {
  try {
    return ((JSON.parse(response.body.toString('utf8')) as { tags?: string[] }).tags ?? []) as string[];
  } catch {
    return [];
  }
}

function firstErrorCode(response: HttpResponse): string {
  const codes = errorCodes(response);
  if (codes === null)
    throw fail(`response body is not an OCI error response: ${response.body.toString('utf8').slice(0, 300)}`);
  if (codes.length === 0) throw fail('error response has no errors');
  return codes[0]!;
}

export function registerLegacyWorkflows(check: Check, runner: Runner, options: ConformanceOptions): void {
  const d = legacyData();
  const name = options.legacy.namespace;
  const crossmount = options.legacy.crossmountNamespace;
  const api = runner.api;
  const url = (path: string, query: Record<string, string> = {}) => {
    const u = api.url(runner.registry, path.replaceAll('<name>', name));
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u;
  };
  const resolve = (response: HttpResponse) => new URL(relativeLocation(response), runner.registry);
  const req = (method: string, u: URL, extra: Partial<HttpRequest> = {}): HttpRequest => ({
    method,
    url: u,
    ...extra,
  });
  const deleteManifestBeforeBlobs = options.legacy.deleteManifestBeforeBlobs;

  /** POST a session, then PUT the blob into it ("Populate registry with test blob"). */
  const pushBlob = async (content: Buffer, digest: string) => {
    const session = await api.send(req('POST', url('/v2/<name>/blobs/uploads/')));
    const target = resolve(session);
    target.searchParams.set('digest', digest);
    await api.do(
      req('PUT', target, { headers: [['Content-Type', 'application/octet-stream']], body: content }),
      is2xx,
    );
  };
  const pushManifest = (
    reference: string,
    content: Buffer,
    contentType: string = mt.ociImage,
    ...expectations: Expectation[]
  ) =>
    api.do(
      req('PUT', url(`/v2/<name>/manifests/${reference}`), {
        headers: [['Content-Type', contentType]],
        body: content,
      }),
      is2xx,
      ...expectations,
    );
  const deleteRef = (kind: 'manifests' | 'blobs', ref: string, ...accepted: Expectation[]) =>
    api.do(req('DELETE', url(`/v2/<name>/${kind}/${ref}`)), anyOfStatus(...accepted));

  describe('Pull', () => {
    let tag = '';
    describe('Setup', () => {
      check('Populate registry with test blob (config 0)', () =>
        pushBlob(d.configs[0]!.content, d.configs[0]!.digest),
      );
      check('Populate registry with test blob (config 1)', () =>
        pushBlob(d.configs[1]!.content, d.configs[1]!.digest),
      );
      check('Populate registry with test layer', () => pushBlob(d.layer, d.layerDigest));
      check('Populate registry with test manifest (tag)', async () => {
        tag = testTagName;
        await pushManifest(tag, d.manifests[0]!.content);
      });
      check('Populate registry with test manifest (digest)', () =>
        pushManifest(d.manifests[1]!.digest, d.manifests[1]!.content),
      );
    });

    describe('Pull blobs', () => {
      check('HEAD request to nonexistent blob should result in 404 response', () =>
        api.do(req('HEAD', url(`/v2/<name>/blobs/${d.dummyDigest}`)), expectStatus(404)),
      );
      check('HEAD request to existing blob should yield 200', async () => {
        const r = await api.do(
          req('HEAD', url(`/v2/<name>/blobs/${d.configs[0]!.digest}`)),
          expectStatus(200),
        );
        const h = r.headers.get('Docker-Content-Digest');
        if (h && h !== d.configs[0]!.digest)
          throw fail(`Docker-Content-Digest is ${h}, expected ${d.configs[0]!.digest}`);
      });
      check('GET nonexistent blob should result in 404 response', () =>
        api.do(req('GET', url(`/v2/<name>/blobs/${d.dummyDigest}`)), expectStatus(404)),
      );
      check('GET request to existing blob URL should yield 200', () =>
        api.do(req('GET', url(`/v2/<name>/blobs/${d.configs[0]!.digest}`)), expectStatus(200)),
      );
    });

    describe('Pull manifests', () => {
      const accept: Array<[string, string]> = [['Accept', mt.ociImage]];
      const digestHeaderIs = (r: HttpResponse, digest: string) => {
        const h = r.headers.get('Docker-Content-Digest');
        if (h && h !== digest) throw fail(`Docker-Content-Digest is ${h}, expected ${digest}`);
      };
      check('HEAD request to nonexistent manifest should return 404', () =>
        api.do(req('HEAD', url(`/v2/<name>/manifests/${nonexistentManifest}`)), expectStatus(404)),
      );
      for (const i of [0, 1]) {
        check(`HEAD request to manifest[${i}] path (digest) should yield 200 response`, async () => {
          const r = await api.do(
            req('HEAD', url(`/v2/<name>/manifests/${d.manifests[i]!.digest}`), { headers: accept }),
            expectStatus(200),
          );
          digestHeaderIs(r, d.manifests[i]!.digest);
        });
      }
      check('HEAD request to manifest path (tag) should yield 200 response', async () => {
        if (tag === '') throw fail('no tag was pushed in setup');
        const r = await api.do(
          req('HEAD', url(`/v2/<name>/manifests/${tag}`), { headers: accept }),
          expectStatus(200),
        );
        digestHeaderIs(r, d.manifests[0]!.digest);
      });
      check('GET nonexistent manifest should return 404', () =>
        api.do(req('GET', url(`/v2/<name>/manifests/${nonexistentManifest}`)), expectStatus(404)),
      );
      for (const i of [0, 1]) {
        check(`GET request to manifest[${i}] path (digest) should yield 200 response`, () =>
          api.do(
            req('GET', url(`/v2/<name>/manifests/${d.manifests[i]!.digest}`), { headers: accept }),
            expectStatus(200),
          ),
        );
      }
      check('GET request to manifest path (tag) should yield 200 response', () => {
        if (tag === '') throw fail('no tag was pushed in setup');
        return api.do(req('GET', url(`/v2/<name>/manifests/${tag}`), { headers: accept }), expectStatus(200));
      });
    });

    describe('Error codes', () => {
      // The Go suite sends "blablabla" as the body of this GET; fetch cannot send a GET body, and a
      // registry must not act on one, so it is left out.
      check('400 response body should contain OCI-conforming JSON message', async () => {
        const r = await api.do(
          req('GET', url('/v2/<name>/manifests/sha256:totallywrong'), {
            headers: [['Content-Type', mt.ociImage]],
          }),
          statusIn(400, 404),
        );
        if (r.status === 400) {
          const code = firstErrorCode(r);
          if (!legacyErrorCodes.includes(code))
            throw fail(`error code ${code} is not one of the spec's codes`);
        }
      });
    });

    describe('Teardown', () => {
      const deleteManifests = () => {
        for (const i of [0, 1]) {
          check(`Delete manifest[${i}] created in setup`, () =>
            deleteRef('manifests', d.manifests[i]!.digest, is2xx, statusIn(405)),
          );
        }
      };
      if (deleteManifestBeforeBlobs) deleteManifests();
      for (const i of [0, 1]) {
        check(`Delete config[${i}] blob created in setup`, () =>
          deleteRef('blobs', d.configs[i]!.digest, is2xx, statusIn(404, 405)),
        );
      }
      check('Delete layer blob created in setup', () =>
        deleteRef('blobs', d.layerDigest, is2xx, statusIn(404, 405)),
      );
      if (!deleteManifestBeforeBlobs) deleteManifests();
    });
  });

  describe('Push', () => {
    let lastResponse: HttpResponse | null = null;
    let prevResponse: HttpResponse | null = null;
    let emptyLayerManifestRef = '';
    let blobB = d.testBlobB;
    let chunk1 = blobB.subarray(0, Math.floor(blobB.length / 2) + 1);
    let chunk2 = blobB.subarray(chunk1.length);
    const chunk1Range = () => `0-${chunk1.length - 1}`;
    const chunk2Range = () => `${chunk1.length}-${blobB.length - 1}`;
    const requireLast = () => {
      if (!lastResponse) throw fail('the previous step did not leave a response to continue from');
      return lastResponse;
    };

    describe('Blob Upload Streamed', () => {
      check('PATCH request with blob in body should yield 202 response', async () => {
        const session = await api.send(req('POST', url('/v2/<name>/blobs/uploads/')));
        if (!session.headers.get('Location')) throw fail('POST did not return a Location');
        lastResponse = await api.do(
          req('PATCH', resolve(session), {
            headers: [['Content-Type', 'application/octet-stream']],
            body: d.testBlobA,
          }),
          expectStatus(202),
        );
      });
      check('PUT request to session URL with digest should yield 201 response', async () => {
        const target = resolve(requireLast());
        target.searchParams.set('digest', sha256(d.testBlobA));
        await api.do(
          req('PUT', target, { headers: [['Content-Type', 'application/octet-stream']] }),
          expectStatus(201),
          expectHeader('Location', ''),
        );
      });
    });

    describe('Blob Upload Monolithic', () => {
      check('GET nonexistent blob should result in 404 response', () =>
        api.do(req('GET', url(`/v2/<name>/blobs/${d.dummyDigest}`)), expectStatus(404)),
      );
      check('POST request with digest and blob should yield a 201 or 202', async () => {
        lastResponse = await api.do(
          req('POST', url('/v2/<name>/blobs/uploads/', { digest: d.configs[1]!.digest }), {
            headers: [['Content-Type', 'application/octet-stream']],
            body: d.configs[1]!.content,
          }),
          expectHeader('Location', ''),
          statusIn(201, 202),
        );
      });
      check('GET request to blob URL from prior request should yield 200 or 404 based on response code', () =>
        api.do(
          req('GET', url(`/v2/<name>/blobs/${d.configs[1]!.digest}`)),
          requireLast().status === 202 ? expectStatus(404) : expectStatus(200),
        ),
      );
      check('POST request should yield a session ID', async () => {
        lastResponse = await api.do(req('POST', url('/v2/<name>/blobs/uploads/')), expectStatus(202));
      });
      check('PUT upload of a blob should yield a 201 Response', async () => {
        const target = resolve(requireLast());
        target.searchParams.set('digest', d.configs[1]!.digest);
        await api.do(
          req('PUT', target, {
            headers: [['Content-Type', 'application/octet-stream']],
            body: d.configs[1]!.content,
          }),
          expectHeader('Location', ''),
          expectStatus(201),
        );
      });
      check('GET request to existing blob should yield 200 response', () =>
        api.do(req('GET', url(`/v2/<name>/blobs/${d.configs[1]!.digest}`)), expectStatus(200)),
      );
      check('PUT upload of a layer blob should yield a 201 Response', async () => {
        const session = await api.send(req('POST', url('/v2/<name>/blobs/uploads/')));
        const target = resolve(session);
        target.searchParams.set('digest', d.layerDigest);
        await api.do(
          req('PUT', target, { headers: [['Content-Type', 'application/octet-stream']], body: d.layer }),
          expectHeader('Location', ''),
          expectStatus(201),
        );
      });
      check('GET request to existing layer should yield 200 response', () =>
        api.do(req('GET', url(`/v2/<name>/blobs/${d.layerDigest}`)), expectStatus(200)),
      );
    });

    describe('Blob Upload Chunked', () => {
      const chunkHeaders = (range: string): Array<[string, string]> => [
        ['Content-Type', 'application/octet-stream'],
        ['Content-Range', range],
      ];
      check('Out-of-order blob upload should return 416', async () => {
        const session = await api.do(
          req('POST', url('/v2/<name>/blobs/uploads/'), { emptyBody: true }),
          expectHeader('Location', ''),
        );
        // rebuild the chunked blob if the registry's minimum is above our chunk size
        const minSize = session.headers.get('OCI-Chunk-Min-Length');
        if (minSize) {
          const min = Number(minSize);
          if (!Number.isInteger(min)) throw fail(`OCI-Chunk-Min-Length "${minSize}" is not a number`);
          if (min > chunk1.length) {
            blobB = randomBytes(min * 2 - 2);
            chunk1 = blobB.subarray(0, Math.floor(blobB.length / 2) + 1);
            chunk2 = blobB.subarray(chunk1.length);
          }
        }
        await api.do(
          req('PATCH', resolve(session), { headers: chunkHeaders(chunk2Range()), body: chunk2 }),
          expectStatus(416),
        );
      });
      check('PATCH request with first chunk should return 202', async () => {
        const session = await api.do(
          req('POST', url('/v2/<name>/blobs/uploads/'), { emptyBody: true }),
          expectHeader('Location', ''),
        );
        prevResponse = session;
        lastResponse = await api.do(
          req('PATCH', resolve(session), { headers: chunkHeaders(chunk1Range()), body: chunk1 }),
          expectStatus(202),
          expectHeader('Range', chunk1Range()),
        );
      });
      check('Retry previous blob chunk should return 416', () => {
        if (!prevResponse) throw fail('no upload session from the previous step');
        return api.do(
          req('PATCH', resolve(prevResponse), { headers: chunkHeaders(chunk1Range()), body: chunk1 }),
          expectStatus(416),
        );
      });
      check('Get on stale blob upload should return 204 with a range and location', async () => {
        if (!prevResponse) throw fail('no upload session from the previous step');
        lastResponse = await api.do(
          req('GET', resolve(prevResponse)),
          expectStatus(204),
          expectHeader('Location', ''),
          expectHeader('Range', chunk1Range()),
        );
      });
      check('PATCH request with second chunk should return 202', async () => {
        lastResponse = await api.do(
          req('PATCH', resolve(requireLast()), { headers: chunkHeaders(chunk2Range()), body: chunk2 }),
          expectStatus(202),
          expectHeader('Location', ''),
        );
      });
      check('PUT request with digest should return 201', async () => {
        const target = resolve(requireLast());
        target.searchParams.set('digest', sha256(blobB));
        await api.do(
          req('PUT', target, { headers: [['Content-Type', 'application/octet-stream']], emptyBody: true }),
          expectStatus(201),
          expectHeader('Location', ''),
        );
      });
    });

    describe('Cross-Repository Blob Mount', () => {
      const crossUrl = (query: Record<string, string>) => {
        const u = api.url(runner.registry, `/v2/${crossmount}/blobs/uploads/`);
        for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
        return u;
      };
      check('Cross-mounting of a blob without the from argument should yield session id', () =>
        api.do(
          req('POST', crossUrl({ mount: d.dummyDigest })),
          expectStatus(202),
          expectHeader('Location', ''),
        ),
      );
      check("POST request to mount another repository's blob should return 201 or 202", async () => {
        lastResponse = await api.do(
          req('POST', crossUrl({ mount: sha256(d.testBlobA), from: name })),
          statusIn(201, 202),
        );
      });
      check('GET request to test digest within cross-mount namespace should return 200', async () => {
        if (requireLast().status !== 201) throw new SkipCheck('the mount answered 202');
        const expected = `/v2/${crossmount}/blobs/${sha256(d.testBlobA)}`;
        if (relativeLocation(requireLast()) !== expected)
          throw fail(`Location is ${relativeLocation(requireLast())}, expected ${expected}`);
        await api.do(req('GET', resolve(requireLast())), expectStatus(200));
      });
      check('Cross-mounting of nonexistent blob should yield session id', () => {
        if (requireLast().status !== 202) throw new SkipCheck('the mount answered 201');
        const prefix = `/v2/${crossmount}/blobs/uploads/`;
        if (!relativeLocation(requireLast()).startsWith(prefix))
          throw fail(`Location ${relativeLocation(requireLast())} does not start with ${prefix}`);
      });
      check(
        'Cross-mounting without from, and automatic content discovery enabled should return a 201',
        () => {
          if (options.legacy.automaticCrossmount === undefined)
            throw new SkipCheck('automatic cross-mount is not configured');
          if (requireLast().status !== 201 || !options.legacy.automaticCrossmount)
            throw new SkipCheck('not applicable');
          return api.do(req('POST', crossUrl({ mount: sha256(d.testBlobA) })), expectStatus(201));
        },
      );
      check(
        'Cross-mounting without from, and automatic content discovery disabled should return a 202',
        () => {
          if (options.legacy.automaticCrossmount === undefined)
            throw new SkipCheck('automatic cross-mount is not configured');
          if (requireLast().status !== 201 || options.legacy.automaticCrossmount)
            throw new SkipCheck('not applicable');
          return api.do(req('POST', crossUrl({ mount: sha256(d.testBlobA) })), expectStatus(202));
        },
      );
    });

    describe('Manifest Upload', () => {
      check('GET nonexistent manifest should return 404', () =>
        api.do(req('GET', url(`/v2/<name>/manifests/${nonexistentManifest}`)), expectStatus(404)),
      );
      check('PUT should accept a manifest upload', async () => {
        for (let i = 0; i < 4; i++) {
          await api.do(
            req('PUT', url(`/v2/<name>/manifests/test${i}`), {
              headers: [['Content-Type', mt.ociImage]],
              body: d.manifests[1]!.content,
            }),
            expectHeader('Location', ''),
            expectStatus(201),
          );
        }
      });
      check('Registry should accept a manifest upload with no layers', async () => {
        const r = await api.send(
          req('PUT', url(`/v2/<name>/manifests/${emptyLayerTestTag}`), {
            headers: [['Content-Type', mt.ociImage]],
            body: d.emptyLayerManifest,
          }),
        );
        if (r.status !== 201)
          throw unsupported(`image manifest with no layers is not supported (status ${r.status})`);
        emptyLayerManifestRef = r.headers.get('Location') ?? '';
        if (emptyLayerManifestRef === '') throw fail('the manifest PUT returned no Location');
      });
      check('GET request to manifest URL (digest) should yield 200 response', () =>
        api.do(
          req('GET', url(`/v2/<name>/manifests/${d.manifests[1]!.digest}`), {
            headers: [['Accept', mt.ociImage]],
          }),
          expectStatus(200),
        ),
      );
    });

    describe('Teardown', () => {
      const deleteManifests = () =>
        check('Delete manifest created in tests', async () => {
          await deleteRef('manifests', d.manifests[1]!.digest, is2xx, statusIn(405));
          if (emptyLayerManifestRef !== '')
            await deleteRef('manifests', d.emptyLayerManifestDigest, is2xx, statusIn(405));
        });
      if (deleteManifestBeforeBlobs) deleteManifests();
      check('Delete config blob created in tests', () =>
        deleteRef('blobs', d.configs[1]!.digest, is2xx, statusIn(404, 405)),
      );
      check('Delete layer blob created in setup', () =>
        deleteRef('blobs', d.layerDigest, is2xx, statusIn(404, 405)),
      );
      if (!deleteManifestBeforeBlobs) deleteManifests();
    });
  });

  describe('Content Discovery', () => {
    let numTags = 4;
    let tagList: string[] = [];

    describe('Setup', () => {
      check('Populate registry with test blob', () => pushBlob(d.configs[2]!.content, d.configs[2]!.digest));
      check('Populate registry with test layer', () => pushBlob(d.layer, d.layerDigest));
      check('Populate registry with test tags', async () => {
        for (let i = 0; i < numTags; i++) await pushManifest(`test${i}`, d.manifests[2]!.content);
        tagList = tagsOf(await api.send(req('GET', url('/v2/<name>/tags/list'))));
      });
      check('References setup', async () => {
        const emptyJsonDigest = sha256(d.emptyJsonBlob);
        if (emptyJsonDigest !== 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a') {
          throw fail(`unexpected empty JSON digest ${emptyJsonDigest}`);
        }
        await pushBlob(d.emptyJsonBlob, emptyJsonDigest);
        // the reference blob, before the image manifest is pushed
        await pushBlob(d.refBlobA, sha256(d.refBlobA));
        const subject4 = expectHeader('OCI-Subject', d.manifests[4]!.digest);
        await pushManifest(d.refsAConfig.digest, d.refsAConfig.content, mt.ociImage, subject4);
        await pushManifest(d.refsALayer.digest, d.refsALayer.content, mt.ociImage, subject4);
        await pushManifest(d.refsIndex.digest, d.refsIndex.content, mt.ociIndex, subject4);
        await pushBlob(d.configs[4]!.content, d.configs[4]!.digest);
        await pushBlob(d.layer, d.layerDigest);
        await pushManifest(testTagName, d.manifests[4]!.content);
        // the reference blob, after the image manifest is pushed
        await pushBlob(d.refBlobB, sha256(d.refBlobB));
        await pushManifest(d.refsBConfig.digest, d.refsBConfig.content, mt.ociImage, subject4);
        await pushManifest(d.refsBLayer.digest, d.refsBLayer.content, mt.ociImage, subject4);
        // a referrer to a subject that does not exist
        await pushManifest(
          d.refsCLayer.digest,
          d.refsCLayer.content,
          mt.ociImage,
          expectHeader('OCI-Subject', d.manifests[3]!.digest),
        );
      });
    });

    describe('Test content discovery endpoints (listing tags)', () => {
      check('GET request to list tags should yield 200 response', async () => {
        const r = await api.do(req('GET', url('/v2/<name>/tags/list')), expectStatus(200));
        tagList = tagsOf(r);
        numTags = tagList.length;
      });
      check('GET number of tags should be limitable by `n` query parameter', async () => {
        const numResults = Math.floor(numTags / 2);
        const r = await api.do(
          req('GET', url('/v2/<name>/tags/list', { n: String(numResults) })),
          expectStatus(200),
        );
        tagList = tagsOf(r);
        if (tagList.length !== numResults)
          throw fail(`expected ${numResults} tags, received ${tagList.length}: ${tagList.join(', ')}`);
      });
      check('GET start of tag is set by `last` query parameter', async () => {
        const numResults = Math.floor(numTags / 2);
        tagList = tagsOf(await api.send(req('GET', url('/v2/<name>/tags/list', { n: String(numResults) }))));
        const last = tagList[numResults - 1];
        if (last === undefined) throw fail(`the first page has no tag at position ${numResults - 1}`);
        const r = await api.do(
          req('GET', url('/v2/<name>/tags/list', { n: String(numResults), last })),
          expectStatus(200),
        );
        if (tagList.length > numResults)
          throw fail(`expected at most ${numResults} tags, received ${tagList.length}`);
        // beyond the Go check: the page after `last` must not repeat it, nor exceed n
        const next = tagsOf(r);
        if (next.includes(last))
          throw fail(`the page after last=${last} includes ${last}: ${next.join(', ')}`);
        if (next.length > numResults)
          throw fail(`the page after last=${last} has ${next.length} tags, more than n=${numResults}`);
      });
    });

    describe('Test content discovery endpoints (listing references)', () => {
      const referrers = async (digest: string, query: Record<string, string> = {}) => {
        const r = await api.do(
          req('GET', url(`/v2/<name>/referrers/${digest}`, query)),
          expectStatus(200),
          expectHeader('Content-Type', mt.ociIndex),
        );
        let index: { manifests?: Array<{ digest?: string; annotations?: Record<string, string> }> };
        try {
          index = JSON.parse(r.body.toString('utf8'));
        } catch (e) {
          throw fail(`referrers body is not JSON: ${(e as Error).message}`);
        }
        return { r, manifests: index.manifests ?? [] };
      };
      const checkAnnotations = (
        manifests: Array<{ digest?: string; annotations?: Record<string, string> }>,
      ) => {
        for (const m of manifests) {
          const annotations = m.annotations ?? {};
          if (Object.keys(annotations).length !== 1)
            throw fail(`referrer ${m.digest} has ${Object.keys(annotations).length} annotations, expected 1`);
          if (annotations[testAnnotationKey] !== d.annotationValues.get(m.digest ?? '')) {
            throw fail(
              `referrer ${m.digest} has annotation "${annotations[testAnnotationKey]}", expected "${d.annotationValues.get(m.digest ?? '')}"`,
            );
          }
        }
      };
      check('GET request to nonexistent blob should result in empty 200 response', async () => {
        const { manifests } = await referrers(d.dummyDigest);
        if (manifests.length !== 0) throw fail(`expected no referrers, received ${manifests.length}`);
      });
      check('GET request to existing blob should yield 200', async () => {
        const { manifests } = await referrers(d.manifests[4]!.digest);
        if (manifests.length !== 5) throw fail(`expected 5 referrers, received ${manifests.length}`);
        if (manifests[0]!.digest === manifests[1]!.digest)
          throw fail('the first two referrers are the same manifest');
        checkAnnotations(manifests);
      });
      check('GET request to existing blob with filter should yield 200', async () => {
        const { r, manifests } = await referrers(d.manifests[4]!.digest, { artifactType: d.typeA });
        if (r.headers.get('OCI-Filters-Applied')) {
          if (manifests.length !== 2)
            throw fail(`expected 2 referrers of artifactType ${d.typeA}, received ${manifests.length}`);
          if (r.headers.get('OCI-Filters-Applied') !== 'artifactType') {
            throw fail(
              `OCI-Filters-Applied is "${r.headers.get('OCI-Filters-Applied')}", expected "artifactType"`,
            );
          }
          checkAnnotations(manifests);
        } else {
          if (manifests.length !== 5) throw fail(`expected 5 referrers, received ${manifests.length}`);
          checkAnnotations(manifests);
          throw unsupported('filtering by artifact-type is not implemented');
        }
      });
      check('GET request to missing manifest should yield 200', async () => {
        const { manifests } = await referrers(d.manifests[3]!.digest);
        if (manifests.length !== 1) throw fail(`expected 1 referrer, received ${manifests.length}`);
        if (manifests[0]!.digest !== d.refsCLayer.digest)
          throw fail(`expected referrer ${d.refsCLayer.digest}, received ${manifests[0]!.digest}`);
      });
    });

    describe('Teardown', () => {
      const references = [
        d.refsIndex.digest,
        d.manifests[2]!.digest,
        d.manifests[4]!.digest,
        d.refsAConfig.digest,
        d.refsALayer.digest,
        testTagName,
        d.refsBConfig.digest,
        d.refsBLayer.digest,
        d.refsCLayer.digest,
      ];
      const deleteManifests = () =>
        check('Delete created manifest & associated tags', async () => {
          for (const ref of references) await deleteRef('manifests', ref, is2xx, statusIn(405, 404));
        });
      if (deleteManifestBeforeBlobs) deleteManifests();
      check('Delete config blob created in tests', () =>
        deleteRef('blobs', d.configs[2]!.digest, is2xx, statusIn(405)),
      );
      check('Delete layer blob created in setup', () =>
        deleteRef('blobs', d.layerDigest, is2xx, statusIn(405)),
      );
      if (!deleteManifestBeforeBlobs) deleteManifests();
      check('References teardown', async () => {
        const remove = (kind: 'manifests' | 'blobs', ref: string) =>
          deleteRef(kind, ref, is2xx, statusIn(405, 404));
        const referrerManifests = [
          d.refsIndex,
          d.refsAConfig,
          d.refsALayer,
          d.manifests[4]!,
          d.refsBConfig,
          d.refsBLayer,
        ];
        if (deleteManifestBeforeBlobs) for (const m of referrerManifests) await remove('manifests', m.digest);
        await remove('blobs', d.configs[4]!.digest);
        await remove('blobs', sha256(d.refBlobA));
        await remove('blobs', sha256(d.refBlobB));
        await remove('blobs', sha256(d.emptyJsonBlob));
        if (!deleteManifestBeforeBlobs)
          for (const m of referrerManifests) await remove('manifests', m.digest);
      });
    });
  });

  describe('Content Management', () => {
    let tagToDelete = '';
    let numTags = 0;
    let blobDeleteAllowed = true;

    describe('Setup', () => {
      check('Populate registry with test config blob', () =>
        pushBlob(d.configs[3]!.content, d.configs[3]!.digest),
      );
      check('Populate registry with test layer', () => pushBlob(d.layer, d.layerDigest));
      check('Populate registry with test tag', async () => {
        tagToDelete = testTagName;
        await pushManifest(tagToDelete, d.manifests[3]!.content);
      });
      check('Check how many tags there are before anything gets deleted', async () => {
        const r = await api.do(req('GET', url('/v2/<name>/tags/list')), expectStatus(200));
        numTags = tagsOf(r).length;
      });
    });

    describe('Manifest delete', () => {
      check(
        'DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)',
        async () => {
          const r = await api.do(
            req('DELETE', url(`/v2/<name>/manifests/${tagToDelete}`)),
            statusIn(400, 202, 405),
          );
          if (r.status === 400 && firstErrorCode(r) !== 'UNSUPPORTED')
            throw fail(`tag delete refused with ${firstErrorCode(r)}, expected UNSUPPORTED`);
        },
      );
      check('DELETE request to manifest (digest) should yield 202 response unless already deleted', () =>
        api.do(req('DELETE', url(`/v2/<name>/manifests/${d.manifests[3]!.digest}`)), statusIn(202, 404)),
      );
      check(
        'GET request to deleted manifest URL should yield 404 response, unless delete is disallowed',
        () => api.do(req('GET', url(`/v2/<name>/manifests/${d.manifests[3]!.digest}`)), statusIn(404, 200)),
      );
      check('GET request to tags list should reflect manifest deletion', async () => {
        const r = await api.do(req('GET', url('/v2/<name>/tags/list')), expectStatus(200));
        if (!(tagsOf(r).length < numTags))
          throw fail(`expected fewer than ${numTags} tags, received ${tagsOf(r).length}`);
      });
    });

    describe('Blob delete', () => {
      check('DELETE request to blob URL should yield 202 response', async () => {
        await api.do(req('DELETE', url(`/v2/<name>/blobs/${d.configs[3]!.digest}`)), statusIn(202, 404, 405));
        const r = await api.do(
          req('DELETE', url(`/v2/<name>/blobs/${d.layerDigest}`)),
          statusIn(202, 404, 405),
        );
        if (r.status === 405) blobDeleteAllowed = false;
      });
      check('GET request to deleted blob URL should yield 404 response', () => {
        if (!blobDeleteAllowed) throw new SkipCheck('blob deletion is disallowed');
        return api.do(req('GET', url(`/v2/<name>/blobs/${d.configs[3]!.digest}`)), expectStatus(404));
      });
    });
  });
}
