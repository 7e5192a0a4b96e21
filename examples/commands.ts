/**
 * Example command module: `taskmill consume examples/commands.ts` runs these.
 * (With no modules given, `taskmill consume` autodiscovers files named
 * commands.{js,mjs,cjs,ts,mts,cts} below the current directory.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { crontab, periodicCommand, queueCommand } from '../src/index.js';

/** A normal job: takes a little while, then returns. */
export const churn = queueCommand('churn', async (id: number, text: string) => {
  await sleep(20 + Math.random() * 80);
  return `${text}:${id}`;
});

/** Fails on purpose for multiples of 7, to show a failure: logged, recorded, worker replaced. */
export const flaky = queueCommand({ name: 'flaky', timeout: 5_000 }, async (n: number) => {
  if (n % 7 === 0) throw new Error(`flaky refuses ${n}`);
  await sleep(10);
});

/** A periodic command: every minute, on every consumer, enqueued once per minute in total. */
export const heartbeat = periodicCommand(crontab({ minute: '*' }), 'heartbeat', () => {
  console.log(`heartbeat at ${new Date().toISOString()}`);
});
