/**
 * configure() and what it sets: the default queue, immediate mode, the
 * payload limit and the result TTL; and the cache of queues opened from URLs
 * by commands, which closeQueues() closes.
 */
import { z } from 'zod';
import { BaseQueue, QUEUE_NAME_PATTERN } from '../backends/base.js';
import { createQueue } from '../backends/index.js';
import { defaultQueueUrl, DEFAULT_MAX_PAYLOAD_BYTES } from '../shared/config.js';
import { ConfigError } from '../shared/errors.js';
import { boolean, integer, nonEmptyString, oneOf, parseOptions, positiveMillis, type DeclaresEvery } from '../shared/options.js';
import { DEFAULT_RESULT_TTL_MS } from './results.js';

export interface TaskmillSettings {
  /** The default queue for commands without their own: a BaseQueue or URL. Default $TASKMILL_QUEUE, else sqlite:taskmill.sqlite. */
  queue?: BaseQueue | string;
  /** Run commands in-process when called (the seed's QUEUE_ALWAYS_EAGER), for tests. Default false. */
  immediate?: boolean;
  /** Largest encoded message accepted at enqueue, bytes. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** How long job results are kept, ms. Default 1 day. */
  resultTtlMs?: number;
}

type Settings = { queue: BaseQueue | string | undefined; immediate: boolean; maxPayloadBytes: number; resultTtlMs: number };

/** What the settings are before configure() changes them (queue: $TASKMILL_QUEUE, else sqlite:taskmill.sqlite, read when used). @internal */
export const SETTINGS_DEFAULTS = { immediate: false, maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES, resultTtlMs: DEFAULT_RESULT_TTL_MS } as const;

/** No defaults here: configure() changes only what it is given. */
const settingsSchema = z.object({
  queue: oneOf([nonEmptyString(), z.instanceof(BaseQueue)], 'must be a BaseQueue or a queue URL').optional(),
  immediate: boolean().optional(),
  maxPayloadBytes: integer(1).optional(),
  resultTtlMs: positiveMillis().optional(),
});
const _declared: DeclaresEvery<z.input<typeof settingsSchema>, TaskmillSettings> = true;

/** The current settings; configure() is the only writer (read directly on the enqueue path: no copy per call). */
const current: Settings = { queue: undefined, ...SETTINGS_DEFAULTS };
const queuesByUrl = new Map<string, BaseQueue>();

export function configure(options: TaskmillSettings): void {
  const given = parseOptions(settingsSchema, options, 'configure');
  if (given.queue !== undefined) current.queue = given.queue;
  if (given.immediate !== undefined) current.immediate = given.immediate;
  if (given.maxPayloadBytes !== undefined) current.maxPayloadBytes = given.maxPayloadBytes;
  if (given.resultTtlMs !== undefined) current.resultTtlMs = given.resultTtlMs;
}

/** The current settings (read-only view). */
export function getSettings(): Readonly<TaskmillSettings> {
  return { ...current };
}

/** Resolves a queue option (instance or URL, or the configured default) to one cached BaseQueue per URL. */
/** A command's `queue` that is a queue name (`critical`), not a URL: URLs all have a scheme or host:port. */
function isQueueName(queue: string): boolean {
  return QUEUE_NAME_PATTERN.test(queue);
}

/**
 * The queue a command writes to: a BaseQueue as given; a URL, opened once and cached; a
 * name, that queue on configure()'s server (or the default one).
 */
export function resolveQueue(queue?: BaseQueue | string): BaseQueue {
  if (typeof queue === 'string' && isQueueName(queue)) {
    const server = current.queue ?? defaultQueueUrl();
    if (server instanceof BaseQueue) {
      if (server.name === queue) return server;
      throw new ConfigError(`queue ${JSON.stringify(queue)} is a queue name, so it needs configure({ queue }) to be a URL (its server), not a BaseQueue`);
    }
    return cachedQueue(server, queue);
  }
  const target = queue ?? current.queue ?? defaultQueueUrl();
  if (target instanceof BaseQueue) return target;
  return cachedQueue(target, undefined);
}

function cachedQueue(url: string, name: string | undefined): BaseQueue {
  const key = name === undefined ? url : `${url}\u0000${name}`;
  const cached = queuesByUrl.get(key);
  if (cached) return cached;
  const created = name === undefined ? createQueue(url) : createQueue(url, { name });
  queuesByUrl.set(key, created);
  return created;
}

/** Closes every queue opened from a URL by commands (producers call this before exiting). */
export async function closeQueues(): Promise<void> {
  const queues = [...queuesByUrl.values()];
  queuesByUrl.clear();
  await Promise.all(queues.map((q) => q.close()));
}

export const settings: Readonly<Settings> = current;
