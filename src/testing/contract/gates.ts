/**
 * Contract: startGated, the rate windows and concurrency slots behind a
 * command's `rateLimit` and `concurrency`. Across instances (consumers) of one
 * queue: at most `limit` starts in any window of `perMs`, at most `limit`
 * holders of a key at once; a message over a gate goes back unstarted and
 * comes back by itself when the gate may let it through (a reservation's
 * time, a freed slot), never by being polled.
 */
import { describe, expect, it } from 'vitest';
import type { BaseQueue, QueueMessage, StartGates } from '../../backends/base.js';
import { ConfigError } from '../../shared/errors.js';
import { type ContractHarness, UNKNOWN_ID, freshName, sleep } from './kit.js';

const conc = (limit: number, key = 'k'): StartGates => ({ concurrency: { key, limit } });
const rate = (limit: number, perMs: number, key = 'r'): StartGates => ({ rate: { key, limit, perMs } });

async function writeRead(queue: BaseQueue, datas: string[]): Promise<QueueMessage[]> {
  for (const data of datas) await queue.write(data);
  return queue.readBatch(datas.length);
}

async function decide(queue: BaseQueue, messages: QueueMessage[], gates: StartGates): Promise<string[]> {
  const out: string[] = [];
  for (const m of messages) out.push((await queue.startGated(m.id, gates)).decision);
  return out;
}

export function describeGates(harness: ContractHarness): void {
  const { instances, open, one } = harness;
  describe('startGated: concurrency', () => {
    it('lets `limit` holders of a key start across instances and parks the rest out of the queue', async () => {
      const [a, b] = await instances(2);
      const fromA = await writeRead(a!, ['1', '2']);
      const fromB = await writeRead(b!, ['3', '4']);
      expect(await decide(a!, fromA, conc(3))).toEqual(['started', 'started']);
      expect(await decide(b!, fromB, conc(3))).toEqual(['started', 'deferred']);
      expect(await a!.stats()).toEqual({ ready: 0, leased: 3, failed: 0, delayed: 1 });
      expect(await b!.promoteDue()).toBe(0);
      expect(await b!.readBatch(10)).toEqual([]);
    });

    it('keys are independent', async () => {
      const queue = await one();
      const messages = await writeRead(queue, ['a1', 'a2', 'b1']);
      expect((await queue.startGated(messages[0]!.id, conc(1, 'a'))).decision).toBe('started');
      expect((await queue.startGated(messages[1]!.id, conc(1, 'a'))).decision).toBe('deferred');
      expect((await queue.startGated(messages[2]!.id, conc(1, 'b'))).decision).toBe('started');
    });

    it('each way a holder lease ends (ack, fail, retry, release) wakes one parked message, its delivery not counted', async () => {
      const queue = await one();
      const holders = await writeRead(queue, ['h1', 'h2', 'h3', 'h4']);
      expect(await decide(queue, holders, conc(4))).toEqual(['started', 'started', 'started', 'started']);
      const waiting = await writeRead(queue, ['w1', 'w2', 'w3', 'w4']);
      expect(await decide(queue, waiting, conc(4))).toEqual(['deferred', 'deferred', 'deferred', 'deferred']);
      const end: ((id: string) => Promise<unknown>)[] = [
        (id) => queue.ackBatch([id]),
        (id) => queue.fail(id, 'boom'),
        (id) => queue.retry(id, 'again', Date.now() + 3_600_000),
        (id) => queue.release([id]),
      ];
      const woken: string[] = [];
      for (const [i, holder] of holders.entries()) {
        await end[i]!(holder.id);
        const ready = (await queue.readBatch(10)).filter((m) => m.data.startsWith('w'));
        expect(ready.map((m) => m.attempt)).toEqual([1]);
        woken.push(ready[0]!.data);
        expect((await queue.startGated(ready[0]!.id, conc(4))).decision).toBe('started');
      }
      expect(woken).toEqual(['w1', 'w2', 'w3', 'w4']);
    });

    it('wakes parked messages in priority order, oldest first within one', async () => {
      const queue = await one();
      const [holder] = await writeRead(queue, ['holder']);
      expect((await queue.startGated(holder!.id, conc(1))).decision).toBe('started');
      await queue.write('p0-old');
      await queue.write('p5', { priority: 5 });
      await queue.write('p0-new');
      const parked = await queue.readBatch(3);
      expect(await decide(queue, parked, conc(1))).toEqual(['deferred', 'deferred', 'deferred']);
      const order: string[] = [];
      let current = holder!;
      for (let i = 0; i < 3; i++) {
        await queue.ackBatch([current.id]);
        const [next] = await queue.readBatch(10);
        order.push(next!.data);
        expect((await queue.startGated(next!.id, conc(1))).decision).toBe('started');
        current = next!;
      }
      expect(order).toEqual(['p5', 'p0-old', 'p0-new']);
    });

    it('a holder whose lease lapsed no longer counts; its next delivery ending wakes a parked one', async () => {
      // Its own lease, long enough that a loaded machine does not let it lapse before the park.
      const name = freshName();
      const [a, b] = [await open(name, { leaseMs: 600 }), await open(name)];
      const [held] = await writeRead(a, ['held']);
      expect((await a.startGated(held!.id, conc(1))).decision).toBe('started');
      const [parked] = await writeRead(b, ['parked']);
      expect((await b.startGated(parked!.id, conc(1))).decision).toBe('deferred');
      await sleep(800);
      // The slot came back with the lapse: the lapsed message itself, read again, may start.
      // (A backend may already wake the parked one when it requeues the lapsed lease.)
      const first = await b.readBatch(10);
      const again = first.filter((m) => m.data === 'held');
      expect(again.map((m) => m.attempt)).toEqual([2]);
      expect((await b.startGated(again[0]!.id, conc(1))).decision).toBe('started');
      expect(await a.ackBatch([held!.id])).toEqual([held!.id]); // fenced: a lost it
      await b.ackBatch([again[0]!.id]);
      const read = [...first, ...(await b.readBatch(10))].filter((m) => m.data === 'parked');
      expect(read).toHaveLength(1);
      expect((await b.startGated(read[0]!.id, conc(1))).decision).toBe('started');
    });

    it('a parked message can be removed (revoked), and is gone for good', async () => {
      const queue = await one();
      const [holder, waiter] = await writeRead(queue, ['holder', 'waiter']);
      expect(await decide(queue, [holder!, waiter!], conc(1))).toEqual(['started', 'deferred']);
      expect(await queue.remove(waiter!.id)).toBe(true);
      expect((await queue.stats()).delayed).toBe(0);
      await queue.ackBatch([holder!.id]);
      expect(await queue.readBatch(10)).toEqual([]);
    });

    it('flush forgets slots and parked messages', async () => {
      const queue = await one();
      const [holder, waiter] = await writeRead(queue, ['holder', 'waiter']);
      expect(await decide(queue, [holder!, waiter!], conc(1))).toEqual(['started', 'deferred']);
      await queue.flush();
      expect(await queue.stats()).toEqual({ ready: 0, leased: 0, failed: 0, delayed: 0 });
      const [fresh] = await writeRead(queue, ['fresh']);
      expect((await queue.startGated(fresh!.id, conc(1))).decision).toBe('started');
    });
  });

  describe('startGated: rate', () => {
    it('lets `limit` starts through per window across instances and books the rest a start each, spread over later windows', async () => {
      const [a, b] = await instances(2);
      const per = 500;
      const fromA = await writeRead(a!, ['1', '2', '3']);
      const fromB = await writeRead(b!, ['4', '5', '6', '7']);
      const t0 = Date.now();
      expect(await decide(a!, fromA, rate(2, per))).toEqual(['started', 'started', 'deferred']);
      let lastStarts = Date.now(); // the two starts were stamped before this
      expect(await decide(b!, fromB, rate(2, per))).toEqual(['deferred', 'deferred', 'deferred', 'deferred']);
      expect(await b!.stats()).toEqual({ ready: 0, leased: 2, failed: 0, delayed: 5 });
      // Two were booked for the next window, two for the one after, one for the third. Each
      // check comes 100 ms later into its window than the one before, and a window after the
      // previous window's starts (restamped when they ran), so those have left the window by
      // then however slow the box is.
      const byWindow: string[][] = [];
      for (let w = 1; w <= 3; w++) {
        await sleep(Math.max(t0 + w * per + 50 + (w - 1) * 100, lastStarts + per + 20) - Date.now());
        await a!.promoteDue();
        const due = await a!.readBatch(10);
        expect(due.every((m) => m.attempt === 1)).toBe(true);
        expect(await decide(a!, due, rate(2, per))).toEqual(due.map(() => 'started'));
        lastStarts = Date.now();
        byWindow.push(due.map((m) => m.data));
      }
      expect(byWindow).toEqual([['3', '4'], ['5', '6'], ['7']]);
    });

    it('never lets more than `limit` start in any window of `perMs` (sliding, not buckets), and every message starts once', async () => {
      const [a, b] = await instances(2);
      const per = 300;
      const limit = 2;
      const starts: { data: string; before: number; after: number }[] = [];
      for (let i = 0; i < 7; i++) await (i % 2 ? a! : b!).write(`m${i}`);
      const deadline = Date.now() + 8 * per;
      while (starts.length < 7 && Date.now() < deadline) {
        for (const queue of [a!, b!]) {
          await queue.promoteDue();
          for (const m of await queue.readBatch(2)) {
            const before = Date.now();
            const { decision } = await queue.startGated(m.id, rate(limit, per));
            if (decision === 'started') {
              starts.push({ data: m.data, before, after: Date.now() });
              await queue.ackBatch([m.id]);
            }
          }
        }
        await sleep(25);
      }
      expect(starts.map((s) => s.data).sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      // Any window: the i-th and (i+limit)-th starts are a window apart. Each grant happened
      // between the call and its reply, so the later reply is a window after the earlier call
      // however slow the round trips (2 ms for a server clock read apart from Date.now()).
      for (let i = 0; i + limit < starts.length; i++) expect(starts[i + limit]!.after - starts[i]!.before).toBeGreaterThanOrEqual(per - 2);
    });

    it('a message starting on its own reservation does not count against itself; a fresh one waits behind due reservations', async () => {
      const queue = await one();
      const per = 400;
      const [first, booked] = await writeRead(queue, ['first', 'booked']);
      expect(await decide(queue, [first!, booked!], rate(1, per))).toEqual(['started', 'deferred']);
      await queue.ackBatch([first!.id]);
      await sleep(per + 150);
      const [fresh] = await writeRead(queue, ['fresh']);
      expect((await queue.startGated(fresh!.id, rate(1, per))).decision).toBe('deferred');
      await queue.promoteDue();
      const [due] = await queue.readBatch(10);
      expect(due!.data).toBe('booked');
      expect((await queue.startGated(due!.id, rate(1, per))).decision).toBe('started');
    });

    it('answers a rate deferral with its booked runAt, a park with none', async () => {
      const queue = await one();
      const [m1, m2, m3] = await writeRead(queue, ['m1', 'm2', 'm3']);
      const before = Date.now();
      expect((await queue.startGated(m1!.id, rate(1, 5_000))).decision).toBe('started');
      const booked = await queue.startGated(m2!.id, rate(1, 5_000));
      expect(booked.decision).toBe('deferred');
      expect(booked.runAt).toBeGreaterThanOrEqual(before + 5_000 - 50);
      expect(booked.runAt).toBeLessThanOrEqual(Date.now() + 5_000 + 50);
      expect((await queue.startGated(m3!.id, conc(1, 'other'))).decision).toBe('started');
      const [m4] = await writeRead(queue, ['m4']);
      const parked = await queue.startGated(m4!.id, conc(1, 'other'));
      expect(parked).toEqual({ decision: 'deferred' });
    });

    it('a booking that comes due into a full window (the start before it ran late) is rebooked at the earliest start, ahead of later bookings', async () => {
      const queue = await one();
      const per = 300;
      const [m1, m2, m3, m4] = await writeRead(queue, ['m1', 'm2', 'm3', 'm4']);
      const t0 = Date.now();
      expect((await queue.startGated(m1!.id, rate(1, per))).decision).toBe('started');
      const b2 = await queue.startGated(m2!.id, rate(1, per));
      const b3 = await queue.startGated(m3!.id, rate(1, per));
      const b4 = await queue.startGated(m4!.id, rate(1, per));
      expect([b2.runAt! < b3.runAt!, b3.runAt! < b4.runAt!]).toEqual([true, true]);
      await sleep(t0 + per + 150 - Date.now()); // m2 runs 150 ms late: its start moves into m3's window
      await queue.promoteDue();
      const [late] = await queue.readBatch(10);
      expect(late!.data).toBe('m2');
      expect((await queue.startGated(late!.id, rate(1, per))).decision).toBe('started');
      await sleep(b3.runAt! + 20 - Date.now());
      await queue.promoteDue();
      const [due] = await queue.readBatch(10);
      expect(due!.data).toBe('m3');
      const rebooked = await queue.startGated(due!.id, rate(1, per));
      expect(rebooked.decision).toBe('deferred');
      expect(rebooked.runAt).toBeLessThan(b4.runAt!);
    });

    it('keys are independent', async () => {
      const queue = await one();
      const [x, y] = await writeRead(queue, ['x', 'y']);
      expect((await queue.startGated(x!.id, rate(1, 60_000, 'x'))).decision).toBe('started');
      expect((await queue.startGated(y!.id, rate(1, 60_000, 'y'))).decision).toBe('started');
    });

    it('both gates: a parked message uses no rate start, a rate-deferred one holds no slot', async () => {
      const queue = await one();
      const both = (limit: number): StartGates => ({ ...conc(1), ...rate(limit, 60_000) });
      const [m1, m2, m3] = await writeRead(queue, ['m1', 'm2', 'm3']);
      expect((await queue.startGated(m1!.id, both(2))).decision).toBe('started');
      expect((await queue.startGated(m2!.id, both(2))).decision).toBe('deferred'); // parked: the slot is taken
      await queue.ackBatch([m1!.id]);
      const [woken] = await queue.readBatch(10);
      expect(woken!.data).toBe('m2');
      expect((await queue.startGated(woken!.id, both(2))).decision).toBe('started'); // the second start of the window
      await queue.ackBatch([woken!.id]);
      expect((await queue.startGated(m3!.id, both(2))).decision).toBe('deferred'); // over the rate, delayed
      const [m4] = await writeRead(queue, ['m4']);
      expect((await queue.startGated(m4!.id, conc(1))).decision).toBe('started'); // m3 holds no slot
    });
  });

  describe('startGated: fencing and bad input', () => {
    it('is "lost" for a message this owner does not hold, and changes nothing', async () => {
      const [a, b] = await instances(2);
      const [m] = await writeRead(a!, ['m']);
      expect((await b!.startGated(m!.id, conc(1))).decision).toBe('lost');
      expect((await b!.startGated(UNKNOWN_ID, rate(1, 1000))).decision).toBe('lost');
      expect((await a!.startGated(m!.id, conc(1))).decision).toBe('started');
    });

    it('refuses a bad limit, window or key, naming it', async () => {
      const queue = await one();
      const [m] = await writeRead(queue, ['m']);
      const bad: [unknown, RegExp][] = [
        [{ concurrency: { key: 'k', limit: 0 } }, /concurrency\.limit 0/],
        [{ concurrency: { key: 'k', limit: 1.5 } }, /concurrency\.limit 1\.5/],
        [{ rate: { key: 'k', limit: 1, perMs: 0 } }, /rateLimit\.per 0/],
        [{ rate: { key: '', limit: 1, perMs: 10 } }, /rateLimit key/],
        [{ concurrency: { key: 7, limit: 1 } }, /concurrency key 7/],
      ];
      for (const [gates, message] of bad) {
        await expect(queue.startGated(m!.id, gates as StartGates)).rejects.toThrow(ConfigError);
        await expect(queue.startGated(m!.id, gates as StartGates)).rejects.toThrow(message);
      }
      expect((await queue.startGated(m!.id, conc(1))).decision).toBe('started');
    });
  });
}
