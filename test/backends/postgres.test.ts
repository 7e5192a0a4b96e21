import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DatabaseQueue, type DatabaseQueueOptions } from '../../src/backends/postgres.js';
import { hasPostgres, POSTGRES_URL } from '../helpers/services.js';
import { runContractSuite } from './contract.js';

/** A schema of its own per suite, so parallel files and suites never meet. */
function uniqueSchema(): string {
  return `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

function contractTarget(options: DatabaseQueueOptions) {
  const schema = uniqueSchema();
  return {
    create: (queueOptions: DatabaseQueueOptions) =>
      new DatabaseQueue(POSTGRES_URL, { ...options, ...queueOptions, schema, onWarning: () => {} }),
    cleanup: () => dropSchema(schema),
  };
}

describe.skipIf(!hasPostgres)('DatabaseQueue against the shared server', () => {
  runContractSuite('DatabaseQueue (listen on)', contractTarget({ listen: true }));
  runContractSuite('DatabaseQueue (listen off)', contractTarget({ listen: false }));
});
