/**
 * Which driver errors waiting cannot mend. Opening a queue retries transient
 * failures (refused, reset, DNS, a server still starting) until
 * `openTimeoutMs`; these it reports at once, since a wrong password or a
 * missing database will still be wrong in 30 seconds.
 */

/** SQLSTATEs of a PostgreSQL connect or first query that no retry fixes. */
const PERMANENT_SQLSTATES = new Set([
  '28000', // invalid_authorization_specification: no such role, pg_hba.conf refuses
  '28P01', // invalid_password
  '3D000', // invalid_catalog_name: no such database
  '42501', // insufficient_privilege: e.g. may not create taskmill's schema
]);

/** Messages pg throws without a code for a misconfigured connection. */
const PERMANENT_PG_MESSAGES = [/does not support SSL connections/i, /client password must be a string/i, /SASL/];

/** Replies of a Redis server to a client that is configured wrongly. */
const PERMANENT_REDIS_REPLIES = /^(?:NOAUTH|WRONGPASS|NOPERM)\b|^ERR (?:invalid password|invalid DB index|DB index is out of range)/;

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A TLS handshake or certificate failure (Node's and OpenSSL's codes). */
export function isTlsFailure(error: unknown): boolean {
  const code = codeOf(error);
  if (code === undefined) return false;
  return /^(?:ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_)/.test(code) || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN';
}

export function isPermanentPostgresError(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined && PERMANENT_SQLSTATES.has(code)) return true;
  const message = messageOf(error);
  return isTlsFailure(error) || PERMANENT_PG_MESSAGES.some((pattern) => pattern.test(message));
}

export function isPermanentRedisError(error: unknown): boolean {
  return isTlsFailure(error) || PERMANENT_REDIS_REPLIES.test(messageOf(error));
}

/** A file that cannot be a queue: no such directory, no permission, not a database. SQLITE_BUSY is transient. */
const PERMANENT_SQLITE_CODES = new Set(['SQLITE_CANTOPEN', 'SQLITE_NOTADB', 'SQLITE_PERM', 'SQLITE_READONLY', 'SQLITE_AUTH']);

export function isPermanentSqliteError(error: unknown): boolean {
  const code = codeOf(error);
  return (code !== undefined && PERMANENT_SQLITE_CODES.has(code)) || /directory does not exist/.test(messageOf(error));
}
