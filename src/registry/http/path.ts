import { OciError } from '../errors.ts';

/** A /v2 request path split into what it addresses. Names and references are validated later. */
export type RegistryPath =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

const routes: Array<[RegExp, (m: RegExpExecArray) => RegistryPath]> = [
  [/^(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/**
 * Parses the raw (still percent-encoded) URL. Nothing is decoded, so `%2F` or `..` can never become a
 * path separator: such names simply fail the name grammar.
 */
export function parseRegistryPath(url: string): RegistryPath {
  const query = url.indexOf('?');
  const path = (query === -1 ? url : url.slice(0, query)).slice('/v2/'.length);
  if (path === '') return { kind: 'base' };
  if (path === '_catalog') return { kind: 'catalog' };
  for (const [pattern, build] of routes) {
    const match = pattern.exec(path);
    if (match) return build(match);
  }
  throw new OciError('UNSUPPORTED', `no registry endpoint at /v2/${path.slice(0, 200)}`, { status: 404 });
}
