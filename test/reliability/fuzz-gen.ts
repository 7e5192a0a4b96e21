/**
 * Seeded generators of hostile queue messages for the decoder fuzz test
 * (fuzz.test.ts): random bytes turned into strings (invalid UTF-8 decoded with
 * replacement characters, Latin-1, raw UTF-16 code units with NUL and lone
 * surrogates), random JSON values (deep nesting included), envelopes with
 * random field types, and valid envelopes cut short or with a byte flipped.
 * The same seed gives the same messages.
 */

/** mulberry32: small, fast, and good enough to spread test inputs. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (items) => items[int(items.length)]!, chance: (p) => next() < p };
}

export interface Random {
  /** In [0, 1). */
  next(): number;
  /** In [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** A length that is usually short, sometimes long. */
function length(rng: Random, short = 24, long = 4000): number {
  return rng.chance(0.9) ? rng.int(short + 1) : rng.int(long + 1);
}

/** Code units that break naive handling, mixed into random text. */
const NASTY_UNITS = [0x0000, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xfffd, 0xfeff, 0x00ff, 0x0022, 0x005c, 0x007f, 0x2028];

export function randomString(rng: Random): string {
  const n = length(rng);
  const units: number[] = [];
  for (let i = 0; i < n; i++) {
    const kind = rng.int(4);
    units.push(kind === 0 ? rng.pick(NASTY_UNITS) : kind === 1 ? rng.int(0x10000) : 0x20 + rng.int(0x5f));
  }
  return String.fromCharCode(...units);
}

/** Random bytes as the text a producer could hand to queue.write(). */
export function randomBytesText(rng: Random): string {
  const bytes = Buffer.from(Array.from({ length: length(rng, 64, 20_000) }, () => rng.int(256)));
  switch (rng.int(3)) {
    case 0:
      return bytes.toString('utf8'); // invalid sequences become U+FFFD
    case 1:
      return bytes.toString('latin1');
    default:
      return bytes.length % 2 === 0 ? bytes.toString('utf16le') : randomString(rng); // raw code units: lone surrogates, NUL
  }
}

const KEYS = ['v', 'id', 'command', 'args', 'attempt', 'enqueuedAt', 'expiresAt', '$t', '__proto__', 'constructor', 'prototype', 'toString', ''];
const TAGS = ['undefined', 'Number', 'BigInt', 'Date', 'Map', 'Set', 'Uint8Array', 'Object', 'Function', 'Error', 'RegExp'];

export function randomNumber(rng: Random): number {
  return rng.pick([
    () => 0,
    () => -1,
    () => rng.int(10),
    () => rng.next() * 1e6 - 5e5,
    () => Number.MAX_SAFE_INTEGER + rng.int(5),
    () => -Number.MAX_VALUE,
    () => 1e308 * 10, // Infinity: JSON.stringify writes null
    () => 2 ** 31,
    () => 1.5,
  ])();
}

/** Sets an own enumerable property, even "__proto__" (an assignment would set the prototype instead). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
}

/** Any JSON value; `depth` bounds the nesting of this (non-deep) generator. */
export function randomJson(rng: Random, depth = 0): unknown {
  const leaf = depth > 4 || rng.chance(0.45);
  if (leaf) {
    return rng.pick<() => unknown>([() => null, () => rng.chance(0.5), () => randomNumber(rng), () => randomString(rng)])();
  }
  switch (rng.int(3)) {
    case 0:
      return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth + 1));
    case 1: {
      const obj: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) {
        setOwn(obj, rng.chance(0.5) ? rng.pick(KEYS) : randomString(rng), randomJson(rng, depth + 1));
      }
      return obj;
    }
    default: {
      // A tag, well- or ill-formed.
      const tag: Record<string, unknown> = { $t: rng.chance(0.8) ? rng.pick(TAGS) : randomJson(rng, depth + 1) };
      if (rng.chance(0.85)) tag.v = randomJson(rng, depth + 1);
      if (rng.chance(0.1)) tag.extra = 1;
      return tag;
    }
  }
}

/** JSON text nested `levels` deep: arrays, objects or tags, optionally inside an envelope's args. */
export function deeplyNested(rng: Random, levels: number): string {
  const [open, close] = rng.pick([
    ['[', ']'],
    ['{"a":', '}'],
    ['{"$t":"Set","v":[', ']}'],
    ['[{"$t":"Object","v":{"k":', '}}]'],
  ] as const);
  return `${open.repeat(levels)}${rng.chance(0.5) ? '1' : '"x"'}${close.repeat(levels)}`;
}

/** Field values the envelope schema accepts but a backend might not store as keys (NUL, lone surrogates, 3000 characters). */
const ODD_BUT_VALID: Record<string, (rng: Random) => unknown> = {
  id: (rng) =>
    rng.pick([() => `${randomString(rng)}\u0000`, () => `\ud800${rng.int(1e9)}`, () => 'i'.repeat(3000) + rng.int(1e9), () => randomString(rng) || '\udfff'])(),
  attempt: (rng) => 1 + rng.int(2 ** 31),
  enqueuedAt: (rng) => rng.pick([-1, 0, 1.5, 8.64e15, -8.64e15 - 1, Number.MAX_VALUE]),
  expiresAt: (rng) => rng.pick([-1, 0, Date.now() - 1000, Date.now() + 86_400_000, Number.MAX_VALUE]),
};

/** A valid envelope for `command`, then 0-3 of its fields replaced by random values or removed. */
export function mutatedEnvelope(rng: Random, id: string, command: string): string {
  const fields: Record<string, unknown> = {
    v: 1,
    id,
    command,
    args: Array.from({ length: rng.int(4) }, () => randomJson(rng)),
    enqueuedAt: Date.now(),
    attempt: 1,
  };
  if (rng.chance(0.2)) fields.expiresAt = rng.pick([0, 1, Date.now() - 3_600_000, Date.now() + 86_400_000]);
  for (let n = rng.int(4); n > 0; n--) {
    const key = rng.pick(['v', 'id', 'command', 'args', 'enqueuedAt', 'attempt', 'expiresAt', '$t', '__proto__']);
    const choice = rng.int(6);
    if (choice === 0) delete fields[key];
    else if (choice === 5 && Object.hasOwn(ODD_BUT_VALID, key)) setOwn(fields, key, ODD_BUT_VALID[key]!(rng));
    else if (choice === 1) setOwn(fields, key, rng.pick([0, 2, -1, 1.5, '', '1', null, [], {}, 'no-such-command', true]));
    else setOwn(fields, key, randomJson(rng));
  }
  return JSON.stringify(fields);
}

/** A valid envelope's text, cut short or with one character replaced. */
export function damaged(rng: Random, text: string): string {
  const at = rng.int(text.length);
  return rng.chance(0.5) ? text.slice(0, at) : `${text.slice(0, at)}${String.fromCharCode(rng.int(0x10000))}${text.slice(at + 1)}`;
}

/**
 * Envelopes at the edges of what the schema accepts, in every run whatever the
 * seed: each once crashed a worker or blocked a consumer's acks (an id that
 * PostgreSQL cannot key a result by, an expiresAt no Date can hold).
 */
export function edgeEnvelopes(): string[] {
  const base = { v: 1, command: 'sink', args: [], enqueuedAt: Date.now(), attempt: 1 };
  return [
    { ...base, id: 'edge-nul\u0000id' },
    { ...base, id: 'edge-lone-\ud800' },
    { ...base, id: `edge-long-${'x'.repeat(3000)}` },
    { ...base, id: `edge-200-${'y'.repeat(191)}` },
    { ...base, id: 'edge-expired-before-any-date', expiresAt: -Number.MAX_VALUE },
    { ...base, id: 'edge-expires-after-any-date', expiresAt: Number.MAX_VALUE },
    { ...base, id: 'edge-expired-at-first-date', expiresAt: -8.64e15 },
    { ...base, id: 'edge-enqueued-never', enqueuedAt: -Number.MAX_VALUE },
    { ...base, id: 'edge-attempt-huge', attempt: 2 ** 53 - 1 },
    { ...base, id: 'edge-extra-fields', extra: { nested: [1] }, $t: 'Map' },
  ].map((fields) => JSON.stringify(fields));
}
