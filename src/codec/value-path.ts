/**
 * Paths into a value, for error messages that name where the problem is
 * (`args[1].b`, `args[0]["a key"]`, `args[0]<map value "k">`, `args[0]<set member #1>`).
 * Shared by the tagged-JSON encoder (SerializationError) and decoder (MessageDecodeError).
 */

/** A path segment: array index, object key, or a Map/Set position. */
export type Segment = number | string | { kind: 'mapKey' | 'mapValue' | 'set'; index: number; key?: unknown } | { kind: 'symbol'; description: string };

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function describeMapKey(key: unknown, index: number): string {
  switch (typeof key) {
    case 'string':
      return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);
    case 'number':
    case 'boolean':
      return String(key);
    case 'bigint':
      return `${key}n`;
    default:
      return key === null ? 'null' : `#${index}`;
  }
}

/**
 * Encode paths name keys exactly (the caller's own data, needed to find the
 * culprit); decode paths must not quote payload content, so they show only
 * identifier-like keys and never Map keys.
 */
export function renderPath(root: string, stack: readonly Segment[], forDecode: boolean): string {
  let out = root;
  for (let i = 0; i < stack.length; i++) {
    // A path hundreds of levels deep helps nobody: keep its two ends.
    if (stack.length > 24 && i === 12) {
      out += '…';
      i = stack.length - 12;
    }
    const seg = stack[i]!;
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string') {
      if (IDENTIFIER.test(seg) && (!forDecode || seg.length <= 64)) out += `.${seg}`;
      else out += forDecode ? '[…]' : `[${JSON.stringify(seg)}]`;
    } else if (seg.kind === 'symbol') out += `[${seg.description}]`;
    else if (seg.kind === 'set') out += `<set member #${seg.index}>`;
    else if (forDecode) out += `<map entry #${seg.index} ${seg.kind === 'mapKey' ? 'key' : 'value'}>`;
    else if (seg.kind === 'mapKey') out += `<map key #${seg.index}>`;
    else out += `<map value ${describeMapKey(seg.key, seg.index)}>`;
  }
  return out;
}
