/**
 * Names derived from a namespace (no imports: every adapter loads this, and a
 * consumer child must load only its own system's libraries).
 */

/** A PostgreSQL schema name for a namespace: lower case, a fixed prefix per system. */
export function schemaName(system: string, namespace: string): string {
  return `${system}_${namespace}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unexpected identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Milliseconds on the monotonic clock (CLOCK_MONOTONIC on Linux): the same clock in every process of this machine. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
