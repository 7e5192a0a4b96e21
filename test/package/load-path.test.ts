/**
 * What `import 'taskmill'` costs a consumer that uses none of the optional
 * parts: the Stately inspector's WebSocket relay (ws, node's HTTP stack),
 * Prometheus metrics (prom-client) and the drivers of the backends it does
 * not use load on first use, not with the index (their resident memory is
 * what docs/performance.md's peak RSS is about). Checked on the module
 * graph, in a fresh process, not by measuring memory.
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

async function load(...args: string[]): Promise<{ afterImport: Loaded; afterInspector: Loaded | null }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { timeout: 60_000 });
  return JSON.parse(stdout) as { afterImport: Loaded; afterInspector: Loaded | null };
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
    const { afterInspector } = await load('inspector');
    expect(afterInspector?.packages).toContain('ws');
    expect(afterInspector?.builtins).toContain('http');
  }, 60_000);
});
