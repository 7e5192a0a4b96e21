/**
 * What RedisQueue keeps on its side for flow control (startGated; the
 * decisions are lua/tmStartGated.lua): the arguments of a start, and the ids
 * this instance started under a concurrency gate, so that acking any other id
 * stays the plain tmAck — the hot path pays nothing for slots it never took.
 *
 * The ack of a holder is the one place that must be told: fail, retry,
 * release and a lapsed lease's requeue are rare and always consult `slotof`
 * on the server. An id started under a gate by another instance with the same
 * owner token, then acked here, is acked plainly: its slot stops counting at
 * once (its lease is gone), but a message parked on its key waits for the next
 * start or end of a lease under that key.
 */
import type { StartGates } from '../base.js';
import { rateLogKey } from './scripts.js';
import type { Arg } from './wire.js';

/** tmStartGated's extra KEYS (the rate log, if any) and ARGV after the owner. */
export function startGatedCall(prefix: string, name: string, id: string, gates: StartGates): { logs: string[]; args: Arg[] } {
  const { rate, concurrency } = gates;
  return {
    logs: rate ? [rateLogKey(prefix, name, rate.key)] : [],
    args: [id, rate?.limit ?? 0, rate?.perMs ?? 0, concurrency?.key ?? '', concurrency?.limit ?? 0],
  };
}

/** The ids whose slot this instance took, until their lease ends here. */
export class SlotHolders {
  readonly #ids = new Set<string>();

  add(id: string): void {
    this.#ids.add(id);
  }

  /** For an ack of `ids`: tmAckGated's mask ('1' where an id took a slot), or null when none did (the plain tmAck). */
  ackMask(ids: readonly string[]): string | null {
    if (this.#ids.size === 0) return null;
    let mask = '';
    let any = false;
    for (const id of ids) {
      const held = this.#ids.has(id);
      any ||= held;
      mask += held ? '1' : '0';
    }
    return any ? mask : null;
  }

  /** Their lease ended here (or was found lost): the slot, if any, is the server's business now. */
  forget(ids: readonly string[]): void {
    if (this.#ids.size === 0) return;
    for (const id of ids) this.#ids.delete(id);
  }

  clear(): void {
    this.#ids.clear();
  }
}
