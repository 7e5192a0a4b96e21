/**
 * The dashboard page in a real headless Chromium (Debian's, driven by
 * playwright-core): it shows the queue with the throughput history the
 * backend held before the page opened, the live consumer and its workers,
 * the four machines with their live states, and the failed job, whose page
 * shows its arguments with the secret redacted (and a delayed job's, by its
 * id); clicking retry makes the job run again and leaves the
 * failed list; the token leaves the address bar; no request goes anywhere
 * but the dashboard's own server. With TASKMILL_SCREENSHOTS=1 it also
 * refreshes docs/dashboard.png.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createConsumer, createDashboard, MemoryQueue, queueCommand, registry } from '../../src/index.js';
import { ROOT } from '../helpers/processes.js';
import { uniqueName } from '../helpers/services.js';

const CHROMIUM = process.env.TASKMILL_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  const message = `Chromium is not at ${CHROMIUM}`;
  if (process.env.CI) throw new Error(`${message} — under CI a missing browser is a failure, not a skip (.ci/run installs it)`);
  console.warn(`\n!!! SKIPPING the dashboard's browser test: ${message}. apt-get install chromium to run it. !!!\n`);
}
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let browser: Browser | undefined;
let server: Server | undefined;
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
});

describe('the dashboard page in headless Chromium', () => {
  it.skipIf(!hasChromium)('shows queue, consumer and failed job; retry runs the job again; nothing leaves localhost', { timeout: 60_000 }, async () => {
    const queue = new MemoryQueue(uniqueName('page'), { name: 'web' });
    let attempts = 0;
    const flaky = queueCommand({ name: uniqueName('thumbnail'), queue, retries: 0 }, (_image: { path: string; token: string }) => {
      if (attempts++ === 0) throw new Error('image server said 503');
    });
    const consumer = createConsumer({ queue, workers: 2, periodic: false, logger: pino({ level: 'silent' }), pollDelayMs: 10, maxPollDelayMs: 20 });
    try {
      // The last 45 minutes, as an earlier consumer's heartbeats left them in the backend before the page opened.
      const now = Date.now();
      const minute = now - (now % 60_000);
      const earlier = Array.from({ length: 45 }, (_, i) => ({
        queue: 'web',
        minute: minute - (45 - i) * 60_000,
        completed: Math.round(40 + 30 * Math.sin(i / 5)),
        failed: i % 9 === 0 ? 3 : 0,
      }));
      await queue.heartbeat('an-earlier-consumer', '{}', earlier);
      await queue.forgetConsumer('an-earlier-consumer');
      const earlierDone = earlier.reduce((n, c) => n + c.completed, 0);
      const job = await flaky({ path: 'cat.png', token: 's3cret-token' });
      await consumer.start();
      await expect(job.result({ timeout: 10_000 })).rejects.toThrow(/503/);
      const dashboard = createDashboard({ queue });
      server = createServer(dashboard.handler);
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

      browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      const problems: string[] = [];
      page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
      page.on('pageerror', (error) => problems.push(error.message));
      await page.goto(`${origin}/?token=${dashboard.token}`);

      await page.locator('#queues tbody tr').filter({ hasText: 'web' }).waitFor();
      expect(new URL(page.url()).search).toBe(''); // the token left the address bar
      // Throughput over time: the history the backend held before the page opened.
      const spark = page.locator('#queues svg.spark');
      await spark.waitFor({ state: 'attached' });
      expect(Number(await spark.getAttribute('data-completed'))).toBeGreaterThanOrEqual(earlierDone);
      expect(await spark.locator(`g[data-minute="${earlier[0]!.minute}"] rect`).count()).toBeGreaterThan(0);
      await page.locator('#consumers tbody tr').filter({ hasText: 'running' }).waitFor();
      // Two idle workers, one per slot; the slot whose command failed may show its replacement (`worker-2-r1`),
      // depending on whether a heartbeat was written after the failure.
      const states = await page.locator('#consumers .state').allTextContents();
      expect(states).toHaveLength(2);
      expect(states[0]).toMatch(/^worker-1(-r1)?: idle$/);
      expect(states[1]).toMatch(/^worker-2(-r1)?: idle$/);
      // The machines, drawn from their definitions, each live actor's state marked.
      const worker = page.locator('svg[data-machine="worker"]');
      await worker.waitFor();
      expect(await worker.locator('[data-state="idle"]').getAttribute('data-live')).toBe('2');
      expect(await worker.locator('[data-state="busy"]').getAttribute('data-live')).toBe('0');
      expect(await page.locator('svg[data-machine="supervisor"] [data-state="running"]').getAttribute('data-live')).toBe('1');
      expect(await worker.locator('line.edge').count()).toBeGreaterThan(3);
      // The reader and the scheduler, each in one live state.
      for (const name of ['reader', 'scheduler']) {
        const machine = page.locator(`svg[data-machine="${name}"]`);
        await machine.waitFor();
        expect(await machine.locator('g.node.live').count(), name).toBe(1);
        expect(await machine.locator('g.node.live').getAttribute('data-live'), name).toBe('1');
      }
      const failedRow = page.locator('#failed tbody tr').filter({ hasText: 'image server said 503' });
      await failedRow.waitFor();
      expect(await failedRow.textContent()).toContain(flaky.commandName);
      // Its page, from the failed row: the arguments the failed store keeps, the token redacted.
      await failedRow.getByRole('button', { name: job.id }).click();
      await expect.poll(() => page.locator('#job').textContent(), { timeout: 10_000 }).toContain('cat.png');
      const shown = (await page.locator('#job').textContent())!;
      expect(shown).toContain('[redacted]');
      expect(shown).not.toContain('s3cret-token');
      // TASKMILL_SCREENSHOTS=1 refreshes the picture in docs/ (not on every run: it would dirty the tree).
      if (process.env.TASKMILL_SCREENSHOTS) await page.screenshot({ path: path.join(ROOT, 'docs', 'dashboard.png'), fullPage: true });

      // A delayed job, by its id in the form: its arguments from the message the backend holds.
      const later = await flaky.schedule({ delay: 3_600_000 }, { path: 'dog.png', token: 's3cret-token' });
      await page.locator('#job-id').fill(later.id);
      await page.getByRole('button', { name: 'show' }).click();
      await expect.poll(() => page.locator('#job').textContent(), { timeout: 10_000 }).toContain('dog.png');
      expect(await page.locator('#job').textContent()).toContain('the delayed message');
      expect(await page.locator('#job').textContent()).not.toContain('s3cret-token');

      await failedRow.getByRole('button', { name: 'retry' }).click();
      await expect.poll(() => attempts, { timeout: 10_000 }).toBe(2);
      await page.locator('#failed tbody tr').first().waitFor({ state: 'detached', timeout: 10_000 });
      expect(await queue.stats()).toMatchObject({ failed: 0, ready: 0, leased: 0 });

      expect(problems, problems.join('; ')).toEqual([]);
      expect(requests.length).toBeGreaterThan(3);
      for (const url of requests) expect(url.startsWith(`${origin}/`), url).toBe(true);
      await dashboard.close();
    } finally {
      await consumer.stop();
      registry.unregister(flaky.commandName);
    }
  });
});
