/**
 * Configuration of the conformance run: a port of `conformance/config.go` of the OCI distribution-spec
 * suite. Field names follow the Go config's YAML names (`apis.blobs.digestHeader`, `data.sparse`, ...),
 * and the defaults follow the spec version exactly as `configLoad` sets them.
 */

export type SpecVersion = '1.0' | '1.1' | '1.1+dev';

export interface ConformanceApis {
  ping: boolean;
  pull: boolean;
  push: boolean;
  blobs: {
    atomic: boolean;
    delete: boolean;
    digestHeader: boolean;
    mountAnonymous: boolean;
    uploadCancel: boolean;
  };
  manifests: {
    atomic: boolean;
    delete: boolean;
    digestHeader: boolean;
    tagParam: boolean;
  };
  tags: {
    atomic: boolean;
    delete: boolean;
    list: boolean;
  };
  referrer: boolean;
}

export interface ConformanceData {
  /** Standard OCI image; every other data kind needs it. */
  image: boolean;
  /** Multi-platform index. */
  index: boolean;
  /** Index of indexes. */
  indexList: boolean;
  /** Manifests where some descriptors were never pushed. */
  sparse: boolean;
  /** OCI artifact (artifactType, empty config). */
  artifact: boolean;
  /** Artifacts with a subject. */
  subject: boolean;
  /** Artifact whose subject was never pushed. */
  subjectMissing: boolean;
  /** Index of artifacts. */
  artifactList: boolean;
  /** Index with a subject. */
  subjectList: boolean;
  /** `data` field in descriptors. */
  dataField: boolean;
  /** Non-distributable layers (deprecated in image-spec 1.1). */
  nondistributable: boolean;
  /** Unknown JSON fields in configs, manifests and indexes. */
  customFields: boolean;
  /** Image manifest with an empty layer list. */
  noLayers: boolean;
  /** A zero byte blob. */
  emptyBlob: boolean;
  /** sha512 digests. */
  sha512: boolean;
}

export interface ConformanceOptions {
  /** Spec version the defaults were taken from. */
  version: SpecVersion;
  /** First repository for pushing content. */
  repo1: string;
  /** Second repository (mount sources). */
  repo2: string;
  /** Username and password; blank for anonymous access. */
  username?: string;
  password?: string;
  /** Reuse credentials between requests (the Go suite's `cacheAuth`). */
  cacheAuth: boolean;
  apis: ConformanceApis;
  data: ConformanceData;
  /**
   * What the sparse image (an image manifest one of whose layers was never pushed) must get.
   * 'accept' is the Go suite's expectation with `data.sparse` on: 201, and the manifest pulls.
   * 'reject' holds the registry to the spec's other branch instead: "A registry MAY reject a manifest of
   * any type ... if it references manifests or blobs that do not exist in the registry. When a manifest
   * is rejected for these reasons, it MUST result in one or more MANIFEST_BLOB_UNKNOWN errors": the push
   * must be 400 with MANIFEST_BLOB_UNKNOWN, and the manifest must then be absent (404).
   * Sparse indexes (children not pushed) must be accepted either way.
   */
  sparseImage: 'accept' | 'reject';
  /**
   * The Go suite reports a registry that lacks an optional behaviour it asked for (POST with a body
   * answered 202, mount answered 202, no OCI-Tag, no OCI-Filters-Applied, delete answered 405, ...) as
   * "skipped". With `strict`, such answers fail the check instead: use it when every API is enabled
   * because the registry claims to implement them all.
   */
  strict: boolean;
  /**
   * Legacy (ginkgo) suite options: the namespace for the workflow tests, the cross-mount namespace, and
   * whether the registry mounts blobs without `from` (OCI_AUTOMATIC_CROSSMOUNT; undefined skips that check).
   */
  legacy: {
    enabled: boolean;
    namespace: string;
    crossmountNamespace: string;
    automaticCrossmount?: boolean;
    deleteManifestBeforeBlobs: boolean;
  };
}

export type ConformanceOptionsInput = Partial<Omit<ConformanceOptions, 'apis' | 'data' | 'legacy'>> & {
  apis?: DeepPartial<ConformanceApis>;
  data?: Partial<ConformanceData>;
  legacy?: Partial<ConformanceOptions['legacy']>;
};

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };

/** Minimum chunk size the suite uses for chunked uploads (`chunkMin` in config.go). */
export const chunkMin = 1024;

/** Defaults for a spec version, as `configLoad` sets them before the YAML/env overrides. */
export function defaultOptions(version: SpecVersion = '1.1'): ConformanceOptions {
  const options: ConformanceOptions = {
    version,
    repo1: 'conformance/repo1',
    repo2: 'conformance/repo2',
    cacheAuth: true,
    apis: {
      ping: true,
      pull: true,
      push: true,
      blobs: { atomic: true, delete: true, digestHeader: false, mountAnonymous: true, uploadCancel: false },
      manifests: { atomic: true, delete: true, digestHeader: false, tagParam: false },
      tags: { atomic: true, delete: true, list: true },
      referrer: true,
    },
    data: {
      image: true,
      index: true,
      indexList: true,
      sparse: false,
      artifact: true,
      subject: true,
      subjectMissing: true,
      artifactList: true,
      subjectList: true,
      dataField: true,
      nondistributable: true,
      customFields: true,
      noLayers: true,
      emptyBlob: true,
      sha512: true,
    },
    sparseImage: 'accept',
    strict: false,
    legacy: {
      enabled: true,
      namespace: 'conformance/legacy',
      crossmountNamespace: `conformance/legacy-crossmount-${Math.random().toString(36).slice(2, 10)}`,
      deleteManifestBeforeBlobs: true,
    },
  };
  switch (version) {
    case '1.1+dev':
      options.apis.blobs.uploadCancel = true;
      options.apis.blobs.digestHeader = true;
      options.apis.manifests.digestHeader = true;
      options.apis.manifests.tagParam = true;
      break;
    case '1.0':
      options.apis.blobs.mountAnonymous = false;
      options.apis.referrer = false;
      break;
    case '1.1':
      break;
  }
  return options;
}

export function resolveOptions(input: ConformanceOptionsInput = {}): ConformanceOptions {
  const base = defaultOptions(input.version ?? '1.1');
  const apis = input.apis ?? {};
  return {
    ...base,
    ...stripUndefined({
      version: input.version,
      repo1: input.repo1,
      repo2: input.repo2,
      username: input.username,
      password: input.password,
      cacheAuth: input.cacheAuth,
      sparseImage: input.sparseImage,
      strict: input.strict,
    }),
    apis: {
      ...base.apis,
      ...stripUndefined({ ping: apis.ping, pull: apis.pull, push: apis.push, referrer: apis.referrer }),
      blobs: { ...base.apis.blobs, ...apis.blobs },
      manifests: { ...base.apis.manifests, ...apis.manifests },
      tags: { ...base.apis.tags, ...apis.tags },
    },
    data: { ...base.data, ...input.data },
    legacy: { ...base.legacy, ...input.legacy },
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
