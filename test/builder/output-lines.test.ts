import { describe, expect, it } from 'vitest';
import { BuildLog } from '../../src/builder/executors/build-log.ts';
import { LineSplitter } from '../../src/builder/executors/output-lines.ts';
import { credentialForms, SecretMasker } from '../../src/builder/executors/secret-mask.ts';
import { LineRecorder } from './fixtures.ts';

const split = (chunks: (string | Buffer)[]) => {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  for (const chunk of chunks) splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  splitter.flush();
  return lines;
};

describe('LineSplitter', () => {
  it('joins lines split across chunks and flushes the last partial line', () => {
    expect(split(['STEP 1/2: FR', 'OM scratch\nSTEP', ' 2/2\n', 'no newline at the end'])).toEqual([
      'STEP 1/2: FROM scratch',
      'STEP 2/2',
      'no newline at the end',
    ]);
  });

  it('keeps empty lines, drops the CR of CRLF and adds no line for a final newline', () => {
    expect(split(['a\r\n\r\nb\n'])).toEqual(['a', '', 'b']);
  });

  it('decodes a character split between two chunks', () => {
    const bytes = Buffer.from('größe ✓\n');
    expect(split([bytes.subarray(0, 3), bytes.subarray(3, 9), bytes.subarray(9)])).toEqual(['größe ✓']);
  });
});

describe('SecretMasker', () => {
  it('masks every occurrence, the longer secret first', () => {
    const masker = new SecretMasker(['tok', 'token-123', '']);
    expect(masker.mask('token-123 and tok and token-123')).toBe('*** and *** and ***');
    expect(masker.mask('nothing here')).toBe('nothing here');
  });

  it('masks the Basic auth and URL-encoded forms of a credential', () => {
    const masker = new SecretMasker(credentialForms('acme+ci', 'a/b+c=d'));
    const basic = Buffer.from('acme+ci:a/b+c=d').toString('base64');
    expect(masker.mask(`Authorization: Basic ${basic}`)).toBe('Authorization: Basic ***');
    expect(masker.mask('https://x:a%2Fb%2Bc%3Dd@host/')).toBe('https://x:***@host/');
    expect(masker.mask('the user acme+ci')).toBe('the user acme+ci');
  });
});

describe('BuildLog', () => {
  it('masks lines before the listener sees them and keeps the last ones for errors', () => {
    const recorder = new LineRecorder();
    const log = new BuildLog(new SecretMasker(['s3cret']), recorder.onLine);
    const stdout = log.splitter('stdout');
    stdout.push(Buffer.from('echo s3'));
    stdout.push(Buffer.from('cret\n'));
    log.line('stderr', 'failed with s3cret');
    for (let i = 0; i < 30; i++) log.line('stdout', `line ${i}`);
    expect(recorder.lines.slice(0, 2)).toEqual([
      { stream: 'stdout', text: 'echo ***' },
      { stream: 'stderr', text: 'failed with ***' },
    ]);
    expect(log.tail()).toHaveLength(20);
    expect(log.tail().at(-1)).toBe('line 29');
  });
});
