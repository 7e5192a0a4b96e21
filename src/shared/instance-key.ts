/**
 * The key under which an install's ESM instance is published on globalThis,
 * for the CommonJS entry (index.cts) to find. Keyed by the entry's own URL so
 * two different installs of taskmill in one process never hand out each other.
 */
export function sharedInstanceKey(entryUrl: string): symbol {
  return Symbol.for(`taskmill:${new URL('./index.js', entryUrl).href}`);
}
