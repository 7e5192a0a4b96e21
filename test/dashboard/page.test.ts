/**
 * The dashboard page in a real headless Chromium (Debian's, driven by
 * playwright-core): it shows the queue, the live consumer and its workers
 * and the failed job; clicking retry makes the job run again and leaves the
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
    const flaky = queueCommand({ name: uniqueName('thumbnail'), queue, retries: 0 }, () => {
      if (attempts++ === 0) throw new Error('image server said 503');
    });
    const consumer = createConsumer({ queue, workers: 2, periodic: false, logger: pino({ level: 'silent' }), pollDelayMs: 10, maxPollDelayMs: 20 });
    try {
      const job = await flaky();
      await consumer.start();
      await expect(job.result({ timeout: 10_000 })).rejects.toThrow(/503/);
      const dashboard = createDashboard({ queue });
      server = createServer(dashboard.handler);
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

      browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      const problems: string[] = [];
      page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
      page.on('pageerror', (error) => problems.push(error.message));
      await page.goto(`${origin}/?token=${dashboard.token}`);

      await page.locator('#queues tbody tr').filter({ hasText: 'web' }).waitFor();
      expect(new URL(page.url()).search).toBe(''); // the token left the address bar
      await page.locator('#queues svg.spark polyline').waitFor({ state: 'attached' }); // the rate over time
      await page.locator('#consumers tbody tr').filter({ hasText: 'running' }).waitFor();
      expect(await page.locator('#consumers .state').allTextContents()).toEqual(['worker-1: idle', 'worker-2: idle']);
      // The machines, drawn from their definitions, each live actor's state marked.
      const worker = page.locator('svg[data-machine="worker"]');
      await worker.waitFor();
      expect(await worker.locator('[data-state="idle"]').getAttribute('data-live')).toBe('2');
      expect(await worker.locator('[data-state="busy"]').getAttribute('data-live')).toBe('0');
      expect(await page.locator('svg[data-machine="supervisor"] [data-state="running"]').getAttribute('data-live')).toBe('1');
      expect(await worker.locator('line.edge').count()).toBeGreaterThan(3);
      const failedRow = page.locator('#failed tbody tr').filter({ hasText: 'image server said 503' });
      await failedRow.waitFor();
      expect(await failedRow.textContent()).toContain(flaky.commandName);
      // TASKMILL_SCREENSHOTS=1 refreshes the picture in docs/ (not on every run: it would dirty the tree).
      if (process.env.TASKMILL_SCREENSHOTS) await page.screenshot({ path: path.join(ROOT, 'docs', 'dashboard.png'), fullPage: true });

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
