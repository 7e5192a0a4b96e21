/**
 * `this` for a running command: its AbortController exists only once the
 * signal is read, an abort before that is replayed onto it, and the first
 * reason wins; `progress()` checks a value and hands its record to the sink.
 */
import { describe, expect, it } from 'vitest';
import { RunningJob, type ProgressSink } from '../../src/actors/running-job.js';
import { progressValue } from '../../src/producer/progress.js';

describe('RunningJob', () => {
  it('carries the job id, command and attempt', () => {
    expect(new RunningJob('job-1', 'send', 2)).toMatchObject({ jobId: 'job-1', command: 'send', attempt: 2 });
  });

  it('creates no AbortController unless the signal is read', () => {
    const created = countControllers(() => {
      const job = new RunningJob('job-1', 'send', 1);
      job.abort(new Error('timeout'));
    });
    expect(created).toBe(0);
    expect(countControllers(() => void new RunningJob('job-2', 'send', 1).signal)).toBe(1);
  });

  it('hands out one signal, aborted with the reason when the job is aborted', () => {
    const job = new RunningJob('job-1', 'send', 1);
    const signal = job.signal;
    expect(job.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    const reason = new Error('worker stopped');
    job.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it('a signal read after the abort is already aborted with its reason', () => {
    const job = new RunningJob('job-1', 'send', 1);
    const reason = new Error('timeout');
    job.abort(reason);
    expect(job.signal.aborted).toBe(true);
    expect(job.signal.reason).toBe(reason);
  });

  it('the first reason wins, before and after the signal exists', () => {
    const early = new RunningJob('job-1', 'send', 1);
    const first = new Error('first');
    early.abort(first);
    early.abort(new Error('second'));
    expect(early.signal.reason).toBe(first);

    const late = new RunningJob('job-2', 'send', 1);
    const signal = late.signal;
    late.abort(first);
    late.abort(new Error('second'));
    expect(signal.reason).toBe(first);
  });

  it('progress() hands each checked record to its sink, with the job; a bad value throws and reaches no sink', () => {
    const seen: [RunningJob, string][] = [];
    const sink: ProgressSink = { progress: (job, record) => void seen.push([job, record]) };
    const job = new RunningJob('job-1', 'send', 2, sink);
    job.progress(10);
    job.progress({ stage: 'upload' });
    expect(seen.map(([j]) => j)).toEqual([job, job]);
    expect(seen.map(([, record]) => progressValue(record))).toEqual([10, { stage: 'upload' }]);
    expect(JSON.parse(seen[0]![1])).toMatchObject({ attempt: 2 });
    expect(() => job.progress(101)).toThrow(TypeError);
    expect(seen).toHaveLength(2);
    expect(() => new RunningJob('job-2', 'send', 1).progress(5)).not.toThrow(); // no sink: checked, kept nowhere
  });
});

/** How many AbortControllers `fn` constructs. */
function countControllers(fn: () => void): number {
  const Original = globalThis.AbortController;
  let count = 0;
  globalThis.AbortController = class extends Original {
    constructor() {
      super();
      count += 1;
    }
  };
  try {
    fn();
  } finally {
    globalThis.AbortController = Original;
  }
  return count;
}
