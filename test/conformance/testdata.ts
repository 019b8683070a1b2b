/**
 * Test data, generated the way `conformance/testdata.go` and `GenerateData` in `conformance/run.go`
 * generate it: random gzip'd tar layers, image configs, manifests, indexes, nested indexes, artifacts,
 * subjects, data fields, non-distributable layers, unknown JSON fields, sha512 digests.
 *
 * JSON is serialised with the field order and omissions of Go's `encoding/json` over the image-spec
 * structs, so the bytes look like what the Go suite pushes (registries must store them byte for byte).
 */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { ConformanceOptions } from './config.ts';

export const mt = {
  exampleConf1: 'application/vnd.example.oci.conformance.v1',
  exampleConf2: 'application/vnd.example.oci.conformance.v2',
  octetStream: 'application/octet-stream',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociImage: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerPrefix: 'application/vnd.oci.image.layer.v1.',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerNd: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNdGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociEmptyJson: 'application/vnd.oci.empty.v1+json',
} as const;

export type Algorithm = 'sha256' | 'sha512';

export function digestOf(content: Uint8Array, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(content).digest('hex')}`;
}

export function algorithmOf(digest: string): Algorithm {
  return digest.slice(0, digest.indexOf(':')) as Algorithm;
}

/** A short, readable form of a digest for check names. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon)}:${digest.slice(colon + 1, colon + 13)}`;
}

/** Go's `crypto/rand.Text()`: 26 characters of base32 (A-Z, 2-7). */
export function randText(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(26);
  let text = '';
  for (const b of bytes) text += alphabet[b % 32];
  return text;
}

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: Uint8Array;
  platform?: Platform;
  artifactType?: string;
}

/** Request-shaping flags the Go suite passes as `apiWithFlag(...)`. */
export interface Flags {
  requireDigestHeader?: boolean;
  expectBadDigest?: boolean;
  putLastChunk?: boolean;
  outOfOrderChunks?: boolean;
  tagParam?: boolean;
  skipPullTest?: boolean;
  /** Port addition for `sparseImage: 'reject'`: the push must fail with MANIFEST_BLOB_UNKNOWN. */
  expectBlobUnknown?: boolean;
}

/** One data set: what to push, in which order, and what pulls and referrers must then show. */
export class TestData {
  readonly name: string;
  readonly title: string;
  readonly tags = new Map<string, string>();
  readonly tagPushed = new Set<string>();
  readonly desc = new Map<string, Descriptor>();
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, Buffer>();
  /** Order to push manifests; the last is optionally tagged. */
  readonly manOrder: string[] = [];
  readonly referrers = new Map<string, Descriptor[]>();
  readonly pullOpts = new Map<string, Flags>();
  readonly pushOpts = new Map<string, Flags>();
  /** What each digest is, for naming checks ("linux/amd64 layer 0", "index", ...). */
  readonly labels = new Map<string, string>();

  constructor(name: string, title: string) {
    this.name = name;
    this.title = title;
  }

  label(digest: string): string {
    return `${this.labels.get(digest) ?? 'blob'} ${shortDigest(digest)}`;
  }

  addBlob(b: Buffer, opts: GenOpts = {}): string {
    const algo = opts.algo ?? 'sha256';
    const dig = digestOf(b, algo);
    this.blobs.set(dig, b);
    const d: Descriptor = {
      mediaType: opts.descriptorMediaType ?? mt.octetStream,
      digest: dig,
      size: b.length,
    };
    if (opts.setData) d.data = b;
    this.desc.set(dig, d);
    return dig;
  }

  genBlob(opts: GenOpts = {}): { digest: string; body: Buffer } {
    const body = randomBytes(opts.blobSize ?? 2048);
    return { digest: this.addBlob(body, opts), body };
  }

  /** A layer holding one small tar file; returns the compressed and uncompressed digests. */
  genLayer(fileNum: number, opts: GenOpts = {}): { compressed: string; uncompressed: string; body: Buffer } {
    const algo = opts.algo ?? 'sha256';
    const comp = opts.comp ?? 'gzip';
    const luckyNumber = BigInt.asUintN(63, randomBytes(8).readBigUInt64BE());
    const file = Buffer.from(
      `Conformance test file contents for file number ${fileNum}.\nTodays lucky number is ${luckyNumber}\n`,
    );
    const tar = tarArchive([{ name: `./conformance-${fileNum}.txt`, mode: 0o644, content: file }]);
    const body = comp === 'gzip' ? gzipSync(tar) : tar;
    const compressed = digestOf(body, algo);
    // The Go suite hashes an uncompressed buffer it never writes to (so every diff_id is the empty
    // digest); the registry never looks inside, and the real diff_id keeps the configs valid images.
    const uncompressed = digestOf(tar, algo);
    this.blobs.set(compressed, body);
    const cDesc: Descriptor = {
      mediaType: comp === 'gzip' ? mt.ociLayerGzip : mt.ociLayer,
      digest: compressed,
      size: body.length,
    };
    if (opts.setData) cDesc.data = body;
    this.desc.set(compressed, cDesc);
    if (uncompressed !== compressed) {
      const uDesc: Descriptor = { mediaType: mt.ociLayer, digest: uncompressed, size: tar.length };
      if (opts.setData) uDesc.data = tar;
      this.desc.set(uncompressed, uDesc);
    }
    this.labels.set(compressed, `${platformName(opts.platform)}layer ${fileNum}`);
    return { compressed, uncompressed, body };
  }

  /** An image config for the platform and uncompressed layer digests. */
  genConfig(platform: Platform, layers: string[], opts: GenOpts = {}): string {
    const algo = opts.algo ?? 'sha256';
    const config = goImageConfig('OCI Conformance Test', platform, layers);
    const body = Buffer.from(JSON.stringify(opts.extraField ? addJsonField(config) : config));
    const dig = digestOf(body, algo);
    this.blobs.set(dig, body);
    const d: Descriptor = { mediaType: opts.configMediaType ?? mt.ociConfig, digest: dig, size: body.length };
    if (opts.setData) d.data = body;
    this.desc.set(dig, d);
    this.labels.set(dig, `${platformName(platform)}config`);
    return dig;
  }

  /** An image manifest over a config and compressed layers. */
  genManifest(config: Descriptor, layers: Descriptor[], opts: GenOpts = {}): string {
    const algo = opts.algo ?? 'sha256';
    let annotations = opts.annotations;
    if (opts.annotationUniq) annotations = { ...annotations, [`org.example.${randText()}`]: randText() };
    const m: Record<string, unknown> = { schemaVersion: 2, mediaType: mt.ociImage };
    if (opts.artifactType) m.artifactType = opts.artifactType;
    m.config = goDescriptor(config);
    m.layers = layers.map(goDescriptor);
    if (opts.subject) m.subject = goDescriptor(opts.subject);
    if (annotations && Object.keys(annotations).length > 0) m.annotations = sortedMap(annotations);
    const body = Buffer.from(JSON.stringify(opts.extraField ? addJsonField(m) : m));
    const dig = digestOf(body, algo);
    this.manifests.set(dig, body);
    this.manOrder.push(dig);
    const d: Descriptor = { mediaType: mt.ociImage, digest: dig, size: body.length };
    if (opts.setData) d.data = body;
    this.desc.set(dig, d);
    this.labels.set(dig, `${platformName(opts.platform)}image manifest`);
    if (opts.subject) {
      this.addReferrer(opts.subject.digest, {
        mediaType: mt.ociImage,
        artifactType: opts.artifactType || config.mediaType,
        digest: dig,
        size: body.length,
        ...(annotations ? { annotations } : {}),
      });
    }
    if (opts.tag) this.tags.set(opts.tag, dig);
    return dig;
  }

  /** An image with layers and a config (`genManifestFull`). */
  genManifestFull(opts: GenOpts = {}): string {
    const o: GenOpts = { layerCount: 2, platform: { os: 'linux', architecture: 'amd64' }, ...opts };
    const compressed: string[] = [];
    const uncompressed: string[] = [];
    for (let l = 0; l < o.layerCount!; l++) {
      if (!o.layerMediaType || o.layerMediaType.startsWith(mt.ociLayerPrefix)) {
        const layer = this.genLayer(l, o);
        compressed.push(layer.compressed);
        uncompressed.push(layer.uncompressed);
      } else {
        const blobOpts: GenOpts = { descriptorMediaType: o.layerMediaType, ...o };
        const dig = o.layerBytes ? this.addBlob(o.layerBytes, blobOpts) : this.genBlob(blobOpts).digest;
        this.labels.set(dig, `${platformName(o.platform)}artifact blob ${l}`);
        compressed.push(dig);
        uncompressed.push(dig);
      }
    }
    let configDigest: string;
    if (!o.configMediaType || o.configMediaType === mt.ociConfig) {
      configDigest = this.genConfig(o.platform!, uncompressed, o);
    } else {
      configDigest = this.addBlob(o.configBytes ?? Buffer.alloc(0), {
        descriptorMediaType: o.configMediaType,
        ...o,
      });
      this.labels.set(configDigest, `${platformName(o.platform)}artifact config`);
    }
    const layers = compressed.map((d) => this.desc.get(d)!);
    return this.genManifest(this.desc.get(configDigest)!, layers, o);
  }

  /** An index over manifests, one platform each (null: no platform field). */
  genIndex(platforms: Array<Platform | null>, manifests: string[], opts: GenOpts = {}): string {
    const algo = opts.algo ?? 'sha256';
    if (platforms.length !== manifests.length) throw new Error('genIndex needs one platform per manifest');
    let annotations = opts.annotations;
    if (opts.annotationUniq) annotations = { ...annotations, [`org.example.${randText()}`]: randText() };
    const ind: Record<string, unknown> = { schemaVersion: 2, mediaType: mt.ociIndex };
    if (opts.artifactType) ind.artifactType = opts.artifactType;
    ind.manifests = manifests.map((m, i) => {
      const d = { ...this.desc.get(m)! };
      const platform = platforms[i];
      if (platform) d.platform = platform;
      else delete d.platform;
      return goDescriptor(d);
    });
    if (opts.subject) ind.subject = goDescriptor(opts.subject);
    if (annotations && Object.keys(annotations).length > 0) ind.annotations = sortedMap(annotations);
    const body = Buffer.from(JSON.stringify(opts.extraField ? addJsonField(ind) : ind));
    const dig = digestOf(body, algo);
    this.manifests.set(dig, body);
    this.manOrder.push(dig);
    const d: Descriptor = { mediaType: mt.ociIndex, digest: dig, size: body.length };
    if (opts.setData) d.data = body;
    this.desc.set(dig, d);
    this.labels.set(dig, 'index');
    if (opts.subject) {
      this.addReferrer(opts.subject.digest, {
        mediaType: mt.ociIndex,
        digest: dig,
        size: body.length,
        ...(opts.artifactType ? { artifactType: opts.artifactType } : {}),
        ...(annotations ? { annotations } : {}),
      });
    }
    if (opts.tag) this.tags.set(opts.tag, dig);
    return dig;
  }

  /** An index with an image per platform, layers and configs included (`genIndexFull`). */
  genIndexFull(opts: GenOpts = {}): string {
    const platforms = opts.platforms ?? [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ];
    const images = platforms.map((p) => this.genManifestFull({ ...opts, platform: p }));
    return this.genIndex(platforms, images, opts);
  }

  #referrerGoal(subject: string): Descriptor[] {
    let list = this.referrers.get(subject);
    if (!list) this.referrers.set(subject, (list = []));
    return list;
  }

  addReferrer(subject: string, descriptor: Descriptor): void {
    this.#referrerGoal(subject).push(descriptor);
  }
}

export interface GenOpts {
  algo?: Algorithm;
  annotations?: Record<string, string>;
  annotationUniq?: boolean;
  artifactType?: string;
  blobSize?: number;
  comp?: 'gzip' | 'none';
  configBytes?: Buffer;
  configMediaType?: string;
  descriptorMediaType?: string;
  extraField?: boolean;
  layerBytes?: Buffer;
  layerCount?: number;
  layerMediaType?: string;
  platform?: Platform;
  platforms?: Platform[];
  setData?: boolean;
  subject?: Descriptor;
  tag?: string;
}

/** The data sets of `GenerateData`, in the order the Go runner tests them. */
export function generateData(options: ConformanceOptions): TestData[] {
  const sets: TestData[] = [];
  const { data, apis } = options;
  if (!data.image || !apis.push) return sets;
  const add = (name: string, title: string) => {
    const td = new TestData(name, title);
    sets.push(td);
    return td;
  };
  const twoPlatforms = (): Platform[] => [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
  ];

  add('image', 'Image').genManifestFull({ tag: 'image' });
  add('image-uncompressed', 'Image Uncompressed').genManifestFull({
    tag: 'image-uncompressed',
    comp: 'none',
  });

  const largeAnnotations: Record<string, string> = {};
  for (let i = 0; i < 390; i++) largeAnnotations[`large-annotation-${i}`] = 'A'.repeat(10000);
  add('large-manifest', 'Image with Large Manifest').genManifestFull({
    tag: 'large-manifest',
    annotations: largeAnnotations,
  });

  if (data.index) add('index', 'Index').genIndexFull({ tag: 'index', platforms: twoPlatforms() });

  if (data.index && data.indexList) {
    const td = add('nested-index', 'Nested Index');
    const dig1 = td.genIndexFull({ platforms: twoPlatforms() });
    const dig2 = td.genIndexFull({ platforms: twoPlatforms() });
    td.genIndex([null, null], [dig1, dig2], { tag: 'index-of-index' });
    td.labels.set(dig1, 'child index 1');
    td.labels.set(dig2, 'child index 2');
    td.labels.set(td.tags.get('index-of-index')!, 'index of indexes');
  }

  if (data.index) add('empty-index', 'Empty Index').genIndexFull({ tag: 'index', platforms: [] });

  const artifactOpts: GenOpts = {
    artifactType: mt.exampleConf1,
    configMediaType: mt.ociEmptyJson,
    configBytes: Buffer.from('{}'),
    layerCount: 1,
    layerMediaType: mt.exampleConf1,
  };
  if (data.artifact) add('artifact', 'Artifact').genManifestFull({ tag: 'artifact', ...artifactOpts });

  if (data.artifactList) {
    add('artifact-index', 'Artifact Index').genIndexFull({
      tag: 'artifact-index',
      platforms: twoPlatforms(),
      ...artifactOpts,
    });
  }

  if (data.artifact) {
    add('artifact-without-layers', 'Artifact without Layers').genManifestFull({
      tag: 'artifact-without-layers',
      ...artifactOpts,
      layerBytes: Buffer.from('{}'),
      layerMediaType: mt.ociEmptyJson,
    });
  }

  const conformanceAnnotation = { 'org.opencontainers.conformance': 'hello conformance test' };
  if (data.subject) {
    const td = add('artifacts-with-subject', 'Artifacts with Subject');
    const subjDig = td.genManifestFull({ tag: 'image' });
    const subject = { ...td.desc.get(subjDig)! };
    td.labels.set(subjDig, 'subject image manifest');
    td.labels.set(td.genManifestFull({ subject }), 'image manifest with subject');
    td.labels.set(
      td.genManifestFull({
        ...artifactOpts,
        annotations: conformanceAnnotation,
        annotationUniq: true,
        subject,
        tag: 'tagged-artifact1',
      }),
      'artifact manifest 1 with subject',
    );
    td.labels.set(
      td.genManifestFull({
        ...artifactOpts,
        artifactType: mt.exampleConf2,
        layerMediaType: mt.octetStream,
        annotations: conformanceAnnotation,
        annotationUniq: true,
        subject,
        tag: 'tagged-artifact2',
      }),
      'artifact manifest 2 with subject',
    );
  }

  if (data.subjectList) {
    const td = add('index-with-subject', 'Index with Subject');
    const subjDig = td.genIndexFull({ tag: 'index' });
    td.labels.set(subjDig, 'subject index');
    const subject = { ...td.desc.get(subjDig)! };
    td.labels.set(
      td.genIndexFull({
        ...artifactOpts,
        annotations: conformanceAnnotation,
        annotationUniq: true,
        subject,
        tag: 'tagged-artifact',
      }),
      'artifact index with subject',
    );
  }

  if (data.subjectMissing) {
    const td = add('missing-subject', 'Missing Subject');
    const subject: Descriptor = {
      mediaType: mt.ociImage,
      size: 123,
      digest: digestOf(Buffer.from('missing content')),
    };
    td.labels.set(subject.digest, 'missing subject');
    td.genManifestFull({
      ...artifactOpts,
      annotations: conformanceAnnotation,
      annotationUniq: true,
      subject,
      tag: 'tagged-artifact',
    });
  }

  if (data.dataField) add('data-field', 'Data Field').genManifestFull({ tag: 'data-field', setData: true });

  if (data.nondistributable) {
    const td = add('non-distributable-layers', 'Non-distributable Layers');
    const layers: Descriptor[] = [];
    const confDig: string[] = [];
    // first layer is compressed + non-distributable
    confDig.push(digestOf(randomBytes(256)));
    let dig = digestOf(randomBytes(256));
    layers.push({
      mediaType: mt.ociLayerNdGzip,
      digest: dig,
      size: 123456,
      urls: [`https://store.example.com/blobs/sha256/${dig.slice('sha256:'.length)}`],
    });
    // second layer is uncompressed + non-distributable
    dig = digestOf(randomBytes(256));
    confDig.push(dig);
    layers.push({
      mediaType: mt.ociLayerNd,
      digest: dig,
      size: 12345,
      urls: [`https://store.example.com/blobs/sha256/${dig.slice('sha256:'.length)}`],
    });
    // third layer is normal
    const layer = td.genLayer(1);
    confDig.push(layer.uncompressed);
    layers.push(td.desc.get(layer.compressed)!);
    const configDigest = td.genConfig({ os: 'linux', architecture: 'amd64' }, confDig);
    td.genManifest(td.desc.get(configDigest)!, layers, { tag: 'non-distributable-image' });
  }

  if (data.customFields) {
    add('custom-fields', 'Custom Fields').genIndexFull({
      tag: 'custom-fields',
      platforms: twoPlatforms(),
      extraField: true,
    });
  }

  if (data.noLayers) add('no-layers', 'No Layers').genManifestFull({ tag: 'no-layers', layerCount: 0 });

  if (data.sparse) {
    const td = add('sparse', 'Sparse Manifests');
    const sparseImage = td.genManifestFull({ tag: 'sparse-image' });
    td.labels.set(sparseImage, 'sparse image manifest (a layer never pushed)');
    for (const dig of td.blobs.keys()) {
      if (td.desc.get(dig)?.mediaType.startsWith(mt.ociLayerPrefix)) {
        // remove the first layer found
        td.desc.delete(dig);
        td.blobs.delete(dig);
        break;
      }
    }
    if (options.sparseImage === 'reject') {
      td.pushOpts.set(sparseImage, { expectBlobUnknown: true });
      td.pullOpts.set(sparseImage, { expectBlobUnknown: true });
    }
    // for the index, make an image and a random digest/descriptor, add both to an index
    const imagePlatform: Platform = { os: 'linux', architecture: 'amd64' };
    const imageDig = td.genManifestFull({ platform: imagePlatform });
    const randDig = digestOf(randomBytes(1024));
    td.desc.set(randDig, { mediaType: mt.ociImage, digest: randDig, size: 1024 });
    const indexDig = td.genIndex(
      [imagePlatform, { os: 'linux', architecture: 'arm64' }],
      [imageDig, randDig],
      {
        tag: 'sparse-index',
      },
    );
    td.labels.set(indexDig, 'sparse index (a child never pushed)');
  }

  // non-canonical digests require tag parameters to push tags, so only test by digest
  if (data.sha512) add('sha512', 'Digest Algorithm sha512').genIndexFull({ algo: 'sha512' });

  if (apis.manifests.tagParam) {
    const td = add('tag-param-sha256', 'Tag Param');
    td.genIndexFull({ tag: 'tag-param-sha256' }); // the top level index will have two tags
    td.manOrder.forEach((dig, i) => {
      td.tags.set(`tag-param-sha256-${i}`, dig);
      td.pushOpts.set(dig, { tagParam: true });
    });
  }

  if (apis.manifests.tagParam && data.sha512) {
    const td = add('tag-param-sha512', 'Tag Param sha512');
    td.genIndexFull({ tag: 'tag-param-sha512', algo: 'sha512' });
    td.manOrder.forEach((dig, i) => {
      td.tags.set(`tag-param-sha512-${i}`, dig);
      td.pushOpts.set(dig, { tagParam: true });
    });
  }

  const bad = add('bad-digest-image', 'Bad Digest Image');
  const badDig = bad.genManifestFull();
  bad.labels.set(badDig, 'image manifest with a digest that does not match');
  bad.pullOpts.set(badDig, { skipPullTest: true });
  bad.pushOpts.set(badDig, { expectBadDigest: true });
  // add some whitespace to make the digest mismatch
  bad.manifests.set(badDig, Buffer.concat([bad.manifests.get(badDig)!, Buffer.from('  ')]));

  return sets;
}

// ── Go encoding/json look-alikes ───────────────────────────────────────────────────────────────

function platformName(platform: Platform | undefined): string {
  return platform ? `${platform.os}/${platform.architecture} ` : '';
}

/** image-spec `Descriptor`: mediaType, digest, size, urls, annotations, data, platform, artifactType. */
function goDescriptor(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls && d.urls.length > 0) out.urls = d.urls;
  if (d.annotations && Object.keys(d.annotations).length > 0) out.annotations = sortedMap(d.annotations);
  if (d.data && d.data.length > 0) out.data = Buffer.from(d.data).toString('base64');
  if (d.platform) out.platform = goPlatform(d.platform);
  if (d.artifactType) out.artifactType = d.artifactType;
  return out;
}

function goPlatform(p: Platform): Record<string, unknown> {
  const out: Record<string, unknown> = { architecture: p.architecture, os: p.os };
  if (p['os.version']) out['os.version'] = p['os.version'];
  if (p['os.features']?.length) out['os.features'] = p['os.features'];
  if (p.variant) out.variant = p.variant;
  return out;
}

/** image-spec `Image`: author, the inlined platform, an (always present) empty config, rootfs. */
function goImageConfig(author: string, platform: Platform, diffIds: string[]): Record<string, unknown> {
  return {
    author,
    ...goPlatform(platform),
    config: {},
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
}

/** Go marshals maps with sorted keys. */
function sortedMap(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `genAddJSONFields`: the struct's fields, then one field the spec does not know. */
function addJsonField(value: Record<string, unknown>): Record<string, unknown> {
  return { ...value, [`org.${randText()}`]: randText() };
}

// ── tar ────────────────────────────────────────────────────────────────────────────────────────

interface TarEntry {
  name: string;
  mode: number;
  content: Buffer;
}

/** A USTAR archive of regular files, closed with two zero blocks as Go's `tar.Writer.Close` does. */
export function tarArchive(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const header = Buffer.alloc(512);
    header.write(entry.name, 0, 100, 'utf8');
    header.write(octal(entry.mode, 8), 100, 'ascii');
    header.write(octal(0, 8), 108, 'ascii'); // uid
    header.write(octal(0, 8), 116, 'ascii'); // gid
    header.write(octal(entry.content.length, 12), 124, 'ascii');
    header.write(octal(0, 12), 136, 'ascii'); // mtime
    header.fill(' ', 148, 156); // checksum placeholder
    header.write('0', 156, 'ascii'); // regular file
    header.write('ustar\u000000', 257, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
    blocks.push(header, entry.content, Buffer.alloc((512 - (entry.content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
