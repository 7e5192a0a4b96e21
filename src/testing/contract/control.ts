/**
 * Contract: job control and queue events (backends/control.ts states the
 * rules). cancel() deletes what has not started and marks what a consumer
 * holds; control() shows a holder its marks and whether anyone listens; the
 * events log hands out contiguous sequence numbers, keeps the last
 * MAX_EVENTS, and shows a reader what it trimmed.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.js';
import { MAX_EVENTS, THROUGHPUT_BUCKET_MS, THROUGHPUT_WINDOW_MS } from '../../backends/control.js';
import { encodeMessage } from '../../codec/message.js';
import { type ContractHarness, far, FAR_AHEAD, PAST_SHORT_LEASE, sleep, UNKNOWN_ID } from './kit.js';

export function describeControl(harness: ContractHarness): void {
  const { instances, one, shortAndLong } = harness;
  describe('job control: cancel marks', () => {
    it('cancel deletes a ready or delayed message (revoked) and answers false for an unknown one', async () => {
      const queue = await one();
      const ready = await queue.write('ready');
      const delayed = await queue.write('delayed', far());
      expect(await queue.cancel(ready, 'job-1')).toBe('revoked');
      expect(await queue.cancel(delayed, 'job-2')).toBe('revoked');
      expect(await queue.cancel(ready, 'job-1')).toBe(false);
      expect(await queue.cancel(UNKNOWN_ID, 'job-3')).toBe(false);
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
    });

    it('a leased message is marked, not deleted: only its holder sees the mark, with the job id, until it is acked', async () => {
      const [a, b] = await instances(2);
      await a!.write('x');
      await a!.write('y');
      const [x, y] = await a!.readBatch(2);
      expect(await b!.cancel(x!.id, 'job-x')).toBe('signalled');
      expect(await a!.stats()).toMatchObject({ leased: 2 });
      expect((await a!.control()).cancels).toEqual([{ id: x!.id, jobId: 'job-x' }]);
      expect((await b!.control()).cancels).toEqual([]);
      expect(await a!.ackBatch([x!.id, y!.id])).toEqual([]);
      expect((await a!.control()).cancels).toEqual([]);
      expect(await b!.cancel(x!.id, 'job-x')).toBe(false);
    });

    it('a mark outlives its lease: the next holder of the message sees it', async () => {
      const [short, long] = await shortAndLong();
      const id = await short.write('slow');
      await short.readBatch(1);
      expect(await long.cancel(id, 'job-slow')).toBe('signalled');
      await sleep(PAST_SHORT_LEASE);
      // The holder died (its lease lapsed); whoever takes the message next sees the mark.
      const [again] = await long.readBatch(1);
      expect(again!.id).toBe(id);
      expect((await long.control()).cancels).toEqual([{ id, jobId: 'job-slow' }]);
    });

    it('a message whose lease lapsed unread is revoked, not marked', async () => {
      const [short, long] = await shortAndLong();
      const id = await short.write('late');
      await short.readBatch(1);
      await sleep(PAST_SHORT_LEASE);
      expect(await long.cancel(id, 'job-late')).toBe('revoked');
      expect(await long.readBatch(1)).toEqual([]);
    });

    it('refuses an empty id or job id, naming it', async () => {
      const queue = await one();
      await expect(queue.cancel('', 'job')).rejects.toThrow(ConfigError);
      await expect(queue.cancel('1', '')).rejects.toThrow(/invalid jobId ""/);
    });
  });

  describe('queue events: listeners and the log', () => {
    it('control() says whether a listener is registered; unregistering ends it', async () => {
      const [consumer, listener] = await instances(2);
      expect((await consumer!.control()).listening).toBe(false);
      await listener!.registerListener('l1');
      expect((await consumer!.control()).listening).toBe(true);
      await listener!.unregisterListener('l1');
      expect((await consumer!.control()).listening).toBe(false);
      await expect(listener!.registerListener('')).rejects.toThrow(ConfigError);
    });

    it('events get contiguous sequence numbers across instances, read in order from any cursor', async () => {
      const [a, b] = await instances(2);
      const start = await b!.registerListener('l');
      await a!.publishEvents(['e1', 'e2']);
      await b!.publishEvents(['e3']);
      const page = await b!.readEvents(start, 10);
      expect(page.events.map((e) => e.data)).toEqual(['e1', 'e2', 'e3']);
      expect(page.events.map((e) => e.seq)).toEqual([start + 1, start + 2, start + 3]);
      expect(page.last).toBe(start + 3);
      expect((await a!.readEvents(start + 1, 1)).events.map((e) => e.data)).toEqual(['e2']);
      expect(await a!.readEvents(start + 3, 10)).toEqual({ events: [], last: start + 3 });
      expect(await a!.registerListener('m')).toBe(start + 3);
      // Awkward text survives.
      await a!.publishEvents(['{"a":"\\u0000 é 😀"}']);
      expect((await b!.readEvents(start + 3, 10)).events[0]!.data).toBe('{"a":"\\u0000 é 😀"}');
    });

    it(`keeps the last ${MAX_EVENTS} events: a reader behind that sees the gap in the sequence numbers`, async () => {
      const queue = await one();
      const start = await queue.registerListener('l');
      const batch = Array.from({ length: 1_000 }, (_, i) => `e${i}`);
      for (let i = 0; i < MAX_EVENTS / 1_000 + 2; i++) await queue.publishEvents(batch);
      const total = MAX_EVENTS + 2_000;
      const page = await queue.readEvents(start, 10);
      expect(page.last).toBe(start + total);
      const first = page.events[0]!.seq;
      // At least the newest MAX_EVENTS are kept, and what is gone shows as a gap.
      expect(first).toBeGreaterThan(start + 1);
      expect(first).toBeLessThanOrEqual(start + total - MAX_EVENTS + 1);
      expect(page.events.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => first + i));
    });

    it('refuses a bad cursor or page size, naming it', async () => {
      const queue = await one();
      await expect(queue.readEvents(-1, 10)).rejects.toThrow(/invalid after -1/);
      await expect(queue.readEvents(0, 0)).rejects.toThrow(/invalid max 0/);
      await expect(queue.readEvents(0, 5_000)).rejects.toThrow(ConfigError);
    });
  });

  describe('the consumer registry: heartbeats', () => {
    it('lists the consumers that beat, with their latest state, by id; a forgotten one is gone', async () => {
      const [a, b] = await instances(2);
      const before = Date.now();
      await a!.heartbeat('consumer-b', '{"workers":1}');
      await b!.heartbeat('consumer-a', '{"workers":2}');
      await b!.heartbeat('consumer-a', '{"workers":3}');
      const seen = await a!.consumers();
      expect(seen.map((c) => [c.id, c.state])).toEqual([
        ['consumer-a', '{"workers":3}'],
        ['consumer-b', '{"workers":1}'],
      ]);
      for (const c of seen) expect(Math.abs(c.seenAt - before)).toBeLessThan(5_000); // the backend's clock
      await a!.forgetConsumer('consumer-a');
      expect((await b!.consumers()).map((c) => c.id)).toEqual(['consumer-b']);
    });

    it('refuses an empty id or a state that is not text, naming it', async () => {
      const queue = await one();
      await expect(queue.heartbeat('', '{}')).rejects.toThrow(/invalid consumer id ""/);
      await expect(queue.heartbeat('c', 42 as never)).rejects.toThrow(/invalid state 42/);
      expect(await queue.consumers()).toEqual([]);
    });
  });

  describe('findJob: a waiting or delayed message by its job id', () => {
    const envelope = (id: string) => encodeMessage('cmd', [{ id }], { id, now: 1 }).data;
    it('finds a waiting and a delayed message by job id among the first `limit` of each; not a leased one, nor past the limit', async () => {
      const queue = await one();
      const ids = ['job-a', 'job-b', 'job-c'];
      const written = [];
      for (const id of ids) written.push(await queue.write(envelope(id)));
      const later = await queue.write(envelope('job-later'), { runAt: Date.now() + FAR_AHEAD });
      expect(await queue.findJob('job-b', 10)).toEqual({ id: written[1], data: envelope('job-b'), state: 'waiting' });
      expect(await queue.findJob('job-later', 10)).toEqual({ id: later, data: envelope('job-later'), state: 'delayed' });
      expect(await queue.findJob('job-c', 2)).toBeNull(); // third in claim order: past a limit of 2
      expect(await queue.findJob('job', 10)).toBeNull(); // the whole id, not a part of it
      expect(await queue.findJob('no-such-job', 10)).toBeNull();
      const [leased] = await queue.readBatch(1);
      expect(leased!.id).toBe(written[0]);
      expect(await queue.findJob('job-a', 10)).toBeNull();
    });

    it('refuses an empty job id or a bad limit, naming it', async () => {
      const queue = await one();
      await expect(queue.findJob('', 10)).rejects.toThrow(/invalid job id ""/);
      await expect(queue.findJob('j', 0)).rejects.toThrow(/invalid limit 0/);
    });
  });

  describe('the throughput history: counts carried by heartbeats', () => {
    it('adds the counts per minute across consumers and instances, oldest first; minutes past the window are left out', async () => {
      const [a, b] = await instances(2);
      const queue = a!.name;
      const now = Date.now();
      const minute = now - (now % THROUGHPUT_BUCKET_MS);
      const before = minute - THROUGHPUT_BUCKET_MS;
      const tooOld = minute - THROUGHPUT_WINDOW_MS - THROUGHPUT_BUCKET_MS;
      expect(await a!.throughput()).toEqual([]);
      await a!.heartbeat('consumer-1', '{}', [
        { queue, minute: tooOld, completed: 9, failed: 9 },
        { queue, minute: before, completed: 2, failed: 1 },
        { queue, minute, completed: 3, failed: 0 },
      ]);
      await b!.heartbeat('consumer-2', '{}', [{ queue, minute, completed: 4, failed: 2 }]);
      await b!.heartbeat('consumer-2', '{}'); // a beat with nothing settled changes nothing
      const expected = [
        { minute: before, completed: 2, failed: 1 },
        { minute, completed: 7, failed: 2 },
      ];
      expect(await b!.throughput()).toEqual(expected);
      expect(await a!.throughput()).toEqual(expected);
      // The beat is recorded with its counts.
      expect((await a!.consumers()).map((c) => c.id)).toEqual(['consumer-1', 'consumer-2']);
      // Another queue keeps its own.
      expect(await (await one()).throughput()).toEqual([]);
    });

    it('refuses counts for another queue, off a minute or not whole, naming them, and records nothing', async () => {
      const queue = await one();
      // One reading of the clock: two could straddle a millisecond and make `minute` itself off a minute.
      const now = Date.now();
      const minute = now - (now % THROUGHPUT_BUCKET_MS);
      const bad = async (count: unknown, pattern: RegExp) => {
        const error = await queue.heartbeat('c', '{}', [count as never]).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ConfigError);
        expect(String(error)).toMatch(pattern);
      };
      await bad({ queue: 'elsewhere', minute, completed: 1, failed: 0 }, /invalid counts\[0\].*elsewhere/);
      await bad({ queue: queue.name, minute: minute + 1, completed: 1, failed: 0 }, /invalid counts\[0\]/);
      await bad({ queue: queue.name, minute, completed: -1, failed: 0 }, /invalid counts\[0\]/);
      await bad({ queue: queue.name, minute, completed: 1.5, failed: 0 }, /invalid counts\[0\]/);
      await expect(queue.heartbeat('c', '{}', 'many' as never)).rejects.toThrow(/invalid counts "many"/);
      expect(await queue.throughput()).toEqual([]);
      expect(await queue.consumers()).toEqual([]);
    });
  });
}
