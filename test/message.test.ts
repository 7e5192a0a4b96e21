import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../src/shared/config.js';
import { MessageDecodeError, PayloadTooLargeError, SerializationError } from '../src/shared/errors.js';
import { MAX_DEPTH, MESSAGE_VERSION, decodeMessage, deserializeValue, encodeMessage, serializeValue } from '../src/codec/message.js';

const roundTrip = (value: unknown): unknown => deserializeValue(serializeValue(value));
const viaMessage = (args: unknown[]): unknown[] => decodeMessage(encodeMessage('cmd', args).data).args;

function serializeError(args: unknown[]): SerializationError {
  try {
    encodeMessage('cmd', args);
  } catch (error) {
    expect(error).toBeInstanceOf(SerializationError);
    return error as SerializationError;
  }
  throw new Error('expected encodeMessage to refuse');
}

function decodeError(data: unknown): MessageDecodeError {
  try {
    decodeMessage(data as string);
  } catch (error) {
    expect(error).toBeInstanceOf(MessageDecodeError);
    expect((error as MessageDecodeError).code).toBe('ERR_TASKMILL_DECODE');
    return error as MessageDecodeError;
  }
  throw new Error('expected decodeMessage to refuse');
}

const ID_RULE = 'a non-empty string of at most 200 characters, without NUL or lone surrogates';

const envelopeText = (fields: Record<string, unknown>): string =>
  JSON.stringify({ v: 1, id: 'id-1', command: 'cmd', args: [], enqueuedAt: 1000, attempt: 1, ...fields });

describe('tagged values round-trip', () => {
  it.each([
    ['Date', new Date('2024-02-29T12:34:56.789Z')],
    ['far-future Date', new Date(8.64e15)],
    ['BigInt', -123456789012345678901234567890n],
    [
      'Map',
      new Map<unknown, unknown>([
        ['a', 1],
        [2, 'b'],
      ]),
    ],
    ['Set', new Set([1, 'two', 3n])],
    ['Uint8Array', new Uint8Array([0, 1, 254, 255])],
    ['empty Uint8Array', new Uint8Array(0)],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ])('%s', (_name, value) => {
    expect(roundTrip(value)).toStrictEqual(value);
    expect(viaMessage([value])).toStrictEqual([value]);
  });

  it('keeps NaN, -0 and undefined exactly', () => {
    expect(Number.isNaN(roundTrip(Number.NaN))).toBe(true);
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is(roundTrip(0), 0)).toBe(true);
    expect(roundTrip(undefined)).toBeUndefined();
    const args = viaMessage([undefined, -0, Number.NaN, undefined]);
    expect(args).toHaveLength(4);
    expect(args[0]).toBeUndefined();
    expect(Object.is(args[1], -0)).toBe(true);
    expect(Number.isNaN(args[2])).toBe(true);
  });

  it('keeps object properties whose value is undefined, and turns array holes into undefined', () => {
    const back = roundTrip({ a: undefined, b: 1 }) as Record<string, unknown>;
    expect(Object.keys(back)).toEqual(['a', 'b']);
    expect(back).toStrictEqual({ a: undefined, b: 1 });
    // eslint-disable-next-line no-sparse-arrays
    const holes = roundTrip([1, , 3]) as unknown[];
    expect(holes).toStrictEqual([1, undefined, 3]);
    expect(1 in holes).toBe(true);
  });

  it('keeps an invalid Date invalid', () => {
    const back = roundTrip(new Date(Number.NaN));
    expect(back).toBeInstanceOf(Date);
    expect(Number.isNaN((back as Date).getTime())).toBe(true);
  });

  it('accepts a Buffer and returns a plain Uint8Array holding only its own bytes', () => {
    const slice = Buffer.from('--hello--').subarray(2, 7);
    const back = roundTrip(slice) as Uint8Array;
    expect(Object.getPrototypeOf(back)).toBe(Uint8Array.prototype);
    expect(Buffer.isBuffer(back)).toBe(false);
    expect(Buffer.from(back).toString()).toBe('hello');
  });

  it('nests tagged types inside Maps, Sets, arrays and objects, with any value as a Map key or Set member', () => {
    const value = {
      when: new Date(0),
      lists: [new Set([new Date(1), [1n, undefined]]), new Map([[new Date(2), new Uint8Array([9])]])],
      byObjectKey: new Map<unknown, unknown>([
        // (a Map key -0 is normalised to 0 by Map itself, so -0 travels as a value here)
        [{ id: 1 }, new Set([new Map([[Number.NaN, -0]])])],
        [undefined, null],
        [10n, [Infinity, -Infinity]],
      ]),
      deep: { a: { b: { c: [new Map([['k', { d: undefined }]])] } } },
    };
    expect(roundTrip(value)).toStrictEqual(value);
    const back = roundTrip(value) as typeof value;
    const inner = [...back.byObjectKey.values()][0] as Set<Map<number, number>>;
    const [nan, negZero] = [...[...inner][0]!][0]!;
    expect(Object.is(negZero, -0)).toBe(true);
    expect(Number.isNaN(nan)).toBe(true);
  });

  it('duplicates shared (non-cyclic) references instead of refusing them', () => {
    const shared = { n: 1 };
    const back = roundTrip({ a: shared, b: [shared, shared], c: new Map([[shared, shared]]) }) as Record<string, unknown>;
    expect(back).toStrictEqual({ a: { n: 1 }, b: [{ n: 1 }, { n: 1 }], c: new Map([[{ n: 1 }, { n: 1 }]]) });
    expect(back.a).not.toBe((back.b as unknown[])[0]);
  });

  it('never mistakes user data for a tag', () => {
    const lookalikes = [
      { $t: 'Date', v: '2024-01-01T00:00:00.000Z' },
      { $t: 'undefined' },
      { $t: 'Object', v: { $t: 'Map', v: [] } },
      { $t: 42, nested: { $t: new Date(5) } },
      '"$t"',
      '{"$t":"Date","v":"2024-01-01T00:00:00.000Z"}',
      ['$t', { v: 1 }],
    ];
    expect(roundTrip(lookalikes)).toStrictEqual(lookalikes);
    expect(viaMessage(lookalikes)).toStrictEqual(lookalikes);
    // A user string holding the marker text, with no tag anywhere, still comes back as the string.
    expect(viaMessage(['"$t"', { s: '{"$t":"undefined"}' }])).toStrictEqual(['"$t"', { s: '{"$t":"undefined"}' }]);
  });

  it('round-trips \\u0000 and lone surrogates exactly, in values, keys and Map keys', () => {
    const odd = ['a\u0000b', '\uD800', 'x\uDC00y', '\uDFFF\uD800', '😀', '\u2028\u2029'];
    for (const text of odd) {
      const back = viaMessage([text, { [text]: text }, new Map([[text, text]])]);
      expect(back[0]).toBe(text);
      expect(Object.keys(back[1] as object)).toEqual([text]);
      expect((back[2] as Map<string, string>).get(text)).toBe(text);
      expect(roundTrip(text)).toBe(text);
    }
  });
});

describe('encodeMessage', () => {
  it('writes a versioned envelope whose decoded args deep-equal the originals', () => {
    const args = [
      1,
      'x',
      { when: new Date(1700000000000), big: 2n ** 70n, tags: new Set(['a']), index: new Map([['k', [1, 2]]]) },
      new Uint8Array([1, 2, 3]),
      undefined,
      -0,
      Number.NaN,
      null,
      true,
    ];
    const { id, data } = encodeMessage('churn', args, { id: 'job-7', now: 1234, attempt: 3 });
    expect(id).toBe('job-7');
    const envelope = decodeMessage(data);
    expect(envelope).toStrictEqual({ v: MESSAGE_VERSION, id: 'job-7', command: 'churn', args, enqueuedAt: 1234, attempt: 3 });
    expect(Object.is(envelope.args[5], -0)).toBe(true);
  });

  it('defaults id to a fresh UUID, enqueuedAt to now and attempt to 1', () => {
    const before = Date.now();
    const first = encodeMessage('cmd', []);
    const second = encodeMessage('cmd', []);
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first.id).not.toBe(second.id);
    const envelope = decodeMessage(first.data);
    expect(envelope.id).toBe(first.id);
    expect(envelope.attempt).toBe(1);
    expect(envelope.enqueuedAt).toBeGreaterThanOrEqual(before);
    expect(envelope.enqueuedAt).toBeLessThanOrEqual(Date.now());
  });

  it('checks the command name', () => {
    for (const bad of ['', 'x'.repeat(201), 42, undefined, null]) {
      expect(() => encodeMessage(bad as string, [])).toThrow(TypeError);
      expect(() => encodeMessage(bad as string, [])).toThrow(/command name must be a non-empty string of at most 200 characters/);
    }
    expect(decodeMessage(encodeMessage('y'.repeat(200), []).data).command).toBe('y'.repeat(200));
  });

  it('checks its options', () => {
    expect(() => encodeMessage('cmd', [], { id: '' })).toThrow(/message id/);
    for (const id of ['a\u0000b', '\udfff', 'i'.repeat(201)]) expect(() => encodeMessage('cmd', [], { id })).toThrow(/message id/);
    expect(encodeMessage('cmd', [], { id: 'i'.repeat(200) }).id).toHaveLength(200);
    expect(() => encodeMessage('cmd', [], { attempt: 0 })).toThrow(/attempt/);
    expect(() => encodeMessage('cmd', [], { attempt: 1.5 })).toThrow(/attempt/);
    expect(() => encodeMessage('cmd', [], { now: Number.NaN })).toThrow(/now/);
    expect(() => encodeMessage('cmd', [], { maxBytes: 0 })).toThrow(/maxBytes/);
    // A Date holds ±8.64e15 ms; beyond that there is no time to expire at.
    expect(() => encodeMessage('cmd', [], { expiresAt: 8.64e15 + 1 })).toThrow(/expiresAt/);
    expect(() => encodeMessage('cmd', [], { expiresAt: -Number.MAX_VALUE })).toThrow(/expiresAt/);
    expect(encodeMessage('cmd', [], { expiresAt: -8.64e15 }).data).toContain('"expiresAt":-8640000000000000');
    expect(() => encodeMessage('cmd', 'nope' as unknown as unknown[])).toThrow(/must be an array/);
  });
});

describe('refusals name the argument path', () => {
  class Foo {
    x = 1;
  }
  const cases: [string, unknown[], string, RegExp][] = [
    ['a function', [1, { b: function named() {} }], 'args[1].b', /function named is not serializable/],
    ['an arrow function in an array', [[0, 1, () => 1]], 'args[0][2]', /function is not serializable/],
    ['a symbol value', [{ 'a key': Symbol('s') }], 'args[0]["a key"]', /symbol is not serializable/],
    ['a symbol-keyed property', [{ ok: 1, [Symbol('tag')]: 2 }], 'args[0][Symbol(tag)]', /symbol-keyed properties/],
    ['a class instance', [new Foo()], 'args[0]', /instance of class Foo is not serializable/],
    ['an anonymous class instance', [{ a: new (class {})() }], 'args[0].a', /instance of an anonymous class/],
    ['a Map value', [new Map([['k', () => 0]])], 'args[0]<map value "k">', /function/],
    ['a Map value under a number key', [new Map([[7, Symbol()]])], 'args[0]<map value 7>', /symbol/],
    ['a Map value under an object key', [new Map([[{}, new Foo()]])], 'args[0]<map value #0>', /class Foo/],
    [
      'a Map key',
      [
        new Map<unknown, number>([
          ['ok', 1],
          [new Foo(), 2],
        ]),
      ],
      'args[0]<map key #1>',
      /class Foo/,
    ],
    ['a Set member', [new Set([1, new WeakSet()])], 'args[0]<set member #1>', /a WeakSet is not serializable/],
    ['a WeakMap', [{ w: new WeakMap() }], 'args[0].w', /a WeakMap is not serializable/],
    ['a Promise', [Promise.resolve(1)], 'args[0]', /a Promise is not serializable/],
    ['an Error', [{ e: new TypeError('boom') }], 'args[0].e', /Error instance \(class TypeError\)/],
    ['a RegExp', [/x/], 'args[0]', /instance of class RegExp/],
    ['another typed array', [new Float32Array(1)], 'args[0]', /instance of class Float32Array/],
    ['an Array subclass', [new (class List extends Array {})()], 'args[0]', /instance of class List/],
    ['a Map subclass', [new (class Registry extends Map {})()], 'args[0]', /instance of class Registry/],
    ['a boxed string', [new String('s')], 'args[0]', /instance of class String/],
  ];
  it.each(cases)('%s', (_name, args, path, reason) => {
    const error = serializeError(args);
    expect(error.path).toBe(path);
    expect(error.code).toBe('ERR_TASKMILL_SERIALIZE');
    expect(error.message).toMatch(reason);
    expect(error.message.startsWith(`cannot serialize ${path}: `)).toBe(true);
  });

  it('names where a cycle closes and what it points back to', () => {
    const self: Record<string, unknown> = {};
    self.self = self;
    let error = serializeError([0, self]);
    expect(error.path).toBe('args[1].self');
    expect(error.message).toMatch(/circular reference back to args\[1\]$/);

    const root: { items: unknown[] } = { items: [] };
    root.items.push({ parent: root });
    error = serializeError([root]);
    expect(error.path).toBe('args[0].items[0].parent');

    const map = new Map<string, unknown>();
    map.set('me', [map]);
    error = serializeError([map]);
    expect(error.path).toBe('args[0]<map value "me">[0]');

    const list: unknown[] = [];
    list.push(new Set([list]));
    error = serializeError([list]);
    expect(error.path).toBe('args[0][0]<set member #0>');
  });

  it('refuses nesting deeper than MAX_DEPTH with a shortened path', () => {
    const nested: unknown[] = [];
    let cursor = nested;
    for (let i = 0; i < MAX_DEPTH + 5; i++) {
      const next: unknown[] = [];
      cursor.push(next);
      cursor = next;
    }
    const error = serializeError([nested]);
    expect(error.message).toMatch(/nested deeper than 1000 levels/);
    expect(error.path.length).toBeLessThan(100);
  });

  it('serializeValue names its own root', () => {
    expect(() => serializeValue({ f: () => 1 })).toThrow(/cannot serialize value\.f/);
    expect(() => serializeValue([Symbol()], 'result')).toThrow(/cannot serialize result\[0\]/);
  });
});

describe('payload limit', () => {
  const fixed = { id: 'fixed-id', now: 1 };
  const sizeOf = (args: unknown[]): number => Buffer.byteLength(encodeMessage('cmd', args, fixed).data);

  it('accepts a message exactly at the limit and refuses one byte over, counting UTF-8 bytes', () => {
    for (const text of ['abc', 'é€😀', '\uD800x']) {
      const bytes = sizeOf([text]);
      expect(() => encodeMessage('cmd', [text], { ...fixed, maxBytes: bytes })).not.toThrow();
      let error: unknown;
      try {
        encodeMessage('cmd', [text], { ...fixed, maxBytes: bytes - 1 });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect((error as PayloadTooLargeError).bytes).toBe(bytes);
      expect((error as PayloadTooLargeError).limit).toBe(bytes - 1);
      expect((error as Error).message).not.toContain(text);
    }
    // Multi-byte characters count as bytes, not as string length.
    expect(sizeOf(['€€€€']) - sizeOf(['aaaa'])).toBe(8);
  });

  it('refuses 2 MiB by default and lets it through when the limit is raised', () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    expect(() => encodeMessage('cmd', [big])).toThrow(PayloadTooLargeError);
    expect(() => encodeMessage('cmd', [big])).toThrow(new RegExp(`over the ${DEFAULT_MAX_PAYLOAD_BYTES}-byte limit`));
    const { data } = encodeMessage('cmd', [big], { maxBytes: 3 * 1024 * 1024 });
    expect(decodeMessage(data).args[0]).toBe(big);
  });
});

describe('decodeMessage refuses bad input without quoting it', () => {
  const secret = 'hunter2-secret';

  it('non-string input', () => {
    for (const input of [undefined, null, 42, Buffer.from('{}'), {}]) {
      expect(decodeError(input).message).toMatch(/message is not a string/);
    }
  });

  it('not JSON', () => {
    const error = decodeError(`{"v":1,"args":["${secret}"`);
    expect(error.message).toBe('invalid message: message is not JSON');
  });

  it.each([
    ['[1,2]', /not a JSON object \(got an array\)/],
    ['"text"', /not a JSON object \(got string\)/],
    ['null', /not a JSON object \(got null\)/],
    ['12', /not a JSON object \(got number\)/],
  ])('JSON that is not an object: %s', (text, reason) => {
    expect(decodeError(text).message).toMatch(reason);
  });

  it.each(['v', 'id', 'command', 'args', 'enqueuedAt', 'attempt'])('missing field %s', (field) => {
    const fields = JSON.parse(envelopeText({ args: [secret] })) as Record<string, unknown>;
    delete fields[field];
    expect(decodeError(JSON.stringify(fields)).message).toBe(`invalid message: missing field ${field}`);
  });

  it.each([
    ['v', 1.5, 'an integer'],
    ['v', '1', 'an integer'],
    ['id', '', ID_RULE],
    ['id', 7, ID_RULE],
    // A job id keys its result; PostgreSQL could not store these, and failing to used to block every ack.
    ['id', 'a\u0000b', ID_RULE],
    ['id', 'x\ud800', ID_RULE],
    ['id', 'i'.repeat(201), ID_RULE],
    ['command', '', 'a non-empty string'],
    ['command', [secret], 'a non-empty string'],
    ['args', { 0: secret }, 'an array'],
    ['args', secret, 'an array'],
    ['enqueuedAt', '2024', 'a finite number'],
    ['attempt', 0, 'a positive integer'],
    ['attempt', 2.5, 'a positive integer'],
    ['attempt', null, 'a positive integer'],
    // A past expiresAt no Date can hold used to crash the worker logging the skip (new Date(x).toISOString()).
    ['expiresAt', -Number.MAX_VALUE, 'a time a Date can hold (ms since the epoch, within ±8.64e15)'],
    ['expiresAt', 8.64e15 + 1, 'a time a Date can hold (ms since the epoch, within ±8.64e15)'],
    ['expiresAt', '2024', 'a time a Date can hold (ms since the epoch, within ±8.64e15)'],
  ])('wrong type: %s = %j', (field, value, expectation) => {
    const error = decodeError(envelopeText({ [field]: value, ...(field === 'args' ? {} : { args: [secret] }) }));
    expect(error.message).toBe(`invalid message: field ${field} must be ${expectation}`);
    expect(error.message).not.toContain(secret);
  });

  // The optional fields the hand-written check of a plain envelope passes on must still be refused.
  it.each([
    ['rateKey', ''],
    ['rateKey', 5],
    ['concurrencyKey', ''],
    ['trace', 't'.repeat(201)],
    ['trace', 7],
  ])('a bad optional field: %s = %j', (field, value) => {
    expect(decodeError(envelopeText({ [field]: value, args: [secret] })).message).toBe(
      `invalid message: field ${field} must be ${field === 'trace' ? 'a W3C traceparent string' : 'a non-empty string'}`,
    );
  });

  it('a plain envelope and one with a flow decode alike: every field kept, unknown ones too', () => {
    const fields = { expiresAt: 5000, rateKey: 'r', concurrencyKey: 'c', trace: '00-abc', extra: { x: 1 } };
    expect(decodeMessage(envelopeText({ ...fields, args: [1, 'a'] }))).toEqual({
      v: 1,
      id: 'id-1',
      command: 'cmd',
      args: [1, 'a'],
      enqueuedAt: 1000,
      attempt: 1,
      ...fields,
    });
    const flow = { next: [{ command: 'then', args: '[]', id: 'id-2' }] };
    expect(decodeMessage(envelopeText({ ...fields, args: [1, 'a'], flow }))).toEqual({
      v: 1,
      id: 'id-1',
      command: 'cmd',
      args: [1, 'a'],
      enqueuedAt: 1000,
      attempt: 1,
      ...fields,
      flow,
    });
  });

  it('an unsupported version, even when the rest is unrecognisable', () => {
    expect(decodeError(envelopeText({ v: 2 })).message).toBe('invalid message: unsupported message version 2');
    expect(decodeError(JSON.stringify({ v: 7, payload: secret })).message).toBe('invalid message: unsupported message version 7');
  });

  it.each([
    ['an unknown tag type', [{ $t: 'Function', v: 'return 1' }], 'args[0]', /unknown type/],
    ['a non-string tag', [[1, { $t: 5, v: 1 }]], 'args[0][1]', /unknown type/],
    ['a tag with extra fields', [{ a: { $t: 'Date', v: '2024-01-01T00:00:00.000Z', x: 1 } }], 'args[0].a', /exactly "\$t" and "v"/],
    ['an undefined tag with a value', [{ $t: 'undefined', v: 1 }], 'args[0]', /unexpected fields/],
    ['a bad BigInt', [{ $t: 'BigInt', v: '12abc' }], 'args[0]', /decimal integer/],
    ['a bad Date', [{ $t: 'Date', v: 'yesterday' }], 'args[0]', /ISO timestamp/],
    ['bad base64', [{ $t: 'Uint8Array', v: 'a$b=' }], 'args[0]', /base64/],
    ['a bad special number', [{ $t: 'Number', v: '1e999' }], 'args[0]', /special number/],
    ['a Map that is not pairs', [{ $t: 'Map', v: [[1, 2, 3]] }], 'args[0]', /not a \[key, value\] pair/],
    ['a bad tag inside a Map value', [{ $t: 'Map', v: [['k', { $t: 'Nope', v: 0 }]] }], 'args[0]<map entry #0 value>', /unknown type/],
    ['a bad tag inside a Set', [{ $t: 'Set', v: [1, { $t: 'BigInt' }] }], 'args[0]<set member #1>', /exactly/],
    ['an escape of a non-object', [{ $t: 'Object', v: [1] }], 'args[0]', /escaped object/],
  ])('a bad tag: %s', (_name, args, path, reason) => {
    const error = decodeError(envelopeText({ args: [...args, secret] }));
    expect(error.message.startsWith(`invalid message: bad tag in ${path}: `)).toBe(true);
    expect(error.message).toMatch(reason);
    expect(error.message).not.toContain(secret);
  });

  it('never quotes payload keys or Map keys in a path', () => {
    const error = decodeError(envelopeText({ args: [{ [`${secret} key`]: { $t: 'Nope', v: 1 } }] }));
    expect(error.message).toBe('invalid message: bad tag in args[0][…]: unknown type');
    const mapError = decodeError(envelopeText({ args: [{ $t: 'Map', v: [[secret, { $t: 'Nope', v: 1 }]] }] }));
    expect(mapError.message).not.toContain(secret);
  });

  it('refuses args nested deeper than MAX_DEPTH once tags are present', () => {
    const deep = `${'['.repeat(MAX_DEPTH + 10)}${']'.repeat(MAX_DEPTH + 10)}`;
    const data = `{"v":1,"id":"a","command":"c","args":[{"$t":"undefined"},${deep}],"enqueuedAt":1,"attempt":1}`;
    expect(decodeError(data).message).toMatch(/nested deeper than 1000 levels/);
  });
});

describe('decodeMessage accepts', () => {
  it('extra unknown fields (forward compatibility)', () => {
    const envelope = decodeMessage(envelopeText({ args: [1], priority: 5, meta: { a: 1 } }));
    expect(envelope.args).toEqual([1]);
    expect((envelope as unknown as Record<string, unknown>).priority).toBe(5);
  });

  it('a tag spelled with JSON escapes, the same as the literal tag', () => {
    const data = envelopeText({ args: [] }).replace('"args":[]', '"args":[{"\\u0024t":"Date","v":"2024-01-01T00:00:00.000Z"}]');
    expect(decodeMessage(data).args).toStrictEqual([new Date('2024-01-01T00:00:00.000Z')]);
  });

  it('tags inside object and array args, while text that only spells a tag in a string arg stays text', () => {
    const when = new Date('2024-01-01T00:00:00.000Z');
    const tagged = decodeMessage(encodeMessage('cmd', ['{"$t":"Date"}', [when], { at: when, n: 10n }]).data);
    expect(tagged.args).toStrictEqual(['{"$t":"Date"}', [when], { at: when, n: 10n }]);
    // Primitive args only: nothing is revived, whatever the text holds.
    const plain = envelopeText({ args: ['{"$t":"Date","v":"2024-01-01T00:00:00.000Z"}', 1, null, true] });
    expect(decodeMessage(plain).args).toStrictEqual(['{"$t":"Date","v":"2024-01-01T00:00:00.000Z"}', 1, null, true]);
  });

  it('deserializeValue refuses bad text with MessageDecodeError', () => {
    expect(() => deserializeValue('{')).toThrow(MessageDecodeError);
    expect(() => deserializeValue('{"$t":"Nope"}')).toThrow(/bad tag in value: unknown type/);
  });
});

describe('prototype pollution', () => {
  const payloads = [
    // the fast path (no tag anywhere) and the revive walk (a tag elsewhere in the message)
    '[{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"prototype":{"polluted":3}}]',
    '[{"$t":"undefined"},{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"prototype":{"polluted":3}}]',
    '[{"$t":"Object","v":{"$t":1,"__proto__":{"$t":"Date","v":"2024-01-01T00:00:00.000Z"},"constructor":{"prototype":{"$t":"undefined"}}}}]',
    '[{"$t":"Map","v":[["__proto__",{"__proto__":{"$t":"BigInt","v":"1"}}]]}]',
  ];

  it.each(payloads)('keeps __proto__/constructor/prototype as own data and Object.prototype clean: %s', (args) => {
    const envelope = decodeMessage(envelopeText({ args: [] }).replace('"args":[]', `"args":${args}`));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    for (const arg of envelope.args) {
      if (typeof arg !== 'object' || arg === null || arg instanceof Map) continue;
      expect(Object.getPrototypeOf(arg)).toBe(Object.prototype);
      expect(Object.hasOwn(arg, '__proto__')).toBe(true);
      expect(Object.getOwnPropertyDescriptor(arg, '__proto__')).toMatchObject({ enumerable: true, writable: true });
      expect((arg as { polluted?: unknown }).polluted).toBeUndefined();
    }
  });

  it('revives a tag under a __proto__ key into an own property', () => {
    const [arg] = decodeMessage(envelopeText({ args: [] }).replace('"args":[]', `"args":${payloads[2]}`)).args as [Record<string, unknown>];
    expect(Object.getPrototypeOf(arg)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(arg, '__proto__')?.value).toStrictEqual(new Date('2024-01-01T00:00:00.000Z'));
    expect(arg.$t).toBe(1);
    expect(Object.hasOwn(arg.constructor as object, 'prototype')).toBe(true);
    const [map] = decodeMessage(envelopeText({ args: [] }).replace('"args":[]', `"args":${payloads[3]}`)).args as [Map<string, object>];
    expect(Object.getOwnPropertyDescriptor(map.get('__proto__'), '__proto__')?.value).toBe(1n);
  });

  it('encodes an own __proto__ key and brings it back as an own key', () => {
    const value = JSON.parse('{"__proto__":{"x":1},"constructor":2}') as object;
    const back = roundTrip(value) as object;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual({ x: 1 });
    expect(Object.getOwnPropertyDescriptor(back, 'constructor')?.value).toBe(2);
  });
});
