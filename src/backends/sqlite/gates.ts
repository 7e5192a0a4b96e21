/**
 * Rate windows and concurrency slots of SqliteQueue (BaseQueue.startGated
 * states the rules; memory/gates.ts is the reference). Each decision is one
 * BEGIN IMMEDIATE transaction, so it is atomic across every process sharing
 * the file, and reads the machine clock once, as claims do.
 *
 * Where the state lives (schema version 5):
 * - A started message holds a slot of its key in `slot_key` while it is
 *   leased. A holder counts only while its lease is live, so a lapsed one
 *   stops counting at once; the lease ending (ack, fail, retry, release,
 *   reclaim, a claim of the lapsed lease, remove) clears it and wakes one
 *   parked message of the key, in the same transaction.
 * - A parked message has `parked_key` set and a run_at no clock reaches: out
 *   of the ready index and promoteDue, counted as delayed, removable.
 * - taskmill_rates holds each key's window: recorded starts, and starts
 *   booked for rate-deferred messages (`reserved_for`).
 */
import type Database from 'better-sqlite3';
import type { StartGates, StartOutcome } from '../base.js';
import type { Statements } from './schema.js';

/** A message whose lease just ended (or that was deleted), with the slot key it held, if any. */
export interface EndedLease {
  id: number;
  slot_key: string | null;
}

export interface SqliteGates {
  /** startGated's decision for message `id` (its `delivery`, or null: any lease of this owner), gates already checked; one transaction. */
  start(id: number, gates: StartGates, delivery: number | null): StartOutcome;
  /**
   * Frees the slots of leases that just ended and wakes one parked message of each key. Call it
   * inside the transaction that ended them; rows without a slot cost nothing.
   */
  leasesEnded(rows: readonly EndedLease[]): void;
  /** A claim just took these redelivered messages: those that were lapsed slot holders free their slot. */
  claimedAgain(ids: readonly number[]): void;
}

const STARTED: StartOutcome = Object.freeze({ decision: 'started' });
const DEFERRED: StartOutcome = Object.freeze({ decision: 'deferred' });
const LOST: StartOutcome = Object.freeze({ decision: 'lost' });

export function prepareGates(db: Database.Database, s: Statements, queue: string, owner: string): SqliteGates {
  const leasesEnded = (rows: readonly EndedLease[]) => {
    for (const { id, slot_key: key } of rows) {
      if (key === null) continue;
      s.dropSlot.run({ id }); // a no-op when the row is gone (ack, fail, remove)
      s.wakeParked.run({ queue, key, count: 1 });
    }
  };

  const start = db.transaction((id: number, gates: StartGates, delivery: number | null): StartOutcome => {
    const now = Date.now();
    const held = s.gateHeld.get({ queue, owner, now, id, delivery }) as { slot_key: string | null } | undefined;
    if (!held) return LOST;
    const { rate, concurrency } = gates;
    let rebooking = false;
    if (rate) {
      s.rateExpire.run({ queue, key: rate.key, since: now - rate.perMs });
      rebooking = s.rateUnreserve.run({ queue, key: rate.key, id }).changes > 0;
    }

    let holders = 0;
    if (concurrency) {
      holders = (s.slotHolders.get({ queue, key: concurrency.key, now, id }) as { n: number }).n;
      if (holders >= concurrency.limit) {
        // Parked: it books no rate start (its own reservation, if any, is given back above).
        leasesEnded([{ id, slot_key: held.slot_key }]);
        s.park.run({ id, key: concurrency.key });
        return DEFERRED;
      }
    }

    if (rate) {
      const due = (s.rateDue.get({ queue, key: rate.key, now, limit: rate.limit }) as { n: number }).n;
      if (due >= rate.limit) {
        const bookAt = rebooking ? s.rateRebookAt : s.rateReserveAt;
        const { at } = bookAt.get({ queue, key: rate.key, now, limit: rate.limit, perMs: rate.perMs }) as { at: number };
        s.rateRecord.run({ queue, key: rate.key, at, reservedFor: id });
        // It holds no slot while it waits for its reservation.
        leasesEnded([{ id, slot_key: held.slot_key }]);
        s.deferTo.run({ id, runAt: at });
        return { decision: 'deferred', runAt: at };
      }
      s.rateRecord.run({ queue, key: rate.key, at: now, reservedFor: null });
    }

    if (concurrency) {
      s.takeSlot.run({ id, key: concurrency.key });
      // Spare slots with messages parked (the limit was raised since they parked): wake that many.
      const spare = concurrency.limit - holders - 1;
      if (spare > 0) s.wakeParked.run({ queue, key: concurrency.key, count: spare });
    }
    return STARTED;
  });

  return {
    start: (id, gates, delivery) => start.immediate(id, gates, delivery),
    leasesEnded,
    claimedAgain: (ids) => leasesEnded(s.claimedHolders.all({ ids: JSON.stringify(ids) }) as EndedLease[]),
  };
}
