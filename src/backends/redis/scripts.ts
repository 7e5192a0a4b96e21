/**
 * How a queue looks on the Redis server: the key layout of one queue and the
 * Lua scripts that change it. RedisQueue (queue.ts) is the connection
 * handling and the BaseQueue methods on top of this; wire.ts encodes the
 * scripts' arguments and decodes their replies.
 *
 * The Lua lives in lua/, one file per script, so it reads (and diffs) as Lua;
 * every script runs behind lua/prelude.lua, which names the KEYS, reads the
 * clock and holds the helpers they share. This module reads the files once,
 * when it loads, and keeps the TypeScript side: the names, the key count.
 *
 * Every multi-step change is one script, so it is atomic on the server, and
 * every script receives ALL of the queue's keys in KEYS. The keys share one
 * hash tag (`{name}`), so they live in one Cluster slot and the scripts are
 * Cluster-safe. Time is the Redis server's clock (`TIME`), so consumers with
 * skewed clocks agree on lease deadlines; Redis ≥ 5 replicates script
 * effects, which makes the non-deterministic TIME safe to use before writes.
 *
 * Message ids are the values of a per-queue counter (`seq`), and the score of
 * a message in `ready` is its id less its priority × 2^42 (`prio` keeps the
 * priorities that are not 0): "highest priority, then oldest" is its first members, and
 * a message that comes back (released, lease expired, re-queued) goes back to
 * its place. `seq` survives flush() so ids are never reused.
 *
 * A delayed message (written or retried with a future runAt) waits in
 * `delayed`, scored by its runAt, and only promoteDue makes it ready — reads
 * never look at `delayed`, so a read stays one range of `ready` however many delayed
 * messages there are. Result records live in `results`, each with its expiry
 * in `resexp`; expired ones are ignored on read and purged a bounded number
 * at a time by later setResults calls.
 *
 * Flow control (startGated, lua/tmStartGated.lua). A concurrency key's
 * slots and its parked messages live in two sorted sets shared by every key
 * of the queue, `holders` and `parked`, all scores 0 so that members sort by
 * their bytes: a member begins with the key and a NUL (a gate key has none),
 * so one key's members are one lex range, and in `parked` the fixed-width
 * ready score after it gives the read order. Fixed roles rather than a set
 * per key because ack, fail, retry, release, a read's requeue of a lapsed
 * lease and remove() all free a slot or unpark a message of a key they are
 * not told (`slotof` and `parkedon` say which), and a script may only touch
 * the keys in its KEYS. A rate key's log is a sorted set of its own
 * (`rate:<key>`, scored by start time; only startGated, which knows the key,
 * touches it), passed in KEYS after the fixed roles. It expires with its
 * last entry's window, and `ratelogs` names every log that may still exist
 * so that flush() can delete them.
 *
 * Full server (maxmemory, noeviction): Redis refuses a script's first
 * memory-growing command only while the script has changed nothing yet. So
 * scripts that take something away (a lease, a delayed entry) do that first:
 * once they have begun they run to the end, and they are never cut in half.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient } from './cluster.js';

export const KEY_ROLES = [
  'ready', //    zset id → id: waiting messages
  'leases', //   zset id → lease deadline (server ms)
  'msg', //      hash id → data
  'attempt', //  hash id → deliveries so far
  'owner', //    hash id → owner token of the current lease
  'failed', //   zset id → failure order
  'failinfo', // hash id → "<failedAt ms>:<error>"
  'slots', //    zset slot key → claim expiry (server ms)
  'seq', //      string: the id counter (kept by flush)
  'wake', //     list with at most one token: "a message may be ready"
  'delayed', //  zset id → runAt (server ms): not ready before then
  'results', //  hash job id → result record
  'resexp', //   zset job id → result expiry (server ms)
  'prio', //     hash id → priority, for messages whose priority is not 0
  'ukeys', //    hash unique key → id of the message holding it
  'ukeyof', //   hash id → the unique key it holds
  'ukuntil', //  hash unique key → when its hold lapses (server ms), for keys written with a ttl
  'slotof', //   hash id → the concurrency key whose slot it took (startGated)
  'holders', //  zset, all scores 0: "<concurrency key>\0<id>" for each slot taken
  'parked', //   zset, all scores 0: "<concurrency key>\0<ready score>\0<id>" for each parked message
  'parkedon', // hash id → its member in parked
  'ratelogs', // zset rate log key → when it expires (server ms): what flush() must delete
  'rateseq', //  string: a counter that makes each start's member in a rate log unique
] as const;

export type KeyRole = (typeof KEY_ROLES)[number];

/** The keys of queue `name` under `prefix`, in KEY_ROLES order; all share the hash tag `{name}`. */
export function queueKeys(prefix: string, name: string): string[] {
  return KEY_ROLES.map((role) => `${prefix}:{${name}}:${role}`);
}

export function keyOf(keys: readonly string[], role: KeyRole): string {
  return keys[KEY_ROLES.indexOf(role)]!;
}

/**
 * The log of rate key `key` in queue `name`: under the queue's hash tag, and apart from every fixed
 * role (those have no colon after the tag).
 */
export function rateLogKey(prefix: string, name: string, key: string): string {
  return `${prefix}:{${name}}:rate:${key}`;
}

/** Expired leases moved back per read; the rest follow on the next reads (bounds a script's run time). */
const REQUEUE_PER_READ = 1000;

/** Expired result records each setResults call (or ack with results) purges: well above what one call adds, so the store shrinks. */
export const RESULTS_PURGED_PER_SET = 200;

/**
 * The member that keeps `leases` a skiplist and `owner` and `attempt` hash
 * tables (lua/prelude.lua, anchor_batch_keys): longer than the listpack
 * limits' 64-byte default, and unlike any id. Each of the three keys holds it
 * from a queue's first read on; flush() takes it away with the rest.
 */
export const KEY_ANCHOR = 'taskmill:anchor: keeps this key out of the listpack encoding (prelude.lua)';

/** What a `{{NAME}}` placeholder in a script file stands for: a number, or a string (a quoted Lua literal). */
const PLACEHOLDERS: Readonly<Record<string, number | string>> = {
  REQUEUE_PER_READ,
  KEY_ROLE_COUNT: KEY_ROLES.length,
  RESULTS_PURGED_PER_SET,
  KEY_ANCHOR,
};

/** Job control, queue events and the consumer registry (control.ts): each takes its own keys after the fixed ones. */
const CONTROL_SCRIPT_NAMES = ['tmMark', 'tmControl', 'tmListen', 'tmPublish', 'tmReadEvents', 'tmHeartbeat', 'tmConsumers', 'tmThroughput'] as const;

/** The scripts, each in `lua/<name>.lua`, which begins with its ARGV and its reply; the names are the ioredis commands `defineCommand` adds. */
const SCRIPT_NAMES = [
  'tmWrite',
  'tmWriteUnique',
  'tmWriteOnce',
  'tmRead',
  'tmAck',
  'tmRelease',
  'tmExtend',
  'tmFail',
  'tmReclaim',
  'tmFailed',
  'tmRequeueFailed',
  'tmPurgeFailed',
  'tmStats',
  'tmRetry',
  'tmPromote',
  'tmRemove',
  'tmSetResults',
  'tmGetResult',
  'tmAckGated',
  'tmAckRead',
  'tmStartGated',
  'tmFlush',
  'tmFindJob',
  ...CONTROL_SCRIPT_NAMES,
] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

/**
 * Scripts that take keys beyond the queue's fixed ones (rate logs, after the KEY_ROLES keys): their
 * callers pass the key count first, as EVALSHA does.
 */
export const EXTRA_KEY_SCRIPTS: ReadonlySet<ScriptName> = new Set<ScriptName>(['tmStartGated', 'tmFlush', ...CONTROL_SCRIPT_NAMES]);

/**
 * Job control and queue events (control.ts): keys of their own, passed to their scripts after the
 * fixed roles, since no per-job script needs them.
 */
export function controlKeys(prefix: string, name: string) {
  const key = (role: string) => `${prefix}:{${name}}:${role}`;
  return {
    cancels: key('cancels'), //    hash message id → the job id of its cancel mark
    listeners: key('listeners'), // zset listener id → when its registration lapses (server ms)
    evseq: key('evseq'), //        string: the events log's last sequence number
    events: key('events'), //      stream: the events log, entry ids "<seq>-1"
    consumers: key('consumers'), // hash consumer id → its last state (JSON text)
    consumerSeen: key('consumerseen'), // zset consumer id → when its last heartbeat landed (server ms)
    throughput: key('throughput'), // hash "<minute>:c" / "<minute>:f" → jobs completed / failed in that minute
    throughputMinutes: key('throughputminutes'), // zset minute → minute (ms since the epoch): what to trim
  };
}

/**
 * `lua/<file>.lua`, found beside this module: src/ under tsx and vitest,
 * dist/ once built (the build copies the .lua files there).
 */
function readLua(file: string): string {
  return readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8');
}

/** Fills the `{{NAME}}` placeholders of a script file; an unknown name is a bug, so it throws. */
function fillPlaceholders(file: string, lua: string): string {
  return lua.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = PLACEHOLDERS[name];
    if (value === undefined) throw new Error(`lua/${file}.lua: unknown placeholder {{${name}}}`);
    if (typeof value === 'number') return String(value);
    if (/['\\\n]/.test(value)) throw new Error(`placeholder {{${name}}} cannot be a plain Lua string literal`);
    return `'${value}'`;
  });
}

const PRELUDE = fillPlaceholders('prelude', readLua('prelude'));

/**
 * Script name → full Lua source (the prelude, then the script), for ioredis
 * `defineCommand` (EVALSHA, EVAL on NOSCRIPT). Read once, when this module loads.
 */
export const SCRIPTS: Record<ScriptName, string> = Object.fromEntries(
  SCRIPT_NAMES.map((name) => [name, `${PRELUDE}\n${fillPlaceholders(name, readLua(name))}`]),
) as Record<ScriptName, string>;

export const SCRIPT_KEY_COUNT = KEY_ROLES.length;

/**
 * Adds every script to `client` as a command (EVALSHA, EVAL on NOSCRIPT). A script of
 * EXTRA_KEY_SCRIPTS gets no fixed key count: its caller passes the count first.
 */
export function defineScripts(client: RedisClient): void {
  for (const name of SCRIPT_NAMES) {
    const lua = SCRIPTS[name];
    client.defineCommand(name, EXTRA_KEY_SCRIPTS.has(name) ? { lua } : { numberOfKeys: SCRIPT_KEY_COUNT, lua });
  }
}

/** Due messages one promoteDue script call moves (bounds its run time); promoteDue calls again while a call fills it. */
export const PROMOTE_PER_CALL = 1000;

/** Rate logs one flush script call deletes (bounds its KEYS); flush calls again while some remain. */
export const FLUSH_LOGS_PER_CALL = 1000;
