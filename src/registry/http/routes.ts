import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { parseDigest, type Digest } from '../digest.ts';
import { OciError } from '../errors.ts';
import { mediaTypes, manifestKindOf } from '../media-types.ts';
import { parseReference, parseRepositoryName, type Reference, type RepositoryName } from '../names.ts';
import type { BlobCopy } from '../storage/driver.ts';
import type { Actor, PageResult, RegistryStore, StoredManifest } from '../store.ts';
import { isUploadId } from '../storage/paths.ts';
import type { RegistryAccess, RegistryAction } from './access.ts';
import { registryErrorHandler, registryNotFound } from './errors.ts';
import { acceptedMediaTypes, acceptsIndexes } from './negotiate.ts';
import { parseRegistryPath, type RegistryPath } from './path.ts';
import { parseRangeHeader, parseUploadContentRange } from './ranges.ts';

export interface RegistryRoutesOptions {
  store: RegistryStore;
  access: RegistryAccess;
  /** Largest manifest accepted, in bytes. */
  maxManifestBytes: number;
  /**
   * The repository a name means when asked with containerd's `?ns=<registry host>` (a mirror
   * configured by `hosts.toml`); by default the name itself.
   */
  resolveName?: (name: RepositoryName, ns: string | undefined) => RepositoryName;
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';

/**
 * The OCI Distribution API under /v2. One wildcard route per method: the raw path is parsed here (so
 * repository names may contain slashes), then each handler validates, authorises and calls the store.
 */
export const registryRoutes: FastifyPluginAsync<RegistryRoutesOptions> = async (app, options) => {
  const { store, access, maxManifestBytes } = options;
  const resolveName = options.resolveName ?? ((name: RepositoryName) => name);

  // Bodies are streams the handlers read themselves: blobs go to storage, manifests are bounded.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.setErrorHandler(registryErrorHandler);
  app.setNotFoundHandler(registryNotFound);

  const context: HandlerContext = { store, access, maxManifestBytes, resolveName };
  for (const method of ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'] as const) {
    const handler = (request: FastifyRequest, reply: FastifyReply) => {
      reply.header('Docker-Distribution-API-Version', 'registry/2.0');
      return dispatch(context, method, parseRegistryPath(request.url), request, reply);
    };
    app.route({ method, url: '/v2/', handler, exposeHeadRoute: false });
    app.route({ method, url: '/v2/*', handler, exposeHeadRoute: false });
  }
};

interface HandlerContext {
  store: RegistryStore;
  access: RegistryAccess;
  maxManifestBytes: number;
  resolveName: (name: RepositoryName, ns: string | undefined) => RepositoryName;
}

async function dispatch(
  ctx: HandlerContext,
  method: Method,
  path: RegistryPath,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  switch (path.kind) {
    case 'base':
      await ctx.access.authorize(request, { kind: 'base' });
      return reply.header('Content-Type', 'application/json').send('{}');
    case 'catalog':
      onlyMethods(method, 'GET');
      const actor = await ctx.access.authorize(request, { kind: 'catalog' });
      return sendPage(
        reply,
        '/v2/_catalog',
        'repositories',
        await ctx.store.listRepositories(pageOf(request), actor.visibleAmong),
      );
    case 'tags': {
      onlyMethods(method, 'GET');
      const name = await authorize(ctx, request, path.name, ['pull']);
      const page = await ctx.store.listTags(name.repository, pageOf(request));
      return sendPage(reply, `/v2/${name.repository}/tags/list`, 'tags', page, { name: name.repository });
    }
    case 'manifest':
      return manifestHandlers(ctx, method, path.name, path.reference, request, reply);
    case 'blob':
      return blobHandlers(ctx, method, path.name, path.digest, request, reply);
    case 'uploads':
      onlyMethods(method, 'POST');
      return startUpload(ctx, path.name, request, reply);
    case 'upload':
      return uploadHandlers(ctx, method, path.name, path.id, request, reply);
    case 'referrers':
      onlyMethods(method, 'GET');
      return listReferrers(ctx, path.name, path.digest, request, reply);
  }
}

// ── manifests ──────────────────────────────────────────────────────────────────────────────────

async function manifestHandlers(
  ctx: HandlerContext,
  method: Method,
  rawName: string,
  rawReference: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  switch (method) {
    case 'GET':
    case 'HEAD': {
      const { repository } = await authorize(ctx, request, rawName, ['pull']);
      const reference = readReference(rawReference);
      const manifest = await negotiate(
        ctx.store,
        repository,
        await ctx.store.getManifest(repository, reference),
        request,
      );
      reply.headers({
        'content-type': manifest.mediaType,
        'docker-content-digest': manifest.digest,
        etag: `"${manifest.digest}"`,
        'content-length': manifest.content.length,
      });
      if (manifest.cacheStatus) reply.header('X-Cache', manifest.cacheStatus);
      return method === 'HEAD' ? reply.send() : reply.send(manifest.content);
    }
    case 'PUT': {
      const { repository, actor } = await authorize(ctx, request, rawName, ['pull', 'push']);
      const reference = parseReference(rawReference);
      const body = await readBoundedBody(request.raw, ctx.maxManifestBytes);
      const tagParams = queryValues(request, 'tag');
      const pushed = await ctx.store.putManifest(
        repository,
        reference,
        body,
        request.headers['content-type'],
        tagParams,
        actor,
      );
      reply
        .code(201)
        .header('Location', `/v2/${repository}/manifests/${pushed.digest}`)
        .header('Docker-Content-Digest', pushed.digest);
      if (pushed.subject) reply.header('OCI-Subject', pushed.subject);
      // end-7b echoes the tags it applied, also when a single `?tag=` was given.
      if (tagParams.length > 0) reply.header('OCI-Tag', pushed.tags.join(','));
      return reply.send();
    }
    case 'DELETE': {
      const { repository, actor } = await authorize(ctx, request, rawName, ['delete']);
      await ctx.store.deleteManifest(repository, parseReference(rawReference), actor);
      return reply.code(202).send();
    }
    default:
      throw methodNotAllowed(method);
  }
}

/** A reference that cannot exist reads as unknown, not invalid, on GET and HEAD. */
function readReference(raw: string): Reference {
  try {
    return parseReference(raw);
  } catch (error) {
    if (error instanceof OciError && error.code === 'MANIFEST_INVALID') {
      throw new OciError('MANIFEST_UNKNOWN', `"${raw.slice(0, 200)}" is not a valid tag or digest`);
    }
    throw error;
  }
}

/**
 * Serves what the client's Accept allows. An index for a client that takes no indexes becomes its
 * linux/amd64 image when there is one (as Distribution does for old clients); otherwise 404.
 */
async function negotiate(
  store: RegistryStore,
  repository: RepositoryName,
  manifest: StoredManifest,
  request: FastifyRequest,
): Promise<StoredManifest> {
  const accepted = acceptedMediaTypes(request.headers.accept);
  if (accepted === null || accepted.has(manifest.mediaType)) return manifest;
  if (manifestKindOf(manifest.mediaType) === 'index' && !acceptsIndexes(accepted)) {
    const child = defaultPlatformChild(manifest);
    if (child) {
      const image = await store.getManifest(repository, { kind: 'digest', digest: child }).catch(() => null);
      if (image && accepted.has(image.mediaType)) return image;
    }
  }
  throw new OciError(
    'MANIFEST_UNKNOWN',
    `manifest is ${manifest.mediaType}, which the request's Accept header does not allow`,
    { detail: { mediaType: manifest.mediaType, accept: [...accepted] } },
  );
}

function defaultPlatformChild(index: StoredManifest): Digest | null {
  const parsed = JSON.parse(index.content.toString('utf8')) as {
    manifests?: Array<{ digest?: string; platform?: { os?: string; architecture?: string } }>;
  };
  const entry = parsed.manifests?.find(
    (m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64',
  );
  return entry?.digest ? parseDigest(entry.digest) : null;
}

// ── blobs ──────────────────────────────────────────────────────────────────────────────────────

async function blobHandlers(
  ctx: HandlerContext,
  method: Method,
  rawName: string,
  rawDigest: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  switch (method) {
    case 'GET':
    case 'HEAD': {
      const { repository } = await authorize(ctx, request, rawName, ['pull']);
      const digest = parseDigest(rawDigest);
      const blob = await ctx.store.statBlob(repository, digest, method === 'GET' ? 'download' : 'probe');
      reply
        .header('Docker-Content-Digest', digest)
        .header('ETag', `"${digest}"`)
        .header('Accept-Ranges', 'bytes');
      if (method === 'GET') {
        const redirectUrl = await ctx.store.blobRedirectUrl(digest);
        if (redirectUrl) return reply.redirect(redirectUrl, 307);
      }
      const range = parseRangeHeader(request.headers.range, blob.size);
      reply.header('Content-Type', 'application/octet-stream');
      if (range) {
        reply
          .code(206)
          .header('Content-Range', `bytes ${range.start}-${range.end}/${blob.size}`)
          .header('Content-Length', range.end - range.start + 1);
      } else {
        reply.header('Content-Length', blob.size);
      }
      if (method === 'HEAD') return reply.send();
      return sendBlob(request, reply, await ctx.store.openBlobCopy(repository, digest, range ?? undefined));
    }
    case 'DELETE': {
      const { repository } = await authorize(ctx, request, rawName, ['delete']);
      await ctx.store.deleteBlob(repository, parseDigest(rawDigest));
      return reply.code(202).send();
    }
    default:
      throw methodNotAllowed(method);
  }
}

/**
 * Writes the response head and copies the blob straight into the socket. A failure after the head
 * went out can only cut the connection short, which clients see as an incomplete download and retry.
 */
async function sendBlob(request: FastifyRequest, reply: FastifyReply, copy: BlobCopy): Promise<FastifyReply> {
  reply.hijack();
  const response = reply.raw;
  response.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | number>);
  try {
    await copy(response);
    response.end();
  } catch (error) {
    if (!response.destroyed) request.log.warn({ err: error }, 'blob download cut short');
    response.destroy();
  }
  return reply;
}

// ── uploads ────────────────────────────────────────────────────────────────────────────────────

async function startUpload(
  ctx: HandlerContext,
  rawName: string,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const query = request.query as Record<string, string | string[] | undefined>;
  const mount = single(query.mount);
  const from = single(query.from);
  const fromRepository = from ? parseRepositoryName(from) : undefined;
  const { repository, actor } = await authorize(ctx, request, rawName, ['pull', 'push']);

  if (mount) {
    const digest = parseDigest(mount);
    const readable =
      fromRepository === undefined ||
      (await ctx.access
        .authorize(request, { kind: 'repository', repository: fromRepository, actions: ['pull'] })
        .then(
          () => true,
          () => false,
        ));
    if (readable && (await ctx.store.mountBlob(repository, digest, fromRepository, actor.visibleAmong))) {
      return blobCreated(reply, repository, digest);
    }
  }
  const digestParam = single(query.digest);
  if (digestParam !== undefined) {
    const digest = await ctx.store.uploadMonolithic(repository, parseDigest(digestParam), request.raw);
    return blobCreated(reply, repository, digest);
  }
  const upload = await ctx.store.startUpload(repository);
  return uploadAccepted(reply, repository, upload.id, upload.size);
}

async function uploadHandlers(
  ctx: HandlerContext,
  method: Method,
  rawName: string,
  id: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const { repository } = await authorize(ctx, request, rawName, ['pull', 'push']);
  if (!isUploadId(id)) throw new OciError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 64)} is not known`);
  switch (method) {
    case 'GET': {
      const upload = await ctx.store.getUpload(repository, id);
      reply.code(204);
      return uploadHeaders(reply, repository, id, upload.size).send();
    }
    case 'PATCH': {
      const range = parseUploadContentRange(request.headers['content-range']);
      checkRangeMatchesLength(range, request.headers['content-length']);
      const upload = await ctx.store.appendUpload(repository, id, request.raw, range?.start);
      return uploadAccepted(reply, repository, id, upload.size);
    }
    case 'PUT': {
      const digestParam = single((request.query as Record<string, string | string[] | undefined>).digest);
      if (digestParam === undefined) {
        throw new OciError('DIGEST_INVALID', 'completing an upload needs ?digest=<algorithm:hex>');
      }
      const digest = parseDigest(digestParam);
      const range = parseUploadContentRange(request.headers['content-range']);
      checkRangeMatchesLength(range, request.headers['content-length']);
      const lastChunk = hasBody(request.raw) ? request.raw : undefined;
      if (range && lastChunk) {
        const upload = await ctx.store.getUpload(repository, id);
        if (range.start !== upload.size) {
          throw new OciError(
            'BLOB_UPLOAD_INVALID',
            `chunk starts at ${range.start} but the upload holds ${upload.size} bytes`,
            {
              status: 416,
              headers: { Range: `0-${Math.max(upload.size - 1, 0)}` },
            },
          );
        }
      }
      await ctx.store.completeUpload(repository, id, digest, lastChunk);
      return blobCreated(reply, repository, digest);
    }
    case 'DELETE':
      await ctx.store.cancelUpload(repository, id);
      return reply.code(204).send();
    default:
      throw methodNotAllowed(method);
  }
}

function uploadHeaders(
  reply: FastifyReply,
  repository: RepositoryName,
  id: string,
  size: number,
): FastifyReply {
  return reply
    .header('Location', `/v2/${repository}/blobs/uploads/${id}`)
    .header('Range', `0-${Math.max(size - 1, 0)}`)
    .header('Docker-Upload-UUID', id)
    .header('Content-Length', 0);
}

function uploadAccepted(reply: FastifyReply, repository: RepositoryName, id: string, size: number) {
  return uploadHeaders(reply.code(202), repository, id, size).send();
}

function blobCreated(reply: FastifyReply, repository: RepositoryName, digest: Digest) {
  return reply
    .code(201)
    .header('Location', `/v2/${repository}/blobs/${digest}`)
    .header('Docker-Content-Digest', digest)
    .header('Content-Length', 0)
    .send();
}

function checkRangeMatchesLength(
  range: { start: number; end: number } | undefined,
  contentLength: string | undefined,
) {
  if (!range || contentLength === undefined) return;
  const expected = range.end - range.start + 1;
  if (Number(contentLength) !== expected) {
    throw new OciError(
      'BLOB_UPLOAD_INVALID',
      `Content-Range covers ${expected} bytes but Content-Length is ${contentLength}`,
      { status: 416 },
    );
  }
}

function hasBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return raw.headers['transfer-encoding'] !== undefined;
}

// ── referrers ──────────────────────────────────────────────────────────────────────────────────

async function listReferrers(
  ctx: HandlerContext,
  rawName: string,
  rawDigest: string,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const { repository } = await authorize(ctx, request, rawName, ['pull']);
  const subject = parseDigest(rawDigest);
  const artifactType = single((request.query as Record<string, string | string[] | undefined>).artifactType);
  const manifests = await ctx.store.listReferrers(repository, subject, artifactType || undefined);
  if (artifactType) reply.header('OCI-Filters-Applied', 'artifactType');
  return reply
    .header('Content-Type', mediaTypes.ociIndex)
    .send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests })));
}

// ── shared ─────────────────────────────────────────────────────────────────────────────────────

async function authorize(
  ctx: HandlerContext,
  request: FastifyRequest,
  rawName: string,
  actions: RegistryAction[],
): Promise<{ repository: RepositoryName; actor: Actor }> {
  const ns = single((request.query as Record<string, string | string[] | undefined>).ns);
  const repository = ctx.resolveName(parseRepositoryName(rawName), ns);
  const actor = await ctx.access.authorize(request, { kind: 'repository', repository, actions });
  return { repository, actor };
}

const maxPageSize = 10_000;

function pageOf(request: FastifyRequest): { n?: number; last?: string } {
  const query = request.query as Record<string, string | string[] | undefined>;
  const n = single(query.n);
  const last = single(query.last);
  const page: { n?: number; last?: string } = {};
  if (n !== undefined) {
    if (!/^\d+$/.test(n)) {
      throw new OciError('PAGINATION_NUMBER_INVALID', `n must be a whole number, not "${n.slice(0, 20)}"`);
    }
    page.n = Math.min(Number(n), maxPageSize);
  }
  if (last) page.last = last;
  return page;
}

function sendPage(
  reply: FastifyReply,
  path: string,
  key: 'tags' | 'repositories',
  page: PageResult,
  extra: Record<string, string> = {},
) {
  if (page.next !== undefined) {
    const n = page.items.length;
    reply.header('Link', `<${path}?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`);
  }
  return reply
    .header('Content-Type', 'application/json')
    .send(Buffer.from(JSON.stringify({ ...extra, [key]: page.items })));
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function queryValues(request: FastifyRequest, key: string): string[] {
  const value = (request.query as Record<string, string | string[] | undefined>)[key];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function onlyMethods(method: Method, ...allowed: Method[]): void {
  if (!allowed.includes(method)) throw methodNotAllowed(method);
}

function methodNotAllowed(method: Method): OciError {
  return new OciError('UNSUPPORTED', `${method} is not supported on this endpoint`, { status: 405 });
}

async function readBoundedBody(raw: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = raw.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    raw.resume();
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of raw) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      raw.resume();
      throw tooLarge(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(limit: number): OciError {
  return new OciError('SIZE_INVALID', `manifest is larger than the ${Math.round(limit / 1024)} KiB limit`, {
    status: 413,
  });
}
