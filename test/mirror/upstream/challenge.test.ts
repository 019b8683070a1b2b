import { describe, expect, it } from 'vitest';
import { MalformedChallengeError, parseChallenges } from '../../../src/mirror/upstream/challenge.ts';

describe('WWW-Authenticate challenges', () => {
  it("reads Docker Hub's Bearer challenge, with a comma inside the quoted scope", () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull,push',
        },
      },
    ]);
  });

  it('reads Basic, with the scheme and parameter names in any case and spaces around "="', () => {
    expect(parseChallenges('BASIC Realm = "Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
  });

  it('reads several challenges in one header line, and in several header lines', () => {
    const expected = [
      { scheme: 'basic', params: { realm: 'a' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', service: 's', error: 'invalid_token' } },
    ];
    expect(
      parseChallenges('Basic realm="a", Bearer realm="https://t/token", service=s,error="invalid_token"'),
    ).toEqual(expected);
    expect(
      parseChallenges(['Basic realm="a"', 'Bearer realm="https://t/token",service="s",error=invalid_token']),
    ).toEqual(expected);
  });

  it('unescapes quoted-pairs and keeps the first of a repeated parameter', () => {
    expect(parseChallenges('Bearer realm="say \\"hi\\", \\\\ok",realm="second"')[0]!.params).toEqual({
      realm: 'say "hi", \\ok',
    });
  });

  it('reads an empty quoted value, a scheme alone and a token68', () => {
    expect(parseChallenges('Bearer realm="", Negotiate, NTLM abc+/d==')).toEqual([
      { scheme: 'bearer', params: { realm: '' } },
      { scheme: 'negotiate', params: {} },
      { scheme: 'ntlm', params: {}, token68: 'abc+/d==' },
    ]);
  });

  it('has nothing to read in an absent or blank header', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges(' , ')).toEqual([]);
  });

  it.each([
    ['an unterminated quoted value', 'Bearer realm="https://t/token'],
    ['a parameter without a value', 'Bearer realm="x", service=, scope="y"'],
    ['junk after a value', 'Bearer realm="x" "y"'],
    ['a header that starts with a quote', '"Bearer" realm="x"'],
  ])('refuses %s', (_why, header) => {
    expect(() => parseChallenges(header)).toThrow(MalformedChallengeError);
  });
});
