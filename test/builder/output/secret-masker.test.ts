import { describe, expect, it } from 'vitest';
import { credentialForms, SecretMasker } from '../../../src/builder/output/secret-masker.ts';

describe('SecretMasker', () => {
  it('masks every occurrence, the longer of two overlapping secrets whole', () => {
    const masker = new SecretMasker(['tok', 'token-123', '']);
    expect(masker.mask('token-123 and tok and token-123')).toBe('*** and *** and ***');
    expect(masker.mask('nothing here')).toBe('nothing here');
    expect(new SecretMasker(['abc', 'abcdef']).mask('x abcdef abc')).toBe('x *** ***');
  });

  it('treats secrets as plain text, not patterns', () => {
    expect(new SecretMasker(['a.c$']).mask('abc a.c$')).toBe('abc ***');
  });

  it('masks a secret in its URL-encoded form too', () => {
    expect(new SecretMasker(['p@ss/word']).mask('https://u:p%40ss%2Fword@host/ p@ss/word')).toBe(
      'https://u:***@host/ ***',
    );
  });

  it('masks the Basic auth forms of a credential, but not the user alone', () => {
    const masker = new SecretMasker(credentialForms('acme+ci', 'a/b+c=d?'));
    const basic = Buffer.from('acme+ci:a/b+c=d?');
    expect(masker.mask(`Authorization: Basic ${basic.toString('base64')}`)).toBe('Authorization: Basic ***');
    expect(masker.mask(`{"auth":"${basic.toString('base64url')}"}`)).toBe('{"auth":"***"}');
    expect(masker.mask('https://x:a%2Fb%2Bc%3Dd%3F@host/')).toBe('https://x:***@host/');
    expect(masker.mask('the user acme+ci')).toBe('the user acme+ci');
  });
});
