/**
 * How the PostgreSQL backend stores values: payloads and records as text when PostgreSQL can
 * hold them exactly, else as UTF-16 bytes; which ids can be row ids; which times, ttls and
 * texts a statement can take (checked before anything is sent).
 */
import { ConfigError } from '../../shared/errors.js';
import { EXPECTED, invalidOption, isEpochMs, isPositiveMillis } from '../../shared/options.js';
import { checkResultList, checkResultRecord, type BaseQueue } from '../base.js';

const MAX_BIGINT = 9223372036854775807n;

export interface JobRow {
  id: string;
  data: string | null;
  data_utf16: Buffer | null;
  attempt: number;
  priority: number;
}

/** ES2024 string methods Node 20 has but this project's `lib` (ES2023) does not declare. */
type WellFormed = string & { isWellFormed(): boolean; toWellFormed(): string };

/** [text, bytea]: text when PostgreSQL stores the string exactly, else UTF-16 bytes. */
export function encodeData(data: unknown): [string | null, Buffer | null] {
  if (typeof data !== 'string') throw new ConfigError(`message data must be a string, got ${typeof data}`);
  if (isStorableText(data)) return [data, null];
  return [null, Buffer.from(data, 'utf16le')];
}

export function decodeData(row: { data: string | null; data_utf16: Buffer | null }): string {
  return row.data ?? (row.data_utf16 ? row.data_utf16.toString('utf16le') : '');
}

/** Ids that can be in the table; anything else is refused without asking the server. */
export function isRowId(id: unknown): id is string {
  // Per id acked: only a 19-digit id can pass the bigint maximum, so only that one costs a BigInt.
  return typeof id === 'string' && /^[1-9][0-9]{0,18}$/.test(id) && (id.length < 19 || BigInt(id) <= MAX_BIGINT);
}

/** Row ids (checked by isRowId) as one bigint[] literal: the driver would quote and escape each element. */
export function rowIdArray(ids: readonly string[]): string {
  return `{${ids.join(',')}}`;
}

/**
 * Delivery tokens (safe integers, checked by validLeases) as one bigint[] literal, or null for
 * none: the driver would convert and quote each element (a tenth of the consumer's PostgreSQL
 * driver time in a profile of 20,000 acks).
 */
export function deliveryArray(tokens: readonly number[] | null): string | null {
  return tokens === null ? null : `{${tokens.join(',')}}`;
}

/** Read order of two row ids (decimal, no leading zeros) without a BigInt each. */
export function compareRowIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** PostgreSQL text cannot hold NUL or lone surrogates; keys and error texts must be stored exactly or not at all. */
export function checkText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${what} must be a non-empty string`);
  if (!(value as WellFormed).isWellFormed() || value.includes('\u0000')) throw new ConfigError(`${what} must not contain NUL or lone surrogates`);
  return value;
}

/** Error text to store: never refused, so what PostgreSQL cannot hold is replaced. */
export function storableText(value: unknown): string {
  return (String(value) as WellFormed).toWellFormed().replaceAll('\u0000', '\\0');
}

/** Beyond ±this, a millisecond count is no JavaScript Date (and no PostgreSQL timestamp either). */
const MAX_TIME_MS = 8.64e15;
/** Year 1: any earlier runAt means the same (ready now), and to_timestamp() stays in range. */
const MIN_RUN_AT_MS = -62_135_596_800_000;

/**
 * The runAt parameter: null when absent; ConfigError when it is no time, or
 * none PostgreSQL can store (beyond a Date's range). Checked by hand on every
 * write (see backends/base.ts).
 */
export function runAtParam(runAt: unknown, queue: BaseQueue, method: string): number | null {
  if (runAt === undefined) return null;
  if (!isEpochMs(runAt) || Math.abs(runAt) > MAX_TIME_MS) throw invalidOption(`${queue.constructor.name}.${method}`, 'runAt', runAt, EXPECTED.epochMs);
  return Math.max(runAt, MIN_RUN_AT_MS);
}

/** The write options argument: absent or an object (whose runAt is checked by runAtParam). */
export function writeOptionsRunAt(options: unknown, queue: BaseQueue, method: string): number | null {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object') throw new ConfigError(`write options must be an object like { runAt }, got ${typeof options}`);
  return runAtParam((options as { runAt?: unknown }).runAt, queue, method);
}

/** A ttl that PostgreSQL can add to now(). */
export function checkTtl(ttlMs: unknown, queue: BaseQueue, method: string, option: string): number {
  if (!isPositiveMillis(ttlMs) || ttlMs > MAX_TIME_MS) throw invalidOption(`${queue.constructor.name}.${method}`, option, ttlMs, EXPECTED.positiveMillis);
  return ttlMs;
}

/**
 * setResults parameters [job ids, texts, bytes, ttls, message ids, deliveries]: checked, one per
 * job id (the last wins), sorted by job id. The last two are null unless `deliveries` (and
 * `messageIds`) fence the records; a message id that is no row id fences its record out.
 */
export function resultParams(
  records: unknown,
  queue: BaseQueue,
  messageIds?: readonly string[],
  deliveries?: readonly number[],
): [string[], (string | null)[], (Buffer | null)[], number[], (string | null)[] | null, (number | null)[] | null] {
  checkResultList(records, queue);
  const fenced = messageIds !== undefined && deliveries !== undefined;
  const byJob = new Map<string, { record: string; ttlMs: number; messageId: string | null; delivery: number | null }>();
  for (const [i, entry] of records.entries()) {
    const { jobId, record, ttlMs } = checkResultRecord(entry, i, queue);
    checkText(jobId, `result #${i}: jobId`);
    const messageId = fenced && isRowId(messageIds[i]) ? messageIds[i] : null;
    const delivery = fenced && Number.isSafeInteger(deliveries[i]) ? deliveries[i]! : null;
    byJob.set(jobId, { record, ttlMs: checkTtl(ttlMs, queue, 'setResults', `records[${i}].ttlMs`), messageId, delivery });
  }
  const jobIds = [...byJob.keys()].sort();
  const entries = jobIds.map((jobId) => byJob.get(jobId)!);
  const encoded = entries.map((e) => encodeData(e.record));
  return [
    jobIds,
    encoded.map(([text]) => text),
    encoded.map(([, bytes]) => bytes),
    entries.map((e) => e.ttlMs),
    fenced ? entries.map((e) => e.messageId) : null,
    fenced ? entries.map((e) => e.delivery) : null,
  ];
}

/** Whether PostgreSQL text can hold `value` exactly (keys that cannot were never stored). */
export function isStorableText(value: string): boolean {
  return (value as WellFormed).isWellFormed() && !value.includes('\u0000');
}

/**
 * The ids that can be rows, and their delivery tokens (null: fenced by owner only). An id that
 * is no row id, or a token that is no safe integer, is left out: refused.
 */
export function validLeases(ids: readonly string[], deliveries: readonly number[] | undefined): [string[], number[] | null] {
  if (deliveries === undefined) return [ids.filter(isRowId), null];
  return splitLeases(ids, deliveries, (id, i) => isRowId(id) && Number.isSafeInteger(deliveries[i]));
}

/** The ids for which `keep` holds, with their tokens when there are tokens. */
export function splitLeases(
  ids: readonly string[],
  deliveries: readonly number[] | null,
  keep: (id: string, i: number) => boolean,
): [string[], number[] | null] {
  const kept: string[] = [];
  const tokens: number[] | null = deliveries && [];
  for (const [i, id] of ids.entries()) {
    if (!keep(id, i)) continue;
    kept.push(id);
    if (tokens) tokens.push(deliveries![i]!);
  }
  return [kept, tokens];
}
