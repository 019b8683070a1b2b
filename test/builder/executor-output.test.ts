import { describe, expect, it } from 'vitest';
import { ExecutorOutput } from '../../src/builder/executors/executor-output.ts';
import { SecretMasker } from '../../src/builder/output/secret-masker.ts';
import { LineRecorder } from './fixtures.ts';

describe('ExecutorOutput', () => {
  it('masks lines, also a secret split across chunks, before the listener sees them and keeps the last ones for errors', () => {
    const recorder = new LineRecorder();
    const output = new ExecutorOutput(new SecretMasker(['s3cret']), recorder.onLine);
    const stdout = output.splitter('stdout');
    stdout.push(Buffer.from('echo s3'));
    stdout.push(Buffer.from('cret\n'));
    output.line('stderr', 'failed with s3cret');
    for (let i = 0; i < 30; i++) output.line('stdout', `line ${i}`);
    expect(recorder.lines.slice(0, 2)).toEqual([
      { stream: 'stdout', text: 'echo ***' },
      { stream: 'stderr', text: 'failed with ***' },
    ]);
    expect(output.tail()).toHaveLength(20);
    expect(output.tail().at(-1)).toBe('line 29');
  });
});
