/**
 * Typed listeners by event name, for the job hooks (producer/hooks.ts) and
 * queueEvents (producer/queue-events.ts): a listener that throws is reported
 * as a process warning and never stops the others (or the job that emitted).
 */
export class Listeners<M> {
  readonly #lists: { [K in keyof M]?: Array<(event: M[K]) => void> } = {};

  /** `what` names the listeners in a warning: `a "completed" listener threw`. */
  constructor(private readonly what = '') {}

  /** Subscribes; returns the unsubscribe function. */
  on<K extends keyof M>(name: K, listener: (event: M[K]) => void): () => void {
    const list = (this.#lists[name] ??= []);
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i !== -1) list.splice(i, 1);
    };
  }

  has(name: keyof M): boolean {
    return (this.#lists[name]?.length ?? 0) > 0;
  }

  emit<K extends keyof M>(name: K, event: M[K]): void {
    const list = this.#lists[name];
    if (!list) return;
    for (const listener of [...list]) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(
          `taskmill: a ${this.what}"${String(name)}" listener threw: ${error instanceof Error ? error.message : String(error)}`,
          'TaskmillWarning',
        );
      }
    }
  }

  /** Removes every listener. */
  clear(): void {
    for (const key of Object.keys(this.#lists) as Array<keyof M>) delete this.#lists[key];
  }
}
