/**
 * `taskmill dashboard`: prints its URL with its token and serves the API
 * there; refuses a host beyond loopback without --allow-remote, and warns
 * when given it; exits 0 on SIGTERM.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteQueue } from '../../src/index.js';
import { tempDir, waitFor, type Spawned } from '../helpers/processes.js';
import { spawnTaskmill } from '../fixtures/cli-helpers.js';

const dir = tempDir('taskmill-cli-dashboard-');
const spawned: Spawned[] = [];
afterAll(() => spawned.forEach((c) => c.child.kill('SIGKILL')));

describe('taskmill dashboard', { timeout: 60_000 }, () => {
  it('prints a URL with its token, serves the API behind it, and exits 0 on SIGTERM', async () => {
    const db = path.join(dir, 'q.sqlite');
    const queue = new SqliteQueue(db);
    await queue.write('x');
    await queue.close();
    const child = spawnTaskmill(['dashboard', '-q', `sqlite:${db}`, '--port', '0'], { cwd: dir });
    spawned.push(child);
    const url = () => /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(child.stdout())?.[1];
    await waitFor('the URL', () => url() !== undefined || child.child.exitCode !== null, 30_000);
    const printed = new URL(url()!);
    const token = printed.searchParams.get('token')!;
    expect(token.length).toBeGreaterThanOrEqual(32);
    const api = await fetch(`${printed.origin}/api/queues`, { headers: { authorization: `Bearer ${token}` } });
    expect(await api.json()).toEqual([{ name: 'default', ready: 1, leased: 0, failed: 0, delayed: 0 }]);
    expect((await fetch(`${printed.origin}/api/queues`)).status).toBe(401);
    child.child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });

  it('refuses --host 0.0.0.0 without --allow-remote, naming the flag; with it, warns', async () => {
    const db = `sqlite:${path.join(dir, 'r.sqlite')}`;
    const refused = spawnTaskmill(['dashboard', '-q', db, '--port', '0', '--host', '0.0.0.0'], { cwd: dir });
    spawned.push(refused);
    expect(await refused.exited).toBe(1);
    expect(refused.stderr()).toMatch(/--host 0\.0\.0\.0 would expose the dashboard beyond this machine: add --allow-remote/);
    const allowed = spawnTaskmill(['dashboard', '-q', db, '--port', '0', '--host', '0.0.0.0', '--allow-remote'], { cwd: dir });
    spawned.push(allowed);
    await waitFor('the URL', () => allowed.stdout().includes('token=') || allowed.child.exitCode !== null, 30_000);
    expect(allowed.stderr()).toMatch(/the dashboard listens on 0\.0\.0\.0: anyone who can reach it and has the token/);
    allowed.child.kill('SIGTERM');
    expect(await allowed.exited).toBe(0);
  });
});
