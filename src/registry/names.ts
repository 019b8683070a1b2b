import { OciError } from './errors.ts';
import { parseDigest, type Digest } from './digest.ts';

/** A repository name that passed the OCI grammar, e.g. `library/nginx`. */
export type RepositoryName = string & { readonly __brand: 'RepositoryName' };
export type TagName = string & { readonly __brand: 'TagName' };

export type Reference = { kind: 'tag'; tag: TagName } | { kind: 'digest'; digest: Digest };

const component = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const namePattern = new RegExp(`^${component}(?:/${component})*$`);
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Docker's limit on the whole name; the spec allows registries to cap it. */
export const maxRepositoryNameLength = 255;

export function parseRepositoryName(value: string): RepositoryName {
  if (value.length === 0 || value.length > maxRepositoryNameLength) {
    throw new OciError(
      'NAME_INVALID',
      `invalid repository name: must be 1 to ${maxRepositoryNameLength} characters`,
      { detail: { name: value.slice(0, 300) } },
    );
  }
  if (!namePattern.test(value)) {
    throw new OciError(
      'NAME_INVALID',
      'invalid repository name: use lowercase letters, digits and separators (. _ __ -) in components joined by /',
      { detail: { name: value } },
    );
  }
  return value as RepositoryName;
}

export function isValidTag(value: string): value is TagName {
  return tagPattern.test(value);
}

export function parseTag(value: string): TagName {
  if (!isValidTag(value)) {
    throw new OciError(
      'TAG_INVALID',
      'invalid tag: up to 128 characters of letters, digits, _ . -, not starting with . or -',
      { status: 400, detail: { tag: value.slice(0, 200) } },
    );
  }
  return value;
}

/** A manifest reference is a digest when it contains ':', else a tag. */
export function parseReference(value: string): Reference {
  if (value.includes(':')) return { kind: 'digest', digest: parseDigest(value) };
  if (!isValidTag(value)) {
    throw new OciError(
      'MANIFEST_INVALID',
      `invalid reference "${value.slice(0, 200)}": not a tag or a digest`,
      {
        status: 400,
      },
    );
  }
  return { kind: 'tag', tag: value };
}
