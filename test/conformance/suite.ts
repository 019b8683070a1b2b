/**
 * A TypeScript port of the OCI distribution-spec conformance suite (`conformance/` of
 * opencontainers/distribution-spec): `runConformance` registers one vitest check per leaf of the Go
 * runner (`TestAll` in run.go), in the Go runner's order, followed by the legacy ginkgo workflows
 * (01_pull … 04_management). Call it inside a test file; the registry is reached at `baseUrl`.
 *
 * Layout, by workflow:
 *   ping                                  GET /v2/
 *   content discovery: empty repository   tag list and referrers before anything is pushed
 *   push: <algo> blob APIs                every upload method, mounts, cancel, range pulls, bad digests
 *   data: <kind>                          per data set: push → content discovery (tags) → pull (HEAD,
 *                                         GET) → content discovery (referrers) → content management
 *   manifest errors                       missing manifests, malformed digests
 *   legacy workflows                      Pull, Push, Content Discovery, Content Management
 */
import { describe, it } from 'vitest';
import {
  expectBody,
  expectHeader,
  expectStatus,
  toConformanceError,
  type Expectation,
  type HttpResponse,
} from './api.ts';
import { chunkMin, resolveOptions, type ConformanceOptions, type ConformanceOptionsInput } from './config.ts';
import { registerLegacyWorkflows } from './legacy.ts';
import { Runner, SkipCheck, type ApiName, type Check } from './runner.ts';
import { digestOf, generateData, shortDigest, TestData, type Algorithm } from './testdata.ts';

export type { ConformanceOptions, ConformanceOptionsInput } from './config.ts';

/** Registers the suite's checks against the registry at `baseUrl` (a function when it is known only later). */
export function runConformance(baseUrl: string | (() => string), input: ConformanceOptionsInput = {}): void {
  const options = resolveOptions(input);
  const registry = typeof baseUrl === 'function' ? baseUrl : () => baseUrl;
  const runner = new Runner(registry, options);
  const check = makeCheck(runner, options);
  const repo = options.repo1;

  describe('ping', () => {
    check('GET /v2/ answers 200', () => runner.testPing());
  });

  describe('content discovery: empty repository', () => {
    check('tag list', () => runner.testEmptyTagList(repo));
    check('referrers of an unknown digest', () => runner.testEmptyReferrers(repo));
  });

  const algorithms: Algorithm[] = options.data.sha512 ? ['sha256', 'sha512'] : ['sha256'];
  for (const algo of algorithms) registerBlobApis(check, runner, options, algo);

  for (const td of generateData(options)) registerDataSet(check, runner, td, repo);

  registerManifestErrors(check, runner, repo);

  if (options.legacy.enabled) {
    describe('legacy workflows (ginkgo suite)', () => registerLegacyWorkflows(check, runner, options));
  }
}

/** Registers one check: a SkipCheck skips it; "unsupported" skips it unless `strict`; the rest fails it. */
function makeCheck(runner: Runner, options: ConformanceOptions): Check {
  return (name, fn) => {
    it(name, async (ctx) => {
      runner.api.trace = [];
      try {
        await fn();
      } catch (error) {
        if (error instanceof SkipCheck) return ctx.skip(error.message);
        const e = toConformanceError(error);
        if (e.unsupported && !options.strict) return ctx.skip(`registry does not support this: ${e.message}`);
        const trace = runner.api.trace.length ? `\n\nHTTP exchange:\n${runner.api.trace.join('\n')}` : '';
        const strictNote = e.unsupported
          ? '\n(reported as unsupported by the Go suite; strict mode requires it)'
          : '';
        const failure = new Error(`${e.message}${strictNote}${trace}`);
        failure.name = e.kind === 'error' ? 'ConformanceTestError' : 'ConformanceFailure';
        throw failure;
      }
    });
  };
}

// ── blob APIs ──────────────────────────────────────────────────────────────────────────────────

const blobApiTests = [
  'post only',
  'post+put',
  'chunked single',
  'stream',
  'mount',
  'mount anonymous',
  'mount missing',
  'post cancel',
  'chunked multi',
  'chunked multi and put chunk',
  'chunked out-of-order',
  'chunked out-of-order and put chunk',
] as const;

function registerBlobApis(check: Check, runner: Runner, options: ConformanceOptions, algo: Algorithm): void {
  const { repo1: repo, repo2 } = options;
  const td = new TestData(`blobs-${algo}`, `Blobs ${algo}`);
  const digests = new Map<string, string>();
  let minChunkSize = chunkMin;
  for (const name of blobApiTests.slice(0, 8)) digests.set(name, td.genBlob({ blobSize: 512, algo }).digest);

  describe(`push: ${algo} blob APIs`, () => {
    check('GET of a blob never pushed answers 404', async () => {
      runner.require('blob push', 'blob get');
      try {
        await runner.api.blobGetReq(
          runner.registry,
          repo,
          digests.get('post cancel')!,
          [],
          expectStatus(404),
        );
      } catch (e) {
        throw runner.failed(e, 'blob get');
      }
      runner.pass('blob get');
    });

    for (const testName of blobApiTests) {
      describe(testName, () => {
        // the Go runner pulls the blob only when its push passed, and always cleans up
        let pushed = false;
        const digest = () => digests.get(testName)!;
        const generateChunkedBlob = () => {
          const blob = td.genBlob({ blobSize: minChunkSize * 3 - 5, algo });
          digests.set(testName, blob.digest);
        };
        const api: ApiName =
          testName === 'post only'
            ? 'blob post only'
            : testName.startsWith('chunked')
              ? 'blob chunked'
              : testName === 'stream'
                ? 'blob streaming'
                : testName.startsWith('mount')
                  ? 'blob mount'
                  : 'blob post put';
        const track = () => runner.markBlobApiTested(api, algo);

        switch (testName) {
          case 'post only':
            check('blob-post-only', async () => {
              track();
              await runner.testPushBlobPostOnly(td, repo, digest());
              pushed = true;
            });
            break;
          case 'post+put':
            check('blob-post-put', async () => {
              track();
              await runner.testPushBlobPostPut(td, repo, digest());
              pushed = true;
            });
            break;
          case 'chunked single':
            check('blob-patch-chunked (single chunk, reads OCI-Chunk-Min-Length)', async () => {
              track();
              const min = await runner.testPushBlobPatchChunked(td, repo, digest());
              pushed = true;
              if (min !== '' && Number.isInteger(Number(min)) && Number(min) > minChunkSize)
                minChunkSize = Number(min);
            });
            break;
          case 'chunked multi':
          case 'chunked multi and put chunk':
          case 'chunked out-of-order':
          case 'chunked out-of-order and put chunk':
            check(
              `blob-patch-chunked (three chunks${testName.includes('out-of-order') ? ', out of order first' : ''}${testName.includes('put chunk') ? ', last chunk in the PUT' : ''})`,
              async () => {
                track();
                generateChunkedBlob();
                await runner.testPushBlobPatchChunked(td, repo, digest(), {
                  putLastChunk: testName.includes('put chunk'),
                  outOfOrderChunks: testName.includes('out-of-order'),
                });
                pushed = true;
              },
            );
            break;
          case 'stream':
            check('blob-patch-stream', async () => {
              track();
              await runner.testPushBlobPatchStream(td, repo, digest());
              pushed = true;
            });
            break;
          case 'post cancel':
            check('blob-post-cancel (DELETE of the session answers 204)', async () => {
              track();
              await runner.testPushBlobPostCancel(repo);
            });
            break;
          case 'mount':
            check(`push to ${repo2}`, () => runner.testPushBlobAny(td, repo2, digest()));
            check(`blob-mount from ${repo2}`, async () => {
              track();
              await runner.testPushBlobMount(td, repo, repo2, digest());
              pushed = true;
            });
            break;
          case 'mount anonymous':
            check(`push to ${repo2}`, () => runner.testPushBlobAny(td, repo2, digest()));
            check('blob-mount-anonymous (no from)', async () => {
              runner.markBlobApiTested('blob anonymous mount', algo);
              await runner.testPushBlobMountAnonymous(td, repo, digest());
              pushed = true;
            });
            break;
          case 'mount missing':
            check(
              `blob-mount from ${repo2}, which lacks the blob, falls back to an upload (202)`,
              async () => {
                track();
                await runner.testPushBlobMountMissing(td, repo, repo2, digest());
                pushed = true;
              },
            );
            break;
        }
        if (testName !== 'post cancel') {
          check('blob-head', () => {
            if (!pushed) throw new SkipCheck('the push did not pass');
            return runner.testHeadBlob(td, repo, digest());
          });
          check('blob-get', () => {
            if (!pushed) throw new SkipCheck('the push did not pass');
            return runner.testPullBlob(td, repo, digest());
          });
        }
        check('blob-delete', () => runner.testDeleteBlob(repo, digest()));
        if (testName === 'mount' || testName === 'mount anonymous') {
          check(`blob-delete in ${repo2}`, () => runner.testDeleteBlob(repo2, digest()));
        }
      });
    }

    describe('range requests', () => {
      const blobLen = 2048;
      const blob = td.genBlob({ blobSize: blobLen, algo });
      const body = blob.body;
      let ready = false;
      check('setup: push a 2048 byte blob', async () => {
        runner.require('blob get range', 'blob push');
        await runner.testPushBlobAny(td, repo, blob.digest);
        ready = true;
      });
      const ranges: Array<[string, string, Expectation[]]> = [
        [
          'range 500-1499',
          'bytes=500-1499',
          [
            expectBody(body.subarray(500, 1500)),
            expectStatus(206),
            expectHeader('Content-Length', '1000'),
            anyHeader('Content-Range', [`bytes 500-1499/${blobLen}`, 'bytes 500-1499/*']),
          ],
        ],
        [
          'range 500-',
          'bytes=500-',
          [
            expectBody(body.subarray(500)),
            expectStatus(206),
            expectHeader('Content-Length', String(blobLen - 500)),
            anyHeader('Content-Range', [`bytes 500-${blobLen - 1}/${blobLen}`, `bytes 500-${blobLen - 1}/*`]),
          ],
        ],
        [
          'range -500',
          'bytes=-500',
          [
            expectBody(body.subarray(blobLen - 500)),
            expectStatus(206),
            expectHeader('Content-Length', '500'),
            anyHeader('Content-Range', [
              `bytes ${blobLen - 500}-${blobLen - 1}/${blobLen}`,
              `bytes ${blobLen - 500}-${blobLen - 1}/*`,
            ]),
          ],
        ],
        [
          'range 2000-5000',
          'bytes=2000-5000',
          [
            expectBody(body.subarray(2000)),
            expectStatus(206),
            expectHeader('Content-Length', String(blobLen - 2000)),
            anyHeader('Content-Range', [
              `bytes 2000-${blobLen - 1}/${blobLen}`,
              `bytes 2000-${blobLen - 1}/*`,
            ]),
          ],
        ],
        ['range 500-0', 'bytes=500-0', [expectStatus(416)]],
        ['range 5000-10000', 'bytes=5000-10000', [expectStatus(416)]],
      ];
      for (const [name, header, expectations] of ranges) {
        check(name, () => {
          if (!ready) throw new SkipCheck('the setup push did not pass');
          return runner.testBlobRange(repo, blob.digest, header, expectations, body);
        });
      }
      check('blob-delete', () => runner.testDeleteBlob(repo, blob.digest));
    });

    // well known blob contents
    const known: Array<[string, Buffer]> = [];
    if (options.data.emptyBlob) known.push(['empty', Buffer.alloc(0)]);
    known.push(['emptyJSON', Buffer.from('{}')]);
    for (const [name, value] of known) {
      const digest = digestOf(value, algo);
      td.blobs.set(digest, value);
      describe(name, () => {
        check('push', () => runner.testPushBlobAny(td, repo, digest));
        check('blob-head', () => runner.testHeadBlob(td, repo, digest));
        check('blob-get', () => runner.testPullBlob(td, repo, digest));
        check('blob-delete', () => runner.testDeleteBlob(repo, digest));
      });
    }

    // the upload methods with content that does not match the digest
    const badDigestTests = [
      'bad digest post only',
      'bad digest post+put',
      'bad digest chunked',
      'bad digest chunked and put chunk',
      'bad digest stream',
    ] as const;
    for (const testName of badDigestTests) {
      check(`${testName} is refused with 400`, async () => {
        const blob = td.genBlob({ blobSize: minChunkSize * 3 - 5, algo });
        // corrupt the blob bytes
        td.blobs.set(blob.digest, Buffer.concat([blob.body, Buffer.from('oh no')]));
        const flags = { expectBadDigest: true };
        switch (testName) {
          case 'bad digest post only':
            return runner.testPushBlobPostOnly(td, repo, blob.digest, flags);
          case 'bad digest post+put':
            return runner.testPushBlobPostPut(td, repo, blob.digest, flags);
          case 'bad digest chunked':
            return runner.testPushBlobPatchChunked(td, repo, blob.digest, flags);
          case 'bad digest chunked and put chunk':
            return runner.testPushBlobPatchChunked(td, repo, blob.digest, { ...flags, putLastChunk: true });
          case 'bad digest stream':
            return runner.testPushBlobPatchStream(td, repo, blob.digest, flags);
        }
      });
    }
  });
}

function anyHeader(key: string, values: string[]): Expectation {
  return (r: HttpResponse) => {
    const errors = values.map((v) => expectHeader(key, v)(r));
    return errors.some((e) => e === undefined) ? undefined : errors.join(' or ');
  };
}

// ── data sets ──────────────────────────────────────────────────────────────────────────────────

function registerDataSet(check: Check, runner: Runner, td: TestData, repo: string): void {
  describe(`data: ${td.title}`, () => {
    describe('push', () => {
      for (const digest of td.blobs.keys()) {
        check(`blob ${td.label(digest)}`, () =>
          runner.testPushBlobAny(td, repo, digest, td.pushOpts.get(digest)),
        );
      }
      for (const digest of td.manOrder) {
        const flags = td.pushOpts.get(digest) ?? {};
        const what = flags.expectBadDigest
          ? ' (body does not match the digest: 400)'
          : flags.expectBlobUnknown
            ? ' (layer missing: 400 MANIFEST_BLOB_UNKNOWN)'
            : flags.tagParam
              ? ` with ?tag= ${[...td.tags]
                  .filter(([, d]) => d === digest)
                  .map(([t]) => t)
                  .join(', ')}`
              : '';
        check(`manifest by digest: ${td.label(digest)}${what}`, () =>
          runner.testPushManifestDigest(td, repo, digest, flags),
        );
      }
      for (const [tag, digest] of td.tags) {
        check(`manifest by tag "${tag}" → ${td.label(digest)}`, () =>
          runner.testPushManifestTag(td, repo, tag, digest, td.pushOpts.get(digest)),
        );
      }
    });

    describe('content discovery: tag list', () => {
      check('tag-list has every pushed tag, and ?last= pages after it', () => runner.testList(td, repo));
    });

    describe('pull: HEAD', () => {
      for (const [tag, digest] of td.tags) {
        check(`manifest-head-by-tag "${tag}"`, () =>
          runner.testHeadManifestTag(td, repo, tag, digest, td.pullOpts.get(digest)),
        );
      }
      for (const digest of td.manOrder) {
        check(`manifest-head-by-digest ${td.label(digest)}`, () =>
          runner.testHeadManifestDigest(td, repo, digest, td.pullOpts.get(digest)),
        );
      }
      for (const digest of td.blobs.keys()) {
        check(`blob-head ${td.label(digest)}`, () =>
          runner.testHeadBlob(td, repo, digest, td.pullOpts.get(digest)),
        );
      }
    });

    describe('pull: GET', () => {
      for (const [tag, digest] of td.tags) {
        check(`manifest-by-tag "${tag}"`, () =>
          runner.testPullManifestTag(td, repo, tag, digest, td.pullOpts.get(digest)),
        );
      }
      for (const digest of td.manOrder) {
        check(`manifest-by-digest ${td.label(digest)}`, () =>
          runner.testPullManifestDigest(td, repo, digest, td.pullOpts.get(digest)),
        );
      }
      for (const digest of td.blobs.keys()) {
        check(`blob-get ${td.label(digest)}`, () =>
          runner.testPullBlob(td, repo, digest, td.pullOpts.get(digest)),
        );
      }
    });

    if (td.referrers.size > 0) {
      describe('content discovery: referrers', () => {
        for (const [subject, goals] of td.referrers) {
          check(`referrers of ${td.label(subject)} (${goals.length}), unfiltered and by artifactType`, () =>
            runner.testReferrers(repo, subject, goals),
          );
        }
      });
    }

    describe('content management: delete', () => {
      for (const tag of td.tags.keys())
        check(`tag-delete "${tag}"`, () => runner.testDeleteTag(td, repo, tag));
      for (const digest of [...td.manOrder].reverse()) {
        check(`manifest-delete ${td.label(digest)}`, () => runner.testDeleteManifest(repo, digest));
      }
      for (const digest of td.blobs.keys()) {
        check(`blob-delete ${td.label(digest)}`, () => runner.testDeleteBlob(repo, digest));
      }
    });
  });
}

// ── manifest errors ────────────────────────────────────────────────────────────────────────────

function registerManifestErrors(check: Check, runner: Runner, repo: string): void {
  describe('manifest errors', () => {
    describe('missing-manifest', () => {
      check('by-digest answers 404', () => runner.testMissingManifestByDigest(repo));
      check('by-tag answers 404', () => runner.testMissingManifestByTag(repo));
    });

    describe('invalid-digest-format', () => {
      const td = new TestData('invalid-manifest-digest', 'Invalid Manifest Digest');
      const manifest = td.genManifestFull({ layerCount: 1 });
      for (const digest of td.blobs.keys()) {
        check(`push blob ${td.label(digest)}`, () => runner.testPushBlobAny(td, repo, digest));
      }
      check('manifest-put to sha256:baddigeststring answers 400', () =>
        runner.testInvalidDigestPut(td, repo, manifest),
      );
      check('manifest-get of sha256:baddigeststring answers 404 or 400', () =>
        runner.testInvalidDigestGet(repo),
      );
      // cleanup (TestDelete)
      check(`manifest-delete ${shortDigest(manifest)}`, () => runner.testDeleteManifest(repo, manifest));
      for (const digest of td.blobs.keys()) {
        check(`blob-delete ${td.label(digest)}`, () => runner.testDeleteBlob(repo, digest));
      }
    });
  });
}
