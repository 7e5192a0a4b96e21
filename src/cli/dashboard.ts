/**
 * `taskmill dashboard`: createDashboard behind node:http, on loopback unless
 * told otherwise in so many words. It prints its URL, token included, on
 * stdout (the only place the token appears) and runs until SIGINT/SIGTERM.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashboard } from '../dashboard/api.js';
import { redactUrl } from '../shared/config.js';

export interface DashboardFlags {
  url: string;
  queues: string[] | undefined;
  port: number;
  host: string;
  allowRemote: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Serves until a signal; resolves with the exit code. Throws (a startup error) when the host is refused or the port taken. */
export async function runDashboard(flags: DashboardFlags, out: (line: string) => void, warn: (line: string) => void): Promise<number> {
  if (!LOOPBACK.has(flags.host) && !flags.allowRemote) {
    throw new Error(`--host ${flags.host} would expose the dashboard beyond this machine: add --allow-remote to mean it`);
  }
  const dashboard = createDashboard({ queue: flags.url, ...(flags.queues ? { queues: flags.queues } : {}) });
  const server = createServer(dashboard.handler);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(flags.port, flags.host, () => resolve());
    });
  } catch (error) {
    await dashboard.close();
    throw error;
  }
  if (!LOOPBACK.has(flags.host)) warn(`taskmill: the dashboard listens on ${flags.host}: anyone who can reach it and has the token can retry and purge jobs`);
  const { port } = server.address() as AddressInfo;
  const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
  // Listen for the stop signals before printing the URL: whoever waits for the URL may signal at once,
  // and a signal with no listener yet kills the process instead of stopping it.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  out(`taskmill dashboard for ${redactUrl(flags.url)}: http://${host}:${port}/?token=${dashboard.token}`);
  await stopped;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await dashboard.close();
  return 0;
}
