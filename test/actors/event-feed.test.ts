/**
 * The consumer's queue-events feed: one publish per turn of the event loop,
 * routed by message id; a failed publish tried once more, then reported; a
 * backlog past the log's size drops its oldest events, reported.
 */
import { describe, expect, it, vi } from 'vitest';
import { EventFeed, type QueueEventData } from '../../src/actors/event-feed.js';
import { MAX_EVENTS } from '../../src/backends/control.js';

const event = (jobId: string): QueueEventData => ({ type: 'started', jobId, command: 'c', attempt: 1, at: 0 });

function attached(publish: (events: readonly string[], ids: readonly string[]) => Promise<void>) {
  const feed = new EventFeed();
  const warnings: Array<{ message: string; count: number }> = [];
  feed.attach({ publish, track: (p) => p, warn: (message, count) => warnings.push({ message, count }) });
  return { feed, warnings };
}

describe('EventFeed', () => {
  it('batches the events of one turn into one publish, with their message ids', async () => {
    const calls: Array<[readonly string[], readonly string[]]> = [];
    const { feed } = attached(async (events, ids) => void calls.push([events, ids]));
    feed.push('m1', event('a'));
    feed.push('m2', event('b'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(1);
    expect(calls[0]![1]).toEqual(['m1', 'm2']);
    expect(calls[0]![0].map((e) => (JSON.parse(e) as QueueEventData).jobId)).toEqual(['a', 'b']);
    feed.push('m3', event('c'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(2);
  });

  it('tries a failed publish once more, then reports the events it could not publish', async () => {
    vi.useFakeTimers();
    try {
      const publish = vi.fn(() => Promise.reject(new Error('down')));
      const { feed, warnings } = attached(publish);
      feed.push('m1', event('a'));
      feed.flush();
      await vi.advanceTimersByTimeAsync(600);
      expect(publish).toHaveBeenCalledTimes(2);
      expect(warnings).toEqual([{ message: 'queue events could not be published; listeners will not see them', count: 1 }]);
    } finally {
      vi.useRealTimers();
    }
  });

  it(`keeps at most ${MAX_EVENTS} unpublished events, dropping the oldest with a warning`, () => {
    const { feed, warnings } = attached(() => Promise.resolve());
    for (let i = 0; i < MAX_EVENTS + 5; i++) feed.push(`m${i}`, event(`j${i}`));
    expect(warnings.reduce((n, w) => n + w.count, 0)).toBe(5);
    expect(warnings[0]!.message).toMatch(/dropped/);
  });
});
