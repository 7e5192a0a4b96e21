/**
 * Why this exists: a single `write` is one INSERT and one commit, and the
 * commit waits for the server's WAL flush, so a producer with many calls in
 * flight is bound by how many commits the server flushes per second (one
 * fsync each on a plain disk). Calls made while earlier ones are being
 * written are coalesced: they wait for the next flush (the next turn of the
 * event loop, or for a flush slot if `maxInFlight` are being written) and go
 * in one multi-row INSERT, one commit. Each call's promise resolves with its
 * own id only once that statement has committed (the driver answers after
 * the commit), so a resolved write is durable and visible to every
 * connection, exactly as before. A failed statement rolls back all its rows
 * and rejects exactly the calls it carried, each with the same error;
 * nothing is retried behind the caller's back.
 *
 * Hot path: one promise per call (the caller's), pushed onto parallel
 * arrays; the closures are per flush, not per call.
 */

/** What one flush sends: the rows in call order. */
export interface WriteRows {
  texts: (string | null)[];
  bytes: (Buffer | null)[];
  runAts: (number | null)[];
  priorities: number[];
}

interface Waiter {
  resolve: (id: string) => void;
  reject: (error: unknown) => void;
}

export interface WriteBatcherOptions {
  /** Writes the rows in one statement; resolves with their ids in the same order. */
  flush: (rows: WriteRows) => Promise<string[]>;
  /** Flushes written at once (each takes a pool connection). */
  maxInFlight: number;
  /** Most rows in one statement; the rest go in the next flush. */
  maxRows: number;
  /**
   * Most payload characters in one statement (a row bigger than this goes alone): a statement
   * has one query deadline, so coalescing must not turn many big writes into one that misses it.
   */
  maxChars: number;
}

function emptyRows(): WriteRows {
  return { texts: [], bytes: [], runAts: [], priorities: [] };
}

export class WriteBatcher {
  #rows = emptyRows();
  #waiters: Waiter[] = [];
  /** Payload characters of each pending row, same order. */
  #sizes: number[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idle: (() => void)[] = [];
  readonly #options: WriteBatcherOptions;
  readonly #flushSoon = (): void => this.#flush();

  constructor(options: WriteBatcherOptions) {
    this.#options = options;
  }

  /** Queues one row for the next flush; resolves with its id once committed. */
  add(text: string | null, bytes: Buffer | null, runAt: number | null, priority: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const rows = this.#rows;
      rows.texts.push(text);
      rows.bytes.push(bytes);
      rows.runAts.push(runAt);
      rows.priorities.push(priority);
      this.#sizes.push(text === null ? (bytes?.length ?? 0) / 2 : text.length);
      this.#waiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once every row added so far has been written (or has failed). */
  drain(): Promise<void> {
    if (this.#waiters.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#options.maxInFlight) return;
    this.#scheduled = true;
    setImmediate(this.#flushSoon);
  }

  #flush(): void {
    this.#scheduled = false;
    const count = this.#waiters.length;
    if (count === 0) return;
    const { maxRows, maxChars, flush } = this.#options;
    const sizes = this.#sizes;
    let take = 0;
    for (let chars = 0; take < count && take < maxRows; take++) {
      chars += sizes[take]!;
      if (chars > maxChars && take > 0) break;
    }
    let rows: WriteRows;
    let waiters: Waiter[];
    if (take === count) {
      rows = this.#rows;
      waiters = this.#waiters;
      this.#rows = emptyRows();
      this.#waiters = [];
      this.#sizes = [];
    } else {
      const all = this.#rows;
      rows = {
        texts: all.texts.splice(0, take),
        bytes: all.bytes.splice(0, take),
        runAts: all.runAts.splice(0, take),
        priorities: all.priorities.splice(0, take),
      };
      waiters = this.#waiters.splice(0, take);
      sizes.splice(0, take);
    }
    this.#inFlight++;
    let written: Promise<string[]>;
    try {
      written = flush(rows);
    } catch (error) {
      written = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    written.then(
      (ids) => {
        for (let i = 0; i < waiters.length; i++) waiters[i]!.resolve(ids[i]!);
        this.#settled();
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
        this.#settled();
      },
    );
    // More waiting than one statement takes: another flush, if a slot is free.
    if (this.#waiters.length > 0) this.#schedule();
  }

  #settled(): void {
    this.#inFlight--;
    if (this.#waiters.length > 0) this.#schedule();
    else if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }
}
