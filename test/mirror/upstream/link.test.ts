import { describe, expect, it } from 'vitest';
import { nextLink } from '../../../src/mirror/upstream/link.ts';
import { dockerHubRepository } from '../../../src/mirror/upstream/names.ts';

describe('Link pagination', () => {
  it('finds the next page among other links, with rel quoted or not and among other relations', () => {
    expect(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"')).toBe('/v2/a/tags/list?n=2&last=b');
    expect(nextLink('</v2/a/tags/list?n=2>; rel="first", </v2/a/tags/list?n=2&last=d>; rel=next')).toBe(
      '/v2/a/tags/list?n=2&last=d',
    );
    expect(nextLink(['<https://r.example/x>; title="x"; rel="prev next"'])).toBe('https://r.example/x');
  });

  it('has no next page without a next link', () => {
    expect(nextLink(undefined)).toBeUndefined();
    expect(nextLink('</v2/a/tags/list?n=2>; rel="prev"')).toBeUndefined();
    expect(nextLink('</v2/a/tags/list?n=2&last=nextish>; rel="nextish"')).toBeUndefined();
  });
});

describe("Docker Hub's implicit library/", () => {
  it('is added to single-component names only', () => {
    expect(dockerHubRepository('nginx')).toBe('library/nginx');
    expect(dockerHubRepository('bitnami/nginx')).toBe('bitnami/nginx');
    expect(dockerHubRepository('library/nginx')).toBe('library/nginx');
  });
});
