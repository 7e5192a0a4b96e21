/**
 * Job lifecycle hooks: typed events a host subscribes to. Producers emit
 * `enqueued`/`revoked`, consumers the rest, in whichever process they run.
 *
 * Cheap when nobody listens: emitters check `jobEvents.has(name)` before
 * building a payload, so an unobserved event costs one array-length read.
 */

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
type Listener<K extends JobEventName> = (event: JobEventMap[K]) => void;

export class JobEvents {
  readonly #listeners: { [K in JobEventName]?: Listener<K>[] } = {};

  /** Subscribes; returns the unsubscribe function. A throwing listener is reported, never breaks a job. */
  on<K extends JobEventName>(name: K, listener: Listener<K>): () => void {
    const list = (this.#listeners[name] ??= []) as Listener<K>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i !== -1) list.splice(i, 1);
    };
  }

  has(name: JobEventName): boolean {
    return (this.#listeners[name]?.length ?? 0) > 0;
  }

  emit<K extends JobEventName>(name: K, event: JobEventMap[K]): void {
    const list = this.#listeners[name];
    if (!list) return;
    for (const listener of [...list]) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(`taskmill: a "${name}" listener threw: ${error instanceof Error ? error.message : String(error)}`, 'TaskmillWarning');
      }
    }
  }

  /** Removes every listener (tests). */
  clear(): void {
    for (const key of Object.keys(this.#listeners) as JobEventName[]) delete this.#listeners[key];
  }
}

/** The process-wide job event hub. */
export const jobEvents = new JobEvents();
