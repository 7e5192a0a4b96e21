/**
 * Job lifecycle hooks: typed events a host subscribes to. Producers emit
 * `enqueued`/`revoked`, consumers the rest, in whichever process they run.
 *
 * Cheap when nobody listens: emitters check `jobEvents.has(name)` before
 * building a payload, so an unobserved event costs one array-length read.
 */

import { Listeners } from '../shared/listeners.js';

export interface JobEventBase {
  jobId: string;
  command: string;
}

export interface JobEventMap {
  enqueued: JobEventBase & { messageId: string; runAt: number | undefined };
  started: JobEventBase & { attempt: number; workerId: string };
  completed: JobEventBase & { attempt: number; workerId: string; durationMs: number };
  failed: JobEventBase & { attempt: number; workerId: string; error: Error };
  retrying: JobEventBase & { attempt: number; workerId: string; error: Error; delayMs: number };
  revoked: JobEventBase & { messageId: string };
  expired: JobEventBase & { attempt: number; workerId: string; expiresAt: number };
}

export type JobEventName = keyof JobEventMap;

/** Subscribe with `on(name, listener)` (returns the unsubscribe function); `has(name)` is what emitters check first. */
export class JobEvents extends Listeners<JobEventMap> {}

/** The process-wide job event hub. */
export const jobEvents = new JobEvents();
