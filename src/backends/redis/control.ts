/**
 * Job control and queue events of RedisQueue (backends/control.ts states
 * the rules; the scripts are lua/tmMark, tmControl, tmListen, tmPublish and
 * tmReadEvents; the keys are scripts.ts's controlKeys): the replies decoded.
 */
import type { CancelRequest, ConsumerRecord, EventPage, QueueControl } from '../control.js';
import { replyText } from './wire.js';

/** tmControl's reply: { listening, id, job id, … }. */
export function decodeControl(reply: unknown): QueueControl {
  const items = reply as unknown[];
  const cancels: CancelRequest[] = [];
  for (let i = 1; i + 1 < items.length; i += 2) cancels.push({ id: replyText(items[i]), jobId: replyText(items[i + 1]) });
  return { cancels, listening: Number(items[0]) === 1 };
}

/** tmConsumers' reply: { id, state, seen at, … }. */
export function decodeConsumers(reply: unknown): ConsumerRecord[] {
  const items = reply as unknown[];
  const out: ConsumerRecord[] = [];
  for (let i = 0; i + 2 < items.length; i += 3) out.push({ id: replyText(items[i]), state: replyText(items[i + 1]), seenAt: Number(items[i + 2]) });
  return out;
}

/** tmReadEvents' reply: { last, seq, data, … }. */
export function decodeEventPage(reply: unknown): EventPage {
  const items = reply as unknown[];
  const events: EventPage['events'] = [];
  for (let i = 1; i + 1 < items.length; i += 2) events.push({ seq: Number(items[i]), data: replyText(items[i + 1]) });
  return { events, last: Number(items[0]) };
}
