import { describe, expect, it } from 'vitest';
import { parsePushedRef, type PushEvent } from '../../src/triggers/push-event.ts';
import {
  expandTagTemplates,
  parseTagTemplate,
  parseTagTemplates,
  sanitizeTag,
} from '../../src/triggers/tag-templates.ts';

const sha = 'c3ab8ff13720e8ad9047dd39466b3c8974e592c2';

function push(full: string, overrides: Partial<PushEvent> = {}): PushEvent {
  return {
    provider: 'github',
    ref: parsePushedRef(full)!,
    commit: sha,
    deleted: false,
    cloneUrl: { url: 'https://github.com/acme/shop.git' },
    repository: 'acme/shop',
    defaultBranch: 'main',
    author: { name: 'danawhit' },
    pushedAt: '2026-12-02T08:14:10.000Z',
    ...overrides,
  };
}

function tags(templates: string[], event: PushEvent, latestOnDefaultBranch = false): string[] {
  return expandTagTemplates({ templates: parseTagTemplates(templates), latestOnDefaultBranch }, event);
}

function rejection(template: string): string {
  try {
    parseTagTemplate(template);
  } catch (error) {
    expect(error).toMatchObject({ status: 400 });
    return (error as Error).message;
  }
  throw new Error('expected the template to be refused');
}

describe('tag templates', () => {
  it('expand the branch, the SHA, its short form and the push date', () => {
    expect(
      tags(['${branch}', '${short_sha}', '${sha}', '${branch}-${date}'], push('refs/heads/develop')),
    ).toEqual(['develop', 'c3ab8ff', sha, 'develop-20261202']);
  });

  it('expand a git tag on a tag push', () => {
    expect(tags(['${tag}', 'release-${tag}'], push('refs/tags/v2.4.0'))).toEqual([
      'v2.4.0',
      'release-v2.4.0',
    ]);
  });

  it('turn a branch such as feature/login into a valid image tag', () => {
    expect(tags(['${branch}'], push('refs/heads/feature/login'))).toEqual(['feature-login']);
    expect(tags(['${branch}-${short_sha}'], push('refs/heads/users/dana/fix#42'))).toEqual([
      'users-dana-fix-42-c3ab8ff',
    ]);
  });

  it('give no tag, rather than a half-filled one, when the push lacks a variable', () => {
    expect(tags(['${tag}', 'v${tag}', '${branch}'], push('refs/heads/main'))).toEqual(['main']);
    expect(tags(['${branch}', 'build-${short_sha}'], push('refs/tags/v2.4.0'))).toEqual(['build-c3ab8ff']);
  });

  it('add latest for the default branch only, when asked', () => {
    expect(tags(['${short_sha}'], push('refs/heads/main'), true)).toEqual(['c3ab8ff', 'latest']);
    expect(tags(['${short_sha}'], push('refs/heads/develop'), true)).toEqual(['c3ab8ff']);
    expect(tags(['${short_sha}'], push('refs/heads/main'), false)).toEqual(['c3ab8ff']);
    expect(tags(['${short_sha}'], push('refs/tags/main'), true)).toEqual(['c3ab8ff']);
  });

  it('remove duplicates', () => {
    expect(tags(['${branch}', 'latest', '${branch}'], push('refs/heads/main'), true)).toEqual([
      'main',
      'latest',
    ]);
    expect(tags(['feature/x', 'feature-x'], push('refs/heads/main'))).toEqual(['feature-x']);
  });

  it('give nothing for a deleted ref', () => {
    expect(
      tags(['${branch}'], push('refs/heads/main', { deleted: true, commit: '0'.repeat(40) }), true),
    ).toEqual([]);
  });

  it('use the time of the expansion for the date when the provider gave no push time', () => {
    const event = push('refs/heads/main', { pushedAt: undefined });
    const settings = { templates: parseTagTemplates(['${date}']), latestOnDefaultBranch: false };
    expect(expandTagTemplates(settings, event, { now: new Date('2027-01-05T23:59:59Z') })).toEqual([
      '20270105',
    ]);
  });

  it('are refused when they name an unknown variable or leave ${ open', () => {
    expect(rejection('${commit}')).toBe(
      'tag template "${commit}": unknown variable ${commit}; use ${branch}, ${tag}, ${sha}, ${short_sha}, ${date}',
    );
    expect(rejection('v${tag')).toBe('tag template "v${tag": "${" is not closed by "}"');
    expect(rejection('///')).toBe('tag template "///" can never give a valid tag');
  });
});

describe('sanitising a tag', () => {
  it('keeps valid tags as they are and fixes the rest', () => {
    expect(sanitizeTag('v1.2.3_rc-1')).toBe('v1.2.3_rc-1');
    expect(sanitizeTag('.hidden')).toBe('hidden');
    expect(sanitizeTag('-x')).toBe('x');
    expect(sanitizeTag('über')).toBe('ber');
    expect(sanitizeTag('a'.repeat(200))).toHaveLength(128);
    expect(sanitizeTag('//')).toBe('');
  });
});
