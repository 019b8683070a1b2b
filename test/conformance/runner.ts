/**
 * The checks of `conformance/run.go`: each method is one of the Go runner's `Test*` leaves, with the same
 * API gating (`APIRequire`), the same status bookkeeping (which `TestPushBlobAny` uses to pick an upload
 * method) and the same requests and expectations.
 */
import { randomBytes } from 'node:crypto';
import {
  anyOf,
  Api,
  ConformanceError,
  detectSubject,
  expectBody,
  expectHeader,
  expectStatus,
  fail,
  joinErrors,
  toConformanceError,
  unsupported,
  type Expectation,
  type HttpResponse,
  type IndexResponse,
} from './api.ts';
import type { ConformanceOptions } from './config.ts';
import {
  algorithmOf,
  digestOf,
  randText,
  type Algorithm,
  type Descriptor,
  type Flags,
  type TestData,
} from './testdata.ts';

/** Registers one check (a vitest `it`) running `fn`. */
export type Check = (name: string, fn: () => Promise<unknown> | unknown) => void;

/** Thrown to report a check as skipped: disabled by configuration, or not applicable at run time. */
export class SkipCheck extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SkipCheck';
  }
}

export type ApiName =
  | 'tag listing'
  | 'tag delete'
  | 'tag delete atomic'
  | 'blob upload cancel'
  | 'blob push'
  | 'blob post only'
  | 'blob post put'
  | 'blob chunked'
  | 'blob streaming'
  | 'blob mount'
  | 'blob anonymous mount'
  | 'blob get'
  | 'blob get range'
  | 'blob head'
  | 'blob delete'
  | 'blob delete atomic'
  | 'manifest put by digest'
  | 'manifest put by tag'
  | 'manifest put with tag params'
  | 'manifest put with subject'
  | 'manifest get by digest'
  | 'manifest get by tag'
  | 'manifest head by digest'
  | 'manifest head by tag'
  | 'manifest delete'
  | 'manifest delete atomic'
  | 'referrers'
  | 'ping';

/** Ordered as the Go suite's statuses: a status only ever moves up. */
export const Status = { Unknown: 0, Disabled: 1, Skip: 2, Pass: 3, Fail: 4, Error: 5 } as const;
export type Status = (typeof Status)[keyof typeof Status];

/** The upload methods `TestPushBlobAny` chooses among, in its preferred order. */
const blobApis: ApiName[] = ['blob post put', 'blob post only', 'blob streaming', 'blob chunked'];

export class Runner {
  readonly api: Api;
  readonly config: ConformanceOptions;
  readonly #registry: () => string;
  readonly apiStatus = new Map<ApiName, Status>();
  readonly #blobApisTested = new Set<ApiName>();
  readonly #blobApisTestedByAlgo = new Map<Algorithm, Set<ApiName>>();

  constructor(registry: () => string, config: ConformanceOptions) {
    this.#registry = registry;
    this.config = config;
    this.api = new Api({ username: config.username, password: config.password, cacheAuth: config.cacheAuth });
  }

  get registry(): string {
    return this.#registry();
  }

  // ── bookkeeping ──────────────────────────────────────────────────────────────────────────────

  #set(status: Status, apis: ApiName[]): void {
    for (const a of apis)
      this.apiStatus.set(a, Math.max(this.apiStatus.get(a) ?? Status.Unknown, status) as Status);
  }

  pass(...apis: ApiName[]): void {
    this.#set(Status.Pass, apis);
  }

  /** Records the failure (`TestFail`) and returns it, to be thrown. */
  failed(error: unknown, ...apis: ApiName[]): ConformanceError {
    const e = toConformanceError(error);
    this.#set(e.kind === 'error' ? Status.Error : e.unsupported ? Status.Skip : Status.Fail, apis);
    return e;
  }

  /** `APIRequire`: a SkipCheck when the configuration disables any of the APIs. */
  require(...apis: ApiName[]): void {
    const disabled = apis.filter((a) => this.#disabled(a));
    if (disabled.length > 0) {
      this.#set(Status.Disabled, disabled);
      throw new SkipCheck(`api ${disabled.join(', ')} is disabled in the configuration`);
    }
  }

  #disabled(a: ApiName): boolean {
    const { apis } = this.config;
    switch (a) {
      case 'ping':
        return !apis.ping;
      case 'tag listing':
        return !apis.tags.list;
      case 'manifest head by tag':
      case 'manifest head by digest':
      case 'manifest get by tag':
      case 'manifest get by digest':
      case 'blob head':
      case 'blob get':
      case 'blob get range':
        return !apis.pull;
      case 'manifest put by tag':
      case 'manifest put by digest':
      case 'manifest put with subject':
      case 'blob push':
      case 'blob post only':
      case 'blob post put':
      case 'blob chunked':
      case 'blob streaming':
      case 'blob mount':
        return !apis.push;
      case 'manifest put with tag params':
        return !apis.push || !apis.manifests.tagParam;
      case 'blob upload cancel':
        return !apis.blobs.uploadCancel;
      case 'blob anonymous mount':
        return !apis.push || !apis.blobs.mountAnonymous;
      case 'tag delete':
        return !apis.tags.delete;
      case 'tag delete atomic':
        return !apis.tags.delete || !apis.tags.atomic;
      case 'manifest delete':
        return !apis.manifests.delete;
      case 'manifest delete atomic':
        return !apis.manifests.atomic;
      case 'blob delete':
        return !apis.blobs.delete;
      case 'blob delete atomic':
        return !apis.blobs.atomic;
      case 'referrers':
        return !apis.referrer;
    }
  }

  #blobFlags(extra: Flags = {}): Flags {
    return { ...extra, ...(this.config.apis.blobs.digestHeader ? { requireDigestHeader: true } : {}) };
  }

  #manifestFlags(extra: Flags = {}): Flags {
    return { ...extra, ...(this.config.apis.manifests.digestHeader ? { requireDigestHeader: true } : {}) };
  }

  #testedByAlgo(algo: Algorithm): Set<ApiName> {
    let set = this.#blobApisTestedByAlgo.get(algo);
    if (!set) this.#blobApisTestedByAlgo.set(algo, (set = new Set()));
    return set;
  }

  /** Marks an upload method as exercised, so `testPushBlobAny` prefers the others first. */
  markBlobApiTested(api: ApiName, algo: Algorithm): void {
    this.#blobApisTested.add(api);
    this.#testedByAlgo(algo).add(api);
  }

  // ── ping and empty repository ────────────────────────────────────────────────────────────────

  /** `TestPing`, plus the legacy suite's "GET request to base API route must return 200 response". */
  async testPing(): Promise<void> {
    this.require('ping');
    try {
      await this.api.pingReq(this.registry, expectStatus(200));
    } catch (e) {
      throw this.failed(e, 'ping');
    }
    this.pass('ping');
  }

  async testEmptyTagList(repo: string): Promise<void> {
    this.require('tag listing');
    try {
      await this.api.tagList(this.registry, repo);
    } catch (e) {
      throw this.failed(e, 'tag listing');
    }
    this.pass('tag listing');
  }

  async testEmptyReferrers(repo: string): Promise<void> {
    this.require('referrers');
    const subject = digestOf(Buffer.from(randText()));
    try {
      await this.api.referrersList(this.registry, repo, subject);
    } catch (e) {
      throw this.failed(e, 'referrers');
    }
    this.pass('referrers');
  }

  // ── blob pushes ──────────────────────────────────────────────────────────────────────────────

  /**
   * `TestPushBlobAny`: untested upload methods first, then those untested with this algorithm, then
   * those known to pass, then the rest; done at the first success. As in the Go suite, a method that
   * failed on the way still fails the check (it is a failed leaf there), even when another one pushed.
   */
  async testPushBlobAny(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    this.require('blob push');
    const algo = algorithmOf(digest);
    const tested = this.#testedByAlgo(algo);
    const order: ApiName[] = [];
    for (const a of blobApis) if (!this.#blobApisTested.has(a)) order.push(a);
    for (const a of blobApis) if (!tested.has(a) && !order.includes(a)) order.push(a);
    for (const a of blobApis) if (this.apiStatus.get(a) === Status.Pass && !order.includes(a)) order.push(a);
    for (const a of blobApis) if (!order.includes(a)) order.push(a);
    const errors: ConformanceError[] = [];
    for (const a of order) {
      let error: ConformanceError | null = null;
      try {
        switch (a) {
          case 'blob post put':
            await this.testPushBlobPostPut(td, repo, digest, flags);
            break;
          case 'blob post only':
            await this.testPushBlobPostOnly(td, repo, digest, flags);
            break;
          case 'blob streaming':
            await this.testPushBlobPatchStream(td, repo, digest, flags);
            break;
          case 'blob chunked':
            await this.testPushBlobPatchChunked(td, repo, digest, flags);
            break;
        }
      } catch (e) {
        const c = e instanceof SkipCheck ? unsupported(e.message) : toConformanceError(e);
        error = new ConformanceError(`${a}: ${c.message}`, c.kind, [c]);
      }
      this.markBlobApiTested(a, algo);
      if (!error) {
        const reportable = errors.filter((e) => this.config.strict || !e.unsupported);
        if (reportable.length > 0) {
          throw fail(`blob was pushed with ${a}, but before that:\n${joinErrors(reportable)!.message}`);
        }
        return;
      }
      errors.push(error);
    }
    throw joinErrors(errors)!;
  }

  async testPushBlobMount(td: TestData, repo: string, repo2: string, digest: string): Promise<void> {
    this.require('blob mount');
    try {
      await this.api.blobMount(this.registry, repo, repo2, digest, td, this.#blobFlags());
    } catch (e) {
      throw this.failed(e, 'blob mount');
    }
    this.pass('blob mount');
  }

  async testPushBlobMountAnonymous(td: TestData, repo: string, digest: string): Promise<void> {
    this.require('blob anonymous mount');
    try {
      await this.api.blobMount(this.registry, repo, '', digest, td, this.#blobFlags());
    } catch (e) {
      throw this.failed(e, 'blob anonymous mount');
    }
    this.pass('blob anonymous mount');
  }

  /** A mount of a blob the source does not hold must fall back to an upload session (202). */
  async testPushBlobMountMissing(td: TestData, repo: string, repo2: string, digest: string): Promise<void> {
    this.require('blob mount');
    let error: ConformanceError | null = null;
    try {
      await this.api.blobMount(this.registry, repo, repo2, digest, td, this.#blobFlags());
      error = fail('blob mount of missing blob incorrectly succeeded');
    } catch (e) {
      const c = toConformanceError(e);
      if (!c.unsupported) error = c;
    }
    if (error) throw this.failed(error, 'blob mount');
    this.pass('blob mount');
  }

  async testPushBlobPostCancel(repo: string): Promise<void> {
    this.require('blob push', 'blob upload cancel');
    try {
      await this.api.blobPostCancel(this.registry, repo);
    } catch (e) {
      throw this.failed(e, 'blob push', 'blob upload cancel');
    }
    this.pass('blob push', 'blob upload cancel');
  }

  async testPushBlobPostPut(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    this.require('blob post put');
    try {
      await this.api.blobPostPut(this.registry, repo, digest, td, this.#blobFlags(flags));
    } catch (e) {
      throw this.failed(e, 'blob post put');
    }
    this.pass('blob post put', 'blob push');
  }

  async testPushBlobPostOnly(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    this.require('blob post only');
    try {
      await this.api.blobPostOnly(this.registry, repo, digest, td, this.#blobFlags(flags));
    } catch (e) {
      throw this.failed(e, 'blob post only');
    }
    this.pass('blob post only', 'blob push');
  }

  async testPushBlobPatchChunked(
    td: TestData,
    repo: string,
    digest: string,
    flags: Flags = {},
  ): Promise<string> {
    this.require('blob chunked');
    let min: string;
    try {
      ({ minChunkLength: min } = await this.api.blobPatchChunked(
        this.registry,
        repo,
        digest,
        td,
        this.#blobFlags(flags),
      ));
    } catch (e) {
      throw this.failed(e, 'blob chunked');
    }
    this.pass('blob chunked', 'blob push');
    return min;
  }

  async testPushBlobPatchStream(
    td: TestData,
    repo: string,
    digest: string,
    flags: Flags = {},
  ): Promise<void> {
    this.require('blob streaming');
    try {
      await this.api.blobPatchStream(this.registry, repo, digest, td, this.#blobFlags(flags));
    } catch (e) {
      throw this.failed(e, 'blob streaming');
    }
    this.pass('blob streaming', 'blob push');
  }

  // ── manifest pushes ──────────────────────────────────────────────────────────────────────────

  /** `TestPushManifestDigest`, with the tag parameters and their OCI-Tag echo when the data asks for them. */
  async testPushManifestDigest(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    const apis: ApiName[] = ['manifest put by digest'];
    const body = td.manifests.get(digest);
    if (body && detectSubject(body)) apis.push('manifest put with subject');
    const expectTags: string[] = [];
    if (flags.tagParam) {
      apis.push('manifest put with tag params');
      for (const [tag, d] of td.tags) if (d === digest) expectTags.push(tag);
    }
    this.require(...apis);
    let response: HttpResponse | null;
    try {
      response = await this.api.manifestPut(
        this.registry,
        repo,
        digest,
        digest,
        td,
        this.config.apis.referrer,
        expectTags,
        this.#manifestFlags(flags),
      );
    } catch (e) {
      throw this.failed(e, ...apis);
    }
    if (expectTags.length > 0) {
      const values = (response?.headers.get('OCI-Tag') ?? '').split(',').map((v) => v.trim());
      const missing: ConformanceError[] = [];
      for (const tag of expectTags) {
        if (values.includes(tag)) td.tagPushed.add(tag);
        else missing.push(unsupported(`header missing OCI-Tag: ${tag}`));
      }
      if (missing.length > 0) throw this.failed(joinErrors(missing), 'manifest put with tag params');
    }
    this.pass(...apis);
  }

  async testPushManifestTag(
    td: TestData,
    repo: string,
    tag: string,
    digest: string,
    flags: Flags = {},
  ): Promise<void> {
    if (td.tagPushed.has(tag))
      throw new SkipCheck('tag already pushed (as a tag parameter of the digest push)');
    const apis: ApiName[] = [];
    const body = td.manifests.get(digest);
    if (body && detectSubject(body)) apis.push('manifest put with subject');
    this.require('manifest put by tag');
    apis.push('manifest put by tag');
    try {
      await this.api.manifestPut(
        this.registry,
        repo,
        tag,
        digest,
        td,
        this.config.apis.referrer,
        [],
        this.#manifestFlags(flags),
      );
    } catch (e) {
      throw this.failed(e, ...apis);
    }
    if (!flags.expectBlobUnknown && !flags.expectBadDigest) td.tagPushed.add(tag);
    this.pass(...apis);
  }

  // ── tag list ─────────────────────────────────────────────────────────────────────────────────

  /** `TestList`: every tag of the data is listed, and `last` starts the list after the given tag. */
  async testList(td: TestData, repo: string): Promise<void> {
    this.require('tag listing');
    let tags: string[];
    try {
      tags = (await this.api.tagList(this.registry, repo)).tags ?? [];
    } catch (e) {
      throw this.failed(e, 'tag listing');
    }
    const errors: ConformanceError[] = [];
    for (const [tag, digest] of td.tags) {
      if (td.pushOpts.get(digest)?.expectBlobUnknown) continue; // correctly refused, so never tagged
      if (!tags.includes(tag)) errors.push(fail(`missing tag "${tag}" from listing`));
    }
    if (tags.length >= 2) {
      const sorted = [...tags].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const end = Math.floor(sorted.length / 2);
      const last = sorted[end - 1]!;
      let partial: string[];
      try {
        partial = (await this.api.tagList(this.registry, repo, last)).tags ?? [];
      } catch (e) {
        throw this.failed(e, 'tag listing');
      }
      for (const tag of sorted.slice(0, end)) {
        if (partial.includes(tag)) errors.push(fail(`tag "${tag}" returned when last set to "${last}"`));
      }
      for (const tag of sorted.slice(end)) {
        if (!partial.includes(tag)) errors.push(fail(`tag "${tag}" missing when last set to "${last}"`));
      }
    }
    if (errors.length > 0) throw this.failed(joinErrors(errors), 'tag listing');
    this.pass('tag listing');
  }

  // ── pulls ────────────────────────────────────────────────────────────────────────────────────

  async testHeadBlob(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    if (flags.skipPullTest) throw new SkipCheck('pull tests are skipped for this content');
    this.require('blob head');
    try {
      await this.api.blobHeadExists(this.registry, repo, digest, td, this.#blobFlags());
    } catch (e) {
      throw this.failed(e, 'blob head');
    }
    this.pass('blob head');
  }

  async testHeadManifestDigest(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    if (flags.skipPullTest) throw new SkipCheck('pull tests are skipped for this content');
    this.require('manifest head by digest');
    try {
      if (flags.expectBlobUnknown)
        await this.api.manifestHeadReq(this.registry, repo, digest, expectStatus(404));
      else await this.api.manifestHeadExists(this.registry, repo, digest, digest, td, this.#manifestFlags());
    } catch (e) {
      throw this.failed(e, 'manifest head by digest');
    }
    this.pass('manifest head by digest');
  }

  async testHeadManifestTag(
    td: TestData,
    repo: string,
    tag: string,
    digest: string,
    flags: Flags = {},
  ): Promise<void> {
    if (flags.skipPullTest) throw new SkipCheck('pull tests are skipped for this content');
    this.require('manifest head by tag');
    try {
      if (flags.expectBlobUnknown)
        await this.api.manifestHeadReq(this.registry, repo, tag, expectStatus(404));
      else await this.api.manifestHeadExists(this.registry, repo, tag, digest, td, this.#manifestFlags());
    } catch (e) {
      throw this.failed(e, 'manifest head by tag');
    }
    this.pass('manifest head by tag');
  }

  async testPullBlob(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    if (flags.skipPullTest) throw new SkipCheck('pull tests are skipped for this content');
    this.require('blob get');
    try {
      await this.api.blobGetExistsFull(this.registry, repo, digest, td, this.#blobFlags(flags));
    } catch (e) {
      throw this.failed(e, 'blob get');
    }
    this.pass('blob get');
  }

  async testPullManifestDigest(td: TestData, repo: string, digest: string, flags: Flags = {}): Promise<void> {
    if (flags.skipPullTest) throw new SkipCheck('pull tests are skipped for this content');
    this.require('manifest get by digest');
    try {
      if (flags.expectBlobUnknown)
        await this.api.manifestGetReq(this.registry, repo, digest, expectStatus(404));
      else await this.api.manifestGetExists(this.registry, repo, digest, digest, td, this.#manifestFlags());
    } catch (e) {
      throw this.failed(e, 'manifest get by digest');
    }
    this.pass('manifest get by digest');
  }

  async testPullManifestTag(
    td: TestData,
    repo: string,
    tag: string,
    digest: string,
    flags: Flags = {},
  ): Promise<void> {
    if (flags.skipPullTest) throw new SkipCheck('pull tests are skipped for this content');
    this.require('manifest get by tag');
    try {
      if (flags.expectBlobUnknown) await this.api.manifestGetReq(this.registry, repo, tag, expectStatus(404));
      else await this.api.manifestGetExists(this.registry, repo, tag, digest, td, this.#manifestFlags());
    } catch (e) {
      throw this.failed(e, 'manifest get by tag');
    }
    this.pass('manifest get by tag');
  }

  /** Blob range requests: a 206 with the slice and Content-Range, or 416; a plain 200 is a failure. */
  async testBlobRange(
    repo: string,
    digest: string,
    range: string,
    expectations: Expectation[],
    blob: Buffer,
  ): Promise<void> {
    this.require('blob get range', 'blob push');
    let response: HttpResponse;
    try {
      response = await this.api.blobGetReq(
        this.registry,
        repo,
        digest,
        [['Range', range]],
        anyOf(expectations, [
          expectStatus(200),
          expectHeader('Content-Length', String(blob.length)),
          expectBody(blob),
        ]),
      );
    } catch (e) {
      throw this.failed(e, 'blob get range');
    }
    if (response.status === 200) {
      throw this.failed(unsupported('range request unsupported, full blob returned'), 'blob get range');
    }
    this.pass('blob get range');
  }

  // ── referrers ────────────────────────────────────────────────────────────────────────────────

  /** `TestReferrers` for one subject: every referrer listed, and the artifactType filter applied. */
  async testReferrers(repo: string, subject: string, goals: Descriptor[]): Promise<void> {
    this.require('referrers');
    const errors: ConformanceError[] = [];
    const matches = (entry: NonNullable<IndexResponse['manifests']>[number], goal: Descriptor) =>
      entry.digest === goal.digest &&
      entry.mediaType === goal.mediaType &&
      entry.size === goal.size &&
      (entry.artifactType ?? '') === (goal.artifactType ?? '') &&
      mapContainsAll(entry.annotations, goal.annotations);
    try {
      const { index } = await this.api.referrersList(this.registry, repo, subject);
      for (const goal of goals) {
        if (!(index.manifests ?? []).some((entry) => matches(entry, goal))) {
          errors.push(
            fail(`entry missing from referrers list, subject ${subject}, referrer ${describeGoal(goal)}`),
          );
        }
      }
    } catch (e) {
      errors.push(toConformanceError(e));
    }
    const artifactTypes = [...new Set(goals.map((g) => g.artifactType ?? ''))];
    for (const artifactType of artifactTypes) {
      try {
        const { index, response } = await this.api.referrersList(this.registry, repo, subject, artifactType);
        const filtersApplied = (response.headers.get('OCI-Filters-Applied') ?? '')
          .split(',')
          .some((f) => f.trim() === 'artifactType');
        if (!filtersApplied) {
          errors.push(
            unsupported('registry does not set the expected OCI-Filters-Applied header for the artifactType'),
          );
        }
        for (const goal of goals) {
          if (
            (!filtersApplied || (goal.artifactType ?? '') === artifactType) &&
            !(index.manifests ?? []).some((entry) => matches(entry, goal))
          ) {
            errors.push(
              fail(
                `entry missing from referrers list filtered by artifactType "${artifactType}", subject ${subject}, referrer ${describeGoal(goal)}`,
              ),
            );
          }
        }
        if (filtersApplied) {
          for (const entry of index.manifests ?? []) {
            if ((entry.artifactType ?? '') !== artifactType) {
              errors.push(
                new ConformanceError(
                  `referrers filter for artifactType ${artifactType} included descriptor ${JSON.stringify(entry)}`,
                  'error',
                ),
              );
            }
          }
        }
      } catch (e) {
        errors.push(toConformanceError(e));
      }
    }
    if (errors.length > 0) throw this.failed(joinErrors(errors), 'referrers');
    this.pass('referrers');
  }

  // ── deletes ──────────────────────────────────────────────────────────────────────────────────

  /** `TestDeleteTag`: DELETE by tag, then (atomic) the tag must be gone at once. */
  async testDeleteTag(td: TestData, repo: string, tag: string): Promise<void> {
    if (!td.tagPushed.has(tag)) throw new SkipCheck('the tag was not pushed, so there is nothing to delete');
    this.require('tag delete');
    try {
      await this.api.manifestDelete(this.registry, repo, tag);
    } catch (e) {
      throw this.failed(e, 'tag delete', 'tag delete atomic');
    }
    this.pass('tag delete');
    this.require('tag delete atomic');
    try {
      await this.api.manifestHeadReq(this.registry, repo, tag, expectStatus(404));
    } catch (e) {
      throw this.failed(e, 'tag delete atomic');
    }
    this.pass('tag delete atomic');
  }

  async testDeleteManifest(repo: string, digest: string): Promise<void> {
    this.require('manifest delete');
    try {
      await this.api.manifestDelete(this.registry, repo, digest);
    } catch (e) {
      throw this.failed(e, 'manifest delete', 'manifest delete atomic');
    }
    this.pass('manifest delete');
    this.require('manifest delete atomic');
    try {
      await this.api.manifestHeadReq(this.registry, repo, digest, expectStatus(404));
    } catch (e) {
      throw this.failed(e, 'manifest delete atomic');
    }
    this.pass('manifest delete atomic');
  }

  async testDeleteBlob(repo: string, digest: string): Promise<void> {
    this.require('blob delete');
    try {
      await this.api.blobDelete(this.registry, repo, digest);
    } catch (e) {
      throw this.failed(e, 'blob delete', 'blob delete atomic');
    }
    this.pass('blob delete');
    this.require('blob delete atomic');
    try {
      await this.api.blobHeadReq(this.registry, repo, digest, expectStatus(404));
    } catch (e) {
      throw this.failed(e, 'blob delete atomic');
    }
    this.pass('blob delete atomic');
  }

  // ── manifest errors ──────────────────────────────────────────────────────────────────────────

  async testMissingManifestByDigest(repo: string): Promise<void> {
    this.require('manifest get by digest');
    const digest = digestOf(randomBytes(1024));
    try {
      await this.api.manifestGetReq(this.registry, repo, digest, expectStatus(404));
    } catch (e) {
      throw this.failed(e, 'manifest get by digest');
    }
    this.pass('manifest get by digest');
  }

  async testMissingManifestByTag(repo: string): Promise<void> {
    this.require('manifest get by tag');
    const tag = `missing-${randText().toLowerCase().slice(0, 20)}`;
    try {
      await this.api.manifestGetReq(this.registry, repo, tag, expectStatus(404));
    } catch (e) {
      throw this.failed(e, 'manifest get by tag');
    }
    this.pass('manifest get by tag');
  }

  /** PUT to `sha256:baddigeststring` must be refused with 400. */
  async testInvalidDigestPut(td: TestData, repo: string, digest: string): Promise<void> {
    this.require('manifest put by digest');
    try {
      await this.api.manifestPut(
        this.registry,
        repo,
        'sha256:baddigeststring',
        digest,
        td,
        this.config.apis.referrer,
        [],
        {
          expectBadDigest: true,
        },
      );
    } catch (e) {
      throw this.failed(e, 'manifest put by digest');
    }
    this.pass('manifest put by digest');
  }

  /** GET of `sha256:baddigeststring` must be 404 or 400. */
  async testInvalidDigestGet(repo: string): Promise<void> {
    this.require('manifest get by digest');
    try {
      await this.api.manifestGetReq(this.registry, repo, 'sha256:baddigeststring', expectStatus(404, 400));
    } catch (e) {
      throw this.failed(e, 'manifest get by digest');
    }
    this.pass('manifest get by digest');
  }
}

function mapContainsAll(
  check: Record<string, string> | undefined,
  goal: Record<string, string> | undefined,
): boolean {
  if (!goal || Object.keys(goal).length === 0) return true;
  return Object.entries(goal).every(([k, v]) => check?.[k] === v);
}

function describeGoal(goal: Descriptor): string {
  return JSON.stringify({
    mediaType: goal.mediaType,
    digest: goal.digest,
    size: goal.size,
    artifactType: goal.artifactType,
    annotations: goal.annotations,
  });
}
