/**
 * What `import 'taskmill'` costs a consumer that uses none of the optional
 * parts: the Stately inspector's WebSocket relay (ws, node's HTTP stack),
 * Prometheus metrics (prom-client) and the drivers of the backends it does
 * not use load on first use, neither with the index nor with a running
 * consumer (their resident memory is part of docs/performance.md's peak
 * RSS). Checked on the module graph, in a fresh process, not by measuring
 * memory.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'load-path.ts');

interface Loaded {
  packages: string[];
  builtins: string[];
}

async function load(...args: string[]): Promise<{ afterImport: Loaded; afterUse: Loaded | null }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { timeout: 60_000 });
  return JSON.parse(stdout) as { afterImport: Loaded; afterUse: Loaded | null };
}

const ON_FIRST_USE = ['ws', 'prom-client', 'pg', 'ioredis', 'better-sqlite3', '@opentelemetry/api'];
const HTTP_STACK = ['http', 'https', 'tls', 'zlib'];

describe('the load path of the index', () => {
  it('leaves the inspector relay, metrics and every driver unloaded', async () => {
    const { afterImport } = await load();
    expect(afterImport.packages).toContain('pino'); // the check sees CommonJS packages at all
    expect(afterImport.packages.filter((name) => ON_FIRST_USE.includes(name))).toEqual([]);
    expect(afterImport.builtins.filter((name) => HTTP_STACK.includes(name))).toEqual([]);
  }, 60_000);

  it('loads ws and node:http once an inspector starts', async () => {
    const { afterUse } = await load('inspector');
    expect(afterUse?.packages).toContain('ws');
    expect(afterUse?.builtins).toContain('http');
  }, 60_000);

  it('leaves them unloaded in a memory-backend consumer that has run a job', async () => {
    const { afterUse } = await load('consumer');
    expect(afterUse?.packages).toContain('xstate');
    // @opentelemetry/api is the exception by design: a run asks it (when installed) whether a tracer provider is registered.
    expect(afterUse?.packages.filter((name) => ON_FIRST_USE.includes(name) && name !== '@opentelemetry/api')).toEqual([]);
    expect(afterUse?.builtins.filter((name) => HTTP_STACK.includes(name))).toEqual([]);
  }, 60_000);
});
